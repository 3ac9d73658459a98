//! Blueprints added by users: versioned YAML application templates.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One version of a user blueprint; `(project_id, name, version)` is unique. Deleting sets
/// `deleted_at` so that what was deployed from it can still be explained.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "blueprints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub version: i32,
    #[sea_orm(column_type = "Text")]
    pub yaml: String,
    pub created_by: String,
    pub created_at: ChronoDateTimeUtc,
    pub deleted_at: Option<ChronoDateTimeUtc>,
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
