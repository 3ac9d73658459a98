//! Executions: runs of a pipeline, the one engine behind intents, backend creation and
//! prompt syncs.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::priority::Priority;
use crate::status::ExecutionStatus;

/// An execution with its totals (tokens, cost, time) summed over its stages.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    /// Name of the pipeline that was run.
    pub pipeline: String,
    pub status: ExecutionStatus,
    pub priority: Priority,
    #[sea_orm(column_type = "JsonBinary")]
    pub input: Json,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub output: Option<Json>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub tokens_used: i64,
    #[sea_orm(column_type = "Double")]
    pub cost_usd: f64,
    pub duration_ms: Option<i64>,
    pub stages_total: i32,
    pub stages_completed: i32,
    /// Set by a cancel request; the engine then schedules no new stage.
    pub cancel_requested: bool,
    /// The intent this execution carries out, if any.
    pub intent_id: Option<Uuid>,
    pub created_by: String,
    /// Increases with every change, so subscribers can drop stale updates.
    pub sequence: i64,
    pub created_at: ChronoDateTimeUtc,
    pub started_at: Option<ChronoDateTimeUtc>,
    pub finished_at: Option<ChronoDateTimeUtc>,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::projects::Entity",
        from = "Column::ProjectId",
        to = "super::projects::Column::Id",
        on_delete = "Cascade"
    )]
    Project,
    #[sea_orm(has_many = "super::stages::Entity")]
    Stages,
}

impl Related<super::projects::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Project.def()
    }
}

impl Related<super::stages::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Stages.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
