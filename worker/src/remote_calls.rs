//! The packets of one remote attempt: each call to the worker carries the protocol headers,
//! and is logged in `handshakes` with its answer; transport failures go to the execution log
//! and feed the worker's health.

use anyhow::Context;
use serde_json::{Value, json};
use tokio::time::Instant;

use orchestrator_core::engine::lifecycle::append_log;
use orchestrator_core::remote::{self, CallError, CallHeaders, Packet, StageRef, record_packet};
use orchestrator_core::worker_registry::{record_health, worker_token};
use orchestrator_entity::{handshakes, workers};

use crate::remote_stage::RemoteAttempt;

impl RemoteAttempt<'_> {
    pub(crate) fn headers(&self, worker: &workers::Model) -> CallHeaders {
        CallHeaders {
            token: worker_token(self.token_key, worker.id),
            instance_id: self.instance_id.to_string(),
            idempotency_key: format!("{}:{}", self.stage.id, self.stage.attempt),
        }
    }

    pub(crate) fn stage_ref(&self) -> Value {
        json!(StageRef {
            execution_id: self.stage.execution_id,
            stage_id: self.stage.id,
        })
    }

    pub(crate) fn remaining_ms(&self) -> u64 {
        self.deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as u64
    }

    pub(crate) async fn log_packet(
        &self,
        worker: &workers::Model,
        direction: &'static str,
        packet_type: &'static str,
        payload: Value,
        http_status: Option<u16>,
    ) -> anyhow::Result<()> {
        let packet = Packet {
            project_id: self.stage.project_id,
            execution_id: self.stage.execution_id,
            stage_id: self.stage.id,
            worker_id: Some(worker.id),
            attempt: self.stage.attempt,
            direction,
            packet_type,
            payload,
            http_status,
        };
        record_packet(&self.core.db, packet)
            .await
            .context("recording a handshake packet")
    }

    /// Sends one packet and logs it with the answer (or the HTTP error answer).
    pub(crate) async fn exchange<T: serde::de::DeserializeOwned>(
        &self,
        worker: &workers::Model,
        packet_type: &'static str,
        path: &str,
        body: Value,
        timeout: std::time::Duration,
    ) -> anyhow::Result<Result<T, CallError>> {
        self.log_packet(worker, handshakes::SENT, packet_type, body.clone(), None)
            .await?;
        let answer = self
            .client
            .post::<T>(&worker.url, path, &self.headers(worker), &body, timeout)
            .await;
        let health = match &answer {
            Ok(_) => Ok(()),
            Err((CallError::Connect(why), _)) => Err(why.clone()),
            Err((CallError::Timeout(_), _)) | Err(_) => Ok(()),
        };
        record_health(self.core, worker.id, health).await?;
        match answer {
            Ok(answer) => {
                self.log_packet(
                    worker,
                    handshakes::RECEIVED,
                    packet_type,
                    answer.body,
                    Some(answer.status),
                )
                .await?;
                Ok(Ok(answer.parsed))
            }
            Err((error, body)) => {
                if let Some(body) = body {
                    self.log_packet(
                        worker,
                        handshakes::RECEIVED,
                        packet_type,
                        body,
                        error.http_status(),
                    )
                    .await?;
                }
                let line = format!("{packet_type} with worker {} failed: {error}", worker.name);
                let row = append_log(
                    &self.core.db,
                    self.stage.project_id,
                    self.stage.execution_id,
                    Some(self.stage.id),
                    "WARN",
                    &line,
                )
                .await?;
                orchestrator_core::events::publish_log(self.core, &row).await;
                Ok(Err(error))
            }
        }
    }

    /// Tells the worker to stop the stage; best effort.
    pub(crate) async fn send_cancel(&self, worker: &workers::Model) -> anyhow::Result<()> {
        let _: Result<Value, CallError> = self
            .exchange(
                worker,
                "cancel",
                "/api/cancel",
                self.stage_ref(),
                remote::CANCEL_TIMEOUT,
            )
            .await?;
        Ok(())
    }
}
