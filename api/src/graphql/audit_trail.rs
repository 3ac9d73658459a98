//! Records every mutation in the audit log: actor, mutation name, target id, project and
//! outcome (`OK` or the error code). Arguments themselves are never stored.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextResolve, ResolveInfo,
};
use async_graphql::{Name, Request, ServerResult, Value, Variables};
use orchestrator_core::CoreContext;
use orchestrator_core::audit::{AuditEntry, record};
use uuid::Uuid;

use crate::auth::RequestAuth;

/// The extension factory; one per schema.
pub struct AuditTrail;

impl ExtensionFactory for AuditTrail {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AuditTrailExtension::default())
    }
}

#[derive(Default)]
struct AuditTrailExtension {
    variables: Mutex<Variables>,
}

/// The first id-like value among the arguments (top level, then inside `input`).
fn find_arg<'a>(
    args: &'a async_graphql::indexmap::IndexMap<Name, Value>,
    names: &[&str],
) -> Option<&'a Value> {
    for name in names {
        if let Some(v) = args.get(*name) {
            return Some(v);
        }
    }
    if let Some(Value::Object(input)) = args.get("input") {
        for name in names {
            if let Some(v) = input.get(*name) {
                return Some(v);
            }
        }
    }
    None
}

fn as_text(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Extension for AuditTrailExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Ok(mut vars) = self.variables.lock() {
            *vars = request.variables.clone();
        }
        next.run(ctx, request).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let is_mutation = info.path_node.parent.is_none() && info.parent_type == "MutationRoot";
        if !is_mutation {
            return next.run(ctx, info).await;
        }
        let action = info.name.to_string();
        let variables = self.variables.lock().map(|v| v.clone()).unwrap_or_default();
        let args: async_graphql::indexmap::IndexMap<Name, Value> = info
            .field
            .arguments
            .iter()
            .filter_map(|(name, value)| {
                value
                    .node
                    .clone()
                    .into_const_with(|var| variables.get(&var).cloned().ok_or(()))
                    .ok()
                    .map(|v| (name.node.clone(), v))
            })
            .collect();
        let result = next.run(ctx, info).await;

        let auth = ctx.data_opt::<RequestAuth>();
        let identity = auth.and_then(|a| a.identity.as_ref());
        let actor = identity.map_or_else(|| "anonymous".to_string(), |i| i.subject.clone());
        let outcome = match &result {
            Ok(_) => "OK".to_string(),
            Err(err) => err
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .map_or_else(
                    || "ERROR".to_string(),
                    |c| c.to_string().trim_matches('"').to_string(),
                ),
        };
        let result_id = match &result {
            Ok(Some(Value::Object(obj))) => as_text(obj.get("id")),
            _ => None,
        };
        let target =
            as_text(find_arg(&args, &["id", "backendId", "executionId", "name"])).or(result_id);
        let project_id =
            as_text(find_arg(&args, &["projectId"])).and_then(|p| Uuid::parse_str(&p).ok());
        if let Ok(core) = ctx.data::<CoreContext>() {
            // Only attach the project when the caller belongs to it, so a refused probe of a
            // foreign project never shows up in that project's log.
            let project_id = match (project_id, identity) {
                (Some(pid), Some(who)) => orchestrator_core::projects::visible_to(core, who, pid)
                    .await
                    .then_some(pid),
                _ => None,
            };
            record(
                core,
                AuditEntry {
                    project_id,
                    actor,
                    action,
                    target,
                    outcome,
                },
            )
            .await;
        }
        result
    }
}
