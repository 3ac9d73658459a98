//! Prompts: `promptSchema`, `prompts` (live and applied), `promptVersions`, `promptDiff`,
//! `updatePrompts`, `rollbackPrompts`, `bulkUpdatePrompts`, `importLivePrompts`. Every change
//! is a new numbered version; pushes run as `prompt.sync` executions.

use async_graphql::{ComplexObject, Context, Enum, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use orchestrator_core::CoreContext;
use orchestrator_core::backends::prompt_service::{self, ResolvedSchema, SchemaSource};
use orchestrator_core::backends::{ChangeKind, FieldChange};
use orchestrator_core::paging::PageRequest;
use orchestrator_entity::prompt_versions;
use serde_json::Value;
use uuid::Uuid;

use super::backends::FormFieldTemplate;
use super::executions::Execution;
use super::projects::parse_id;
use super::scalars::{CountedConnection, connection};
use crate::auth::caller;
use crate::error::{GqlResult, IntoGql};

/// Status of a prompt version.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "orchestrator_entity::PromptVersionStatus")]
pub enum PromptVersionStatus {
    /// Stored; its sync has not finished.
    Pending,
    /// The backend took it.
    Applied,
    /// The backend did not take it; `error` says why.
    Failed,
}

/// Where a prompt schema was read from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PromptSchemaSource {
    /// From the backend, just now.
    Live,
    /// The one stored when the backend was adopted or created (the backend did not answer).
    Stored,
    /// The backend type's prompt form (nothing else was available).
    Template,
}

/// A backend's prompt form.
#[derive(SimpleObject)]
pub struct PromptSchema {
    pub source: PromptSchemaSource,
    pub fields: Vec<FormFieldTemplate>,
    /// Why the live schema could not be read, when `source` is not `LIVE`.
    pub live_error: Option<String>,
}

impl From<ResolvedSchema> for PromptSchema {
    fn from(r: ResolvedSchema) -> Self {
        PromptSchema {
            source: match r.source {
                SchemaSource::Live => PromptSchemaSource::Live,
                SchemaSource::Stored => PromptSchemaSource::Stored,
                SchemaSource::Template => PromptSchemaSource::Template,
            },
            fields: r.schema.fields.into_iter().map(Into::into).collect(),
            live_error: r.live_error,
        }
    }
}

/// One immutable version of a backend's prompts.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PromptVersion {
    pub id: ID,
    pub backend_id: ID,
    /// 1, 2, 3… per backend.
    pub version: i32,
    /// The field values, as pushed to the backend.
    pub prompts: Json<Value>,
    pub message: String,
    /// Who made the change.
    pub author: String,
    pub status: PromptVersionStatus,
    /// The backend's answer when it did not take the version.
    pub error: Option<String>,
    /// The `prompt.sync` execution pushing it (none for imported and adopted values).
    pub execution_id: Option<ID>,
    pub created_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
}

impl From<prompt_versions::Model> for PromptVersion {
    fn from(m: prompt_versions::Model) -> Self {
        PromptVersion {
            id: ID(m.id.to_string()),
            backend_id: ID(m.backend_id.to_string()),
            version: m.version,
            prompts: Json(m.prompts),
            message: m.message,
            author: m.author,
            status: m.status.into(),
            error: m.error,
            execution_id: m.execution_id.map(|id| ID(id.to_string())),
            created_at: m.created_at,
            applied_at: m.applied_at,
        }
    }
}

#[ComplexObject]
impl PromptVersion {
    /// The `prompt.sync` execution pushing it, with its stages and logs.
    async fn execution(&self, ctx: &Context<'_>) -> GqlResult<Option<Execution>> {
        let Some(id) = &self.execution_id else {
            return Ok(None);
        };
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(id, "execution")?;
        let row = orchestrator_core::engine::service::get_execution(core, who, id)
            .await
            .gql()?;
        Ok(Some(row.into()))
    }
}

/// A backend's prompt values: what it holds now and the last version it took.
#[derive(SimpleObject)]
pub struct Prompts {
    /// The values read from the backend now; null when it could not be asked.
    pub live: Option<Json<Value>>,
    /// Why `live` is null.
    pub live_error: Option<String>,
    /// The newest `APPLIED` version.
    pub applied: Option<PromptVersion>,
}

/// How a field differs between two versions.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PromptChangeKind {
    /// Only in the newer version.
    Added,
    /// Only in the older version.
    Removed,
    /// In both, with different values.
    Changed,
}

/// One field that differs between two versions.
#[derive(SimpleObject)]
pub struct PromptFieldChange {
    pub field: String,
    /// The value in `from` (null when added).
    pub before: Option<Json<Value>>,
    /// The value in `to` (null when removed).
    pub after: Option<Json<Value>>,
    pub kind: PromptChangeKind,
}

impl From<FieldChange> for PromptFieldChange {
    fn from(c: FieldChange) -> Self {
        PromptFieldChange {
            field: c.field,
            before: c.before.map(Json),
            after: c.after.map(Json),
            kind: match c.kind {
                ChangeKind::Added => PromptChangeKind::Added,
                ChangeKind::Removed => PromptChangeKind::Removed,
                ChangeKind::Changed => PromptChangeKind::Changed,
            },
        }
    }
}

