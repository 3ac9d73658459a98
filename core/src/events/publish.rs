//! Publishing the committed state of a row. Call these after the transaction that changed the
//! row has committed ("write, then publish"); they re-read the row so the event carries exactly
//! what a subscriber would read.

use sea_orm::EntityTrait;
use uuid::Uuid;

use orchestrator_entity::{
    PromptVersionStatus, backends, executions, intents, logs, prompt_versions, stages, workers,
};

use super::{Event, EventKind};
use crate::context::CoreContext;

fn event_of<M: serde::Serialize>(
    kind: EventKind,
    project_id: Uuid,
    entity_id: Uuid,
    parent_id: Option<Uuid>,
    sequence: i64,
    row: &M,
) -> Option<Event> {
    match serde_json::to_value(row) {
        Ok(payload) => Some(Event::new(
            kind, project_id, entity_id, parent_id, sequence, payload,
        )),
        Err(err) => {
            tracing::error!(error = %err, "cannot serialise an event");
            None
        }
    }
}

fn log_event(row: &logs::Model) -> Option<Event> {
    event_of(
        EventKind::LogAppended,
        row.project_id,
        row.execution_id.unwrap_or_default(),
        row.execution_id,
        row.id,
        row,
    )
}

/// Publishes, in this order and in one round trip, a stage, its execution and log lines as
/// committed by one transaction; then runs the execution's followers.
pub async fn publish_rows(
    ctx: &CoreContext,
    stage: Option<&stages::Model>,
    execution: Option<&executions::Model>,
    lines: &[logs::Model],
) {
    let mut events = Vec::with_capacity(2 + lines.len());
    if let Some(row) = stage {
        events.extend(event_of(
            EventKind::StageUpdated,
            row.project_id,
            row.id,
            Some(row.execution_id),
            row.sequence,
            row,
        ));
    }
    if let Some(row) = execution {
        events.extend(event_of(
            EventKind::ExecutionUpdated,
            row.project_id,
            row.id,
            None,
            row.sequence,
            row,
        ));
    }
    events.extend(lines.iter().filter_map(log_event));
    ctx.events.publish_many(events).await;
    if let Some(row) = execution {
        crate::engine::followers::execution_changed(ctx, row).await;
    }
}

async fn send<M: serde::Serialize>(
    ctx: &CoreContext,
    kind: EventKind,
    project_id: Uuid,
    entity_id: Uuid,
    parent_id: Option<Uuid>,
    sequence: i64,
    row: &M,
) {
    match serde_json::to_value(row) {
        Ok(payload) => {
            ctx.events
                .publish(Event::new(
                    kind, project_id, entity_id, parent_id, sequence, payload,
                ))
                .await
        }
        Err(err) => tracing::error!(error = %err, "cannot serialise an event"),
    }
}

/// Publishes `ExecutionUpdated` with the execution as committed.
pub async fn publish_execution(ctx: &CoreContext, id: Uuid) {
    match executions::Entity::find_by_id(id).one(&ctx.db).await {
        Ok(Some(row)) => publish_execution_row(ctx, &row).await,
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(execution_id = %id, error = %err, "cannot read the execution to publish it")
        }
    }
}

/// Publishes `StageUpdated` with the stage as committed, then its execution (whose progress
/// and timestamps a stage change moves).
pub async fn publish_stage(ctx: &CoreContext, id: Uuid) {
    match stages::Entity::find_by_id(id).one(&ctx.db).await {
        Ok(Some(row)) => {
            publish_stage_row(ctx, &row).await;
            publish_execution(ctx, row.execution_id).await;
        }
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(stage_id = %id, error = %err, "cannot read the stage to publish it")
        }
    }
}

/// Publishes `LogAppended` for a committed log line.
pub async fn publish_log(ctx: &CoreContext, row: &logs::Model) {
    send(
        ctx,
        EventKind::LogAppended,
        row.project_id,
        row.execution_id.unwrap_or_default(),
        row.execution_id,
        row.id,
        row,
    )
    .await
}

