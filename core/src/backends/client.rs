//! The HTTP client of the custom-backend contract (CONTRACTS §3): `GET /health`,
//! `GET /api/prompts/schema`, `GET /api/prompts`, `PUT /api/prompts`. Managed backends speak
//! the same API. Every call goes through the outbound guard, to the addresses it checked,
//! with a bounded time and answer size; failures say which request, and quote at most
//! [`EXCERPT_CHARS`](crate::outbound::EXCERPT_CHARS) characters of the answer.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::form::kind;
use super::schema::PromptSchema;
use crate::error::CoreResult;
use crate::outbound::{CheckedUrl, HttpAnswer, OutboundError, OutboundGuard};

/// Longest one call may take, unless the caller sets another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from a backend.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// `GET /health` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthAnswer {
    /// `healthy` when all is well.
    pub status: String,
    /// The type the service says it is (`custom`).
    #[serde(default)]
    pub backend_type: Option<String>,
    /// Whether and how its prompts are managed.
    #[serde(default)]
    pub prompt_management: Option<PromptManagement>,
}

/// The `prompt_management` part of a health answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptManagement {
    #[serde(default)]
    pub enabled: bool,
    /// `api` for services the orchestrator can manage.
    #[serde(default)]
    pub method: Option<String>,
}

/// `PUT /api/prompts` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PutPromptsAnswer {
    pub success: bool,
    /// Fields the service updated.
    #[serde(default)]
    pub updated_prompts: Vec<String>,
}

/// Why a call to a backend produced no usable answer. `request` is e.g. `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendCallError {
    /// No answer: connect failure, timeout, redirect, oversized body.
    #[error("{request}: {source}")]
    Exchange {
        request: String,
        #[source]
        source: OutboundError,
    },
    /// An answer with a non-2xx status.
    #[error("{request} answered HTTP {status}: {excerpt}")]
    Status {
        request: String,
        status: u16,
        excerpt: String,
    },
    /// A 2xx answer that is not what the contract says.
    #[error("{request} answered something that is not the contract: {reason}")]
    Contract { request: String, reason: String },
}

impl BackendCallError {
    /// Timeouts, connection failures and 5xx may pass on another attempt.
    pub fn is_retryable(&self) -> bool {
        match self {
            BackendCallError::Exchange { source, .. } => {
                matches!(
                    source,
                    OutboundError::Timeout(_) | OutboundError::Connect(_)
                )
            }
            BackendCallError::Status { status, .. } => *status >= 500,
            BackendCallError::Contract { .. } => false,
        }
    }
}

/// A client for one backend, at the addresses the guard checked. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CustomBackendClient {
    guard: OutboundGuard,
    target: CheckedUrl,
    timeout: Duration,
}

impl CustomBackendClient {
    /// Checks `url` (the input `field`) with `guard` and returns a client for it; a refused
    /// URL is `BAD_USER_INPUT` on `field`.
    pub async fn connect(guard: &OutboundGuard, field: &str, url: &str) -> CoreResult<Self> {
        let target = guard.check(field, url).await?;
        Ok(Self::new(guard.clone(), target))
    }

    /// A client for a URL `guard` already checked.
    pub fn new(guard: OutboundGuard, target: CheckedUrl) -> Self {
        CustomBackendClient {
            guard,
            target,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client with another per-call time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The checked base URL.
    pub fn target(&self) -> &CheckedUrl {
        &self.target
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<HealthAnswer, BackendCallError> {
        let (request, body) = self.call(reqwest::Method::GET, "/health", None).await?;
        serde_json::from_value(body).map_err(|e| contract(&request, e.to_string()))
    }

    /// `GET /api/prompts/schema`, checked to be well formed.
    pub async fn prompt_schema(&self) -> Result<PromptSchema, BackendCallError> {
        let (request, body) = self
            .call(reqwest::Method::GET, "/api/prompts/schema", None)
            .await?;
        PromptSchema::from_json(&body).map_err(|e| contract(&request, e.to_string()))
    }

    /// `GET /api/prompts`: the live values, as an object.
    pub async fn prompts(&self) -> Result<Map<String, Value>, BackendCallError> {
        let (request, body) = self
            .call(reqwest::Method::GET, "/api/prompts", None)
            .await?;
        match body {
            Value::Object(values) => Ok(values),
            other => Err(contract(
                &request,
                format!("expected an object of field values, got {}", kind(&other)),
            )),
        }
    }

    /// `PUT /api/prompts` with `values`; an answer without `"success": true` is an error.
    pub async fn put_prompts(
        &self,
        values: &Map<String, Value>,
    ) -> Result<PutPromptsAnswer, BackendCallError> {
        let body = Value::Object(values.clone());
        let (request, answer) = self
            .call(reqwest::Method::PUT, "/api/prompts", Some(&body))
            .await?;
        let parsed: PutPromptsAnswer = serde_json::from_value(answer.clone())
            .map_err(|e| contract(&request, e.to_string()))?;
        if !parsed.success {
            return Err(contract(
                &request,
                format!(
                    "\"success\" is false: {}",
                    crate::outbound::excerpt(&answer.to_string())
                ),
            ));
        }
        Ok(parsed)
    }

    /// One exchange: a 2xx answer with a JSON body, or the error naming the request.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(String, Value), BackendCallError> {
        let request = format!("{method} {path}");
        let mut builder = self.guard.request(&self.target, method, path);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let answer: HttpAnswer = self
            .guard
            .send(builder, self.timeout, MAX_ANSWER_BYTES)
            .await
            .map_err(|source| BackendCallError::Exchange {
                request: request.clone(),
                source,
            })?;
        if !answer.is_success() {
            return Err(BackendCallError::Status {
                request,
                status: answer.status,
                excerpt: answer.excerpt(),
            });
        }
        let json = answer
            .json()
            .map_err(|why| contract(&request, format!("{why}: {}", answer.excerpt())))?;
        Ok((request, json))
    }
}

/// Longest reason of a contract error (decode errors can quote the body).
const MAX_REASON_CHARS: usize = 500;

fn contract(request: &str, reason: String) -> BackendCallError {
    let reason = match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason,
    };
    BackendCallError::Contract {
        request: request.to_string(),
        reason,
    }
}
