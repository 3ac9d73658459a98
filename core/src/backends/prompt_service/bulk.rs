//! Bulk prompt updates: the same values pushed to several backends of a project by one
//! execution, every backend checked before anything is stored.

use std::collections::HashSet;

use sea_orm::EntityTrait;
use serde_json::Value;
use uuid::Uuid;

use orchestrator_entity::{Role, backends, executions, prompt_versions};

use super::{check_message, check_size, manageable, resolve_schema, start_sync};
use crate::auth::Identity;
use crate::backends::prompts::prompt_problems;
use crate::context::CoreContext;
use crate::error::{CoreError, CoreResult, InputProblem};

/// Most backends one bulk update may touch.
pub const MAX_BULK_BACKENDS: usize = 50;

/// What a bulk update started: one execution, one new version per backend (in the order the
/// backends were given).
#[derive(Debug, Clone)]
pub struct BulkUpdate {
    pub execution: executions::Model,
    pub versions: Vec<prompt_versions::Model>,
}

/// Pushes the same `prompts` to several backends of a project with one execution, one sync
/// stage per backend (operators). Every backend is checked first, against its live schema or,
/// when it cannot be asked, its stored one; any problem refuses the whole request with
/// nothing stored. A backend that fails to take its version does not stop the others.
#[tracing::instrument(skip_all, fields(project_id = %project_id))]
pub async fn bulk_update_prompts(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    backend_ids: &[Uuid],
    prompts: Value,
    message: &str,
) -> CoreResult<BulkUpdate> {
    let project = crate::projects::get_authorized(ctx, who, project_id, Role::Operator).await?;
    if backend_ids.is_empty() || backend_ids.len() > MAX_BULK_BACKENDS {
        return Err(CoreError::bad_input(
            "backendIds",
            format!("give 1 to {MAX_BULK_BACKENDS} backends"),
        ));
    }
    let message = check_message(message)?;
    check_size(&prompts)?;
    let mut seen = HashSet::new();
    let mut backends = Vec::with_capacity(backend_ids.len());
    for (i, id) in backend_ids.iter().enumerate() {
        let field = format!("backendIds[{i}]");
        if !seen.insert(*id) {
            return Err(CoreError::bad_input(field, "is listed twice"));
        }
        let backend = backends::Entity::find_by_id(*id)
            .one(&ctx.db)
            .await?
            .filter(|b| b.project_id == project.id)
            .ok_or_else(|| {
                CoreError::bad_input(&field, "no backend with this id in the project")
            })?;
        manageable(&backend).map_err(|e| CoreError::bad_input(&field, e.to_string()))?;
        backends.push(backend);
    }
    let mut problems = Vec::new();
    for backend in &backends {
        let resolved = resolve_schema(ctx, backend).await?;
        for (name, why) in prompt_problems(&resolved.schema, &prompts) {
            problems.push(InputProblem {
                field: if name.is_empty() {
                    "prompts".into()
                } else {
                    format!("prompts.{name}")
                },
                line: None,
                column: None,
                message: format!("backend {}: {why}", backend.name),
            });
        }
    }
    match problems.as_slice() {
        [] => {}
        [one] => return Err(CoreError::bad_input(&one.field, &one.message)),
        many => {
            return Err(CoreError::Invalid {
                field: "prompts".into(),
                message: format!(
                    "{} problems: {}",
                    many.len(),
                    many.iter()
                        .map(|p| format!("{} {}", p.field, p.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                details: problems,
            });
        }
    }
    let changes = backends.into_iter().map(|b| (b, prompts.clone())).collect();
    let (execution, versions) = start_sync(ctx, who, project.id, changes, &message, true).await?;
    Ok(BulkUpdate {
        execution,
        versions,
    })
}
