//! Backends: `backendTypes`, `backends`, `backend(id)`, `validateService`,
//! `orphanedServices`, `createBackend`, `adoptBackend`, `deleteBackend`, `removeBackend`.
//! Secret configuration values never appear in answers: only their names, masked.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use orchestrator_core::CoreContext;
use orchestrator_core::backends::service::{self, AdoptBackend, CreateBackend};
use orchestrator_core::backends::{BackendType, FormField, registry};
use orchestrator_core::paging::PageRequest;
use orchestrator_entity::backends;
use serde_json::Value;

use super::blueprints::to_engine_platform;
use super::enums::Platform;
use super::projects::parse_id;
use super::scalars::{CountedConnection, connection};
use crate::auth::caller;
use crate::error::{GqlResult, IntoGql};

/// Lifecycle status of a backend.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "orchestrator_entity::BackendStatus")]
pub enum BackendStatus {
    Provisioning,
    Active,
    Unhealthy,
    Drifted,
    Failed,
    Deleting,
    Deleted,
    Removed,
}

/// One field of a form a frontend renders without knowing the backend type.
#[derive(SimpleObject)]
pub struct FormFieldTemplate {
    pub name: String,
    pub label: String,
    /// `text`, `textarea`, `number`, `select`, `boolean` or `password`.
    #[graphql(name = "type")]
    pub field_type: String,
    pub required: bool,
    /// The choices of a `select`.
    pub options: Vec<String>,
    pub default: Option<Json<Value>>,
    /// Stored encrypted and never shown again.
    pub secret: bool,
    pub help: Option<String>,
}

impl From<FormField> for FormFieldTemplate {
    fn from(f: FormField) -> Self {
        FormFieldTemplate {
            name: f.name,
            label: f.label,
            field_type: f.field_type.as_str().to_owned(),
            required: f.required,
            options: f.options,
            default: f.default.map(Json),
            secret: f.secret,
            help: f.help,
        }
    }
}

/// What the orchestrator can do with backends of a type.
#[derive(SimpleObject)]
pub struct BackendCapabilities {
    pub create: bool,
    pub adopt: bool,
    pub delete: bool,
    pub update_prompts: bool,
}

/// A kind of backend, with the forms to create or adopt one and edit its prompts.
#[derive(SimpleObject)]
pub struct BackendTypeInfo {
    pub name: String,
    pub label: String,
    pub description: String,
    pub capabilities: BackendCapabilities,
    pub features: Vec<String>,
    pub configuration_fields: Vec<FormFieldTemplate>,
    pub prompt_fields: Vec<FormFieldTemplate>,
    /// The blueprint instances are created from (types that can be created).
    pub blueprint: Option<String>,
}

fn type_info(ty: &dyn BackendType) -> BackendTypeInfo {
    let caps = ty.capabilities();
    BackendTypeInfo {
        name: ty.name().to_owned(),
        label: ty.label().to_owned(),
        description: ty.description().to_owned(),
        capabilities: BackendCapabilities {
            create: caps.create,
            adopt: caps.adopt,
            delete: caps.delete,
            update_prompts: caps.update_prompts,
        },
        features: ty.features().into_iter().map(str::to_owned).collect(),
        configuration_fields: ty
            .configuration_fields()
            .into_iter()
            .map(Into::into)
            .collect(),
        prompt_fields: ty.prompt_fields().into_iter().map(Into::into).collect(),
        blueprint: ty.blueprint().map(str::to_owned),
    }
}

