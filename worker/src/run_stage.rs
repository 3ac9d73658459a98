//! Runs one attempt of one stage: wait for its due time and a running slot, claim it, run its
//! action (built-in, or remote through the handshake protocol) while watching for a cancel,
//! record the outcome, and queue what comes next (the next stage, a retry with backoff, a
//! later try when no remote worker is free, or nothing).
//!
//! Every status change is committed before the next job is pushed. A job whose stage moved on
//! is a no-op; a second job for an attempt another job claimed is a no-op; a re-delivery of
//! the claiming job (its process died) resumes the attempt with the same `Idempotency-Key`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;

use orchestrator_core::CoreContext;
use orchestrator_core::config::Secret;
use orchestrator_core::engine::action::{
    ActionContext, ActionError, ActionOutput, StageAction, builtin_actions,
};
use orchestrator_core::engine::pipeline::{REMOTE_ACTION, StageSpec};
use orchestrator_core::events::{publish_execution, publish_logs, publish_rows, publish_stage};
use orchestrator_core::jobs::RunStage;
use orchestrator_core::queue::PushOptions;
use orchestrator_core::remote::RemoteWorkerClient;
use orchestrator_entity::{Priority, StageStatus, stages};

use crate::backoff::delay_before;
use crate::priority_gate::{GatePermit, PriorityGate};
use crate::remote_stage::{CancelSignal, RemoteAttempt, RemoteOutcome};
use crate::stage_outcome::{self, AfterSuccess};
use crate::stage_store::{self, Claimed, Loaded};

/// Time a stage may run when its definition sets no `timeoutMs`.
const DEFAULT_STAGE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How often a running stage checks whether its execution was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(200);
/// How many times one attempt waits for a free remote worker before it fails.
pub const MAX_WAITS: u32 = 60;

/// How an attempt ended, whatever ran it.
enum Outcome {
    Succeeded(ActionOutput),
    Retry(String),
    Fail(String),
    Wait(String),
    Cancelled,
}

/// Runs stages; one per worker process, shared by its queue workers.
pub struct StageRunner {
    core: CoreContext,
    actions: HashMap<&'static str, Arc<dyn StageAction>>,
    worker_name: String,
    gate: Arc<PriorityGate>,
    remote: RemoteWorkerClient,
    token_key: Secret,
    stopping: watch::Receiver<bool>,
}

impl std::fmt::Debug for StageRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageRunner")
            .field("worker_name", &self.worker_name)
            .finish_non_exhaustive()
    }
}

impl StageRunner {
    /// A runner with the built-in actions and `concurrency` running-stage slots. It stops
    /// starting stages once `stopping` turns true.
    pub fn new(
        core: CoreContext,
        worker_name: String,
        concurrency: usize,
        stopping: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let actions = builtin_actions()
            .into_iter()
            .chain(orchestrator_core::intent::actions::intent_actions())
            .chain(orchestrator_core::backends::sync::prompt_actions())
            .map(|a| (a.name(), a))
            .collect();
        let token_key = orchestrator_core::keys::secret_key(&core.config)?;
        let remote = RemoteWorkerClient::with_guard(
            orchestrator_core::outbound::OutboundGuard::from_config(&core.config),
        );
        Ok(StageRunner {
            core,
            actions,
            worker_name,
            gate: PriorityGate::new(concurrency),
            remote,
            token_key,
            stopping,
        })
    }

    /// Stops handing out running slots (shutdown): waiting jobs go back to the queue.
    pub fn close(&self) {
        self.gate.close();
    }

