//! Deployers: apply one rendered component of a plan to a platform and wait until it is
//! ready, or remove what an earlier apply created. [`docker`] talks to a Docker Engine
//! (bollard), [`kubernetes`] to a Kubernetes API server (kube, server-side apply).
//!
//! Deployers are declarative and idempotent: applying the same component twice changes
//! nothing the second time (the objects' spec hashes match), applying a changed one replaces
//! or patches what differs.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc::UnboundedSender;

use crate::blueprint::{ObjectRef, Platform, RenderedPlan};

pub mod docker;
pub mod kubernetes;

/// One component to apply.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRequest<'a> {
    /// The whole plan (Docker needs its network and volumes; Kubernetes its namespace).
    pub plan: &'a RenderedPlan,
    /// The component of the plan to apply.
    pub component: &'a str,
    /// Every secret of the deployment, keyed `<component>.<name>` (the plan's `secrets`).
    pub secrets: &'a BTreeMap<String, String>,
    /// Kubernetes namespace, or the Docker namespace part of names.
    pub namespace: &'a str,
    /// How long to wait for the component to become ready before failing.
    pub ready_timeout: Duration,
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Every object the component consists of, as now applied (with spec hashes).
    pub objects: Vec<ObjectRef>,
    /// Objects that were created or changed; empty when the apply was a no-op.
    pub changed: Vec<ObjectRef>,
    /// Time from the end of the apply until the component was ready.
    pub ready_after: Duration,
}

/// An object to remove, as recorded when it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedObject {
    /// `Deployment`, `Service`, … ; `Container`, `Network`, `Volume` on Docker.
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

/// Why a deployer failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DeployError {
    /// What failed, for a person: names the object and the reason.
    pub message: String,
    /// Worth another attempt (a connection error, a 5xx, a conflict), or not (bad spec,
    /// health check failed, readiness timed out).
    pub retryable: bool,
    /// Supporting lines, e.g. a container's last log lines.
    pub details: Vec<String>,
}

impl DeployError {
    /// A failure another attempt would repeat.
    pub fn permanent(message: impl Into<String>) -> DeployError {
        DeployError {
            message: message.into(),
            retryable: false,
            details: Vec::new(),
        }
    }

    /// A failure worth another attempt.
    pub fn retryable(message: impl Into<String>) -> DeployError {
        DeployError {
            message: message.into(),
            retryable: true,
            details: Vec::new(),
        }
    }
}

/// Progress lines a deployer sends while it works ("created container x", "postgresql
/// ready after 4.2 s"); the caller writes them to the execution's log.
pub type Progress = UnboundedSender<String>;

/// Applies and removes components on one platform.
#[async_trait]
pub trait Deployer: Send + Sync {
    /// The platform this deployer targets.
    fn platform(&self) -> Platform;

    /// Applies `request.component` and waits until it is ready (health check passing,
    /// rollout complete). Idempotent.
    async fn apply(
        &self,
        request: ApplyRequest<'_>,
        progress: &Progress,
    ) -> Result<ApplyReport, DeployError>;

    /// Removes `objects` (newest first is the caller's job), skipping ones already gone.
    /// Docker volumes are only removed when `remove_volumes` is true; Kubernetes
    /// PersistentVolumeClaims likewise.
    async fn remove(
        &self,
        objects: &[RecordedObject],
        remove_volumes: bool,
        progress: &Progress,
    ) -> Result<(), DeployError>;
}
