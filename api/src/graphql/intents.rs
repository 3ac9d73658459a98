//! Deployment intents: `deploy`, `planDeployment`, `intents`, `intent(id)` (parsed command,
//! plan, status, logs, resources, execution), `retryIntent`, `cancelIntent`,
//! `rollbackIntent`. Plans shown here carry masked secrets only.

use async_graphql::{ComplexObject, Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use orchestrator_core::CoreContext;
use orchestrator_core::intent::plan::{DeployOptions, Planned, StoredPlan, stored_plan};
use orchestrator_core::intent::service::{self, DeployInput as CoreDeployInput};
use orchestrator_core::paging::PageRequest;
use orchestrator_entity::{intents, resources};
use serde_json::Value;

use super::blueprints::{to_api_platform, to_engine_platform};
use super::enums::{IntentStatus, Platform};
use super::executions::{Execution, LogLine, log_limit};
use super::projects::parse_id;
use super::scalars::{CountedConnection, connection};
use crate::auth::caller;
use crate::error::{GqlResult, IntoGql};

/// Options that override what the command says.
#[derive(InputObject, Default)]
pub struct DeployOptionsInput {
    pub platform: Option<Platform>,
    /// Kubernetes namespace; on Docker it names the network and containers.
    pub namespace: Option<String>,
    /// Host name for the application's ingress (Kubernetes) and its `domain` parameter.
    pub domain: Option<String>,
    pub replicas: Option<i32>,
    pub tls: Option<bool>,
    /// `{ "<blueprint>": { "<parameter>": value } }`, e.g. `{ "redis": { "image": "…" } }`.
    pub params: Option<Json<Value>>,
    /// `remove`: delete the application's volumes too (kept unless asked).
    pub remove_volumes: Option<bool>,
}

/// A command to plan or deploy.
#[derive(InputObject)]
pub struct DeployInput {
    pub project_id: ID,
    /// E.g. "install authentik with TLS and ingress in namespace auth on domain auth.example.com".
    pub command: String,
    pub options: Option<DeployOptionsInput>,
    /// Plan and record the intent, deploy nothing.
    #[graphql(default)]
    pub dry_run: bool,
}

fn core_input(input: DeployInput) -> GqlResult<CoreDeployInput> {
    let project_id = parse_id(&input.project_id, "project")?;
    let options = input.options.unwrap_or_default();
    let replicas = match options.replicas {
        None => None,
        Some(n) if (0..=orchestrator_core::intent::plan::MAX_REPLICAS as i32).contains(&n) => {
            Some(n as u32)
        }
        Some(_) => {
            return Err(orchestrator_core::CoreError::bad_input(
                "input.options.replicas",
                format!(
                    "must be between 0 and {}",
                    orchestrator_core::intent::plan::MAX_REPLICAS
                ),
            ))
            .gql();
        }
    };
    Ok(CoreDeployInput {
        project_id,
        command: input.command,
        options: DeployOptions {
            platform: options.platform.map(to_engine_platform),
            namespace: options.namespace,
            domain: options.domain,
            replicas,
            tls: options.tls,
            params: options.params.map(|j| j.0),
            remove_volumes: options.remove_volumes,
        },
        dry_run: input.dry_run,
    })
}

/// One object a component consists of.
#[derive(SimpleObject)]
pub struct PlannedObject {
    /// `apps/v1`, `v1`…; `docker` on Docker.
    pub api_version: String,
    /// `Deployment`, `Secret`…; `Container`, `Network`, `Volume` on Docker.
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// Equal hashes mean nothing to apply.
    pub spec_hash: String,
}

/// One component of a plan, in install order.
#[derive(SimpleObject)]
pub struct PlannedComponent {
    pub name: String,
    pub platform: Platform,
    /// Kubernetes manifests (multi-document YAML) or the Docker container, secrets masked.
    pub manifests: String,
    pub objects: Vec<PlannedObject>,
}

/// What a deployment does: the parsed command and the components in install order.
#[derive(SimpleObject)]
pub struct DeploymentPlan {
    /// The command as understood, options applied: `{ action, application, platform,
    /// namespace, domain, replicas, version, features }`.
    pub parsed: Json<Value>,
    /// `rules` or `model`: who understood the command.
    pub parsed_by: String,
    pub platform: Platform,
    pub namespace: String,
    pub components: Vec<PlannedComponent>,
    /// The docker-compose export (Docker); secrets appear as `${VARIABLES}`.
    pub compose: Option<String>,
    /// Things asked for that will not be done, e.g. TLS without a domain.
    pub warnings: Vec<String>,
}

fn plan_view(parsed: Value, plan: StoredPlan) -> DeploymentPlan {
    DeploymentPlan {
        parsed: Json(parsed),
        parsed_by: serde_json::to_value(plan.parsed_by)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "rules".into()),
        platform: to_api_platform(plan.request.platform),
        namespace: plan.request.namespace.clone(),
        components: plan
            .components
            .into_iter()
            .map(|c| PlannedComponent {
                name: c.name,
                platform: to_api_platform(c.platform),
                manifests: c.manifests,
                objects: c
                    .objects
                    .into_iter()
                    .map(|o| PlannedObject {
                        api_version: o.api_version,
                        kind: o.kind,
                        name: o.name,
                        namespace: o.namespace,
                        spec_hash: o.spec_hash,
                    })
                    .collect(),
            })
            .collect(),
        compose: plan.compose,
        warnings: plan.warnings,
    }
}

impl From<Planned> for DeploymentPlan {
    fn from(planned: Planned) -> Self {
        let parsed = serde_json::to_value(&planned.parsed).unwrap_or(Value::Null);
        plan_view(parsed, planned.plan)
    }
}

