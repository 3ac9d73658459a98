//! The shared handles every service function needs.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::Config;
use crate::queue::JobQueue;

/// Database, queue and configuration, shared by the API and the workers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CoreContext {
    /// Connection pool of the product database.
    pub db: DatabaseConnection,
    /// The job queue (SQLite file or Redis).
    pub queue: JobQueue,
    /// The resolved configuration.
    pub config: Arc<Config>,
    /// Status-change events (in-process, or Redis pub/sub when `REDIS_URL` is set).
    pub events: crate::events::EventBus,
    /// Statements run through `db` so far.
    pub db_queries: crate::db::QueryCounter,
}

impl CoreContext {
    /// Connects to the database (running migrations) and the queue the configuration names.
    pub async fn connect(config: Config) -> anyhow::Result<CoreContext> {
        let limit = config.startup_timeout;
        let mut db = crate::startup::retry_until("the database", limit, || {
            crate::db::connect(&config.database_url, config.database_max_connections)
        })
        .await?;
        crate::db::migrate(&db).await?;
        let db_queries = crate::db::QueryCounter::default();
        db_queries.attach(&mut db);
        let queue =
            crate::startup::retry_until("the queue", limit, || JobQueue::connect(&config)).await?;
        let events = match &config.redis_url {
            Some(url) => {
                crate::startup::retry_until("Redis (events)", limit, || {
                    crate::events::EventBus::redis(url, format!("{}:events", config.queue.prefix))
                })
                .await?
            }
            None => crate::events::EventBus::in_process(),
        };
        Ok(CoreContext {
            db,
            queue,
            config: Arc::new(config),
            db_queries,
            events,
        })
    }
}
