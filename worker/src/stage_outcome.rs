//! The end of an attempt: success (and what it leads to), a scheduled retry, a permanent
//! failure, or a cancel. Each is one transaction that locks the execution row first, gives
//! back the remote worker slot the stage held, and changes the stage only if this job still
//! owns the attempt.

use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use orchestrator_core::db::begin_write;
use orchestrator_core::engine::action::ActionOutput;
use orchestrator_core::engine::lifecycle::{
    ACTIVE_STAGE, append_log, close_waiting_stages, finish_execution, lock_execution, release_slot,
};
use orchestrator_core::engine::pipeline::{StageSpec, merge_input};
use orchestrator_entity::{ExecutionStatus, StageStatus, executions, logs, stages};

use crate::stage_store::owned_stage_update;

/// A recorded success: what it led to, and the rows as committed (for publishing without
/// a re-read; the execution only when nothing changed it after the returned state).
#[derive(Debug, Clone)]
pub struct Success {
    pub after: AfterSuccess,
    pub stage: Option<stages::Model>,
    pub execution: Option<executions::Model>,
    /// Log lines written, as committed.
    pub lines: Vec<logs::Model>,
}

/// What a successful stage led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSuccess {
    /// The next stage is ready; queue it.
    Next(Uuid),
    /// That was the last stage.
    Finished,
    /// A cancel arrived meanwhile; the rest was cancelled.
    Cancelled,
    /// The attempt was no longer this job's.
    Lost,
}

async fn give_back_slot(
    txn: &DatabaseTransaction,
    stage: &stages::Model,
    slot: Option<Uuid>,
) -> anyhow::Result<()> {
    if let Some(worker_id) = slot {
        release_slot(txn, stage.id, worker_id).await?;
    }
    Ok(())
}

