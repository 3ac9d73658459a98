//! Handshakes: every packet sent to or received from a remote worker, kept for audit and
//! debugging of the handshake protocol.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Value of `direction` for a packet the orchestrator sent.
pub const SENT: &str = "SENT";
/// Value of `direction` for a packet the orchestrator received.
pub const RECEIVED: &str = "RECEIVED";

/// One packet of one stage attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "handshakes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub execution_id: Uuid,
    pub stage_id: Uuid,
    pub worker_id: Option<Uuid>,
    pub attempt: i32,
    /// [`SENT`] or [`RECEIVED`].
    pub direction: String,
    /// `handshake`, `process` or `cancel`.
    pub packet_type: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// HTTP status of the exchange, when there was a response.
    pub http_status: Option<i32>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::stages::Entity",
        from = "Column::StageId",
        to = "super::stages::Column::Id",
        on_delete = "Cascade"
    )]
    Stage,
}

impl Related<super::stages::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Stage.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