/// One backend of a bulk update.
#[derive(SimpleObject)]
pub struct BulkPromptResult {
    pub backend_id: ID,
    /// The version stored for it.
    pub version: PromptVersion,
    /// The version's status when the update was accepted (`PENDING`); the execution's
    /// output and the version itself tell the outcome.
    pub status: PromptVersionStatus,
    pub error: Option<String>,
}

/// What `bulkUpdatePrompts` started.
#[derive(SimpleObject)]
pub struct BulkPromptUpdate {
    /// One `prompt.sync` stage per backend; its output lists each backend's outcome
    /// (`results: [{ backendId, version, status, error }]`).
    pub execution: Execution,
    pub results: Vec<BulkPromptResult>,
}

#[derive(Default)]
pub struct PromptQuery;

#[Object]
impl PromptQuery {
    /// The backend's prompt form: read from the backend now, else the stored one (`source`
    /// says which).
    async fn prompt_schema(&self, ctx: &Context<'_>, backend_id: ID) -> GqlResult<PromptSchema> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&backend_id, "backend")?;
        Ok(prompt_service::prompt_schema(core, who, id)
            .await
            .gql()?
            .into())
    }

    /// The values the backend holds now (`live`, read from it) and its last applied version.
    async fn prompts(&self, ctx: &Context<'_>, backend_id: ID) -> GqlResult<Prompts> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&backend_id, "backend")?;
        let values = prompt_service::prompt_values(core, who, id).await.gql()?;
        Ok(Prompts {
            live: values.live.map(|v| Json(Value::Object(v))),
            live_error: values.live_error,
            applied: values.applied.map(Into::into),
        })
    }

    /// The backend's prompt versions, newest first.
    async fn prompt_versions(
        &self,
        ctx: &Context<'_>,
        backend_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<CountedConnection<PromptVersion>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&backend_id, "backend")?;
        let page = PageRequest::new(first, after.as_deref()).gql()?;
        let rows = prompt_service::list_versions(core, who, id, page)
            .await
            .gql()?;
        Ok(connection(rows, PromptVersion::from))
    }

    /// The fields that differ from version `from` to version `to`, by field name.
    async fn prompt_diff(
        &self,
        ctx: &Context<'_>,
        backend_id: ID,
        from: i32,
        to: i32,
    ) -> GqlResult<Vec<PromptFieldChange>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&backend_id, "backend")?;
        let changes = prompt_service::prompt_diff(core, who, id, from, to)
            .await
            .gql()?;
        Ok(changes.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct PromptMutation;

#[Object]
impl PromptMutation {
    /// Stores `prompts` as the backend's next version (`PENDING`) and pushes it with a
    /// `prompt.sync` execution; the version ends `APPLIED` or `FAILED`. The values are checked
    /// against the backend's schema first (each problem names `prompts.<field>`); refused
    /// values store nothing and send nothing.
    async fn update_prompts(
        &self,
        ctx: &Context<'_>,
        backend_id: ID,
        prompts: Json<Value>,
        #[graphql(default)] message: String,
    ) -> GqlResult<PromptVersion> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&backend_id, "backend")?;
        Ok(
            prompt_service::update_prompts(core, who, id, prompts.0, &message)
                .await
                .gql()?
                .into(),
        )
    }

    /// Pushes the values of an earlier `version` again, as a new version ("rollback to
    /// version V"); history is never rewritten.
    async fn rollback_prompts(
        &self,
        ctx: &Context<'_>,
        backend_id: ID,
        version: i32,
    ) -> GqlResult<PromptVersion> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&backend_id, "backend")?;
        Ok(prompt_service::rollback_prompts(core, who, id, version)
            .await
            .gql()?
            .into())
    }

    /// Pushes the same `prompts` to several backends of a project: one execution with one
    /// sync stage per backend. Every backend's schema is checked first (any problem refuses
    /// the whole request); a backend that then fails to take its version does not stop the
    /// others.
    async fn bulk_update_prompts(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        backend_ids: Vec<ID>,
        prompts: Json<Value>,
        #[graphql(default)] message: String,
    ) -> GqlResult<BulkPromptUpdate> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let ids = backend_ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                Uuid::parse_str(id.as_str()).map_err(|_| {
                    orchestrator_core::CoreError::bad_input(
                        format!("backendIds[{i}]"),
                        "not a backend id",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .gql()?;
        let started =
            prompt_service::bulk_update_prompts(core, who, project_id, &ids, prompts.0, &message)
                .await
                .gql()?;
        Ok(BulkPromptUpdate {
            execution: started.execution.into(),
            results: started
                .versions
                .into_iter()
                .map(|v| BulkPromptResult {
                    backend_id: ID(v.backend_id.to_string()),
                    status: v.status.into(),
                    error: v.error.clone(),
                    version: v.into(),
                })
                .collect(),
        })
    }

    /// Records the values the backend holds now as a new version, `APPLIED` at once, and
    /// clears `DRIFTED`.
    async fn import_live_prompts(
        &self,
        ctx: &Context<'_>,
        backend_id: ID,
    ) -> GqlResult<PromptVersion> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&backend_id, "backend")?;
        Ok(prompt_service::import_live_prompts(core, who, id)
            .await
            .gql()?
            .into())
    }
}
