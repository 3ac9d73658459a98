//! Workers: the registry of remote workers that stages are handed to.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::status::WorkerHealth;

/// A registered remote worker; its name is unique within the project. `token_hash` is the
/// hash of the token it presents, never the token.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub url: String,
    /// A JSON array of capability names.
    #[sea_orm(column_type = "JsonBinary")]
    pub capabilities: Json,
    pub max_concurrent: i32,
    /// Stages holding one of the `max_concurrent` slots right now, over all worker processes.
    pub active_stages: i32,
    pub health_status: WorkerHealth,
    pub last_seen_at: Option<ChronoDateTimeUtc>,
    /// When the health probe last ran.
    pub health_checked_at: Option<ChronoDateTimeUtc>,
    /// Why the last probe or call failed, while unhealthy.
    #[sea_orm(column_type = "Text", nullable)]
    pub health_message: Option<String>,
    pub token_hash: String,
    /// Increases with every change, so subscribers can drop stale updates.
    pub sequence: i64,
    pub created_at: ChronoDateTimeUtc,
    /// Set when the worker left the registry; it then receives no new stages.
    pub deregistered_at: Option<ChronoDateTimeUtc>,
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
}

impl Related<super::projects::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Project.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
