//! `validateService`: does a service speak the custom-backend contract well enough to be
//! adopted? Each part of the contract is a separate check with pass/fail, latency and why.
//!
//! The checks run in order and each needs the one before it: `reachable` (the URL passes the
//! outbound guard and a connection opens), `health` (`GET /health` says `healthy` and the
//! expected `backend_type`), `prompt_management` (enabled, method `api`), `schema`
//! (`GET /api/prompts/schema` is well formed), `prompts` (`GET /api/prompts` matches the
//! schema). After the first failure the rest are reported as "not run: <check> failed".

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::net::TcpStream;

use super::client::{CustomBackendClient, HealthAnswer};
use super::prompts::prompt_problems;
use super::schema::PromptSchema;
use super::types::BackendType;
use crate::outbound::{CheckedUrl, OutboundGuard};

/// The checks, in the order they run.
pub const CHECKS: [&str; 5] = [
    "reachable",
    "health",
    "prompt_management",
    "schema",
    "prompts",
];

/// Most prompt problems spelled out in one message.
const MAX_LISTED_PROBLEMS: usize = 5;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// One of [`CHECKS`].
    pub name: &'static str,
    /// Passed.
    pub ok: bool,
    /// Not run, because an earlier check failed.
    pub skipped: bool,
    /// How long it took; `None` when not run.
    pub latency_ms: Option<u64>,
    /// What was found, or what is wrong and how to fix it.
    pub message: String,
}

/// Everything `validate_service` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceReport {
    /// Every check passed.
    pub ok: bool,
    /// One entry per name in [`CHECKS`], in that order.
    pub checks: Vec<Check>,
    /// The prompt schema, when it was read and is well formed (adoption keeps it).
    pub schema: Option<PromptSchema>,
    /// The live prompt values, when they were read.
    pub prompts: Option<Map<String, Value>>,
}

/// Runs the checks against the service at `url`, expected to be of type `expected`.
/// Never fails as a whole: problems, including a URL the guard refuses, are failed checks.
#[tracing::instrument(skip_all, fields(backend_type = expected.name()))]
pub async fn validate_service(
    guard: &OutboundGuard,
    url: &str,
    expected: &dyn BackendType,
) -> ServiceReport {
    let mut run = Run::default();
    let Some(target) = run.step("reachable", reachable(guard, url)).await else {
        return run.finish();
    };
    let client = CustomBackendClient::new(guard.clone(), target);
    let Some(health) = run.step("health", health(&client, expected)).await else {
        return run.finish();
    };
    if run
        .step("prompt_management", async { prompt_management(&health) })
        .await
        .is_none()
    {
        return run.finish();
    }
    let Some(schema) = run.step("schema", schema(&client)).await else {
        return run.finish();
    };
    run.schema = Some(schema.clone());
    if let Some(values) = run.step("prompts", prompts(&client, &schema)).await {
        run.prompts = Some(values);
    }
    run.finish()
}

/// The checks so far and the first that failed.
#[derive(Default)]
struct Run {
    checks: Vec<Check>,
    failed: Option<&'static str>,
    schema: Option<PromptSchema>,
    prompts: Option<Map<String, Value>>,
}

impl Run {
    /// Runs one check: `Ok((value, message))` passes, `Err(message)` fails.
    async fn step<T>(
        &mut self,
        name: &'static str,
        check: impl Future<Output = Result<(T, String), String>>,
    ) -> Option<T> {
        let started = Instant::now();
        let outcome = check.await;
        let latency_ms = Some(millis(started.elapsed()));
        let (value, ok, message) = match outcome {
            Ok((value, message)) => (Some(value), true, message),
            Err(message) => (None, false, message),
        };
        if !ok {
            self.failed = Some(name);
        }
        self.checks.push(Check {
            name,
            ok,
            skipped: false,
            latency_ms,
            message,
        });
        value
    }

