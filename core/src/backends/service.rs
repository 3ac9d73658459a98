//! Service functions behind the backend API: list and read backends, validate a service,
//! adopt one, stop managing one (`removeBackend`), create and delete managed ones. Every
//! function checks the caller's role in the backend's project; another project's backend is
//! `NOT_FOUND`.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use orchestrator_entity::{
    BackendStatus, IntentStatus, PromptVersionStatus, Role, backends, intents, prompt_versions,
};

use super::client::CustomBackendClient;
use super::schema::PromptSchema;
use super::types::{BackendType, backend_type, type_names};
use super::validate::{ServiceReport, validate_service};
use crate::auth::Identity;
use crate::context::CoreContext;
use crate::error::{CoreError, CoreResult, InputProblem};
use crate::outbound::{OutboundGuard, validate_outbound_url};
use crate::paging::{Page, PageRequest};

/// Longest backend name.
pub const MAX_NAME_LEN: usize = 100;

/// The backend type called `name`, or `BAD_USER_INPUT` on `field` listing the types.
pub fn type_named(field: &str, name: &str) -> CoreResult<&'static dyn BackendType> {
    backend_type(name).ok_or_else(|| {
        CoreError::bad_input(
            field,
            format!(
                "unknown backend type {name:?}; expected one of {}",
                type_names().join(", ")
            ),
        )
    })
}

/// The backend with `id` if the caller holds `role` in its project; `NOT_FOUND` otherwise.
pub async fn backend_for(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
    role: Role,
) -> CoreResult<backends::Model> {
    let not_found = || CoreError::NotFound { entity: "backend" };
    let backend = backends::Entity::find_by_id(id)
        .one(&ctx.db)
        .await?
        .ok_or_else(not_found)?;
    match crate::projects::get_authorized(ctx, who, backend.project_id, role).await {
        Ok(_) => Ok(backend),
        Err(CoreError::NotFound { .. }) => Err(not_found()),
        Err(other) => Err(other),
    }
}

/// A client for the backend's service, through the outbound guard. A backend without a URL
/// (removed, or still provisioning) is a `CONFLICT`.
pub async fn client_for(
    ctx: &CoreContext,
    backend: &backends::Model,
) -> CoreResult<CustomBackendClient> {
    let url = backend.url.as_deref().ok_or_else(|| {
        CoreError::Conflict(format!(
            "backend {} has no service URL (status {:?})",
            backend.name, backend.status
        ))
    })?;
    CustomBackendClient::connect(&OutboundGuard::from_config(&ctx.config), "backend.url", url).await
}

/// The prompt schema the backend served when last validated.
pub fn schema_of(backend: &backends::Model) -> Option<PromptSchema> {
    backend
        .prompt_schema
        .as_ref()
        .and_then(|v| PromptSchema::from_json(v).ok())
}

/// Backends of a project, newest first, optionally of one type or status. Removed and
/// deleted backends are listed only when asked for by status.
pub async fn list_backends(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    backend_type: Option<&str>,
    status: Option<BackendStatus>,
    page: PageRequest,
) -> CoreResult<Page<backends::Model>> {
    crate::projects::get_authorized(ctx, who, project_id, Role::Viewer).await?;
    let mut query = backends::Entity::find().filter(backends::Column::ProjectId.eq(project_id));
    if let Some(name) = backend_type {
        type_named("type", name)?;
        query = query.filter(backends::Column::BackendType.eq(name));
    }
    query = match status {
        Some(status) => query.filter(backends::Column::Status.eq(status)),
        None => query.filter(
            backends::Column::Status.is_not_in([BackendStatus::Removed, BackendStatus::Deleted]),
        ),
    };
    let query = query
        .order_by_desc(backends::Column::CreatedAt)
        .order_by_desc(backends::Column::Id);
    page.fetch(&ctx.db, query).await
}

/// Runs the `validateService` checks against `url` as a service of `type_name` (operators:
/// it makes outbound calls). The URL passes the outbound guard first.
#[tracing::instrument(skip_all, fields(project_id = %project_id))]
pub async fn validate(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    type_name: &str,
    url: &str,
) -> CoreResult<ServiceReport> {
    crate::projects::get_authorized(ctx, who, project_id, Role::Operator).await?;
    let ty = type_named("input.backendType", type_name)?;
    validate_outbound_url("input.url", url)?;
    let guard = OutboundGuard::from_config(&ctx.config);
    Ok(validate_service(&guard, url.trim(), ty).await)
}

