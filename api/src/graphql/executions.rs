//! Executions: `pipelines`, `executions`, `execution(id)`, `startExecution`.

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use orchestrator_core::CoreContext;
use orchestrator_core::engine::pipeline::{PipelineSpec, builtin_pipelines};
use orchestrator_core::engine::service::{self, StartExecution};
use orchestrator_core::paging::PageRequest;
use orchestrator_entity::{executions, logs, stages};
use serde_json::Value;
use uuid::Uuid;

use super::enums::{ExecutionStatus, Priority, StageStatus};
use super::loaders::StagesByExecution;
use super::projects::parse_id;
use super::scalars::{CountedConnection, connection};
use crate::auth::caller;
use crate::error::{GqlResult, IntoGql};

/// Largest page of log lines.
const MAX_LOG_PAGE: i32 = 1000;

/// One stage of a pipeline definition.
#[derive(SimpleObject)]
pub struct PipelineStage {
    pub name: String,
    pub action: String,
    pub capability: Option<String>,
    pub input: Option<Json<Value>>,
    pub timeout_ms: Option<u64>,
    pub max_attempts: Option<u32>,
}

/// A pipeline: a name and ordered stages.
#[derive(SimpleObject)]
pub struct Pipeline {
    pub name: String,
    /// Defined in code and present in every project.
    pub builtin: bool,
    pub stages: Vec<PipelineStage>,
}

impl Pipeline {
    fn from_spec(spec: PipelineSpec, builtin: bool) -> Self {
        Pipeline {
            name: spec.name,
            builtin,
            stages: spec
                .stages
                .into_iter()
                .map(|s| PipelineStage {
                    name: s.name,
                    action: s.action,
                    capability: s.capability,
                    input: s.input.map(Json),
                    timeout_ms: s.timeout_ms,
                    max_attempts: s.max_attempts,
                })
                .collect(),
        }
    }
}

/// Completed and total stages.
#[derive(SimpleObject)]
pub struct Progress {
    pub completed: i32,
    pub total: i32,
}

/// Usage and time of an execution or stage.
#[derive(SimpleObject)]
pub struct Metrics {
    pub tokens_used: i64,
    pub cost_usd: f64,
    pub duration_ms: Option<i64>,
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
    pub metrics: Metrics,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub uuid: Uuid,
}

impl From<executions::Model> for Execution {
    fn from(m: executions::Model) -> Self {
        Execution {
            id: ID(m.id.to_string()),
            project_id: ID(m.project_id.to_string()),
            pipeline: m.pipeline,
            status: m.status.into(),
            priority: m.priority.into(),
            input: Json(m.input),
            output: m.output.map(Json),
            error: m.error,
            progress: Progress {
                completed: m.stages_completed,
                total: m.stages_total,
            },
            metrics: Metrics {
                tokens_used: m.tokens_used,
                cost_usd: m.cost_usd,
                duration_ms: m.duration_ms,
            },
            created_at: m.created_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
            uuid: m.id,
        }
    }
}

/// One log line.
#[derive(SimpleObject)]
pub struct LogLine {
    /// Increasing; pass the last one seen as `after` to continue.
    pub id: i64,
    pub level: String,
    pub message: String,
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
        let loader = ctx.data::<DataLoader<StagesByExecution>>()?;
        let rows = loader
            .load_one(self.uuid)
            .await
            .map_err(|e| crate::error::internal(&anyhow::anyhow!("{e}")))?
            .unwrap_or_default();
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Log lines after the line with id `after`, oldest first.
    async fn logs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] first: i32,
        after: Option<i64>,
    ) -> GqlResult<Vec<LogLine>> {
        if !(0..=MAX_LOG_PAGE).contains(&first) {
            return Err(orchestrator_core::CoreError::bad_input(
                "first",
                format!("must be between 0 and {MAX_LOG_PAGE}"),
            ))
            .gql();
        }
        let core = ctx.data::<CoreContext>()?;
        let rows = service::logs_of(core, self.uuid, after, first as u64)
            .await
            .gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

/// One stage of an execution.
#[derive(SimpleObject)]
pub struct Stage {
    pub id: ID,
    pub name: String,
    pub position: i32,
    pub action: String,
    pub capability: Option<String>,
    pub status: StageStatus,
    pub attempt: i32,
    pub max_attempts: i32,
    pub input: Option<Json<Value>>,
    pub output: Option<Json<Value>>,
    pub error: Option<String>,
    pub metrics: Metrics,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<stages::Model> for Stage {
    fn from(m: stages::Model) -> Self {
        Stage {
            id: ID(m.id.to_string()),
            name: m.name,
            position: m.position,
            action: m.action,
            capability: m.capability,
            status: m.status.into(),
            attempt: m.attempt,
            max_attempts: m.max_attempts,
            input: m.input.map(Json),
            output: m.output.map(Json),
            error: m.error,
            metrics: Metrics {
                tokens_used: m.tokens_used,
                cost_usd: m.cost_usd,
                duration_ms: m.duration_ms,
            },
            started_at: m.started_at,
            finished_at: m.finished_at,
        }
    }
}

#[derive(Default)]
pub struct ExecutionQuery;

#[Object]
impl ExecutionQuery {
    /// Pipelines available to every project.
    async fn pipelines(&self, ctx: &Context<'_>) -> GqlResult<Vec<Pipeline>> {
        caller(ctx)?;
        Ok(builtin_pipelines()
            .into_iter()
            .map(|p| Pipeline::from_spec(p, true))
            .collect())
    }

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
        Ok(connection(rows, Execution::from))
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
    /// Pipeline name.
    pub pipeline: String,
    /// JSON object given to the first stage.
    pub input: Option<Json<Value>>,
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
}
