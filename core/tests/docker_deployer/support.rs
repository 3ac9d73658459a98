//! The engine under test and one deployment per test: a unique namespace and intent label,
//! rendering through the real blueprint engine, applying through the deployer, and removing
//! everything labelled with the intent when the test ends, however it ends.

use std::collections::{BTreeMap, HashMap};
use std::sync::Once;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptions,
};
use orchestrator_core::blueprint::{
    Blueprint, Catalogue, Platform, RenderRequest, RenderedPlan, parse_blueprint, render,
};
use orchestrator_core::deploy::docker::DockerDeployer;
use orchestrator_core::deploy::{ApplyReport, ApplyRequest, DeployError, Deployer};
use serde_json::Value;

/// Project slug of every test deployment.
pub const PROJECT: &str = "dtest";

/// The Docker engine and the local test images, or `None` (after saying why) when the
/// engine is not available and services are not required.
pub struct Engine {
    pub deployer: DockerDeployer,
    pub redis_image: String,
    pub busybox_image: String,
}

fn services_required() -> bool {
    std::env::var("ORCH_TEST_REQUIRE_SERVICES").as_deref() == Ok("1")
}

fn unavailable(reason: &str) -> Option<Engine> {
    assert!(
        !services_required(),
        "ORCH_TEST_REQUIRE_SERVICES=1 but {reason}"
    );
    eprintln!("skipped: {reason}");
    None
}

/// Connects to the engine named by the environment (see `scripts/services.sh`).
pub async fn engine() -> Option<Engine> {
    static CRYPTO: Once = Once::new();
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
    if std::env::var("ORCH_TEST_DOCKER").as_deref() != Ok("1") {
        return unavailable("ORCH_TEST_DOCKER is not 1: no Docker engine to test against");
    }
    let image = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    let (Some(redis_image), Some(busybox_image)) = (
        image("ORCH_TEST_REDIS_IMAGE"),
        image("ORCH_TEST_BUSYBOX_IMAGE"),
    ) else {
        return unavailable("ORCH_TEST_REDIS_IMAGE or ORCH_TEST_BUSYBOX_IMAGE is not set");
    };
    let deployer = match DockerDeployer::connect() {
        Ok(deployer) => deployer.with_stop_timeout(Duration::from_secs(2)),
        Err(error) => return unavailable(&format!("no Docker client: {error}")),
    };
    if let Err(error) = deployer.client().ping().await {
        return unavailable(&format!("the Docker engine does not answer: {error}"));
    }
    for image in [&redis_image, &busybox_image] {
        if deployer.client().inspect_image(image).await.is_err() {
            return unavailable(&format!("image {image} is not on the engine"));
        }
    }
    Some(Engine {
        deployer,
        redis_image,
        busybox_image,
    })
}

/// Parses a test blueprint, failing the test with the problems if it is invalid.
pub fn blueprint(yaml: &str) -> Blueprint {
    parse_blueprint(yaml).unwrap_or_else(|errors| panic!("invalid test blueprint: {errors:#?}"))
}

/// A deployment of `roots` in its own namespace; everything it created is removed on drop.
pub struct Deployment {
    pub deployer: DockerDeployer,
    pub catalogue: Catalogue,
    pub request: RenderRequest,
    /// Secrets of the last render, passed back so re-renders keep them.
    secrets: BTreeMap<String, String>,
}

impl Deployment {
    /// A deployment named after `tag` and this process, so parallel tests and runs differ.
    pub fn new(engine: &Engine, catalogue: Catalogue, roots: &[&str], tag: &str) -> Deployment {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let namespace = format!(
            "{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut request = RenderRequest::new(roots, Platform::Docker);
        request.project = PROJECT.to_owned();
        request.intent = namespace.clone();
        request.namespace = namespace;
        Deployment {
            deployer: engine.deployer.clone(),
            catalogue,
            request,
            secrets: BTreeMap::new(),
        }
    }

    /// Sets parameter `name` of `blueprint` for the next render.
    pub fn param(&mut self, blueprint: &str, name: &str, value: impl Into<Value>) {
        self.request
            .params
            .entry(blueprint.to_owned())
            .or_default()
            .insert(name.to_owned(), value.into());
    }

    /// Renders the deployment as it is now set up, with the secrets of the previous render.
    pub fn render(&mut self) -> RenderedPlan {
        self.request.secrets = self.secrets.clone();
        let plan = render(&self.catalogue, &self.request).expect("the test plan renders");
        self.secrets = plan.secrets.clone();
        plan
    }

    /// Applies `component` of `plan`, returning the outcome and the progress lines sent.
    pub async fn apply(
        &self,
        plan: &RenderedPlan,
        component: &str,
        ready_timeout: Duration,
    ) -> (Result<ApplyReport, DeployError>, Vec<String>) {
        let (progress, mut lines) = tokio::sync::mpsc::unbounded_channel();
        let request = ApplyRequest {
            plan,
            component,
            secrets: &plan.secrets,
            namespace: &self.request.namespace,
            ready_timeout,
        };
        let outcome = self.deployer.apply(request, &progress).await;
        drop(progress);
        let mut sent = Vec::new();
        while let Some(line) = lines.recv().await {
            sent.push(line);
        }
        (outcome, sent)
    }

    /// The container called `name`, as the engine reports it.
    pub async fn inspect(&self, name: &str) -> ContainerInspectResponse {
        self.deployer
            .client()
            .inspect_container(name, None)
            .await
            .unwrap_or_else(|error| panic!("inspecting {name}: {error}"))
    }

    /// Names of the containers, networks and volumes carrying this deployment's labels.
    pub async fn labelled(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        labelled(self.deployer.client(), &self.request.intent).await
    }
}

fn label_filters(intent: &str) -> HashMap<&'static str, Vec<String>> {
    HashMap::from([(
        "label",
        vec![
            format!("orchestrator.dev/project={PROJECT}"),
            format!("orchestrator.dev/intent={intent}"),
        ],
    )])
}

async fn labelled(docker: &Docker, intent: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let filters = label_filters(intent);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("listing containers");
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("listing networks");
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("listing volumes");
    (
        containers
            .into_iter()
            .filter_map(|c| c.names?.into_iter().next())
            .map(|name| name.trim_start_matches('/').to_owned())
            .collect(),
        networks.into_iter().filter_map(|n| n.name).collect(),
        volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect(),
    )
}

impl Drop for Deployment {
    /// Removes whatever carries the deployment's labels. Runs on its own thread and runtime
    /// with its own client, so it works whether or not the test's runtime is still usable.
    fn drop(&mut self) {
        let intent = self.request.intent.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a cleanup runtime");
            runtime.block_on(async move {
                let Ok(deployer) = DockerDeployer::connect() else {
                    return;
                };
                let docker = deployer.client();
                let (containers, networks, volumes) = labelled(docker, &intent).await;
                let force = RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .v(true)
                    .build();
                for name in containers {
                    let _ = docker.remove_container(&name, Some(force.clone())).await;
                }
                for name in networks {
                    let _ = docker.remove_network(&name).await;
                }
                for name in volumes {
                    let _ = docker
                        .remove_volume(&name, None::<RemoveVolumeOptions>)
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
