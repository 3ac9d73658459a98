//! The job queue: apalis storages behind one small type, so the API pushes and the workers
//! consume the same way whether the queue is the embedded SQLite file or Redis.
//!
//! Queue names are explicit (`<prefix>:<job name>:<priority>`), never derived from Rust type
//! names, so moving a type cannot strand queued jobs; the prefix also gives every test its own
//! namespace. Each priority level has its own queue: the Redis backend has no priority order,
//! and separate queues let a worker process take an urgent job while its slots for less urgent
//! queues are busy (the process then orders running stages by priority, see the worker crate).
//!
//! A push wakes the queue's workers at once ([`wake`]): in-process through the [`WakeHub`],
//! and across processes over Redis pub/sub ([`relay`]).

pub mod backlog;
pub mod housekeeping;
pub mod inspect;
mod relay;
mod wake;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use orchestrator_entity::Priority;
use serde::{Serialize, de::DeserializeOwned};

use crate::config::{Config, QueueConfig, redact_url};

pub use relay::wake_channel;
pub use wake::{WakeHub, WakeSignal};

/// A job payload. Payloads carry ids only; handlers load what they need.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// Stable queue suffix, e.g. `run-stage`.
    const NAME: &'static str;
}

/// Where the queue lives.
#[derive(Clone)]
pub enum QueueBackend {
    /// The embedded SQLite queue file.
    Sqlite(SqlitePool),
    /// Redis, shared by every process of a scaled deployment.
    Redis(apalis_redis::ConnectionManager),
}

impl std::fmt::Debug for QueueBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueueBackend::Sqlite(_) => "QueueBackend::Sqlite",
            QueueBackend::Redis(_) => "QueueBackend::Redis",
        })
    }
}

/// Seconds since the epoch: the clock of queue due times.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Tells the workers of `queue` in other processes that it has jobs to take (see [`relay`]).
/// A failure only costs latency: the workers find the jobs at their next poll.
async fn publish_wake(conn: &mut apalis_redis::ConnectionManager, channel: &str, queue: &str) {
    let published: redis::RedisResult<i64> = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(queue)
        .query_async(conn)
        .await;
    if let Err(err) = published {
        tracing::debug!(error = %err, "cannot publish a queue wake-up");
    }
}

/// How often processes serving the API promote due Redis jobs (see [`housekeeping`]).
const PROMOTE_EVERY: Duration = Duration::from_secs(1);

/// Per-push options.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions {
    /// Selects the queue; a worker process runs more urgent stages first.
    pub priority: Priority,
    /// Do not run before this delay has passed. Queues count in whole seconds, so a job may
    /// be handed out up to a second early; handlers that need precision wait the rest.
    pub delay: Option<Duration>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            priority: Priority::Normal,
            delay: None,
        }
    }
}

/// Every priority level, most urgent first (the order queue workers are started in).
pub const PRIORITIES: [Priority; 4] = [
    Priority::Critical,
    Priority::High,
    Priority::Normal,
    Priority::Low,
];

fn level_name(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Critical => "critical",
    }
}

/// Handle to the job queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct JobQueue {
    backend: QueueBackend,
    config: QueueConfig,
    redis_url: Option<String>,
    wake: Arc<WakeHub>,
}

