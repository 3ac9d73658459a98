//! The state every HTTP handler shares.

use std::sync::Arc;

use orchestrator_core::CoreContext;
use orchestrator_core::auth::TokenVerifier;
use orchestrator_core::ratelimit::RateLimiter;

use crate::graphql::OrchestratorSchema;

/// Shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    /// Database, queue and configuration.
    pub core: CoreContext,
    /// Verifies bearer tokens.
    pub verifier: TokenVerifier,
    /// The executable schema (with its data and limits).
    pub schema: OrchestratorSchema,
    /// Serve GraphiQL on `GET /graphql`.
    pub graphiql: bool,
    /// Per-caller request budget.
    pub limiter: Arc<RateLimiter>,
}
