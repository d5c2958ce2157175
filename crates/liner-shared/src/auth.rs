//! Token verification shared by every service that accepts a bearer token.
//!
//! Tokens are EdDSA (Ed25519) JWTs issued by the review service. Anyone verifies them
//! from the public half only, published as a JWKS, so no service holds a shared secret.
//! The verifier pins the algorithm to EdDSA: `alg: none`, HS256 signed with the public
//! key, or a token from any other key all fail the same way (401).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Issuer claim written into and required from every token.
pub const ISSUER: &str = "liner";

/// What a Liner token asserts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Username at issue time (lets chat work when the review service is down).
    #[serde(default)]
    pub name: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

/// One Ed25519 public key as a JWK (RFC 8037).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl Jwk {
    /// The JWK of a raw 32-byte Ed25519 public key; the kid is derived from the key itself.
    pub fn ed25519(public_key: &[u8; 32]) -> Self {
        let x = URL_SAFE_NO_PAD.encode(public_key);
        let kid = format!("ed25519-{}", &x[..11]);
        Self { kty: "OKP".into(), crv: "Ed25519".into(), x, kid, alg: Some("EdDSA".into()), use_: Some("sig".into()) }
    }
}

/// Why a token was refused. Every variant answers 401; the detail is for logs only.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("unknown signing key")]
    UnknownKey,
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        tracing::debug!(error = %e, "token refused");
        match e {
            AuthError::Missing => ApiError::unauthorized("missing bearer token"),
            _ => ApiError::unauthorized("invalid or expired token"),
        }
    }
}

/// How many verified tokens to remember before starting over.
const MAX_CACHED_TOKENS: usize = 50_000;

/// Checks tokens against a set of public keys, optionally refreshed from a JWKS URL
/// when a token names a key it does not know (key rotation), at most every 10 s.
pub struct Verifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// Tokens already verified, by their exact text, honoured until their `exp`.
    /// A signature check costs ~60 µs; a client sends the same token with every request.
    verified: std::sync::Mutex<HashMap<String, Claims>>,
    jwks_url: Option<String>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    validation: Validation,
}

impl Verifier {
    fn with_source(jwks_url: Option<String>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        // A token is not accepted before its `nbf` (when it has one), nor after its `exp`.
        validation.validate_nbf = true;
        Self {
            keys: RwLock::new(HashMap::new()),
            verified: std::sync::Mutex::new(HashMap::new()),
            jwks_url,
            last_fetch: tokio::sync::Mutex::new(None),
            validation,
        }
    }

    /// A verifier for a fixed key set (the issuer itself, or tests).
    pub fn from_jwks(set: &JwkSet) -> Result<Self, AuthError> {
        let v = Self::with_source(None);
        v.install(set)?;
        Ok(v)
    }

    /// A verifier that fetches its keys from `url` on first use and on unknown kids.
    pub fn remote(url: impl Into<String>) -> Self {
        Self::with_source(Some(url.into()))
    }

    fn install(&self, set: &JwkSet) -> Result<(), AuthError> {
        let mut map = HashMap::new();
        for jwk in set.keys.iter().filter(|k| k.kty == "OKP" && k.crv == "Ed25519") {
            let key = DecodingKey::from_ed_components(&jwk.x).map_err(|e| AuthError::Invalid(e.to_string()))?;
            map.insert(jwk.kid.clone(), key);
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = map;
        // A new key set may drop a key: forget what was verified under the old one.
        self.verified.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(())
    }

    async fn refresh(&self) -> Result<(), AuthError> {
        let Some(url) = &self.jwks_url else { return Err(AuthError::UnknownKey) };
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
            return Err(AuthError::UnknownKey);
        }
        *last = Some(Instant::now());
        let set = fetch_jwks(url).await.map_err(|e| {
            tracing::warn!(%url, error = %e, "JWKS fetch failed");
            AuthError::UnknownKey
        })?;
        self.install(&set)
    }

    fn decoding_key(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        match kid {
            Some(kid) => keys.get(kid).cloned(),
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    /// Verifies signature, algorithm, issuer and expiry; returns the claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if let Some(claims) = self.cached(token) {
            return Ok(claims);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid(format!("algorithm {:?} not accepted", header.alg)));
        }
        let kid = header.kid.as_deref();
        let key = match self.decoding_key(kid) {
            Some(k) => k,
            None => {
                // A refused refresh (another caller fetched moments ago) may still have
                // installed the key we need: look again either way.
                let refreshed = self.refresh().await;
                match self.decoding_key(kid) {
                    Some(k) => k,
                    None => return Err(refreshed.err().unwrap_or(AuthError::UnknownKey)),
                }
            }
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= MAX_CACHED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_owned(), data.claims.clone());
        Ok(data.claims)
    }

    fn cached(&self, token: &str) -> Option<Claims> {
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let claims = verified.get(token)?;
        (claims.exp > crate::now_millis() / 1000).then(|| claims.clone())
    }
}

async fn fetch_jwks(url: &str) -> anyhow::Result<JwkSet> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?;
    let res = client.get(url).send().await?.error_for_status()?;
    Ok(res.json::<JwkSet>().await?)
}

/// The bearer token of a request: `Authorization: Bearer …`, or `?token=` when
/// `allow_query` (browsers cannot set headers on a WebSocket).
pub fn bearer_token(parts: &Parts, allow_query: bool) -> Option<String> {
    if let Some(value) = parts.headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    if allow_query {
        let query = parts.uri.query()?;
        return query.split('&').find_map(|pair| pair.strip_prefix("token=").map(percent_decode));
    }
    None
}

fn percent_decode(s: &str) -> String {
    // JWTs are base64url + dots: nothing needs decoding in a well-formed token, but a
    // client may still escape; decode the few characters that matter.
    s.replace("%2E", ".").replace("%2e", ".").replace("%2D", "-").replace("%5F", "_")
}

/// An authenticated caller. Extracting it answers 401 when the token is missing or bad.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Claims);

impl AuthUser {
    pub fn id(&self) -> &str {
        &self.0.sub
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts, false).ok_or(AuthError::Missing)?;
        let verifier = Arc::<Verifier>::from_ref(state);
        Ok(AuthUser(verifier.verify(&token).await?))
    }
}

/// A caller who may or may not be authenticated; a present but bad token is still 401.
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<Claims>);

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match bearer_token(parts, false) {
            None => Ok(MaybeAuthUser(None)),
            Some(token) => {
                let verifier = Arc::<Verifier>::from_ref(state);
                Ok(MaybeAuthUser(Some(verifier.verify(&token).await?)))
            }
        }
    }
}