/// Input of [`adopt_backend`].
#[derive(Debug, Clone)]
pub struct AdoptBackend {
    pub project_id: Uuid,
    pub name: String,
    pub backend_type: String,
    pub url: String,
    /// Values for the type's configuration form (secret ones are stored encrypted).
    pub configuration: Value,
}

fn check_name(field: &str, name: &str) -> CoreResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control)
    {
        return Err(CoreError::bad_input(
            field,
            format!("must be 1-{MAX_NAME_LEN} printable characters"),
        ));
    }
    Ok(name.to_owned())
}

/// The configuration with the `url` field filled in from the adopted URL when the type's
/// form has one and the caller left it out.
fn with_url(configuration: &Value, ty: &dyn BackendType, url: &str) -> CoreResult<Value> {
    let mut map = match configuration {
        Value::Null => Map::new(),
        Value::Object(map) => map.clone(),
        _ => {
            return Err(CoreError::bad_input(
                "input.configuration",
                "must be a JSON object of the type's configuration fields",
            ));
        }
    };
    if ty.configuration_fields().iter().any(|f| f.name == "url") && !map.contains_key("url") {
        map.insert("url".into(), json!(url));
    }
    Ok(Value::Object(map))
}

/// Seals secret configuration values for storage.
fn seal(ctx: &CoreContext, secrets: &Map<String, Value>) -> CoreResult<Option<String>> {
    if secrets.is_empty() {
        return Ok(None);
    }
    Ok(Some(crate::crypto::seal_json(&ctx.config, secrets)?))
}

/// Adopts a running service as a backend (operators). The service must pass every
/// `validateService` check — otherwise `BAD_USER_INPUT` with the failing checks and nothing
/// stored; a URL already adopted in the project is a `CONFLICT`. The live prompts become
/// version 1 (`APPLIED`), the baseline for drift detection.
#[tracing::instrument(skip_all, fields(project_id = %input.project_id))]
pub async fn adopt_backend(
    ctx: &CoreContext,
    who: &Identity,
    input: AdoptBackend,
) -> CoreResult<backends::Model> {
    let project =
        crate::projects::get_authorized(ctx, who, input.project_id, Role::Operator).await?;
    let name = check_name("input.name", &input.name)?;
    let ty = type_named("input.backendType", &input.backend_type)?;
    if !ty.capabilities().adopt {
        return Err(CoreError::bad_input(
            "input.backendType",
            format!("{} backends cannot be adopted", ty.name()),
        ));
    }
    let url = validate_outbound_url("input.url", &input.url)?.to_string();
    let url = url.trim_end_matches('/').to_owned();
    let configuration = with_url(&input.configuration, ty, &url)?;
    let validated = super::configuration::validate_configuration(ty, &configuration)?;
    if let Some(existing) = backends::Entity::find()
        .filter(backends::Column::ProjectId.eq(project.id))
        .filter(backends::Column::Url.eq(url.as_str()))
        .one(&ctx.db)
        .await?
    {
        return Err(CoreError::Conflict(format!(
            "{url} is already adopted in this project as backend {} ({})",
            existing.name, existing.id
        )));
    }
    let guard = OutboundGuard::from_config(&ctx.config);
    guard.check("input.url", &url).await?;
    let report = validate_service(&guard, &url, ty).await;
    if !report.ok {
        let details: Vec<InputProblem> = report
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| InputProblem {
                field: c.name.to_owned(),
                line: None,
                column: None,
                message: c.message.clone(),
            })
            .collect();
        let first = details
            .first()
            .map(|d| format!("{}: {}", d.field, d.message))
            .unwrap_or_default();
        return Err(CoreError::Invalid {
            field: "input.url".into(),
            message: format!("the service failed validation ({first})"),
            details,
        });
    }
    let schema = report
        .schema
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(anyhow::Error::from)?;
    let live = Value::Object(report.prompts.clone().unwrap_or_default());
    let now = Utc::now();
    let id = Uuid::new_v4();
    let txn = crate::db::begin_write(&ctx.db).await?;
    let backend = backends::ActiveModel {
        id: Set(id),
        project_id: Set(project.id),
        name: Set(name),
        backend_type: Set(ty.name().to_owned()),
        status: Set(BackendStatus::Active),
        status_message: Set(Some("adopted; every check passed".into())),
        url: Set(Some(url.clone())),
        platform: Set(None),
        configuration: Set(shown_configuration(&validated)),
        secrets: Set(seal(ctx, &validated.secrets)?),
        intent_id: Set(None),
        drift: Set(None),
        last_checked_at: Set(Some(now)),
        prompt_schema: Set(schema),
        sequence: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            CoreError::Conflict(format!("{url} is already adopted in this project"))
        }
        _ => CoreError::from(e),
    })?;
    prompt_versions::ActiveModel {
        id: Set(Uuid::new_v4()),
        project_id: Set(project.id),
        backend_id: Set(id),
        version: Set(1),
        prompts: Set(live),
        message: Set("prompts found on the service when it was adopted".into()),
        author: Set(who.subject.clone()),
        status: Set(PromptVersionStatus::Applied),
        error: Set(None),
        execution_id: Set(None),
        created_at: Set(now),
        applied_at: Set(Some(now)),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    crate::events::publish_backend_row(ctx, &backend).await;
    Ok(backend)
}

