//! The audit log: every mutation records who did what to which target, when, and how it
//! ended. Only ids and outcomes are kept — never arguments, so no secret lands here.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use orchestrator_entity::{Role, audit_log};

use crate::auth::Identity;
use crate::context::CoreContext;
use crate::error::CoreResult;
use crate::paging::{Page, PageRequest};

/// One audit entry to write.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub project_id: Option<Uuid>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    /// `OK` or the error code.
    pub outcome: String,
}

/// Writes an entry. Failures are logged, not raised: the mutation already happened.
pub async fn record(ctx: &CoreContext, entry: AuditEntry) {
    tracing::info!(
        actor = %entry.actor,
        action = %entry.action,
        target = entry.target.as_deref().unwrap_or("-"),
        outcome = %entry.outcome,
        "audit"
    );
    let row = audit_log::ActiveModel {
        id: Set(Uuid::new_v4()),
        project_id: Set(entry.project_id),
        actor: Set(entry.actor),
        action: Set(entry.action),
        target: Set(entry.target),
        outcome: Set(entry.outcome),
        detail: Set(None),
        created_at: Set(Utc::now()),
    };
    if let Err(err) = row.insert(&ctx.db).await {
        tracing::error!(error = %err, "could not write the audit log");
    }
}

/// Entries of a project, newest first (project admins only).
pub async fn list(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    page: PageRequest,
) -> CoreResult<Page<audit_log::Model>> {
    crate::projects::get_authorized(ctx, who, project_id, Role::Admin).await?;
    let query = audit_log::Entity::find().filter(audit_log::Column::ProjectId.eq(project_id));
    let query = query
        .order_by_desc(audit_log::Column::CreatedAt)
        .order_by_desc(audit_log::Column::Id);
    page.fetch(&ctx.db, query).await
}
