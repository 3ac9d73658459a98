//! Job payloads. A job carries ids only; the handler loads the rows it needs, so a job that
//! waited in the queue always acts on the current state.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::queue::Job;
use crate::trace_context::TraceParent;

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
    /// The trace of whoever queued the job (W3C `traceparent`), so the attempt's spans join
    /// it. Jobs queued before this field existed decode with none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<TraceParent>,
}

impl RunStage {
    /// A job for `attempt` of a stage, to run as soon as possible, in the current trace.
    pub fn first(stage_id: Uuid, attempt: i32) -> Self {
        RunStage {
            stage_id,
            attempt,
            waits: 0,
            not_before_ms: None,
            traceparent: TraceParent::current(),
        }
    }
}

impl Job for RunStage {
    const NAME: &'static str = "run-stage";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_queued_before_the_trace_field_still_decode() {
        let old = r#"{"stage_id":"00000000-0000-0000-0000-000000000001","attempt":2,"waits":0}"#;
        let job: RunStage = serde_json::from_str(old).unwrap();
        assert_eq!(job.attempt, 2);
        assert_eq!(job.traceparent, None);
        let traced = RunStage {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .ok(),
            ..job
        };
        let text = serde_json::to_string(&traced).unwrap();
        assert!(text.contains(r#""traceparent":"00-4bf92f"#), "{text}");
        assert_eq!(serde_json::from_str::<RunStage>(&text).unwrap(), traced);
    }
}