/// Records a successful attempt, adds its usage to the execution, and prepares the next
/// stage (its input is this stage's output with the next stage's static input on top).
pub async fn succeed(
    db: &DatabaseConnection,
    stage: &stages::Model,
    job_id: &str,
    slot: Option<Uuid>,
    output: ActionOutput,
    elapsed_ms: i64,
) -> anyhow::Result<Success> {
    let lost = Success {
        after: AfterSuccess::Lost,
        stage: None,
        execution: None,
        lines: Vec::new(),
    };
    let mut lines = Vec::new();
    let now = Utc::now();
    let txn = begin_write(db).await?;
    let Some(execution) = executions::Entity::update_many()
        .col_expr(
            executions::Column::StagesCompleted,
            Expr::col(executions::Column::StagesCompleted).add(1),
        )
        .col_expr(
            executions::Column::TokensUsed,
            Expr::col(executions::Column::TokensUsed).add(output.tokens_used),
        )
        .col_expr(
            executions::Column::CostUsd,
            Expr::col(executions::Column::CostUsd).add(output.cost_usd),
        )
        .col_expr(executions::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            executions::Column::Sequence,
            Expr::col(executions::Column::Sequence).add(1),
        )
        .filter(executions::Column::Id.eq(stage.execution_id))
        .exec_with_returning(&txn)
        .await?
        .pop()
    else {
        return Ok(lost);
    };
    give_back_slot(&txn, stage, slot).await?;
    let updated = owned_stage_update(stage, job_id)
        .col_expr(stages::Column::Status, Expr::value(StageStatus::Succeeded))
        .col_expr(
            stages::Column::Output,
            Expr::value(Some(output.output.clone())),
        )
        .col_expr(stages::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(stages::Column::TokensUsed, Expr::value(output.tokens_used))
        .col_expr(stages::Column::CostUsd, Expr::value(output.cost_usd))
        .col_expr(stages::Column::DurationMs, Expr::value(Some(elapsed_ms)))
        .col_expr(stages::Column::FinishedAt, Expr::value(Some(now)))
        .exec_with_returning(&txn)
        .await?
        .pop();
    let Some(updated) = updated else {
        txn.rollback().await?;
        return Ok(lost);
    };
    let message = format!("stage {} succeeded in {elapsed_ms} ms", stage.name);
    lines.push(
        append_log(
            &txn,
            stage.project_id,
            stage.execution_id,
            Some(stage.id),
            "INFO",
            &message,
        )
        .await?,
    );
    let after = if execution.cancel_requested {
        close_waiting_stages(&txn, execution.id, StageStatus::Cancelled).await?;
        finish_execution(&txn, &execution, ExecutionStatus::Cancelled, None, None).await?;
        lines.push(
            append_log(
                &txn,
                stage.project_id,
                execution.id,
                None,
                "INFO",
                "execution cancelled",
            )
            .await?,
        );
        AfterSuccess::Cancelled
    } else {
        let next = stages::Entity::update_many()
            .col_expr(
                stages::Column::Input,
                Expr::value(Some(output.output.clone())),
            )
            .col_expr(stages::Column::Attempt, Expr::value(1))
            .col_expr(stages::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                stages::Column::Sequence,
                Expr::col(stages::Column::Sequence).add(1),
            )
            .filter(stages::Column::ExecutionId.eq(execution.id))
            .filter(stages::Column::Position.eq(stage.position + 1))
            .filter(stages::Column::Status.eq(StageStatus::Pending))
            .exec_with_returning(&txn)
            .await?
            .pop();
        match next {
            Some(next) => {
                let overlay = serde_json::from_value::<StageSpec>(next.definition.clone())
                    .ok()
                    .and_then(|s| s.input);
                if overlay.is_some() {
                    stages::Entity::update_many()
                        .col_expr(
                            stages::Column::Input,
                            Expr::value(Some(merge_input(&output.output, overlay.as_ref()))),
                        )
                        .filter(stages::Column::Id.eq(next.id))
                        .exec(&txn)
                        .await?;
                }
                AfterSuccess::Next(next.id)
            }
            None => {
                finish_execution(
                    &txn,
                    &execution,
                    ExecutionStatus::Succeeded,
                    None,
                    Some(output.output),
                )
                .await?;
                lines.push(
                    append_log(
                        &txn,
                        stage.project_id,
                        execution.id,
                        None,
                        "INFO",
                        "execution succeeded",
                    )
                    .await?,
                );
                AfterSuccess::Finished
            }
        }
    };
    txn.commit().await?;
    Ok(Success {
        after,
        stage: Some(updated),
        // Finishing changed the execution after the row read back above.
        execution: matches!(after, AfterSuccess::Next(_)).then_some(execution),
        lines,
    })
}

/// Ends the attempt with a retryable error and schedules the next attempt after `delay`.
/// False when the attempt was no longer this job's, or a cancel arrived (then the stage and
/// the execution end `CANCELLED` here).
pub async fn schedule_retry(
    db: &DatabaseConnection,
    stage: &stages::Model,
    job_id: &str,
    slot: Option<Uuid>,
    message: &str,
    delay: Duration,
    lines: &mut Vec<logs::Model>,
) -> anyhow::Result<bool> {
    let txn = begin_write(db).await?;
    let Some(execution) = lock_execution(&txn, stage.execution_id).await? else {
        return Ok(false);
    };
    if execution.cancel_requested {
        cancel_in(&txn, &execution, stage, job_id, slot, lines).await?;
        txn.commit().await?;
        return Ok(false);
    }
    give_back_slot(&txn, stage, slot).await?;
    let due = Utc::now() + chrono::Duration::from_std(delay)?;
    let updated = owned_stage_update(stage, job_id)
        .col_expr(stages::Column::Status, Expr::value(StageStatus::Retrying))
        .col_expr(stages::Column::Attempt, Expr::value(stage.attempt + 1))
        .col_expr(
            stages::Column::Error,
            Expr::value(Some(message.to_string())),
        )
        .col_expr(stages::Column::NextAttemptAt, Expr::value(Some(due)))
        .col_expr(
            stages::Column::ClaimedByJob,
            Expr::value(Option::<String>::None),
        )
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    let line = format!(
        "stage {} attempt {} failed: {message}; retrying in {} ms",
        stage.name,
        stage.attempt,
        delay.as_millis()
    );
    lines.push(
        append_log(
            &txn,
            stage.project_id,
            stage.execution_id,
            Some(stage.id),
            "WARN",
            &line,
        )
        .await?,
    );
    txn.commit().await?;
    Ok(true)
}

/// Fails the attempt for good: the stage is `FAILED`, the stages after it `SKIPPED`, and the
/// execution `FAILED` with the stage's error.
pub async fn fail(
    db: &DatabaseConnection,
    stage: &stages::Model,
    job_id: &str,
    slot: Option<Uuid>,
    message: &str,
    elapsed_ms: i64,
    lines: &mut Vec<logs::Model>,
) -> anyhow::Result<()> {
    let txn = begin_write(db).await?;
    let Some(execution) = lock_execution(&txn, stage.execution_id).await? else {
        return Ok(());
    };
    give_back_slot(&txn, stage, slot).await?;
    let updated = owned_stage_update(stage, job_id)
        .col_expr(stages::Column::Status, Expr::value(StageStatus::Failed))
        .col_expr(
            stages::Column::Error,
            Expr::value(Some(message.to_string())),
        )
        .col_expr(stages::Column::DurationMs, Expr::value(Some(elapsed_ms)))
        .col_expr(stages::Column::FinishedAt, Expr::value(Some(Utc::now())))
        .col_expr(
            stages::Column::ClaimedByJob,
            Expr::value(Option::<String>::None),
        )
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(());
    }
    close_waiting_stages(&txn, execution.id, StageStatus::Skipped).await?;
    let error = format!("stage {} failed: {message}", stage.name);
    finish_execution(
        &txn,
        &execution,
        ExecutionStatus::Failed,
        Some(error.clone()),
        None,
    )
    .await?;
    lines.push(
        append_log(
            &txn,
            stage.project_id,
            execution.id,
            Some(stage.id),
            "ERROR",
            &error,
        )
        .await?,
    );
    txn.commit().await?;
    Ok(())
}

