//! Logs: lines written by executions, stages and intents, paged with an ordered id cursor.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A log line. `id` is assigned by the database and increases, so `id > cursor` reads the
/// lines that came after. A line has no foreign keys: it names its subjects by id only.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "logs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: Uuid,
    pub execution_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    pub intent_id: Option<Uuid>,
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