/// An AI backend the orchestrator manages.
#[derive(SimpleObject)]
pub struct Backend {
    pub id: ID,
    pub project_id: ID,
    pub name: String,
    /// `managed` or `custom`.
    pub backend_type: String,
    pub status: BackendStatus,
    /// Why it is in its status (failing check, drift summary, …).
    pub status_message: Option<String>,
    pub url: Option<String>,
    pub platform: Option<Platform>,
    /// The non-secret configuration values.
    pub configuration: Json<Value>,
    /// Names of the secret configuration values that are stored (values are never shown).
    pub secret_fields: Vec<String>,
    /// The intent that deployed it (managed backends).
    pub intent_id: Option<ID>,
    /// Per-field differences between the backend and its last applied prompt version.
    pub drift: Option<Json<Value>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Backend {
    fn from_row(m: backends::Model, secret_fields: Vec<String>) -> Self {
        Backend {
            id: ID(m.id.to_string()),
            project_id: ID(m.project_id.to_string()),
            name: m.name,
            backend_type: m.backend_type,
            status: m.status.into(),
            status_message: m.status_message,
            url: m.url,
            platform: m.platform.map(Into::into),
            configuration: Json(m.configuration),
            secret_fields,
            intent_id: m.intent_id.map(|id| ID(id.to_string())),
            drift: m.drift.map(Json),
            last_checked_at: m.last_checked_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl From<backends::Model> for Backend {
    fn from(m: backends::Model) -> Self {
        let secret_fields = service::secret_field_names(&m);
        Backend::from_row(m, secret_fields)
    }
}

/// One `validateService` check.
#[derive(SimpleObject)]
pub struct ServiceCheck {
    /// `reachable`, `health`, `prompt_management`, `schema` or `prompts`.
    pub name: String,
    pub ok: bool,
    /// Not run because an earlier check failed.
    pub skipped: bool,
    pub latency_ms: Option<i64>,
    pub message: String,
}

/// What `validateService` found.
#[derive(SimpleObject)]
pub struct ServiceValidation {
    /// Every check passed: the service can be adopted.
    pub ok: bool,
    pub checks: Vec<ServiceCheck>,
}

/// A service on a platform that looks like a backend and is not managed yet.
#[derive(SimpleObject)]
pub struct OrphanedService {
    pub platform: Platform,
    /// `Container` or `Service`.
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// Where it answers, when known.
    pub url: Option<String>,
    /// Why it was found: our labels, or the custom-backend `/health` shape.
    pub reason: String,
}

/// Input of `validateService`.
#[derive(InputObject)]
pub struct ValidateServiceInput {
    pub project_id: ID,
    /// `custom` or `managed`.
    pub backend_type: String,
    pub url: String,
}

/// Input of `adoptBackend`.
#[derive(InputObject)]
pub struct AdoptBackendInput {
    pub project_id: ID,
    pub name: String,
    /// `custom` or `managed`.
    #[graphql(default = "custom")]
    pub backend_type: String,
    pub url: String,
    /// Values for the type's `configurationFields`.
    pub configuration: Option<Json<Value>>,
}

/// Input of `createBackend`.
#[derive(InputObject)]
pub struct CreateBackendInput {
    pub project_id: ID,
    pub name: String,
    /// A type that can be created (`managed`).
    #[graphql(default = "managed")]
    pub backend_type: String,
    /// Values for the type's `configurationFields`.
    pub configuration: Option<Json<Value>>,
    pub platform: Option<Platform>,
    pub namespace: Option<String>,
    /// Blueprint parameters, `{ "aaf-backend": { "image": "…" } }`, as `deploy` takes them.
    pub params: Option<Json<Value>>,
}

#[derive(Default)]
pub struct BackendQuery;

#[Object]
impl BackendQuery {
    /// Every backend type with its capabilities and form templates.
    async fn backend_types(&self, ctx: &Context<'_>) -> GqlResult<Vec<BackendTypeInfo>> {
        caller(ctx)?;
        Ok(registry().iter().map(|ty| type_info(*ty)).collect())
    }

    /// Backends of a project, newest first; removed and deleted ones only when asked for by
    /// status.
    async fn backends(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        #[graphql(name = "type")] backend_type: Option<String>,
        status: Option<BackendStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<CountedConnection<Backend>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let page = PageRequest::new(first, after.as_deref()).gql()?;
        let rows = service::list_backends(
            core,
            who,
            project_id,
            backend_type.as_deref(),
            status.map(Into::into),
            page,
        )
        .await
        .gql()?;
        Ok(connection(rows, Backend::from))
    }

    /// One backend.
    async fn backend(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Backend> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "backend")?;
        Ok(
            service::backend_for(core, who, id, orchestrator_entity::Role::Viewer)
                .await
                .gql()?
                .into(),
        )
    }

    /// Checks whether the service at `url` speaks the backend contract: each check with
    /// pass/fail, latency and why. The URL passes the outbound guard first.
    async fn validate_service(
        &self,
        ctx: &Context<'_>,
        input: ValidateServiceInput,
    ) -> GqlResult<ServiceValidation> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&input.project_id, "project")?;
        let report = service::validate(core, who, project_id, &input.backend_type, &input.url)
            .await
            .gql()?;
        Ok(ServiceValidation {
            ok: report.ok,
            checks: report
                .checks
                .into_iter()
                .map(|c| ServiceCheck {
                    name: c.name.to_owned(),
                    ok: c.ok,
                    skipped: c.skipped,
                    latency_ms: c.latency_ms.map(|ms| ms as i64),
                    message: c.message,
                })
                .collect(),
        })
    }

    /// Containers (Docker) that carry the orchestrator's labels or answer the custom-backend
    /// `/health` shape and are not linked to a backend of the project.
    async fn orphaned_services(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        platform: Platform,
    ) -> GqlResult<Vec<OrphanedService>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let found = orchestrator_core::backends::orphans::orphaned_services(
            core,
            who,
            project_id,
            to_engine_platform(platform),
        )
        .await
        .gql()?;
        Ok(found
            .into_iter()
            .map(|o| OrphanedService {
                platform,
                kind: o.kind,
                name: o.name,
                namespace: o.namespace,
                url: o.url,
                reason: o.reason,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct BackendMutation;

#[Object]
impl BackendMutation {
    /// Adopts a running service after every `validateService` check passed; its live
    /// prompts become version 1. Refused with the failing checks otherwise (nothing stored);
    /// a URL already adopted in the project is a `CONFLICT`.
    async fn adopt_backend(
        &self,
        ctx: &Context<'_>,
        input: AdoptBackendInput,
    ) -> GqlResult<Backend> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&input.project_id, "project")?;
        let row = service::adopt_backend(
            core,
            who,
            AdoptBackend {
                project_id,
                name: input.name,
                backend_type: input.backend_type,
                url: input.url,
                configuration: input.configuration.map(|j| j.0).unwrap_or(Value::Null),
            },
        )
        .await
        .gql()?;
        Ok(row.into())
    }

    /// Creates a managed backend: deploys the type's blueprint through an intent and ends
    /// `ACTIVE` once the service passes validation (`FAILED` with the reason otherwise).
    async fn create_backend(
        &self,
        ctx: &Context<'_>,
        input: CreateBackendInput,
    ) -> GqlResult<Backend> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&input.project_id, "project")?;
        let row = service::create_backend(
            core,
            who,
            CreateBackend {
                project_id,
                name: input.name,
                backend_type: input.backend_type,
                configuration: input.configuration.map(|j| j.0).unwrap_or(Value::Null),
                platform: input.platform.map(to_engine_platform),
                namespace: input.namespace,
                params: input.params.map(|j| j.0),
            },
        )
        .await
        .gql()?;
        Ok(row.into())
    }

    /// Deletes a managed backend by removing its deployment (intent rollback); it ends
    /// `DELETED`. `FORBIDDEN` for custom backends, which are not ours to delete.
    async fn delete_backend(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Backend> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "backend")?;
        Ok(service::delete_backend(core, who, id).await.gql()?.into())
    }

    /// Stops managing a backend; the service is never contacted.
    async fn remove_backend(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Backend> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "backend")?;
        Ok(service::remove_backend(core, who, id).await.gql()?.into())
    }
}
