//! Intents: natural-language deployment commands, parsed, planned and applied.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::status::IntentStatus;

/// An intent. `secrets` holds the secrets generated for the plan, encrypted; it must never
/// be returned to callers as is.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "intents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    /// The command as the user wrote it.
    #[sea_orm(column_type = "Text")]
    pub command: String,
    /// What to do (`install`, `remove`...), once parsed.
    pub action: Option<String>,
    /// Which blueprint to act on, once parsed.
    pub application: Option<String>,
    pub status: IntentStatus,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub parsed: Option<Json>,
    #[sea_orm(column_type = "JsonBinary")]
    pub options: Json,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub plan: Option<Json>,
    #[sea_orm(column_type = "Text", nullable)]
    pub secrets: Option<String>,
    /// A dry run plans and stops: nothing is deployed.
    pub dry_run: bool,
    /// The execution currently carrying the intent out.
    pub execution_id: Option<Uuid>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub created_by: String,
    /// Increases with every change, so subscribers can drop stale updates.
    pub sequence: i64,
    pub created_at: ChronoDateTimeUtc,
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
    #[sea_orm(has_many = "super::resources::Entity")]
    Resources,
}

impl Related<super::projects::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Project.def()
    }
}

impl Related<super::resources::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Resources.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
