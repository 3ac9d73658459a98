//! The queue board under `/board`, for global admins only, read-only: what waits in each
//! queue and for how long, the recent jobs, the queue worker processes and the remote workers.
//!
//! * `GET /board` — one HTML page that reads the JSON below and refreshes itself.
//! * `GET /board/api/queues` — `[{ queue, depth, oldestAgeSeconds }]` per priority queue.
//! * `GET /board/api/jobs?limit=N` — the N (default 50, at most 500) most recent jobs:
//!   `{ id, queue, state, attempts, runAt, doneAt, worker, payload }`.
//! * `GET /board/api/processes` — queue worker processes and their last heartbeat.
//! * `GET /board/api/workers` — the remote-worker registry of every project.
//!
//! The apalis board (`apalis-board` 1.0) is not used: its web UI is compiled for the site
//! root (`/` and `/api/v1`), and over apalis-redis 1.0 its queue listing fails and its job
//! listing misses every job still in `<queue>:scheduled`, where pushes land.
//!
//! Credentials: `Authorization: Bearer <token>` whose global role is admin, or the same token
//! in the `orchestrator_board` cookie, which `POST /board/login` (a form with `token`) sets
//! for browsers. Project API keys and project-scoped tokens get 403: the queue spans every
//! project.

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use orchestrator_core::jobs::RunStage;
use orchestrator_entity::{Role, projects, workers};
use sea_orm::{EntityTrait, QueryOrder};
use serde::Deserialize;
use serde_json::json;

use crate::state::ApiState;

/// The cookie that carries a browser's token.
pub const COOKIE: &str = "orchestrator_board";

/// How long a browser keeps the board cookie; the token's own expiry still applies.
const COOKIE_MAX_AGE_SECS: u64 = 8 * 3600;

const PAGE: &str = include_str!("board_page.html");
const LOGIN_PAGE: &str = include_str!("board_login.html");

/// The `/board` routes.
pub fn router(state: ApiState) -> Router {
    let admin_only = Router::new()
        .route("/board", get(page))
        .route("/board/api/queues", get(queues))
        .route("/board/api/jobs", get(jobs))
        .route("/board/api/processes", get(processes))
        .route("/board/api/workers", get(remote_workers))
        .layer(from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/board/login", get(login_page).post(login))
        .route("/board/logout", post(logout))
        .merge(admin_only)
        .with_state(state)
}

/// The token in the board cookie, if any.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then(|| value.to_string())
        })
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn refusal(status: StatusCode, message: &str, headers: &HeaderMap) -> Response {
    if wants_html(headers) {
        let body = LOGIN_PAGE.replace("{message}", message);
        return (status, Html(body)).into_response();
    }
    (status, Json(json!({ "error": message }))).into_response()
}

async fn require_admin(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| cookie_token(headers).map(|t| format!("Bearer {t}")));
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let auth = crate::auth::authenticate(&state, bearer.as_deref(), api_key).await;
    match &auth.identity {
        Some(identity) if identity.is_global(Role::Admin) => next.run(request).await,
        Some(_) => refusal(
            StatusCode::FORBIDDEN,
            "the queue board is for global admins: the queues span every project",
            headers,
        ),
        None if auth.refused => refusal(
            StatusCode::UNAUTHORIZED,
            "invalid or expired credentials",
            headers,
        ),
        None => refusal(
            StatusCode::UNAUTHORIZED,
            "sign in with an admin token",
            headers,
        ),
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn login_page() -> Html<String> {
    Html(LOGIN_PAGE.replace("{message}", "sign in with an admin token"))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// Checks the token and keeps it in the board cookie.
async fn login(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let token = form.token.trim();
    match state.verifier.verify(token) {
        Ok(identity) if identity.is_global(Role::Admin) => {}
        Ok(_) => {
            return refusal(
                StatusCode::FORBIDDEN,
                "the queue board is for global admins: the queues span every project",
                &headers,
            );
        }
        Err(err) => {
            tracing::info!(reason = %err, "credentials refused");
            return refusal(
                StatusCode::UNAUTHORIZED,
                "invalid or expired token",
                &headers,
            );
        }
    }
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={token}; Path=/board; Max-Age={COOKIE_MAX_AGE_SECS}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to("/board").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout() -> Response {
    let mut response = Redirect::to("/board/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "orchestrator_board=; Path=/board; Max-Age=0; HttpOnly; SameSite=Strict",
        ),
    );
    response
}

async fn queues(State(state): State<ApiState>) -> Response {
    match state.core.queue.backlog::<RunStage>().await {
        Ok(queues) => Json(
            queues
                .into_iter()
                .map(|(queue, waiting)| {
                    json!({
                        "queue": queue,
                        "depth": waiting.depth,
                        "oldestAgeSeconds": waiting.oldest_age.map(|a| a.as_secs_f64()),
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(err) => internal(err),
    }
}

/// Most jobs one `/board/api/jobs` answer lists.
const MAX_JOBS: u32 = 500;

#[derive(Deserialize)]
struct JobsQuery {
    limit: Option<u32>,
}

async fn jobs(State(state): State<ApiState>, Query(query): Query<JobsQuery>) -> Response {
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_JOBS);
    match state.core.queue.recent_jobs::<RunStage>(limit).await {
        Ok(jobs) => Json(jobs).into_response(),
        Err(err) => internal(err),
    }
}

async fn processes(State(state): State<ApiState>) -> Response {
    match state.core.queue.queue_workers::<RunStage>().await {
        Ok(workers) => Json(workers).into_response(),
        Err(err) => internal(err),
    }
}

async fn remote_workers(State(state): State<ApiState>) -> Response {
    let db = &state.core.db;
    let rows = match workers::Entity::find()
        .order_by_asc(workers::Column::Name)
        .all(db)
        .await
    {
        Ok(rows) => rows,
        Err(err) => return internal(err.into()),
    };
    let slugs: std::collections::HashMap<uuid::Uuid, String> =
        match projects::Entity::find().all(db).await {
            Ok(all) => all.into_iter().map(|p| (p.id, p.slug)).collect(),
            Err(err) => return internal(err.into()),
        };
    Json(
        rows.into_iter()
            .map(|w| {
                json!({
                    "id": w.id,
                    "project": slugs.get(&w.project_id),
                    "name": w.name,
                    "url": w.url,
                    "capabilities": w.capabilities,
                    "health": w.health_status,
                    "healthMessage": w.health_message,
                    "activeStages": w.active_stages,
                    "maxConcurrent": w.max_concurrent,
                    "lastSeenAt": w.last_seen_at,
                    "deregisteredAt": w.deregistered_at,
                })
            })
            .collect::<Vec<_>>(),
    )
    .into_response()
}

fn internal(err: anyhow::Error) -> Response {
    let id = uuid::Uuid::new_v4();
    tracing::error!(error_id = %id, error = %format!("{err:#}"), "queue board read failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": format!("internal error (id {id})") })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; orchestrator_board=tok; b=2"),
        );
        assert_eq!(cookie_token(&headers).as_deref(), Some("tok"));
        let mut empty = HeaderMap::new();
        empty.append(
            header::COOKIE,
            HeaderValue::from_static("orchestrator_board="),
        );
        assert_eq!(cookie_token(&empty), None);
    }
}
