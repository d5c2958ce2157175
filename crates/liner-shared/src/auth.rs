//! Token verification shared by every service that accepts a bearer token.
//!
//! Tokens are EdDSA (Ed25519) JWTs issued by the review service. Anyone verifies them
//! from the public half only, published as a JWKS, so no service holds a shared secret.
//! The verifier pins the algorithm to EdDSA: `alg: none`, HS256 signed with the public
//! key, or a token from any other key all fail the same way (401).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::{FromRef, FromRequestParts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::tls::PeerClient;

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

/// Why a token was refused: 401, except when no key could be had at all (503, the
/// token may well be good). The detail is for logs only.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("unknown signing key")]
    UnknownKey,
    #[error("no signing key could be fetched")]
    KeysUnavailable,
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        tracing::debug!(error = %e, "token refused");
        match e {
            AuthError::Missing => ApiError::unauthorized("missing bearer token"),
            AuthError::KeysUnavailable => {
                ApiError { retry_after: Some(1), ..ApiError::unavailable("cannot verify tokens right now") }
            }
            _ => ApiError::unauthorized("invalid or expired token"),
        }
    }
}

/// How many verified tokens to remember before starting over.
const MAX_CACHED_TOKENS: usize = 50_000;
/// With keys in hand, a token naming an unknown key refetches at most this often.
const REFETCH_EVERY: Duration = Duration::from_secs(5);
/// Without any key, fetches are retried at most this often (a flood of requests
/// cannot queue on a slow issuer).
const RETRY_EVERY: Duration = Duration::from_secs(1);
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// At most this many JWKS documents are fetched at once.
const MAX_SOURCES_FETCHED: usize = 8;

/// The review service's JWKS, relative to an instance's base URL.
pub const REVIEW_JWKS_PATH: &str = "/api/users-reviews/.well-known/jwks.json";

/// Where a verifier's keys come from: the JWKS documents it trusts right now.
///
/// In a cluster these are the registered review instances (only holders of the
/// registry's secret can register), so a key is trusted while its instance is
/// registered and stops verifying the moment the instance leaves.
pub trait KeySource: Send + Sync + 'static {
    /// Every JWKS URL whose keys are trusted now.
    fn trusted(&self) -> Vec<String>;
    /// The URLs to fetch from now (e.g. only instances that answer); default: all trusted.
    fn to_fetch(&self) -> Vec<String> {
        self.trusted()
    }
    /// Changes whenever `trusted` may have changed; 0 for a source that never does.
    fn generation(&self) -> u64 {
        0
    }
}

/// One fixed JWKS URL (`--jwks-url`).
pub struct FixedJwksUrl(pub String);

impl KeySource for FixedJwksUrl {
    fn trusted(&self) -> Vec<String> {
        vec![self.0.clone()]
    }
}

/// The keys in use: each source's keys, the decoding keys over their union, the source
/// generation they were checked against, and the tokens verified with them (a new set
/// starts with an empty cache, so a dropped key's tokens stop passing at once).
struct KeySet {
    by_source: Vec<(String, Vec<Jwk>)>,
    decoding: HashMap<String, DecodingKey>,
    generation: u64,
    verified: std::sync::Mutex<HashMap<String, Claims>>,
}

impl KeySet {
    fn new(by_source: Vec<(String, Vec<Jwk>)>, generation: u64) -> Result<Self, AuthError> {
        let mut decoding = HashMap::new();
        for jwk in by_source.iter().flat_map(|(_, keys)| keys).filter(|k| k.kty == "OKP" && k.crv == "Ed25519") {
            let key = DecodingKey::from_ed_components(&jwk.x).map_err(|e| AuthError::Invalid(e.to_string()))?;
            decoding.insert(jwk.kid.clone(), key);
        }
        Ok(Self { by_source, decoding, generation, verified: Default::default() })
    }

    fn decoding_key(&self, kid: Option<&str>) -> Option<&DecodingKey> {
        match kid {
            Some(kid) => self.decoding.get(kid),
            None if self.decoding.len() == 1 => self.decoding.values().next(),
            None => None,
        }
    }

    fn cached(&self, token: &str) -> Option<Claims> {
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let claims = verified.get(token)?;
        (claims.exp > crate::now_millis() / 1000).then(|| claims.clone())
    }

    fn remember(&self, token: &str, claims: &Claims) {
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= MAX_CACHED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_owned(), claims.clone());
    }
}

/// Checks tokens against public keys: a fixed set (the issuer itself), or keys fetched
/// from a [`KeySource`] on first use and when a token names a key not seen yet (key
/// rotation), rate-limited. The one JWKS refresher of the code base: the gateway's
/// edge auth, the forum and the catalogue all verify through it.
///
/// Keys are kept per source. When the source changes (an instance left), the keys of
/// sources no longer trusted are dropped before the next check; a source that fails
/// to answer a refetch keeps its keys while it is still trusted. With no key at all
/// (the issuer cannot be reached) verification fails with
/// [`AuthError::KeysUnavailable`] (503): a valid token is never refused with 401
/// because the issuer is briefly away.
pub struct Verifier {
    source: Option<Arc<dyn KeySource>>,
    keys: ArcSwap<KeySet>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// Fetches the key sets; over TLS when the sources are `https://` (`crate::tls`).
    client: PeerClient,
    validation: Validation,
}

