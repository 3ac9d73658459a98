//! Stages of an execution and the packets they exchanged with remote workers.

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, ID, Json, SimpleObject};
use chrono::{DateTime, Utc};
use orchestrator_entity::{handshakes, stages};
use serde_json::Value;
use uuid::Uuid;

use super::enums::StageStatus;
use super::executions::{Metrics, loader_error};
use super::loaders::HandshakesByStage;
use crate::error::GqlResult;

/// One packet exchanged with a remote worker.
#[derive(SimpleObject)]
pub struct HandshakePacket {
    /// `SENT` or `RECEIVED`.
    pub direction: String,
    /// `handshake`, `process` or `cancel`.
    pub packet_type: String,
    pub payload: Json<Value>,
    /// The HTTP status of a received packet.
    pub http_status: Option<i32>,
    pub attempt: i32,
    pub worker_id: Option<ID>,
    pub created_at: DateTime<Utc>,
}

impl From<handshakes::Model> for HandshakePacket {
    fn from(m: handshakes::Model) -> Self {
        HandshakePacket {
            direction: m.direction,
            packet_type: m.packet_type,
            payload: Json(m.payload),
            http_status: m.http_status,
            attempt: m.attempt,
            worker_id: m.worker_id.map(|id| ID(id.to_string())),
            created_at: m.created_at,
        }
    }
}

/// One stage of an execution.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Stage {
    pub id: ID,
    pub name: String,
    pub position: i32,
    pub action: String,
    pub capability: Option<String>,
    pub status: StageStatus,
    /// The current attempt (0 before the stage first runs).
    pub attempt: i32,
    pub max_attempts: i32,
    pub input: Option<Json<Value>>,
    pub output: Option<Json<Value>>,
    pub error: Option<String>,
    pub metrics: Metrics,
    /// The remote worker of the current attempt.
    pub worker_id: Option<ID>,
    /// When the next attempt is due, while `RETRYING`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub uuid: Uuid,
    #[graphql(skip)]
    pub preloaded_handshakes: Option<Vec<handshakes::Model>>,
}

impl From<stages::Model> for Stage {
    fn from(m: stages::Model) -> Self {
        Stage {
            id: ID(m.id.to_string()),
            name: m.name,
            position: m.position,
            action: m.action,
            capability: m.capability,
            status: m.status.into(),
            attempt: m.attempt,
            max_attempts: m.max_attempts,
            input: m.input.map(Json),
            output: m.output.map(Json),
            error: m.error,
            metrics: Metrics {
                tokens_used: m.tokens_used,
                cost_usd: m.cost_usd,
                duration_ms: m.duration_ms,
                attempts: m.attempt,
            },
            worker_id: m.worker_id.map(|id| ID(id.to_string())),
            next_attempt_at: m.next_attempt_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
            uuid: m.id,
            preloaded_handshakes: None,
        }
    }
}

#[ComplexObject]
impl Stage {
    /// Every packet sent to and received from remote workers, oldest first.
    async fn handshakes(&self, ctx: &Context<'_>) -> GqlResult<Vec<HandshakePacket>> {
        if let Some(rows) = &self.preloaded_handshakes {
            return Ok(rows.iter().cloned().map(Into::into).collect());
        }
        let loader = ctx.data::<DataLoader<HandshakesByStage>>()?;
        let rows = loader
            .load_one(self.uuid)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
