//! `backends.prompt_schema`: the prompt schema a backend served when it was adopted, or last
//! validated, so prompt changes can be checked while the backend is down (bulk updates) and
//! drift reports name fields people know.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Backends {
    Table,
    PromptSchema,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Backends::Table)
                    .add_column(json_binary_null(Backends::PromptSchema))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Backends::Table)
                    .drop_column(Backends::PromptSchema)
                    .to_owned(),
            )
            .await
    }
}
