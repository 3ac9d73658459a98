//! Deployment intents: a command in words ("install authentik with TLS in namespace auth")
//! parsed into a structured request ([`ParsedIntent`]), planned with the blueprint engine and
//! carried out as an execution of the `deploy` pipeline.
//!
//! * [`parse`] — the rule parser for the grammar of the intent commands (pure).
//! * [`llm`] — optional parsing by an OpenAI-compatible model, validated like user input,
//!   with the rule parser as the fallback.

pub mod llm;
mod model;
pub mod parse;

pub use model::{IntentAction, IntentFeatures, ParseFailure, ParsedIntent};
