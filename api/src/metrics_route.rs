//! `/metrics` in the Prometheus (OpenMetrics) text format, and the layer that times every
//! HTTP request, counts it by route and status class, and opens its trace span.
//!
//! Who may read `/metrics`:
//! * on the separate listener `metrics.listen` (`ORCH_METRICS_LISTEN`): anyone who can reach
//!   it; keep that port internal (the cluster network, not the ingress);
//! * on the main port: callers with a bearer token that holds a global role (any of viewer,
//!   operator, admin; mint one with `orchestrator token --role viewer --ttl 365d`), or anyone
//!   when `metrics.public` (`ORCH_METRICS_PUBLIC=true`) is set. Project API keys and
//!   project-scoped tokens are refused: the numbers span every project.

use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orchestrator_core::CoreContext;
use orchestrator_core::auth::TokenVerifier;
use orchestrator_core::metrics;
use orchestrator_core::trace_context::{TraceParent, continue_trace};
use tracing::Instrument;

/// Who may read the metrics of one listener.
#[derive(Clone)]
struct MetricsAccess {
    core: CoreContext,
    /// `None`: everyone; otherwise bearer tokens with a global role, checked by this.
    verifier: Option<TokenVerifier>,
}

/// `/metrics` for anyone (the separate metrics listener).
pub fn open_router(core: CoreContext) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(MetricsAccess {
            core,
            verifier: None,
        })
        .layer(axum::middleware::from_fn(observe))
}

/// `/metrics` on the main port: open when `metrics.public` is set, otherwise for bearer
/// tokens with a global role (see the module doc).
pub fn guarded_router(core: CoreContext, verifier: TokenVerifier) -> Router {
    let verifier = (!core.config.metrics.public).then_some(verifier);
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(MetricsAccess { core, verifier })
}

/// The HTTP surface of a worker process: `/health`, `/ready` and guarded `/metrics`.
pub fn worker_router(core: CoreContext) -> anyhow::Result<Router> {
    let secret = orchestrator_core::keys::jwt_secret(&core.config)?;
    let verifier = TokenVerifier::from_config(&core.config, &secret)?;
    Ok(crate::routes::probe_router(core.clone())
        .merge(guarded_router(core, verifier))
        .layer(axum::middleware::from_fn(observe)))
}

fn refuse(status: StatusCode, message: &'static str) -> Response {
    let mut response = (status, message).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
    }
    response
}

/// `None` when the caller may read; otherwise the refusal.
fn check(verifier: &TokenVerifier, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
    else {
        return Some(refuse(
            StatusCode::UNAUTHORIZED,
            "metrics need `Authorization: Bearer <token>` with a global role, or the metrics listener\n",
        ));
    };
    match verifier.verify(token) {
        Ok(identity) if identity.global_role.is_some() => None,
        Ok(_) => Some(refuse(
            StatusCode::FORBIDDEN,
            "metrics span every project; use a token with a global role\n",
        )),
        Err(err) => {
            tracing::info!(reason = %err, "credentials refused");
            Some(refuse(StatusCode::UNAUTHORIZED, "invalid credentials\n"))
        }
    }
}

async fn serve_metrics(State(access): State<MetricsAccess>, headers: HeaderMap) -> Response {
    if let Some(verifier) = &access.verifier
        && let Some(refusal) = check(verifier, &headers)
    {
        return refusal;
    }
    let body = metrics::render(&access.core).await;
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

/// The route label of a path: one of the product's fixed routes, or `other` (unknown paths
/// must not create series of their own).
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/graphql/ws" => "/graphql/ws",
        "/health" => "/health",
        "/ready" => "/ready",
        "/metrics" => "/metrics",
        p if p == "/board" || p.starts_with("/board/") => "/board",
        _ => "other",
    }
}

/// Middleware: a span per request (continuing the caller's `traceparent`), then the request
/// count and latency by route and status class. Probes and scrapes get debug-level spans, so
/// they stay out of traces at the default level.
pub async fn observe(request: Request, next: Next) -> Response {
    let route = route_label(request.uri().path());
    let method = request.method().clone();
    let span = if matches!(route, "/health" | "/ready" | "/metrics") {
        tracing::debug_span!("http_request", otel.name = %format!("{method} {route}"), otel.kind = "server", http.method = %method, http.route = route, http.status_code = tracing::field::Empty)
    } else {
        tracing::info_span!("http_request", otel.name = %format!("{method} {route}"), otel.kind = "server", http.method = %method, http.route = route, http.status_code = tracing::field::Empty)
    };
    continue_trace(&span, TraceParent::from_headers(request.headers()));
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.status_code", status);
    metrics::observe_http_request(route, status, started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_share_one_route_label() {
        assert_eq!(route_label("/graphql"), "/graphql");
        assert_eq!(route_label("/board/api/queues"), "/board");
        assert_eq!(route_label("/boardroom"), "other");
        assert_eq!(route_label("/wp-admin/x.php"), "other");
    }
}
