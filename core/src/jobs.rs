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
}

impl Job for RunStage {
    const NAME: &'static str = "run-stage";
}
