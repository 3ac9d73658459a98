//! Docker deployer: applies one component of a rendered [`DockerPlan`] to a Docker Engine
//! through bollard and waits until it is ready, or removes what an earlier apply created.
//!
//! An apply makes sure the plan's network and the component's named volumes exist (both
//! labelled as the plan says), then reconciles the component's containers. Each carries the
//! spec hash of its rendered object in the `orchestrator.dev/spec-hash` label: a running
//! container with the plan's hash is left alone, one with another hash (or stopped, or
//! unhealthy) is stopped, removed and created again. A component with several replicas runs
//! `<name>`, `<name>-2`, …; only the first publishes host ports, and replicas beyond the
//! count are removed. Secrets reach containers only as environment values, read from the
//! request's secrets at creation time.
//!
//! Errors talking to the engine (unreachable, a 5xx, a conflict) are retryable; a missing
//! secret or image, a container that exits or fails its health check, and a readiness
//! timeout are not, and the latter carry the container's last log lines as details.
//!
//! [`DockerPlan`]: crate::blueprint::DockerPlan

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use tokio::sync::Mutex;

use super::{ApplyReport, ApplyRequest, DeployError, Deployer, Progress, RecordedObject};
use crate::blueprint::Platform;

mod apply;
mod container_spec;
mod engine_error;
mod image;
mod readiness;
mod removal;

/// How long a container gets to exit after `SIGTERM` before it is killed, by default.
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies and removes components on one Docker Engine. Cheap to clone: clones share the
/// connection.
#[derive(Debug, Clone)]
pub struct DockerDeployer {
    /// The engine client.
    docker: Docker,
    /// Time a container gets to stop before it is killed.
    stop_timeout: Duration,
    /// Held while a network is looked up and created, so two applies of one deployment in
    /// this process do not create two networks of the same name.
    network_creation: Arc<Mutex<()>>,
}

impl DockerDeployer {
    /// A deployer for the local engine: the `DOCKER_HOST` address when set (`unix://`,
    /// `tcp://`, `http://`), else the platform's default socket. Nothing is sent yet, so an
    /// engine that does not answer shows up as a retryable error of the first apply.
    ///
    /// # Errors
    /// Retryable when the socket does not exist (yet); permanent when `DOCKER_HOST` cannot
    /// be used at all (an unknown scheme).
    pub fn connect() -> Result<DockerDeployer, DeployError> {
        let from_env = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|host| !host.trim().is_empty());
        let docker = match from_env {
            Some(_) => Docker::connect_with_defaults(),
            None => Docker::connect_with_local_defaults(),
        }
        .map_err(|error| engine_error::engine_error("connecting", &error))?;
        Ok(DockerDeployer::with_client(docker))
    }

    /// A deployer using an existing client.
    pub fn with_client(docker: Docker) -> DockerDeployer {
        DockerDeployer {
            docker,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            network_creation: Arc::new(Mutex::new(())),
        }
    }

    /// Sets how long a container gets to exit after `SIGTERM` when it is replaced or
    /// removed, before it is killed (10 s unless set).
    #[must_use]
    pub fn with_stop_timeout(mut self, timeout: Duration) -> DockerDeployer {
        self.stop_timeout = timeout;
        self
    }

    /// The engine client, for inspecting what an apply did.
    pub fn client(&self) -> &Docker {
        &self.docker
    }
}

#[async_trait]
impl Deployer for DockerDeployer {
    fn platform(&self) -> Platform {
        Platform::Docker
    }

    async fn apply(
        &self,
        request: ApplyRequest<'_>,
        progress: &Progress,
    ) -> Result<ApplyReport, DeployError> {
        apply::apply_component(self, request, progress).await
    }

    async fn remove(
        &self,
        objects: &[RecordedObject],
        remove_volumes: bool,
        progress: &Progress,
    ) -> Result<(), DeployError> {
        removal::remove_objects(
            &self.docker,
            objects,
            remove_volumes,
            self.stop_timeout,
            progress,
        )
        .await
    }
}

/// Sends one progress line; a caller that stopped listening does not stop the work.
fn say(progress: &Progress, line: String) {
    tracing::info!("{line}");
    // Err only means the receiver is gone.
    let _ = progress.send(line);
}
