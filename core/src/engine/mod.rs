//! The execution engine's domain half: pipeline definitions, stage actions, and the service
//! functions that start and read executions. The worker crate runs the stages.

pub mod action;
pub mod pipeline;
pub mod service;
