//! Bearer tokens: the claims the product understands, minting (for `orchestrator token`) and
//! verification into an [`Identity`] that every request carries.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;

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

/// RSA public keys for RS256 tokens.
#[derive(Clone)]
enum RsaKeys {
    /// One key from a PEM file; any `kid` is accepted.
    Single(DecodingKey),
    /// Keys from a JWKS file, chosen by the token's `kid`.
    Set(HashMap<String, DecodingKey>),
}

/// Verifies bearer tokens: HS256 with the configured secret, and RS256 when an RSA public key
/// (PEM or JWKS) is configured. Each algorithm is pinned to its own key; anything else
/// (including `alg: none`) is refused.
#[derive(Clone)]
pub struct TokenVerifier {
    hs_key: DecodingKey,
    hs_validation: Validation,
    rsa: Option<(RsaKeys, Validation)>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("rs256", &self.rsa.is_some())
            .finish_non_exhaustive()
    }
}

fn validation(alg: Algorithm, issuer: Option<&str>, audience: Option<&str>) -> Validation {
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
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
    validation
}

impl TokenVerifier {
    /// An HS256 verifier. `issuer`/`audience`, when given, must match the token's claims.
    pub fn hs256(secret: &Secret, issuer: Option<&str>, audience: Option<&str>) -> Self {
        TokenVerifier {
            hs_key: DecodingKey::from_secret(secret.expose().as_bytes()),
            hs_validation: validation(Algorithm::HS256, issuer, audience),
            rsa: None,
        }
    }

    /// Also accepts RS256 tokens signed by the private half of this PEM public key.
    pub fn with_rsa_pem(
        mut self,
        pem: &[u8],
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> anyhow::Result<Self> {
        let key = DecodingKey::from_rsa_pem(pem).context("not an RSA public key in PEM form")?;
        self.rsa = Some((
            RsaKeys::Single(key),
            validation(Algorithm::RS256, issuer, audience),
        ));
        Ok(self)
    }

    /// Also accepts RS256 tokens signed by a key of this JWKS document (chosen by `kid`).
    pub fn with_jwks(
        mut self,
        jwks: &str,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> anyhow::Result<Self> {
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(jwks).context("not a JWKS document")?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, key);
            }
        }
        anyhow::ensure!(
            !keys.is_empty(),
            "the JWKS document has no usable key with a `kid`"
        );
        self.rsa = Some((
            RsaKeys::Set(keys),
            validation(Algorithm::RS256, issuer, audience),
        ));
        Ok(self)
    }

    /// Builds the verifier the configuration describes.
    pub fn from_config(config: &crate::config::Config, secret: &Secret) -> anyhow::Result<Self> {
        let auth = &config.auth;
        let (iss, aud) = (auth.jwt_issuer.as_deref(), auth.jwt_audience.as_deref());
        let mut verifier = TokenVerifier::hs256(secret, iss, aud);
        if let Some(path) = &auth.jwt_public_key_file {
            let pem = std::fs::read(path).with_context(|| {
                format!("auth.jwt_public_key_file: cannot read {}", path.display())
            })?;
            verifier = verifier
                .with_rsa_pem(&pem, iss, aud)
                .with_context(|| format!("auth.jwt_public_key_file: {}", path.display()))?;
        }
        if let Some(path) = &auth.jwks_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("auth.jwks_file: cannot read {}", path.display()))?;
            verifier = verifier
                .with_jwks(&text, iss, aud)
                .with_context(|| format!("auth.jwks_file: {}", path.display()))?;
        }
        Ok(verifier)
    }

    /// Verifies the token and turns its claims into an [`Identity`].
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let header = jsonwebtoken::decode_header(token)?;
        let data = match header.alg {
            Algorithm::HS256 => {
                jsonwebtoken::decode::<Claims>(token, &self.hs_key, &self.hs_validation)?
            }
            Algorithm::RS256 => {
                let Some((keys, validation)) = &self.rsa else {
                    return Err(TokenError::BadClaims(
                        "RS256 tokens are not configured".into(),
                    ));
                };
                let key = match keys {
                    RsaKeys::Single(key) => key,
                    RsaKeys::Set(keys) => header
                        .kid
                        .as_ref()
                        .and_then(|kid| keys.get(kid))
                        .ok_or_else(|| TokenError::BadClaims("unknown or missing kid".into()))?,
                };
                jsonwebtoken::decode::<Claims>(token, key, validation)?
            }
            other => {
                return Err(TokenError::BadClaims(format!(
                    "algorithm {other:?} is not accepted"
                )));
            }
        };
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
