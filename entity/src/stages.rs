//! Stages: the ordered steps of an execution, each a built-in action or a job for a remote
//! worker.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::status::StageStatus;

/// A stage of an execution; `(execution_id, position)` is unique.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "stages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub execution_id: Uuid,
    /// 0-based order within the execution.
    pub position: i32,
    pub name: String,
    pub action: String,
    /// The capability a remote worker must offer to run this stage, if it runs remotely.
    pub capability: Option<String>,
    /// What the pipeline said about this stage: timeoutMs, maxAttempts, backoff, static input.
    #[sea_orm(column_type = "JsonBinary")]
    pub definition: Json,
    pub status: StageStatus,
    /// The current attempt, starting at 1 once the stage first runs (0 before).
    pub attempt: i32,
    pub max_attempts: i32,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub input: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub output: Option<Json>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// The remote worker chosen for the current attempt.
    pub worker_id: Option<Uuid>,
    pub tokens_used: i64,
    #[sea_orm(column_type = "Double")]
    pub cost_usd: f64,
    pub duration_ms: Option<i64>,
    /// Increases with every change, so subscribers can drop stale updates.
    pub sequence: i64,
    /// When the next attempt is due, while `RETRYING`.
    pub next_attempt_at: Option<ChronoDateTimeUtc>,
    /// The queue job running the current attempt; a re-delivery of that job resumes the
    /// attempt, any other job for it is a duplicate.
    pub claimed_by_job: Option<String>,
    /// The remote worker whose concurrency slot this stage holds, until it gives it back.
    pub slot_worker_id: Option<Uuid>,
    pub created_at: ChronoDateTimeUtc,
    pub started_at: Option<ChronoDateTimeUtc>,
    pub finished_at: Option<ChronoDateTimeUtc>,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::executions::Entity",
        from = "Column::ExecutionId",
        to = "super::executions::Column::Id",
        on_delete = "Cascade"
    )]
    Execution,
    #[sea_orm(has_many = "super::handshakes::Entity")]
    Handshakes,
}

impl Related<super::executions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Execution.def()
    }
}

impl Related<super::handshakes::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Handshakes.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
