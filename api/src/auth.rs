//! Who is calling: credentials from HTTP headers or the websocket `connection_init` payload,
//! verified into an [`Identity`] that resolvers read from the request data.

use async_graphql::Context;
use http::HeaderMap;
use orchestrator_core::ErrorCode;
use orchestrator_core::auth::{Identity, TokenVerifier};

use crate::error::coded;

/// The authentication outcome of one request or websocket connection.
#[derive(Debug, Clone, Default)]
pub struct RequestAuth {
    /// The verified caller, if credentials were given and valid.
    pub identity: Option<Identity>,
}

/// Verifies a bearer token; the reason for a refusal goes to the log, never to the client.
pub fn authenticate_bearer(verifier: &TokenVerifier, value: Option<&str>) -> RequestAuth {
    let Some(value) = value else {
        return RequestAuth::default();
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .unwrap_or("")
        .trim();
    if token.is_empty() {
        tracing::info!(
            reason = "malformed Authorization header",
            "credentials refused"
        );
        return RequestAuth::default();
    }
    match verifier.verify(token) {
        Ok(identity) => RequestAuth {
            identity: Some(identity),
        },
        Err(err) => {
            tracing::info!(reason = %err, "credentials refused");
            RequestAuth::default()
        }
    }
}

/// Credentials from HTTP headers.
pub fn from_headers(verifier: &TokenVerifier, headers: &HeaderMap) -> RequestAuth {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    authenticate_bearer(verifier, value)
}

/// Credentials from a websocket `connection_init` payload (`{"Authorization": "Bearer …"}`).
pub fn from_init_payload(verifier: &TokenVerifier, payload: &serde_json::Value) -> RequestAuth {
    let value = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(|v| v.as_str());
    authenticate_bearer(verifier, value)
}

/// The caller of this request, or `UNAUTHENTICATED`.
pub fn caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Identity> {
    ctx.data_opt::<RequestAuth>()
        .and_then(|auth| auth.identity.as_ref())
        .ok_or_else(|| {
            coded(
                ErrorCode::Unauthenticated,
                "authentication required: send `Authorization: Bearer <token>`",
            )
        })
}
