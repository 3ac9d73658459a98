//! GraphQL enums mirroring the entity status enums (the entity crate has no GraphQL derives).

use async_graphql::Enum;
use orchestrator_entity as status;

/// Role in a project.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "status::Role")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

/// Execution status.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "status::ExecutionStatus")]
pub enum ExecutionStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// Stage status.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "status::StageStatus")]
pub enum StageStatus {
    Pending,
    Handshaking,
    Running,
    Retrying,
    Succeeded,
    Failed,
    Cancelled,
    Skipped,
}

/// Scheduling priority of an execution.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "status::Priority")]
pub enum Priority {
    Low,
    Normal,
    High,
    Critical,
}

/// Last known health of a remote worker.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "status::WorkerHealth")]
pub enum WorkerHealth {
    /// Not probed yet.
    Unknown,
    Healthy,
    Unhealthy,
}

/// A container platform deployments run on.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "status::Platform")]
pub enum Platform {
    Docker,
    Kubernetes,
}

/// Status of a deployment intent.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "status::IntentStatus")]
pub enum IntentStatus {
    Pending,
    Parsing,
    Generating,
    Deploying,
    Completed,
    Failed,
    Cancelled,
    RolledBack,
}
