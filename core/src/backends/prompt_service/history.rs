//! A backend's prompt history: its versions, newest first, the last one it took, and the
//! per-field difference between two of them.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use orchestrator_entity::{PromptVersionStatus, Role, prompt_versions};

use crate::auth::Identity;
use crate::backends::prompts::{FieldChange, diff};
use crate::backends::service::backend_for;
use crate::context::CoreContext;
use crate::error::{CoreError, CoreResult};
use crate::paging::{Page, PageRequest};

/// The backend's newest `APPLIED` version (no access check).
pub async fn last_applied(
    ctx: &CoreContext,
    backend_id: Uuid,
) -> CoreResult<Option<prompt_versions::Model>> {
    Ok(prompt_versions::Entity::find()
        .filter(prompt_versions::Column::BackendId.eq(backend_id))
        .filter(prompt_versions::Column::Status.eq(PromptVersionStatus::Applied))
        .order_by_desc(prompt_versions::Column::Version)
        .one(&ctx.db)
        .await?)
}

/// The backend's versions, newest first (viewers).
pub async fn list_versions(
    ctx: &CoreContext,
    who: &Identity,
    backend_id: Uuid,
    page: PageRequest,
) -> CoreResult<Page<prompt_versions::Model>> {
    let backend = backend_for(ctx, who, backend_id, Role::Viewer).await?;
    let query =
        prompt_versions::Entity::find().filter(prompt_versions::Column::BackendId.eq(backend.id));
    let query = query.order_by_desc(prompt_versions::Column::Version);
    page.fetch(&ctx.db, query).await
}

pub(super) async fn version_numbered(
    ctx: &CoreContext,
    backend_id: Uuid,
    version: i32,
) -> CoreResult<prompt_versions::Model> {
    prompt_versions::Entity::find()
        .filter(prompt_versions::Column::BackendId.eq(backend_id))
        .filter(prompt_versions::Column::Version.eq(version))
        .one(&ctx.db)
        .await?
        .ok_or(CoreError::NotFound {
            entity: "prompt version",
        })
}

/// The fields that differ from version `from` to version `to` (viewers).
pub async fn prompt_diff(
    ctx: &CoreContext,
    who: &Identity,
    backend_id: Uuid,
    from: i32,
    to: i32,
) -> CoreResult<Vec<FieldChange>> {
    let backend = backend_for(ctx, who, backend_id, Role::Viewer).await?;
    let from = version_numbered(ctx, backend.id, from).await?;
    let to = version_numbered(ctx, backend.id, to).await?;
    Ok(diff(&from.prompts, &to.prompts))
}
