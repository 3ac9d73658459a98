//! The state every HTTP handler shares.

use orchestrator_core::CoreContext;
use orchestrator_core::auth::TokenVerifier;

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
}
