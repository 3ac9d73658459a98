//! Service functions behind the intent API: deploy (or plan) a command, read intents, their
//! resources and logs, and retry, cancel or roll them back. Every function checks the
//! caller's role in the intent's project first; another project's intent is `NOT_FOUND`.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use orchestrator_entity::{
    ExecutionStatus, IntentStatus, Priority, Role, executions, intents, logs, resources,
};

use super::IntentAction;
use super::pipeline::{deploy_pipeline, rollback_pipeline};
use super::plan::{DeployOptions, Planned, plan, seal_secrets, stored_plan};
use crate::auth::Identity;
use crate::context::CoreContext;
use crate::engine::service::{NewExecution, enqueue_first, insert_execution};
use crate::error::{CoreError, CoreResult};
use crate::paging::{Page, PageRequest};

/// Input of [`deploy`] and [`plan_deployment`].
#[derive(Debug, Clone)]
pub struct DeployInput {
    pub project_id: Uuid,
    pub command: String,
    pub options: DeployOptions,
    /// Plan and record, deploy nothing.
    pub dry_run: bool,
}

/// Plans a command without writing anything (viewers may plan).
#[tracing::instrument(skip_all, fields(project_id = %input.project_id))]
pub async fn plan_deployment(
    ctx: &CoreContext,
    who: &Identity,
    input: &DeployInput,
) -> CoreResult<Planned> {
    let project = crate::projects::get_authorized(ctx, who, input.project_id, Role::Viewer).await?;
    plan(
        ctx,
        &project,
        Uuid::new_v4(),
        &input.command,
        &input.options,
    )
    .await
}

