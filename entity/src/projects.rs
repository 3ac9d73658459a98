//! Projects: the tenants. Every other row belongs to exactly one project.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A project, addressed in URLs by its unique `slug`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::api_keys::Entity")]
    ApiKeys,
    #[sea_orm(has_many = "super::backends::Entity")]
    Backends,
    #[sea_orm(has_many = "super::blueprints::Entity")]
    Blueprints,
    #[sea_orm(has_many = "super::pipelines::Entity")]
    Pipelines,
    #[sea_orm(has_many = "super::executions::Entity")]
    Executions,
    #[sea_orm(has_many = "super::workers::Entity")]
    Workers,
    #[sea_orm(has_many = "super::intents::Entity")]
    Intents,
}

impl Related<super::api_keys::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ApiKeys.def()
    }
}

impl Related<super::backends::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Backends.def()
    }
}

impl Related<super::blueprints::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Blueprints.def()
    }
}

impl Related<super::pipelines::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Pipelines.def()
    }
}

impl Related<super::executions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Executions.def()
    }
}

impl Related<super::workers::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Workers.def()
    }
}

impl Related<super::intents::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Intents.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
