//! Database migrations for the orchestrator, portable across SQLite and PostgreSQL.
//!
//! The schema is described here on its own, with `DeriveIden` names, and never imports the
//! entity crate: a migration is a frozen record of how the schema changed, while entities follow
//! the current code. Run the migrations at start-up with `Migrator::up(&db, None)`.
//!
//! Portability rules every migration follows: UUIDs use the `uuid` column type, instants are
//! `timestamp with time zone`, JSON is `json_binary` (jsonb on PostgreSQL, text on SQLite),
//! statuses are bounded strings (never native enums), money is `double`, counters `big_integer`.

pub use sea_orm_migration;
pub use sea_orm_migration::MigratorTrait;

use sea_orm_migration::{MigrationTrait, async_trait};

mod m20251121_000001_initial_schema;
mod m20251122_000001_engine_scheduling;
mod m20251123_000001_backend_prompt_schema;

/// Every migration of the orchestrator schema, oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20251121_000001_initial_schema::Migration),
            Box::new(m20251122_000001_engine_scheduling::Migration),
            Box::new(m20251123_000001_backend_prompt_schema::Migration),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are recorded in `seaql_migrations` and applied in sorted order, so each must be
    /// `mYYYYMMDD_HHMMSS_description`, unique, and listed in order.
    #[test]
    fn migration_names_are_timestamped_and_ordered() {
        let names: Vec<String> = Migrator::migrations()
            .iter()
            .map(|migration| migration.name().to_owned())
            .collect();
        assert_eq!(names[0], "m20251121_000001_initial_schema");
        for name in &names {
            let stamp = name.get(1..16).unwrap_or_default();
            assert!(
                name.starts_with('m')
                    && stamp.len() == 15
                    && stamp.chars().enumerate().all(|(i, c)| if i == 8 {
                        c == '_'
                    } else {
                        c.is_ascii_digit()
                    })
                    && name[16..].starts_with('_'),
                "badly named migration {name:?}"
            );
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, names, "migrations are unique and in order");
    }
}
