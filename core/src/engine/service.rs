//! Service functions behind the execution API: start an execution, read executions, stages,
//! handshake packets and logs. Every function checks the caller's role in the row's project
//! first; a row of a project the caller cannot see is `NOT_FOUND`, like a missing one.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::Value;
use uuid::Uuid;

use orchestrator_entity::{ExecutionStatus, Priority, Role, StageStatus};
use orchestrator_entity::{executions, handshakes, logs, stages};

use crate::auth::Identity;
use crate::context::CoreContext;
use crate::engine::pipeline::{self, DEFAULT_STAGE_ATTEMPTS};
use crate::error::{CoreError, CoreResult};
use crate::jobs::RunStage;
use crate::paging::{Page, PageRequest};
use crate::queue::PushOptions;

/// Largest execution input accepted, serialized.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// Input of [`start_execution`].
#[derive(Debug, Clone)]
pub struct StartExecution {
    pub project_id: Uuid,
    pub pipeline: String,
    pub input: Value,
    pub priority: Priority,
}

/// Creates an execution with its stages and enqueues the first stage. When this returns,
/// the first job is in the queue storage.
#[tracing::instrument(skip_all, fields(project_id = %input.project_id, pipeline = %input.pipeline))]
pub async fn start_execution(
    ctx: &CoreContext,
    who: &Identity,
    input: StartExecution,
) -> CoreResult<executions::Model> {
    let project =
        crate::projects::get_authorized(ctx, who, input.project_id, Role::Operator).await?;
    if !input.input.is_object() {
        return Err(CoreError::bad_input("input.input", "must be a JSON object"));
    }
    if serde_json::to_vec(&input.input).map_or(0, |v| v.len()) > MAX_INPUT_BYTES {
        return Err(CoreError::bad_input(
            "input.input",
            format!("must be at most {MAX_INPUT_BYTES} bytes of JSON"),
        ));
    }
    let spec = crate::engine::catalog::find_pipeline(ctx, project.id, &input.pipeline).await?;
    let txn = crate::db::begin_write(&ctx.db).await?;
    let (execution, queued) = insert_execution(
        &txn,
        NewExecution {
            project_id: project.id,
            spec: &spec,
            input: input.input,
            priority: input.priority,
            created_by: &who.subject,
            intent_id: None,
        },
    )
    .await?;
    txn.commit().await?;
    crate::events::publish_execution(ctx, execution.id).await;
    enqueue_first(ctx, &execution, queued).await?;
    Ok(execution)
}

/// An execution to create with [`insert_execution`].
#[derive(Debug)]
pub struct NewExecution<'a> {
    pub project_id: Uuid,
    /// The pipeline to run; its stages are copied onto the execution.
    pub spec: &'a pipeline::PipelineSpec,
    /// The first stage's input (merged with its static input).
    pub input: Value,
    pub priority: Priority,
    /// Who asked for it.
    pub created_by: &'a str,
    /// The intent the execution carries out, if any.
    pub intent_id: Option<Uuid>,
}

/// What [`enqueue_first`] needs of a new execution besides its row: the first stage to run,
/// and the "queued" log line to publish.
#[derive(Debug, Clone)]
pub struct Queued {
    pub first_stage_id: Uuid,
    pub line: orchestrator_entity::logs::Model,
}

/// Writes a `QUEUED` execution, its `PENDING` stages and its first log line inside `txn`;
/// returns the execution and what [`enqueue_first`] needs. Commit, publish, then call
/// [`enqueue_first`].
pub async fn insert_execution(
    txn: &sea_orm::DatabaseTransaction,
    new: NewExecution<'_>,
) -> CoreResult<(executions::Model, Queued)> {
    let spec = new.spec;
    let now = Utc::now();
    let execution_id = Uuid::new_v4();
    let first_stage_id = Uuid::new_v4();
    let total = spec.stages.len() as i32;
    let execution = executions::ActiveModel {
        id: Set(execution_id),
        project_id: Set(new.project_id),
        pipeline: Set(spec.name.clone()),
        status: Set(ExecutionStatus::Queued),
        priority: Set(new.priority),
        input: Set(new.input.clone()),
        output: Set(None),
        error: Set(None),
        tokens_used: Set(0),
        cost_usd: Set(0.0),
        duration_ms: Set(None),
        stages_total: Set(total),
        stages_completed: Set(0),
        cancel_requested: Set(false),
        intent_id: Set(new.intent_id),
        created_by: Set(new.created_by.to_owned()),
        sequence: Set(1),
        created_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        updated_at: Set(now),
    }
    .insert(txn)
    .await?;
    let mut rows = Vec::with_capacity(spec.stages.len());
    for (position, stage) in spec.stages.iter().enumerate() {
        let first = position == 0;
        rows.push(stages::ActiveModel {
            id: Set(if first {
                first_stage_id
            } else {
                Uuid::new_v4()
            }),
            project_id: Set(new.project_id),
            execution_id: Set(execution_id),
            position: Set(position as i32),
            name: Set(stage.name.clone()),
            action: Set(stage.action.clone()),
            capability: Set(stage.capability.clone()),
            definition: Set(serde_json::to_value(stage).map_err(anyhow::Error::from)?),
            status: Set(StageStatus::Pending),
            attempt: Set(if first { 1 } else { 0 }),
            max_attempts: Set(stage.max_attempts.unwrap_or(DEFAULT_STAGE_ATTEMPTS) as i32),
            input: Set(if first {
                Some(pipeline::merge_input(&new.input, stage.input.as_ref()))
            } else {
                None
            }),
            output: Set(None),
            error: Set(None),
            worker_id: Set(None),
            tokens_used: Set(0),
            cost_usd: Set(0.0),
            duration_ms: Set(None),
            sequence: Set(1),
            next_attempt_at: Set(None),
            claimed_by_job: Set(None),
            slot_worker_id: Set(None),
            created_at: Set(now),
            started_at: Set(None),
            finished_at: Set(None),
            updated_at: Set(now),
        });
    }
    stages::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await?;
    let line = append_log_in(
        txn,
        new.project_id,
        execution_id,
        None,
        "INFO",
        &format!(
            "execution queued: pipeline {} with {} stage(s)",
            spec.name, total
        ),
    )
    .await?;
    Ok((
        execution,
        Queued {
            first_stage_id,
            line,
        },
    ))
}

