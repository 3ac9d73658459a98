//! Runs one attempt of one stage: claim it, run its action, record the outcome, and queue
//! what comes next (the next stage, a retry with backoff, or nothing).
//!
//! Every status change is committed before the next job is pushed. A job whose stage has
//! moved on (another attempt, a terminal status) is a no-op, so re-deliveries are harmless.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use serde_json::json;

use orchestrator_core::CoreContext;
use orchestrator_core::engine::action::{ActionError, StageAction, builtin_actions};
use orchestrator_core::engine::pipeline::{StageSpec, merge_input};
use orchestrator_core::engine::service::{append_log_in, queue_priority};
use orchestrator_core::jobs::RunStage;
use orchestrator_core::queue::PushOptions;
use orchestrator_entity::{ExecutionStatus, StageStatus, executions, stages};

use crate::backoff::delay_before;

/// Time a stage may run when its definition sets no `timeoutMs`.
const DEFAULT_STAGE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Runs stages; one per worker process, shared by its concurrent jobs.
pub struct StageRunner {
    core: CoreContext,
    actions: HashMap<&'static str, Arc<dyn StageAction>>,
    worker_name: String,
}

/// What a job should do after the stage was claimed and run.
enum Outcome {
    Succeeded(orchestrator_core::engine::action::ActionOutput),
    Retry(String),
    Fail(String),
}

impl StageRunner {
    /// A runner with the built-in actions.
    pub fn new(core: CoreContext, worker_name: String) -> Self {
        let actions = builtin_actions()
            .into_iter()
            .map(|a| (a.name(), a))
            .collect();
        StageRunner {
            core,
            actions,
            worker_name,
        }
    }

