//! Where a deployment runs.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The container platform a backend or resource is deployed to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Platform {
    #[sea_orm(string_value = "DOCKER")]
    Docker,
    #[sea_orm(string_value = "KUBERNETES")]
    Kubernetes,
}
