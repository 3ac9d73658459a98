//! The initial schema: every table of the orchestrator, its indexes and foreign keys.
//!
//! Tables are grouped by the part of the product that owns them; each group lists its tables in
//! creation order (parents before children), and `down` drops them in the reverse order.

mod backends;
mod ddl;
mod definitions;
mod executions;
mod intents;
mod tenancy;
mod workers;

use sea_orm_migration::prelude::*;

use ddl::TableSpec;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// All tables in creation order: a table only references tables listed before it.
fn all_tables() -> Vec<TableSpec> {
    [
        tenancy::tables(),
        backends::tables(),
        definitions::tables(),
        executions::tables(),
        workers::tables(),
        intents::tables(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for spec in all_tables() {
            manager.create_table(spec.table).await?;
            for index in spec.indexes {
                manager.create_index(index).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children go first so that no foreign key ever points at a dropped table.
        for spec in all_tables().into_iter().rev() {
            manager.drop_table(spec.drop_statement()).await?;
        }
        Ok(())
    }
}
