//! Pushing prompt versions to backends: the `prompt.sync` pipelines and their stage action.
//!
//! A single update runs pipeline `prompt.sync` with one `prompt.sync` stage; a bulk update
//! runs `prompt.bulk-sync` with one `prompt.sync` stage per backend. The stage writes the
//! whole version with `PUT /api/prompts`, retrying timeouts, connection errors and 5xx with
//! backoff. The version ends `APPLIED`, or `FAILED` with the backend's answer once the error
//! is permanent or the last attempt failed.
//!
//! The engine stops an execution at its first failed stage, so a bulk stage records a
//! backend's failure on the version and *succeeds*: the other backends are still synced, and
//! the execution's output lists every backend's outcome. A single sync fails its stage, so
//! the execution says why.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use orchestrator_entity::{
    ExecutionStatus, PromptVersionStatus, backends, executions, logs, prompt_versions,
};

use super::service::client_for;
use crate::context::CoreContext;
use crate::engine::action::{ActionContext, ActionError, ActionOutput, StageAction};
use crate::engine::pipeline::{Backoff, PipelineSpec, StageSpec};
use crate::error::CoreResult;

/// Pipeline of a single backend's prompt update, rollback or retry.
pub const SYNC_PIPELINE: &str = "prompt.sync";
/// Pipeline of a bulk prompt update: one sync stage per backend.
pub const BULK_SYNC_PIPELINE: &str = "prompt.bulk-sync";
/// The stage action that pushes one version to one backend.
pub const SYNC_ACTION: &str = "prompt.sync";
/// Attempts of one sync stage.
pub const SYNC_ATTEMPTS: u32 = 5;
/// Longest one sync stage attempt may take (each backend call is bounded far below it).
const SYNC_TIMEOUT_MS: u64 = 60_000;

/// Whether `pipeline` is one of the prompt sync pipelines.
pub fn is_sync_pipeline(pipeline: &str) -> bool {
    pipeline == SYNC_PIPELINE || pipeline == BULK_SYNC_PIPELINE
}

/// The pipeline pushing each `(backend id, version id)`: one stage for a single update
/// (`bulk` false), one stage per backend that records failures and goes on otherwise.
pub fn sync_pipeline(targets: &[(Uuid, Uuid)], bulk: bool) -> PipelineSpec {
    let stages = targets
        .iter()
        .map(|(backend_id, version_id)| StageSpec {
            name: if bulk {
                format!("sync-{backend_id}")
            } else {
                SYNC_ACTION.to_owned()
            },
            action: SYNC_ACTION.to_owned(),
            capability: None,
            input: Some(json!({
                "backendId": backend_id,
                "versionId": version_id,
                "recordFailure": bulk,
            })),
            timeout_ms: Some(SYNC_TIMEOUT_MS),
            max_attempts: Some(SYNC_ATTEMPTS),
            backoff: Some(Backoff {
                initial_ms: 500,
                max_ms: 5_000,
            }),
        })
        .collect();
    PipelineSpec {
        name: if bulk {
            BULK_SYNC_PIPELINE
        } else {
            SYNC_PIPELINE
        }
        .to_owned(),
        stages,
    }
}

/// The prompt stage actions.
pub fn prompt_actions() -> Vec<Arc<dyn StageAction>> {
    vec![Arc::new(SyncStage)]
}

