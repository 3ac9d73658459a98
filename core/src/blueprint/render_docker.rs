//! Docker rendering: a typed plan (network, volumes, containers in start order) for a
//! deployer to apply through the Docker API, and the same plan as docker-compose text.
//!
//! Secrets never appear in the plan: a container lists them in `secret_env` by key, and the
//! deployer fetches the values from the orchestrator's secret store at creation time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::component::{Check, Component};
use super::compose::to_compose;
use super::model::{Platform, Protocol};
use super::quantity::{memory_bytes, nano_cpus};
use super::render::{ObjectRef, RenderError, RenderRequest, RenderedComponent};
use super::render_k8s::{deployment_labels, object_labels, spec_hash, to_yaml};

/// Everything to create on a Docker host, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerPlan {
    /// The user-defined bridge network all containers join (`<project>-<namespace>`).
    pub network: String,
    /// Labels for the network.
    pub network_labels: BTreeMap<String, String>,
    /// Named volumes to create first.
    pub volumes: Vec<DockerVolume>,
    /// Containers, in install order.
    pub containers: Vec<DockerContainer>,
    /// Container names in the order to start them; wait for each to be healthy.
    pub start_order: Vec<String>,
}

/// A named volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerVolume {
    /// Volume name, `<project>-<namespace>-<component>-<volume>`.
    pub name: String,
    /// Labels identifying the owner.
    pub labels: BTreeMap<String, String>,
}

/// One container to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerContainer {
    /// Container name, `<project>-<namespace>-<component>`; also its host name on the network.
    pub name: String,
    /// The blueprint it comes from.
    pub component: String,
    /// Image reference.
    pub image: String,
    /// Replaces the image entrypoint (blueprint `command`).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image command (blueprint `args`).
    pub command: Option<Vec<String>>,
    /// Plain environment variables, in order.
    pub env: Vec<(String, String)>,
    /// Environment variables whose value is the secret stored under the given key.
    pub secret_env: Vec<(String, String)>,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// Ports; roots publish theirs on the host.
    pub ports: Vec<DockerPort>,
    /// Volume mounts.
    pub volumes: Vec<DockerMount>,
    /// Network to attach at creation.
    pub network: String,
    /// Extra DNS names on the network (the component name).
    pub network_aliases: Vec<String>,
    /// Health check, in Docker's terms.
    pub healthcheck: Option<DockerHealthcheck>,
    /// Restart policy name.
    pub restart_policy: String,
    /// Memory limit in bytes.
    pub memory_bytes: Option<i64>,
    /// CPU limit in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// Container names that must be healthy (or started, without a health check) first.
    pub depends_on: Vec<String>,
    /// How many copies to run: `name`, then `name-2`, `name-3`, …; only the first publishes
    /// host ports, and 0 runs none. Left out of the serialized form (and so of the spec hash)
    /// when 1.
    #[serde(default = "one_replica", skip_serializing_if = "is_one_replica")]
    pub replicas: u32,
}

fn one_replica() -> u32 {
    1
}

fn is_one_replica(replicas: &u32) -> bool {
    *replicas == 1
}

/// A container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerPort {
    /// Port inside the container.
    pub container_port: u16,
    /// Host port to publish on, if any.
    pub host_port: Option<u16>,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

/// A named volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerMount {
    /// Volume name.
    pub volume: String,
    /// Absolute path in the container.
    pub target: String,
}

/// A Docker health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerHealthcheck {
    /// `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    /// Time between checks.
    pub interval_ms: u64,
    /// Time before a check counts as failed.
    pub timeout_ms: u64,
    /// Failures before unhealthy.
    pub retries: u32,
    /// Grace period after start.
    pub start_period_ms: u64,
}

/// Container name of `component`: `<project>-<namespace>-<component>`.
pub(crate) fn container_name(request: &RenderRequest, component: &str) -> String {
    format!("{}-{}-{}", request.project, request.namespace, component)
}

/// Network name of a deployment: `<project>-<namespace>`.
pub(crate) fn network_name(request: &RenderRequest) -> String {
    format!("{}-{}", request.project, request.namespace)
}

/// Volume name of `volume` of `component`.
pub(crate) fn volume_name(request: &RenderRequest, component: &str, volume: &str) -> String {
    format!(
        "{}-{}-{}-{}",
        request.project, request.namespace, component, volume
    )
}

fn port16(port: u32) -> u16 {
    u16::try_from(port).unwrap_or(u16::MAX)
}

