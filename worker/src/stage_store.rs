//! The stage runner's reads and its claim on an attempt. Every change of a running stage is a
//! conditional update that names the attempt and the queue job that claimed it, so a stale or
//! duplicate job can never finish, retry or fail an attempt it does not own (the endings are
//! in `stage_outcome`).

use anyhow::Context;
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde_json::Value;
use uuid::Uuid;

use orchestrator_core::engine::lifecycle::{ACTIVE_STAGE, WAITING_STAGE, append_log};
use orchestrator_core::engine::pipeline::REMOTE_ACTION;
use orchestrator_entity::{ExecutionStatus, StageStatus, executions, logs, stages};

/// A stage with its execution, as one job sees them.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub stage: stages::Model,
    pub execution: executions::Model,
}

/// Loads a stage and its execution with one query.
pub async fn load(db: &DatabaseConnection, stage_id: Uuid) -> anyhow::Result<Option<Loaded>> {
    let row = stages::Entity::find_by_id(stage_id)
        .find_also_related(executions::Entity)
        .one(db)
        .await
        .context("loading the stage")?;
    Ok(row.and_then(|(stage, execution)| execution.map(|execution| Loaded { stage, execution })))
}

/// The update of a stage that job `job_id` runs (attempt and claim must still match).
pub(crate) fn owned_stage_update(
    stage: &stages::Model,
    job_id: &str,
) -> sea_orm::UpdateMany<stages::Entity> {
    stages::Entity::update_many()
        .col_expr(stages::Column::UpdatedAt, Expr::value(Utc::now()))
        .col_expr(
            stages::Column::Sequence,
            Expr::col(stages::Column::Sequence).add(1),
        )
        .filter(stages::Column::Id.eq(stage.id))
        .filter(stages::Column::Attempt.eq(stage.attempt))
        .filter(stages::Column::ClaimedByJob.eq(job_id))
        .filter(stages::Column::Status.is_in(ACTIVE_STAGE))
}

/// Claims `attempt` of the stage for `job_id` and marks it running (`HANDSHAKING` for a
/// remote stage), unless another job owns the attempt, the stage moved on, or its execution
/// was cancelled or ended. The same job may claim again (a re-delivery after a crash).
/// Returns the claimed stage as committed, with its execution when the claim started it;
/// `None` means "look closer" (see the runner).
/// A claimed attempt, as committed: the stage, the execution when this claim started it, and
/// the "started" log line.
pub struct Claimed {
    pub stage: stages::Model,
    pub started: Option<executions::Model>,
    pub line: logs::Model,
}

pub async fn claim(
    db: &DatabaseConnection,
    stage_id: Uuid,
    attempt: i32,
    job_id: &str,
    worker_name: &str,
) -> anyhow::Result<Option<Claimed>> {
    let now = Utc::now();
    let running = Expr::case(
        Expr::col(stages::Column::Action).eq(REMOTE_ACTION),
        Expr::value(StageStatus::Handshaking),
    )
    .finally(Expr::value(StageStatus::Running));
    let live_execution = Query::select()
        .expr(Expr::val(1))
        .from(executions::Entity)
        .and_where(
            Expr::col((executions::Entity, executions::Column::Id))
                .equals((stages::Entity, stages::Column::ExecutionId)),
        )
        .and_where(executions::Column::CancelRequested.eq(false))
        .and_where(
            executions::Column::Status.is_in([ExecutionStatus::Queued, ExecutionStatus::Running]),
        )
        .to_owned();
    let claimed = stages::Entity::update_many()
        .col_expr(stages::Column::Status, running.into())
        .col_expr(stages::Column::ClaimedByJob, Expr::value(job_id))
        .col_expr(
            stages::Column::StartedAt,
            Func::coalesce([Expr::col(stages::Column::StartedAt), Expr::value(Some(now))]).into(),
        )
        .col_expr(stages::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            stages::Column::Sequence,
            Expr::col(stages::Column::Sequence).add(1),
        )
        .filter(stages::Column::Id.eq(stage_id))
        .filter(stages::Column::Attempt.eq(attempt))
        .filter(
            stages::Column::Status
                .is_in(WAITING_STAGE)
                .or(stages::Column::Status
                    .is_in(ACTIVE_STAGE)
                    .and(stages::Column::ClaimedByJob.eq(job_id))),
        )
        .filter(Expr::exists(live_execution))
        .exec_with_returning(db)
        .await?
        .pop();
    let Some(stage) = claimed else {
        return Ok(None);
    };
    let mut started = None;
    if stage.position == 0 {
        started = executions::Entity::update_many()
            .col_expr(
                executions::Column::Status,
                Expr::value(ExecutionStatus::Running),
            )
            .col_expr(executions::Column::StartedAt, Expr::value(Some(now)))
            .col_expr(executions::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                executions::Column::Sequence,
                Expr::col(executions::Column::Sequence).add(1),
            )
            .filter(executions::Column::Id.eq(stage.execution_id))
            .filter(executions::Column::Status.eq(ExecutionStatus::Queued))
            .exec_with_returning(db)
            .await?
            .pop();
    }
    let message = format!(
        "stage {} started (attempt {}/{}) on {worker_name}",
        stage.name, stage.attempt, stage.max_attempts
    );
    let line = append_log(
        db,
        stage.project_id,
        stage.execution_id,
        Some(stage.id),
        "INFO",
        &message,
    )
    .await?;
    Ok(Some(Claimed {
        stage,
        started,
        line,
    }))
}

