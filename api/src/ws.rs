//! The GraphQL websocket endpoint (`/graphql/ws`), both subprotocols, hardened: credentials
//! checked in `connection_init`, a socket that does not initialise in time is closed with
//! 4408, at most `limits.max_subscriptions` operations run at once on one socket, and a
//! duplicate operation id is an error instead of silently replacing the running one.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::Data;
use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::channel::mpsc;
use futures::{FutureExt, SinkExt, StreamExt};
use serde_json::{Value, json};

use crate::auth::from_init_payload;
use crate::drain::Draining;
use crate::state::ApiState;

/// How often the server sends a keep-alive (`ping` / `ka`) on an initialised socket.
const KEEPALIVE_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Messages written to a socket before it is flushed.
const MAX_BATCH: usize = 32;

/// What the client-message filter decided.
enum Verdict {
    Forward(Vec<u8>),
    /// Answer with this message instead of forwarding.
    Reply(Message),
    Drop,
}

struct Tracker {
    active: Mutex<HashSet<String>>,
    initialised: AtomicBool,
    limit: usize,
    protocol: WebSocketProtocols,
}

impl Tracker {
    fn error_for(&self, id: &str, message: &str) -> Message {
        let payload = json!([{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }]);
        let body = match self.protocol {
            WebSocketProtocols::GraphQLWS => {
                json!({ "type": "error", "id": id, "payload": payload })
            }
            WebSocketProtocols::SubscriptionsTransportWS => {
                json!({ "type": "error", "id": id, "payload": payload[0] })
            }
        };
        Message::Text(body.to_string().into())
    }

    /// Looks at a client message before the protocol driver sees it.
    fn inspect(&self, text: &str) -> Verdict {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return Verdict::Forward(text.as_bytes().to_vec());
        };
        let kind = value["type"].as_str().unwrap_or_default();
        let id = value["id"].as_str().unwrap_or_default().to_string();
        match kind {
            "connection_init" => self.initialised.store(true, Ordering::SeqCst),
            "subscribe" | "start" => {
                let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
                if active.contains(&id) {
                    return match self.protocol {
                        WebSocketProtocols::GraphQLWS => {
                            Verdict::Reply(Message::Close(Some(CloseFrame {
                                code: 4409,
                                reason: format!("Subscriber for {id} already exists").into(),
                            })))
                        }
                        WebSocketProtocols::SubscriptionsTransportWS => {
                            Verdict::Reply(self.error_for(
                                &id,
                                &format!("an operation with id {id:?} is already running"),
                            ))
                        }
                    };
                }
                if active.len() >= self.limit {
                    return Verdict::Reply(self.error_for(
                        &id,
                        &format!(
                            "at most {} operations may run at once on one connection",
                            self.limit
                        ),
                    ));
                }
                active.insert(id);
            }
            "complete" | "stop" => {
                self.active
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }
            _ => {}
        }
        if kind.is_empty() {
            return Verdict::Drop;
        }
        Verdict::Forward(text.as_bytes().to_vec())
    }

    /// Notes operations the server finished. Results (`next`, `data`) — nearly every message
    /// — are recognised by their first bytes and not parsed.
    fn observe_outgoing(&self, text: &str) {
        if text.starts_with(r#"{"type":"next""#) || text.starts_with(r#"{"type":"data""#) {
            return;
        }
        if let Ok(value) = serde_json::from_str::<Value>(text)
            && matches!(value["type"].as_str(), Some("complete" | "error"))
            && let Some(id) = value["id"].as_str()
        {
            self.active
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
    }
}

