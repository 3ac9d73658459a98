//! AI backends and the numbered, immutable versions of their prompts.

use sea_orm_migration::{prelude::*, schema::*};

use super::ddl::{CODE_LEN, TableSpec, cascade_to, index, unique_index};
use super::tenancy::Projects;

#[derive(DeriveIden)]
enum Backends {
    Table,
    Id,
    ProjectId,
    Name,
    BackendType,
    Status,
    StatusMessage,
    Url,
    Platform,
    Configuration,
    Secrets,
    IntentId,
    Drift,
    LastCheckedAt,
    Sequence,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PromptVersions {
    Table,
    Id,
    ProjectId,
    BackendId,
    Version,
    Prompts,
    Message,
    Author,
    Status,
    Error,
    ExecutionId,
    CreatedAt,
    AppliedAt,
}

pub(super) fn tables() -> Vec<TableSpec> {
    vec![backends(), prompt_versions()]
}

/// `configuration` holds only non-secret values; `secrets` is an encrypted blob. `sequence`
/// increases with every change so subscribers can order updates.
fn backends() -> TableSpec {
    let table = Table::create()
        .table(Backends::Table)
        .col(pk_uuid(Backends::Id))
        .col(uuid(Backends::ProjectId))
        .col(string(Backends::Name))
        .col(string_len(Backends::BackendType, 32))
        .col(string_len(Backends::Status, CODE_LEN))
        .col(text_null(Backends::StatusMessage))
        .col(string_null(Backends::Url))
        .col(string_len_null(Backends::Platform, CODE_LEN))
        .col(json_binary(Backends::Configuration))
        .col(text_null(Backends::Secrets))
        .col(uuid_null(Backends::IntentId))
        .col(json_binary_null(Backends::Drift))
        .col(timestamp_with_time_zone_null(Backends::LastCheckedAt))
        .col(big_integer(Backends::Sequence).default(0i64))
        .col(timestamp_with_time_zone(Backends::CreatedAt))
        .col(timestamp_with_time_zone(Backends::UpdatedAt))
        .foreign_key(&mut cascade_to(
            "fk_backends_project_id",
            Backends::Table,
            Backends::ProjectId,
            Projects::Table,
            Projects::Id,
        ))
        .to_owned();
    // The unique (project_id, url) index also serves lookups by project alone.
    let indexes = vec![unique_index(
        "uq_backends_project_id_url",
        Backends::Table,
        [Backends::ProjectId, Backends::Url],
    )];
    TableSpec::new(table, indexes)
}

fn prompt_versions() -> TableSpec {
    let table = Table::create()
        .table(PromptVersions::Table)
        .col(pk_uuid(PromptVersions::Id))
        .col(uuid(PromptVersions::ProjectId))
        .col(uuid(PromptVersions::BackendId))
        .col(integer(PromptVersions::Version))
        .col(json_binary(PromptVersions::Prompts))
        .col(text(PromptVersions::Message))
        .col(string(PromptVersions::Author))
        .col(string_len(PromptVersions::Status, CODE_LEN))
        .col(text_null(PromptVersions::Error))
        .col(uuid_null(PromptVersions::ExecutionId))
        .col(timestamp_with_time_zone(PromptVersions::CreatedAt))
        .col(timestamp_with_time_zone_null(PromptVersions::AppliedAt))
        .foreign_key(&mut cascade_to(
            "fk_prompt_versions_backend_id",
            PromptVersions::Table,
            PromptVersions::BackendId,
            Backends::Table,
            Backends::Id,
        ))
        .to_owned();
    let indexes = vec![
        index(
            "idx_prompt_versions_project_id",
            PromptVersions::Table,
            [PromptVersions::ProjectId],
        ),
        unique_index(
            "uq_prompt_versions_backend_id_version",
            PromptVersions::Table,
            [PromptVersions::BackendId, PromptVersions::Version],
        ),
    ];
    TableSpec::new(table, indexes)
}