/// Settles the versions an ended sync execution left `PENDING` (it was cancelled before
/// their stage ran, or a stage ran out of time): they are `FAILED`, saying so. Called for
/// every published execution change of a sync pipeline.
pub async fn follow_execution(ctx: &CoreContext, execution: &executions::Model) {
    let status = match execution.status {
        ExecutionStatus::Queued | ExecutionStatus::Running => return,
        ExecutionStatus::Succeeded => "SUCCEEDED",
        ExecutionStatus::Failed => "FAILED",
        ExecutionStatus::Cancelled => "CANCELLED",
    };
    let pending = prompt_versions::Entity::find()
        .filter(prompt_versions::Column::ExecutionId.eq(execution.id))
        .filter(prompt_versions::Column::Status.eq(PromptVersionStatus::Pending))
        .all(&ctx.db)
        .await;
    let pending = match pending {
        Ok(rows) => rows,
        Err(err) => {
            tracing::warn!(execution_id = %execution.id, error = %err, "cannot read the versions of a sync execution");
            return;
        }
    };
    let why = format!("the sync execution ended {status} before this version was applied");
    for version in pending {
        if let Err(err) = settle(ctx, version.id, PromptVersionStatus::Failed, Some(&why)).await {
            tracing::warn!(version_id = %version.id, error = %err, "cannot settle a prompt version");
        }
    }
}

/// Moves a `PENDING` version to `status` (`applied_at` now when applied), publishes it and
/// returns it; `None` when it was not pending any more.
pub(crate) async fn settle(
    ctx: &CoreContext,
    version_id: Uuid,
    status: PromptVersionStatus,
    error: Option<&str>,
) -> CoreResult<Option<prompt_versions::Model>> {
    let applied_at = (status == PromptVersionStatus::Applied).then(Utc::now);
    let changed = prompt_versions::Entity::update_many()
        .col_expr(prompt_versions::Column::Status, Expr::value(status))
        .col_expr(
            prompt_versions::Column::Error,
            Expr::value(error.map(str::to_owned)),
        )
        .col_expr(prompt_versions::Column::AppliedAt, Expr::value(applied_at))
        .filter(prompt_versions::Column::Id.eq(version_id))
        .filter(prompt_versions::Column::Status.eq(PromptVersionStatus::Pending))
        .exec(&ctx.db)
        .await?
        .rows_affected
        > 0;
    if !changed {
        return Ok(None);
    }
    let row = prompt_versions::Entity::find_by_id(version_id)
        .one(&ctx.db)
        .await?;
    if let Some(row) = &row {
        crate::events::publish_prompt_version_row(ctx, row).await;
    }
    Ok(row)
}

/// What a sync stage receives: its static input over the previous stage's output.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyncInput {
    backend_id: Uuid,
    version_id: Uuid,
    /// Bulk stages: a failure is recorded on the version and the stage succeeds.
    #[serde(default)]
    record_failure: bool,
    /// Outcomes of the stages before this one (bulk).
    #[serde(default)]
    results: Vec<Value>,
}

/// Pushes one prompt version to one backend.
#[derive(Debug)]
struct SyncStage;

fn internal(err: impl std::fmt::Display) -> ActionError {
    ActionError::Retryable(err.to_string())
}

