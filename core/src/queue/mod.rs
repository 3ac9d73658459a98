//! The job queue: apalis storages behind one small type, so the API pushes and the workers
//! consume the same way whether the queue is the embedded SQLite file or Redis.
//!
//! Queue names are explicit (`<prefix>:<job name>`), never derived from Rust type names, so
//! moving a type cannot strand queued jobs; the prefix also gives every test its own namespace.

use std::time::Duration;

use anyhow::{Context, anyhow};
use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use serde::{Serialize, de::DeserializeOwned};

use crate::config::{Config, QueueConfig, redact_url};

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

/// Per-push options.
#[derive(Debug, Clone, Copy, Default)]
pub struct PushOptions {
    /// Higher runs first where the backend orders by priority.
    pub priority: u8,
    /// Do not run before this delay has passed.
    pub delay: Option<Duration>,
}

/// Handle to the job queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct JobQueue {
    backend: QueueBackend,
    config: QueueConfig,
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
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .with_context(|| format!("cannot open the queue file {}", path.display()))?;
                SqliteStorage::setup(&pool)
                    .await
                    .with_context(|| format!("cannot prepare the queue file {}", path.display()))?;
                QueueBackend::Sqlite(pool)
            }
        };
        Ok(JobQueue {
            backend,
            config: config.queue.clone(),
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

    /// The full queue name of job type `J`.
    pub fn queue_name<J: Job>(&self) -> String {
        format!("{}:{}", self.config.prefix, J::NAME)
    }

    /// A SQLite storage for `J` configured with the queue settings.
    pub fn sqlite_storage<J: Job>(&self, pool: &SqlitePool) -> SqliteStorage<J> {
        let cfg = apalis_sqlite::Config::default()
            .queue(self.queue_name::<J>())
            .heartbeat_interval(self.config.heartbeat)
            .missed_heartbeats(self.config.missed_heartbeats as usize);
        SqliteStorage::new(pool).with_config(cfg)
    }

    /// A Redis storage for `J` configured with the queue settings.
    pub fn redis_storage<J: Job>(&self, conn: &apalis_redis::ConnectionManager) -> RedisStorage<J> {
        let cfg = apalis_redis::Config::default()
            .queue(self.queue_name::<J>())
            .heartbeat_interval(self.config.heartbeat)
            .missed_heartbeats(self.config.missed_heartbeats as usize);
        RedisStorage::new(conn.clone()).with_config(cfg)
    }

    /// Pushes one job. When this returns, the job is in the queue storage.
    pub async fn push<J: Job>(&self, job: J, options: PushOptions) -> anyhow::Result<()> {
        let mut builder = TaskBuilder::new(job)
            .max_attempts(self.config.max_attempts as usize)
            .priority(options.priority as usize);
        if let Some(delay) = options.delay {
            builder = builder.run_after(delay);
        }
        let task = builder.build();
        match &self.backend {
            QueueBackend::Sqlite(pool) => self
                .sqlite_storage::<J>(pool)
                .push_task(task)
                .await
                .map_err(|e| anyhow!("cannot push {} job: {e:?}", J::NAME)),
            QueueBackend::Redis(conn) => self
                .redis_storage::<J>(conn)
                .push_task(task)
                .await
                .map_err(|e| anyhow!("cannot push {} job: {e:?}", J::NAME)),
        }
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
