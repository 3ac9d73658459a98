//! Database entities of the orchestrator (sea-orm) and the enums stored in them.
//!
//! One module per table, in the classic `DeriveEntityModel` form, plus the portable string
//! enums (statuses, [`Role`], [`Priority`], [`Platform`]). Nothing here is async or knows about
//! transports; the schema itself is created by the `orchestrator-migration` crate.

pub mod api_keys;
pub mod audit_log;
pub mod backends;
pub mod blueprints;
pub mod executions;
pub mod handshakes;
pub mod intents;
pub mod logs;
pub mod pipelines;
pub mod platform;
pub mod priority;
pub mod projects;
pub mod prompt_versions;
pub mod resources;
pub mod role;
pub mod stages;
pub mod status;
pub mod workers;

pub mod prelude;

pub use platform::Platform;
pub use priority::Priority;
pub use role::{Role, UnknownRole};
pub use status::{
    BackendStatus, ExecutionStatus, IntentStatus, PromptVersionStatus, StageStatus, WorkerHealth,
};
