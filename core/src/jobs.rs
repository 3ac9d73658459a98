//! Job payloads. A job carries ids only; the handler loads the rows it needs, so a job that
//! waited in the queue always acts on the current state.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::queue::Job;

/// Run one attempt of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStage {
    pub stage_id: Uuid,
    /// The stage attempt this job was pushed for; a stale job (the stage moved on) is a no-op.
    pub attempt: i32,
    /// How many times this attempt already waited for a free remote worker.
    #[serde(default)]
    pub waits: u32,
    /// Do not start before this instant (milliseconds since the epoch). Queues schedule in
    /// whole seconds; the handler waits out the rest, so backoff delays stay exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_ms: Option<i64>,
}

impl RunStage {
    /// A job for `attempt` of a stage, to run as soon as possible.
    pub fn first(stage_id: Uuid, attempt: i32) -> Self {
        RunStage {
            stage_id,
            attempt,
            waits: 0,
            not_before_ms: None,
        }
    }
}

impl Job for RunStage {
    const NAME: &'static str = "run-stage";
}