/// Stops managing a backend (operators); the service itself is never contacted. The record
/// stays, `REMOVED`, without its URL, so the service can be adopted again.
#[tracing::instrument(skip_all, fields(backend_id = %id))]
pub async fn remove_backend(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
) -> CoreResult<backends::Model> {
    let backend = backend_for(ctx, who, id, Role::Operator).await?;
    if matches!(
        backend.status,
        BackendStatus::Removed | BackendStatus::Deleted
    ) {
        return Ok(backend);
    }
    let message = match &backend.url {
        Some(url) => format!("no longer managed (was {url}); the service was not touched"),
        None => "no longer managed; the service was not touched".to_owned(),
    };
    update_status(ctx, id, BackendStatus::Removed, Some(message), true).await?;
    backend_for(ctx, who, id, Role::Viewer).await
}

/// Deletes a managed backend (project admins): its deployment is removed through the intent
/// rollback path and the backend ends `DELETED`. Custom backends are not ours to delete:
/// `FORBIDDEN`, pointing at `removeBackend`.
#[tracing::instrument(skip_all, fields(backend_id = %id))]
pub async fn delete_backend(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
) -> CoreResult<backends::Model> {
    let backend = backend_for(ctx, who, id, Role::Admin).await?;
    let ty = type_named("id", &backend.backend_type)?;
    if !ty.capabilities().delete {
        return Err(CoreError::Forbidden(format!(
            "{} backends are services the orchestrator adopted, not ones it created, so it never deletes them; use removeBackend to stop managing it",
            ty.name()
        )));
    }
    match backend.status {
        BackendStatus::Deleted | BackendStatus::Deleting => return Ok(backend),
        BackendStatus::Removed => {
            return Err(CoreError::Conflict(
                "the backend is no longer managed; there is nothing to delete".into(),
            ));
        }
        _ => {}
    }
    let Some(intent_id) = backend.intent_id else {
        update_status(
            ctx,
            id,
            BackendStatus::Deleted,
            Some("deleted".into()),
            true,
        )
        .await?;
        return backend_for(ctx, who, id, Role::Viewer).await;
    };
    update_status(
        ctx,
        id,
        BackendStatus::Deleting,
        Some("removing its deployment".into()),
        false,
    )
    .await?;
    if let Err(err) = crate::intent::service::rollback_intent(ctx, who, intent_id).await {
        update_status(
            ctx,
            id,
            BackendStatus::Failed,
            Some(format!("delete failed: {err}")),
            false,
        )
        .await?;
        return Err(err);
    }
    backend_for(ctx, who, id, Role::Viewer).await
}