    /// Runs the job; see the module doc.
    #[tracing::instrument(skip_all, fields(stage_id = %job.stage_id, attempt = job.attempt))]
    pub async fn run(&self, job: RunStage) -> anyhow::Result<()> {
        let db = &self.core.db;
        let Some(stage) = stages::Entity::find_by_id(job.stage_id)
            .one(db)
            .await
            .context("loading the stage")?
        else {
            tracing::warn!("job for a stage that no longer exists");
            return Ok(());
        };
        let execution = executions::Entity::find_by_id(stage.execution_id)
            .one(db)
            .await
            .context("loading the execution")?
            .context("stage without execution")?;
        if stage.attempt != job.attempt {
            tracing::debug!(current = stage.attempt, "stale job: the stage moved on");
            return Ok(());
        }
        if stage.status == StageStatus::Succeeded {
            // Re-delivered after the stage finished but before the next stage was queued.
            return self.requeue_successor(&execution, &stage).await;
        }
        if stage.status.is_terminal() {
            return Ok(());
        }
        if execution.status.is_terminal() || execution.cancel_requested {
            return self.cancel_rest(&execution).await;
        }

        let started = Instant::now();
        self.mark_running(&execution, &stage).await?;
        let spec: Option<StageSpec> = serde_json::from_value(stage.definition.clone()).ok();
        let timeout = spec
            .as_ref()
            .and_then(|s| s.timeout_ms)
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_STAGE_TIMEOUT);
        let input = stage.input.clone().unwrap_or_else(|| json!({}));
        let outcome = match self.actions.get(stage.action.as_str()) {
            None => Outcome::Fail(format!("no action {:?} in this worker", stage.action)),
            Some(action) => match tokio::time::timeout(timeout, action.run(input)).await {
                Ok(Ok(output)) => Outcome::Succeeded(output),
                Ok(Err(ActionError::Permanent(msg))) => Outcome::Fail(msg),
                Ok(Err(ActionError::Retryable(msg))) => Outcome::Retry(msg),
                Err(_) => Outcome::Retry(format!("timed out after {} ms", timeout.as_millis())),
            },
        };
        let elapsed_ms = started.elapsed().as_millis() as i64;
        match outcome {
            Outcome::Succeeded(output) => self.succeed(execution, stage, output, elapsed_ms).await,
            Outcome::Retry(msg) if stage.attempt < stage.max_attempts => {
                self.retry(execution, stage, spec, msg).await
            }
            Outcome::Retry(msg) | Outcome::Fail(msg) => {
                self.fail(execution, stage, msg, elapsed_ms).await
            }
        }
    }

    async fn mark_running(
        &self,
        execution: &executions::Model,
        stage: &stages::Model,
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        let txn = orchestrator_core::db::begin_write(&self.core.db).await?;
        let mut s: stages::ActiveModel = stage.clone().into();
        s.status = Set(StageStatus::Running);
        s.started_at = Set(Some(stage.started_at.unwrap_or(now)));
        s.sequence = Set(stage.sequence + 1);
        s.updated_at = Set(now);
        s.update(&txn).await?;
        if execution.status == ExecutionStatus::Queued {
            let mut e: executions::ActiveModel = execution.clone().into();
            e.status = Set(ExecutionStatus::Running);
            e.started_at = Set(Some(now));
            e.sequence = Set(execution.sequence + 1);
            e.updated_at = Set(now);
            e.update(&txn).await?;
        }
        let msg = format!(
            "stage {} started (attempt {}/{}) on {}",
            stage.name, stage.attempt, stage.max_attempts, self.worker_name
        );
        append_log_in(
            &txn,
            stage.project_id,
            stage.execution_id,
            Some(stage.id),
            "INFO",
            &msg,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn next_stage<C: ConnectionTrait>(
        conn: &C,
        stage: &stages::Model,
    ) -> anyhow::Result<Option<stages::Model>> {
        Ok(stages::Entity::find()
            .filter(stages::Column::ExecutionId.eq(stage.execution_id))
            .filter(stages::Column::Position.gt(stage.position))
            .order_by_asc(stages::Column::Position)
            .one(conn)
            .await?)
    }

    async fn succeed(
        &self,
        execution: executions::Model,
        stage: stages::Model,
        output: orchestrator_core::engine::action::ActionOutput,
        elapsed_ms: i64,
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        let txn = orchestrator_core::db::begin_write(&self.core.db).await?;
        // Re-read inside the write lock: a cancel may have landed while the action ran.
        let execution = reload_execution(&txn, execution.id).await?;
        let mut s: stages::ActiveModel = stage.clone().into();
        s.status = Set(StageStatus::Succeeded);
        s.output = Set(Some(output.output.clone()));
        s.error = Set(None);
        s.tokens_used = Set(output.tokens_used);
        s.cost_usd = Set(output.cost_usd);
        s.duration_ms = Set(Some(elapsed_ms));
        s.finished_at = Set(Some(now));
        s.sequence = Set(stage.sequence + 2);
        s.updated_at = Set(now);
        s.update(&txn).await?;

        let mut e: executions::ActiveModel = execution.clone().into();
        e.stages_completed = Set(execution.stages_completed + 1);
        e.tokens_used = Set(execution.tokens_used + output.tokens_used);
        e.cost_usd = Set(execution.cost_usd + output.cost_usd);
        e.sequence = Set(execution.sequence + 1);
        e.updated_at = Set(now);
        append_log_in(
            &txn,
            stage.project_id,
            stage.execution_id,
            Some(stage.id),
            "INFO",
            &format!("stage {} succeeded in {elapsed_ms} ms", stage.name),
        )
        .await?;

        let next = Self::next_stage(&txn, &stage).await?;
        let mut push = None;
        match next {
            Some(next) if !execution.cancel_requested => {
                let spec: Option<StageSpec> = serde_json::from_value(next.definition.clone()).ok();
                let mut n: stages::ActiveModel = next.clone().into();
                n.input = Set(Some(merge_input(
                    &output.output,
                    spec.as_ref().and_then(|s| s.input.as_ref()),
                )));
                n.attempt = Set(1);
                n.sequence = Set(next.sequence + 1);
                n.updated_at = Set(now);
                n.update(&txn).await?;
                push = Some(next.id);
            }
            Some(_) => {
                finish_execution(&txn, &mut e, ExecutionStatus::Cancelled, None, now);
                skip_pending(&txn, &execution, StageStatus::Cancelled).await?;
            }
            None => {
                e.output = Set(Some(output.output));
                finish_execution(&txn, &mut e, ExecutionStatus::Succeeded, None, now);
                append_log_in(
                    &txn,
                    stage.project_id,
                    stage.execution_id,
                    None,
                    "INFO",
                    "execution succeeded",
                )
                .await?;
            }
        }
        e.update(&txn).await?;
        txn.commit().await?;
        if let Some(next_id) = push {
            self.push_stage(next_id, 1, &execution, None).await?;
        }
        Ok(())
    }

    async fn retry(
        &self,
        execution: executions::Model,
        stage: stages::Model,
        spec: Option<StageSpec>,
        message: String,
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        let next_attempt = stage.attempt + 1;
        let backoff = spec.and_then(|s| s.backoff).unwrap_or_default();
        let delay = delay_before(&backoff, next_attempt);
        let txn = orchestrator_core::db::begin_write(&self.core.db).await?;
        let mut s: stages::ActiveModel = stage.clone().into();
        s.status = Set(StageStatus::Retrying);
        s.attempt = Set(next_attempt);
        s.error = Set(Some(message.clone()));
        s.next_attempt_at = Set(Some(now + chrono::Duration::from_std(delay)?));
        s.sequence = Set(stage.sequence + 1);
        s.updated_at = Set(now);
        s.update(&txn).await?;
        append_log_in(
            &txn,
            stage.project_id,
            stage.execution_id,
            Some(stage.id),
            "WARN",
            &format!(
                "stage {} attempt {} failed: {message}; retrying in {} ms",
                stage.name,
                stage.attempt,
                delay.as_millis()
            ),
        )
        .await?;
        txn.commit().await?;
        self.push_stage(stage.id, next_attempt, &execution, Some(delay))
            .await
    }

    async fn fail(
        &self,
        execution: executions::Model,
        stage: stages::Model,
        message: String,
        elapsed_ms: i64,
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        let txn = orchestrator_core::db::begin_write(&self.core.db).await?;
        let execution = reload_execution(&txn, execution.id).await?;
        let mut s: stages::ActiveModel = stage.clone().into();
        s.status = Set(StageStatus::Failed);
        s.error = Set(Some(message.clone()));
        s.duration_ms = Set(Some(elapsed_ms));
        s.finished_at = Set(Some(now));
        s.sequence = Set(stage.sequence + 1);
        s.updated_at = Set(now);
        s.update(&txn).await?;
        skip_pending(&txn, &execution, StageStatus::Skipped).await?;
        let mut e: executions::ActiveModel = execution.clone().into();
        let error = format!("stage {} failed: {message}", stage.name);
        finish_execution(
            &txn,
            &mut e,
            ExecutionStatus::Failed,
            Some(error.clone()),
            now,
        );
        e.sequence = Set(execution.sequence + 1);
        e.update(&txn).await?;
        append_log_in(
            &txn,
            stage.project_id,
            stage.execution_id,
            Some(stage.id),
            "ERROR",
            &error,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn cancel_rest(&self, execution: &executions::Model) -> anyhow::Result<()> {
        let now = Utc::now();
        let txn = orchestrator_core::db::begin_write(&self.core.db).await?;
        let execution = reload_execution(&txn, execution.id).await?;
        skip_pending(&txn, &execution, StageStatus::Cancelled).await?;
        if !execution.status.is_terminal() {
            let mut e: executions::ActiveModel = execution.clone().into();
            finish_execution(&txn, &mut e, ExecutionStatus::Cancelled, None, now);
            e.sequence = Set(execution.sequence + 1);
            e.update(&txn).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    async fn requeue_successor(
        &self,
        execution: &executions::Model,
        stage: &stages::Model,
    ) -> anyhow::Result<()> {
        if let Some(next) = Self::next_stage(&self.core.db, stage).await?
            && next.status == StageStatus::Pending
            && next.attempt == 1
            && !execution.status.is_terminal()
        {
            self.push_stage(next.id, 1, execution, None).await?;
        }
        Ok(())
    }

    async fn push_stage(
        &self,
        stage_id: uuid::Uuid,
        attempt: i32,
        execution: &executions::Model,
        delay: Option<Duration>,
    ) -> anyhow::Result<()> {
        self.core
            .queue
            .push(
                RunStage { stage_id, attempt },
                PushOptions {
                    priority: queue_priority(execution.priority),
                    delay,
                },
            )
            .await
    }
}

async fn reload_execution(
    txn: &DatabaseTransaction,
    id: uuid::Uuid,
) -> anyhow::Result<executions::Model> {
    executions::Entity::find_by_id(id)
        .one(txn)
        .await?
        .context("execution vanished")
}

fn finish_execution(
    _txn: &DatabaseTransaction,
    e: &mut executions::ActiveModel,
    status: ExecutionStatus,
    error: Option<String>,
    now: chrono::DateTime<Utc>,
) {
    let started = match &e.started_at {
        sea_orm::ActiveValue::Set(Some(t)) | sea_orm::ActiveValue::Unchanged(Some(t)) => Some(*t),
        _ => None,
    };
    e.status = Set(status);
    e.error = Set(error);
    e.finished_at = Set(Some(now));
    e.duration_ms = Set(started.map(|t| (now - t).num_milliseconds()));
    e.updated_at = Set(now);
}

/// Moves every not-yet-started stage of the execution to `status`.
async fn skip_pending(
    txn: &DatabaseTransaction,
    execution: &executions::Model,
    status: StageStatus,
) -> anyhow::Result<()> {
    stages::Entity::update_many()
        .col_expr(
            stages::Column::Status,
            sea_orm::sea_query::Expr::value(status),
        )
        .col_expr(
            stages::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(stages::Column::ExecutionId.eq(execution.id))
        .filter(stages::Column::Status.is_in([StageStatus::Pending, StageStatus::Retrying]))
        .exec(txn)
        .await?;
    Ok(())
}

/// Runs one job with a fresh runner (for tests and tools).
pub async fn run_stage(core: CoreContext, job: RunStage) -> anyhow::Result<()> {
    StageRunner::new(core, "inline".into()).run(job).await
}
