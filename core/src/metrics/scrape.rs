//! Cluster metrics, read at scrape time from the database, the queue and the event bus.

use std::collections::HashMap;

use orchestrator_entity::{
    ExecutionStatus, StageStatus, WorkerHealth, executions, projects, stages, workers,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveEnum, ColumnTrait, EntityTrait, Iterable, QueryFilter, QuerySelect};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::CoreContext;
use crate::jobs::RunStage;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabel {
    health: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RemoteWorkerLabels {
    project: String,
    worker: String,
}

/// Reads every source into `registry`; a source that fails is logged and left out.
pub(super) async fn collect(core: &CoreContext, registry: &mut Registry) {
    if let Err(err) = statuses(core, registry).await {
        tracing::warn!(error = %format!("{err:#}"), "metrics: cannot count executions and stages");
    }
    if let Err(err) = remote_workers(core, registry).await {
        tracing::warn!(error = %format!("{err:#}"), "metrics: cannot read the worker registry");
    }
    if let Err(err) = queue(core, registry).await {
        tracing::warn!(error = %format!("{err:#}"), "metrics: cannot read the queue backlog");
    }
    events(core, registry);
}

/// `(status, count)` rows of one status column.
async fn count_by_status<E, C>(
    core: &CoreContext,
    column: C,
) -> anyhow::Result<HashMap<String, i64>>
where
    E: EntityTrait,
    C: ColumnTrait,
{
    let rows: Vec<(String, i64)> = E::find()
        .select_only()
        .column(column)
        .column_as(Expr::cust("COUNT(*)"), "n")
        .group_by(column)
        .into_tuple()
        .all(&core.db)
        .await?;
    Ok(rows.into_iter().collect())
}

/// A gauge per status, zero for statuses no row has, so every series always exists.
fn status_family(
    counts: &HashMap<String, i64>,
    statuses: Vec<String>,
) -> Family<StatusLabel, Gauge> {
    let family = Family::<StatusLabel, Gauge>::default();
    for status in statuses {
        let n = counts.get(&status).copied().unwrap_or(0);
        family.get_or_create(&StatusLabel { status }).set(n);
    }
    family
}

async fn statuses(core: &CoreContext, registry: &mut Registry) -> anyhow::Result<()> {
    let executions =
        count_by_status::<executions::Entity, _>(core, executions::Column::Status).await?;
    let stages = count_by_status::<stages::Entity, _>(core, stages::Column::Status).await?;
    registry.register(
        "executions",
        "Executions in the database, by status",
        status_family(
            &executions,
            ExecutionStatus::iter().map(|s| s.to_value()).collect(),
        ),
    );
    registry.register(
        "stages",
        "Stages in the database, by status",
        status_family(&stages, StageStatus::iter().map(|s| s.to_value()).collect()),
    );
    Ok(())
}

async fn remote_workers(core: &CoreContext, registry: &mut Registry) -> anyhow::Result<()> {
    let registered = workers::Entity::find()
        .filter(workers::Column::DeregisteredAt.is_null())
        .all(&core.db)
        .await?;
    let project_ids: Vec<uuid::Uuid> = registered.iter().map(|w| w.project_id).collect();
    let slugs: HashMap<uuid::Uuid, String> = if project_ids.is_empty() {
        HashMap::new()
    } else {
        projects::Entity::find()
            .filter(projects::Column::Id.is_in(project_ids))
            .all(&core.db)
            .await?
            .into_iter()
            .map(|p| (p.id, p.slug))
            .collect()
    };
    let by_health = Family::<HealthLabel, Gauge>::default();
    for health in WorkerHealth::iter() {
        let n = registered
            .iter()
            .filter(|w| w.health_status == health)
            .count();
        by_health
            .get_or_create(&HealthLabel {
                health: health.to_value(),
            })
            .set(n as i64);
    }
    let in_flight = Family::<RemoteWorkerLabels, Gauge>::default();
    let slots = Family::<RemoteWorkerLabels, Gauge>::default();
    for worker in &registered {
        let labels = RemoteWorkerLabels {
            project: slugs.get(&worker.project_id).cloned().unwrap_or_default(),
            worker: worker.name.clone(),
        };
        in_flight
            .get_or_create(&labels)
            .set(worker.active_stages.into());
        slots
            .get_or_create(&labels)
            .set(worker.max_concurrent.into());
    }
    registry.register(
        "remote_workers",
        "Registered remote workers, by health",
        by_health,
    );
    registry.register(
        "remote_worker_stages_in_flight",
        "Stages holding a slot of a remote worker now, by project and worker name",
        in_flight,
    );
    registry.register(
        "remote_worker_slots",
        "Stages a remote worker takes at once (its maxConcurrent), by project and worker name",
        slots,
    );
    Ok(())
}

async fn queue(core: &CoreContext, registry: &mut Registry) -> anyhow::Result<()> {
    let backlog = core.queue.backlog::<RunStage>().await?;
    let depth = Family::<QueueLabel, Gauge>::default();
    let age = Family::<QueueLabel, Gauge<f64, AtomicU64>>::default();
    for (queue, waiting) in backlog {
        let label = QueueLabel { queue };
        depth.get_or_create(&label).set(waiting.depth as i64);
        age.get_or_create(&label)
            .set(waiting.oldest_age.map_or(0.0, |a| a.as_secs_f64()));
    }
    registry.register(
        "queue_depth",
        "Jobs due and waiting for a worker, by queue",
        depth,
    );
    registry.register_with_unit(
        "queue_oldest_job_age",
        "How long the oldest waiting job has waited, by queue (0 when none waits)",
        Unit::Seconds,
        age,
    );
    Ok(())
}

fn events(core: &CoreContext, registry: &mut Registry) {
    let stats = core.events.stats();
    registry.register(
        "events_published",
        "Status-change events this process handed to the event bus",
        ConstCounter::new(stats.published.load(Ordering::Relaxed)),
    );
    registry.register(
        "events_dropped",
        "Status-change events this process could not publish (subscribers re-read the database)",
        ConstCounter::new(stats.dropped.load(Ordering::Relaxed)),
    );
}
