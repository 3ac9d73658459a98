//! DataLoaders: batch the per-row lookups of a list into one query.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use orchestrator_core::CoreContext;
use orchestrator_entity::stages;
use uuid::Uuid;

/// Stages of executions, in order, one query per batch of executions.
pub struct StagesByExecution(pub CoreContext);

impl Loader<Uuid> for StagesByExecution {
    type Value = Vec<stages::Model>;
    type Error = Arc<orchestrator_core::CoreError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = orchestrator_core::engine::service::stages_of(&self.0, keys)
            .await
            .map_err(Arc::new)?;
        let mut map: HashMap<Uuid, Vec<stages::Model>> = HashMap::new();
        for row in rows {
            map.entry(row.execution_id).or_default().push(row);
        }
        Ok(map)
    }
}

/// Handshake packets of stages, oldest first, one query per batch of stages.
pub struct HandshakesByStage(pub CoreContext);

impl Loader<Uuid> for HandshakesByStage {
    type Value = Vec<orchestrator_entity::handshakes::Model>;
    type Error = Arc<orchestrator_core::CoreError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = orchestrator_core::engine::service::handshakes_of(&self.0, keys)
            .await
            .map_err(Arc::new)?;
        let mut map: HashMap<Uuid, Self::Value> = HashMap::new();
        for row in rows {
            map.entry(row.stage_id).or_default().push(row);
        }
        Ok(map)
    }
}
