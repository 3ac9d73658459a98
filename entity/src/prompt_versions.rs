//! Prompt versions: every change to a backend's prompts, immutable and numbered per backend.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::status::PromptVersionStatus;

/// One version of a backend's prompts. A rollback writes an older version's prompts again as
/// a new version; versions are never edited.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "prompt_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub backend_id: Uuid,
    /// 1, 2, 3... per backend; unique together with `backend_id`.
    pub version: i32,
    #[sea_orm(column_type = "JsonBinary")]
    pub prompts: Json,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub author: String,
    pub status: PromptVersionStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// The `prompt.sync` execution pushing this version to the backend.
    pub execution_id: Option<Uuid>,
    pub created_at: ChronoDateTimeUtc,
    pub applied_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::backends::Entity",
        from = "Column::BackendId",
        to = "super::backends::Column::Id",
        on_delete = "Cascade"
    )]
    Backend,
}

impl Related<super::backends::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Backend.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
