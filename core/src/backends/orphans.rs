//! Orphan discovery: services running on a platform that look like backends — they carry the
//! orchestrator's labels for a backend blueprint, or (Docker) answer the custom-backend
//! `/health` shape on a published port — and are linked to no backend of the project.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bollard::query_parameters::ListContainersOptionsBuilder;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use orchestrator_entity::{BackendStatus, Role, backends};

use super::types::registry;
use crate::auth::Identity;
use crate::blueprint::Platform;
use crate::context::CoreContext;
use crate::error::{CoreError, CoreResult};
use crate::outbound::OutboundGuard;

/// Most containers probed for the `/health` shape in one call.
const MAX_PROBES: usize = 50;

/// A service that looks like a backend and is not managed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// `Container` (Docker) or `Service` (Kubernetes).
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// Where it answers, when known.
    pub url: Option<String>,
    /// Why it was listed.
    pub reason: String,
}

/// Backend blueprints (`aaf-backend`, …): objects labelled with one of these are backends.
fn backend_blueprints() -> Vec<&'static str> {
    registry().iter().filter_map(|ty| ty.blueprint()).collect()
}

/// What links a service to a backend record: the intents that deployed backends, and the
/// URLs of adopted ones.
struct Linked {
    intents: HashSet<String>,
    urls: HashSet<String>,
}

async fn linked(ctx: &CoreContext, project_id: Uuid) -> CoreResult<Linked> {
    let rows = backends::Entity::find()
        .filter(backends::Column::ProjectId.eq(project_id))
        .filter(
            backends::Column::Status.is_not_in([BackendStatus::Deleted, BackendStatus::Removed]),
        )
        .all(&ctx.db)
        .await?;
    Ok(Linked {
        intents: rows
            .iter()
            .filter_map(|b| b.intent_id.map(|id| id.to_string()))
            .collect(),
        urls: rows
            .iter()
            .filter_map(|b| b.url.clone())
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect(),
    })
}

/// Services on `platform` that look like backends and are not linked to one of the
/// project's backends (operators: Docker discovery probes published ports).
pub async fn orphaned_services(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    platform: Platform,
) -> CoreResult<Vec<Orphan>> {
    crate::projects::get_authorized(ctx, who, project_id, Role::Operator).await?;
    let linked = linked(ctx, project_id).await?;
    match platform {
        Platform::Docker => docker_orphans(ctx, &linked).await,
        Platform::Kubernetes => kubernetes_orphans(ctx, &linked).await,
    }
}

async fn docker_orphans(ctx: &CoreContext, linked: &Linked) -> CoreResult<Vec<Orphan>> {
    let docker = bollard::Docker::connect_with_local_defaults()
        .map_err(|e| CoreError::Conflict(format!("cannot reach the Docker engine: {e}")))?;
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default().all(false).build(),
        ))
        .await
        .map_err(|e| CoreError::Conflict(format!("cannot list Docker containers: {e}")))?;
    let blueprints = backend_blueprints();
    let guard = OutboundGuard::from_config(&ctx.config);
    let mut found = Vec::new();
    let mut probes = 0;
    for container in containers {
        let labels: HashMap<String, String> = container.labels.clone().unwrap_or_default();
        let name = container
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default();
        let url = container.ports.as_ref().and_then(|ports| {
            ports
                .iter()
                .find_map(|p| p.public_port)
                .map(|port| format!("http://127.0.0.1:{port}"))
        });
        if url.as_ref().is_some_and(|u| linked.urls.contains(u)) {
            continue;
        }
        let blueprint = labels.get("orchestrator.dev/blueprint").map(String::as_str);
        if let Some(blueprint) = blueprint.filter(|b| blueprints.contains(b)) {
            let intent = labels
                .get("orchestrator.dev/intent")
                .cloned()
                .unwrap_or_default();
            if !linked.intents.contains(&intent) {
                found.push(Orphan {
                    kind: "Container".into(),
                    name,
                    namespace: None,
                    url,
                    reason: format!(
                        "labelled as a {blueprint} deployment (intent {intent}) but no backend uses it"
                    ),
                });
            }
            continue;
        }
        let Some(url) = url else { continue };
        if probes >= MAX_PROBES {
            continue;
        }
        probes += 1;
        if answers_backend_health(&guard, &url).await {
            found.push(Orphan {
                kind: "Container".into(),
                name,
                namespace: None,
                url: Some(url),
                reason: "answers the custom-backend /health shape; adopt it with adoptBackend"
                    .into(),
            });
        }
    }
    Ok(found)
}

/// True when `GET {url}/health` answers like a backend (prompt management advertised).
async fn answers_backend_health(guard: &OutboundGuard, url: &str) -> bool {
    let Ok(target) = guard.check("url", url).await else {
        return false;
    };
    match guard.get(&target, "/health", Duration::from_secs(1)).await {
        Ok(answer) if answer.status == 200 => answer
            .json()
            .ok()
            .is_some_and(|body: serde_json::Value| body.get("prompt_management").is_some()),
        _ => false,
    }
}

async fn kubernetes_orphans(ctx: &CoreContext, linked: &Linked) -> CoreResult<Vec<Orphan>> {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Api, ListParams};
    let config = match &ctx.config.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| CoreError::Conflict(format!("cannot read the kubeconfig: {e}")))?;
            let options = kube::config::KubeConfigOptions {
                context: ctx.config.kube_context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| CoreError::Conflict(format!("cannot use the kubeconfig: {e}")))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| CoreError::Conflict(format!("no Kubernetes cluster configured: {e}")))?,
    };
    let client = kube::Client::try_from(config)
        .map_err(|e| CoreError::Conflict(format!("cannot reach the Kubernetes cluster: {e}")))?;
    let services: Api<Service> = Api::all(client);
    let mut found = Vec::new();
    for blueprint in backend_blueprints() {
        let params =
            ListParams::default().labels(&format!("orchestrator.dev/blueprint={blueprint}"));
        let list = services
            .list(&params)
            .await
            .map_err(|e| CoreError::Conflict(format!("cannot list Kubernetes services: {e}")))?;
        for service in list.items {
            let labels = service.metadata.labels.clone().unwrap_or_default();
            let intent = labels
                .get("orchestrator.dev/intent")
                .cloned()
                .unwrap_or_default();
            if linked.intents.contains(&intent) {
                continue;
            }
            found.push(Orphan {
                kind: "Service".into(),
                name: service.metadata.name.clone().unwrap_or_default(),
                namespace: service.metadata.namespace.clone(),
                url: None,
                reason: format!(
                    "labelled as a {blueprint} deployment (intent {intent}) but no backend uses it"
                ),
            });
        }
    }
    Ok(found)
}
