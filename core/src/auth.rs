//! Bearer tokens: the claims the product understands, minting (for `orchestrator token`) and
//! verification into an [`Identity`] that every request carries.

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use orchestrator_entity::Role;

use crate::config::Secret;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The claims of a bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token speaks for (a user name, a service name).
    pub sub: String,
    /// Expiry, seconds since the epoch. Required.
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// A role over every project (`admin`, `operator`, `viewer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Roles per project slug.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub projects: BTreeMap<String, String>,
}

/// Who is calling, and what they may do where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token subject (or API key name).
    pub subject: String,
    /// A role that spans every project.
    pub global_role: Option<Role>,
    /// Roles per project slug.
    pub project_roles: BTreeMap<String, Role>,
}

impl Identity {
    /// The caller's effective role in the project with this slug, if any.
    pub fn role_in(&self, project_slug: &str) -> Option<Role> {
        let scoped = self.project_roles.get(project_slug).copied();
        match (self.global_role, scoped) {
            (Some(a), Some(b)) => Some(if a.allows(b) { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// True when the caller may act on every project with at least `role`.
    pub fn is_global(&self, role: Role) -> bool {
        self.global_role.is_some_and(|r| r.allows(role))
    }
}

/// Why a token was refused. Logged, never sent to the client.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("token rejected: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("token claims are invalid: {0}")]
    BadClaims(String),
}

/// Verifies bearer tokens with the configured key and checks.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// An HS256 verifier. `issuer`/`audience`, when given, must match the token's claims.
    pub fn hs256(secret: &Secret, issuer: Option<&str>, audience: Option<&str>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
        }
        TokenVerifier {
            key: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    /// Verifies the token and turns its claims into an [`Identity`].
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)?;
        identity_from_claims(data.claims)
    }
}

fn identity_from_claims(claims: Claims) -> Result<Identity, TokenError> {
    if claims.sub.trim().is_empty() {
        return Err(TokenError::BadClaims("empty sub".into()));
    }
    let global_role = claims
        .role
        .as_deref()
        .map(|r| {
            r.parse::<Role>()
                .map_err(|_| TokenError::BadClaims(format!("unknown role {r:?}")))
        })
        .transpose()?;
    let mut project_roles = BTreeMap::new();
    for (slug, role) in claims.projects {
        let role = role
            .parse::<Role>()
            .map_err(|_| TokenError::BadClaims(format!("unknown role {role:?} for {slug:?}")))?;
        project_roles.insert(slug, role);
    }
    if global_role.is_none() && project_roles.is_empty() {
        return Err(TokenError::BadClaims("neither role nor projects".into()));
    }
    Ok(Identity {
        subject: claims.sub,
        global_role,
        project_roles,
    })
}

/// Signs `claims` with HS256 (for `orchestrator token`).
pub fn mint_hs256(secret: &Secret, claims: &Claims) -> anyhow::Result<String> {
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )?)
}