/// Serves one upgraded socket until either side closes it, or until the process drains
/// (then the client gets 1001, going away, and reconnects elsewhere).
pub async fn serve(
    socket: WebSocket,
    state: ApiState,
    protocol: WebSocketProtocols,
    draining: Option<Draining>,
) {
    let _open = orchestrator_core::metrics::websocket_opened();
    let limits = state.core.config.limits;
    let tracker = Arc::new(Tracker {
        active: Mutex::new(HashSet::new()),
        initialised: AtomicBool::new(false),
        limit: limits.max_subscriptions,
        protocol,
    });
    let (mut sink, source) = socket.split();
    let peer_gone = Arc::new(AtomicBool::new(false));
    // Rare replies (refusals, a duplicate id) to the client; `futures`' channel allocates per
    // message, where tokio's would allocate a 32-message block for every socket up front.
    let (reply_tx, mut reply_rx) = mpsc::unbounded::<Message>();

    let input = {
        let tracker = tracker.clone();
        let peer_gone = peer_gone.clone();
        source
            .take_while(|msg| futures::future::ready(msg.is_ok()))
            // Reached once the client closed or the connection broke.
            .chain(futures::stream::poll_fn(move |_| {
                peer_gone.store(true, Ordering::Relaxed);
                std::task::Poll::Ready(None)
            }))
            .filter_map(move |msg| {
                let verdict = match msg {
                    Ok(Message::Text(text)) => tracker.inspect(text.as_str()),
                    Ok(Message::Binary(bytes)) => match std::str::from_utf8(&bytes) {
                        Ok(text) => tracker.inspect(text),
                        Err(_) => Verdict::Drop,
                    },
                    _ => Verdict::Drop,
                };
                let forwarded = match verdict {
                    Verdict::Forward(bytes) => Some(bytes),
                    Verdict::Reply(message) => {
                        let _ = reply_tx.unbounded_send(message);
                        None
                    }
                    Verdict::Drop => None,
                };
                futures::future::ready(forwarded)
            })
    };

    let init_state = state.clone();
    let mut driver = async_graphql::http::WebSocket::new(state.schema.clone(), input, protocol)
        .on_connection_init(move |payload| {
            let state = init_state.clone();
            async move {
                let auth = from_init_payload(&state, &payload).await;
                if auth.refused {
                    return Err(async_graphql::Error::new("invalid credentials"));
                }
                let mut data = Data::default();
                data.insert(auth);
                Ok(data)
            }
        })
        .keepalive_timeout(None);

    let init_deadline = tokio::time::sleep(limits.ws_init_timeout);
    tokio::pin!(init_deadline);
    let drain = async {
        match &draining {
            Some(draining) => draining.started().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(drain);
    let mut keepalive = tokio::time::interval(KEEPALIVE_EVERY);
    keepalive.tick().await;
    loop {
        tokio::select! {
            _ = keepalive.tick(), if tracker.initialised.load(Ordering::SeqCst) => {
                let ping = match protocol {
                    WebSocketProtocols::GraphQLWS => json!({ "type": "ping" }),
                    WebSocketProtocols::SubscriptionsTransportWS => json!({ "type": "ka" }),
                };
                if sink.send(Message::Text(ping.to_string().into())).await.is_err() {
                    break;
                }
            }
            outgoing = driver.next() => {
                // Whatever else is ready goes out in the same write: a terminal change and its
                // `complete` (or one change of several operations) cost one send, not several.
                let mut ready = Some(outgoing);
                let mut batched = 0;
                let mut end = false;
                while let Some(message) = ready.take() {
                    match message {
                        Some(WsMessage::Text(text)) => {
                            tracker.observe_outgoing(&text);
                            if sink.feed(Message::Text(text.into())).await.is_err() {
                                end = true;
                                break;
                            }
                        }
                        Some(WsMessage::Close(code, reason)) => {
                            let close = CloseFrame { code, reason: reason.into() };
                            let _ = sink.feed(Message::Close(Some(close))).await;
                            end = true;
                            break;
                        }
                        None => {
                            end = true;
                            break;
                        }
                    }
                    batched += 1;
                    if batched < MAX_BATCH {
                        ready = driver.next().now_or_never();
                    }
                }
                if sink.flush().await.is_err() || end {
                    break;
                }
            }
            Some(reply) = reply_rx.next() => {
                let closing = matches!(reply, Message::Close(_));
                if sink.send(reply).await.is_err() || closing {
                    break;
                }
            }
            _ = &mut drain => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: 1001,
                        reason: "server is shutting down; reconnect".into(),
                    })))
                    .await;
                break;
            }
            _ = &mut init_deadline, if !tracker.initialised.load(Ordering::SeqCst) => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: 4408,
                        reason: "Connection initialisation timeout".into(),
                    })))
                    .await;
                break;
            }
        }
    }
    if peer_gone.load(Ordering::Relaxed) {
        // Nothing to close: only send what is queued (the answer to a client's close frame).
        let _ = sink.flush().await;
    } else {
        let _ = sink.close().await;
    }
}
