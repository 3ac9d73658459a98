//! Who is calling: credentials from HTTP headers (`Authorization: Bearer …` or `X-API-Key`)
//! or the websocket `connection_init` payload, verified into an [`Identity`] that resolvers
//! read from the request data. Why credentials were refused goes to the log only.

use async_graphql::Context;
use http::HeaderMap;
use orchestrator_core::ErrorCode;
use orchestrator_core::auth::Identity;

use crate::error::coded;
use crate::state::ApiState;

/// The authentication outcome of one request or websocket connection.
#[derive(Debug, Clone, Default)]
pub struct RequestAuth {
    /// The verified caller, if credentials were given and valid.
    pub identity: Option<Identity>,
    /// Credentials were presented but refused.
    pub refused: bool,
    /// Key of the caller's rate-limit bucket (API key, token subject), if authenticated.
    pub rate_key: Option<String>,
}

impl RequestAuth {
    fn refused(reason: &str) -> Self {
        tracing::info!(reason, "credentials refused");
        RequestAuth {
            identity: None,
            refused: true,
            rate_key: None,
        }
    }
}

/// Verifies a bearer token or an API key, whichever is given (the token wins).
pub async fn authenticate(
    state: &ApiState,
    bearer: Option<&str>,
    api_key: Option<&str>,
) -> RequestAuth {
    if let Some(value) = bearer {
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or("")
            .trim();
        if token.is_empty() {
            return RequestAuth::refused("malformed Authorization header");
        }
        return match state.verifier.verify(token) {
            Ok(identity) => RequestAuth {
                rate_key: Some(format!("sub:{}", identity.subject)),
                identity: Some(identity),
                refused: false,
            },
            Err(err) => RequestAuth::refused(&err.to_string()),
        };
    }
    if let Some(key) = api_key {
        return match orchestrator_core::api_keys::authenticate(&state.core, key.trim()).await {
            Ok(Some((identity, key_id))) => RequestAuth {
                identity: Some(identity),
                refused: false,
                rate_key: Some(format!("key:{key_id}")),
            },
            Ok(None) => RequestAuth::refused("unknown or revoked API key"),
            Err(err) => {
                tracing::error!(error = %err, "API key lookup failed");
                RequestAuth::refused("API key lookup failed")
            }
        };
    }
    RequestAuth::default()
}

/// Credentials from HTTP headers.
pub async fn from_headers(state: &ApiState, headers: &HeaderMap) -> RequestAuth {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    authenticate(state, bearer, api_key).await
}

/// Credentials from a websocket `connection_init` payload
/// (`{"Authorization": "Bearer …"}` or `{"apiKey": "…"}`).
pub async fn from_init_payload(state: &ApiState, payload: &serde_json::Value) -> RequestAuth {
    let bearer = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(|v| v.as_str());
    let api_key = payload
        .get("apiKey")
        .or_else(|| payload.get("X-API-Key"))
        .and_then(|v| v.as_str());
    authenticate(state, bearer, api_key).await
}

/// The caller of this request, or `UNAUTHENTICATED`.
pub fn caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Identity> {
    ctx.data_opt::<RequestAuth>()
        .and_then(|auth| auth.identity.as_ref())
        .ok_or_else(|| {
            coded(
                ErrorCode::Unauthenticated,
                "authentication required: send `Authorization: Bearer <token>` or `X-API-Key`",
            )
        })
}
