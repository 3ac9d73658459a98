//! Live status: typed events for every status change, published after the change is
//! committed, delivered to subscribers in this process and — through Redis pub/sub when
//! `REDIS_URL` is set — in every other process.
//!
//! An event carries the committed row as JSON, so a subscriber can answer without a database
//! read, and the row's per-entity `sequence`, so it can drop duplicates and notice gaps.

mod bus;
mod publish;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use bus::{BusStats, EventBus};
pub use publish::{
    publish_backend, publish_backend_row, publish_execution, publish_execution_row, publish_intent,
    publish_intent_row, publish_log, publish_prompt_version_row, publish_stage, publish_stage_row,
    publish_worker,
};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    ExecutionUpdated,
    StageUpdated,
    LogAppended,
    IntentUpdated,
    BackendUpdated,
    PromptVersionUpdated,
    WorkerUpdated,
}

/// One committed change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    /// The project the row belongs to; subscribers filter on it.
    pub project_id: Uuid,
    /// The changed row.
    pub entity_id: Uuid,
    /// The execution (or intent, backend) the row belongs to, for child rows.
    pub parent_id: Option<Uuid>,
    /// Increases with every change of the entity.
    pub sequence: i64,
    /// The row as committed.
    pub payload: serde_json::Value,
}
