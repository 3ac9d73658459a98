//! The queue board under `/board`, for global admins only, read-only: the apalis board web
//! UI and the apalis board API over the engine's queues.
//!
//! * `GET /board`, `/board/…` — the apalis-board web app (built for `/board`, see
//!   `api/board-ui/`), its assets under `/board/assets/`.
//! * `GET /board/api/v1/…` — the apalis-board HTTP API it reads, same paths and JSON:
//!   `queues`, `overview`, `tasks`, `workers`, `events`, and per queue
//!   `queues/{queue}/tasks`, `…/stats`, `…/workers`, `…/tasks/{id}`.
//!
//! The API is this module's own implementation over [`orchestrator_core::queue::inspect`],
//! not `apalis-board-api`'s: over apalis-redis 1.0 that crate's listing misses every job still
//! in `<queue>:scheduled` (where pushes land) and its queue list fails to parse. Pushing tasks
//! (`PUT …/tasks`) is not offered: jobs come from executions. `events` (task log lines of
//! the process serving the board) stays silent, since stages run in worker processes; their
//! log lines are in the `executionLogs` subscription.
//!
//! Credentials: `Authorization: Bearer <token>` whose global role is admin, or the same token
//! in the `orchestrator_board` cookie, which `POST /board/login` (a form with `token`) sets
//! for browsers. Project API keys and project-scoped tokens get 403: the queue spans every
//! project.

mod api;
mod ui;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use orchestrator_entity::Role;
use serde::Deserialize;
use serde_json::json;

use crate::state::ApiState;

/// The cookie that carries a browser's token.
pub const COOKIE: &str = "orchestrator_board";

/// How long a browser keeps the board cookie; the token's own expiry still applies.
const COOKIE_MAX_AGE_SECS: u64 = 8 * 3600;

const LOGIN_PAGE: &str = include_str!("login.html");

/// The `/board` routes.
pub fn router(state: ApiState) -> Router {
    let admin_only = Router::new()
        .route("/board", get(ui::page))
        .route("/board/", get(ui::page))
        .route("/board/assets/{file}", get(ui::asset))
        .nest("/board/api/v1", api::router())
        .route("/board/api/{*rest}", get(api::unknown))
        .route("/board/{*route}", get(ui::page))
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
