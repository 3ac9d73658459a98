//! What users author and the product runs from: blueprints (versioned YAML application
//! templates) and pipelines (named lists of stages).

use sea_orm_migration::{prelude::*, schema::*};

use super::ddl::{TableSpec, cascade_to, unique_index};
use super::tenancy::Projects;

#[derive(DeriveIden)]
enum Blueprints {
    Table,
    Id,
    ProjectId,
    Name,
    Version,
    Yaml,
    CreatedBy,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Pipelines {
    Table,
    Id,
    ProjectId,
    Name,
    Definition,
    CreatedBy,
    CreatedAt,
}

pub(super) fn tables() -> Vec<TableSpec> {
    vec![blueprints(), pipelines()]
}

/// Every edit is a new version; deleting sets `deleted_at` so running deployments keep theirs.
fn blueprints() -> TableSpec {
    let table = Table::create()
        .table(Blueprints::Table)
        .col(pk_uuid(Blueprints::Id))
        .col(uuid(Blueprints::ProjectId))
        .col(string_len(Blueprints::Name, 64))
        .col(integer(Blueprints::Version))
        .col(text(Blueprints::Yaml))
        .col(string(Blueprints::CreatedBy))
        .col(timestamp_with_time_zone(Blueprints::CreatedAt))
        .col(timestamp_with_time_zone_null(Blueprints::DeletedAt))
        .foreign_key(&mut cascade_to(
            "fk_blueprints_project_id",
            Blueprints::Table,
            Blueprints::ProjectId,
            Projects::Table,
            Projects::Id,
        ))
        .to_owned();
    let indexes = vec![unique_index(
        "uq_blueprints_project_id_name_version",
        Blueprints::Table,
        [Blueprints::ProjectId, Blueprints::Name, Blueprints::Version],
    )];
    TableSpec::new(table, indexes)
}

fn pipelines() -> TableSpec {
    let table = Table::create()
        .table(Pipelines::Table)
        .col(pk_uuid(Pipelines::Id))
        .col(uuid(Pipelines::ProjectId))
        .col(string_len(Pipelines::Name, 64))
        .col(json_binary(Pipelines::Definition))
        .col(string(Pipelines::CreatedBy))
        .col(timestamp_with_time_zone(Pipelines::CreatedAt))
        .foreign_key(&mut cascade_to(
            "fk_pipelines_project_id",
            Pipelines::Table,
            Pipelines::ProjectId,
            Projects::Table,
            Projects::Id,
        ))
        .to_owned();
    let indexes = vec![unique_index(
        "uq_pipelines_project_id_name",
        Pipelines::Table,
        [Pipelines::ProjectId, Pipelines::Name],
    )];
    TableSpec::new(table, indexes)
}
