//! The execution engine's domain half: pipeline definitions and the catalog of a project's
//! pipelines, stage actions, the status changes shared by the API and the workers, and the
//! service functions that start, steer and read executions. The worker crate runs the stages.

pub mod action;
pub mod catalog;
pub mod control;
pub mod followers;
pub mod lifecycle;
pub mod pipeline;
pub mod service;