/// Pushes the first stage's job. When the push fails the execution is marked `FAILED` (it
/// must not sit `QUEUED` with nothing in the queue) and the error returned.
pub async fn enqueue_first(
    ctx: &CoreContext,
    execution: &executions::Model,
    queued: Queued,
) -> CoreResult<()> {
    crate::events::publish_log(ctx, &queued.line).await;
    let push = ctx
        .queue
        .push(
            RunStage::first(queued.first_stage_id, 1),
            PushOptions {
                priority: execution.priority,
                delay: None,
            },
        )
        .await;
    if let Err(err) = push {
        let mut failed: executions::ActiveModel = execution.clone().into();
        failed.status = Set(ExecutionStatus::Failed);
        failed.error = Set(Some("could not be enqueued; start it again".into()));
        failed.finished_at = Set(Some(Utc::now()));
        let _ = failed.update(&ctx.db).await;
        crate::events::publish_execution(ctx, execution.id).await;
        return Err(CoreError::Internal(err));
    }
    Ok(())
}

/// Appends a log line (inside a transaction or not).
pub async fn append_log_in<C: sea_orm::ConnectionTrait>(
    conn: &C,
    project_id: Uuid,
    execution_id: Uuid,
    stage_id: Option<Uuid>,
    level: &str,
    message: &str,
) -> Result<orchestrator_entity::logs::Model, sea_orm::DbErr> {
    crate::engine::lifecycle::append_log(conn, project_id, execution_id, stage_id, level, message)
        .await
}

/// The execution with `id`.
pub async fn get_execution(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
) -> CoreResult<executions::Model> {
    crate::engine::control::execution_for(ctx, who, id, Role::Viewer).await
}

/// Executions of a project, newest first.
pub async fn list_executions(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    status: Option<ExecutionStatus>,
    page: PageRequest,
) -> CoreResult<Page<executions::Model>> {
    crate::projects::get_authorized(ctx, who, project_id, Role::Viewer).await?;
    let mut query = executions::Entity::find().filter(executions::Column::ProjectId.eq(project_id));
    if let Some(status) = status {
        query = query.filter(executions::Column::Status.eq(status));
    }
    let query = query
        .order_by_desc(executions::Column::CreatedAt)
        .order_by_desc(executions::Column::Id);
    page.fetch(&ctx.db, query).await
}

/// The stages of executions, in order (no access check: callers pass ids they loaded).
pub async fn stages_of(
    ctx: &CoreContext,
    execution_ids: &[Uuid],
) -> CoreResult<Vec<stages::Model>> {
    Ok(stages::Entity::find()
        .filter(stages::Column::ExecutionId.is_in(execution_ids.iter().copied()))
        .order_by_asc(stages::Column::ExecutionId)
        .order_by_asc(stages::Column::Position)
        .all(&ctx.db)
        .await?)
}

/// Log lines of an execution after the line with id `after`, oldest first.
pub async fn logs_of(
    ctx: &CoreContext,
    execution_id: Uuid,
    after: Option<i64>,
    limit: u64,
) -> CoreResult<Vec<logs::Model>> {
    let mut query = logs::Entity::find().filter(logs::Column::ExecutionId.eq(execution_id));
    if let Some(after) = after {
        query = query.filter(logs::Column::Id.gt(after));
    }
    Ok(query
        .order_by_asc(logs::Column::Id)
        .limit(limit)
        .all(&ctx.db)
        .await?)
}

/// The packets exchanged with remote workers for stages, oldest first (no access check:
/// callers pass ids they loaded).
pub async fn handshakes_of(
    ctx: &CoreContext,
    stage_ids: &[Uuid],
) -> CoreResult<Vec<handshakes::Model>> {
    Ok(handshakes::Entity::find()
        .filter(handshakes::Column::StageId.is_in(stage_ids.iter().copied()))
        .order_by_asc(handshakes::Column::StageId)
        .order_by_asc(handshakes::Column::CreatedAt)
        .all(&ctx.db)
        .await?)
}
