//! Database connection: one `DatabaseConnection` for SQLite (embedded) or PostgreSQL,
//! with the SQLite settings that make concurrent API and worker access safe.

use std::time::Duration;

use anyhow::Context;
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, TransactionOptions,
    TransactionTrait,
};

use crate::config::redact_url;

/// Opens a pool on `url`. SQLite files are created when missing and run in WAL mode with
/// foreign keys on and a busy timeout, so readers never block the single writer.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(15))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .create_if_missing(true)
        });
    Database::connect(options)
        .await
        .with_context(|| format!("cannot connect to the database at {}", redact_url(url)))
}

/// Runs every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    use orchestrator_migration::{Migrator, MigratorTrait};
    Migrator::up(db, None)
        .await
        .context("database migration failed")
}

/// Starts a write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`),
/// so a transaction that reads before it writes cannot fail half-way with `SQLITE_BUSY`.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, sea_orm::DbErr> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
        db.begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
    } else {
        db.begin().await
    }
}

/// Checks that the database answers a trivial query (for `/ready`).
pub async fn ping(db: &DatabaseConnection) -> anyhow::Result<()> {
    db.ping().await.context("database does not answer")
}