impl Verifier {
    fn with(source: Option<Arc<dyn KeySource>>, keys: KeySet, client: PeerClient) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        // A token is not accepted before its `nbf` (when it has one), nor after its `exp`.
        validation.validate_nbf = true;
        Self { source, keys: ArcSwap::from_pointee(keys), last_fetch: Default::default(), client, validation }
    }

    /// A verifier for a fixed key set (the issuer itself, or tests).
    pub fn from_jwks(set: &JwkSet) -> Result<Self, AuthError> {
        Ok(Self::with(None, KeySet::new(vec![(String::new(), set.keys.clone())], 0)?, PeerClient::default()))
    }

    /// A verifier that fetches its keys from `url` on first use and on unknown kids.
    pub fn remote(url: impl Into<String>, client: PeerClient) -> Self {
        Self::from_source(Arc::new(FixedJwksUrl(url.into())), client)
    }

    /// A verifier that trusts the keys `source` lists, fetched with `client`.
    pub fn from_source(source: Arc<dyn KeySource>, client: PeerClient) -> Self {
        Self::with(
            Some(source),
            KeySet { by_source: Vec::new(), decoding: HashMap::new(), generation: 0, verified: Default::default() },
            client,
        )
    }

    /// Verifies signature, algorithm, issuer, expiry and `nbf`; returns the claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.drop_departed();
        if let Some(claims) = self.keys.load().cached(token) {
            return Ok(claims);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid(format!("algorithm {:?} not accepted", header.alg)));
        }
        let kid = header.kid.as_deref();
        let mut keys = self.keys.load_full();
        if keys.decoding_key(kid).is_none() {
            // Maybe the issuer rotated its key, or nothing was fetched yet. A refused
            // refresh (another caller fetched moments ago) may still have installed
            // the key: look again either way.
            self.refresh().await;
            keys = self.keys.load_full();
        }
        let Some(key) = keys.decoding_key(kid) else {
            return Err(if keys.decoding.is_empty() { AuthError::KeysUnavailable } else { AuthError::UnknownKey });
        };
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        keys.remember(token, &data.claims);
        Ok(data.claims)
    }

    /// Fetches keys until it has some (startup), so the first requests need not wait.
    pub async fn prefetch_until(&self, token: tokio_util::sync::CancellationToken) {
        while self.keys.load().decoding.is_empty() {
            self.refresh().await;
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(RETRY_EVERY) => {}
            }
        }
    }

    /// Drops the keys of sources that are no longer trusted, once the source changed.
    fn drop_departed(&self) {
        let Some(source) = &self.source else { return };
        let generation = source.generation();
        let keys = self.keys.load_full();
        if keys.generation == generation {
            return;
        }
        let trusted = source.trusted();
        let kept: Vec<(String, Vec<Jwk>)> =
            keys.by_source.iter().filter(|(url, _)| trusted.contains(url)).cloned().collect();
        let next = if kept.len() == keys.by_source.len() {
            // Nothing left: keep the keys and their cache, at the new generation.
            KeySet { by_source: kept, decoding: keys.decoding.clone(), generation, verified: Default::default() }
        } else {
            tracing::info!(left = keys.by_source.len() - kept.len(), "keys of departed JWKS sources dropped");
            match KeySet::new(kept, generation) {
                Ok(set) => set,
                Err(_) => return,
            }
        };
        let next = Arc::new(next);
        // A concurrent refresh may have installed newer keys meanwhile; keep those.
        self.keys.rcu(|current| if Arc::ptr_eq(current, &keys) { next.clone() } else { current.clone() });
    }

    /// Fetches the source's key sets (rate-limited) and installs what answered.
    async fn refresh(&self) {
        let Some(source) = &self.source else { return };
        let mut last = self.last_fetch.lock().await;
        let gap = if self.keys.load().decoding.is_empty() { RETRY_EVERY } else { REFETCH_EVERY };
        if last.is_some_and(|t| t.elapsed() < gap) {
            return;
        }
        let generation = source.generation();
        let mut urls = source.to_fetch();
        urls.truncate(MAX_SOURCES_FETCHED);
        if urls.is_empty() {
            // Nothing to ask yet (no issuer instance known): not an attempt.
            tracing::debug!("no JWKS source yet");
            return;
        }
        *last = Some(Instant::now());
        let mut by_source = self.fetch_all(urls).await;
        // A trusted source that did not answer keeps the keys it had.
        let trusted = source.trusted();
        for (url, keys) in self.keys.load().by_source.iter() {
            if trusted.contains(url) && !by_source.iter().any(|(u, _)| u == url) {
                by_source.push((url.clone(), keys.clone()));
            }
        }
        if by_source.is_empty() {
            return;
        }
        match KeySet::new(by_source, generation) {
            Ok(set) => {
                tracing::debug!(sources = set.by_source.len(), "JWKS loaded");
                self.keys.store(Arc::new(set));
            }
            Err(e) => tracing::warn!(error = %e, "JWKS unusable"),
        }
    }

    /// Fetches every URL at once, keeping each one's keys: during a rolling key rotation
    /// instances publish different sets, and a token from any of them verifies.
    async fn fetch_all(&self, urls: Vec<String>) -> Vec<(String, Vec<Jwk>)> {
        let fetches = urls.into_iter().map(|url| async move {
            match fetch_jwks(&self.client, &url).await {
                Ok(set) if !set.keys.is_empty() => Some((url, set.keys)),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(%url, error = %e, "JWKS fetch failed");
                    None
                }
            }
        });
        futures_util::future::join_all(fetches).await.into_iter().flatten().collect()
    }
}

async fn fetch_jwks(client: &PeerClient, url: &str) -> anyhow::Result<JwkSet> {
    let (status, body) = client.get(url, FETCH_TIMEOUT, MAX_JWKS_BYTES).await?;
    anyhow::ensure!(status.is_success(), "answered {status}");
    Ok(serde_json::from_slice(&body)?)
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
