//! Service functions behind the prompt API: a backend's prompt schema and values, its
//! version history and diffs, and the changes — update, rollback, bulk update, import of the
//! live values. Every change is a new immutable version; updates and rollbacks are pushed by
//! a `prompt.sync` execution (see [`super::sync`]). Values are checked against the backend's
//! schema before anything is stored, so a refused change leaves no version and sends nothing.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use orchestrator_entity::{
    BackendStatus, Priority, PromptVersionStatus, Role, backends, executions, prompt_versions,
};

use super::prompts::validate_prompts;
use super::schema::PromptSchema;
use super::service::{backend_for, client_for, schema_of, type_named};
use crate::auth::Identity;
use crate::context::CoreContext;
use crate::engine::service::{NewExecution, enqueue_first, insert_execution};
use crate::error::{CoreError, CoreResult};

mod bulk;
mod history;

pub use bulk::{BulkUpdate, MAX_BULK_BACKENDS, bulk_update_prompts};
use history::version_numbered;
pub use history::{last_applied, list_versions, prompt_diff};

/// Longest version message.
pub const MAX_MESSAGE_CHARS: usize = 1000;
/// Largest prompt values accepted, serialized.
pub const MAX_PROMPTS_BYTES: usize = 256 * 1024;

/// Where a prompt schema was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaSource {
    /// `GET /api/prompts/schema`, just now.
    Live,
    /// What the backend served when it was adopted or created.
    Stored,
    /// The backend type's prompt form (nothing else was available).
    Template,
}

/// A backend's prompt schema and where it came from.
#[derive(Debug, Clone)]
pub struct ResolvedSchema {
    pub schema: PromptSchema,
    pub source: SchemaSource,
    /// Why the live schema could not be read, when it was not.
    pub live_error: Option<String>,
}

/// What `prompts(backendId)` answers.
#[derive(Debug, Clone)]
pub struct PromptValues {
    /// The values the backend holds now; `None` when it could not be asked.
    pub live: Option<Map<String, Value>>,
    /// Why the live values could not be read.
    pub live_error: Option<String>,
    /// The last version the backend took.
    pub applied: Option<prompt_versions::Model>,
}

/// `Ok` when the orchestrator may change the backend's prompts; otherwise a `CONFLICT`
/// saying why (no longer managed, no service URL yet, a type without prompt management).
pub fn manageable(backend: &backends::Model) -> CoreResult<()> {
    if matches!(
        backend.status,
        BackendStatus::Removed | BackendStatus::Deleted | BackendStatus::Deleting
    ) {
        return Err(CoreError::Conflict(format!(
            "backend {} is {:?}: its prompts are no longer managed",
            backend.name, backend.status
        )));
    }
    if backend.url.is_none() {
        return Err(CoreError::Conflict(format!(
            "backend {} has no service URL yet ({:?})",
            backend.name, backend.status
        )));
    }
    match super::types::backend_type(&backend.backend_type) {
        Some(ty) if ty.capabilities().update_prompts => Ok(()),
        _ => Err(CoreError::Conflict(format!(
            "{} backends do not let the orchestrator manage their prompts",
            backend.backend_type
        ))),
    }
}

