//! The worker process: consumes `RunStage` jobs from the queue and runs them.

mod backoff;
mod run_stage;

use std::future::Future;
use std::sync::Arc;

use apalis::prelude::*;
use orchestrator_core::CoreContext;
use orchestrator_core::jobs::RunStage;
use orchestrator_core::queue::QueueBackend;

pub use run_stage::{StageRunner, run_stage};

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

async fn handle(job: RunStage, runner: Data<Arc<StageRunner>>) -> Result<(), BoxDynError> {
    runner
        .run(job)
        .await
        .map_err(|e| -> BoxDynError { format!("{e:#}").into() })
}

/// Runs the queue workers of this process until `shutdown` resolves, then lets running
/// stages finish (bounded by the configured shutdown timeout).
pub async fn run_workers(
    core: CoreContext,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let name = worker_name(&core);
    let concurrency = core.config.worker.concurrency as usize;
    let poll = core.config.queue.poll_interval;
    let runner = Arc::new(StageRunner::new(core.clone(), name.clone()));
    tracing::info!(worker = %name, concurrency, "queue workers starting");
    let queue = core.queue.clone();
    let result = match queue.backend() {
        QueueBackend::Sqlite(pool) => {
            let storage = queue
                .sqlite_storage::<RunStage>(pool)
                .poll_with_interval(poll);
            WorkerBuilder::new(name.clone())
                .backend(storage)
                .data(runner)
                .concurrency(concurrency)
                .build(handle)
                .run_until(async move {
                    shutdown.await;
                    Ok::<(), std::io::Error>(())
                })
                .await
        }
        QueueBackend::Redis(conn) => {
            let storage = queue
                .redis_storage::<RunStage>(conn)
                .poll_with_interval(poll);
            WorkerBuilder::new(name.clone())
                .backend(storage)
                .data(runner)
                .concurrency(concurrency)
                .build(handle)
                .run_until(async move {
                    shutdown.await;
                    Ok::<(), std::io::Error>(())
                })
                .await
        }
    };
    result.map_err(|e| anyhow::anyhow!("queue worker {name} stopped: {e}"))?;
    tracing::info!(worker = %name, "queue workers stopped");
    Ok(())
}
