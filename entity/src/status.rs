//! Lifecycle statuses of executions, stages, intents, backends, prompt versions and workers.
//!
//! Each is stored as a short upper-case string (never a native database enum), so one schema
//! serves SQLite and PostgreSQL; serde uses the same spelling, so JSON and SQL agree.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where an execution is: `QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    #[sea_orm(string_value = "QUEUED")]
    Queued,
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

impl ExecutionStatus {
    /// True once the execution can no longer change: succeeded, failed or cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Where a stage is: `PENDING → (HANDSHAKING) → RUNNING → SUCCEEDED | FAILED | CANCELLED |
/// SKIPPED`, with `RETRYING` between attempts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StageStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "HANDSHAKING")]
    Handshaking,
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "RETRYING")]
    Retrying,
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
    #[sea_orm(string_value = "SKIPPED")]
    Skipped,
}

impl StageStatus {
    /// True once the stage will not run again: succeeded, failed, cancelled or skipped.
    /// `RETRYING` is not terminal: another attempt is scheduled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Skipped
        )
    }
}

/// Where a deployment intent is: `PENDING → PARSING → GENERATING → DEPLOYING → COMPLETED |
/// FAILED | CANCELLED | ROLLED_BACK`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IntentStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "PARSING")]
    Parsing,
    #[sea_orm(string_value = "GENERATING")]
    Generating,
    #[sea_orm(string_value = "DEPLOYING")]
    Deploying,
    #[sea_orm(string_value = "COMPLETED")]
    Completed,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
    #[sea_orm(string_value = "ROLLED_BACK")]
    RolledBack,
}

impl IntentStatus {
    /// True once the intent's execution has ended: completed, failed, cancelled or rolled back.
    /// A terminal intent may still be retried or rolled back, which starts a new execution.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::RolledBack
        )
    }
}

/// The state of a backend: `PROVISIONING → ACTIVE ⇄ UNHEALTHY`, `DRIFTED` (its prompts were
/// changed outside the orchestrator), `DELETING → DELETED`, and `REMOVED` (a custom backend
/// the orchestrator stopped managing, left running).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackendStatus {
    #[sea_orm(string_value = "PROVISIONING")]
    Provisioning,
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "UNHEALTHY")]
    Unhealthy,
    #[sea_orm(string_value = "DRIFTED")]
    Drifted,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "DELETING")]
    Deleting,
    #[sea_orm(string_value = "DELETED")]
    Deleted,
    #[sea_orm(string_value = "REMOVED")]
    Removed,
}

/// Whether a prompt version reached its backend: `PENDING → APPLIED | FAILED`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PromptVersionStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "APPLIED")]
    Applied,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// The last known health of a remote worker; `UNKNOWN` until it is first checked.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkerHealth {
    #[sea_orm(string_value = "UNKNOWN")]
    Unknown,
    #[sea_orm(string_value = "HEALTHY")]
    Healthy,
    #[sea_orm(string_value = "UNHEALTHY")]
    Unhealthy,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveEnum, Iterable};

    #[test]
    fn terminal_execution_statuses_are_the_three_end_states() {
        let terminal: Vec<_> = ExecutionStatus::iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                ExecutionStatus::Succeeded,
                ExecutionStatus::Failed,
                ExecutionStatus::Cancelled
            ]
        );
    }

    #[test]
    fn retrying_stage_is_not_terminal_but_skipped_is() {
        assert!(!StageStatus::Retrying.is_terminal());
        assert!(!StageStatus::Handshaking.is_terminal());
        assert!(StageStatus::Skipped.is_terminal());
        assert_eq!(StageStatus::iter().filter(|s| s.is_terminal()).count(), 4);
    }

    #[test]
    fn rolled_back_intent_is_terminal_and_deploying_is_not() {
        assert!(IntentStatus::RolledBack.is_terminal());
        assert!(!IntentStatus::Deploying.is_terminal());
        assert_eq!(IntentStatus::iter().filter(|s| s.is_terminal()).count(), 4);
    }

    #[test]
    fn serde_and_database_spell_statuses_the_same() {
        for status in IntentStatus::iter() {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, serde_json::Value::String(status.to_value()));
        }
        for status in BackendStatus::iter() {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, serde_json::Value::String(status.to_value()));
        }
        assert_eq!(IntentStatus::RolledBack.to_value(), "ROLLED_BACK");
    }

    #[test]
    fn every_status_fits_its_column() {
        let longest = ExecutionStatus::iter()
            .map(|s| s.to_value())
            .chain(StageStatus::iter().map(|s| s.to_value()))
            .chain(IntentStatus::iter().map(|s| s.to_value()))
            .chain(BackendStatus::iter().map(|s| s.to_value()))
            .chain(PromptVersionStatus::iter().map(|s| s.to_value()))
            .chain(WorkerHealth::iter().map(|s| s.to_value()))
            .map(|v| v.len())
            .max()
            .unwrap();
        assert!(longest <= 16, "a status is {longest} characters long");
    }
}