/// Moves a backend to `status` with `message`, dropping its URL when `forget_url`, and
/// publishes it.
pub(crate) async fn update_status(
    ctx: &CoreContext,
    id: Uuid,
    status: BackendStatus,
    message: Option<String>,
    forget_url: bool,
) -> CoreResult<()> {
    let mut update = backends::Entity::update_many()
        .col_expr(backends::Column::Status, Expr::value(status))
        .col_expr(backends::Column::StatusMessage, Expr::value(message))
        .col_expr(backends::Column::UpdatedAt, Expr::value(Utc::now()))
        .col_expr(
            backends::Column::Sequence,
            Expr::col(backends::Column::Sequence).add(1),
        );
    if forget_url {
        update = update.col_expr(backends::Column::Url, Expr::value(Option::<String>::None));
    }
    update
        .filter(backends::Column::Id.eq(id))
        .exec(&ctx.db)
        .await?;
    crate::events::publish_backend(ctx, id).await;
    Ok(())
}

/// Keeps managed backends in step with the intents that deploy or delete them: a rollback
/// that ends `ROLLED_BACK` deletes the backend; a failed deployment fails it.
pub async fn follow_intent(ctx: &CoreContext, intent: &intents::Model) {
    let Ok(rows) = backends::Entity::find()
        .filter(backends::Column::IntentId.eq(intent.id))
        .all(&ctx.db)
        .await
    else {
        return;
    };
    for backend in rows {
        let next = match (backend.status, intent.status) {
            (BackendStatus::Deleting, IntentStatus::RolledBack) => Some((
                BackendStatus::Deleted,
                "deleted; its deployment was removed".to_owned(),
            )),
            (BackendStatus::Deleting, IntentStatus::Failed) => Some((
                BackendStatus::Failed,
                format!(
                    "delete failed: {}",
                    intent.error.clone().unwrap_or_default()
                ),
            )),
            (BackendStatus::Provisioning, IntentStatus::Failed | IntentStatus::Cancelled) => {
                Some((
                    BackendStatus::Failed,
                    format!(
                        "deployment {}: {}",
                        if intent.status == IntentStatus::Failed {
                            "failed"
                        } else {
                            "cancelled"
                        },
                        intent.error.clone().unwrap_or_default()
                    ),
                ))
            }
            (BackendStatus::Provisioning | BackendStatus::Failed, IntentStatus::Completed)
                if backend.url.is_none() =>
            {
                // Validation calls the service: off the path that published the change.
                tokio::spawn(finish_provisioning(
                    ctx.clone(),
                    backend.clone(),
                    intent.clone(),
                ));
                None
            }
            _ => None,
        };
        if let Some((status, message)) = next {
            let forget = status == BackendStatus::Deleted;
            if let Err(err) = update_status(ctx, backend.id, status, Some(message), forget).await {
                tracing::warn!(backend_id = %backend.id, error = %err, "cannot follow the backend's intent");
            }
        }
    }
}

/// Names of the type's secret configuration fields this backend has values for. The public
/// configuration holds them masked (`••••` and at most the last four characters).
pub fn secret_field_names(backend: &backends::Model) -> Vec<String> {
    let Some(ty) = backend_type(&backend.backend_type) else {
        return Vec::new();
    };
    ty.configuration_fields()
        .into_iter()
        .filter(|f| f.secret && backend.configuration.get(&f.name).is_some())
        .map(|f| f.name)
        .collect()
}

/// The public configuration with every secret value replaced by its mask.
fn shown_configuration(validated: &super::ValidatedConfiguration) -> Value {
    let mut shown = validated.public.clone();
    for (name, value) in &validated.secrets {
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        shown.insert(name.clone(), json!(crate::crypto::mask(&text)));
    }
    Value::Object(shown)
}

/// Input of [`create_backend`].
#[derive(Debug, Clone)]
pub struct CreateBackend {
    pub project_id: Uuid,
    pub name: String,
    pub backend_type: String,
    pub configuration: Value,
    pub platform: Option<crate::blueprint::Platform>,
    pub namespace: Option<String>,
    /// Blueprint parameters, `{ "<blueprint>": { "<parameter>": value } }`.
    pub params: Option<Value>,
}

