//! The executions that carry intents out. A deployment runs `parse → plan → one stage per
//! component (dependencies first; removal newest first) → verify`; a rollback runs one stage
//! per component in reverse, then `rolled-back`.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use super::IntentAction;
use super::plan::StoredPlan;
use crate::engine::pipeline::{Backoff, PipelineSpec, StageSpec};

/// Pipeline name of deployments.
pub const DEPLOY_PIPELINE: &str = "deploy";
/// Pipeline name of rollbacks.
pub const ROLLBACK_PIPELINE: &str = "rollback";

/// Stage actions of the intent pipelines.
pub mod actions {
    /// Records the parsed command (status `PARSING`).
    pub const PARSE: &str = "intent.parse";
    /// Checks the plan still renders (status `GENERATING`).
    pub const PLAN: &str = "intent.plan";
    /// Applies one component and waits until it is ready (status `DEPLOYING`).
    pub const APPLY: &str = "intent.apply";
    /// Removes one component's recorded objects.
    pub const REMOVE: &str = "intent.remove";
    /// Restarts one component's workload.
    pub const RESTART: &str = "intent.restart";
    /// Summarises the outcome.
    pub const VERIFY: &str = "intent.verify";
}

fn stage(name: String, action: &str, input: serde_json::Value, timeout: Duration) -> StageSpec {
    StageSpec {
        name,
        action: action.to_owned(),
        capability: None,
        input: Some(input),
        timeout_ms: Some(timeout.as_millis() as u64),
        max_attempts: Some(3),
        backoff: Some(Backoff {
            initial_ms: 1_000,
            max_ms: 15_000,
        }),
    }
}

/// Time a component stage may take: the readiness timeout plus time to pull, create and
/// remove.
fn component_timeout(ready_timeout: Duration) -> Duration {
    ready_timeout + Duration::from_secs(120)
}

/// The deployment pipeline for `action` over `plan`.
pub fn deploy_pipeline(
    action: IntentAction,
    plan: &StoredPlan,
    ready_timeout: Duration,
) -> PipelineSpec {
    let quick = Duration::from_secs(60);
    let slow = component_timeout(ready_timeout);
    let names = plan.component_names();
    let mut stages = vec![
        stage("parse".into(), actions::PARSE, json!({}), quick),
        stage("plan".into(), actions::PLAN, json!({}), quick),
    ];
    match action {
        IntentAction::Install | IntentAction::Update | IntentAction::Scale => {
            for name in &names {
                stages.push(stage(
                    format!("deploy-{name}"),
                    actions::APPLY,
                    json!({ "component": name }),
                    slow,
                ));
            }
        }
        IntentAction::Restart => {
            let root = plan.request.roots.first().cloned().unwrap_or_default();
            stages.push(stage(
                format!("restart-{root}"),
                actions::RESTART,
                json!({ "component": root }),
                slow,
            ));
        }
        IntentAction::Remove => {
            for name in names.iter().rev() {
                stages.push(stage(
                    format!("remove-{name}"),
                    actions::REMOVE,
                    json!({ "component": name, "removeVolumes": plan.remove_volumes }),
                    slow,
                ));
            }
        }
    }
    stages.push(stage("verify".into(), actions::VERIFY, json!({}), quick));
    PipelineSpec {
        name: DEPLOY_PIPELINE.into(),
        stages,
    }
}

/// The rollback pipeline of an intent that did `action` with `plan`. An install is undone
/// by removing what the intent created (volumes too), newest component first; any other
/// action by applying the previous deployment (`previous`) again.
pub fn rollback_pipeline(
    action: IntentAction,
    plan: &StoredPlan,
    previous: Option<(Uuid, &StoredPlan)>,
    ready_timeout: Duration,
) -> PipelineSpec {
    let slow = component_timeout(ready_timeout);
    let mut stages = Vec::new();
    match (action, previous) {
        (IntentAction::Install, _) | (_, None) => {
            for name in plan.component_names().iter().rev() {
                stages.push(stage(
                    format!("rollback-{name}"),
                    actions::REMOVE,
                    json!({ "component": name, "removeVolumes": true, "ownOnly": true }),
                    slow,
                ));
            }
        }
        (_, Some((previous_id, previous_plan))) => {
            for name in previous_plan.component_names() {
                stages.push(stage(
                    format!("restore-{name}"),
                    actions::APPLY,
                    json!({ "component": name, "fromIntent": previous_id }),
                    slow,
                ));
            }
        }
    }
    stages.push(stage(
        "rolled-back".into(),
        actions::VERIFY,
        json!({ "rollback": true }),
        Duration::from_secs(60),
    ));
    PipelineSpec {
        name: ROLLBACK_PIPELINE.into(),
        stages,
    }
}
