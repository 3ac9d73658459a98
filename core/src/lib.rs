//! The domain shared by the API and the workers: configuration, database and queue
//! connections, job payloads, the execution engine's domain half and the blueprint engine.
//! No transport here.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod backends;
pub mod blueprint;
pub mod config;
pub mod context;
pub mod crypto;
pub mod db;
pub mod deploy;
pub mod engine;
pub mod error;
pub mod events;
pub mod intent;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod outbound;
pub mod paging;
pub mod projects;
pub mod queue;
pub mod ratelimit;
pub mod remote;
pub mod startup;
pub mod trace_context;
pub mod worker_registry;

pub use context::CoreContext;
pub use error::{CoreError, CoreResult, ErrorCode, InputProblem};
