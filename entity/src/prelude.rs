//! Every entity under its table's singular name (`Project`, `Execution`...) and every enum,
//! for `use orchestrator_entity::prelude::*`.

pub use crate::api_keys::Entity as ApiKey;
pub use crate::audit_log::Entity as AuditLog;
pub use crate::backends::Entity as Backend;
pub use crate::blueprints::Entity as Blueprint;
pub use crate::executions::Entity as Execution;
pub use crate::handshakes::Entity as Handshake;
pub use crate::intents::Entity as Intent;
pub use crate::logs::Entity as Log;
pub use crate::pipelines::Entity as Pipeline;
pub use crate::projects::Entity as Project;
pub use crate::prompt_versions::Entity as PromptVersion;
pub use crate::resources::Entity as Resource;
pub use crate::stages::Entity as Stage;
pub use crate::workers::Entity as Worker;

pub use crate::platform::Platform;
pub use crate::priority::Priority;
pub use crate::role::Role;
pub use crate::status::{
    BackendStatus, ExecutionStatus, IntentStatus, PromptVersionStatus, StageStatus, WorkerHealth,
};
