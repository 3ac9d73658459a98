//! The API process: GraphQL schema and resolvers, HTTP routes and authentication.
//! Resolvers are thin; they call the service functions of `orchestrator-core`.

pub mod auth;
pub mod board;
pub mod drain;
pub mod error;
pub mod graphql;
pub mod metrics_route;
pub mod routes;
pub mod state;
pub mod ws;

use orchestrator_core::CoreContext;
use orchestrator_core::auth::TokenVerifier;

pub use graphql::{OrchestratorSchema, SchemaOptions, build_schema, sdl};
pub use state::ApiState;

/// How the process serves the API; decides the defaults of introspection and GraphiQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiMode {
    /// API and workers in one process, for people trying the product: both on.
    Standalone,
    /// API-only process of a scaled deployment: both off unless configured.
    Api,
}

/// Builds the API state from a connected core context.
pub fn build_state(core: CoreContext, mode: ApiMode) -> anyhow::Result<ApiState> {
    let default_on = mode == ApiMode::Standalone;
    let introspection = core.config.api.introspection.unwrap_or(default_on);
    let graphiql = core.config.api.graphiql.unwrap_or(default_on);
    let secret = orchestrator_core::keys::jwt_secret(&core.config)?;
    let verifier = TokenVerifier::from_config(&core.config, &secret)?;
    let limits = core.config.limits;
    let schema = build_schema(
        core.clone(),
        SchemaOptions {
            introspection,
            limits,
        },
    );
    Ok(ApiState {
        core,
        verifier,
        schema,
        graphiql,
        limiter: std::sync::Arc::new(orchestrator_core::ratelimit::RateLimiter::new(
            limits.rate_per_second,
            limits.rate_burst,
        )),
    })
}

/// The router for `state` (all routes plus CORS).
pub fn app(state: ApiState) -> axum::Router {
    let origins: Vec<http::HeaderValue> = state
        .core
        .config
        .api
        .cors_origins
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    let router = crate::routes::router(state);
    if origins.is_empty() {
        router
    } else {
        router.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([::http::Method::GET, ::http::Method::POST])
                .allow_headers([
                    ::http::header::AUTHORIZATION,
                    ::http::header::CONTENT_TYPE,
                    ::http::HeaderName::from_static("x-api-key"),
                ]),
        )
    }
}