/// Parses and plans `input.command`, records the intent and — unless it is a dry run —
/// starts the execution that carries it out. A command that cannot be parsed or planned is
/// refused with nothing written. When this returns, the first stage is in the queue.
#[tracing::instrument(skip_all, fields(project_id = %input.project_id))]
pub async fn deploy(
    ctx: &CoreContext,
    who: &Identity,
    input: DeployInput,
) -> CoreResult<intents::Model> {
    let project =
        crate::projects::get_authorized(ctx, who, input.project_id, Role::Operator).await?;
    let intent_id = Uuid::new_v4();
    let planned = plan(ctx, &project, intent_id, &input.command, &input.options).await?;
    let now = Utc::now();
    let plan_json = serde_json::to_value(&planned.plan).map_err(anyhow::Error::from)?;
    let row = intents::ActiveModel {
        id: Set(intent_id),
        project_id: Set(project.id),
        command: Set(input.command.trim().to_owned()),
        action: Set(Some(planned.parsed.action.as_str().to_owned())),
        application: Set(Some(planned.parsed.application.clone())),
        status: Set(if input.dry_run {
            IntentStatus::Completed
        } else {
            IntentStatus::Pending
        }),
        parsed: Set(Some(
            serde_json::to_value(&planned.parsed).map_err(anyhow::Error::from)?,
        )),
        options: Set(serde_json::to_value(&input.options).map_err(anyhow::Error::from)?),
        plan: Set(Some(plan_json)),
        secrets: Set(if input.dry_run {
            None
        } else {
            seal_secrets(ctx, &planned.secrets)?
        }),
        dry_run: Set(input.dry_run),
        execution_id: Set(None),
        error: Set(None),
        created_by: Set(who.subject.clone()),
        sequence: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let txn = crate::db::begin_write(&ctx.db).await?;
    let mut intent = row.insert(&txn).await?;
    let mut launched = None;
    if !input.dry_run {
        let spec = deploy_pipeline(
            planned.parsed.action,
            &planned.plan,
            ctx.config.deploy_ready_timeout,
        );
        let (execution, first) = insert_execution(
            &txn,
            NewExecution {
                project_id: project.id,
                spec: &spec,
                input: json!({ "intentId": intent_id }),
                priority: Priority::Normal,
                created_by: &who.subject,
                intent_id: Some(intent_id),
            },
        )
        .await?;
        let mut linked: intents::ActiveModel = intent.clone().into();
        linked.execution_id = Set(Some(execution.id));
        intent = linked.update(&txn).await?;
        launched = Some((execution, first));
    }
    txn.commit().await?;
    crate::events::publish_intent_row(ctx, &intent).await;
    if let Some((execution, first)) = launched {
        crate::events::publish_execution_row(ctx, &execution).await;
        enqueue_first(ctx, &execution, first).await?;
    }
    Ok(intent)
}

/// The intent with `id` if the caller holds `role` in its project; `NOT_FOUND` otherwise.
pub async fn intent_for(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
    role: Role,
) -> CoreResult<intents::Model> {
    let not_found = || CoreError::NotFound { entity: "intent" };
    let intent = intents::Entity::find_by_id(id)
        .one(&ctx.db)
        .await?
        .ok_or_else(not_found)?;
    match crate::projects::get_authorized(ctx, who, intent.project_id, role).await {
        Ok(_) => Ok(intent),
        Err(CoreError::NotFound { .. }) => Err(not_found()),
        Err(other) => Err(other),
    }
}

/// Intents of a project, newest first.
pub async fn list_intents(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    status: Option<IntentStatus>,
    page: PageRequest,
) -> CoreResult<Page<intents::Model>> {
    crate::projects::get_authorized(ctx, who, project_id, Role::Viewer).await?;
    let mut query = intents::Entity::find().filter(intents::Column::ProjectId.eq(project_id));
    if let Some(status) = status {
        query = query.filter(intents::Column::Status.eq(status));
    }
    let query = query
        .order_by_desc(intents::Column::CreatedAt)
        .order_by_desc(intents::Column::Id);
    page.fetch(&ctx.db, query).await
}

/// What the intent's deployments created (removed ones included, with `deleted_at`), oldest
/// first (no access check: callers pass an intent they loaded).
pub async fn resources_of(ctx: &CoreContext, intent_id: Uuid) -> CoreResult<Vec<resources::Model>> {
    Ok(resources::Entity::find()
        .filter(resources::Column::IntentId.eq(intent_id))
        .order_by_asc(resources::Column::CreatedAt)
        .order_by_asc(resources::Column::Id)
        .all(&ctx.db)
        .await?)
}

/// Log lines of every execution of the intent (deployment and rollbacks) after `after`,
/// oldest first (no access check: callers pass an intent they loaded).
pub async fn logs_of(
    ctx: &CoreContext,
    intent_id: Uuid,
    after: Option<i64>,
    limit: u64,
) -> CoreResult<Vec<logs::Model>> {
    let executions: Vec<Uuid> = executions::Entity::find()
        .select_only()
        .column(executions::Column::Id)
        .filter(executions::Column::IntentId.eq(intent_id))
        .into_tuple()
        .all(&ctx.db)
        .await?;
    let mut query = logs::Entity::find().filter(logs::Column::ExecutionId.is_in(executions));
    if let Some(after) = after {
        query = query.filter(logs::Column::Id.gt(after));
    }
    Ok(query
        .order_by_asc(logs::Column::Id)
        .limit(limit)
        .all(&ctx.db)
        .await?)
}

/// Resumes a failed intent from the component that failed: the execution's failed stage
/// runs again and the stages after it follow.
#[tracing::instrument(skip_all, fields(intent_id = %id))]
pub async fn retry_intent(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
) -> CoreResult<intents::Model> {
    let intent = intent_for(ctx, who, id, Role::Operator).await?;
    let execution_id = match (intent.status, intent.execution_id) {
        (IntentStatus::Failed, Some(execution_id)) => execution_id,
        (status, _) => {
            return Err(CoreError::Conflict(format!(
                "only failed intents can be retried; this one is {status:?}"
            )));
        }
    };
    crate::engine::control::retry_execution(ctx, who, execution_id).await?;
    set_status(ctx, id, execution_id, IntentStatus::Deploying, None).await?;
    intent_for(ctx, who, id, Role::Viewer).await
}

/// Stops an intent before its next component: the running component finishes or is
/// stopped, nothing after it starts, and the intent ends `CANCELLED` with what was deployed
/// so far recorded in its resources.
#[tracing::instrument(skip_all, fields(intent_id = %id))]
pub async fn cancel_intent(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
) -> CoreResult<intents::Model> {
    let intent = intent_for(ctx, who, id, Role::Operator).await?;
    if intent.status == IntentStatus::Cancelled {
        return Ok(intent);
    }
    let Some(execution_id) = intent.execution_id.filter(|_| !is_terminal(intent.status)) else {
        return Err(CoreError::Conflict(format!(
            "the intent already ended {:?}; only pending or deploying intents can be cancelled",
            intent.status
        )));
    };
    crate::engine::control::cancel_execution(ctx, who, execution_id).await?;
    intent_for(ctx, who, id, Role::Viewer).await
}

/// Undoes an ended intent: an install's objects are removed (volumes too), newest
/// component first; an update, scale, restart or removal is undone by applying the
/// deployment that was current before it. The intent ends `ROLLED_BACK`.
#[tracing::instrument(skip_all, fields(intent_id = %id))]
pub async fn rollback_intent(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
) -> CoreResult<intents::Model> {
    let intent = intent_for(ctx, who, id, Role::Operator).await?;
    if intent.dry_run {
        return Err(CoreError::Conflict(
            "a dry run deployed nothing; there is nothing to roll back".into(),
        ));
    }
    if !matches!(
        intent.status,
        IntentStatus::Completed | IntentStatus::Failed | IntentStatus::Cancelled
    ) {
        return Err(CoreError::Conflict(format!(
            "only completed, failed or cancelled intents can be rolled back; this one is {:?}",
            intent.status
        )));
    }
    let plan = stored_plan(&intent)
        .ok_or_else(|| CoreError::Conflict("the intent has no plan to roll back".into()))?;
    let action = intent
        .action
        .as_deref()
        .and_then(IntentAction::from_name)
        .unwrap_or(IntentAction::Install);
    let previous = match plan.previous_intent {
        Some(previous_id) if action != IntentAction::Install => {
            intents::Entity::find_by_id(previous_id)
                .one(&ctx.db)
                .await?
                .and_then(|row| stored_plan(&row).map(|p| (previous_id, p)))
        }
        _ => None,
    };
    let spec = rollback_pipeline(
        action,
        &plan,
        previous.as_ref().map(|(id, p)| (*id, p)),
        ctx.config.deploy_ready_timeout,
    );
    let txn = crate::db::begin_write(&ctx.db).await?;
    let (execution, first) = insert_execution(
        &txn,
        NewExecution {
            project_id: intent.project_id,
            spec: &spec,
            input: json!({ "intentId": id }),
            priority: Priority::Normal,
            created_by: &who.subject,
            intent_id: Some(id),
        },
    )
    .await?;
    intents::Entity::update_many()
        .col_expr(intents::Column::ExecutionId, Expr::value(execution.id))
        .col_expr(intents::Column::Status, Expr::value(IntentStatus::Pending))
        .col_expr(intents::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(intents::Column::UpdatedAt, Expr::value(Utc::now()))
        .col_expr(
            intents::Column::Sequence,
            Expr::col(intents::Column::Sequence).add(1),
        )
        .filter(intents::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    crate::events::publish_intent(ctx, id).await;
    crate::events::publish_execution_row(ctx, &execution).await;
    enqueue_first(ctx, &execution, first).await?;
    intent_for(ctx, who, id, Role::Viewer).await
}

fn is_terminal(status: IntentStatus) -> bool {
    matches!(
        status,
        IntentStatus::Completed
            | IntentStatus::Failed
            | IntentStatus::Cancelled
            | IntentStatus::RolledBack
    )
}

/// Moves the intent to `status` while `execution_id` is the execution carrying it out (a
/// stale execution changes nothing), then publishes it. Returns the row when it changed.
pub(crate) async fn set_status(
    ctx: &CoreContext,
    intent_id: Uuid,
    execution_id: Uuid,
    status: IntentStatus,
    error: Option<String>,
) -> CoreResult<Option<intents::Model>> {
    let changed = intents::Entity::update_many()
        .col_expr(intents::Column::Status, Expr::value(status))
        .col_expr(intents::Column::Error, Expr::value(error))
        .col_expr(intents::Column::UpdatedAt, Expr::value(Utc::now()))
        .col_expr(
            intents::Column::Sequence,
            Expr::col(intents::Column::Sequence).add(1),
        )
        .filter(intents::Column::Id.eq(intent_id))
        .filter(intents::Column::ExecutionId.eq(execution_id))
        .filter(intents::Column::Status.ne(status))
        .exec(&ctx.db)
        .await?
        .rows_affected
        > 0;
    if !changed {
        return Ok(None);
    }
    let row = intents::Entity::find_by_id(intent_id).one(&ctx.db).await?;
    if let Some(row) = &row {
        crate::events::publish_intent_row(ctx, row).await;
        crate::backends::service::follow_intent(ctx, row).await;
    }
    Ok(row)
}

/// Keeps an intent in step with the execution carrying it out: once that execution ends,
/// the intent ends `COMPLETED` (`ROLLED_BACK` for a rollback), `FAILED` with the reason, or
/// `CANCELLED`. Called by [`crate::engine::followers`] once the execution has ended.
pub async fn follow_execution(ctx: &CoreContext, execution: &executions::Model) {
    let Some(intent_id) = execution.intent_id else {
        return;
    };
    let (status, error) = match execution.status {
        ExecutionStatus::Succeeded if execution.pipeline == super::pipeline::ROLLBACK_PIPELINE => {
            (IntentStatus::RolledBack, None)
        }
        ExecutionStatus::Succeeded => (IntentStatus::Completed, None),
        ExecutionStatus::Failed => (IntentStatus::Failed, execution.error.clone()),
        ExecutionStatus::Cancelled => (IntentStatus::Cancelled, None),
        ExecutionStatus::Queued | ExecutionStatus::Running => return,
    };
    match set_status(ctx, intent_id, execution.id, status, error).await {
        Ok(Some(row)) => {
            tracing::info!(%intent_id, status = ?status, "intent ended");
            record_outcome(&row);
        }
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(%intent_id, error = %err, "cannot record the end of the intent")
        }
    }
}

/// Counts a finished deployment in the metrics, by platform and outcome.
fn record_outcome(intent: &intents::Model) {
    let platform = stored_plan(intent).map(|p| p.request.platform);
    let outcome = match intent.status {
        IntentStatus::Completed => "completed",
        IntentStatus::Failed => "failed",
        IntentStatus::Cancelled => "cancelled",
        IntentStatus::RolledBack => "rolled_back",
        _ => return,
    };
    let platform = platform.map_or("unknown", |p| p.as_str());
    crate::metrics::record_deployment(platform, outcome);
}
