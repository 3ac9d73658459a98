//! Steering executions from the API: cancel a running one, retry a failed one.
//!
//! Cancel is immediate for everything that is not running: waiting stages become
//! `CANCELLED` in the same transaction, and an execution with no running stage ends
//! `CANCELLED` at once. A running stage is stopped by the worker process running it, which
//! watches `cancel_requested`, tells a remote worker (`POST /api/cancel`) and then ends the
//! execution.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use orchestrator_entity::{ExecutionStatus, Role, StageStatus, executions, stages};

use crate::auth::Identity;
use crate::context::CoreContext;
use crate::engine::lifecycle::{
    ACTIVE_STAGE, append_log, close_waiting_stages, finish_execution, lock_execution,
};
use crate::engine::pipeline::{DEFAULT_STAGE_ATTEMPTS, StageSpec};
use crate::error::{CoreError, CoreResult};
use crate::jobs::RunStage;
use crate::queue::PushOptions;

/// The execution with `id` if the caller holds `role` in its project; `NOT_FOUND` otherwise.
pub async fn execution_for(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
    role: Role,
) -> CoreResult<executions::Model> {
    let not_found = || CoreError::NotFound {
        entity: "execution",
    };
    let execution = executions::Entity::find_by_id(id)
        .one(&ctx.db)
        .await?
        .ok_or_else(not_found)?;
    match crate::projects::get_authorized(ctx, who, execution.project_id, role).await {
        Ok(_) => Ok(execution),
        Err(CoreError::NotFound { .. }) => Err(not_found()),
        Err(other) => Err(other),
    }
}

