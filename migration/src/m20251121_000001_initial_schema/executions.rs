//! Executions and everything recorded while they run: stages, handshake packets and logs.

use sea_orm_migration::{prelude::*, schema::*};

use super::ddl::{CODE_LEN, TableSpec, cascade_to, index, unique_index};
use super::tenancy::Projects;

#[derive(DeriveIden)]
enum Executions {
    Table,
    Id,
    ProjectId,
    Pipeline,
    Status,
    Priority,
    Input,
    Output,
    Error,
    TokensUsed,
    CostUsd,
    DurationMs,
    StagesTotal,
    StagesCompleted,
    CancelRequested,
    IntentId,
    CreatedBy,
    Sequence,
    CreatedAt,
    StartedAt,
    FinishedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Stages {
    Table,
    Id,
    ProjectId,
    ExecutionId,
    Position,
    Name,
    Action,
    Capability,
    Definition,
    Status,
    Attempt,
    MaxAttempts,
    Input,
    Output,
    Error,
    WorkerId,
    TokensUsed,
    CostUsd,
    DurationMs,
    Sequence,
    NextAttemptAt,
    CreatedAt,
    StartedAt,
    FinishedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Handshakes {
    Table,
    Id,
    ProjectId,
    ExecutionId,
    StageId,
    WorkerId,
    Attempt,
    Direction,
    PacketType,
    Payload,
    HttpStatus,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Logs {
    Table,
    Id,
    ProjectId,
    ExecutionId,
    StageId,
    IntentId,
    Level,
    Message,
    CreatedAt,
}

pub(super) fn tables() -> Vec<TableSpec> {
    vec![executions(), stages(), handshakes(), logs()]
}

fn executions() -> TableSpec {
    let table = Table::create()
        .table(Executions::Table)
        .col(pk_uuid(Executions::Id))
        .col(uuid(Executions::ProjectId))
        .col(string_len(Executions::Pipeline, 64))
        .col(string_len(Executions::Status, CODE_LEN))
        .col(string_len(Executions::Priority, CODE_LEN))
        .col(json_binary(Executions::Input))
        .col(json_binary_null(Executions::Output))
        .col(text_null(Executions::Error))
        .col(big_integer(Executions::TokensUsed).default(0i64))
        .col(double(Executions::CostUsd).default(0.0f64))
        .col(big_integer_null(Executions::DurationMs))
        .col(integer(Executions::StagesTotal).default(0i32))
        .col(integer(Executions::StagesCompleted).default(0i32))
        .col(boolean(Executions::CancelRequested).default(false))
        .col(uuid_null(Executions::IntentId))
        .col(string(Executions::CreatedBy))
        .col(big_integer(Executions::Sequence).default(0i64))
        .col(timestamp_with_time_zone(Executions::CreatedAt))
        .col(timestamp_with_time_zone_null(Executions::StartedAt))
        .col(timestamp_with_time_zone_null(Executions::FinishedAt))
        .col(timestamp_with_time_zone(Executions::UpdatedAt))
        .foreign_key(&mut cascade_to(
            "fk_executions_project_id",
            Executions::Table,
            Executions::ProjectId,
            Projects::Table,
            Projects::Id,
        ))
        .to_owned();
    // Listing a project's executions filtered by status, newest first; also serves project_id.
    let indexes = vec![index(
        "idx_executions_project_id_status_created_at",
        Executions::Table,
        [
            Executions::ProjectId,
            Executions::Status,
            Executions::CreatedAt,
        ],
    )];
    TableSpec::new(table, indexes)
}

/// `definition` keeps what the pipeline said about the stage (timeout, attempts, backoff, static
/// input); `worker_id` is the remote worker chosen for the current attempt.
fn stages() -> TableSpec {
    let table = Table::create()
        .table(Stages::Table)
        .col(pk_uuid(Stages::Id))
        .col(uuid(Stages::ProjectId))
        .col(uuid(Stages::ExecutionId))
        .col(integer(Stages::Position))
        .col(string_len(Stages::Name, 64))
        .col(string_len(Stages::Action, 64))
        .col(string_len_null(Stages::Capability, 64))
        .col(json_binary(Stages::Definition))
        .col(string_len(Stages::Status, CODE_LEN))
        .col(integer(Stages::Attempt).default(0i32))
        .col(integer(Stages::MaxAttempts))
        .col(json_binary_null(Stages::Input))
        .col(json_binary_null(Stages::Output))
        .col(text_null(Stages::Error))
        .col(uuid_null(Stages::WorkerId))
        .col(big_integer(Stages::TokensUsed).default(0i64))
        .col(double(Stages::CostUsd).default(0.0f64))
        .col(big_integer_null(Stages::DurationMs))
        .col(big_integer(Stages::Sequence).default(0i64))
        .col(timestamp_with_time_zone_null(Stages::NextAttemptAt))
        .col(timestamp_with_time_zone(Stages::CreatedAt))
        .col(timestamp_with_time_zone_null(Stages::StartedAt))
        .col(timestamp_with_time_zone_null(Stages::FinishedAt))
        .col(timestamp_with_time_zone(Stages::UpdatedAt))
        .foreign_key(&mut cascade_to(
            "fk_stages_execution_id",
            Stages::Table,
            Stages::ExecutionId,
            Executions::Table,
            Executions::Id,
        ))
        .to_owned();
    let indexes = vec![
        index("idx_stages_project_id", Stages::Table, [Stages::ProjectId]),
        unique_index(
            "uq_stages_execution_id_position",
            Stages::Table,
            [Stages::ExecutionId, Stages::Position],
        ),
    ];
    TableSpec::new(table, indexes)
}

/// Every packet exchanged with a remote worker, in both directions.
fn handshakes() -> TableSpec {
    let table = Table::create()
        .table(Handshakes::Table)
        .col(pk_uuid(Handshakes::Id))
        .col(uuid(Handshakes::ProjectId))
        .col(uuid(Handshakes::ExecutionId))
        .col(uuid(Handshakes::StageId))
        .col(uuid_null(Handshakes::WorkerId))
        .col(integer(Handshakes::Attempt))
        .col(string_len(Handshakes::Direction, CODE_LEN))
        .col(string_len(Handshakes::PacketType, 32))
        .col(json_binary(Handshakes::Payload))
        .col(integer_null(Handshakes::HttpStatus))
        .col(timestamp_with_time_zone(Handshakes::CreatedAt))
        .foreign_key(&mut cascade_to(
            "fk_handshakes_stage_id",
            Handshakes::Table,
            Handshakes::StageId,
            Stages::Table,
            Stages::Id,
        ))
        .to_owned();
    let indexes = vec![
        index(
            "idx_handshakes_project_id",
            Handshakes::Table,
            [Handshakes::ProjectId],
        ),
        index(
            "idx_handshakes_stage_id_created_at",
            Handshakes::Table,
            [Handshakes::StageId, Handshakes::CreatedAt],
        ),
    ];
    TableSpec::new(table, indexes)
}

/// Log lines have an auto-increment id so that `id > cursor` pages through them in order. They
/// carry no foreign keys: writing a line never waits on, or fails because of, its subject.
fn logs() -> TableSpec {
    let table = Table::create()
        .table(Logs::Table)
        .col(big_pk_auto(Logs::Id))
        .col(uuid(Logs::ProjectId))
        .col(uuid_null(Logs::ExecutionId))
        .col(uuid_null(Logs::StageId))
        .col(uuid_null(Logs::IntentId))
        .col(string_len(Logs::Level, 8))
        .col(text(Logs::Message))
        .col(timestamp_with_time_zone(Logs::CreatedAt))
        .to_owned();
    let indexes = vec![
        index("idx_logs_project_id", Logs::Table, [Logs::ProjectId]),
        index(
            "idx_logs_execution_id_id",
            Logs::Table,
            [Logs::ExecutionId, Logs::Id],
        ),
    ];
    TableSpec::new(table, indexes)
}
