//! Deployment intents: a command in words ("install authentik with TLS in namespace auth")
//! parsed into a structured request ([`ParsedIntent`]), planned with the blueprint engine and
//! carried out as an execution of the `deploy` pipeline.
//!
//! * [`parse`] — the rule parser for the grammar of the intent commands (pure).
//! * [`llm`] — optional parsing by an OpenAI-compatible model, validated like user input,
//!   with the rule parser as the fallback.
//! * [`plan`] — the plan of a command: options applied, the deployment it changes found,
//!   rendered with the blueprint engine (nothing written).
//! * [`pipeline`] — the executions that deploy and roll back.
//! * [`actions`] — their stage actions, run by worker processes through the deployers.
//! * [`service`] — deploy, read, retry, cancel and roll back intents.

pub mod actions;
pub mod llm;
mod model;
pub mod parse;
pub mod pipeline;
pub mod plan;
pub mod service;
mod validate;

#[cfg(test)]
mod llm_tests;
#[cfg(test)]
mod parse_tests;

pub use llm::{LlmParser, ParsedBy, parse_intent};
pub use model::{IntentAction, IntentFeatures, ParseFailure, ParsedIntent};
pub use parse::parse_command;
pub use validate::{APPLICATION_ALIASES, MAX_COMMAND_CHARS, MAX_REPLICAS, MAX_VERSION_CHARS};
