//! HTTP routes: `/graphql` (POST; GET serves GraphiQL where enabled), `/graphql/ws`,
//! `/health`, `/ready`, `/metrics` and the queue board under `/board`. Every GraphQL request
//! is bounded: body size, batch size, rate per caller and time; every request is traced and
//! counted (see [`crate::metrics_route`]).

use std::net::SocketAddr;

use async_graphql::http::{GraphiQLSource, WebSocketProtocols};
use async_graphql::{BatchRequest, BatchResponse, ErrorExtensionValues};
use axum::Extension;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use orchestrator_core::{CoreContext, ErrorCode};
use serde_json::json;

use crate::auth::from_headers;
use crate::drain::Draining;
use crate::state::ApiState;

/// The client address, when the server was started with connection info (anonymous callers
/// are rate-limited by it).
pub struct PeerAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

fn peer_key(peer: &PeerAddr) -> String {
    match peer.0 {
        Some(ip) => format!("ip:{ip}"),
        None => "ip:unknown".into(),
    }
}

/// Read buffer of one websocket (allocated for every socket; client messages are small, a
/// larger one is read in several steps).
const WS_READ_BUFFER_BYTES: usize = 2 * 1024;
/// Bytes a websocket collects before writing them to the socket (the write loop flushes
/// after every batch anyway).
const WS_WRITE_BUFFER_BYTES: usize = 4 * 1024;

/// Builds the router with every route of the API.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/graphql", get(graphiql).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .with_state(state.clone())
        .merge(crate::metrics_route::guarded_router(
            state.core.clone(),
            state.verifier.clone(),
        ))
        .merge(crate::board::router(state.clone()))
        .merge(probe_router(state.core))
        .layer(axum::middleware::from_fn(crate::metrics_route::observe))
}

/// `/health` (the process answers) and `/ready` (database and queue answer, and the process
/// is not draining); worker processes serve these and `/metrics`.
pub fn probe_router(core: CoreContext) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(core)
}

async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(core): State<CoreContext>, draining: Option<Extension<Draining>>) -> Response {
    if draining.is_some_and(|d| d.is_draining()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response();
    }
    if let Err(err) = orchestrator_core::db::ping(&core.db).await {
        tracing::warn!(error = %format!("{err:#}"), "not ready: database");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "failing": "database" })),
        )
            .into_response();
    }
    if let Err(err) = core.queue.ping().await {
        tracing::warn!(error = %format!("{err:#}"), "not ready: queue");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "failing": "queue" })),
        )
            .into_response();
    }
    Json(json!({ "status": "ready" })).into_response()
}

async fn graphiql(State(state): State<ApiState>) -> Response {
    if !state.graphiql {
        return (
            StatusCode::NOT_FOUND,
            "GraphiQL is disabled; POST GraphQL requests to /graphql\n",
        )
            .into_response();
    }
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
    .into_response()
}

/// A request-level error in GraphQL response shape.
fn request_error(status: StatusCode, code: ErrorCode, message: String) -> Response {
    (
        status,
        Json(
            json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] }),
        ),
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    request_error(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, message)
}

async fn graphql_post(
    State(state): State<ApiState>,
    peer: PeerAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limits = state.core.config.limits;
    let auth = from_headers(&state, &headers).await;
    let rate_key = auth.rate_key.clone().unwrap_or_else(|| peer_key(&peer));
    if !state.limiter.allow(&rate_key) {
        return request_error(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "too many requests; slow down and retry".into(),
        );
    }
    let body = match axum::body::to_bytes(body, limits.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return request_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BadUserInput,
                format!(
                    "the request body is larger than {} bytes",
                    limits.max_body_bytes
                ),
            );
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => {
            return bad_request(format!(
                "the body is not a GraphQL request (JSON with a `query`): {err}"
            ));
        }
    };
    let requests = match &batch {
        BatchRequest::Single(r) => vec![r],
        BatchRequest::Batch(items) => items.iter().collect(),
    };
    if requests.is_empty() {
        return bad_request("an empty batch".into());
    }
    if requests.len() > limits.max_batch {
        return bad_request(format!(
            "a batch may hold at most {} operations, got {}",
            limits.max_batch,
            requests.len()
        ));
    }
    if requests.iter().any(|r| r.query.trim().is_empty()) {
        return bad_request("the request has no `query`".into());
    }
    let execution = state.schema.execute_batch(batch.data(auth));
    let mut response = match tokio::time::timeout(limits.request_timeout, execution).await {
        Ok(response) => response,
        Err(_) => {
            return request_error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                format!(
                    "the request took longer than {} s and was stopped",
                    limits.request_timeout.as_secs()
                ),
            );
        }
    };
    code_request_errors(&mut response);
    Json(response).into_response()
}

/// Errors raised before any resolver ran (syntax, validation, variable coercion, limits)
/// carry no code; they are all the client's doing, so they get `BAD_USER_INPUT`.
fn code_request_errors(response: &mut BatchResponse) {
    let responses: Vec<&mut async_graphql::Response> = match response {
        BatchResponse::Single(r) => vec![r],
        BatchResponse::Batch(rs) => rs.iter_mut().collect(),
    };
    for r in responses {
        for err in &mut r.errors {
            let has_code = err
                .extensions
                .as_ref()
                .is_some_and(|ext| ext.get("code").is_some());
            if !has_code {
                err.extensions
                    .get_or_insert_with(ErrorExtensionValues::default)
                    .set("code", ErrorCode::BadUserInput.as_str());
            }
        }
    }
}

/// True when a browser page from `origin` may open the socket: it is on the CORS allow-list
/// or it is the same host the request went to.
fn origin_allowed(state: &ApiState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|o| o.to_str().ok()) else {
        return true;
    };
    if state
        .core
        .config
        .api
        .cors_origins
        .iter()
        .any(|o| o == origin)
    {
        return true;
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

async fn graphql_ws(
    State(state): State<ApiState>,
    draining: Option<Extension<Draining>>,
    peer: PeerAddr,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = headers
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        })
    else {
        return bad_request(
            "send Sec-WebSocket-Protocol: graphql-transport-ws (or the older graphql-ws)".into(),
        );
    };
    if !origin_allowed(&state, &headers) {
        return request_error(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "this origin may not open a websocket here".into(),
        );
    }
    if !state.limiter.allow(&peer_key(&peer)) {
        return request_error(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "too many requests; slow down and retry".into(),
        );
    }
    let max_message = state.core.config.limits.max_body_bytes;
    // Small per-socket buffers: a subscriber mostly idles, and thousands of them share a process.
    ws.protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(WS_WRITE_BUFFER_BYTES)
        .max_message_size(max_message)
        .on_upgrade(move |socket| crate::ws::serve(socket, state, protocol, draining.map(|d| d.0)))
        .into_response()
}
