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
}

impl CoreContext {
    /// Connects to the database (running migrations) and the queue the configuration names.
    pub async fn connect(config: Config) -> anyhow::Result<CoreContext> {
        let db = crate::db::connect(&config.database_url, config.database_max_connections).await?;
        crate::db::migrate(&db).await?;
        let queue = JobQueue::connect(&config).await?;
        Ok(CoreContext {
            db,
            queue,
            config: Arc::new(config),
        })
    }
}
