//! A small GraphQL websocket client speaking both subprotocols, for tests.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The two websocket subprotocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws` (the graphql-ws library).
    TransportWs,
    /// `graphql-ws` (the older subscriptions-transport-ws).
    LegacyWs,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::LegacyWs => "graphql-ws",
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An open GraphQL websocket.
pub struct WsClient {
    socket: Socket,
    protocol: Protocol,
}

impl WsClient {
    /// Opens `ws://addr/graphql/ws` with `protocol`, without sending anything.
    pub async fn open(addr: std::net::SocketAddr, protocol: Protocol) -> WsClient {
        let mut request = format!("ws://{addr}/graphql/ws")
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(protocol.name()),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket connects");
        WsClient { socket, protocol }
    }

    /// Opens and sends `connection_init` with `payload`; returns the first answer.
    pub async fn connect(
        addr: std::net::SocketAddr,
        protocol: Protocol,
        payload: Value,
    ) -> (WsClient, Value) {
        let mut client = Self::open(addr, protocol).await;
        client
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = client.next_message(Duration::from_secs(5)).await;
        (client, ack)
    }

    /// Sends one JSON message.
    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("websocket send");
    }

    /// Starts an operation with `id`.
    pub async fn start(&mut self, id: &str, query: &str, variables: Value) {
        let kind = match self.protocol {
            Protocol::TransportWs => "subscribe",
            Protocol::LegacyWs => "start",
        };
        self.send(json!({ "id": id, "type": kind, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next JSON message (keep-alive pings skipped), or `{"closed": code}` when the
    /// server closed the socket. Panics after `timeout`.
    pub async fn next_message(&mut self, timeout: Duration) -> Value {
        loop {
            let msg = tokio::time::timeout(timeout, self.socket.next())
                .await
                .expect("websocket message within the timeout");
            match msg {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    if matches!(value["type"].as_str(), Some("ka" | "ping" | "pong")) {
                        continue;
                    }
                    return value;
                }
                Some(Ok(Message::Close(frame))) => {
                    return json!({ "closed": frame.map(|f| u16::from(f.code)) });
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return json!({ "closed": null }),
            }
        }
    }
}
