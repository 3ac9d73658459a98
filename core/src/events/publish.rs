//! Publishing the committed state of a row. Call these after the transaction that changed the
//! row has committed ("write, then publish"). The `*_row` functions take a row the caller read
//! back from its own write (`RETURNING`); the others re-read it, so the event carries exactly
//! what a subscriber would read.

use sea_orm::{EntityTrait, PrimaryKeyTrait};
use uuid::Uuid;

use orchestrator_entity::{
    PromptVersionStatus, backends, executions, intents, logs, prompt_versions, stages, workers,
};

use super::{Event, EventKind};
use crate::context::CoreContext;

/// A row that is published as an event: which kind, where it belongs, its sequence.
trait Published: serde::Serialize {
    const KIND: EventKind;
    fn project_id(&self) -> Uuid;
    fn entity_id(&self) -> Uuid;
    fn parent_id(&self) -> Option<Uuid> {
        None
    }
    fn sequence(&self) -> i64;
    /// The event, with the row as its payload.
    fn event(&self) -> Option<Event> {
        match serde_json::to_value(self) {
            Ok(payload) => Some(Event::new(
                Self::KIND,
                self.project_id(),
                self.entity_id(),
                self.parent_id(),
                self.sequence(),
                payload,
            )),
            Err(err) => {
                tracing::error!(error = %err, "cannot serialise an event");
                None
            }
        }
    }
}

impl Published for stages::Model {
    const KIND: EventKind = EventKind::StageUpdated;
    fn project_id(&self) -> Uuid {
        self.project_id
    }
    fn entity_id(&self) -> Uuid {
        self.id
    }
    fn parent_id(&self) -> Option<Uuid> {
        Some(self.execution_id)
    }
    fn sequence(&self) -> i64 {
        self.sequence
    }
}

impl Published for executions::Model {
    const KIND: EventKind = EventKind::ExecutionUpdated;
    fn project_id(&self) -> Uuid {
        self.project_id
    }
    fn entity_id(&self) -> Uuid {
        self.id
    }
    fn sequence(&self) -> i64 {
        self.sequence
    }
}

impl Published for logs::Model {
    const KIND: EventKind = EventKind::LogAppended;
    fn project_id(&self) -> Uuid {
        self.project_id
    }
    fn entity_id(&self) -> Uuid {
        self.execution_id.unwrap_or_default()
    }
    fn parent_id(&self) -> Option<Uuid> {
        self.execution_id
    }
    /// Line ids only grow.
    fn sequence(&self) -> i64 {
        self.id
    }
}

impl Published for workers::Model {
    const KIND: EventKind = EventKind::WorkerUpdated;
    fn project_id(&self) -> Uuid {
        self.project_id
    }
    fn entity_id(&self) -> Uuid {
        self.id
    }
    fn sequence(&self) -> i64 {
        self.sequence
    }
}

impl Published for intents::Model {
    const KIND: EventKind = EventKind::IntentUpdated;
    fn project_id(&self) -> Uuid {
        self.project_id
    }
    fn entity_id(&self) -> Uuid {
        self.id
    }
    fn sequence(&self) -> i64 {
        self.sequence
    }
}

impl Published for backends::Model {
    const KIND: EventKind = EventKind::BackendUpdated;
    fn project_id(&self) -> Uuid {
        self.project_id
    }
    fn entity_id(&self) -> Uuid {
        self.id
    }
    fn sequence(&self) -> i64 {
        self.sequence
    }
}

/// A prompt version's parent is its backend. It changes once at most (`PENDING` → `APPLIED`
/// | `FAILED`), so its sequence is 1 while pending and 2 once settled.
impl Published for prompt_versions::Model {
    const KIND: EventKind = EventKind::PromptVersionUpdated;
    fn project_id(&self) -> Uuid {
        self.project_id
    }
    fn entity_id(&self) -> Uuid {
        self.id
    }
    fn parent_id(&self) -> Option<Uuid> {
        Some(self.backend_id)
    }
    fn sequence(&self) -> i64 {
        if self.status == PromptVersionStatus::Pending {
            1
        } else {
            2
        }
    }
}

async fn send(ctx: &CoreContext, row: &impl Published) {
    if let Some(event) = row.event() {
        ctx.events.publish(event).await
    }
}