/// Something a deployment created on a platform.
#[derive(SimpleObject)]
pub struct Resource {
    pub id: ID,
    /// The blueprint it was rendered from.
    pub component: String,
    pub platform: Platform,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub spec_hash: String,
    pub created_at: DateTime<Utc>,
    /// When it was removed (remove, rollback); absent while it exists.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<resources::Model> for Resource {
    fn from(m: resources::Model) -> Self {
        Resource {
            id: ID(m.id.to_string()),
            component: m.component,
            platform: m.platform.into(),
            kind: m.kind,
            name: m.name,
            namespace: m.namespace,
            spec_hash: m.spec_hash,
            created_at: m.created_at,
            deleted_at: m.deleted_at,
        }
    }
}

/// A deployment command and what became of it.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Intent {
    pub id: ID,
    pub project_id: ID,
    /// The command as written.
    pub command: String,
    /// `install`, `remove`, `scale`, `update` or `restart`.
    pub action: Option<String>,
    /// The blueprint acted on.
    pub application: Option<String>,
    pub status: IntentStatus,
    /// The command as understood, options applied.
    pub parsed: Option<Json<Value>>,
    /// The options given with the command.
    pub options: Json<Value>,
    pub dry_run: bool,
    /// Why it failed.
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub row: intents::Model,
}

impl From<intents::Model> for Intent {
    fn from(m: intents::Model) -> Self {
        Intent {
            id: ID(m.id.to_string()),
            project_id: ID(m.project_id.to_string()),
            command: m.command.clone(),
            action: m.action.clone(),
            application: m.application.clone(),
            status: m.status.into(),
            parsed: m.parsed.clone().map(Json),
            options: Json(m.options.clone()),
            dry_run: m.dry_run,
            error: m.error.clone(),
            created_by: m.created_by.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            row: m,
        }
    }
}

#[ComplexObject]
impl Intent {
    /// The plan: components in install order with their manifests (secrets masked).
    async fn plan(&self) -> Option<DeploymentPlan> {
        let plan = stored_plan(&self.row)?;
        Some(plan_view(
            self.row.parsed.clone().unwrap_or(Value::Null),
            plan,
        ))
    }

    /// The execution carrying the intent out (the rollback's, once rolled back).
    async fn execution(&self, ctx: &Context<'_>) -> GqlResult<Option<Execution>> {
        let Some(id) = self.row.execution_id else {
            return Ok(None);
        };
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        Ok(Some(
            orchestrator_core::engine::service::get_execution(core, who, id)
                .await
                .gql()?
                .into(),
        ))
    }

    /// What the intent's deployments created, oldest first (removed ones with `deletedAt`).
    async fn resources(&self, ctx: &Context<'_>) -> GqlResult<Vec<Resource>> {
        let core = ctx.data::<CoreContext>()?;
        Ok(service::resources_of(core, self.row.id)
            .await
            .gql()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Log lines of the intent's executions after line `after`, oldest first.
    async fn logs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] first: i32,
        after: Option<i64>,
    ) -> GqlResult<Vec<LogLine>> {
        let limit = log_limit(first)?;
        let core = ctx.data::<CoreContext>()?;
        Ok(service::logs_of(core, self.row.id, after, limit)
            .await
            .gql()?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(Default)]
pub struct IntentQuery;

#[Object]
impl IntentQuery {
    /// Intents of a project, newest first.
    async fn intents(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        status: Option<IntentStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<CountedConnection<Intent>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let page = PageRequest::new(first, after.as_deref()).gql()?;
        let rows = service::list_intents(core, who, project_id, status.map(Into::into), page)
            .await
            .gql()?;
        Ok(connection(rows, Intent::from))
    }

    /// One intent with its plan, logs, resources and execution.
    async fn intent(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Intent> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "intent")?;
        Ok(
            service::intent_for(core, who, id, orchestrator_entity::Role::Viewer)
                .await
                .gql()?
                .into(),
        )
    }

    /// A dry run: the parsed command and the components in install order with their
    /// manifests. Nothing is recorded or applied.
    async fn plan_deployment(
        &self,
        ctx: &Context<'_>,
        input: DeployInput,
    ) -> GqlResult<DeploymentPlan> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let input = core_input(input)?;
        Ok(service::plan_deployment(core, who, &input)
            .await
            .gql()?
            .into())
    }
}

#[derive(Default)]
pub struct IntentMutation;

#[Object]
impl IntentMutation {
    /// Parses, plans and deploys a command. The intent is recorded and its first stage
    /// queued before this returns; with `dryRun` it is recorded `COMPLETED` with its plan and
    /// nothing is applied. A command that cannot be understood or planned is refused with
    /// nothing recorded.
    async fn deploy(&self, ctx: &Context<'_>, input: DeployInput) -> GqlResult<Intent> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let input = core_input(input)?;
        Ok(service::deploy(core, who, input).await.gql()?.into())
    }

    /// Resumes a failed intent from the component that failed.
    async fn retry_intent(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Intent> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "intent")?;
        Ok(service::retry_intent(core, who, id).await.gql()?.into())
    }

    /// Stops an intent before its next component; it ends `CANCELLED`.
    async fn cancel_intent(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Intent> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "intent")?;
        Ok(service::cancel_intent(core, who, id).await.gql()?.into())
    }

    /// Undoes an ended intent (an install is removed, other actions restore the previous
    /// deployment), newest component first; it ends `ROLLED_BACK`.
    async fn rollback_intent(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Intent> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "intent")?;
        Ok(service::rollback_intent(core, who, id).await.gql()?.into())
    }
}
