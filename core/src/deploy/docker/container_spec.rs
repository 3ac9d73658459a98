//! The engine's create request for one replica of a rendered [`DockerContainer`]: the
//! environment with secrets filled in, labels carrying the spec hash, ports, mounts, network
//! and aliases, health check, restart policy and limits.
//!
//! Only fields the oldest supported engine (API 1.41) knows are set; newer ones such as the
//! health check's start interval stay unset so older daemons do not reject the request.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount, MountType,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};

use crate::blueprint::{DockerContainer, DockerHealthcheck};
use crate::deploy::DeployError;

/// Label holding the spec hash of the rendered container object; equal hashes mean the
/// running container already matches the plan.
pub(super) const SPEC_HASH_LABEL: &str = "orchestrator.dev/spec-hash";

/// Label naming the first replica's container on every replica, so extra replicas can be
/// found again when scaling down or removing.
pub(super) const REPLICA_OF_LABEL: &str = "orchestrator.dev/replica-of";

/// Name of replica `index` (counted from 1): the container name, then `<name>-2`, `<name>-3`, …
pub(super) fn replica_name(container: &str, index: u32) -> String {
    if index <= 1 {
        container.to_owned()
    } else {
        format!("{container}-{index}")
    }
}

/// The names of all replicas `container` asks for, first one first.
pub(super) fn replica_names(container: &DockerContainer) -> Vec<String> {
    (1..=container.replicas)
        .map(|index| replica_name(&container.name, index))
        .collect()
}

/// The container's environment as `KEY=value`, plain values first, then the secret ones read
/// from `secrets`. A missing secret is a permanent error naming its key (never a value).
pub(super) fn container_env(
    container: &DockerContainer,
    secrets: &BTreeMap<String, String>,
) -> Result<Vec<String>, DeployError> {
    let mut env = Vec::with_capacity(container.env.len() + container.secret_env.len());
    for (key, value) in &container.env {
        env.push(format!("{key}={value}"));
    }
    for (key, secret) in &container.secret_env {
        let Some(value) = secrets.get(secret) else {
            return Err(DeployError::permanent(format!(
                "container {}: environment variable {key} needs the secret '{secret}', \
                 which is not among the deployment's secrets",
                container.name
            )));
        };
        env.push(format!("{key}={value}"));
    }
    Ok(env)
}

/// The create request for replica `index` (counted from 1) of `container`. Only the first
/// replica publishes host ports; every replica answers to the network aliases and, beyond
/// the first, to the first replica's name too, so its host name spreads over all of them.
pub(super) fn create_body(
    container: &DockerContainer,
    env: Vec<String>,
    index: u32,
    spec_hash: &str,
) -> Result<ContainerCreateBody, DeployError> {
    let mut labels: HashMap<String, String> = container
        .labels
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    labels.insert(SPEC_HASH_LABEL.to_owned(), spec_hash.to_owned());
    labels.insert(REPLICA_OF_LABEL.to_owned(), container.name.clone());

    let mut exposed_ports = Vec::with_capacity(container.ports.len());
    let mut port_bindings = HashMap::new();
    for port in &container.ports {
        let key = format!("{}/{}", port.container_port, port.protocol);
        exposed_ports.push(key.clone());
        if let (1, Some(host_port)) = (index, port.host_port) {
            port_bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: None,
                    host_port: Some(host_port.to_string()),
                }]),
            );
        }
    }

    let mounts = container
        .volumes
        .iter()
        .map(|mount| Mount {
            target: Some(mount.target.clone()),
            source: Some(mount.volume.clone()),
            typ: Some(MountType::VOLUME),
            ..Mount::default()
        })
        .collect();

    let mut aliases = container.network_aliases.clone();
    if index > 1 {
        aliases.push(container.name.clone());
    }
    let endpoint = EndpointSettings {
        aliases: Some(aliases),
        ..EndpointSettings::default()
    };

    Ok(ContainerCreateBody {
        image: Some(container.image.clone()),
        entrypoint: container.entrypoint.clone(),
        cmd: container.command.clone(),
        env: Some(env),
        labels: Some(labels),
        exposed_ports: (!exposed_ports.is_empty()).then_some(exposed_ports),
        healthcheck: container.healthcheck.as_ref().map(health_config),
        host_config: Some(HostConfig {
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            mounts: Some(mounts),
            network_mode: Some(container.network.clone()),
            restart_policy: Some(restart_policy(container)?),
            memory: container.memory_bytes,
            nano_cpus: container.nano_cpus,
            ..HostConfig::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(container.network.clone(), endpoint)])),
        }),
        ..ContainerCreateBody::default()
    })
}

fn restart_policy(container: &DockerContainer) -> Result<RestartPolicy, DeployError> {
    let name = container
        .restart_policy
        .parse::<RestartPolicyNameEnum>()
        .map_err(|_| {
            DeployError::permanent(format!(
                "container {}: unknown restart policy '{}' (expected no, always, \
                 unless-stopped or on-failure)",
                container.name, container.restart_policy
            ))
        })?;
    Ok(RestartPolicy {
        name: Some(name),
        maximum_retry_count: None,
    })
}

