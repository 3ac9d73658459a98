//! Waiting for Deployments and StatefulSets to finish rolling out, by polling GET (no watch,
//! so the deployer needs no list/watch permission and tests need no streaming mock).
//!
//! A rollout counts as done only once the controller has seen the newest spec
//! (`observedGeneration >= generation`): right after an apply the status still describes
//! the previous rollout, which may well look complete.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::{Api, Client};
use tokio::time::Instant;

use super::api_errors::api_failure;
use super::kinds::describe;
use super::redaction::Redactor;
use crate::deploy::{DeployError, Progress};

/// A workload to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Workload {
    Deployment(String),
    StatefulSet(String),
}

/// What one look at a workload's status showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Observation {
    /// The rollout is complete and every replica is ready.
    pub done: bool,
    /// The status numbers, e.g. `1/2 ready, 2 updated, 1 available, generation 3 of 3 observed`.
    pub summary: String,
    /// Set when the controller gave up (a Deployment past its progress deadline).
    pub failure: Option<String>,
    /// Conditions that explain a wait, e.g. `ReplicaFailure: FailedCreate: exceeded quota`.
    pub details: Vec<String>,
}

/// Rollout state of a Deployment: the newest generation observed and every desired replica
/// updated, available and ready, with no old replicas left.
pub(super) fn observe_deployment(deployment: &Deployment) -> Observation {
    let generation = deployment.metadata.generation.unwrap_or(0);
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let conditions = status.conditions.unwrap_or_default();
    let failure = conditions.iter().find_map(|c| {
        (c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
        .then(|| {
            c.message
                .clone()
                .unwrap_or_else(|| "progress deadline exceeded".to_owned())
        })
    });
    // Healthy means `Available` and `Progressing` true, `ReplicaFailure` absent or false.
    let details = conditions
        .iter()
        .filter(|c| match c.type_.as_str() {
            "ReplicaFailure" => c.status == "True",
            _ => c.status != "True",
        })
        .map(|c| {
            let reason = c.reason.as_deref().unwrap_or("no reason given");
            match &c.message {
                Some(message) => format!("{}: {reason}: {message}", c.type_),
                None => format!("{}: {reason}", c.type_),
            }
        })
        .collect();
    Observation {
        done: observed >= generation
            && [total, updated, available, ready]
                .iter()
                .all(|count| *count == wanted),
        summary: format!(
            "{ready}/{wanted} ready, {updated} updated, {available} available, {total} total, \
             generation {observed} of {generation} observed"
        ),
        failure,
        details,
    }
}

/// Rollout state of a StatefulSet: the newest generation observed, every desired replica
/// ready and updated, and the current revision caught up with the update revision.
pub(super) fn observe_stateful_set(set: &StatefulSet) -> Observation {
    let generation = set.metadata.generation.unwrap_or(0);
    let wanted = set
        .spec
        .as_ref()
        .and_then(|spec| spec.replicas)
        .unwrap_or(1);
    let status = set.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let revision_current = match (&status.current_revision, &status.update_revision) {
        (Some(current), Some(update)) => current == update,
        (None, Some(_)) => false,
        (_, None) => true,
    };
    Observation {
        done: observed >= generation && ready == wanted && updated == wanted && revision_current,
        summary: format!(
            "{ready}/{wanted} ready, {updated} updated, revision {}, \
             generation {observed} of {generation} observed",
            if revision_current {
                "current"
            } else {
                "rolling out"
            }
        ),
        failure: None,
        details: Vec::new(),
    }
}

/// Polls workloads of one namespace until they are rolled out or a deadline passes.
pub(super) struct RolloutWait<'a> {
    pub client: &'a Client,
    pub namespace: &'a str,
    pub poll_interval: Duration,
    /// The overall limit, for the timeout message.
    pub timeout: Duration,
    pub deadline: Instant,
    pub redactor: &'a Redactor,
    pub progress: &'a Progress,
}