/// Creates a managed backend (operators): the configuration is checked against the type's
/// form (secrets stored encrypted), the type's blueprint is deployed through an intent, and
/// the backend stays `PROVISIONING` until the deployment completes and the service passes
/// validation (`ACTIVE`), or ends `FAILED` with the reason (retry the intent to try again).
#[tracing::instrument(skip_all, fields(project_id = %input.project_id))]
pub async fn create_backend(
    ctx: &CoreContext,
    who: &Identity,
    input: CreateBackend,
) -> CoreResult<backends::Model> {
    let project =
        crate::projects::get_authorized(ctx, who, input.project_id, Role::Operator).await?;
    let name = check_name("input.name", &input.name)?;
    let ty = type_named("input.backendType", &input.backend_type)?;
    let blueprint = match (ty.capabilities().create, ty.blueprint()) {
        (true, Some(blueprint)) => blueprint,
        _ => {
            return Err(CoreError::bad_input(
                "input.backendType",
                format!(
                    "{} backends cannot be created by the orchestrator; adopt a running one with adoptBackend",
                    ty.name()
                ),
            ));
        }
    };
    let configuration = match &input.configuration {
        Value::Null => Value::Object(Map::new()),
        other => other.clone(),
    };
    let validated = super::configuration::validate_configuration(ty, &configuration)?;
    // Configuration values that are parameters of the blueprint go to the deployment.
    let catalogue = crate::blueprint::store::catalogue_for(ctx, project.id).await?;
    let declared: Vec<String> = catalogue
        .get(blueprint)
        .map(|bp| bp.parameters.keys().cloned().collect())
        .unwrap_or_default();
    let mut params: Map<String, Value> = match &input.params {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(CoreError::bad_input(
                "input.params",
                "expected an object of objects: { \"<blueprint>\": { \"<parameter>\": value } }",
            ));
        }
    };
    let own = params
        .entry(blueprint.to_owned())
        .or_insert_with(|| json!({}));
    if let Value::Object(own) = own {
        for (key, value) in validated.public.iter().chain(validated.secrets.iter()) {
            if declared.contains(key) && !own.contains_key(key) {
                own.insert(key.clone(), value.clone());
            }
        }
    }
    let now = Utc::now();
    let id = Uuid::new_v4();
    let platform = input.platform.unwrap_or(ctx.config.deploy_platform);
    let backend = backends::ActiveModel {
        id: Set(id),
        project_id: Set(project.id),
        name: Set(name.clone()),
        backend_type: Set(ty.name().to_owned()),
        status: Set(BackendStatus::Provisioning),
        status_message: Set(Some(format!("deploying {blueprint}"))),
        url: Set(None),
        platform: Set(Some(platform.into())),
        configuration: Set(shown_configuration(&validated)),
        secrets: Set(seal(ctx, &validated.secrets)?),
        intent_id: Set(None),
        drift: Set(None),
        last_checked_at: Set(None),
        prompt_schema: Set(None),
        sequence: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    };
    // Plan first, so a configuration the blueprint refuses stores nothing.
    let deploy = crate::intent::service::DeployInput {
        project_id: project.id,
        command: format!("install {blueprint}"),
        options: crate::intent::plan::DeployOptions {
            platform: Some(platform),
            namespace: input.namespace.clone(),
            params: Some(Value::Object(params)),
            ..Default::default()
        },
        dry_run: false,
    };
    crate::intent::service::plan_deployment(ctx, who, &deploy).await?;
    let backend = backend.insert(&ctx.db).await?;
    crate::events::publish_backend_row(ctx, &backend).await;
    let intent = match crate::intent::service::deploy(ctx, who, deploy).await {
        Ok(intent) => intent,
        Err(err) => {
            update_status(
                ctx,
                id,
                BackendStatus::Failed,
                Some(format!("deployment could not start: {err}")),
                false,
            )
            .await?;
            return Err(err);
        }
    };
    backends::Entity::update_many()
        .col_expr(backends::Column::IntentId, Expr::value(intent.id))
        .col_expr(
            backends::Column::Sequence,
            Expr::col(backends::Column::Sequence).add(1),
        )
        .filter(backends::Column::Id.eq(id))
        .exec(&ctx.db)
        .await?;
    // The deployment may have ended before the link was written: follow it now too.
    if let Some(intent) = intents::Entity::find_by_id(intent.id).one(&ctx.db).await? {
        follow_intent(ctx, &intent).await;
    }
    crate::events::publish_backend(ctx, id).await;
    backend_for(ctx, who, id, Role::Viewer).await
}

