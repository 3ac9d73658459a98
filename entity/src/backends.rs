//! Backends: AI chatbot service instances, either created by the orchestrator (`managed`) or
//! adopted (`custom`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::platform::Platform;
use crate::status::BackendStatus;

/// A backend. `configuration` holds non-secret settings only; `secrets` is an encrypted blob
/// that must never be returned to callers as is.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "backends")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    /// `managed` or `custom`.
    pub backend_type: String,
    pub status: BackendStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub status_message: Option<String>,
    /// Unique within the project when set.
    pub url: Option<String>,
    pub platform: Option<Platform>,
    #[sea_orm(column_type = "JsonBinary")]
    pub configuration: Json,
    #[sea_orm(column_type = "Text", nullable)]
    pub secrets: Option<String>,
    /// The intent that deployed this backend, for managed backends.
    pub intent_id: Option<Uuid>,
    /// What differs between the current prompt version and the backend, when drift was seen.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub drift: Option<Json>,
    pub last_checked_at: Option<ChronoDateTimeUtc>,
    /// The prompt schema the backend served when last validated (`{ "fields": [...] }`).
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub prompt_schema: Option<Json>,
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
    #[sea_orm(has_many = "super::prompt_versions::Entity")]
    PromptVersions,
}

impl Related<super::projects::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Project.def()
    }
}

impl Related<super::prompt_versions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PromptVersions.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
