//! The health probe: every registered remote worker is asked `GET /health` once per
//! `worker.health_interval`, and marked `HEALTHY` (with `lastSeenAt`) or `UNHEALTHY` (with the
//! reason). Worker processes share the work: a process probes a worker only after claiming
//! that round with a conditional update, so each worker is probed once per interval in all.

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio::sync::watch;

use orchestrator_core::CoreContext;
use orchestrator_core::remote::RemoteWorkerClient;
use orchestrator_core::worker_registry::record_health;
use orchestrator_entity::workers;

/// Probes running at once in one process.
const PARALLEL_PROBES: usize = 16;

/// Probes until `stopping` turns true.
pub async fn run(core: CoreContext, mut stopping: watch::Receiver<bool>) {
    let interval = core.config.worker.health_interval;
    let tick = (interval / 2).clamp(Duration::from_millis(200), Duration::from_secs(5));
    let client = RemoteWorkerClient::with_guard(
        orchestrator_core::outbound::OutboundGuard::from_config(&core.config),
    );
    loop {
        if let Err(err) = probe_due(&core, &client, interval).await {
            tracing::warn!(error = %format!("{err:#}"), "health probe round failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}

/// Probes every registered worker whose last probe is older than `interval`.
async fn probe_due(
    core: &CoreContext,
    client: &RemoteWorkerClient,
    interval: Duration,
) -> anyhow::Result<()> {
    let stale_before = Utc::now() - chrono::Duration::from_std(interval)?;
    let due = workers::Entity::find()
        .filter(workers::Column::DeregisteredAt.is_null())
        .filter(
            workers::Column::HealthCheckedAt
                .is_null()
                .or(workers::Column::HealthCheckedAt.lt(stale_before)),
        )
        .all(&core.db)
        .await?;
    futures::stream::iter(due)
        .for_each_concurrent(PARALLEL_PROBES, |worker| async move {
            if let Err(err) = probe_one(core, client, &worker, stale_before).await {
                tracing::warn!(worker_id = %worker.id, error = %format!("{err:#}"), "health probe failed");
            }
        })
        .await;
    Ok(())
}

#[tracing::instrument(skip_all, fields(worker_id = %worker.id))]
async fn probe_one(
    core: &CoreContext,
    client: &RemoteWorkerClient,
    worker: &workers::Model,
    stale_before: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    // Claim this round; another process that got here first probes instead.
    let claimed = workers::Entity::update_many()
        .col_expr(
            workers::Column::HealthCheckedAt,
            Expr::value(Some(Utc::now())),
        )
        .filter(workers::Column::Id.eq(worker.id))
        .filter(
            workers::Column::HealthCheckedAt
                .is_null()
                .or(workers::Column::HealthCheckedAt.lt(stale_before)),
        )
        .exec(&core.db)
        .await?;
    if claimed.rows_affected == 0 {
        return Ok(());
    }
    let outcome = client.health(&worker.url).await;
    if let Err(why) = &outcome {
        tracing::info!(worker = %worker.name, reason = %why, "remote worker is unhealthy");
    }
    record_health(core, worker.id, outcome).await?;
    Ok(())
}