    /// The report, with every check that did not run marked as skipped.
    fn finish(mut self) -> ServiceReport {
        for name in CHECKS.iter().skip(self.checks.len()) {
            self.checks.push(Check {
                name,
                ok: false,
                skipped: true,
                latency_ms: None,
                message: format!(
                    "not run: {} failed",
                    self.failed.unwrap_or("an earlier check")
                ),
            });
        }
        ServiceReport {
            ok: self.checks.iter().all(|c| c.ok),
            checks: self.checks,
            schema: self.schema,
            prompts: self.prompts,
        }
    }
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// The guard accepts the URL and a TCP connection to one of its checked addresses opens.
async fn reachable(guard: &OutboundGuard, url: &str) -> Result<(CheckedUrl, String), String> {
    let target = guard
        .inspect(url)
        .await
        .map_err(|r| format!("the URL {r}"))?;
    let limit = guard.limits().connect_timeout;
    let mut last = String::new();
    for addr in target.addrs() {
        match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(_)) => {
                let message = format!("connected to {}", addr);
                return Ok((target, message));
            }
            Ok(Err(e)) => last = format!("cannot connect to {}: {e}", addr),
            Err(_) => {
                last = format!(
                    "cannot connect to {}: no answer within {} ms",
                    addr,
                    limit.as_millis()
                )
            }
        }
    }
    Err(last)
}

async fn health(
    client: &CustomBackendClient,
    expected: &dyn BackendType,
) -> Result<(HealthAnswer, String), String> {
    let answer = client.health().await.map_err(|e| e.to_string())?;
    if answer.status != "healthy" {
        return Err(format!(
            "status is {:?}, expected \"healthy\"",
            answer.status
        ));
    }
    let names = expected.health_names();
    match answer.backend_type.as_deref() {
        Some(found) if names.contains(&found) => {
            let message = format!("healthy, backend_type {found:?}");
            Ok((answer, message))
        }
        Some(found) => Err(format!(
            "backend_type is {found:?}, expected {:?}",
            expected.name()
        )),
        None => Err(format!(
            "backend_type is missing, expected {:?}",
            expected.name()
        )),
    }
}

fn prompt_management(health: &HealthAnswer) -> Result<((), String), String> {
    let Some(pm) = &health.prompt_management else {
        return Err("prompt_management is missing from GET /health; expected {\"enabled\": true, \"method\": \"api\"}".into());
    };
    if !pm.enabled {
        return Err("prompt management is disabled (prompt_management.enabled is false)".into());
    }
    match pm.method.as_deref() {
        Some("api") => Ok(((), "enabled, method \"api\"".into())),
        Some(other) => Err(format!(
            "prompt_management.method is {other:?}, expected \"api\""
        )),
        None => Err("prompt_management.method is missing, expected \"api\"".into()),
    }
}

async fn schema(client: &CustomBackendClient) -> Result<(PromptSchema, String), String> {
    let schema = client.prompt_schema().await.map_err(|e| e.to_string())?;
    let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
    let message = match names.len() {
        0 => "well formed, with no fields".to_string(),
        n if n <= 10 => format!("{n} fields: {}", names.join(", ")),
        n => format!("{n} fields: {}, …", names[..10].join(", ")),
    };
    Ok((schema, message))
}

async fn prompts(
    client: &CustomBackendClient,
    schema: &PromptSchema,
) -> Result<(Map<String, Value>, String), String> {
    let values = client.prompts().await.map_err(|e| e.to_string())?;
    let problems = prompt_problems(schema, &Value::Object(values.clone()));
    if problems.is_empty() {
        let message = format!("{} values match the schema", values.len());
        return Ok((values, message));
    }
    let mut listed: Vec<String> = problems
        .iter()
        .take(MAX_LISTED_PROBLEMS)
        .map(|(field, why)| format!("{field} {why}"))
        .collect();
    if problems.len() > MAX_LISTED_PROBLEMS {
        listed.push(format!("and {} more", problems.len() - MAX_LISTED_PROBLEMS));
    }
    Err(format!(
        "GET /api/prompts does not match the schema: {}",
        listed.join("; ")
    ))
}