impl JobQueue {
    /// Opens the queue the configuration selects: Redis when `redis_url` is set, otherwise
    /// the SQLite file in the data dir (created and migrated when missing).
    pub async fn connect(config: &Config) -> anyhow::Result<JobQueue> {
        let backend = match &config.redis_url {
            Some(url) => {
                let conn = tokio::time::timeout(
                    Duration::from_secs(10),
                    apalis_redis::connect(url.as_str()),
                )
                .await
                .map_err(|_| anyhow!("timed out connecting to Redis at {}", redact_url(url)))?
                .with_context(|| format!("cannot connect to Redis at {}", redact_url(url)))?;
                QueueBackend::Redis(conn)
            }
            None => {
                let path = config.queue_file();
                // Every connection in WAL mode with `synchronous = NORMAL`, like the database:
                // a commit survives a crash of the process (what at-least-once needs) without
                // an fsync per job.
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10));
                // One connection: every queue operation of apalis runs in one transaction, so
                // they simply take turns instead of meeting SQLite's busy handler, which
                // sleeps whole milliseconds (measured: 1.6x the stages per second of four).
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .with_context(|| format!("cannot open the queue file {}", path.display()))?;
                SqliteStorage::setup(&pool)
                    .await
                    .with_context(|| format!("cannot prepare the queue file {}", path.display()))?;
                if let Err(err) = housekeeping::tune_sqlite_planner(&pool).await {
                    tracing::warn!(error = %err, "cannot seed the queue's planner statistics");
                }
                QueueBackend::Sqlite(pool)
            }
        };
        Ok(JobQueue {
            backend,
            config: config.queue.clone(),
            redis_url: config.redis_url.clone(),
            wake: Arc::new(WakeHub::default()),
        })
    }

    /// The storage backend (for workers).
    pub fn backend(&self) -> &QueueBackend {
        &self.backend
    }

    /// The queue settings.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The full queue name of job type `J` at `priority`.
    pub fn queue_name<J: Job>(&self, priority: Priority) -> String {
        format!(
            "{}:{}:{}",
            self.config.prefix,
            J::NAME,
            level_name(priority)
        )
    }

    /// Jobs fetched per queue round trip. Small, so that a busy process does not hoard jobs
    /// another process could start, and a fetched job is one that runs soon.
    fn batch_size(&self) -> usize {
        4
    }

    // Queue-level task locks are off (`lock_tasks(false)`): a fetched job already belongs to
    // its worker (`lock_by` / the worker's in-flight set), which is what crash recovery
    // re-queues from, and the stage row's claim is what keeps two jobs from running one
    // attempt. The locks would cost a write per job (on Redis, a scan of the whole queue).

    /// A SQLite storage for `J` at `priority`, configured with the queue settings.
    pub fn sqlite_storage<J: Job>(
        &self,
        pool: &SqlitePool,
        priority: Priority,
    ) -> SqliteStorage<J> {
        let cfg = apalis_sqlite::Config::default()
            .queue(self.queue_name::<J>(priority))
            .batch_size(self.batch_size())
            .lock_tasks(false)
            .heartbeat_interval(self.config.heartbeat)
            .missed_heartbeats(self.config.missed_heartbeats as usize);
        SqliteStorage::new(pool).with_config(cfg)
    }

    /// A Redis storage for `J` at `priority`, configured with the queue settings.
    pub fn redis_storage<J: Job>(
        &self,
        conn: &apalis_redis::ConnectionManager,
        priority: Priority,
    ) -> RedisStorage<J> {
        let cfg = apalis_redis::Config::default()
            .queue(self.queue_name::<J>(priority))
            .batch_size(self.batch_size())
            .lock_tasks(false)
            // Wake-ups go through our own channel, published after every push.
            .emit_events(false)
            .heartbeat_interval(self.config.heartbeat)
            .missed_heartbeats(self.config.missed_heartbeats as usize);
        RedisStorage::new(conn.clone()).with_config(cfg)
    }

    /// A poll strategy for a worker of `J` at `priority`: woken on every push, polling every
    /// `poll_interval` as the fallback.
    pub fn wake_strategy<J: Job>(&self, priority: Priority) -> apalis::prelude::Strategy {
        apalis::prelude::Strategy::new()
            .apply(self.wake.subscribe(&self.queue_name::<J>(priority)))
            .interval(self.config.poll_interval)
    }

    /// In worker processes on Redis: relays other processes' push notifications to this
    /// process's queue workers until the returned task is aborted. `None` on the embedded
    /// queue, where every push happens in this process.
    pub fn spawn_wake_relay(&self) -> Option<tokio::task::JoinHandle<()>> {
        let url = self.redis_url.clone()?;
        Some(tokio::spawn(relay::relay_wakes(
            url,
            wake_channel(&self.config.prefix),
            self.wake.clone(),
        )))
    }

    /// In processes that serve the API, on Redis: every second, moves the due jobs of every
    /// priority queue of `J` to their `:active` list and wakes the workers of the queues that
    /// got some (see [`housekeeping::promote_due_redis`]), until the returned task is
    /// aborted. `None` on the embedded queue.
    pub fn spawn_promoter<J: Job>(&self) -> Option<tokio::task::JoinHandle<()>> {
        let QueueBackend::Redis(conn) = &self.backend else {
            return None;
        };
        let mut conn = conn.clone();
        let queues = self.queue_names::<J>();
        let channel = wake_channel(&self.config.prefix);
        let wake = self.wake.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROMOTE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = now_secs();
                for queue in &queues {
                    match housekeeping::promote_due_redis(&mut conn, queue, now).await {
                        Ok(0) => {}
                        Ok(moved) => {
                            tracing::debug!(queue = %queue, moved, "promoted due jobs");
                            wake.notify(queue);
                            publish_wake(&mut conn, &channel, queue).await;
                        }
                        Err(err) => {
                            tracing::warn!(queue = %queue, error = %err, "cannot promote due jobs");
                        }
                    }
                }
            }
        }))
    }

    /// Pushes one job. When this returns, the job is in the queue storage and the workers of
    /// its queue have been told.
    pub async fn push<J: Job>(&self, job: J, options: PushOptions) -> anyhow::Result<()> {
        let mut builder = TaskBuilder::new(job)
            .max_attempts(self.config.max_attempts as usize)
            .priority(options.priority.weight() as usize);
        if let Some(delay) = options.delay {
            builder = builder.run_after(delay);
        }
        let task = builder.build();
        let queue = self.queue_name::<J>(options.priority);
        match &self.backend {
            QueueBackend::Sqlite(pool) => self
                .sqlite_storage::<J>(pool, options.priority)
                .push_task(task)
                .await
                .map_err(|e| anyhow!("cannot push {} job: {e:?}", J::NAME))?,
            QueueBackend::Redis(conn) => {
                self.redis_storage::<J>(conn, options.priority)
                    .push_task(task)
                    .await
                    .map_err(|e| anyhow!("cannot push {} job: {e:?}", J::NAME))?;
                if options.delay.is_none() {
                    let channel = wake_channel(&self.config.prefix);
                    publish_wake(&mut conn.clone(), &channel, &queue).await;
                }
            }
        }
        if options.delay.is_none() {
            self.wake.notify(&queue);
        }
        Ok(())
    }

    /// Removes finished `J` jobs from every priority queue (see [`housekeeping`]); returns
    /// how many went.
    pub async fn purge_finished<J: Job>(&self) -> anyhow::Result<u64> {
        let mut removed = 0;
        for priority in PRIORITIES {
            let queue = self.queue_name::<J>(priority);
            removed += match &self.backend {
                QueueBackend::Sqlite(pool) => housekeeping::purge_sqlite(pool, &queue)
                    .await
                    .context("purging the SQLite queue")?,
                QueueBackend::Redis(conn) => {
                    let mut conn = conn.clone();
                    housekeeping::purge_redis(&mut conn, &queue)
                        .await
                        .context("purging the Redis queue")?
                }
            };
        }
        if let QueueBackend::Sqlite(pool) = &self.backend {
            housekeeping::tune_sqlite_planner(pool)
                .await
                .context("seeding the queue's planner statistics")?;
        }
        Ok(removed)
    }

    /// What waits in each priority queue of `J`, most urgent first (see [`backlog`]); reads
    /// only, for metrics and the queue board.
    pub async fn backlog<J: Job>(&self) -> anyhow::Result<Vec<(String, backlog::Backlog)>> {
        let mut queues = Vec::with_capacity(PRIORITIES.len());
        for priority in PRIORITIES {
            let queue = self.queue_name::<J>(priority);
            let waiting = match &self.backend {
                QueueBackend::Sqlite(pool) => backlog::sqlite(pool, &queue)
                    .await
                    .context("reading the SQLite queue backlog")?,
                QueueBackend::Redis(conn) => backlog::redis(&mut conn.clone(), &queue)
                    .await
                    .context("reading the Redis queue backlog")?,
            };
            queues.push((queue, waiting));
        }
        Ok(queues)
    }

    /// The names of every priority queue of `J`, most urgent first.
    pub fn queue_names<J: Job>(&self) -> Vec<String> {
        PRIORITIES
            .iter()
            .map(|p| self.queue_name::<J>(*p))
            .collect()
    }

    /// How many jobs `queue` holds in each group (see [`inspect`]).
    pub async fn job_counts(&self, queue: &str) -> anyhow::Result<inspect::JobCounts> {
        Ok(match &self.backend {
            QueueBackend::Sqlite(pool) => inspect::sqlite_counts(pool, queue)
                .await
                .context("counting jobs of the SQLite queue")?,
            QueueBackend::Redis(conn) => inspect::redis_counts(&mut conn.clone(), queue)
                .await
                .context("counting jobs of the Redis queue")?,
        })
    }

    /// A page of the jobs of `queues`, `only` one group if given: group by group (see
    /// [`inspect`]), and within a group queue by queue in the order given.
    pub async fn jobs(
        &self,
        queues: &[String],
        only: Option<inspect::JobGroup>,
        page: inspect::Page,
    ) -> anyhow::Result<Vec<inspect::JobSummary>> {
        let mut counts = Vec::with_capacity(queues.len());
        for queue in queues {
            counts.push(self.job_counts(queue).await?);
        }
        let parts = inspect::JobGroup::ALL
            .into_iter()
            .filter(|group| only.is_none_or(|only| only == *group))
            .flat_map(|group| {
                queues
                    .iter()
                    .zip(&counts)
                    .map(move |(queue, counts)| ((group, queue), counts.of(group)))
            });
        let mut jobs = Vec::new();
        for ((group, queue), offset, limit) in inspect::spans(parts, page) {
            let span = inspect::Page { offset, limit };
            jobs.extend(match &self.backend {
                QueueBackend::Sqlite(pool) => inspect::sqlite_jobs(pool, queue, group, span)
                    .await
                    .context("listing jobs of the SQLite queue")?,
                QueueBackend::Redis(conn) => {
                    inspect::redis_jobs(&mut conn.clone(), queue, group, span)
                        .await
                        .context("listing jobs of the Redis queue")?
                }
            });
        }
        Ok(jobs)
    }

    /// One job of `queue` by id.
    pub async fn job(&self, queue: &str, id: &str) -> anyhow::Result<Option<inspect::JobSummary>> {
        Ok(match &self.backend {
            QueueBackend::Sqlite(pool) => inspect::sqlite_job(pool, queue, id)
                .await
                .context("reading a job of the SQLite queue")?,
            QueueBackend::Redis(conn) => inspect::redis_job(&mut conn.clone(), queue, id)
                .await
                .context("reading a job of the Redis queue")?,
        })
    }

    /// The queue worker processes of `queue`, with their last heartbeat.
    pub async fn queue_workers(&self, queue: &str) -> anyhow::Result<Vec<inspect::QueueWorker>> {
        Ok(match &self.backend {
            QueueBackend::Sqlite(pool) => inspect::sqlite_workers(pool, queue)
                .await
                .context("listing workers of the SQLite queue")?,
            QueueBackend::Redis(conn) => inspect::redis_workers(&mut conn.clone(), queue)
                .await
                .context("listing workers of the Redis queue")?,
        })
    }

    /// Checks that the queue storage answers (for `/ready`).
    pub async fn ping(&self) -> anyhow::Result<()> {
        match &self.backend {
            QueueBackend::Sqlite(pool) => {
                sqlx::query("SELECT 1")
                    .execute(pool)
                    .await
                    .context("queue file does not answer")?;
            }
            QueueBackend::Redis(conn) => {
                let mut conn = conn.clone();
                let _: String = redis::cmd("PING")
                    .query_async(&mut conn)
                    .await
                    .context("Redis does not answer")?;
            }
        }
        Ok(())
    }
}
