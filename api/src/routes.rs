//! HTTP routes: `/graphql` (POST; GET serves GraphiQL where enabled), `/graphql/ws`,
//! `/health` and `/ready`.

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql::{BatchRequest, BatchResponse, Data, ErrorExtensionValues};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use orchestrator_core::{CoreContext, ErrorCode};
use serde_json::json;

use crate::auth::{RequestAuth, from_headers, from_init_payload};
use crate::state::ApiState;

/// Largest request body accepted on `/graphql`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest number of operations in one batched request.
pub const MAX_BATCH: usize = 10;

/// Builds the router with every route of the API.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/graphql", get(graphiql).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state.clone())
        .merge(probe_router(state.core))
}

/// `/health` (the process answers) and `/ready` (database and queue answer); worker
/// processes serve only these.
pub fn probe_router(core: CoreContext) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(core)
}

async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(core): State<CoreContext>) -> Response {
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

async fn graphql_post(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                format!("the body is not a GraphQL request (JSON with a `query`): {err}"),
            );
        }
    };
    let missing_query = match &batch {
        BatchRequest::Single(r) => r.query.trim().is_empty(),
        BatchRequest::Batch(items) => items.iter().any(|r| r.query.trim().is_empty()),
    };
    if missing_query {
        return request_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            "the request has no `query`".into(),
        );
    }
    if let BatchRequest::Batch(items) = &batch {
        if items.len() > MAX_BATCH {
            return request_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                format!(
                    "a batch may hold at most {MAX_BATCH} operations, got {}",
                    items.len()
                ),
            );
        }
        if items.is_empty() {
            return request_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "an empty batch".into(),
            );
        }
    }
    let auth = from_headers(&state.verifier, &headers);
    let mut response = state.schema.execute_batch(batch.data(auth)).await;
    code_request_errors(&mut response);
    Json(response).into_response()
}

/// Errors raised before any resolver ran (syntax, validation, variable coercion) carry no
/// code; they are all the client's doing, so they get `BAD_USER_INPUT`.
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

async fn graphql_ws(
    State(state): State<ApiState>,
    protocol: GraphQLProtocol,
    ws: WebSocketUpgrade,
) -> Response {
    let schema = state.schema.clone();
    let verifier = state.verifier.clone();
    ws.protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| {
                    let auth: RequestAuth = from_init_payload(&verifier, &payload);
                    async move {
                        let mut data = Data::default();
                        data.insert(auth);
                        Ok(data)
                    }
                })
                .serve()
        })
        .into_response()
}
