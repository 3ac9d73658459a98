//! The packet log: every packet sent to or received from a remote worker is kept in
//! `handshakes`, so a stage's conversation with its worker can be read back through the API.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde_json::Value;
use uuid::Uuid;

use orchestrator_entity::handshakes;

/// One packet of one stage attempt.
#[derive(Debug, Clone)]
pub struct Packet {
    pub project_id: Uuid,
    pub execution_id: Uuid,
    pub stage_id: Uuid,
    pub worker_id: Option<Uuid>,
    pub attempt: i32,
    /// [`handshakes::SENT`] or [`handshakes::RECEIVED`].
    pub direction: &'static str,
    /// `handshake`, `process` or `cancel`.
    pub packet_type: &'static str,
    pub payload: Value,
    pub http_status: Option<u16>,
}

/// Appends `packet` to the log.
pub async fn record_packet<C: ConnectionTrait>(
    conn: &C,
    packet: Packet,
) -> Result<(), sea_orm::DbErr> {
    handshakes::ActiveModel {
        id: Set(Uuid::new_v4()),
        project_id: Set(packet.project_id),
        execution_id: Set(packet.execution_id),
        stage_id: Set(packet.stage_id),
        worker_id: Set(packet.worker_id),
        attempt: Set(packet.attempt),
        direction: Set(packet.direction.to_string()),
        packet_type: Set(packet.packet_type.to_string()),
        payload: Set(packet.payload),
        http_status: Set(packet.http_status.map(i32::from)),
        created_at: Set(Utc::now()),
    }
    .insert(conn)
    .await?;
    Ok(())
}
