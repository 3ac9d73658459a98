//! One attempt of a `remote` stage through the handshake protocol: pick a healthy worker of
//! the project with the capability and a free slot, handshake (a refusal moves on to the next
//! worker), process, and report the result with its metrics. Every packet is logged in
//! `handshakes`; a cancel tells the worker (`POST /api/cancel`).
//!
//! A re-run of the same attempt after a crash finds the slot the stage already holds and goes
//! back to that worker with the same `Idempotency-Key`.

use std::future::Future;
use std::pin::Pin;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

use orchestrator_core::CoreContext;
use orchestrator_core::config::Secret;
use orchestrator_core::db::begin_write;
use orchestrator_core::engine::action::ActionOutput;
use orchestrator_core::engine::lifecycle::{claim_slot, release_slot};
use orchestrator_core::remote::{
    self, CallError, HandshakeRequest, HandshakeResponse, ProcessResponse, RemoteWorkerClient,
    RequestedResources,
};
use orchestrator_entity::{WorkerHealth, stages, workers};

use crate::stage_store;

/// How a remote attempt ended.
#[derive(Debug)]
pub enum RemoteOutcome {
    Done(ActionOutput),
    /// Worth another attempt (timeout, connection error, 5xx).
    Retry(String),
    /// The worker refused or failed the stage for good (4xx, `"status": "failed"`).
    Fail(String),
    /// No worker took the stage now; try again later, same attempt.
    Wait(String),
    Cancelled,
}

/// The outcome and the worker slot the stage still holds (to give back when it ends).
#[derive(Debug)]
pub struct RemoteResult {
    pub outcome: RemoteOutcome,
    pub slot: Option<Uuid>,
}

/// A future that resolves when the execution is asked to stop.
pub type CancelSignal<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Everything one remote attempt needs.
pub struct RemoteAttempt<'a> {
    pub core: &'a CoreContext,
    pub client: &'a RemoteWorkerClient,
    pub token_key: &'a Secret,
    /// Sent as `X-Worker-ID`.
    pub instance_id: &'a str,
    pub stage: &'a stages::Model,
    pub job_id: &'a str,
    pub deadline: Instant,
}

enum Step<T> {
    Done(T),
    Cancelled,
}

async fn or_cancel<T>(work: impl Future<Output = T>, cancel: &mut CancelSignal<'_>) -> Step<T> {
    tokio::select! {
        value = work => Step::Done(value),
        _ = cancel.as_mut() => Step::Cancelled,
    }
}