/// Appends a log line about the stage and publishes it.
async fn log(cx: &ActionContext, level: &str, message: &str) {
    let row = logs::ActiveModel {
        project_id: Set(cx.project_id),
        execution_id: Set(Some(cx.execution_id)),
        stage_id: Set(Some(cx.stage_id)),
        intent_id: Set(None),
        level: Set(level.to_owned()),
        message: Set(message.to_owned()),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    match row.insert(&cx.core.db).await {
        Ok(row) => crate::events::publish_log(&cx.core, &row).await,
        Err(err) => tracing::warn!(error = %err, "cannot write a prompt sync log line"),
    }
}

/// The stage's output: the earlier outcomes plus this one.
fn outcome(input: &SyncInput, version: &prompt_versions::Model, error: Option<&str>) -> Value {
    let mut results = input.results.clone();
    results.push(json!({
        "backendId": version.backend_id,
        "versionId": version.id,
        "version": version.version,
        "status": if error.is_some() { "FAILED" } else { "APPLIED" },
        "error": error,
    }));
    json!({ "results": results })
}

impl SyncStage {
    /// A final failure: the version is `FAILED` with `why`; the stage fails, or (bulk)
    /// succeeds with the failure in its output.
    async fn give_up(
        &self,
        cx: &ActionContext,
        input: &SyncInput,
        version: &prompt_versions::Model,
        why: &str,
    ) -> Result<ActionOutput, ActionError> {
        settle(&cx.core, version.id, PromptVersionStatus::Failed, Some(why))
            .await
            .map_err(internal)?;
        log(
            cx,
            "ERROR",
            &format!(
                "prompt version {} of backend {} failed: {why}",
                version.version, version.backend_id
            ),
        )
        .await;
        if input.record_failure {
            Ok(ActionOutput {
                output: outcome(input, version, Some(why)),
                ..Default::default()
            })
        } else {
            Err(ActionError::Permanent(why.to_owned()))
        }
    }

    async fn push(
        &self,
        cx: &ActionContext,
        input: &SyncInput,
        version: &prompt_versions::Model,
        backend: &backends::Model,
    ) -> Result<ActionOutput, ActionError> {
        if let Some(newer) = prompt_versions::Entity::find()
            .filter(prompt_versions::Column::BackendId.eq(backend.id))
            .filter(prompt_versions::Column::Status.eq(PromptVersionStatus::Applied))
            .filter(prompt_versions::Column::Version.gt(version.version))
            .order_by_desc(prompt_versions::Column::Version)
            .one(&cx.core.db)
            .await
            .map_err(internal)?
        {
            let why = format!("superseded by version {}, applied first", newer.version);
            return self.give_up(cx, input, version, &why).await;
        }
        let client = match client_for(&cx.core, backend).await {
            Ok(client) => client,
            Err(err) => return self.give_up(cx, input, version, &err.to_string()).await,
        };
        let values: Map<String, Value> = version.prompts.as_object().cloned().unwrap_or_default();
        log(
            cx,
            "INFO",
            &format!(
                "pushing prompt version {} to backend {} (attempt {}/{})",
                version.version, backend.name, cx.attempt, cx.max_attempts
            ),
        )
        .await;
        match client.put_prompts(&values).await {
            Ok(answer) => {
                settle(&cx.core, version.id, PromptVersionStatus::Applied, None)
                    .await
                    .map_err(internal)?;
                super::monitor::clear_drift(&cx.core, backend.id, version.version)
                    .await
                    .map_err(internal)?;
                log(
                    cx,
                    "INFO",
                    &format!(
                        "backend {} applied prompt version {} (updated: {})",
                        backend.name,
                        version.version,
                        answer.updated_prompts.join(", ")
                    ),
                )
                .await;
                Ok(ActionOutput {
                    output: outcome(input, version, None),
                    ..Default::default()
                })
            }
            Err(err) if err.is_retryable() && cx.attempt < cx.max_attempts => {
                log(cx, "WARN", &format!("{err}; trying again")).await;
                Err(ActionError::Retryable(err.to_string()))
            }
            Err(err) => self.give_up(cx, input, version, &err.to_string()).await,
        }
    }
}

#[async_trait]
impl StageAction for SyncStage {
    fn name(&self) -> &'static str {
        SYNC_ACTION
    }

    #[tracing::instrument(skip_all, fields(execution_id = %cx.execution_id, stage = %cx.stage_name))]
    async fn run(&self, cx: &ActionContext, input: Value) -> Result<ActionOutput, ActionError> {
        let input: SyncInput = serde_json::from_value(input)
            .map_err(|e| ActionError::Permanent(format!("prompt.sync: bad input: {e}")))?;
        let version = prompt_versions::Entity::find_by_id(input.version_id)
            .one(&cx.core.db)
            .await
            .map_err(internal)?
            .filter(|v| v.backend_id == input.backend_id && v.project_id == cx.project_id)
            .ok_or_else(|| {
                ActionError::Permanent(format!(
                    "prompt version {} of backend {} no longer exists",
                    input.version_id, input.backend_id
                ))
            })?;
        match version.status {
            // A job delivered again after the version settled: report what happened.
            PromptVersionStatus::Applied => {
                return Ok(ActionOutput {
                    output: outcome(&input, &version, None),
                    ..Default::default()
                });
            }
            PromptVersionStatus::Failed => {
                let why = version.error.clone().unwrap_or_else(|| "failed".into());
                let why = format!(
                    "version {} already failed ({why}); update or roll back to push a new version",
                    version.version
                );
                return if input.record_failure {
                    Ok(ActionOutput {
                        output: outcome(&input, &version, Some(&why)),
                        ..Default::default()
                    })
                } else {
                    Err(ActionError::Permanent(why))
                };
            }
            PromptVersionStatus::Pending => {}
        }
        let backend = backends::Entity::find_by_id(input.backend_id)
            .one(&cx.core.db)
            .await
            .map_err(internal)?;
        match backend {
            Some(backend) if super::prompt_service::manageable(&backend).is_ok() => {
                self.push(cx, &input, &version, &backend).await
            }
            Some(backend) => {
                let why = super::prompt_service::manageable(&backend)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                self.give_up(cx, &input, &version, &why).await
            }
            None => {
                self.give_up(cx, &input, &version, "the backend no longer exists")
                    .await
            }
        }
    }

    /// A push is one short request: it finishes, so the version's status tells the truth.
    fn stops_on_cancel(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_pipeline_has_one_recording_stage_per_backend() {
        let targets = [
            (Uuid::new_v4(), Uuid::new_v4()),
            (Uuid::new_v4(), Uuid::new_v4()),
        ];
        let bulk = sync_pipeline(&targets, true);
        assert_eq!(bulk.name, BULK_SYNC_PIPELINE);
        assert_eq!(bulk.stages.len(), 2);
        let names: std::collections::HashSet<&str> =
            bulk.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 2, "stage names are unique");
        for (stage, (backend_id, version_id)) in bulk.stages.iter().zip(targets) {
            assert!(crate::engine::pipeline::is_valid_name(&stage.name));
            assert_eq!(stage.action, SYNC_ACTION);
            assert_eq!(stage.max_attempts, Some(SYNC_ATTEMPTS));
            let input: SyncInput = serde_json::from_value(stage.input.clone().unwrap()).unwrap();
            assert_eq!(
                (input.backend_id, input.version_id),
                (backend_id, version_id)
            );
            assert!(input.record_failure);
        }
        let single = sync_pipeline(&targets[..1], false);
        assert_eq!(single.name, SYNC_PIPELINE);
        assert_eq!(single.stages[0].name, SYNC_ACTION);
        assert_eq!(
            single.stages[0].input.as_ref().unwrap()["recordFailure"],
            false
        );
        assert!(is_sync_pipeline(SYNC_PIPELINE) && is_sync_pipeline(BULK_SYNC_PIPELINE));
        assert!(!is_sync_pipeline("deploy"));
    }

    #[test]
    fn outcomes_accumulate_from_stage_to_stage() {
        let version = prompt_versions::Model {
            id: Uuid::new_v4(),
            project_id: Uuid::new_v4(),
            backend_id: Uuid::new_v4(),
            version: 3,
            prompts: json!({}),
            message: String::new(),
            author: "a".into(),
            status: PromptVersionStatus::Pending,
            error: None,
            execution_id: None,
            created_at: Utc::now(),
            applied_at: None,
        };
        let first: SyncInput = serde_json::from_value(json!({
            "backendId": version.backend_id, "versionId": version.id
        }))
        .unwrap();
        let out = outcome(&first, &version, Some("HTTP 503"));
        let mut next = out.as_object().unwrap().clone();
        next.insert("backendId".into(), json!(version.backend_id));
        next.insert("versionId".into(), json!(version.id));
        let second: SyncInput = serde_json::from_value(Value::Object(next)).unwrap();
        let out = outcome(&second, &version, None);
        let results = out["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["status"], "FAILED");
        assert_eq!(results[0]["error"], "HTTP 503");
        assert_eq!(results[1]["status"], "APPLIED");
        assert_eq!(results[1]["version"], 3);
    }
}
