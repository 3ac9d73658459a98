//! Executions: `executions`, `execution(id)` (stages, handshake packets, logs, metrics),
//! `startExecution`, `cancelExecution`, `retryExecution`. A page of executions loads the
//! stages and packets it shows with one query each, whatever its size; a single execution
//! loads them through DataLoaders.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use orchestrator_core::CoreContext;
use orchestrator_core::engine::control;
use orchestrator_core::engine::service::{self, StartExecution};
use orchestrator_core::paging::PageRequest;
use orchestrator_entity::{executions, handshakes, logs, stages};
use serde_json::Value;
use uuid::Uuid;

use super::enums::{ExecutionStatus, Priority};
use super::loaders::StagesByExecution;
use super::projects::parse_id;
use super::scalars::{CountedConnection, connection};
use super::stages::Stage;
use crate::auth::caller;
use crate::error::{GqlResult, IntoGql};

/// Largest page of log lines.
const MAX_LOG_PAGE: i32 = 1000;

/// Completed and total stages.
#[derive(SimpleObject)]
pub struct Progress {
    pub completed: i32,
    pub total: i32,
}

/// Usage, time and attempts of an execution (summed over its stages) or of one stage.
#[derive(SimpleObject)]
pub struct Metrics {
    pub tokens_used: i64,
    pub cost_usd: f64,
    pub duration_ms: Option<i64>,
    /// Attempts made so far.
    pub attempts: i32,
}

pub(super) fn loader_error(e: impl std::fmt::Display) -> async_graphql::Error {
    crate::error::internal(&anyhow::anyhow!("{e}"))
}

/// Children a list resolver loaded for all its rows at once.
#[derive(Clone, Default)]
pub struct Preloaded {
    stages: Option<Arc<HashMap<Uuid, Vec<stages::Model>>>>,
    handshakes: Option<Arc<HashMap<Uuid, Vec<handshakes::Model>>>>,
}

impl Preloaded {
    /// Loads, for all `execution_ids`, the stages and packets the query selects below
    /// `edges.node`: one query each.
    async fn for_page(ctx: &Context<'_>, execution_ids: &[Uuid]) -> GqlResult<Preloaded> {
        let node = ctx.look_ahead().field("edges").field("node");
        let wants_stages = node.field("stages").exists() || node.field("metrics").exists();
        let wants_packets = node.field("stages").field("handshakes").exists();
        let mut preloaded = Preloaded::default();
        if !wants_stages {
            return Ok(preloaded);
        }
        let core = ctx.data::<CoreContext>()?;
        let rows = service::stages_of(core, execution_ids).await.gql()?;
        if wants_packets {
            let ids: Vec<Uuid> = rows.iter().map(|s| s.id).collect();
            let mut packets: HashMap<Uuid, Vec<handshakes::Model>> = HashMap::new();
            for p in service::handshakes_of(core, &ids).await.gql()? {
                packets.entry(p.stage_id).or_default().push(p);
            }
            preloaded.handshakes = Some(Arc::new(packets));
        }
        let mut stages: HashMap<Uuid, Vec<stages::Model>> =
            execution_ids.iter().map(|id| (*id, Vec::new())).collect();
        for row in rows {
            stages.entry(row.execution_id).or_default().push(row);
        }
        preloaded.stages = Some(Arc::new(stages));
        Ok(preloaded)
    }
}

async fn stages_of(ctx: &Context<'_>, execution: &Execution) -> GqlResult<Vec<stages::Model>> {
    if let Some(stages) = &execution.preloaded.stages {
        return Ok(stages.get(&execution.row.id).cloned().unwrap_or_default());
    }
    let loader = ctx.data::<DataLoader<StagesByExecution>>()?;
    Ok(loader
        .load_one(execution.row.id)
        .await
        .map_err(loader_error)?
        .unwrap_or_default())
}

/// A run of a pipeline.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Execution {
    pub id: ID,
    pub project_id: ID,
    pub pipeline: String,
    pub status: ExecutionStatus,
    pub priority: Priority,
    pub input: Json<Value>,
    pub output: Option<Json<Value>>,
    /// Why the execution failed.
    pub error: Option<String>,
    pub progress: Progress,
    /// A cancel was asked for; running stages are being stopped.
    pub cancel_requested: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub row: executions::Model,
    #[graphql(skip)]
    pub preloaded: Preloaded,
}

impl From<executions::Model> for Execution {
    fn from(m: executions::Model) -> Self {
        Execution {
            id: ID(m.id.to_string()),
            project_id: ID(m.project_id.to_string()),
            pipeline: m.pipeline.clone(),
            status: m.status.into(),
            priority: m.priority.into(),
            input: Json(m.input.clone()),
            output: m.output.clone().map(Json),
            error: m.error.clone(),
            progress: Progress {
                completed: m.stages_completed,
                total: m.stages_total,
            },
            cancel_requested: m.cancel_requested,
            created_by: m.created_by.clone(),
            created_at: m.created_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
            row: m,
            preloaded: Preloaded::default(),
        }
    }
}