/// Publishes `LogAppended` for each of `rows`, committed lines in the order written, in one
/// round trip.
pub async fn publish_logs(ctx: &CoreContext, rows: &[logs::Model]) {
    publish_rows(ctx, None, None, rows).await
}

/// Publishes `WorkerUpdated` with the remote worker as committed.
pub async fn publish_worker(ctx: &CoreContext, id: Uuid) {
    match workers::Entity::find_by_id(id).one(&ctx.db).await {
        Ok(Some(row)) => {
            send(
                ctx,
                EventKind::WorkerUpdated,
                row.project_id,
                row.id,
                None,
                row.sequence,
                &row,
            )
            .await
        }
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(worker_id = %id, error = %err, "cannot read the worker to publish it")
        }
    }
}

/// Publishes `StageUpdated` with a stage row the caller read back from its own committed
/// write (`RETURNING`), saving the re-read.
pub async fn publish_stage_row(ctx: &CoreContext, row: &stages::Model) {
    send(
        ctx,
        EventKind::StageUpdated,
        row.project_id,
        row.id,
        Some(row.execution_id),
        row.sequence,
        row,
    )
    .await
}

/// Publishes `ExecutionUpdated` with an execution row the caller read back from its own
/// committed write (`RETURNING`), saving the re-read.
pub async fn publish_execution_row(ctx: &CoreContext, row: &executions::Model) {
    send(
        ctx,
        EventKind::ExecutionUpdated,
        row.project_id,
        row.id,
        None,
        row.sequence,
        row,
    )
    .await;
    crate::engine::followers::execution_changed(ctx, row).await;
}

/// Publishes `IntentUpdated` with the intent as committed (re-read).
pub async fn publish_intent(ctx: &CoreContext, id: Uuid) {
    match intents::Entity::find_by_id(id).one(&ctx.db).await {
        Ok(Some(row)) => publish_intent_row(ctx, &row).await,
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(intent_id = %id, error = %err, "cannot read the intent to publish it")
        }
    }
}

/// Publishes `IntentUpdated` with an intent row as committed. The encrypted secrets never
/// leave the database: the event carries the row without them.
pub async fn publish_intent_row(ctx: &CoreContext, row: &intents::Model) {
    let shown = intents::Model {
        secrets: None,
        ..row.clone()
    };
    send(
        ctx,
        EventKind::IntentUpdated,
        row.project_id,
        row.id,
        None,
        row.sequence,
        &shown,
    )
    .await
}

/// Publishes `BackendUpdated` with the backend as committed (re-read).
pub async fn publish_backend(ctx: &CoreContext, id: Uuid) {
    match backends::Entity::find_by_id(id).one(&ctx.db).await {
        Ok(Some(row)) => publish_backend_row(ctx, &row).await,
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(backend_id = %id, error = %err, "cannot read the backend to publish it")
        }
    }
}

/// Publishes `BackendUpdated` with a backend row as committed, without its encrypted
/// secrets.
pub async fn publish_backend_row(ctx: &CoreContext, row: &backends::Model) {
    let shown = backends::Model {
        secrets: None,
        ..row.clone()
    };
    send(
        ctx,
        EventKind::BackendUpdated,
        row.project_id,
        row.id,
        None,
        row.sequence,
        &shown,
    )
    .await
}

/// Publishes `PromptVersionUpdated` with a prompt version as committed; its parent is the
/// backend. A version changes once at most (`PENDING` → `APPLIED` | `FAILED`), so its
/// sequence is 1 while pending and 2 once settled.
pub async fn publish_prompt_version_row(ctx: &CoreContext, row: &prompt_versions::Model) {
    let sequence = if row.status == PromptVersionStatus::Pending {
        1
    } else {
        2
    };
    send(
        ctx,
        EventKind::PromptVersionUpdated,
        row.project_id,
        row.id,
        Some(row.backend_id),
        sequence,
        row,
    )
    .await
}
