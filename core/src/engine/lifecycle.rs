//! Status changes of executions and stages that the API (cancel, retry) and the workers (run
//! a stage) share. Each is a statement meant to run inside a write transaction that first
//! locked the execution row with [`lock_execution`], so that all changes to one execution are
//! serialized, on SQLite (one writer) and on PostgreSQL (`SELECT … FOR UPDATE`) alike.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, Set};
use serde_json::Value;
use uuid::Uuid;

use orchestrator_entity::{ExecutionStatus, StageStatus, executions, logs, stages, workers};

/// Stage statuses that mean "an attempt is running now".
pub const ACTIVE_STAGE: [StageStatus; 2] = [StageStatus::Handshaking, StageStatus::Running];
/// Stage statuses that mean "not started, or between attempts".
pub const WAITING_STAGE: [StageStatus; 2] = [StageStatus::Pending, StageStatus::Retrying];

/// Reads the execution and locks its row until the transaction ends.
pub async fn lock_execution<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<Option<executions::Model>, DbErr> {
    executions::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await
}

/// Ends `execution` with `status` (unless it already ended); its duration runs from its
/// start. Returns false when it had already ended.
pub async fn finish_execution<C: ConnectionTrait>(
    conn: &C,
    execution: &executions::Model,
    status: ExecutionStatus,
    error: Option<String>,
    output: Option<Value>,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    let duration = execution
        .started_at
        .map(|started: DateTime<Utc>| (now - started).num_milliseconds());
    let mut update = executions::Entity::update_many()
        .col_expr(executions::Column::Status, Expr::value(status))
        .col_expr(executions::Column::Error, Expr::value(error))
        .col_expr(executions::Column::FinishedAt, Expr::value(Some(now)))
        .col_expr(executions::Column::DurationMs, Expr::value(duration))
        .col_expr(executions::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            executions::Column::Sequence,
            Expr::col(executions::Column::Sequence).add(1),
        )
        .filter(executions::Column::Id.eq(execution.id))
        .filter(
            executions::Column::Status.is_in([ExecutionStatus::Queued, ExecutionStatus::Running]),
        );
    if output.is_some() {
        update = update.col_expr(executions::Column::Output, Expr::value(output));
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

/// Moves every stage of the execution that has not started (or waits for its next attempt)
/// to `status` (`SKIPPED` after a failure, `CANCELLED` after a cancel).
pub async fn close_waiting_stages<C: ConnectionTrait>(
    conn: &C,
    execution_id: Uuid,
    status: StageStatus,
) -> Result<u64, DbErr> {
    let now = Utc::now();
    let result = stages::Entity::update_many()
        .col_expr(stages::Column::Status, Expr::value(status))
        .col_expr(
            stages::Column::ClaimedByJob,
            Expr::value(Option::<String>::None),
        )
        .col_expr(stages::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            stages::Column::Sequence,
            Expr::col(stages::Column::Sequence).add(1),
        )
        .filter(stages::Column::ExecutionId.eq(execution_id))
        .filter(stages::Column::Status.is_in(WAITING_STAGE))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// Gives back the slot `stage_id` holds on `worker_id`, exactly once: the stage forgets the
/// slot and, only if it still held it, the worker's count goes down. Run it in a transaction
/// so both sides change together.
pub async fn release_slot<C: ConnectionTrait>(
    conn: &C,
    stage_id: Uuid,
    worker_id: Uuid,
) -> Result<bool, DbErr> {
    let forgot = stages::Entity::update_many()
        .col_expr(
            stages::Column::SlotWorkerId,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(stages::Column::Id.eq(stage_id))
        .filter(stages::Column::SlotWorkerId.eq(worker_id))
        .exec(conn)
        .await?;
    if forgot.rows_affected == 0 {
        return Ok(false);
    }
    workers::Entity::update_many()
        .col_expr(
            workers::Column::ActiveStages,
            Expr::col(workers::Column::ActiveStages).sub(1),
        )
        .filter(workers::Column::Id.eq(worker_id))
        .filter(workers::Column::ActiveStages.gt(0))
        .exec(conn)
        .await?;
    Ok(true)
}

/// Takes one of `worker_id`'s slots for `stage_id`, if the worker has one free. The count
/// goes up only while it is below `max_concurrent`, in one conditional statement, so
/// concurrent claims from any number of processes never exceed the limit. Run it in a
/// transaction so the count and the stage's note of the slot change together.
pub async fn claim_slot<C: ConnectionTrait>(
    conn: &C,
    stage_id: Uuid,
    worker_id: Uuid,
) -> Result<bool, DbErr> {
    let taken = workers::Entity::update_many()
        .col_expr(
            workers::Column::ActiveStages,
            Expr::col(workers::Column::ActiveStages).add(1),
        )
        .filter(workers::Column::Id.eq(worker_id))
        .filter(workers::Column::DeregisteredAt.is_null())
        .filter(
            Expr::col(workers::Column::ActiveStages).lt(Expr::col(workers::Column::MaxConcurrent)),
        )
        .exec(conn)
        .await?;
    if taken.rows_affected == 0 {
        return Ok(false);
    }
    let held = stages::Entity::update_many()
        .col_expr(stages::Column::SlotWorkerId, Expr::value(Some(worker_id)))
        .col_expr(stages::Column::WorkerId, Expr::value(Some(worker_id)))
        .filter(stages::Column::Id.eq(stage_id))
        .filter(stages::Column::SlotWorkerId.is_null())
        .exec(conn)
        .await?;
    if held.rows_affected == 0 {
        // The stage already holds a slot; give this one back.
        workers::Entity::update_many()
            .col_expr(
                workers::Column::ActiveStages,
                Expr::col(workers::Column::ActiveStages).sub(1),
            )
            .filter(workers::Column::Id.eq(worker_id))
            .exec(conn)
            .await?;
        return Ok(false);
    }
    Ok(true)
}

/// Appends a log line about an execution (and optionally one of its stages) with one
/// statement, and returns it as stored: the caller publishes it once its transaction has
/// committed (see [`crate::events::publish_logs`]).
pub async fn append_log<C: ConnectionTrait>(
    conn: &C,
    project_id: Uuid,
    execution_id: Uuid,
    stage_id: Option<Uuid>,
    level: &str,
    message: &str,
) -> Result<logs::Model, DbErr> {
    logs::Entity::insert(logs::ActiveModel {
        project_id: Set(project_id),
        execution_id: Set(Some(execution_id)),
        stage_id: Set(stage_id),
        intent_id: Set(None),
        level: Set(level.to_string()),
        message: Set(message.to_string()),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec_with_returning(conn)
    .await
}