/// `first` of a log-line page, checked: 0 to [`MAX_LOG_PAGE`].
pub(super) fn log_limit(first: i32) -> GqlResult<u64> {
    if !(0..=MAX_LOG_PAGE).contains(&first) {
        return Err(orchestrator_core::CoreError::bad_input(
            "first",
            format!("must be between 0 and {MAX_LOG_PAGE}"),
        ))
        .gql();
    }
    Ok(first as u64)
}

/// One log line.
#[derive(SimpleObject)]
pub struct LogLine {
    /// Increasing; pass the last one seen as `after` to continue.
    pub id: i64,
    /// `INFO`, `WARN` or `ERROR`.
    pub level: String,
    pub message: String,
    /// The stage the line is about, if any.
    pub stage_id: Option<ID>,
    pub created_at: DateTime<Utc>,
}

impl From<logs::Model> for LogLine {
    fn from(m: logs::Model) -> Self {
        LogLine {
            id: m.id,
            level: m.level,
            message: m.message,
            stage_id: m.stage_id.map(|id| ID(id.to_string())),
            created_at: m.created_at,
        }
    }
}

#[ComplexObject]
impl Execution {
    /// The stages, in order.
    async fn stages(&self, ctx: &Context<'_>) -> GqlResult<Vec<Stage>> {
        let rows = stages_of(ctx, self).await?;
        let packets = self.preloaded.handshakes.clone();
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut stage = Stage::from(row);
                if let Some(packets) = &packets {
                    stage.preloaded_handshakes =
                        Some(packets.get(&stage.uuid).cloned().unwrap_or_default());
                }
                stage
            })
            .collect())
    }

    /// Tokens, cost and time summed over the stages; attempts over all stages.
    async fn metrics(&self, ctx: &Context<'_>) -> GqlResult<Metrics> {
        let attempts = stages_of(ctx, self).await?.iter().map(|s| s.attempt).sum();
        Ok(Metrics {
            tokens_used: self.row.tokens_used,
            cost_usd: self.row.cost_usd,
            duration_ms: self.row.duration_ms,
            attempts,
        })
    }

    /// Log lines after the line with id `after`, oldest first.
    async fn logs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] first: i32,
        after: Option<i64>,
    ) -> GqlResult<Vec<LogLine>> {
        let limit = log_limit(first)?;
        let core = ctx.data::<CoreContext>()?;
        let rows = service::logs_of(core, self.row.id, after, limit)
            .await
            .gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct ExecutionQuery;

#[Object]
impl ExecutionQuery {
    /// Executions of a project, newest first.
    async fn executions(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        status: Option<ExecutionStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<CountedConnection<Execution>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let page = PageRequest::new(first, after.as_deref()).gql()?;
        let rows = service::list_executions(core, who, project_id, status.map(Into::into), page)
            .await
            .gql()?;
        let ids: Vec<Uuid> = rows.items.iter().map(|(_, row)| row.id).collect();
        let preloaded = Preloaded::for_page(ctx, &ids).await?;
        Ok(connection(rows, |row| Execution {
            preloaded: preloaded.clone(),
            ..Execution::from(row)
        }))
    }

    /// One execution with its stages and logs.
    async fn execution(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Execution> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "execution")?;
        Ok(service::get_execution(core, who, id).await.gql()?.into())
    }
}

/// Input of `startExecution`.
#[derive(InputObject)]
pub struct StartExecutionInput {
    pub project_id: ID,
    /// Pipeline name (a builtin or one of the project's).
    pub pipeline: String,
    /// JSON object given to the first stage.
    pub input: Option<Json<Value>>,
    /// With the workers busy, more urgent executions start their stages first.
    #[graphql(default_with = "Priority::Normal")]
    pub priority: Priority,
}

#[derive(Default)]
pub struct ExecutionMutation;

#[Object]
impl ExecutionMutation {
    /// Starts a pipeline. The first stage is queued before this returns.
    async fn start_execution(
        &self,
        ctx: &Context<'_>,
        input: StartExecutionInput,
    ) -> GqlResult<Execution> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&input.project_id, "project")?;
        let row = service::start_execution(
            core,
            who,
            StartExecution {
                project_id,
                pipeline: input.pipeline,
                input: input
                    .input
                    .map(|j| j.0)
                    .unwrap_or_else(|| serde_json::json!({})),
                priority: input.priority.into(),
            },
        )
        .await
        .gql()?;
        Ok(row.into())
    }

    /// Cancels an execution: no new stage starts, waiting stages are `CANCELLED` at once, a
    /// running remote stage's worker is told (`POST /api/cancel`), and the execution ends
    /// `CANCELLED`.
    async fn cancel_execution(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Execution> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "execution")?;
        Ok(control::cancel_execution(core, who, id).await.gql()?.into())
    }

    /// Re-runs a failed execution from its failed stage, keeping the results of the stages
    /// that succeeded.
    async fn retry_execution(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Execution> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "execution")?;
        Ok(control::retry_execution(core, who, id).await.gql()?.into())
    }
}
