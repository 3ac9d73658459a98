//! Kubernetes deployer: applies a rendered component to a cluster with server-side apply
//! and waits for its workloads to roll out; removes what an earlier apply created.
//!
//! An apply ensures the namespace, then applies the component's documents in order with
//! field manager [`FIELD_MANAGER`], forcing ownership of the fields it sets. Each object
//! carries its rendered spec hash in the [`SPEC_HASH_ANNOTATION`] annotation; an object whose
//! live annotation already matches is left untouched, so applying an unchanged component
//! only reads. Deployments and StatefulSets are then polled until rolled out.
//!
//! Connection failures and 5xx/409/429 answers are retryable; invalid or forbidden objects
//! and rollouts that do not finish in time are not. Secret values never appear in progress
//! lines, errors or logs.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use tokio::time::Instant;

use super::{ApplyReport, ApplyRequest, DeployError, Deployer, Progress, RecordedObject};
use crate::blueprint::Platform;

mod api_errors;
mod kinds;
mod manifests;
mod redaction;
mod removal;
mod rollout;

use api_errors::api_failure;
use manifests::{Document, parse_documents};
use redaction::Redactor;
use rollout::{RolloutWait, Workload};

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "orchestrator";

/// Annotation holding the spec hash an object was last applied with.
pub const SPEC_HASH_ANNOTATION: &str = "orchestrator.dev/spec-hash";

/// How often rollouts are polled unless [`KubernetesDeployer::with_poll_interval`] says
/// otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Deploys components to one Kubernetes cluster.
#[derive(Clone)]
pub struct KubernetesDeployer {
    client: Client,
    poll_interval: Duration,
}