/// The row with `id` as committed; `None` (logged) when it is gone or cannot be read.
async fn reread<E>(ctx: &CoreContext, id: Uuid) -> Option<E::Model>
where
    E: EntityTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
{
    match E::find_by_id(id).one(&ctx.db).await {
        Ok(row) => row,
        Err(err) => {
            tracing::warn!(%id, table = E::default().table_name(), error = %err, "cannot read the row to publish it");
            None
        }
    }
}

/// Publishes, in this order and in one round trip, a stage, its execution and log lines as
/// committed by one transaction; then runs the execution's followers.
pub async fn publish_rows(
    ctx: &CoreContext,
    stage: Option<&stages::Model>,
    execution: Option<&executions::Model>,
    lines: &[logs::Model],
) {
    let events = stage
        .and_then(Published::event)
        .into_iter()
        .chain(execution.and_then(Published::event))
        .chain(lines.iter().filter_map(Published::event))
        .collect();
    ctx.events.publish_many(events).await;
    if let Some(row) = execution {
        crate::engine::followers::execution_changed(ctx, row).await;
    }
}

/// Publishes `ExecutionUpdated` with the execution as committed.
pub async fn publish_execution(ctx: &CoreContext, id: Uuid) {
    if let Some(row) = reread::<executions::Entity>(ctx, id).await {
        publish_execution_row(ctx, &row).await
    }
}

/// Publishes `StageUpdated` with the stage as committed, then its execution (whose progress
/// and timestamps a stage change moves).
pub async fn publish_stage(ctx: &CoreContext, id: Uuid) {
    if let Some(row) = reread::<stages::Entity>(ctx, id).await {
        publish_stage_row(ctx, &row).await;
        publish_execution(ctx, row.execution_id).await;
    }
}

/// Publishes `LogAppended` for a committed log line.
pub async fn publish_log(ctx: &CoreContext, row: &logs::Model) {
    send(ctx, row).await
}

/// Publishes `LogAppended` for each of `rows`, committed lines in the order written, in one
/// round trip.
pub async fn publish_logs(ctx: &CoreContext, rows: &[logs::Model]) {
    publish_rows(ctx, None, None, rows).await
}

/// Publishes `WorkerUpdated` with the remote worker as committed.
pub async fn publish_worker(ctx: &CoreContext, id: Uuid) {
    if let Some(row) = reread::<workers::Entity>(ctx, id).await {
        send(ctx, &row).await
    }
}

/// Publishes `StageUpdated` with a stage row as committed.
pub async fn publish_stage_row(ctx: &CoreContext, row: &stages::Model) {
    send(ctx, row).await
}

/// Publishes `ExecutionUpdated` with an execution row as committed, then runs its followers.
pub async fn publish_execution_row(ctx: &CoreContext, row: &executions::Model) {
    publish_rows(ctx, None, Some(row), &[]).await
}

/// Publishes `IntentUpdated` with the intent as committed (re-read).
pub async fn publish_intent(ctx: &CoreContext, id: Uuid) {
    if let Some(row) = reread::<intents::Entity>(ctx, id).await {
        publish_intent_row(ctx, &row).await
    }
}

/// Publishes `IntentUpdated` with an intent row as committed. The encrypted secrets never
/// leave the database: the event carries the row without them.
pub async fn publish_intent_row(ctx: &CoreContext, row: &intents::Model) {
    let shown = intents::Model {
        secrets: None,
        ..row.clone()
    };
    send(ctx, &shown).await
}

/// Publishes `BackendUpdated` with the backend as committed (re-read).
pub async fn publish_backend(ctx: &CoreContext, id: Uuid) {
    if let Some(row) = reread::<backends::Entity>(ctx, id).await {
        publish_backend_row(ctx, &row).await
    }
}

/// Publishes `BackendUpdated` with a backend row as committed, without its encrypted
/// secrets.
pub async fn publish_backend_row(ctx: &CoreContext, row: &backends::Model) {
    let shown = backends::Model {
        secrets: None,
        ..row.clone()
    };
    send(ctx, &shown).await
}

/// Publishes `PromptVersionUpdated` with a prompt version as committed.
pub async fn publish_prompt_version_row(ctx: &CoreContext, row: &prompt_versions::Model) {
    send(ctx, row).await
}
