//! Backends and their prompts, the domain half: the backend types and their form templates,
//! configuration checks, prompt schemas and values, the custom-backend HTTP client and the
//! `validateService` checks. No database and no GraphQL here; service functions call these.

pub mod client;
pub mod configuration;
pub mod form;
pub mod monitor;
pub mod orphans;
pub mod prompt_service;
pub mod prompts;
pub mod schema;
pub mod service;
pub mod sync;
pub mod types;
pub mod validate;

pub use client::{
    BackendCallError, CustomBackendClient, HealthAnswer, PromptManagement, PutPromptsAnswer,
};
pub use configuration::{ValidatedConfiguration, validate_configuration};
pub use form::{FieldType, FormField};
pub use prompts::{ChangeKind, FieldChange, diff, prompt_problems, validate_prompts};
pub use schema::{PromptSchema, SchemaError};
pub use types::{BackendType, Capabilities, backend_type, registry};
pub use validate::{Check, ServiceReport, validate_service};