impl KubernetesDeployer {
    /// Connects with `kubeconfig` (and its `context`, else its current one). Without a file
    /// the cluster is inferred: the in-cluster service account, then `KUBECONFIG` or
    /// `~/.kube/config`. Nothing is sent to the cluster yet.
    ///
    /// Fails (permanently) when the configuration cannot be read or names no usable
    /// cluster, e.g. an unknown context.
    pub async fn from_config(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<Self, DeployError> {
        let options = KubeConfigOptions {
            context: context.map(str::to_owned),
            ..KubeConfigOptions::default()
        };
        let unusable = |source: &dyn std::fmt::Display| {
            DeployError::permanent(format!("cannot use the Kubernetes configuration: {source}"))
        };
        let config = match (kubeconfig, context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path).map_err(|e| {
                    DeployError::permanent(format!(
                        "cannot read kubeconfig {}: {e}",
                        path.display()
                    ))
                })?;
                Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| unusable(&e))?
            }
            (None, Some(_)) => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| unusable(&e))?,
            (None, None) => Config::infer().await.map_err(|e| unusable(&e))?,
        };
        let client = Client::try_from(config).map_err(|e| unusable(&e))?;
        Ok(Self::with_client(client))
    }

    /// A deployer using `client` as it is (tests pass one backed by a mock API server).
    pub fn with_client(client: Client) -> Self {
        KubernetesDeployer {
            client,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Polls rollouts every `interval` instead of [`DEFAULT_POLL_INTERVAL`].
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Creates `namespace` unless it exists. An existing namespace is left as it is: it may
    /// belong to someone else (`default`, a team's namespace).
    async fn ensure_namespace(
        &self,
        namespace: &str,
        redactor: &Redactor,
        progress: &Progress,
    ) -> Result<(), DeployError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let what = format!("Namespace {namespace}");
        let existing = api
            .get_metadata_opt(namespace)
            .await
            .map_err(|e| api_failure(&format!("reading {what}"), e, redactor))?;
        if existing.is_some() {
            return Ok(());
        }
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.to_owned()),
                labels: Some(
                    [(
                        "app.kubernetes.io/managed-by".to_owned(),
                        "orchestrator".to_owned(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.patch(namespace, &apply_params(), &Patch::Apply(&object))
            .await
            .map_err(|e| api_failure(&format!("applying {what}"), e, redactor))?;
        let _ = progress.send(format!("applied {what}"));
        Ok(())
    }

    /// Applies one document unless its live spec-hash annotation matches; returns whether it
    /// was applied.
    async fn apply_document(
        &self,
        document: &Document,
        redactor: &Redactor,
        progress: &Progress,
    ) -> Result<bool, DeployError> {
        let api = document
            .kind
            .api(&self.client, document.namespace.as_deref());
        let what = document.describe();
        // Metadata only: reading a live Secret in full would fetch its values for nothing.
        let live = api
            .get_metadata_opt(document.name())
            .await
            .map_err(|e| api_failure(&format!("reading {what}"), e, redactor))?;
        let live_hash = live.as_ref().and_then(|live| {
            live.metadata
                .annotations
                .as_ref()?
                .get(SPEC_HASH_ANNOTATION)
                .cloned()
        });
        if live_hash.as_deref() == Some(document.reference.spec_hash.as_str()) {
            let _ = progress.send(format!("unchanged {what}"));
            return Ok(false);
        }
        api.patch(
            document.name(),
            &apply_params(),
            &Patch::Apply(&document.object),
        )
        .await
        .map_err(|e| api_failure(&format!("applying {what}"), e, redactor))?;
        let _ = progress.send(format!("applied {what}"));
        Ok(true)
    }
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

#[async_trait]
impl Deployer for KubernetesDeployer {
    fn platform(&self) -> Platform {
        Platform::Kubernetes
    }

    #[tracing::instrument(
        skip_all,
        fields(component = request.component, namespace = request.namespace)
    )]
    async fn apply(
        &self,
        request: ApplyRequest<'_>,
        progress: &Progress,
    ) -> Result<ApplyReport, DeployError> {
        if request.plan.platform != Platform::Kubernetes {
            return Err(DeployError::permanent(format!(
                "the plan was rendered for {}, not Kubernetes",
                request.plan.platform
            )));
        }
        let component = request.plan.component(request.component).ok_or_else(|| {
            DeployError::permanent(format!("the plan has no component {}", request.component))
        })?;
        let namespace = request.namespace;
        let plan_redactor = Redactor::new(request.secrets.values().map(String::as_str));
        let documents = parse_documents(component, namespace).map_err(|e| DeployError {
            message: plan_redactor.scrub(&e.message),
            ..e
        })?;
        let redactor = Redactor::new(
            request
                .secrets
                .values()
                .map(String::as_str)
                .chain(documents.iter().flat_map(Document::secret_values)),
        );

        if !documents.first().is_some_and(|d| d.is_namespace(namespace)) {
            self.ensure_namespace(namespace, &redactor, progress)
                .await?;
        }
        let mut changed = Vec::new();
        for document in &documents {
            if self.apply_document(document, &redactor, progress).await? {
                changed.push(document.reference.clone());
            }
        }

        let applied_at = Instant::now();
        let workloads: Vec<Workload> = documents
            .iter()
            .filter_map(|d| match d.reference.kind.as_str() {
                "Deployment" => Some(Workload::Deployment(d.name().to_owned())),
                "StatefulSet" => Some(Workload::StatefulSet(d.name().to_owned())),
                _ => None,
            })
            .collect();
        RolloutWait {
            client: &self.client,
            namespace,
            poll_interval: self.poll_interval,
            timeout: request.ready_timeout,
            deadline: applied_at + request.ready_timeout,
            redactor: &redactor,
            progress,
        }
        .until_rolled_out(&workloads)
        .await?;
        let ready_after = applied_at.elapsed();
        let _ = progress.send(format!(
            "{} ready after {:.1} s",
            component.name,
            ready_after.as_secs_f64()
        ));
        Ok(ApplyReport {
            objects: documents.into_iter().map(|d| d.reference).collect(),
            changed,
            ready_after,
        })
    }

    #[tracing::instrument(
        skip_all,
        fields(objects = objects.len(), remove_volumes = remove_volumes)
    )]
    async fn remove(
        &self,
        objects: &[RecordedObject],
        remove_volumes: bool,
        progress: &Progress,
    ) -> Result<(), DeployError> {
        removal::remove_objects(&self.client, objects, remove_volumes, progress).await
    }
}
