//! Projects, the API keys that act inside them, and the audit log of who did what.

use sea_orm_migration::{prelude::*, schema::*};

use super::ddl::{CODE_LEN, TableSpec, cascade_to, index};

#[derive(DeriveIden)]
pub(super) enum Projects {
    Table,
    Id,
    Slug,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    ProjectId,
    Name,
    Role,
    Prefix,
    KeyHash,
    CreatedBy,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    ProjectId,
    Actor,
    Action,
    Target,
    Outcome,
    Detail,
    CreatedAt,
}

pub(super) fn tables() -> Vec<TableSpec> {
    vec![projects(), api_keys(), audit_log()]
}

fn projects() -> TableSpec {
    let table = Table::create()
        .table(Projects::Table)
        .col(pk_uuid(Projects::Id))
        .col(string_len_uniq(Projects::Slug, 64))
        .col(string_len(Projects::Name, 200))
        .col(timestamp_with_time_zone(Projects::CreatedAt))
        .to_owned();
    TableSpec::new(table, vec![])
}

fn api_keys() -> TableSpec {
    let table = Table::create()
        .table(ApiKeys::Table)
        .col(pk_uuid(ApiKeys::Id))
        .col(uuid(ApiKeys::ProjectId))
        .col(string(ApiKeys::Name))
        .col(string_len(ApiKeys::Role, CODE_LEN))
        .col(string_len(ApiKeys::Prefix, 32))
        .col(string_len_uniq(ApiKeys::KeyHash, 128))
        .col(string(ApiKeys::CreatedBy))
        .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
        .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
        .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
        .foreign_key(&mut cascade_to(
            "fk_api_keys_project_id",
            ApiKeys::Table,
            ApiKeys::ProjectId,
            Projects::Table,
            Projects::Id,
        ))
        .to_owned();
    let indexes = vec![
        index(
            "idx_api_keys_project_id",
            ApiKeys::Table,
            [ApiKeys::ProjectId],
        ),
        index("idx_api_keys_prefix", ApiKeys::Table, [ApiKeys::Prefix]),
    ];
    TableSpec::new(table, indexes)
}

/// The audit log outlives what it talks about: it has no foreign keys, and `project_id` is
/// empty for actions outside any project.
fn audit_log() -> TableSpec {
    let table = Table::create()
        .table(AuditLog::Table)
        .col(pk_uuid(AuditLog::Id))
        .col(uuid_null(AuditLog::ProjectId))
        .col(string(AuditLog::Actor))
        .col(string_len(AuditLog::Action, 64))
        .col(string_null(AuditLog::Target))
        .col(string_len(AuditLog::Outcome, CODE_LEN))
        .col(json_binary_null(AuditLog::Detail))
        .col(timestamp_with_time_zone(AuditLog::CreatedAt))
        .to_owned();
    let indexes = vec![index(
        "idx_audit_log_project_id_created_at",
        AuditLog::Table,
        [AuditLog::ProjectId, AuditLog::CreatedAt],
    )];
    TableSpec::new(table, indexes)
}
