//! Resources: what a deployment created on Docker or Kubernetes, so rollback and orphan
//! discovery know what is ours.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::platform::Platform;

/// One deployed object (a container, a Deployment, a Secret...).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "resources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub intent_id: Uuid,
    /// The blueprint component this resource was rendered from.
    pub component: String,
    pub platform: Platform,
    /// `Deployment`, `Service`, `container`...
    pub kind: String,
    pub name: String,
    /// Kubernetes namespace; empty for Docker.
    pub namespace: Option<String>,
    /// Hash of the applied spec, to tell whether a re-apply changes anything.
    pub spec_hash: String,
    pub created_at: ChronoDateTimeUtc,
    pub deleted_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::intents::Entity",
        from = "Column::IntentId",
        to = "super::intents::Column::Id",
        on_delete = "Cascade"
    )]
    Intent,
}

impl Related<super::intents::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Intent.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