/// Cancels an execution (operators); see the module doc. Cancelling a cancelled execution
/// changes nothing; a succeeded or failed one is a `CONFLICT`.
#[tracing::instrument(skip_all, fields(execution_id = %id))]
pub async fn cancel_execution(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
) -> CoreResult<executions::Model> {
    execution_for(ctx, who, id, Role::Operator).await?;
    let txn = crate::db::begin_write(&ctx.db).await?;
    let execution = lock_execution(&txn, id).await?.ok_or(CoreError::NotFound {
        entity: "execution",
    })?;
    match execution.status {
        ExecutionStatus::Cancelled => return Ok(execution),
        ExecutionStatus::Succeeded | ExecutionStatus::Failed => {
            return Err(CoreError::Conflict(format!(
                "the execution already ended {:?}; only queued or running executions can be cancelled",
                execution.status
            )));
        }
        ExecutionStatus::Queued | ExecutionStatus::Running => {}
    }
    executions::Entity::update_many()
        .col_expr(executions::Column::CancelRequested, Expr::value(true))
        .col_expr(executions::Column::UpdatedAt, Expr::value(Utc::now()))
        .col_expr(
            executions::Column::Sequence,
            Expr::col(executions::Column::Sequence).add(1),
        )
        .filter(executions::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    close_waiting_stages(&txn, id, StageStatus::Cancelled).await?;
    let running = stages::Entity::find()
        .filter(stages::Column::ExecutionId.eq(id))
        .filter(stages::Column::Status.is_in(ACTIVE_STAGE))
        .count(&txn)
        .await?;
    let message = format!("cancel requested by {}", who.subject);
    let mut lines = vec![append_log(&txn, execution.project_id, id, None, "WARN", &message).await?];
    if running == 0 {
        finish_execution(&txn, &execution, ExecutionStatus::Cancelled, None, None).await?;
        lines.push(
            append_log(
                &txn,
                execution.project_id,
                id,
                None,
                "INFO",
                "execution cancelled",
            )
            .await?,
        );
    }
    txn.commit().await?;
    crate::events::publish_execution(ctx, id).await;
    crate::events::publish_logs(ctx, &lines).await;
    execution_for(ctx, who, id, Role::Viewer).await
}

/// Re-runs a failed execution from its failed stage (operators). Stages that succeeded keep
/// their results; the failed stage starts a new attempt (a new `Idempotency-Key`) with a
/// fresh attempt budget, and the stages after it run again in order.
#[tracing::instrument(skip_all, fields(execution_id = %id))]
pub async fn retry_execution(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
) -> CoreResult<executions::Model> {
    execution_for(ctx, who, id, Role::Operator).await?;
    let now = Utc::now();
    let txn = crate::db::begin_write(&ctx.db).await?;
    let execution = lock_execution(&txn, id).await?.ok_or(CoreError::NotFound {
        entity: "execution",
    })?;
    if execution.status != ExecutionStatus::Failed {
        return Err(CoreError::Conflict(format!(
            "only failed executions can be retried; this one is {:?}",
            execution.status
        )));
    }
    let failed = stages::Entity::find()
        .filter(stages::Column::ExecutionId.eq(id))
        .filter(stages::Column::Status.eq(StageStatus::Failed))
        .order_by_asc(stages::Column::Position)
        .one(&txn)
        .await?
        .ok_or_else(|| CoreError::Conflict("the execution has no failed stage to retry".into()))?;
    let budget = serde_json::from_value::<StageSpec>(failed.definition.clone())
        .ok()
        .and_then(|s| s.max_attempts)
        .unwrap_or(DEFAULT_STAGE_ATTEMPTS) as i32;
    let attempt = failed.attempt + 1;
    stages::Entity::update_many()
        .col_expr(stages::Column::Status, Expr::value(StageStatus::Pending))
        .col_expr(stages::Column::Attempt, Expr::value(attempt))
        .col_expr(
            stages::Column::MaxAttempts,
            Expr::value(attempt + budget - 1),
        )
        .col_expr(stages::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(
            stages::Column::FinishedAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .col_expr(
            stages::Column::NextAttemptAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .col_expr(
            stages::Column::ClaimedByJob,
            Expr::value(Option::<String>::None),
        )
        .col_expr(stages::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            stages::Column::Sequence,
            Expr::col(stages::Column::Sequence).add(1),
        )
        .filter(stages::Column::Id.eq(failed.id))
        .exec(&txn)
        .await?;
    stages::Entity::update_many()
        .col_expr(stages::Column::Status, Expr::value(StageStatus::Pending))
        .col_expr(stages::Column::Attempt, Expr::value(0))
        .col_expr(stages::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            stages::Column::Sequence,
            Expr::col(stages::Column::Sequence).add(1),
        )
        .filter(stages::Column::ExecutionId.eq(id))
        .filter(stages::Column::Position.gt(failed.position))
        .filter(stages::Column::Status.eq(StageStatus::Skipped))
        .exec(&txn)
        .await?;
    executions::Entity::update_many()
        .col_expr(
            executions::Column::Status,
            Expr::value(ExecutionStatus::Running),
        )
        .col_expr(
            executions::Column::Error,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            executions::Column::FinishedAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .col_expr(
            executions::Column::DurationMs,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(executions::Column::CancelRequested, Expr::value(false))
        .col_expr(executions::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            executions::Column::Sequence,
            Expr::col(executions::Column::Sequence).add(1),
        )
        .filter(executions::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    let message = format!(
        "retry requested by {}: stage {} runs again (attempt {attempt})",
        who.subject, failed.name
    );
    let line = append_log(
        &txn,
        execution.project_id,
        id,
        Some(failed.id),
        "INFO",
        &message,
    )
    .await?;
    txn.commit().await?;
    crate::events::publish_stage(ctx, failed.id).await;
    crate::events::publish_log(ctx, &line).await;
    // The state this call made, read before the job can run and move it on.
    let retried = execution_for(ctx, who, id, Role::Viewer).await?;
    let pushed = ctx
        .queue
        .push(
            RunStage::first(failed.id, attempt),
            PushOptions {
                priority: execution.priority,
                delay: None,
            },
        )
        .await;
    if let Err(err) = pushed {
        // Never leave a running execution with nothing queued: it fails again, retryable.
        let txn = crate::db::begin_write(&ctx.db).await?;
        if let Some(execution) = lock_execution(&txn, id).await? {
            stages::Entity::update_many()
                .col_expr(stages::Column::Status, Expr::value(StageStatus::Failed))
                .filter(stages::Column::Id.eq(failed.id))
                .exec(&txn)
                .await?;
            close_waiting_stages(&txn, id, StageStatus::Skipped).await?;
            let error = Some("the retry could not be enqueued; retry again".to_string());
            finish_execution(&txn, &execution, ExecutionStatus::Failed, error, None).await?;
        }
        txn.commit().await?;
        crate::events::publish_execution(ctx, id).await;
        return Err(CoreError::Internal(err));
    }
    Ok(retried)
}
