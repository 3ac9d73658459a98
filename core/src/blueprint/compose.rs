//! The Docker plan as a docker-compose file (the version-less Compose Specification), for
//! people who want to run a deployment by hand.
//!
//! Compose interpolates `$` everywhere, so literal text is escaped (`$$`) and secrets become
//! `${VAR}` placeholders read from the environment of `docker compose up` — the file never
//! holds a secret value.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde::Serialize;

use super::component::Component;
use super::render::{RenderError, RenderRequest};
use super::render_docker::{DockerHealthcheck, DockerPlan};
use super::render_k8s::to_yaml;

/// Key of the deployment network inside the compose file.
const NETWORK_KEY: &str = "orchestrator";

#[derive(Serialize)]
struct ComposeFile {
    services: IndexMap<String, Service>,
    networks: IndexMap<String, Named>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    volumes: IndexMap<String, Named>,
}

#[derive(Serialize)]
struct Named {
    name: String,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Service {
    image: String,
    container_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    environment: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    expose: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<String>,
    networks: IndexMap<String, Aliases>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    depends_on: IndexMap<String, Condition>,
    labels: BTreeMap<String, String>,
    restart: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mem_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<f64>,
}

#[derive(Serialize)]
struct Aliases {
    aliases: Vec<String>,
}

#[derive(Serialize)]
struct Healthcheck {
    test: Vec<String>,
    interval: String,
    timeout: String,
    retries: u32,
    start_period: String,
}

#[derive(Serialize)]
struct Condition {
    condition: &'static str,
}

/// Escapes literal text for compose interpolation.
fn escape(text: &str) -> String {
    text.replace('$', "$$")
}

fn escape_all(items: &[String]) -> Vec<String> {
    items.iter().map(|item| escape(item)).collect()
}

/// The environment variable that carries the secret stored under `key` in a compose file:
/// `postgresql.password` → `POSTGRESQL_PASSWORD`.
pub(crate) fn secret_variable(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn duration(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn compose_healthcheck(check: &DockerHealthcheck) -> Healthcheck {
    Healthcheck {
        test: escape_all(&check.test),
        interval: duration(check.interval_ms),
        timeout: duration(check.timeout_ms),
        retries: check.retries,
        start_period: duration(check.start_period_ms),
    }
}

/// Writes `plan` (rendered from `components`) as a compose file with a header listing the
/// secret variables it needs.
pub(crate) fn to_compose(
    components: &[Component<'_>],
    plan: &DockerPlan,
    request: &RenderRequest,
) -> Result<String, RenderError> {
    let mut needed: BTreeSet<String> = BTreeSet::new();
    let mut services = IndexMap::new();
    let mut volumes = IndexMap::new();
    for (component, container) in components.iter().zip(&plan.containers) {
        let name = component.name();
        let mut environment = IndexMap::new();
        for (key, value) in &component.env {
            let text = value.map(escape, |secret| {
                needed.insert(secret.to_owned());
                format!("${{{}}}", secret_variable(secret))
            });
            environment.insert(key.clone(), text);
        }
        let mut mounts = Vec::new();
        for (volume, mount) in component.volumes.iter().zip(&container.volumes) {
            let key = format!("{name}-{}", volume.name);
            mounts.push(format!("{key}:{}", mount.target));
            volumes.insert(
                key,
                Named {
                    name: mount.volume.clone(),
                    labels: container.labels.clone(),
                },
            );
        }
        let port_text = |port: &super::render_docker::DockerPort| {
            format!("{}/{}", port.container_port, port.protocol)
        };
        let ports = container
            .ports
            .iter()
            .filter_map(|port| {
                port.host_port
                    .map(|host| format!("{host}:{}", port_text(port)))
            })
            .collect();
        let expose = container
            .ports
            .iter()
            .filter(|port| port.host_port.is_none())
            .map(port_text)
            .collect();
        let depends_on = component
            .blueprint
            .dependencies
            .iter()
            .map(|dep| {
                let healthy = plan
                    .containers
                    .iter()
                    .any(|c| &c.component == dep && c.healthcheck.is_some());
                let condition = if healthy {
                    "service_healthy"
                } else {
                    "service_started"
                };
                (dep.clone(), Condition { condition })
            })
            .collect();
        services.insert(
            name.to_owned(),
            Service {
                image: escape(&container.image),
                container_name: container.name.clone(),
                entrypoint: container.entrypoint.as_deref().map(escape_all),
                command: container.command.as_deref().map(escape_all),
                environment,
                ports,
                expose,
                volumes: mounts,
                networks: IndexMap::from([(
                    NETWORK_KEY.to_owned(),
                    Aliases {
                        aliases: container.network_aliases.clone(),
                    },
                )]),
                healthcheck: container.healthcheck.as_ref().map(compose_healthcheck),
                depends_on,
                labels: container
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), escape(v)))
                    .collect(),
                restart: container.restart_policy.clone(),
                mem_limit: container.memory_bytes,
                cpus: container.nano_cpus.map(|n| n as f64 / 1e9),
            },
        );
    }
    let file = ComposeFile {
        services,
        networks: IndexMap::from([(
            NETWORK_KEY.to_owned(),
            Named {
                name: plan.network.clone(),
                labels: plan.network_labels.clone(),
            },
        )]),
        volumes,
    };
    let mut text = format!(
        "# docker-compose file rendered by the orchestrator: project {}, namespace {}.\n",
        request.project, request.namespace
    );
    if needed.is_empty() {
        text.push_str("# It needs no secrets.\n");
    } else {
        text.push_str(
            "# Secrets are not written here. Set these variables before `docker compose up`:\n",
        );
        for key in &needed {
            text.push_str(&format!(
                "#   {}  (orchestrator secret {key})\n",
                secret_variable(key)
            ));
        }
    }
    text.push_str(&to_yaml(&file, "compose file")?);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_secret_variables_and_escapes_dollars() {
        assert_eq!(
            secret_variable("postgresql.password"),
            "POSTGRESQL_PASSWORD"
        );
        assert_eq!(
            secret_variable("aaf-backend.param.api_key"),
            "AAF_BACKEND_PARAM_API_KEY"
        );
        assert_eq!(escape("pay $5"), "pay $$5");
        assert_eq!(duration(10_000), "10s");
        assert_eq!(duration(1_500), "1500ms");
    }
}