/// Renders every component for Docker. Env values mixing a secret with text are stored as a
/// derived secret `<component>.env.<VAR>` (added to `secrets`) so the container can
/// still receive them by key.
pub(crate) fn render_docker(
    components: &[Component<'_>],
    request: &RenderRequest,
    secrets: &mut BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<RenderedComponent>, DockerPlan, String), RenderError> {
    if request.features.tls {
        warnings.push(
            "TLS is not terminated on Docker; put the traefik blueprint in front of the service"
                .to_owned(),
        );
    }
    let network = network_name(request);
    let mut plan = DockerPlan {
        network: network.clone(),
        network_labels: deployment_labels(request),
        volumes: Vec::new(),
        containers: Vec::new(),
        start_order: Vec::new(),
    };
    let mut rendered = Vec::with_capacity(components.len());
    for (index, component) in components.iter().enumerate() {
        let name = component.name();
        let labels = object_labels(request, name);
        let mut objects = Vec::new();
        if index == 0 {
            objects.push(docker_object("Network", &network, &plan.network_labels)?);
        }
        let mut mounts = Vec::new();
        for volume in &component.volumes {
            let volume_name = volume_name(request, name, &volume.name);
            let docker_volume = DockerVolume {
                name: volume_name.clone(),
                labels: labels.clone(),
            };
            objects.push(docker_object("Volume", &volume_name, &docker_volume)?);
            plan.volumes.push(docker_volume);
            mounts.push(DockerMount {
                volume: volume_name,
                target: volume.mount_path.clone(),
            });
        }
        let mut env = Vec::new();
        let mut secret_env = Vec::new();
        for (key, value) in &component.env {
            match (value.plain(), value.sole_secret()) {
                (Some(text), _) => env.push((key.clone(), text)),
                (None, Some(secret)) => secret_env.push((key.clone(), secret.to_owned())),
                (None, None) => {
                    let derived = format!("{name}.env.{key}");
                    let revealed = value.reveal(secrets);
                    secrets.insert(derived.clone(), revealed);
                    secret_env.push((key.clone(), derived));
                }
            }
        }
        let container = DockerContainer {
            name: container_name(request, name),
            component: name.to_owned(),
            image: component.image.clone(),
            entrypoint: component.command.clone(),
            command: component.args.clone(),
            env,
            secret_env,
            labels,
            ports: component
                .ports
                .iter()
                .map(|port| DockerPort {
                    container_port: port16(port.container_port()),
                    host_port: component.is_root.then(|| port16(port.port)),
                    protocol: match port.protocol {
                        Protocol::Tcp => "tcp",
                        Protocol::Udp => "udp",
                        Protocol::Sctp => "sctp",
                    }
                    .to_owned(),
                })
                .collect(),
            volumes: mounts,
            network: network.clone(),
            network_aliases: vec![name.to_owned()],
            healthcheck: healthcheck(component),
            restart_policy: "unless-stopped".to_owned(),
            memory_bytes: component.limits.get("memory").and_then(|m| memory_bytes(m)),
            nano_cpus: component.limits.get("cpu").and_then(|c| nano_cpus(c)),
            depends_on: component
                .blueprint
                .dependencies
                .iter()
                .map(|dep| container_name(request, dep))
                .collect(),
            replicas: component.replicas,
        };
        objects.push(docker_object("Container", &container.name, &container)?);
        let manifests = to_yaml(&container, "container")?;
        plan.start_order.push(container.name.clone());
        plan.containers.push(container.clone());
        rendered.push(RenderedComponent {
            name: name.to_owned(),
            platform: Platform::Docker,
            preview: manifests.clone(),
            manifests,
            objects,
            exports: component
                .exports
                .iter()
                .map(|(k, v)| (k.clone(), v.masked()))
                .collect(),
            docker: Some(container),
        });
    }
    let compose = to_compose(components, &plan, request)?;
    Ok((rendered, plan, compose))
}

fn docker_object(kind: &str, name: &str, spec: &impl Serialize) -> Result<ObjectRef, RenderError> {
    Ok(ObjectRef {
        api_version: "docker".to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        namespace: None,
        spec_hash: spec_hash(spec)?,
    })
}

fn healthcheck(component: &Component<'_>) -> Option<DockerHealthcheck> {
    let probe = component.probe.as_ref()?;
    let test = match (&probe.command, &probe.check) {
        (Some(command), _) => std::iter::once("CMD".to_owned())
            .chain(command.iter().cloned())
            .collect(),
        (None, Check::Http { path, port }) => {
            let url = format!("http://127.0.0.1:{port}{path}");
            vec![
                "CMD-SHELL".to_owned(),
                format!("curl -fsS -o /dev/null {url} || wget -q -O /dev/null {url} || exit 1"),
            ]
        }
        (None, Check::Tcp { port }) => vec![
            "CMD-SHELL".to_owned(),
            format!("nc -z 127.0.0.1 {port} || bash -c '</dev/tcp/127.0.0.1/{port}' || exit 1"),
        ],
        (None, Check::Command) => return None,
    };
    Some(DockerHealthcheck {
        test,
        interval_ms: u64::from(probe.period_seconds) * 1000,
        timeout_ms: u64::from(probe.timeout_seconds) * 1000,
        retries: probe.failure_threshold,
        start_period_ms: u64::from(probe.initial_delay_seconds) * 1000,
    })
}
