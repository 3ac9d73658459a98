//! Subscription fan-out: N websocket subscribers on one `api` process watch one execution
//! (`executionUpdated`); a separate `worker` process then runs it. Measured: delivery latency
//! from the commit of each change to its arrival at every client (p50/p99), and the API
//! process's resident memory per subscriber.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::load::default_project;
use crate::product::Deployment;

/// What one fan-out run measured.
#[derive(Debug, Clone)]
pub struct FanoutRun {
    pub subscribers: usize,
    /// Milliseconds from each change's commit to its arrival, over all clients.
    pub latencies_ms: Vec<f64>,
    /// The same, for the RUNNING change and for the SUCCEEDED one.
    pub running_ms: Vec<f64>,
    pub succeeded_ms: Vec<f64>,
    /// Changes that arrived, out of `2 * subscribers` (RUNNING and SUCCEEDED).
    pub delivered: usize,
    /// Resident memory of the API process before and after the subscribers attached (KiB).
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub attach_seconds: f64,
}

impl FanoutRun {
    /// Extra resident memory per subscriber, in bytes.
    pub fn rss_per_subscriber_bytes(&self) -> f64 {
        (self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0)
            / self.subscribers as f64
    }
}

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("read /proc status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, authenticates, subscribes and waits for the current state (QUEUED).
async fn attach(addr: SocketAddr, token: &str, id: &str) -> anyhow::Result<Socket> {
    let mut request = format!("ws://{addr}/graphql/ws").into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    // Ten thousand clients share the machine with the server: small buffers (the default
    // 128 KiB read buffer per socket would be mapped and unmapped by the allocator, stalling
    // both cores on TLB shootdowns) and no Nagle delay on the few client messages.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into())).await?;
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { executionUpdated(id: $id) { status startedAt finishedAt } }",
        "variables": { "id": id } } });
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    loop {
        let msg = ws.next().await.context("socket closed while attaching")??;
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(&text)?;
            if v["type"] == "next" {
                return Ok(ws);
            }
            if v["type"] == "error" {
                bail!("subscription refused: {v}");
            }
        }
    }
}

/// What one client saw: `(status, committed at, received at)` per change.
type Seen = Vec<(String, DateTime<Utc>, DateTime<Utc>)>;

/// Reads changes until completion; returns them, and the socket when it is to be held open.
async fn follow(mut ws: Socket, hold: bool) -> (Seen, Option<Socket>) {
    let mut seen = Vec::new();
    while let Some(Ok(msg)) = ws.next().await {
        let received = Utc::now();
        let Message::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match v["type"].as_str() {
            Some("next") => {
                let e = &v["payload"]["data"]["executionUpdated"];
                let status = e["status"].as_str().unwrap_or_default().to_string();
                let at = match status.as_str() {
                    "RUNNING" => e["startedAt"].as_str(),
                    _ => e["finishedAt"].as_str(),
                };
                if let Some(at) = at.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
                    seen.push((status, at.with_timezone(&Utc), received));
                }
            }
            Some("complete") => break,
            _ => {}
        }
    }
    (seen, hold.then_some(ws))
}

/// One run with `subscribers` clients.
pub async fn run(
    dep: &mut Deployment,
    subscribers: usize,
    hold: bool,
) -> anyhow::Result<FanoutRun> {
    let api = dep.spawn("api").await?;
    let api_pid = dep.pid(0).context("api pid")?;
    let project = default_project(dep, api).await?;
    let data = dep
        .gql(api, "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"sleep\", input: {ms: 200}}) { id } }", json!({ "p": project }))
        .await?;
    let id = data["startExecution"]["id"]
        .as_str()
        .context("execution id")?
        .to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before_kib = rss_kib(api_pid)?;

    let attach_started = std::time::Instant::now();
    let token = dep.token().to_string();
    let sockets: Vec<anyhow::Result<Socket>> = futures::stream::iter(0..subscribers)
        .map(|_| {
            let token = token.clone();
            let id = id.clone();
            async move { attach(api, &token, &id).await }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let mut followers = Vec::with_capacity(subscribers);
    for socket in sockets {
        followers.push(tokio::spawn(follow(socket?, hold)));
    }
    let attach_seconds = attach_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after_kib = rss_kib(api_pid)?;

    // Only now does a worker run the execution.
    dep.spawn("worker").await?;
    let mut latencies_ms = Vec::with_capacity(subscribers * 2);
    let (mut running_ms, mut succeeded_ms) = (Vec::new(), Vec::new());
    let mut delivered = 0;
    let mut held = Vec::new();
    for f in followers {
        let (seen, socket) = tokio::time::timeout(Duration::from_secs(120), f)
            .await
            .context("followers timed out")??;
        held.extend(socket);
        for (status, committed, received) in seen {
            delivered += 1;
            let ms = (received - committed).num_microseconds().unwrap_or(0) as f64 / 1000.0;
            latencies_ms.push(ms);
            match status.as_str() {
                "RUNNING" => running_ms.push(ms),
                _ => succeeded_ms.push(ms),
            }
        }
    }
    drop(held);
    Ok(FanoutRun {
        subscribers,
        latencies_ms,
        running_ms,
        succeeded_ms,
        delivered,
        rss_before_kib,
        rss_after_kib,
        attach_seconds,
    })
}
