//! Removing what an apply created: containers (stopped first, then removed with their
//! anonymous volumes, extra replicas included), networks no container uses any more, and —
//! only when asked — named volumes. Objects already gone count as removed.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    StopContainerOptionsBuilder,
};

use super::container_spec::REPLICA_OF_LABEL;
use super::engine_error::{engine_error, is_not_found, status_of};
use super::say;
use crate::deploy::{DeployError, Progress, RecordedObject};

/// Removes `objects`: containers first, then volumes (when `remove_volumes`), then networks,
/// so each step finds the previous one's objects gone whatever order they were recorded in.
#[tracing::instrument(skip_all, fields(backend = "docker", objects = objects.len()))]
pub(super) async fn remove_objects(
    docker: &Docker,
    objects: &[RecordedObject],
    remove_volumes: bool,
    stop_timeout: Duration,
    progress: &Progress,
) -> Result<(), DeployError> {
    let of_kind = |kind: &'static str| objects.iter().filter(move |o| o.kind == kind);
    for container in of_kind("Container") {
        let mut names = vec![container.name.clone()];
        for replica in replicas_of(docker, &container.name).await? {
            if !names.contains(&replica) {
                names.push(replica);
            }
        }
        for name in names {
            if remove_container(docker, &name, stop_timeout).await? {
                say(progress, format!("removed container {name}"));
            }
        }
    }
    for volume in of_kind("Volume") {
        if remove_volumes {
            remove_volume(docker, &volume.name, progress).await?;
        } else {
            say(progress, format!("kept volume {}", volume.name));
        }
    }
    for network in of_kind("Network") {
        remove_network(docker, &network.name, progress).await?;
    }
    for other in objects
        .iter()
        .filter(|o| !matches!(o.kind.as_str(), "Container" | "Volume" | "Network"))
    {
        say(
            progress,
            format!("skipped {} {}: not a Docker object", other.kind, other.name),
        );
    }
    Ok(())
}

/// Names of every container labelled as a replica of `base` (`base` itself included),
/// running or not.
pub(super) async fn replicas_of(docker: &Docker, base: &str) -> Result<Vec<String>, DeployError> {
    let filter = format!("{REPLICA_OF_LABEL}={base}");
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&HashMap::from([("label", vec![filter.as_str()])]))
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(|error| engine_error(&format!("listing the replicas of {base}"), &error))?;
    Ok(containers
        .into_iter()
        .filter_map(|summary| summary.names?.into_iter().next())
        .map(|name| name.trim_start_matches('/').to_owned())
        .collect())
}

/// Stops the container `name` (giving it `stop_timeout` to exit), then removes it with its
/// anonymous volumes. Returns whether there was anything to remove.
pub(super) async fn remove_container(
    docker: &Docker,
    name: &str,
    stop_timeout: Duration,
) -> Result<bool, DeployError> {
    let seconds = i32::try_from(stop_timeout.as_secs()).unwrap_or(i32::MAX);
    let stop = StopContainerOptionsBuilder::default().t(seconds).build();
    match docker.stop_container(name, Some(stop)).await {
        Ok(()) => {}
        Err(error) if is_not_found(&error) => return Ok(false),
        Err(error) => return Err(engine_error(&format!("stopping container {name}"), &error)),
    }
    let remove = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(remove)).await {
        Ok(()) => Ok(true),
        Err(error) if is_not_found(&error) => Ok(false),
        Err(error) => Err(engine_error(&format!("removing container {name}"), &error)),
    }
}

async fn remove_volume(
    docker: &Docker,
    name: &str,
    progress: &Progress,
) -> Result<(), DeployError> {
    match docker
        .remove_volume(name, Some(RemoveVolumeOptionsBuilder::default().build()))
        .await
    {
        Ok(()) => say(progress, format!("removed volume {name}")),
        Err(error) if is_not_found(&error) => {}
        Err(error) if status_of(&error) == Some(409) => say(
            progress,
            format!("kept volume {name}: a container still uses it"),
        ),
        Err(error) => return Err(engine_error(&format!("removing volume {name}"), &error)),
    }
    Ok(())
}

async fn remove_network(
    docker: &Docker,
    name: &str,
    progress: &Progress,
) -> Result<(), DeployError> {
    let network = match docker.inspect_network(name, None).await {
        Ok(network) => network,
        Err(error) if is_not_found(&error) => return Ok(()),
        Err(error) => return Err(engine_error(&format!("inspecting network {name}"), &error)),
    };
    let attached: Vec<String> = network
        .containers
        .unwrap_or_default()
        .into_iter()
        .map(|(id, endpoint)| endpoint.name.unwrap_or(id))
        .collect();
    if !attached.is_empty() {
        say(
            progress,
            format!(
                "kept network {name}: still attached to {}",
                attached.join(", ")
            ),
        );
        return Ok(());
    }
    match docker.remove_network(name).await {
        Ok(()) => say(progress, format!("removed network {name}")),
        Err(error) if is_not_found(&error) => {}
        // A container joined between the inspection and the removal.
        Err(error) if matches!(status_of(&error), Some(403 | 409)) => say(
            progress,
            format!("kept network {name}: a container joined it meanwhile"),
        ),
        Err(error) => return Err(engine_error(&format!("removing network {name}"), &error)),
    }
    Ok(())
}
