//! The registry of remote workers that stages can be handed to.

use sea_orm_migration::{prelude::*, schema::*};

use super::ddl::{CODE_LEN, TableSpec, cascade_to, unique_index};
use super::tenancy::Projects;

#[derive(DeriveIden)]
enum Workers {
    Table,
    Id,
    ProjectId,
    Name,
    Url,
    Capabilities,
    MaxConcurrent,
    HealthStatus,
    LastSeenAt,
    TokenHash,
    Sequence,
    CreatedAt,
    DeregisteredAt,
}

pub(super) fn tables() -> Vec<TableSpec> {
    vec![workers()]
}

/// `capabilities` is a JSON array of strings; `token_hash` is the hash of the token the worker
/// presents, never the token itself.
fn workers() -> TableSpec {
    let table = Table::create()
        .table(Workers::Table)
        .col(pk_uuid(Workers::Id))
        .col(uuid(Workers::ProjectId))
        .col(string_len(Workers::Name, 64))
        .col(string(Workers::Url))
        .col(json_binary(Workers::Capabilities))
        .col(integer(Workers::MaxConcurrent))
        .col(string_len(Workers::HealthStatus, CODE_LEN))
        .col(timestamp_with_time_zone_null(Workers::LastSeenAt))
        .col(string_len(Workers::TokenHash, 128))
        .col(big_integer(Workers::Sequence).default(0i64))
        .col(timestamp_with_time_zone(Workers::CreatedAt))
        .col(timestamp_with_time_zone_null(Workers::DeregisteredAt))
        .foreign_key(&mut cascade_to(
            "fk_workers_project_id",
            Workers::Table,
            Workers::ProjectId,
            Projects::Table,
            Projects::Id,
        ))
        .to_owned();
    let indexes = vec![unique_index(
        "uq_workers_project_id_name",
        Workers::Table,
        [Workers::ProjectId, Workers::Name],
    )];
    TableSpec::new(table, indexes)
}
