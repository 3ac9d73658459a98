//! Columns the execution engine needs to schedule stages safely across worker processes.
//!
//! * `workers.active_stages` counts the stages that hold one of the worker's `max_concurrent`
//!   slots; a slot is taken with one conditional `UPDATE … WHERE active_stages <
//!   max_concurrent`, so the limit holds however many worker processes compete for it.
//! * `workers.health_checked_at` / `health_message` record the last probe, so that only one
//!   process probes a worker per interval and people can see why a worker is unhealthy.
//! * `stages.claimed_by_job` is the queue job that runs the current attempt: a re-delivery of
//!   that job resumes the attempt, any other job for the same attempt is a duplicate.
//! * `stages.slot_worker_id` is the worker whose slot the stage holds, so the slot is given
//!   back exactly once, whatever ends the attempt.
//!
//! SQLite alters one column per statement, so every column is its own `ALTER TABLE`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Workers {
    Table,
    ActiveStages,
    HealthCheckedAt,
    HealthMessage,
}

#[derive(DeriveIden)]
enum Stages {
    Table,
    ClaimedByJob,
    SlotWorkerId,
}

fn add(table: impl IntoIden, column: ColumnDef) -> TableAlterStatement {
    Table::alter().table(table).add_column(column).to_owned()
}

fn drop(table: impl IntoIden, column: impl IntoIden) -> TableAlterStatement {
    Table::alter().table(table).drop_column(column).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let steps = [
            add(
                Workers::Table,
                integer(Workers::ActiveStages).default(0i32).to_owned(),
            ),
            add(
                Workers::Table,
                timestamp_with_time_zone_null(Workers::HealthCheckedAt),
            ),
            add(Workers::Table, text_null(Workers::HealthMessage)),
            add(Stages::Table, string_len_null(Stages::ClaimedByJob, 64)),
            add(Stages::Table, uuid_null(Stages::SlotWorkerId)),
        ];
        for step in steps {
            manager.alter_table(step).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(drop(Stages::Table, Stages::SlotWorkerId))
            .await?;
        manager
            .alter_table(drop(Stages::Table, Stages::ClaimedByJob))
            .await?;
        manager
            .alter_table(drop(Workers::Table, Workers::HealthMessage))
            .await?;
        manager
            .alter_table(drop(Workers::Table, Workers::HealthCheckedAt))
            .await?;
        manager
            .alter_table(drop(Workers::Table, Workers::ActiveStages))
            .await?;
        Ok(())
    }
}