/// Where a freshly deployed managed backend answers: on Docker the root container's
/// published port on this host, on Kubernetes the blueprint's `url` export (cluster DNS).
async fn deployed_url(ctx: &CoreContext, intent: &intents::Model) -> CoreResult<String> {
    let rendered = crate::intent::plan::render_stored(ctx, intent).await?;
    let root = intent.application.clone().unwrap_or_default();
    let component = rendered
        .component(&root)
        .ok_or_else(|| CoreError::Conflict(format!("{root} is not part of the deployment")))?;
    if let Some(container) = &component.docker
        && let Some(port) = container.ports.iter().find_map(|p| p.host_port)
    {
        return Ok(format!("http://127.0.0.1:{port}"));
    }
    component
        .exports
        .get("url")
        .cloned()
        .ok_or_else(|| CoreError::Conflict(format!("{root} exports no url")))
}

/// A managed backend whose deployment completed: validate the service, then `ACTIVE` with
/// its schema and live prompts as version 1, or `FAILED` with the failing checks.
async fn finish_provisioning(ctx: CoreContext, backend: backends::Model, intent: intents::Model) {
    let outcome = async {
        let ty = type_named("backendType", &backend.backend_type)?;
        let url = deployed_url(&ctx, &intent).await?;
        let guard = OutboundGuard::from_config(&ctx.config);
        let report = validate_service(&guard, &url, ty).await;
        Ok::<_, CoreError>((url, report))
    }
    .await;
    let result = match outcome {
        Ok((url, report)) if report.ok => activate(&ctx, &backend, &url, &report).await,
        Ok((url, report)) => {
            let failed: Vec<String> = report
                .checks
                .iter()
                .filter(|c| !c.ok && !c.skipped)
                .map(|c| format!("{}: {}", c.name, c.message))
                .collect();
            update_status(
                &ctx,
                backend.id,
                BackendStatus::Failed,
                Some(format!(
                    "deployed at {url} but failed validation: {}",
                    failed.join("; ")
                )),
                false,
            )
            .await
        }
        Err(err) => {
            update_status(
                &ctx,
                backend.id,
                BackendStatus::Failed,
                Some(format!("deployed but cannot be validated: {err}")),
                false,
            )
            .await
        }
    };
    if let Err(err) = result {
        tracing::warn!(backend_id = %backend.id, error = %err, "cannot record the backend's provisioning");
    }
}

async fn activate(
    ctx: &CoreContext,
    backend: &backends::Model,
    url: &str,
    report: &ServiceReport,
) -> CoreResult<()> {
    let schema = report
        .schema
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(anyhow::Error::from)?;
    let now = Utc::now();
    let txn = crate::db::begin_write(&ctx.db).await?;
    backends::Entity::update_many()
        .col_expr(backends::Column::Status, Expr::value(BackendStatus::Active))
        .col_expr(
            backends::Column::StatusMessage,
            Expr::value(Some(format!("deployed and validated at {url}"))),
        )
        .col_expr(backends::Column::Url, Expr::value(Some(url.to_owned())))
        .col_expr(backends::Column::PromptSchema, Expr::value(schema))
        .col_expr(backends::Column::LastCheckedAt, Expr::value(Some(now)))
        .col_expr(backends::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            backends::Column::Sequence,
            Expr::col(backends::Column::Sequence).add(1),
        )
        .filter(backends::Column::Id.eq(backend.id))
        .exec(&txn)
        .await?;
    let versions = prompt_versions::Entity::find()
        .filter(prompt_versions::Column::BackendId.eq(backend.id))
        .count(&txn)
        .await?;
    if versions == 0 {
        prompt_versions::ActiveModel {
            id: Set(Uuid::new_v4()),
            project_id: Set(backend.project_id),
            backend_id: Set(backend.id),
            version: Set(1),
            prompts: Set(Value::Object(report.prompts.clone().unwrap_or_default())),
            message: Set("prompts the service started with".into()),
            author: Set("orchestrator".into()),
            status: Set(PromptVersionStatus::Applied),
            error: Set(None),
            execution_id: Set(None),
            created_at: Set(now),
            applied_at: Set(Some(now)),
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    crate::events::publish_backend(ctx, backend.id).await;
    Ok(())
}
