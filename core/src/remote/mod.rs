//! The remote-worker protocol (CONTRACTS §2, seed 003): the packets, and an HTTP client with
//! bounded timeouts and response sizes that says which failures are worth another attempt.
//!
//! Every call carries `Authorization: Bearer <worker token>`, `X-Worker-ID: <orchestrator
//! instance>` and `Idempotency-Key: <stageId>:<attempt>`; a re-run of the same attempt (after
//! a crash) repeats the key, so the worker can answer it without doing the work twice.

mod packets;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::config::Secret;
use crate::outbound::{AllowList, OutboundError, OutboundGuard, ProcessMode};
use crate::trace_context::TraceParent;

pub use packets::{Packet, record_packet};

/// Largest response body read from a worker.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Longest a health probe may take.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a handshake may take (capped further by the stage's remaining time).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a cancel call may take.
pub const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the handshake says the stage will need.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestedResources {
    pub estimated_tokens: Option<u64>,
    pub timeout_ms: u64,
}

/// `POST /api/handshake` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HandshakeRequest {
    pub execution_id: Uuid,
    pub stage_id: Uuid,
    /// The capability the stage needs.
    pub action: String,
    pub input_data: Value,
    pub resource_requirements: RequestedResources,
}

/// `POST /api/handshake` answer; only `accepted` is required.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HandshakeResponse {
    #[serde(default)]
    pub execution_id: Option<String>,
    #[serde(default)]
    pub worker_id: Option<String>,
    pub accepted: bool,
    #[serde(default)]
    pub estimated_completion_ms: Option<u64>,
    #[serde(default)]
    pub resource_requirements: Option<Value>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/process` and `POST /api/cancel` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StageRef {
    pub execution_id: Uuid,
    pub stage_id: Uuid,
}

/// Usage a worker reports for a processed stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessMetrics {
    #[serde(default)]
    pub tokens_used: Option<i64>,
    #[serde(default)]
    pub processing_time_ms: Option<i64>,
    #[serde(default)]
    pub cost_usd: Option<f64>,
}

/// `POST /api/process` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessResponse {
    #[serde(default)]
    pub execution_id: Option<String>,
    /// `completed` or `failed`.
    pub status: String,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub metrics: Option<ProcessMetrics>,
}

/// Why a call to a worker did not produce a usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("timed out after {0} ms")]
    Timeout(u128),
    #[error("cannot reach the worker: {0}")]
    Connect(String),
    #[error("worker answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("worker answered something that is not the protocol: {0}")]
    Protocol(String),
}

impl CallError {
    /// Timeouts, connection errors and 5xx are worth another attempt; 4xx and protocol
    /// violations would fail the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Timeout(_) | CallError::Connect(_) => true,
            CallError::Status { status, .. } => *status >= 500,
            CallError::Protocol(_) => false,
        }
    }

    /// The HTTP status, when the worker answered at all.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A decoded answer with the raw body and status, for the packet log.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub status: u16,
    pub body: Value,
    pub parsed: T,
}

/// Who is calling whom, for the headers of one stage attempt.
#[derive(Debug, Clone)]
pub struct CallHeaders {
    pub token: Secret,
    pub instance_id: String,
    pub idempotency_key: String,
}

/// HTTP client for remote workers; cheap to clone, one per process is enough. Every call
/// goes through the outbound guard: the worker's URL is checked (and its host resolved) again
/// each time, so a DNS change after registration cannot point calls at a refused address.
#[derive(Debug, Clone)]
pub struct RemoteWorkerClient {
    guard: OutboundGuard,
}

impl Default for RemoteWorkerClient {
    fn default() -> Self {
        Self::new()
    }
}

impl RemoteWorkerClient {
    /// A client whose guard has the standalone default (public and loopback addresses).
    /// Processes that know their configuration use [`RemoteWorkerClient::with_guard`].
    pub fn new() -> Self {
        Self::with_guard(OutboundGuard::new(AllowList::default_for(
            ProcessMode::Standalone,
        )))
    }

    /// A client that calls workers through `guard` (no redirects, bounded connect time).
    pub fn with_guard(guard: OutboundGuard) -> Self {
        RemoteWorkerClient { guard }
    }

    /// `GET {url}/health`: `Ok` when it answers 200 with `{"status": "healthy"}`.
    pub async fn health(&self, base_url: &str) -> Result<(), String> {
        let checked = self
            .guard
            .inspect(base_url)
            .await
            .map_err(|refusal| format!("the worker URL is refused: {refusal}"))?;
        let request = self
            .guard
            .request(&checked, reqwest::Method::GET, "/health");
        let (status, body) = send(&self.guard, request, HEALTH_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("health check answered HTTP {status}"));
        }
        match body.get("status").and_then(Value::as_str) {
            Some("healthy") => Ok(()),
            Some(other) => Err(format!("health check says {other:?}")),
            None => Err("health check answer has no \"status\"".into()),
        }
    }

    /// `POST {url}{path}` with the protocol headers and a JSON body; decodes a 2xx answer.
    #[tracing::instrument(name = "remote_worker_call", skip_all, fields(path = %path, otel.kind = "client"))]
    pub async fn post<T: serde::de::DeserializeOwned>(
        &self,
        base_url: &str,
        path: &str,
        headers: &CallHeaders,
        body: &Value,
        timeout: Duration,
    ) -> Result<Answer<T>, (CallError, Option<Value>)> {
        let checked = self.guard.inspect(base_url).await.map_err(|refusal| {
            let why = format!("the worker URL is refused: {refusal}");
            (CallError::Connect(why), None)
        })?;
        let mut request = self
            .guard
            .request(&checked, reqwest::Method::POST, path)
            .bearer_auth(headers.token.expose())
            .header("X-Worker-ID", &headers.instance_id)
            .header("Idempotency-Key", &headers.idempotency_key)
            .json(body);
        // The worker can join the stage's trace (W3C trace context).
        if let Some(parent) = TraceParent::current() {
            request = request.header(crate::trace_context::HEADER, parent.to_string());
        }
        let (status, answer) = send(&self.guard, request, timeout)
            .await
            .map_err(|e| (e, None))?;
        if !(200..300).contains(&status) {
            let message = error_message(&answer);
            return Err((CallError::Status { status, message }, Some(answer)));
        }
        match serde_json::from_value::<T>(answer.clone()) {
            Ok(parsed) => Ok(Answer {
                status,
                body: answer,
                parsed,
            }),
            Err(e) => Err((CallError::Protocol(e.to_string()), Some(answer))),
        }
    }
}

/// Sends through the guard and reads at most [`MAX_RESPONSE_BYTES`]; a body that is not JSON
/// becomes a string.
async fn send(
    guard: &OutboundGuard,
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<(u16, Value), CallError> {
    let answer = guard
        .send(request, timeout, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| match e {
            OutboundError::Timeout(ms) => CallError::Timeout(ms),
            OutboundError::Connect(why) => CallError::Connect(why),
            other => CallError::Protocol(other.to_string()),
        })?;
    let body = serde_json::from_slice(&answer.body).unwrap_or_else(|_| {
        let mut text = String::from_utf8_lossy(&answer.body).into_owned();
        text.truncate(text.floor_char_boundary(1000));
        Value::String(text)
    });
    Ok((answer.status, body))
}

/// The message a worker put in an error answer (`error`, `message` or `reason`), or the text.
fn error_message(body: &Value) -> String {
    let text = ["error", "message", "reason"]
        .iter()
        .find_map(|k| body.get(k).and_then(Value::as_str).map(str::to_string))
        .or_else(|| body.as_str().map(str::to_string))
        .unwrap_or_else(|| body.to_string());
    let mut text = text.trim().to_string();
    text.truncate(text.floor_char_boundary(500));
    if text.is_empty() {
        "(no message)".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(CallError::Timeout(5).is_retryable());
        assert!(CallError::Connect("refused".into()).is_retryable());
        let status = |s| CallError::Status {
            status: s,
            message: String::new(),
        };
        assert!(status(503).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(!CallError::Protocol("x".into()).is_retryable());
    }

    #[test]
    fn error_messages_come_from_the_usual_fields() {
        assert_eq!(error_message(&json!({"error": "bad input"})), "bad input");
        assert_eq!(error_message(&json!("plain text")), "plain text");
        assert_eq!(error_message(&json!({"reason": "busy"})), "busy");
    }

    #[test]
    fn packets_speak_camel_case() {
        let request = HandshakeRequest {
            execution_id: Uuid::nil(),
            stage_id: Uuid::nil(),
            action: "granulate".into(),
            input_data: json!({"topic": "x"}),
            resource_requirements: RequestedResources {
                estimated_tokens: None,
                timeout_ms: 30_000,
            },
        };
        let v = serde_json::to_value(&request).unwrap();
        assert_eq!(v["resourceRequirements"]["timeoutMs"], 30_000);
        assert_eq!(v["inputData"]["topic"], "x");
        let answer: ProcessResponse = serde_json::from_value(json!({
            "executionId": "e", "status": "completed", "result": {"a": 1},
            "metrics": {"tokensUsed": 1500, "processingTimeMs": 15000, "costUsd": 0.003}
        }))
        .unwrap();
        assert_eq!(answer.metrics.unwrap().tokens_used, Some(1500));
    }
}