fn health_config(check: &DockerHealthcheck) -> HealthConfig {
    HealthConfig {
        test: Some(check.test.clone()),
        interval: Some(nanos(check.interval_ms)),
        timeout: Some(nanos(check.timeout_ms)),
        retries: Some(i64::from(check.retries)),
        start_period: Some(nanos(check.start_period_ms)),
        // API 1.44+: a 1.41 engine rejects the request when it is set.
        start_interval: None,
    }
}

fn nanos(millis: u64) -> i64 {
    i64::try_from(millis.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use crate::blueprint::{DockerMount, DockerPort};

    use super::*;

    fn container() -> DockerContainer {
        DockerContainer {
            name: "acme-prod-cache".to_owned(),
            component: "cache".to_owned(),
            image: "redis:7".to_owned(),
            entrypoint: None,
            command: Some(vec!["redis-server".to_owned()]),
            env: vec![("MODE".to_owned(), "fast".to_owned())],
            secret_env: vec![("PASSWORD".to_owned(), "cache.password".to_owned())],
            labels: BTreeMap::from([("orchestrator.dev/project".to_owned(), "acme".to_owned())]),
            ports: vec![DockerPort {
                container_port: 6379,
                host_port: Some(16379),
                protocol: "tcp".to_owned(),
            }],
            volumes: vec![DockerMount {
                volume: "acme-prod-cache-data".to_owned(),
                target: "/data".to_owned(),
            }],
            network: "acme-prod".to_owned(),
            network_aliases: vec!["cache".to_owned()],
            healthcheck: Some(DockerHealthcheck {
                test: vec!["CMD-SHELL".to_owned(), "true".to_owned()],
                interval_ms: 1000,
                timeout_ms: 500,
                retries: 3,
                start_period_ms: 0,
            }),
            restart_policy: "unless-stopped".to_owned(),
            memory_bytes: Some(64 << 20),
            nano_cpus: None,
            depends_on: Vec::new(),
            replicas: 3,
        }
    }

    fn secrets() -> BTreeMap<String, String> {
        BTreeMap::from([("cache.password".to_owned(), "hunter2".to_owned())])
    }

    #[test]
    fn environment_resolves_secrets_by_key() {
        let env = container_env(&container(), &secrets()).unwrap();
        assert_eq!(env, ["MODE=fast", "PASSWORD=hunter2"]);
    }

    #[test]
    fn a_missing_secret_names_its_key() {
        let mut other = secrets();
        other.insert("cache.other".to_owned(), "not-this-one".to_owned());
        other.remove("cache.password");
        let error = container_env(&container(), &other).unwrap_err();
        assert!(!error.retryable);
        assert!(
            error.message.contains("'cache.password'"),
            "{}",
            error.message
        );
        assert!(error.message.contains("PASSWORD"), "{}", error.message);
        assert!(!error.message.contains("not-this-one"));
    }

    #[test]
    fn replicas_are_numbered_from_the_second() {
        assert_eq!(
            replica_names(&container()),
            ["acme-prod-cache", "acme-prod-cache-2", "acme-prod-cache-3"]
        );
    }

    #[test]
    fn the_first_replica_publishes_host_ports_and_carries_the_hash() {
        let body = create_body(&container(), Vec::new(), 1, "abc").unwrap();
        let labels = body.labels.unwrap();
        assert_eq!(labels[SPEC_HASH_LABEL], "abc");
        assert_eq!(labels[REPLICA_OF_LABEL], "acme-prod-cache");
        assert_eq!(labels["orchestrator.dev/project"], "acme");
        assert_eq!(body.exposed_ports.unwrap(), ["6379/tcp"]);
        let host = body.host_config.unwrap();
        let binding = &host.port_bindings.unwrap()["6379/tcp"];
        assert_eq!(
            binding.as_ref().unwrap()[0].host_port.as_deref(),
            Some("16379")
        );
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        let mount = &host.mounts.unwrap()[0];
        assert_eq!(mount.source.as_deref(), Some("acme-prod-cache-data"));
        assert_eq!(mount.typ, Some(MountType::VOLUME));
        let health = body.healthcheck.unwrap();
        assert_eq!(health.interval, Some(1_000_000_000));
        assert_eq!(health.timeout, Some(500_000_000));
        assert_eq!(health.start_interval, None);
    }

    #[test]
    fn later_replicas_publish_nothing_and_answer_to_the_first_name() {
        let body = create_body(&container(), Vec::new(), 2, "abc").unwrap();
        assert_eq!(body.host_config.unwrap().port_bindings, None);
        assert_eq!(body.exposed_ports.unwrap(), ["6379/tcp"]);
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(
            endpoints["acme-prod"].aliases.as_deref().unwrap(),
            ["cache", "acme-prod-cache"]
        );
    }

    #[test]
    fn an_unknown_restart_policy_is_permanent() {
        let mut odd = container();
        odd.restart_policy = "sometimes".to_owned();
        let error = create_body(&odd, Vec::new(), 1, "abc").unwrap_err();
        assert!(!error.retryable);
        assert!(error.message.contains("sometimes"));
    }
}