/// The schema to edit and check the backend's prompts with: the live one, else the stored
/// one, else the type's template.
pub async fn resolve_schema(
    ctx: &CoreContext,
    backend: &backends::Model,
) -> CoreResult<ResolvedSchema> {
    let live = match client_for(ctx, backend).await {
        Ok(client) => client.prompt_schema().await.map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    let live_error = match live {
        Ok(schema) => {
            return Ok(ResolvedSchema {
                schema,
                source: SchemaSource::Live,
                live_error: None,
            });
        }
        Err(why) => why,
    };
    if let Some(schema) = schema_of(backend) {
        return Ok(ResolvedSchema {
            schema,
            source: SchemaSource::Stored,
            live_error: Some(live_error),
        });
    }
    let template = type_named("backendType", &backend.backend_type)?.prompt_fields();
    if template.is_empty() {
        return Err(CoreError::Conflict(format!(
            "the prompt schema of backend {} cannot be read ({live_error}) and none is stored",
            backend.name
        )));
    }
    Ok(ResolvedSchema {
        schema: PromptSchema::from_fields(template),
        source: SchemaSource::Template,
        live_error: Some(live_error),
    })
}

/// The backend's prompt schema (viewers).
pub async fn prompt_schema(
    ctx: &CoreContext,
    who: &Identity,
    backend_id: Uuid,
) -> CoreResult<ResolvedSchema> {
    let backend = backend_for(ctx, who, backend_id, Role::Viewer).await?;
    resolve_schema(ctx, &backend).await
}

/// The values the backend holds now and its last applied version (viewers). A backend that
/// cannot be asked gives `live: None` with the reason, not an error.
pub async fn prompt_values(
    ctx: &CoreContext,
    who: &Identity,
    backend_id: Uuid,
) -> CoreResult<PromptValues> {
    let backend = backend_for(ctx, who, backend_id, Role::Viewer).await?;
    let live = match client_for(ctx, &backend).await {
        Ok(client) => client.prompts().await.map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    let (live, live_error) = match live {
        Ok(values) => (Some(values), None),
        Err(why) => (None, Some(why)),
    };
    Ok(PromptValues {
        live,
        live_error,
        applied: last_applied(ctx, backend.id).await?,
    })
}

fn check_message(message: &str) -> CoreResult<String> {
    let message = message.trim();
    if message.chars().count() > MAX_MESSAGE_CHARS
        || message
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(CoreError::bad_input(
            "message",
            format!("must be at most {MAX_MESSAGE_CHARS} printable characters"),
        ));
    }
    Ok(message.to_owned())
}

fn check_size(prompts: &Value) -> CoreResult<()> {
    if serde_json::to_vec(prompts).map_or(0, |v| v.len()) > MAX_PROMPTS_BYTES {
        return Err(CoreError::bad_input(
            "prompts",
            format!("must be at most {MAX_PROMPTS_BYTES} bytes of JSON"),
        ));
    }
    Ok(())
}

/// Stores a new `PENDING` version of each backend and the execution that pushes them, then
/// queues it. When this returns, the first sync stage is in the queue.
async fn start_sync(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    changes: Vec<(backends::Model, Value)>,
    message: &str,
    bulk: bool,
) -> CoreResult<(executions::Model, Vec<prompt_versions::Model>)> {
    let targets: Vec<(Uuid, Uuid)> = changes
        .iter()
        .map(|(backend, _)| (backend.id, Uuid::new_v4()))
        .collect();
    let spec = super::sync::sync_pipeline(&targets, bulk);
    let input = match targets.as_slice() {
        [(backend_id, version_id)] if !bulk => {
            json!({ "backendId": backend_id, "versionId": version_id })
        }
        _ => json!({
            "backendIds": targets.iter().map(|t| t.0).collect::<Vec<_>>(),
            "versionIds": targets.iter().map(|t| t.1).collect::<Vec<_>>(),
        }),
    };
    let txn = crate::db::begin_write(&ctx.db).await?;
    let (execution, first) = insert_execution(
        &txn,
        NewExecution {
            project_id,
            spec: &spec,
            input,
            priority: Priority::Normal,
            created_by: &who.subject,
            intent_id: None,
        },
    )
    .await?;
    let now = Utc::now();
    let mut versions = Vec::with_capacity(changes.len());
    for ((backend, values), (_, version_id)) in changes.into_iter().zip(&targets) {
        let number = next_number(&txn, backend.id).await?;
        let row = prompt_versions::ActiveModel {
            id: Set(*version_id),
            project_id: Set(project_id),
            backend_id: Set(backend.id),
            version: Set(number),
            prompts: Set(values),
            message: Set(message.to_owned()),
            author: Set(who.subject.clone()),
            status: Set(PromptVersionStatus::Pending),
            error: Set(None),
            execution_id: Set(Some(execution.id)),
            created_at: Set(now),
            applied_at: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(concurrent_change)?;
        versions.push(row);
    }
    txn.commit().await?;
    for row in &versions {
        crate::events::publish_prompt_version_row(ctx, row).await;
    }
    crate::events::publish_execution_row(ctx, &execution).await;
    enqueue_first(ctx, &execution, first).await?;
    Ok((execution, versions))
}

/// The number the backend's next version gets.
async fn next_number<C: sea_orm::ConnectionTrait>(conn: &C, backend_id: Uuid) -> CoreResult<i32> {
    let highest: Option<i32> = prompt_versions::Entity::find()
        .select_only()
        .column_as(prompt_versions::Column::Version.max(), "highest")
        .filter(prompt_versions::Column::BackendId.eq(backend_id))
        .into_tuple::<Option<i32>>()
        .one(conn)
        .await?
        .flatten();
    Ok(highest.unwrap_or(0) + 1)
}

fn concurrent_change(err: sea_orm::DbErr) -> CoreError {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => CoreError::Conflict(
            "another change to this backend's prompts was stored at the same time; try again"
                .into(),
        ),
        _ => CoreError::from(err),
    }
}

/// Stores `prompts` as the backend's next version and pushes it (operators). The values are
/// checked against the live schema (else the stored one) first: required fields, types,
/// select options, no unknown fields; each problem names `prompts.<field>`.
#[tracing::instrument(skip_all, fields(backend_id = %backend_id))]
pub async fn update_prompts(
    ctx: &CoreContext,
    who: &Identity,
    backend_id: Uuid,
    prompts: Value,
    message: &str,
) -> CoreResult<prompt_versions::Model> {
    let backend = backend_for(ctx, who, backend_id, Role::Operator).await?;
    manageable(&backend)?;
    let message = check_message(message)?;
    check_size(&prompts)?;
    let resolved = resolve_schema(ctx, &backend).await?;
    validate_prompts(&resolved.schema, &prompts, "prompts")?;
    let project_id = backend.project_id;
    let (_, mut versions) = start_sync(
        ctx,
        who,
        project_id,
        vec![(backend, prompts)],
        &message,
        false,
    )
    .await?;
    Ok(versions.remove(0))
}

/// Pushes the values of an earlier `version` again as the backend's next version, with the
/// message "rollback to version V" (operators). History is never rewritten.
#[tracing::instrument(skip_all, fields(backend_id = %backend_id))]
pub async fn rollback_prompts(
    ctx: &CoreContext,
    who: &Identity,
    backend_id: Uuid,
    version: i32,
) -> CoreResult<prompt_versions::Model> {
    let backend = backend_for(ctx, who, backend_id, Role::Operator).await?;
    manageable(&backend)?;
    let old = version_numbered(ctx, backend.id, version).await?;
    let resolved = resolve_schema(ctx, &backend).await?;
    if let Err(err) = validate_prompts(&resolved.schema, &old.prompts, "prompts") {
        return Err(CoreError::bad_input(
            "version",
            format!("version {version} does not fit the backend's prompt schema any more: {err}"),
        ));
    }
    let project_id = backend.project_id;
    let message = format!("rollback to version {version}");
    let (_, mut versions) = start_sync(
        ctx,
        who,
        project_id,
        vec![(backend, old.prompts)],
        &message,
        false,
    )
    .await?;
    Ok(versions.remove(0))
}

/// Records the values the backend holds now as its next version, `APPLIED` at once, and
/// clears `DRIFTED` (operators): "what is there is what we want".
#[tracing::instrument(skip_all, fields(backend_id = %backend_id))]
pub async fn import_live_prompts(
    ctx: &CoreContext,
    who: &Identity,
    backend_id: Uuid,
) -> CoreResult<prompt_versions::Model> {
    let backend = backend_for(ctx, who, backend_id, Role::Operator).await?;
    manageable(&backend)?;
    let client = client_for(ctx, &backend).await?;
    let live = client
        .prompts()
        .await
        .map_err(|e| CoreError::Conflict(format!("cannot read the backend's live prompts: {e}")))?;
    let now = Utc::now();
    let txn = crate::db::begin_write(&ctx.db).await?;
    let number = next_number(&txn, backend.id).await?;
    let row = prompt_versions::ActiveModel {
        id: Set(Uuid::new_v4()),
        project_id: Set(backend.project_id),
        backend_id: Set(backend.id),
        version: Set(number),
        prompts: Set(Value::Object(live)),
        message: Set("imported the prompts found on the service".into()),
        author: Set(who.subject.clone()),
        status: Set(PromptVersionStatus::Applied),
        error: Set(None),
        execution_id: Set(None),
        created_at: Set(now),
        applied_at: Set(Some(now)),
    }
    .insert(&txn)
    .await
    .map_err(concurrent_change)?;
    txn.commit().await?;
    crate::events::publish_prompt_version_row(ctx, &row).await;
    super::monitor::clear_drift(ctx, backend.id, row.version).await?;
    Ok(row)
}
