//! The pipelines a project can run: the builtins, defined in code and present everywhere, and
//! the project's own, stored in `pipelines` with the same shape.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use orchestrator_entity::{Role, pipelines};

use crate::auth::Identity;
use crate::context::CoreContext;
use crate::engine::action::is_builtin_action;
use crate::engine::pipeline::{self, PipelineSpec};
use crate::error::{CoreError, CoreResult};

/// A pipeline as the API lists it.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub spec: PipelineSpec,
    /// Defined in code and present in every project.
    pub builtin: bool,
    /// The stored row of a project pipeline.
    pub row: Option<pipelines::Model>,
}

/// Parses the JSON form of a pipeline definition; a misplaced or unknown field is named by
/// its path under `field` (`input.definition.stages[1].timeoutMs`).
pub fn parse_definition(field: &str, json: serde_json::Value) -> CoreResult<PipelineSpec> {
    serde_path_to_error::deserialize::<_, PipelineSpec>(json).map_err(|err| {
        let path = err.path().to_string();
        let at = if path == "." || path.is_empty() {
            field.to_string()
        } else {
            format!("{field}.{path}")
        };
        CoreError::bad_input(at, err.into_inner().to_string())
    })
}

/// Stores a project pipeline (operators). Everything is validated first; nothing is written
/// when any check fails. `field` is where the definition came from, for error paths.
#[tracing::instrument(skip_all, fields(project_id = %project_id, pipeline = %spec.name))]
pub async fn create_pipeline(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    spec: PipelineSpec,
    field: &str,
) -> CoreResult<pipelines::Model> {
    let project = crate::projects::get_authorized(ctx, who, project_id, Role::Operator).await?;
    pipeline::validate(&spec, field, is_builtin_action)?;
    if pipeline::builtin(&spec.name).is_some() {
        return Err(CoreError::Conflict(format!(
            "{:?} is a builtin pipeline; choose another name",
            spec.name
        )));
    }
    let exists = pipelines::Entity::find()
        .filter(pipelines::Column::ProjectId.eq(project.id))
        .filter(pipelines::Column::Name.eq(&spec.name))
        .one(&ctx.db)
        .await?;
    if exists.is_some() {
        return Err(CoreError::Conflict(format!(
            "a pipeline named {:?} already exists in this project",
            spec.name
        )));
    }
    let row = pipelines::ActiveModel {
        id: Set(Uuid::new_v4()),
        project_id: Set(project.id),
        name: Set(spec.name.clone()),
        definition: Set(serde_json::to_value(&spec).map_err(anyhow::Error::from)?),
        created_by: Set(who.subject.clone()),
        created_at: Set(Utc::now()),
    }
    .insert(&ctx.db)
    .await?;
    Ok(row)
}

/// Deletes a project pipeline (operators). Executions already started keep their stages.
#[tracing::instrument(skip_all, fields(project_id = %project_id, pipeline = %name))]
pub async fn delete_pipeline(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    name: &str,
) -> CoreResult<pipelines::Model> {
    let project = crate::projects::get_authorized(ctx, who, project_id, Role::Operator).await?;
    if pipeline::builtin(name).is_some() {
        return Err(CoreError::bad_input(
            "name",
            format!("{name:?} is a builtin pipeline and cannot be deleted"),
        ));
    }
    let row = pipelines::Entity::find()
        .filter(pipelines::Column::ProjectId.eq(project.id))
        .filter(pipelines::Column::Name.eq(name))
        .one(&ctx.db)
        .await?
        .ok_or(CoreError::NotFound { entity: "pipeline" })?;
    pipelines::Entity::delete_by_id(row.id)
        .exec(&ctx.db)
        .await?;
    Ok(row)
}

/// The builtins, then (with a project) the project's pipelines by name.
pub async fn list_pipelines(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Option<Uuid>,
) -> CoreResult<Vec<CatalogEntry>> {
    let mut entries: Vec<CatalogEntry> = pipeline::builtin_pipelines()
        .into_iter()
        .map(|spec| CatalogEntry {
            spec,
            builtin: true,
            row: None,
        })
        .collect();
    if let Some(project_id) = project_id {
        let project = crate::projects::get_authorized(ctx, who, project_id, Role::Viewer).await?;
        let rows = pipelines::Entity::find()
            .filter(pipelines::Column::ProjectId.eq(project.id))
            .order_by_asc(pipelines::Column::Name)
            .all(&ctx.db)
            .await?;
        for row in rows {
            entries.push(CatalogEntry {
                spec: stored_spec(&row)?,
                builtin: false,
                row: Some(row),
            });
        }
    }
    Ok(entries)
}

fn stored_spec(row: &pipelines::Model) -> CoreResult<PipelineSpec> {
    serde_json::from_value(row.definition.clone()).map_err(|e| {
        CoreError::Internal(anyhow::anyhow!(
            "stored pipeline {} is unreadable: {e}",
            row.id
        ))
    })
}

/// The pipeline `name` as project `project_id` sees it: a builtin, else the project's own.
/// The caller has checked access to the project.
pub async fn find_pipeline(
    ctx: &CoreContext,
    project_id: Uuid,
    name: &str,
) -> CoreResult<PipelineSpec> {
    if let Some(spec) = pipeline::builtin(name) {
        return Ok(spec);
    }
    let row = pipelines::Entity::find()
        .filter(pipelines::Column::ProjectId.eq(project_id))
        .filter(pipelines::Column::Name.eq(name))
        .one(&ctx.db)
        .await?;
    match row {
        Some(row) => stored_spec(&row),
        None => Err(CoreError::bad_input(
            "input.pipeline",
            format!(
                "unknown pipeline {name:?}; `pipelines(projectId)` lists the ones this project has"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_definitions_name_the_bad_field() {
        let err = parse_definition(
            "input.definition",
            json!({"name": "p", "stages": [{"name": "a", "action": "noop"}, {"name": "b", "action": "noop", "timeoutMs": "soon"}]}),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("input.definition.stages[1].timeoutMs"),
            "{err}"
        );
        let err = parse_definition(
            "input.definition",
            json!({"name": "p", "stages": [], "extra": 1}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("extra"), "{err}");
    }
}
