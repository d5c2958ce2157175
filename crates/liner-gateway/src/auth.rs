//! Edge authentication: bad tokens are refused before they reach a service (services
//! still verify on their own).
//!
//! Checked: every write (any method but GET/HEAD/OPTIONS) and every WebSocket connect
//! (token from `Authorization` or `?token=`). Exempt: `…/users/register` and
//! `…/users/login`, whose callers have no token yet.
//!
//! Keys: the review service's JWKS, from `--jwks-url` or else from any discovered
//! review instance (`http://ADDR/api/users-reviews/.well-known/jwks.json`; the union
//! of all ready instances' sets, so a rolling key rotation works). The set is cached
//! and refetched when a token names an unknown `kid` (key rotation), at most every
//! five seconds. Keys that cannot be fetched make the gateway answer 503, not
//! 401: a valid token must never be refused because the issuer is briefly away.
//!
//! Keys are kept per instance they came from, and a key leaves with its instance: when
//! the review pool changes, the keys of instances no longer in it stop verifying at once
//! (only instances that registered with the registry's secret are ever in the pool).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http::request::Parts;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use liner_shared::ApiError;
use liner_shared::auth::{AuthError, Claims, Jwk, JwkSet, Verifier, bearer_token};
use tokio::time::Instant;

use crate::balance::Pool;

