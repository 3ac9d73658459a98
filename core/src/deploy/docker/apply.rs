//! One apply of one component: the plan's network, the component's named volumes, then its
//! container replicas — kept when their spec-hash label matches and they run, replaced when
//! not, created when missing, removed when beyond the replica count — and finally the wait
//! until every replica is ready.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{
    ContainerStateStatusEnum, HealthStatusEnum, NetworkCreateRequest, VolumeCreateRequest,
};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::container_spec::{SPEC_HASH_LABEL, container_env, create_body, replica_names};
use super::engine_error::{engine_error, is_not_found};
use super::image::ensure_image;
use super::readiness::{Awaited, wait_until_ready};
use super::removal::{remove_container, replicas_of};
use super::{DockerDeployer, say};
use crate::blueprint::{DockerContainer, DockerPlan, DockerVolume, ObjectRef, RenderedPlan};
use crate::deploy::{ApplyReport, ApplyRequest, DeployError, Progress};

/// What the request asks for, looked up in the plan.
struct Target<'a> {
    plan: &'a DockerPlan,
    container: &'a DockerContainer,
    container_object: &'a ObjectRef,
    network_object: ObjectRef,
    volumes: Vec<(&'a DockerVolume, &'a ObjectRef)>,
}

impl<'a> Target<'a> {
    fn find(plan: &'a RenderedPlan, component: &str) -> Result<Target<'a>, DeployError> {
        let docker_plan = plan.docker.as_ref().ok_or_else(|| {
            DeployError::permanent(format!(
                "the plan was rendered for {}, not Docker",
                plan.platform
            ))
        })?;
        let rendered = plan.component(component).ok_or_else(|| {
            DeployError::permanent(format!("{component} is not a component of the plan"))
        })?;
        let container = rendered.docker.as_ref().ok_or_else(|| {
            DeployError::permanent(format!("{component} has no Docker container in the plan"))
        })?;
        let object = |kind: &str, name: &str| {
            rendered
                .objects
                .iter()
                .find(|o| o.kind == kind && o.name == name)
        };
        let container_object = object("Container", &container.name).ok_or_else(|| {
            DeployError::permanent(format!(
                "{component}: the plan records no Container object {}",
                container.name
            ))
        })?;
        let mut volumes = Vec::with_capacity(container.volumes.len());
        for mount in &container.volumes {
            let spec = docker_plan.volumes.iter().find(|v| v.name == mount.volume);
            match (spec, object("Volume", &mount.volume)) {
                (Some(spec), Some(object)) => volumes.push((spec, object)),
                _ => {
                    return Err(DeployError::permanent(format!(
                        "{component}: volume {} is mounted but not part of the plan",
                        mount.volume
                    )));
                }
            }
        }
        Ok(Target {
            plan: docker_plan,
            container,
            container_object,
            network_object: network_object(plan, docker_plan),
            volumes,
        })
    }
}

/// The network's object as the plan records it (on its first component); computed the same
/// way when a partial plan lacks it.
fn network_object(plan: &RenderedPlan, docker_plan: &DockerPlan) -> ObjectRef {
    let recorded = plan
        .components
        .iter()
        .flat_map(|component| &component.objects)
        .find(|o| o.kind == "Network" && o.name == docker_plan.network);
    recorded.cloned().unwrap_or_else(|| {
        let spec = serde_json::to_vec(&docker_plan.network_labels).unwrap_or_default();
        ObjectRef {
            api_version: "docker".to_owned(),
            kind: "Network".to_owned(),
            name: docker_plan.network.clone(),
            namespace: None,
            spec_hash: hex::encode(Sha256::digest(spec)),
        }
    })
}

/// What is on the engine under a replica's name.
enum Existing {
    Missing,
    /// Matches the plan and runs; `restarts` is its restart count so far.
    UpToDate {
        restarts: i64,
    },
    /// Must be replaced, for the given reason.
    Outdated(&'static str),
}

/// Applies `request.component` as described in the module documentation.
#[tracing::instrument(skip_all, fields(component = request.component, backend = "docker"))]
pub(super) async fn apply_component(
    deployer: &DockerDeployer,
    request: ApplyRequest<'_>,
    progress: &Progress,
) -> Result<ApplyReport, DeployError> {
    let docker = &deployer.docker;
    let target = Target::find(request.plan, request.component)?;
    let container = target.container;
    let env = container_env(container, request.secrets)?;
    let mut changed = Vec::new();

    if ensure_network(deployer, target.plan, progress).await? {
        changed.push(target.network_object.clone());
    }
    for (volume, object) in &target.volumes {
        if ensure_volume(docker, volume, progress).await? {
            changed.push((*object).clone());
        }
    }
    check_dependencies(docker, container).await?;

    let names = replica_names(container);
    let mut image_present = false;
    let mut waits = Vec::with_capacity(names.len());
    for (index, name) in (1u32..).zip(&names) {
        let existing = existing(docker, name, &target.container_object.spec_hash).await?;
        if let Existing::UpToDate { restarts } = existing {
            say(progress, format!("container {name} is up to date"));
            waits.push(Awaited {
                name,
                restarts_before: restarts,
                just_started: false,
            });
            continue;
        }
        if !image_present {
            ensure_image(docker, &container.image, progress).await?;
            image_present = true;
        }
        if let Existing::Outdated(reason) = existing {
            say(progress, format!("replacing container {name}: {reason}"));
            remove_container(docker, name, deployer.stop_timeout).await?;
        }
        let body = create_body(
            container,
            env.clone(),
            index,
            &target.container_object.spec_hash,
        )?;
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        docker
            .create_container(Some(options), body)
            .await
            .map_err(|error| engine_error(&format!("creating container {name}"), &error))?;
        say(progress, format!("created container {name}"));
        docker
            .start_container(name, None)
            .await
            .map_err(|error| engine_error(&format!("starting container {name}"), &error))?;
        say(progress, format!("started container {name}"));
        changed.push(replica_object(target.container_object, name));
        waits.push(Awaited {
            name,
            restarts_before: 0,
            just_started: true,
        });
    }
    for extra in replicas_of(docker, &container.name).await? {
        if !names.contains(&extra)
            && remove_container(docker, &extra, deployer.stop_timeout).await?
        {
            say(progress, format!("removed container {extra} (scaled down)"));
        }
    }

    let applied = Instant::now();
    let deadline = applied + request.ready_timeout;
    for container in waits {
        wait_until_ready(docker, container, deadline, request.ready_timeout).await?;
    }
    let ready_after = applied.elapsed();
    say(
        progress,
        format!(
            "{} ready after {:.1} s",
            request.component,
            ready_after.as_secs_f64()
        ),
    );

    let mut objects = vec![target.network_object.clone()];
    objects.extend(target.volumes.iter().map(|(_, object)| (*object).clone()));
    objects.extend(
        names
            .iter()
            .map(|name| replica_object(target.container_object, name)),
    );
    Ok(ApplyReport {
        objects,
        changed,
        ready_after,
    })
}

/// The container object of the replica called `name`: the rendered one, renamed.
fn replica_object(container: &ObjectRef, name: &str) -> ObjectRef {
    ObjectRef {
        name: name.to_owned(),
        ..container.clone()
    }
}

/// Creates the plan's network unless it exists; returns whether it was created. Creations
/// take turns, as the engine does not refuse a second network of the same name.
async fn ensure_network(
    deployer: &DockerDeployer,
    plan: &DockerPlan,
    progress: &Progress,
) -> Result<bool, DeployError> {
    let _turn = deployer.network_creation.lock().await;
    let name = &plan.network;
    match deployer.docker.inspect_network(name, None).await {
        Ok(_) => return Ok(false),
        Err(error) if is_not_found(&error) => {}
        Err(error) => return Err(engine_error(&format!("inspecting network {name}"), &error)),
    }
    let request = NetworkCreateRequest {
        name: name.clone(),
        driver: Some("bridge".to_owned()),
        labels: Some(to_hash_map(&plan.network_labels)),
        ..NetworkCreateRequest::default()
    };
    deployer
        .docker
        .create_network(request)
        .await
        .map_err(|error| engine_error(&format!("creating network {name}"), &error))?;
    say(progress, format!("created network {name}"));
    Ok(true)
}

/// Creates a named volume unless it exists; returns whether it was created.
async fn ensure_volume(
    docker: &Docker,
    volume: &DockerVolume,
    progress: &Progress,
) -> Result<bool, DeployError> {
    let name = &volume.name;
    match docker.inspect_volume(name).await {
        Ok(_) => return Ok(false),
        Err(error) if is_not_found(&error) => {}
        Err(error) => return Err(engine_error(&format!("inspecting volume {name}"), &error)),
    }
    let request = VolumeCreateRequest {
        name: Some(name.clone()),
        labels: Some(to_hash_map(&volume.labels)),
        ..VolumeCreateRequest::default()
    };
    docker
        .create_volume(request)
        .await
        .map_err(|error| engine_error(&format!("creating volume {name}"), &error))?;
    say(progress, format!("created volume {name}"));
    Ok(true)
}

/// Fails when a container this one depends on is missing (permanent: its component must be
/// applied first) or not running (retryable: it may be restarting).
async fn check_dependencies(
    docker: &Docker,
    container: &DockerContainer,
) -> Result<(), DeployError> {
    for dependency in &container.depends_on {
        let inspect = match docker.inspect_container(dependency, None).await {
            Ok(inspect) => inspect,
            Err(error) if is_not_found(&error) => {
                return Err(DeployError::permanent(format!(
                    "container {} depends on {dependency}, which does not exist: apply its \
                     component first",
                    container.name
                )));
            }
            Err(error) => {
                return Err(engine_error(
                    &format!("inspecting container {dependency}"),
                    &error,
                ));
            }
        };
        let running = inspect.state.and_then(|state| state.running) == Some(true);
        if !running {
            return Err(DeployError::retryable(format!(
                "container {} depends on {dependency}, which is not running",
                container.name
            )));
        }
    }
    Ok(())
}

/// Reads the replica `name` and compares it with the plan's spec hash.
async fn existing(docker: &Docker, name: &str, spec_hash: &str) -> Result<Existing, DeployError> {
    let inspect = match docker.inspect_container(name, None).await {
        Ok(inspect) => inspect,
        Err(error) if is_not_found(&error) => return Ok(Existing::Missing),
        Err(error) => {
            return Err(engine_error(
                &format!("inspecting container {name}"),
                &error,
            ));
        }
    };
    let hash = inspect
        .config
        .as_ref()
        .and_then(|config| config.labels.as_ref())
        .and_then(|labels| labels.get(SPEC_HASH_LABEL));
    if hash.map(String::as_str) != Some(spec_hash) {
        return Ok(Existing::Outdated("its spec changed"));
    }
    let state = inspect.state.unwrap_or_default();
    if state.status != Some(ContainerStateStatusEnum::RUNNING) || state.restarting == Some(true) {
        return Ok(Existing::Outdated("it is not running"));
    }
    let health = state.health.and_then(|health| health.status);
    if health == Some(HealthStatusEnum::UNHEALTHY) {
        return Ok(Existing::Outdated("it is unhealthy"));
    }
    Ok(Existing::UpToDate {
        restarts: inspect.restart_count.unwrap_or(0),
    })
}

fn to_hash_map(labels: &std::collections::BTreeMap<String, String>) -> HashMap<String, String> {
    labels
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}
