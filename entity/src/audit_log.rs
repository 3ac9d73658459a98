//! The audit log: who did what to which thing, and whether it worked.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One audited action. `project_id` is empty for actions outside any project; rows outlive
/// the things they mention, so there are no foreign keys.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    /// Who acted: a user, an API key or the system.
    pub actor: String,
    /// What was done, e.g. `backend.delete`.
    pub action: String,
    /// What it was done to, e.g. a backend id.
    pub target: Option<String>,
    /// `SUCCESS`, `DENIED` or `ERROR`.
    pub outcome: String,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub detail: Option<Json>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
