//! The worker process: consumes `RunStage` jobs from the queue and runs them, probes the
//! health of registered remote workers, and listens for push notifications from other
//! processes so idle queue workers wake at once.
//!
//! There is one queue worker per priority level (see `orchestrator_core::queue`); all of them
//! share one [`StageRunner`], whose priority gate bounds the stages running in this process.

mod backend_monitor;
mod backoff;
mod health_probe;
mod priority_gate;
mod remote_calls;
mod remote_stage;
mod run_stage;
mod stage_outcome;
mod stage_store;

use std::future::Future;
use std::sync::Arc;

use apalis::prelude::*;
use orchestrator_core::CoreContext;
use orchestrator_core::jobs::RunStage;
use orchestrator_core::queue::{PRIORITIES, QueueBackend};
use orchestrator_entity::Priority;
use tokio::sync::watch;
use tracing::Instrument;

pub use priority_gate::{GatePermit, PriorityGate};
pub use run_stage::{MAX_WAITS, StageRunner};

/// A unique name for this process's queue workers: the configured prefix (or the host name)
/// plus a random suffix, so two live processes never register the same name.
pub fn worker_name(core: &CoreContext) -> String {
    let prefix = core.config.worker.name.clone().unwrap_or_else(|| {
        std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|s| s.trim().to_string())
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".into())
    });
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &suffix[..8])
}

/// The priority level of the queue a job came from.
#[derive(Debug, Clone, Copy)]
struct QueueLevel(Priority);

async fn handle(
    job: RunStage,
    task_id: TaskId,
    runner: Data<Arc<StageRunner>>,
    level: Data<QueueLevel>,
) -> Result<(), BoxDynError> {
    // One span per job, continuing the trace of whoever queued it.
    let span = tracing::info_span!("job", otel.name = "run-stage job", job_id = %task_id, queue = level_label(level.0.0), stage_id = %job.stage_id, attempt = job.attempt);
    orchestrator_core::trace_context::continue_trace(&span, job.traceparent);
    runner
        .run(job, &task_id.to_string(), level.0.0)
        .instrument(span)
        .await
        .map_err(|e| -> BoxDynError { format!("{e:#}").into() })
}

fn level_label(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Critical => "critical",
    }
}

/// Registers the queue worker of one priority level on `monitor`. A worker that stops on a
/// queue error is restarted under a new name (the old name's jobs are recovered after the
/// lease, like those of a dead process).
fn register_level(
    monitor: Monitor,
    core: &CoreContext,
    runner: &Arc<StageRunner>,
    name: &str,
    priority: Priority,
) -> Monitor {
    let queue = core.queue.clone();
    let concurrency = core.config.worker.concurrency as usize;
    let runner = runner.clone();
    let base = format!("{name}-{}", level_label(priority));
    match queue.backend().clone() {
        QueueBackend::Sqlite(pool) => monitor.register(move |restarts| {
            let storage = queue
                .sqlite_storage::<RunStage>(&pool, priority)
                .poll_with_strategy(queue.wake_strategy::<RunStage>(priority));
            WorkerBuilder::new(format!("{base}-{restarts}"))
                .backend(storage)
                .data(runner.clone())
                .data(QueueLevel(priority))
                .concurrency(concurrency)
                .parallelize(tokio::spawn)
                .build(handle)
        }),
        QueueBackend::Redis(conn) => monitor.register(move |restarts| {
            let storage = queue
                .redis_storage::<RunStage>(&conn, priority)
                .poll_with_strategy(queue.wake_strategy::<RunStage>(priority));
            WorkerBuilder::new(format!("{base}-{restarts}"))
                .backend(storage)
                .data(runner.clone())
                .data(QueueLevel(priority))
                .concurrency(concurrency)
                .parallelize(tokio::spawn)
                .build(handle)
        }),
    }
}

/// Every half minute, removes finished jobs from the queue (see `queue::housekeeping`).
async fn purge_finished_jobs(core: CoreContext) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(30));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match core.queue.purge_finished::<RunStage>().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "finished jobs removed from the queue"),
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "queue housekeeping failed"),
        }
    }
}

/// Runs the queue workers of this process until `shutdown` resolves. Then no new stage
/// starts (jobs waiting for a slot go back to the queue) and running stages finish, bounded
/// by the configured shutdown timeout.
pub async fn run_workers(
    core: CoreContext,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let name = worker_name(&core);
    let concurrency = core.config.worker.concurrency as usize;
    let (stop_tx, stop_rx) = watch::channel(false);
    let runner = Arc::new(StageRunner::new(
        core.clone(),
        name.clone(),
        concurrency,
        stop_rx.clone(),
    )?);
    tracing::info!(worker = %name, concurrency, "queue workers starting");

    let relay = core.queue.spawn_wake_relay();
    let housekeeping = tokio::spawn(purge_finished_jobs(core.clone()));
    let prober = tokio::spawn(health_probe::run(core.clone(), stop_rx.clone()));
    let backend_checks = tokio::spawn(backend_monitor::run(core.clone(), stop_rx));
    let mut monitor = Monitor::new()
        .shutdown_timeout(core.config.shutdown_timeout)
        .should_restart(|ctx, err| {
            tracing::warn!(worker = %ctx.name(), error = %err, "queue worker stopped; restarting");
            true
        });
    for priority in PRIORITIES {
        monitor = register_level(monitor, &core, &runner, &name, priority);
    }
    let closing = runner.clone();
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        closing.close();
        Ok(())
    };
    let result = monitor.run_with_signal(signal).await;
    if let Some(relay) = relay {
        relay.abort();
    }
    prober.abort();
    backend_checks.abort();
    housekeeping.abort();
    result.map_err(|e| anyhow::anyhow!("queue workers of {name} stopped: {e}"))?;
    tracing::info!(worker = %name, "queue workers stopped");
    Ok(())
}