impl RolloutWait<'_> {
    /// Waits for each of `workloads` in turn, within the one deadline.
    ///
    /// A transient API error while polling is retried until the deadline; if the deadline
    /// passes on one, that error is returned (retryable). A rollout that does not finish in
    /// time, or that the controller reports as failed, is a permanent error naming the
    /// workload and its last status numbers.
    pub async fn until_rolled_out(&self, workloads: &[Workload]) -> Result<(), DeployError> {
        for workload in workloads {
            self.wait_for(workload).await?;
        }
        Ok(())
    }

    async fn wait_for(&self, workload: &Workload) -> Result<(), DeployError> {
        let (kind, name) = match workload {
            Workload::Deployment(name) => ("Deployment", name),
            Workload::StatefulSet(name) => ("StatefulSet", name),
        };
        let what = describe(kind, Some(self.namespace), name);
        let mut last_summary: Option<String> = None;
        let mut last_details = Vec::new();
        loop {
            let observed = match workload {
                Workload::Deployment(name) => {
                    let api: Api<Deployment> = Api::namespaced(self.client.clone(), self.namespace);
                    api.get(name).await.map(|d| observe_deployment(&d))
                }
                Workload::StatefulSet(name) => {
                    let api: Api<StatefulSet> =
                        Api::namespaced(self.client.clone(), self.namespace);
                    api.get(name).await.map(|s| observe_stateful_set(&s))
                }
            };
            let pending_error = match observed {
                Ok(observation) => {
                    if observation.done {
                        return Ok(());
                    }
                    if let Some(failure) = observation.failure {
                        return Err(DeployError::permanent(self.redactor.scrub(&format!(
                            "{what} failed to roll out: {failure} ({})",
                            observation.summary
                        ))));
                    }
                    last_details = observation.details;
                    if last_summary.as_ref() != Some(&observation.summary) {
                        let _ = self
                            .progress
                            .send(format!("waiting for {what}: {}", observation.summary));
                        last_summary = Some(observation.summary);
                    }
                    None
                }
                Err(error) => {
                    let error = api_failure(&format!("reading {what}"), error, self.redactor);
                    if !error.retryable {
                        return Err(error);
                    }
                    Some(error)
                }
            };
            let now = Instant::now();
            if now >= self.deadline {
                return Err(match (pending_error, last_summary) {
                    (Some(error), _) => error,
                    (None, summary) => DeployError {
                        details: last_details
                            .iter()
                            .map(|line| self.redactor.scrub(line))
                            .collect(),
                        ..DeployError::permanent(format!(
                            "{what} was not ready after {:.1} s: {}",
                            self.timeout.as_secs_f64(),
                            summary.unwrap_or_default()
                        ))
                    },
                });
            }
            tokio::time::sleep(self.poll_interval.min(self.deadline - now)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn deployment_is_done_only_for_the_newest_generation() {
        let counts = json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
                            "readyReplicas": 2, "observedGeneration": 1});
        assert!(!observe_deployment(&deployment(2, counts.clone())).done);
        assert!(observe_deployment(&deployment(1, counts)).done);
        let surplus = json!({"replicas": 3, "updatedReplicas": 2, "availableReplicas": 2,
                             "readyReplicas": 2, "observedGeneration": 1});
        assert!(!observe_deployment(&deployment(1, surplus)).done);
    }

    #[test]
    fn deployment_past_its_deadline_has_failed() {
        let status = json!({"observedGeneration": 1, "conditions": [{"type": "Progressing",
            "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}]});
        let observation = observe_deployment(&deployment(1, status));
        assert_eq!(observation.failure.as_deref(), Some("too slow"));
        assert_eq!(
            observation.details,
            ["Progressing: ProgressDeadlineExceeded: too slow"]
        );
    }

    #[test]
    fn stateful_set_waits_for_its_update_revision() {
        let set = |current: &str| -> StatefulSet {
            serde_json::from_value(json!({
                "metadata": {"name": "db", "generation": 1},
                "spec": {"replicas": 1, "selector": {}, "serviceName": "db", "template": {}},
                "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1,
                           "observedGeneration": 1, "currentRevision": current,
                           "updateRevision": "db-2"},
            }))
            .unwrap()
        };
        assert!(!observe_stateful_set(&set("db-1")).done);
        assert!(observe_stateful_set(&set("db-2")).done);
    }
}
