//! A real remote worker for tests: an axum server that speaks the handshake protocol
//! (CONTRACTS §2), answers as a script says, and records every call with its headers.
//!
//! The default script accepts every handshake and completes every process call with
//! `{"echo": <inputData of the handshake>, "worker": <name>}` and fixed metrics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

/// One call the worker received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `/api/handshake`, `/api/process` or `/api/cancel`.
    pub path: String,
    pub authorization: Option<String>,
    pub worker_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub body: Value,
}

impl Call {
    /// The attempt number in the `Idempotency-Key` (`<stageId>:<attempt>`).
    pub fn attempt(&self) -> Option<i32> {
        self.idempotency_key
            .as_deref()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()
    }

    /// The stage id in the body.
    pub fn stage_id(&self) -> Option<&str> {
        self.body["stageId"].as_str()
    }
}

/// How to answer one call.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Do not answer before a cancel for the same stage arrives (or `delay` passes).
    pub until_cancelled: bool,
}

impl Reply {
    /// A 200 answer with `body`.
    pub fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            body,
            delay: Duration::ZERO,
            until_cancelled: false,
        }
    }
    /// An accepted handshake.
    pub fn accept() -> Reply {
        Reply::ok(json!({ "accepted": true, "estimatedCompletionMs": 100,
            "resourceRequirements": { "cpu": 0.5, "memory": 256, "apiCalls": 1 } }))
    }
    /// A refused handshake.
    pub fn refuse(reason: &str) -> Reply {
        Reply::ok(json!({ "accepted": false, "reason": reason }))
    }
    /// A completed process call.
    pub fn completed(result: Value, tokens: i64, cost: f64) -> Reply {
        Reply::ok(json!({ "status": "completed", "result": result,
            "metrics": { "tokensUsed": tokens, "processingTimeMs": 5, "costUsd": cost } }))
    }
    /// A process call that reports a failure.
    pub fn failed(error: &str) -> Reply {
        Reply::ok(json!({ "status": "failed", "error": error }))
    }
    /// An HTTP error answer.
    pub fn status(status: u16, body: Value) -> Reply {
        Reply {
            status,
            ..Reply::ok(body)
        }
    }
    /// The same answer after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
    /// The same answer once the stage is cancelled (or after `delay`, if set).
    pub fn when_cancelled(mut self) -> Reply {
        self.until_cancelled = true;
        if self.delay.is_zero() {
            self.delay = Duration::from_secs(60);
        }
        self
    }
}

/// Decides the answer to a call; `None` gives the default answer.
pub type Script = Arc<dyn Fn(&Call) -> Option<Reply> + Send + Sync>;

/// A script that always gives the default answers.
pub fn default_script() -> Script {
    Arc::new(|_| None)
}

#[derive(Default)]
struct Shared {
    name: String,
    calls: Mutex<Vec<Call>>,
    inputs: Mutex<HashMap<String, Value>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    unhealthy: AtomicBool,
    cancelled: Mutex<Vec<String>>,
    cancel_notify: Notify,
}

/// A running fake worker.
pub struct FakeWorker {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    script: Script,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FakeWorker {
    /// Starts on a free port.
    pub async fn start(name: &str, script: Script) -> FakeWorker {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(
            listener,
            Arc::new(Shared {
                name: name.into(),
                ..Default::default()
            }),
            script,
        )
    }

    fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, script: Script) -> FakeWorker {
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/health", get(health))
            .route("/api/handshake", post(handshake))
            .route("/api/process", post(process))
            .route("/api/cancel", post(cancel))
            .with_state((shared.clone(), script.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeWorker {
            addr,
            shared,
            script,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// Calls to `path` so far.
    pub fn calls_to(&self, path: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == path)
            .collect()
    }

    /// Most `/api/process` calls it was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// `/api/process` calls being answered now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Makes `/health` answer 503 (or 200 again).
    pub fn set_unhealthy(&self, unhealthy: bool) {
        self.shared.unhealthy.store(unhealthy, Ordering::SeqCst);
    }

    /// Stops listening (connections are refused afterwards); the recorded calls stay.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Listens again on the same port, keeping the recorded calls.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        let again = Self::serve(listener, self.shared.clone(), self.script.clone());
        *self = again;
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

type AppState = (Arc<Shared>, Script);

fn record(shared: &Shared, path: &str, headers: &HeaderMap, body: &Value) -> Call {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let call = Call {
        path: path.into(),
        authorization: header("authorization"),
        worker_id: header("x-worker-id"),
        idempotency_key: header("idempotency-key"),
        body: body.clone(),
    };
    shared.calls.lock().unwrap().push(call.clone());
    call
}

async fn answer(shared: &Shared, call: &Call, reply: Reply) -> Response {
    if reply.until_cancelled {
        let stage = call.stage_id().unwrap_or_default().to_string();
        let wait = async {
            loop {
                let notified = shared.cancel_notify.notified();
                if shared.cancelled.lock().unwrap().contains(&stage) {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(reply.delay, wait).await;
    } else if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap();
    (status, Json(reply.body)).into_response()
}

async fn health(State((shared, _)): State<AppState>) -> Response {
    if shared.unhealthy.load(Ordering::SeqCst) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "down" })),
        )
            .into_response()
    } else {
        Json(json!({ "status": "healthy" })).into_response()
    }
}

async fn handshake(
    State((shared, script)): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let call = record(&shared, "/api/handshake", &headers, &body);
    let reply = script(&call).unwrap_or_else(Reply::accept);
    if reply.status == 200 && reply.body["accepted"] == true {
        let stage = body["stageId"].as_str().unwrap_or_default().to_string();
        shared
            .inputs
            .lock()
            .unwrap()
            .insert(stage, body["inputData"].clone());
    }
    answer(&shared, &call, reply).await
}

async fn process(
    State((shared, script)): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let call = record(&shared, "/api/process", &headers, &body);
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let stage = body["stageId"].as_str().unwrap_or_default().to_string();
    let input = shared
        .inputs
        .lock()
        .unwrap()
        .get(&stage)
        .cloned()
        .unwrap_or(Value::Null);
    let reply = script(&call).unwrap_or_else(|| {
        Reply::completed(json!({ "echo": input, "worker": shared.name }), 1500, 0.003)
    });
    let response = answer(&shared, &call, reply).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn cancel(
    State((shared, _)): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let call = record(&shared, "/api/cancel", &headers, &body);
    if let Some(stage) = call.stage_id() {
        shared.cancelled.lock().unwrap().push(stage.to_string());
    }
    shared.cancel_notify.notify_waiters();
    Json(json!({ "cancelled": true })).into_response()
}
