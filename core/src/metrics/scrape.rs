//! Cluster metrics, read at scrape time from the database, the queue and the event bus.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// The metrics of one scrape. A source that could not be read leaves its metrics out.
#[derive(Default)]
struct ClusterMetrics {
    /// `orchestrator_executions{status}`: executions in the database by status, every status
    /// present (0 when no row has it).
    executions: Option<Family<StatusLabel, Gauge>>,
    /// `orchestrator_stages{status}`: stages in the database by status, every status present.
    stages: Option<Family<StatusLabel, Gauge>>,
    /// `orchestrator_remote_workers{health}`: registered (not deregistered) remote workers by
    /// their last known health.
    remote_workers: Option<Family<HealthLabel, Gauge>>,
    /// `orchestrator_remote_worker_stages_in_flight{project, worker}`: stages holding one of
    /// a remote worker's slots now, over every worker process.
    remote_in_flight: Option<Family<RemoteWorkerLabels, Gauge>>,
    /// `orchestrator_remote_worker_slots{project, worker}`: a remote worker's
    /// `maxConcurrent`.
    remote_slots: Option<Family<RemoteWorkerLabels, Gauge>>,
    /// `orchestrator_queue_depth{queue}`: jobs due and not yet taken by a worker.
    queue_depth: Option<Family<QueueLabel, Gauge>>,
    /// `orchestrator_queue_oldest_job_age_seconds{queue}`: how long the oldest of them has
    /// waited; 0 when none waits.
    queue_oldest_age: Option<Family<QueueLabel, Gauge<f64, AtomicU64>>>,
    /// `orchestrator_events_published_total`: status-change events this process handed to
    /// the event bus.
    events_published: u64,
    /// `orchestrator_events_dropped_total`: events this process could not publish (Redis
    /// unreachable); subscribers re-read the database.
    events_dropped: u64,
}

impl ClusterMetrics {
    fn register(self, registry: &mut Registry) {
        if let Some(family) = self.executions {
            registry.register(
                "executions",
                "Executions in the database, by status",
                family,
            );
        }
        if let Some(family) = self.stages {
            registry.register("stages", "Stages in the database, by status", family);
        }
        if let Some(family) = self.remote_workers {
            registry.register(
                "remote_workers",
                "Registered remote workers, by health",
                family,
            );
        }
        if let Some(family) = self.remote_in_flight {
            registry.register(
                "remote_worker_stages_in_flight",
                "Stages holding a slot of a remote worker now, by project and worker name",
                family,
            );
        }
        if let Some(family) = self.remote_slots {
            registry.register(
                "remote_worker_slots",
                "Stages a remote worker takes at once (its maxConcurrent), by project and worker name",
                family,
            );
        }
        if let Some(family) = self.queue_depth {
            registry.register(
                "queue_depth",
                "Jobs due and waiting for a worker, by queue",
                family,
            );
        }
        if let Some(family) = self.queue_oldest_age {
            registry.register_with_unit(
                "queue_oldest_job_age",
                "How long the oldest waiting job has waited, by queue (0 when none waits)",
                Unit::Seconds,
                family,
            );
        }
        registry.register(
            "events_published",
            "Status-change events this process handed to the event bus",
            ConstCounter::new(self.events_published),
        );
        registry.register(
            "events_dropped",
            "Status-change events this process could not publish (subscribers re-read the database)",
            ConstCounter::new(self.events_dropped),
        );
    }
}

/// Reads every source into `registry`; a source that fails is logged and left out.
pub(super) async fn collect(core: &CoreContext, registry: &mut Registry) {
    let mut metrics = ClusterMetrics::default();
    if let Err(err) = statuses(core, &mut metrics).await {
        tracing::warn!(error = %format!("{err:#}"), "metrics: cannot count executions and stages");
    }
    if let Err(err) = remote_workers(core, &mut metrics).await {
        tracing::warn!(error = %format!("{err:#}"), "metrics: cannot read the worker registry");
    }
    if let Err(err) = queue(core, &mut metrics).await {
        tracing::warn!(error = %format!("{err:#}"), "metrics: cannot read the queue backlog");
    }
    let stats = core.events.stats();
    metrics.events_published = stats.published.load(Ordering::Relaxed);
    metrics.events_dropped = stats.dropped.load(Ordering::Relaxed);
    metrics.register(registry);
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
    statuses: impl Iterator<Item = String>,
) -> Family<StatusLabel, Gauge> {
    let family = Family::<StatusLabel, Gauge>::default();
    for status in statuses {
        let n = counts.get(&status).copied().unwrap_or(0);
        family.get_or_create(&StatusLabel { status }).set(n);
    }
    family
}

async fn statuses(core: &CoreContext, metrics: &mut ClusterMetrics) -> anyhow::Result<()> {
    let executions =
        count_by_status::<executions::Entity, _>(core, executions::Column::Status).await?;
    let stages = count_by_status::<stages::Entity, _>(core, stages::Column::Status).await?;
    metrics.executions = Some(status_family(
        &executions,
        ExecutionStatus::iter().map(|s| s.to_value()),
    ));
    metrics.stages = Some(status_family(
        &stages,
        StageStatus::iter().map(|s| s.to_value()),
    ));
    Ok(())
}

async fn remote_workers(core: &CoreContext, metrics: &mut ClusterMetrics) -> anyhow::Result<()> {
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
    metrics.remote_workers = Some(by_health);
    metrics.remote_in_flight = Some(in_flight);
    metrics.remote_slots = Some(slots);
    Ok(())
}

async fn queue(core: &CoreContext, metrics: &mut ClusterMetrics) -> anyhow::Result<()> {
    let backlog = core.queue.backlog::<RunStage>().await?;
    let depth = Family::<QueueLabel, Gauge>::default();
    let age = Family::<QueueLabel, Gauge<f64, AtomicU64>>::default();
    for (queue, waiting) in backlog {
        let label = QueueLabel { queue };
        depth.get_or_create(&label).set(waiting.depth as i64);
        age.get_or_create(&label)
            .set(waiting.oldest_age.map_or(0.0, |a| a.as_secs_f64()));
    }
    metrics.queue_depth = Some(depth);
    metrics.queue_oldest_age = Some(age);
    Ok(())
}