pub const JWKS_PATH: &str = "/api/users-reviews/.well-known/jwks.json";
const REFETCH_EVERY: Duration = Duration::from_secs(5);
const RETRY_EVERY: Duration = Duration::from_secs(1);
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Does this request need a valid token at the edge?
pub fn needs_token(method: &Method, path: &str, upgrade: bool) -> bool {
    if upgrade {
        return true;
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    // Any method: their callers have no token yet, and the service itself answers
    // other methods with 405, which says more than a 401 would.
    !matches!(path, "/api/users-reviews/users/register" | "/api/users-reviews/users/login")
}

pub struct EdgeAuth {
    jwks_url: Option<String>,
    review: Arc<Pool>,
    client: Client<HttpConnector, Body>,
    keys: ArcSwapOption<Keys>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// The keys in use: per source (a JWKS URL), the verifier over their union, and the
/// review pool's generation they were checked against.
struct Keys {
    by_source: Vec<(String, Vec<Jwk>)>,
    verifier: Verifier,
    generation: u64,
}

impl Keys {
    /// None when no source has a key left (or the set is unusable).
    fn build(by_source: Vec<(String, Vec<Jwk>)>, generation: u64) -> Option<Self> {
        let mut union: Vec<Jwk> = Vec::new();
        for key in by_source.iter().flat_map(|(_, keys)| keys) {
            if !union.iter().any(|k| k.kid == key.kid) {
                union.push(key.clone());
            }
        }
        match Verifier::from_jwks(&JwkSet { keys: union }) {
            Ok(verifier) => Some(Self { by_source, verifier, generation }),
            Err(e) => {
                tracing::warn!(error = %e, "edge auth: JWKS unusable");
                None
            }
        }
    }
}

fn jwks_url_of(base_url: &str) -> String {
    format!("{base_url}{JWKS_PATH}")
}

impl EdgeAuth {
    pub fn new(jwks_url: Option<String>, review: Arc<Pool>, client: Client<HttpConnector, Body>) -> Self {
        Self { jwks_url, review, client, keys: ArcSwapOption::empty(), last_fetch: tokio::sync::Mutex::new(None) }
    }

    /// Drops the keys of review instances that left the pool since the keys were checked.
    fn drop_departed(&self) {
        let generation = self.review.generation();
        let Some(keys) = self.keys.load_full() else { return };
        if self.jwks_url.is_some() || keys.generation == generation {
            return;
        }
        let present: Vec<String> = self.review.endpoints().iter().map(|e| jwks_url_of(&e.base_url)).collect();
        let kept: Vec<(String, Vec<Jwk>)> =
            keys.by_source.iter().filter(|(source, _)| present.contains(source)).cloned().collect();
        if kept.len() < keys.by_source.len() {
            tracing::info!(left = keys.by_source.len() - kept.len(), "edge auth: keys of departed instances dropped");
        }
        let next = if kept.is_empty() { None } else { Keys::build(kept, generation).map(Arc::new) };
        // A concurrent refresh may have installed newer keys meanwhile; keep those.
        self.keys.rcu(|current| match current {
            Some(c) if Arc::ptr_eq(c, &keys) => next.clone(),
            other => other.clone(),
        });
    }

    /// Verifies the request's token; the claims on success, else a 401 (bad token) or
    /// 503 (keys unavailable) in the API shape.
    pub async fn check(&self, parts: &Parts, upgrade: bool) -> Result<Claims, ApiError> {
        let token = bearer_token(parts, upgrade).ok_or(AuthError::Missing)?;
        self.drop_departed();
        if self.keys.load().is_none() {
            // Concurrent first writes wait for one fetch; only its result matters.
            self.refresh().await;
        }
        let Some(keys) = self.keys.load_full() else { return Err(keys_unavailable()) };
        match keys.verifier.verify(&token).await {
            Ok(claims) => Ok(claims),
            Err(AuthError::UnknownKey) => {
                // Maybe the issuer rotated its key: refetch (rate-limited), then decide.
                // With keys in hand, a kid still unknown is a bad token (401).
                self.refresh().await;
                match self.keys.load_full() {
                    Some(k) => Ok(k.verifier.verify(&token).await?),
                    None => Err(keys_unavailable()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Fetches keys until it has some (startup), so the first writes need not wait.
    pub async fn prefetch_until(&self, token: tokio_util::sync::CancellationToken) {
        while self.keys.load().is_none() {
            self.refresh().await;
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(RETRY_EVERY) => {}
            }
        }
    }

    /// Fetches the key set (rate-limited); true when a fresh set was installed.
    async fn refresh(&self) -> bool {
        let mut last = self.last_fetch.lock().await;
        // With keys in hand, refetch at most every REFETCH_EVERY; without any, retry
        // at most every second so a flood of writes cannot queue on a slow issuer.
        let gap = if self.keys.load().is_some() { REFETCH_EVERY } else { RETRY_EVERY };
        if last.is_some_and(|t| t.elapsed() < gap) {
            return false;
        }
        let sources = self.sources();
        if sources.is_empty() {
            // Nothing to ask yet (no review instance known): not an attempt.
            tracing::debug!("edge auth: no JWKS source yet");
            return false;
        }
        *last = Some(Instant::now());
        let generation = self.review.generation();
        match self.fetch(sources).await {
            Ok(by_source) => match Keys::build(by_source, generation) {
                Some(keys) => {
                    tracing::info!(sources = keys.by_source.len(), "edge auth: JWKS loaded");
                    self.keys.store(Some(Arc::new(keys)));
                    true
                }
                None => false,
            },
            Err(e) => {
                tracing::warn!(error = %e, "edge auth: JWKS fetch failed");
                false
            }
        }
    }

    /// Where keys can be fetched from now: the configured URL, or (up to eight) ready
    /// review instances.
    fn sources(&self) -> Vec<String> {
        match &self.jwks_url {
            Some(url) => vec![url.clone()],
            None => {
                let mut ready: Vec<String> =
                    self.review.endpoints().iter().filter(|e| e.is_ready()).map(|e| jwks_url_of(&e.base_url)).collect();
                ready.truncate(8);
                ready
            }
        }
    }

    /// Fetches every source at once, keeping each one's keys: during a rolling key
    /// rotation replicas publish different sets, and a token from any of them verifies.
    async fn fetch(&self, urls: Vec<String>) -> anyhow::Result<Vec<(String, Vec<Jwk>)>> {
        let mut fetches = tokio::task::JoinSet::new();
        for url in urls {
            let client = self.client.clone();
            fetches.spawn(async move {
                let set = fetch_one(&client, &url).await.map_err(|e| e.context(url.clone()))?;
                Ok::<_, anyhow::Error>((url, set.keys))
            });
        }
        let mut by_source = Vec::new();
        let mut last_err = None;
        while let Some(joined) = fetches.join_next().await {
            match joined {
                Ok(Ok((url, keys))) if !keys.is_empty() => by_source.push((url, keys)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => last_err = Some(e),
                Err(e) => last_err = Some(anyhow::anyhow!("fetch task failed: {e}")),
            }
        }
        if by_source.is_empty() {
            return Err(last_err.unwrap_or_else(|| anyhow::anyhow!("no JWKS source answered")));
        }
        Ok(by_source)
    }
}

async fn fetch_one(client: &Client<HttpConnector, Body>, url: &str) -> anyhow::Result<JwkSet> {
    let req = Request::get(url).body(Body::empty())?;
    let res = tokio::time::timeout(Duration::from_secs(3), client.request(req))
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))??;
    if res.status() != StatusCode::OK {
        anyhow::bail!("status {}", res.status());
    }
    let body = http_body_util::Limited::new(res.into_body(), MAX_JWKS_BYTES);
    let bytes = tokio::time::timeout(Duration::from_secs(3), body.collect())
        .await
        .map_err(|_| anyhow::anyhow!("body timed out"))?
        .map_err(|e| anyhow::anyhow!("body: {e}"))?
        .to_bytes();
    Ok(serde_json::from_slice(&bytes)?)
}

fn keys_unavailable() -> ApiError {
    ApiError { retry_after: Some(1), ..ApiError::unavailable("cannot verify tokens right now") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_requests_need_a_token() {
        assert!(!needs_token(&Method::GET, "/api/forums/rooms", false));
        assert!(needs_token(&Method::GET, "/api/forums/connect", true));
        assert!(needs_token(&Method::POST, "/api/forums/rooms", false));
        assert!(needs_token(&Method::DELETE, "/api/users-reviews/reviews/1", false));
        assert!(!needs_token(&Method::POST, "/api/users-reviews/users/login", false));
        assert!(!needs_token(&Method::POST, "/api/users-reviews/users/register", false));
        assert!(!needs_token(&Method::PATCH, "/api/users-reviews/users/register", false));
        assert!(needs_token(&Method::PATCH, "/api/users-reviews/users/profile/x", false));
        assert!(!needs_token(&Method::OPTIONS, "/api/forums/rooms", false));
    }
}
