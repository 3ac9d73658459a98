//! The remote-worker registry: `workers(projectId)`, `worker(id)`, `registerWorker`,
//! `deregisterWorker`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use orchestrator_core::CoreContext;
use orchestrator_core::worker_registry::{self, NewWorker};
use orchestrator_entity::workers;

use super::enums::WorkerHealth;
use super::projects::parse_id;
use crate::auth::caller;
use crate::error::{GqlResult, IntoGql};

/// A registered remote worker.
#[derive(SimpleObject)]
pub struct Worker {
    pub id: ID,
    pub project_id: ID,
    pub name: String,
    /// Base URL; the orchestrator calls `{url}/api/handshake`, `/api/process`, `/api/cancel`
    /// and `/health`.
    pub url: String,
    pub capabilities: Vec<String>,
    /// Most stages it runs at once, over all orchestrator processes.
    pub max_concurrent: i32,
    /// Stages holding one of its slots now.
    pub active_stages: i32,
    pub health_status: WorkerHealth,
    /// Why it is unhealthy, while it is.
    pub health_message: Option<String>,
    /// When it last answered a probe or a call.
    pub last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Set once deregistered; it then gets no new stages.
    pub deregistered_at: Option<DateTime<Utc>>,
}

impl From<workers::Model> for Worker {
    fn from(m: workers::Model) -> Self {
        Worker {
            id: ID(m.id.to_string()),
            project_id: ID(m.project_id.to_string()),
            name: m.name,
            url: m.url,
            capabilities: m
                .capabilities
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            max_concurrent: m.max_concurrent,
            active_stages: m.active_stages,
            health_status: m.health_status.into(),
            health_message: m.health_message,
            last_seen_at: m.last_seen_at,
            created_at: m.created_at,
            deregistered_at: m.deregistered_at,
        }
    }
}

/// A new worker and the token the orchestrator will present to it. Configure the worker to
/// accept `Authorization: Bearer <token>` now: the token cannot be read again.
#[derive(SimpleObject)]
pub struct RegisteredWorker {
    pub worker: Worker,
    pub token: String,
}

/// Input of `registerWorker`.
#[derive(InputObject)]
pub struct RegisterWorkerInput {
    pub project_id: ID,
    /// Unique among the project's registered workers.
    pub name: String,
    /// `http://` or `https://` base URL, without credentials.
    pub url: String,
    pub capabilities: Vec<String>,
    #[graphql(default = 1)]
    pub max_concurrent: i32,
}

#[derive(Default)]
pub struct WorkerQuery;

#[Object]
impl WorkerQuery {
    /// The project's registered workers by name (deregistered ones with `includeDeregistered`).
    async fn workers(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        #[graphql(default = false)] include_deregistered: bool,
    ) -> GqlResult<Vec<Worker>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let rows = worker_registry::list_workers(core, who, project_id, include_deregistered)
            .await
            .gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One worker; `NOT_FOUND` when it does not exist or the caller cannot see its project.
    async fn worker(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Worker> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "worker")?;
        Ok(worker_registry::get_worker(core, who, id)
            .await
            .gql()?
            .into())
    }
}

#[derive(Default)]
pub struct WorkerMutation;

#[Object]
impl WorkerMutation {
    /// Registers a remote worker (project admins); its health is probed right away.
    async fn register_worker(
        &self,
        ctx: &Context<'_>,
        input: RegisterWorkerInput,
    ) -> GqlResult<RegisteredWorker> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&input.project_id, "project")?;
        let registered = worker_registry::register_worker(
            core,
            who,
            NewWorker {
                project_id,
                name: input.name,
                url: input.url,
                capabilities: input.capabilities,
                max_concurrent: input.max_concurrent,
            },
        )
        .await
        .gql()?;
        Ok(RegisteredWorker {
            worker: registered.worker.into(),
            token: registered.token.expose().to_string(),
        })
    }

    /// Takes a worker out of the registry (project admins); stages it runs finish normally.
    async fn deregister_worker(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Worker> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "worker")?;
        Ok(worker_registry::deregister_worker(core, who, id)
            .await
            .gql()?
            .into())
    }
}
