//! API keys: long-lived credentials for scripts and frontends, scoped to one project.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::role::Role;

/// An API key. Only a hash of the secret is stored; `prefix` is the first characters of the
/// key, kept in clear so a key can be found and recognised without revealing it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub role: Role,
    pub prefix: String,
    #[sea_orm(unique)]
    pub key_hash: String,
    pub created_by: String,
    pub created_at: ChronoDateTimeUtc,
    pub last_used_at: Option<ChronoDateTimeUtc>,
    /// Set when the key was revoked; a revoked key never authenticates again.
    pub revoked_at: Option<ChronoDateTimeUtc>,
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