impl RemoteAttempt<'_> {
    fn capability(&self) -> &str {
        self.stage.capability.as_deref().unwrap_or_default()
    }

    /// Healthy workers of the project with the capability and a free slot, least loaded first.
    async fn candidates(&self) -> anyhow::Result<Vec<workers::Model>> {
        let mut found: Vec<workers::Model> = workers::Entity::find()
            .filter(workers::Column::ProjectId.eq(self.stage.project_id))
            .filter(workers::Column::DeregisteredAt.is_null())
            .filter(workers::Column::HealthStatus.eq(WorkerHealth::Healthy))
            .all(&self.core.db)
            .await?
            .into_iter()
            .filter(|w| w.active_stages < w.max_concurrent && offers(w, self.capability()))
            .collect();
        found.sort_by(|a, b| {
            let load = |w: &workers::Model| w.active_stages as f64 / w.max_concurrent as f64;
            load(a)
                .total_cmp(&load(b))
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(found)
    }

    /// True when some registered worker of the project offers the capability at all.
    async fn capability_registered(&self) -> anyhow::Result<bool> {
        let registered = workers::Entity::find()
            .filter(workers::Column::ProjectId.eq(self.stage.project_id))
            .filter(workers::Column::DeregisteredAt.is_null())
            .all(&self.core.db)
            .await?;
        Ok(registered.iter().any(|w| offers(w, self.capability())))
    }

    /// The worker whose slot the stage already holds (a re-run after a crash), if it is
    /// still registered; a slot on a deregistered worker is given back.
    async fn held_worker(&self) -> anyhow::Result<Option<workers::Model>> {
        let Some(worker_id) = self.stage.slot_worker_id else {
            return Ok(None);
        };
        let worker = workers::Entity::find_by_id(worker_id)
            .one(&self.core.db)
            .await?;
        match worker {
            Some(w) if w.deregistered_at.is_none() => Ok(Some(w)),
            _ => {
                self.give_back(worker_id).await?;
                Ok(None)
            }
        }
    }

    /// Takes a slot of `worker_id` for the stage; the count and the stage's note of it
    /// change together or not at all.
    async fn take_slot(&self, worker_id: Uuid) -> anyhow::Result<bool> {
        let txn = begin_write(&self.core.db).await?;
        let taken = claim_slot(&txn, self.stage.id, worker_id).await?;
        txn.commit().await?;
        Ok(taken)
    }

    /// Gives the stage's slot on `worker_id` back (both sides in one transaction).
    async fn give_back(&self, worker_id: Uuid) -> anyhow::Result<()> {
        let txn = begin_write(&self.core.db).await?;
        release_slot(&txn, self.stage.id, worker_id).await?;
        txn.commit().await?;
        Ok(())
    }

    fn handshake_body(&self, input: &Value) -> Value {
        json!(HandshakeRequest {
            execution_id: self.stage.execution_id,
            stage_id: self.stage.id,
            action: self.capability().to_string(),
            input_data: input.clone(),
            resource_requirements: RequestedResources {
                estimated_tokens: input.get("estimatedTokens").and_then(Value::as_u64),
                timeout_ms: self.remaining_ms(),
            },
        })
    }

    /// Runs the attempt; database errors end it with `Err` (the job is then re-delivered and
    /// repeats the attempt with the same key).
    pub async fn run(&self, mut cancel: CancelSignal<'_>) -> anyhow::Result<RemoteResult> {
        let input = stage_store::input_of(self.stage);
        let held = self.held_worker().await?;
        let reused = held.is_some();
        let candidates = match held {
            Some(w) => vec![w],
            None => self.candidates().await?,
        };
        let mut refusals = Vec::new();
        let mut chosen = None;
        for worker in candidates {
            if !reused && !self.take_slot(worker.id).await? {
                continue;
            }
            let timeout = remote::HANDSHAKE_TIMEOUT
                .min(std::time::Duration::from_millis(self.remaining_ms().max(1)));
            let body = self.handshake_body(&input);
            let step = or_cancel(
                self.exchange::<HandshakeResponse>(
                    &worker,
                    "handshake",
                    "/api/handshake",
                    body,
                    timeout,
                ),
                &mut cancel,
            )
            .await;
            let answer = match step {
                Step::Cancelled => {
                    self.send_cancel(&worker).await?;
                    return Ok(self.ended(RemoteOutcome::Cancelled, Some(worker.id)));
                }
                Step::Done(answer) => answer?,
            };
            match answer {
                Ok(accepted) if accepted.accepted => {
                    chosen = Some(worker);
                    break;
                }
                Ok(refused) => {
                    self.give_back(worker.id).await?;
                    let why = refused.reason.unwrap_or_else(|| "no reason given".into());
                    refusals.push(format!("{} refused: {why}", worker.name));
                }
                Err(error) => {
                    self.give_back(worker.id).await?;
                    let message = format!("handshake with worker {}: {error}", worker.name);
                    let outcome = if error.is_retryable() {
                        RemoteOutcome::Retry(message)
                    } else {
                        RemoteOutcome::Fail(message)
                    };
                    return Ok(self.ended(outcome, None));
                }
            }
        }
        let Some(worker) = chosen else {
            let outcome = if !refusals.is_empty() {
                RemoteOutcome::Wait(refusals.join("; "))
            } else if self.capability_registered().await? {
                RemoteOutcome::Wait(format!(
                    "no healthy worker with capability {:?} has a free slot",
                    self.capability()
                ))
            } else {
                RemoteOutcome::Fail(format!(
                    "no registered worker offers capability {:?}",
                    self.capability()
                ))
            };
            return Ok(self.ended(outcome, None));
        };
        stage_store::mark_running(&self.core.db, self.stage, self.job_id).await?;
        let remaining = std::time::Duration::from_millis(self.remaining_ms());
        if remaining.is_zero() {
            self.send_cancel(&worker).await?;
            let outcome = RemoteOutcome::Retry("timed out before processing started".into());
            return Ok(self.ended(outcome, Some(worker.id)));
        }
        let step = or_cancel(
            self.exchange::<ProcessResponse>(
                &worker,
                "process",
                "/api/process",
                self.stage_ref(),
                remaining,
            ),
            &mut cancel,
        )
        .await;
        let outcome = match step {
            Step::Cancelled => {
                self.send_cancel(&worker).await?;
                RemoteOutcome::Cancelled
            }
            Step::Done(answer) => match answer? {
                Ok(done) => processed(done, &worker),
                Err(CallError::Timeout(ms)) => {
                    self.send_cancel(&worker).await?;
                    RemoteOutcome::Retry(format!("worker {} timed out after {ms} ms", worker.name))
                }
                Err(error) if error.is_retryable() => {
                    RemoteOutcome::Retry(format!("process on worker {}: {error}", worker.name))
                }
                Err(error) => {
                    RemoteOutcome::Fail(format!("process on worker {}: {error}", worker.name))
                }
            },
        };
        Ok(self.ended(outcome, Some(worker.id)))
    }

    fn ended(&self, outcome: RemoteOutcome, slot: Option<Uuid>) -> RemoteResult {
        RemoteResult { outcome, slot }
    }
}

/// Reads a `/api/process` answer.
fn processed(answer: ProcessResponse, worker: &workers::Model) -> RemoteOutcome {
    match answer.status.as_str() {
        "completed" => {
            let metrics = answer.metrics.unwrap_or_default();
            RemoteOutcome::Done(ActionOutput {
                output: answer.result.unwrap_or_else(|| json!({})),
                tokens_used: metrics.tokens_used.unwrap_or(0).max(0),
                cost_usd: metrics.cost_usd.unwrap_or(0.0).max(0.0),
            })
        }
        "failed" => RemoteOutcome::Fail(format!(
            "worker {} reported a failure: {}",
            worker.name,
            answer.error.unwrap_or_else(|| "no message".into())
        )),
        other => RemoteOutcome::Fail(format!(
            "worker {} answered status {other:?}; expected \"completed\" or \"failed\"",
            worker.name
        )),
    }
}

/// True when the worker lists `capability`.
fn offers(worker: &workers::Model, capability: &str) -> bool {
    worker
        .capabilities
        .as_array()
        .is_some_and(|list| list.iter().any(|c| c.as_str() == Some(capability)))
}