    async fn wait_until_due(&self, job: &RunStage) -> anyhow::Result<()> {
        let Some(due_ms) = job.not_before_ms else {
            return Ok(());
        };
        let wait_ms = due_ms - Utc::now().timestamp_millis();
        if wait_ms <= 0 {
            return Ok(());
        }
        let mut stopping = self.stopping.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => Ok(()),
            _ = stopping.wait_for(|s| *s) => anyhow::bail!("shutting down; the job goes back to the queue"),
        }
    }

    /// Runs the job; see the module doc. `job_id` is the queue's id of this job, stable
    /// across re-deliveries; `priority` is the queue it came from.
    #[tracing::instrument(skip_all, fields(stage_id = %job.stage_id, attempt = job.attempt))]
    pub async fn run(&self, job: RunStage, job_id: &str, priority: Priority) -> anyhow::Result<()> {
        self.wait_until_due(&job).await?;
        let Some(permit) = self.gate.acquire(priority.weight() as u8).await else {
            anyhow::bail!("shutting down; the job goes back to the queue");
        };
        let db = &self.core.db;
        let claimed =
            stage_store::claim(db, job.stage_id, job.attempt, job_id, &self.worker_name).await?;
        match claimed {
            Some(Claimed {
                stage,
                started,
                line,
            }) => {
                // Tell subscribers, from the rows as committed (no re-read).
                publish_rows(
                    &self.core,
                    Some(&stage),
                    started.as_ref(),
                    std::slice::from_ref(&line),
                )
                .await;
                self.run_claimed(&stage, priority, false, job, job_id, permit)
                    .await
            }
            None => {
                let result = self.look_closer(job, job_id, permit).await;
                // Whatever the job did is committed by now: tell subscribers.
                publish_stage(&self.core, job.stage_id).await;
                result
            }
        }
    }

    /// A job that could not claim its attempt: stale, duplicate, already done, or its
    /// execution was cancelled. Does what each case needs, which is mostly nothing.
    async fn look_closer(
        &self,
        job: RunStage,
        job_id: &str,
        permit: GatePermit,
    ) -> anyhow::Result<()> {
        let db = &self.core.db;
        let Some(Loaded { stage, execution }) = stage_store::load(db, job.stage_id).await? else {
            tracing::warn!("job for a stage that no longer exists");
            return Ok(());
        };
        if stage.attempt != job.attempt {
            if stage.status == StageStatus::Retrying && stage.attempt == job.attempt + 1 {
                // Re-delivered after scheduling the retry: the retry's own job may be lost.
                let next = RunStage {
                    stage_id: stage.id,
                    attempt: stage.attempt,
                    waits: 0,
                    not_before_ms: stage.next_attempt_at.map(|t| t.timestamp_millis()),
                    traceparent: job.traceparent,
                };
                let delay = stage
                    .next_attempt_at
                    .and_then(|t| (t - Utc::now()).to_std().ok());
                self.push(next, execution.priority, delay).await?;
            }
            tracing::debug!(current = stage.attempt, "stale job: the stage moved on");
            return Ok(());
        }
        let ours = stage.claimed_by_job.as_deref() == Some(job_id);
        match stage.status {
            StageStatus::Succeeded => {
                return self.requeue_successor(&stage, execution.priority).await;
            }
            status if status.is_terminal() => return Ok(()),
            StageStatus::Handshaking | StageStatus::Running if !ours => {
                tracing::debug!("duplicate job: another job runs this attempt");
                return Ok(());
            }
            _ => {}
        }
        if execution.status.is_terminal() || execution.cancel_requested {
            if ours && stage.slot_worker_id.is_some() {
                // A crashed run of this job was talking to a worker: tell it to stop.
                return self
                    .run_claimed(&stage, execution.priority, true, job, job_id, permit)
                    .await;
            }
            // Each step commits on its own: what committed is published even if the next fails.
            let mut lines = Vec::new();
            let mut result = Ok(());
            if ours {
                result = stage_outcome::cancel(db, &stage, job_id, None, &mut lines).await;
            }
            if result.is_ok() {
                result = stage_outcome::settle_cancelled(db, execution.id, &mut lines).await;
            }
            publish_logs(&self.core, &lines).await;
            return result;
        }
        tracing::debug!(status = ?stage.status, "another job claimed the attempt first");
        Ok(())
    }

    /// Runs a claimed attempt to its end. `cancelled` says the execution is known to be
    /// cancelled already (the attempt then only tells its remote worker to stop).
    /// The span's `intent_id` is filled in by the intent actions, which know it.
    #[tracing::instrument(name = "stage", skip_all, fields(execution_id = %stage.execution_id, stage_id = %stage.id, stage = %stage.name, action = %stage.action, intent_id = tracing::field::Empty))]
    async fn run_claimed(
        &self,
        stage: &stages::Model,
        priority: Priority,
        cancelled: bool,
        job: RunStage,
        job_id: &str,
        permit: GatePermit,
    ) -> anyhow::Result<()> {
        let spec: Option<StageSpec> = serde_json::from_value(stage.definition.clone()).ok();
        let timeout = spec
            .as_ref()
            .and_then(|s| s.timeout_ms)
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_STAGE_TIMEOUT);
        let started = Instant::now();
        let attempt_metrics = orchestrator_core::metrics::StageAttempt::begin(&stage.action);
        let cancel: CancelSignal<'_> = Box::pin(self.cancel_watch(stage.execution_id, cancelled));
        let (outcome, slot) = if stage.action == REMOTE_ACTION {
            let attempt = RemoteAttempt {
                core: &self.core,
                client: &self.remote,
                token_key: &self.token_key,
                instance_id: &self.worker_name,
                stage,
                job_id,
                deadline: tokio::time::Instant::now() + timeout,
            };
            let result = attempt.run(cancel).await?;
            let outcome = match result.outcome {
                RemoteOutcome::Done(output) => Outcome::Succeeded(output),
                RemoteOutcome::Retry(m) => Outcome::Retry(m),
                RemoteOutcome::Fail(m) => Outcome::Fail(m),
                RemoteOutcome::Wait(m) => Outcome::Wait(m),
                RemoteOutcome::Cancelled => Outcome::Cancelled,
            };
            (outcome, result.slot)
        } else {
            (self.run_builtin(stage, timeout, cancel).await, None)
        };
        let elapsed_ms = started.elapsed().as_millis() as i64;
        attempt_metrics.finish();
        let db = &self.core.db;
        // Log lines the outcome wrote; published once it has committed.
        let mut lines = Vec::new();
        let result = match outcome {
            Outcome::Succeeded(output) => {
                let success =
                    stage_outcome::succeed(db, stage, job_id, slot, output, elapsed_ms).await?;
                // Published before the next stage can start, so changes arrive in order.
                publish_rows(
                    &self.core,
                    success.stage.as_ref(),
                    success.execution.as_ref(),
                    &success.lines,
                )
                .await;
                if success.execution.is_none()
                    && matches!(
                        success.after,
                        AfterSuccess::Finished | AfterSuccess::Cancelled
                    )
                {
                    publish_execution(&self.core, stage.execution_id).await
                }
                if let AfterSuccess::Next(next_id) = success.after {
                    self.push(RunStage::first(next_id, 1), priority, None)
                        .await?;
                    permit.hand_off(priority.weight() as u8);
                }
                return Ok(());
            }
            Outcome::Retry(message) if stage.attempt < stage.max_attempts => {
                let backoff = spec.and_then(|s| s.backoff).unwrap_or_default();
                let delay = delay_before(&backoff, stage.attempt + 1);
                if stage_outcome::schedule_retry(
                    db, stage, job_id, slot, &message, delay, &mut lines,
                )
                .await?
                {
                    let next = RunStage {
                        stage_id: stage.id,
                        attempt: stage.attempt + 1,
                        waits: 0,
                        not_before_ms: Some(due_in(delay)),
                        traceparent: job.traceparent,
                    };
                    self.push(next, priority, Some(delay)).await?;
                }
                Ok(())
            }
            Outcome::Retry(message) | Outcome::Fail(message) => {
                stage_outcome::fail(db, stage, job_id, slot, &message, elapsed_ms, &mut lines).await
            }
            Outcome::Wait(reason) if job.waits + 1 >= MAX_WAITS => {
                let message = format!("no worker took the stage after {MAX_WAITS} tries: {reason}");
                stage_outcome::fail(db, stage, job_id, slot, &message, elapsed_ms, &mut lines).await
            }
            Outcome::Wait(reason) => {
                if stage_store::release_to_wait(db, stage, job_id, &reason, &mut lines).await? {
                    let backoff = spec.and_then(|s| s.backoff).unwrap_or_default();
                    let delay = delay_before(&backoff, job.waits as i32 + 2);
                    let next = RunStage {
                        stage_id: stage.id,
                        attempt: stage.attempt,
                        waits: job.waits + 1,
                        not_before_ms: Some(due_in(delay)),
                        traceparent: job.traceparent,
                    };
                    self.push(next, priority, Some(delay)).await?;
                }
                Ok(())
            }
            Outcome::Cancelled => stage_outcome::cancel(db, stage, job_id, slot, &mut lines).await,
        };
        // Retry, failure, wait or cancel: committed by now; tell subscribers.
        publish_stage(&self.core, stage.id).await;
        publish_logs(&self.core, &lines).await;
        result
    }

    async fn run_builtin(
        &self,
        stage: &stages::Model,
        timeout: Duration,
        cancel: CancelSignal<'_>,
    ) -> Outcome {
        let Some(action) = self.actions.get(stage.action.as_str()) else {
            return Outcome::Fail(format!("no action {:?} in this worker", stage.action));
        };
        let input = stage_store::input_of(stage);
        let cx = ActionContext {
            core: self.core.clone(),
            project_id: stage.project_id,
            execution_id: stage.execution_id,
            stage_id: stage.id,
            stage_name: stage.name.clone(),
            attempt: stage.attempt,
            max_attempts: stage.max_attempts,
        };
        let to_outcome = |ran| match ran {
            Ok(Ok(output)) => Outcome::Succeeded(output),
            Ok(Err(ActionError::Permanent(msg))) => Outcome::Fail(msg),
            Ok(Err(ActionError::Retryable(msg))) => Outcome::Retry(msg),
            Err(_) => Outcome::Retry(format!("timed out after {} ms", timeout.as_millis())),
        };
        let run = tokio::time::timeout(timeout, action.run(&cx, input));
        if !action.stops_on_cancel() {
            return to_outcome(run.await);
        }
        tokio::select! {
            ran = run => to_outcome(ran),
            _ = cancel => Outcome::Cancelled,
        }
    }

    /// Resolves once the execution is asked to stop. Checks right away when the job already
    /// knows, otherwise every [`CANCEL_POLL`], so short stages never query for it.
    async fn cancel_watch(&self, execution_id: uuid::Uuid, known: bool) {
        if known {
            return;
        }
        loop {
            tokio::time::sleep(CANCEL_POLL).await;
            if stage_store::cancel_requested(&self.core.db, execution_id).await {
                return;
            }
        }
    }

    /// A re-delivered job of a stage that succeeded: its successor may not have been queued
    /// before the process stopped. Queueing it twice is harmless (one job claims it).
    async fn requeue_successor(
        &self,
        stage: &stages::Model,
        priority: Priority,
    ) -> anyhow::Result<()> {
        if let Some(next_id) = stage_store::unclaimed_successor(&self.core.db, stage).await? {
            self.push(RunStage::first(next_id, 1), priority, None)
                .await?;
        }
        Ok(())
    }

    async fn push(
        &self,
        job: RunStage,
        priority: Priority,
        delay: Option<Duration>,
    ) -> anyhow::Result<()> {
        self.core
            .queue
            .push(job, PushOptions { priority, delay })
            .await
    }
}

fn due_in(delay: Duration) -> i64 {
    Utc::now().timestamp_millis() + delay.as_millis() as i64
}