/// Marks a remote stage whose handshake was accepted as running.
pub async fn mark_running(
    db: &DatabaseConnection,
    stage: &stages::Model,
    job_id: &str,
) -> anyhow::Result<()> {
    owned_stage_update(stage, job_id)
        .col_expr(stages::Column::Status, Expr::value(StageStatus::Running))
        .exec(db)
        .await?;
    Ok(())
}

/// Puts a remote stage that found no free worker back to `PENDING` (same attempt), so a
/// later job can claim it again.
pub async fn release_to_wait(
    db: &DatabaseConnection,
    stage: &stages::Model,
    job_id: &str,
    reason: &str,
    lines: &mut Vec<logs::Model>,
) -> anyhow::Result<bool> {
    let updated = owned_stage_update(stage, job_id)
        .col_expr(stages::Column::Status, Expr::value(StageStatus::Pending))
        .col_expr(
            stages::Column::ClaimedByJob,
            Expr::value(Option::<String>::None),
        )
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(false);
    }
    let line = format!("stage {} waits for a worker: {reason}", stage.name);
    lines.push(
        append_log(
            db,
            stage.project_id,
            stage.execution_id,
            Some(stage.id),
            "INFO",
            &line,
        )
        .await?,
    );
    Ok(true)
}

/// The stage after `stage` if it is queued to run as attempt 1 and nothing claimed it yet.
pub async fn unclaimed_successor(
    db: &DatabaseConnection,
    stage: &stages::Model,
) -> anyhow::Result<Option<Uuid>> {
    Ok(stages::Entity::find()
        .filter(stages::Column::ExecutionId.eq(stage.execution_id))
        .filter(stages::Column::Position.eq(stage.position + 1))
        .filter(stages::Column::Status.eq(StageStatus::Pending))
        .filter(stages::Column::Attempt.eq(1))
        .filter(stages::Column::ClaimedByJob.is_null())
        .one(db)
        .await?
        .map(|s| s.id))
}

/// True once the execution was asked to stop (or vanished).
pub async fn cancel_requested(db: &DatabaseConnection, execution_id: Uuid) -> bool {
    let flag: Result<Option<bool>, _> = executions::Entity::find_by_id(execution_id)
        .select_only()
        .column(executions::Column::CancelRequested)
        .into_tuple()
        .one(db)
        .await;
    matches!(flag, Ok(Some(true)) | Ok(None))
}

/// A stage's input: what it was given, or an empty object.
pub fn input_of(stage: &stages::Model) -> Value {
    stage.input.clone().unwrap_or_else(|| serde_json::json!({}))
}
