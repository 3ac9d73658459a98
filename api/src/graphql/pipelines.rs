//! Pipelines: `pipelines(projectId)`, `createPipeline`, `deletePipeline`.

use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use orchestrator_core::CoreContext;
use orchestrator_core::CoreError;
use orchestrator_core::engine::catalog::{self, CatalogEntry};
use orchestrator_core::engine::pipeline::{Backoff, PipelineSpec, StageSpec};
use serde_json::Value;

use super::projects::parse_id;
use crate::auth::caller;
use crate::error::{GqlResult, IntoGql};

/// Delays between attempts of a stage.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "BackoffInput")]
pub struct BackoffPolicy {
    /// Delay before the second attempt; it doubles each attempt, with ±20 % jitter.
    pub initial_ms: u64,
    /// Upper bound of any delay.
    pub max_ms: u64,
}

/// One stage of a pipeline definition.
#[derive(SimpleObject)]
pub struct PipelineStage {
    pub name: String,
    /// A built-in action (`noop`, `sleep`) or `remote`.
    pub action: String,
    /// For remote stages: what a registered worker must offer.
    pub capability: Option<String>,
    /// Static JSON merged over what the stage receives.
    pub input: Option<Json<Value>>,
    pub timeout_ms: Option<u64>,
    pub max_attempts: Option<u32>,
    pub backoff: Option<BackoffPolicy>,
}

/// A pipeline: a name and ordered stages.
#[derive(SimpleObject)]
pub struct Pipeline {
    pub name: String,
    /// Defined in code and present in every project.
    pub builtin: bool,
    pub stages: Vec<PipelineStage>,
    /// The project of a project pipeline.
    pub project_id: Option<ID>,
    pub created_by: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// The definition as JSON, in the shape `createPipeline(input: {definition})` takes.
    pub definition: Json<Value>,
}

impl From<CatalogEntry> for Pipeline {
    fn from(entry: CatalogEntry) -> Self {
        let definition = serde_json::to_value(&entry.spec).unwrap_or(Value::Null);
        Pipeline {
            name: entry.spec.name,
            builtin: entry.builtin,
            stages: entry
                .spec
                .stages
                .into_iter()
                .map(|s| PipelineStage {
                    name: s.name,
                    action: s.action,
                    capability: s.capability,
                    input: s.input.map(Json),
                    timeout_ms: s.timeout_ms,
                    max_attempts: s.max_attempts,
                    backoff: s.backoff.map(|b| BackoffPolicy {
                        initial_ms: b.initial_ms,
                        max_ms: b.max_ms,
                    }),
                })
                .collect(),
            project_id: entry.row.as_ref().map(|r| ID(r.project_id.to_string())),
            created_by: entry.row.as_ref().map(|r| r.created_by.clone()),
            created_at: entry.row.as_ref().map(|r| r.created_at),
            definition: Json(definition),
        }
    }
}

/// One stage of `createPipeline`'s typed form.
#[derive(InputObject)]
pub struct PipelineStageInput {
    pub name: String,
    pub action: String,
    pub capability: Option<String>,
    pub input: Option<Json<Value>>,
    pub timeout_ms: Option<u64>,
    pub max_attempts: Option<u32>,
    pub backoff: Option<BackoffPolicy>,
}

/// Input of `createPipeline`: either `name` and `stages` (typed), or `definition` (the same
/// shape as JSON: `{ "name", "stages": [...] }`).
#[derive(InputObject)]
pub struct CreatePipelineInput {
    pub project_id: ID,
    pub name: Option<String>,
    pub stages: Option<Vec<PipelineStageInput>>,
    pub definition: Option<Json<Value>>,
}

impl CreatePipelineInput {
    /// The definition and the input path its errors are reported under.
    fn into_spec(self) -> Result<(PipelineSpec, &'static str), CoreError> {
        match (self.stages, self.definition) {
            (Some(stages), None) => {
                let name = self.name.ok_or_else(|| {
                    CoreError::bad_input("input.name", "a pipeline given by `stages` needs a name")
                })?;
                let stages = stages
                    .into_iter()
                    .map(|s| StageSpec {
                        name: s.name,
                        action: s.action,
                        capability: s.capability,
                        input: s.input.map(|j| j.0),
                        timeout_ms: s.timeout_ms,
                        max_attempts: s.max_attempts,
                        backoff: s.backoff.map(|b| Backoff {
                            initial_ms: b.initial_ms,
                            max_ms: b.max_ms,
                        }),
                    })
                    .collect();
                Ok((PipelineSpec { name, stages }, "input"))
            }
            (None, Some(definition)) => {
                let spec = catalog::parse_definition("input.definition", definition.0)?;
                if let Some(name) = self.name
                    && name != spec.name
                {
                    return Err(CoreError::bad_input(
                        "input.name",
                        format!(
                            "differs from the definition's name {:?}; give one of them",
                            spec.name
                        ),
                    ));
                }
                Ok((spec, "input.definition"))
            }
            _ => Err(CoreError::bad_input(
                "input",
                "give either `stages` (with `name`) or `definition`, not both",
            )),
        }
    }
}

#[derive(Default)]
pub struct PipelineQuery;

#[Object]
impl PipelineQuery {
    /// The builtin pipelines, and with `projectId` the project's own after them.
    async fn pipelines(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
    ) -> GqlResult<Vec<Pipeline>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = project_id.map(|id| parse_id(&id, "project")).transpose()?;
        let entries = catalog::list_pipelines(core, who, project_id).await.gql()?;
        Ok(entries.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct PipelineMutation;

#[Object]
impl PipelineMutation {
    /// Adds a pipeline to a project (operators). Invalid definitions are refused with
    /// `BAD_USER_INPUT` naming the field; nothing is written.
    async fn create_pipeline(
        &self,
        ctx: &Context<'_>,
        input: CreatePipelineInput,
    ) -> GqlResult<Pipeline> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&input.project_id, "project")?;
        let (spec, field) = input.into_spec().gql()?;
        let row = catalog::create_pipeline(core, who, project_id, spec.clone(), field)
            .await
            .gql()?;
        Ok(CatalogEntry {
            spec,
            builtin: false,
            row: Some(row),
        }
        .into())
    }

    /// Deletes a project pipeline (operators); running executions are not affected.
    async fn delete_pipeline(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        name: String,
    ) -> GqlResult<Pipeline> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let row = catalog::delete_pipeline(core, who, project_id, &name)
            .await
            .gql()?;
        let spec = serde_json::from_value(row.definition.clone())
            .map_err(|e| crate::error::internal(&anyhow::anyhow!("stored pipeline: {e}")))?;
        Ok(CatalogEntry {
            spec,
            builtin: false,
            row: Some(row),
        }
        .into())
    }
}