/// Cancels a stage this job runs (if it still does), every waiting stage, and the execution.
/// True when the execution ended here.
async fn cancel_in(
    txn: &DatabaseTransaction,
    execution: &executions::Model,
    stage: &stages::Model,
    job_id: &str,
    slot: Option<Uuid>,
    lines: &mut Vec<logs::Model>,
) -> anyhow::Result<bool> {
    give_back_slot(txn, stage, slot).await?;
    let updated = owned_stage_update(stage, job_id)
        .col_expr(stages::Column::Status, Expr::value(StageStatus::Cancelled))
        .col_expr(stages::Column::FinishedAt, Expr::value(Some(Utc::now())))
        .col_expr(
            stages::Column::ClaimedByJob,
            Expr::value(Option::<String>::None),
        )
        .exec(txn)
        .await?;
    if updated.rows_affected == 1 {
        let line = format!("stage {} cancelled", stage.name);
        lines.push(
            append_log(
                txn,
                stage.project_id,
                execution.id,
                Some(stage.id),
                "WARN",
                &line,
            )
            .await?,
        );
    }
    finish_if_nothing_runs(txn, execution, lines).await
}

/// Cancels waiting stages and ends a cancel-requested execution unless a stage still runs.
async fn finish_if_nothing_runs(
    txn: &DatabaseTransaction,
    execution: &executions::Model,
    lines: &mut Vec<logs::Model>,
) -> anyhow::Result<bool> {
    close_waiting_stages(txn, execution.id, StageStatus::Cancelled).await?;
    let running: Vec<Uuid> = stages::Entity::find()
        .select_only()
        .column(stages::Column::Id)
        .filter(stages::Column::ExecutionId.eq(execution.id))
        .filter(stages::Column::Status.is_in(ACTIVE_STAGE))
        .into_tuple()
        .all(txn)
        .await?;
    if !running.is_empty() {
        return Ok(false);
    }
    let ended = finish_execution(txn, execution, ExecutionStatus::Cancelled, None, None).await?;
    if ended {
        lines.push(
            append_log(
                txn,
                execution.project_id,
                execution.id,
                None,
                "INFO",
                "execution cancelled",
            )
            .await?,
        );
    }
    Ok(ended)
}

/// Stops a stage this job runs because its execution was cancelled.
pub async fn cancel(
    db: &DatabaseConnection,
    stage: &stages::Model,
    job_id: &str,
    slot: Option<Uuid>,
    lines: &mut Vec<logs::Model>,
) -> anyhow::Result<()> {
    let txn = begin_write(db).await?;
    if let Some(execution) = lock_execution(&txn, stage.execution_id).await? {
        cancel_in(&txn, &execution, stage, job_id, slot, lines).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// For a job that finds its execution cancel-requested before running: cancels what waits
/// and ends the execution when nothing runs any more.
pub async fn settle_cancelled(
    db: &DatabaseConnection,
    execution_id: Uuid,
    lines: &mut Vec<logs::Model>,
) -> anyhow::Result<()> {
    let txn = begin_write(db).await?;
    if let Some(execution) = lock_execution(&txn, execution_id).await?
        && !execution.status.is_terminal()
    {
        finish_if_nothing_runs(&txn, &execution, lines).await?;
    }
    txn.commit().await?;
    Ok(())
}
