//! Stage actions that run inside a worker process.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use crate::context::CoreContext;

/// What a finished action reports.
#[derive(Debug, Clone, Default)]
pub struct ActionOutput {
    /// Becomes the next stage's input.
    pub output: Value,
    pub tokens_used: i64,
    pub cost_usd: f64,
}

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Worth another attempt (timeouts, connection errors, 5xx).
    #[error("{0}")]
    Retryable(String),
    /// Another attempt would fail the same way (bad input, 4xx, a reported failure).
    #[error("{0}")]
    Permanent(String),
}

/// Where an action runs: the shared handles and the ids of the stage attempt.
#[derive(Debug, Clone)]
pub struct ActionContext {
    /// Database, queue, configuration and events.
    pub core: CoreContext,
    pub project_id: Uuid,
    pub execution_id: Uuid,
    pub stage_id: Uuid,
    /// The stage's name in its pipeline.
    pub stage_name: String,
    /// The attempt running, from 1.
    pub attempt: i32,
    /// The last attempt the stage may make; a failure on it is final.
    pub max_attempts: i32,
}

/// A built-in stage action.
#[async_trait]
pub trait StageAction: Send + Sync {
    /// The name pipelines use in `action`.
    fn name(&self) -> &'static str;
    /// Runs the action on `input`.
    async fn run(&self, cx: &ActionContext, input: Value) -> Result<ActionOutput, ActionError>;
    /// Whether a cancel stops the action mid-run. Actions that change the outside world in
    /// steps (deployments) say no: they finish, so what they did is recorded, and the
    /// execution stops before the next stage.
    fn stops_on_cancel(&self) -> bool {
        true
    }
}

/// Passes its input through.
#[derive(Debug)]
pub struct Noop;

#[async_trait]
impl StageAction for Noop {
    fn name(&self) -> &'static str {
        "noop"
    }
    async fn run(&self, _cx: &ActionContext, input: Value) -> Result<ActionOutput, ActionError> {
        Ok(ActionOutput {
            output: input,
            ..Default::default()
        })
    }
}

/// Waits `{ "ms": N }` milliseconds (at most ten minutes), then passes its input through.
#[derive(Debug)]
pub struct Sleep;

/// Longest sleep the `sleep` action accepts.
pub const MAX_SLEEP_MS: u64 = 600_000;

#[async_trait]
impl StageAction for Sleep {
    fn name(&self) -> &'static str {
        "sleep"
    }
    async fn run(&self, _cx: &ActionContext, input: Value) -> Result<ActionOutput, ActionError> {
        let ms = match input.get("ms") {
            None => 0,
            Some(v) => v.as_u64().filter(|ms| *ms <= MAX_SLEEP_MS).ok_or_else(|| {
                ActionError::Permanent(format!(
                    "sleep: `ms` must be a whole number from 0 to {MAX_SLEEP_MS}"
                ))
            })?,
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ActionOutput {
            output: input,
            ..Default::default()
        })
    }
}

/// The built-in actions user pipelines may name.
pub fn builtin_actions() -> Vec<std::sync::Arc<dyn StageAction>> {
    vec![std::sync::Arc::new(Noop), std::sync::Arc::new(Sleep)]
}

/// True when `name` is a built-in action.
pub fn is_builtin_action(name: &str) -> bool {
    builtin_actions().iter().any(|a| a.name() == name)
}
