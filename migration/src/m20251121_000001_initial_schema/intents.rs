//! Natural-language deployment intents and the resources their deployments created.

use sea_orm_migration::{prelude::*, schema::*};

use super::ddl::{CODE_LEN, TableSpec, cascade_to, index};
use super::tenancy::Projects;

#[derive(DeriveIden)]
enum Intents {
    Table,
    Id,
    ProjectId,
    Command,
    Action,
    Application,
    Status,
    Parsed,
    Options,
    Plan,
    Secrets,
    DryRun,
    ExecutionId,
    Error,
    CreatedBy,
    Sequence,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Resources {
    Table,
    Id,
    ProjectId,
    IntentId,
    Component,
    Platform,
    Kind,
    Name,
    Namespace,
    SpecHash,
    CreatedAt,
    DeletedAt,
}

pub(super) fn tables() -> Vec<TableSpec> {
    vec![intents(), resources()]
}

/// `secrets` holds the generated secrets of the plan, encrypted.
fn intents() -> TableSpec {
    let table = Table::create()
        .table(Intents::Table)
        .col(pk_uuid(Intents::Id))
        .col(uuid(Intents::ProjectId))
        .col(text(Intents::Command))
        .col(string_len_null(Intents::Action, 32))
        .col(string_len_null(Intents::Application, 64))
        .col(string_len(Intents::Status, CODE_LEN))
        .col(json_binary_null(Intents::Parsed))
        .col(json_binary(Intents::Options))
        .col(json_binary_null(Intents::Plan))
        .col(text_null(Intents::Secrets))
        .col(boolean(Intents::DryRun))
        .col(uuid_null(Intents::ExecutionId))
        .col(text_null(Intents::Error))
        .col(string(Intents::CreatedBy))
        .col(big_integer(Intents::Sequence).default(0i64))
        .col(timestamp_with_time_zone(Intents::CreatedAt))
        .col(timestamp_with_time_zone(Intents::UpdatedAt))
        .foreign_key(&mut cascade_to(
            "fk_intents_project_id",
            Intents::Table,
            Intents::ProjectId,
            Projects::Table,
            Projects::Id,
        ))
        .to_owned();
    // A project's intents are listed newest first; the index also serves project_id alone.
    let indexes = vec![index(
        "idx_intents_project_id_created_at",
        Intents::Table,
        [Intents::ProjectId, Intents::CreatedAt],
    )];
    TableSpec::new(table, indexes)
}

/// What a deployment created, so rollback and orphan discovery know what is ours. Name and
/// namespace lengths follow Kubernetes' limits (253 and 63).
fn resources() -> TableSpec {
    let table = Table::create()
        .table(Resources::Table)
        .col(pk_uuid(Resources::Id))
        .col(uuid(Resources::ProjectId))
        .col(uuid(Resources::IntentId))
        .col(string_len(Resources::Component, 64))
        .col(string_len(Resources::Platform, CODE_LEN))
        .col(string_len(Resources::Kind, 64))
        .col(string_len(Resources::Name, 253))
        .col(string_len_null(Resources::Namespace, 63))
        .col(string_len(Resources::SpecHash, 64))
        .col(timestamp_with_time_zone(Resources::CreatedAt))
        .col(timestamp_with_time_zone_null(Resources::DeletedAt))
        .foreign_key(&mut cascade_to(
            "fk_resources_intent_id",
            Resources::Table,
            Resources::IntentId,
            Intents::Table,
            Intents::Id,
        ))
        .to_owned();
    let indexes = vec![
        index(
            "idx_resources_project_id",
            Resources::Table,
            [Resources::ProjectId],
        ),
        index(
            "idx_resources_intent_id",
            Resources::Table,
            [Resources::IntentId],
        ),
    ];
    TableSpec::new(table, indexes)
}
