//! Edge authentication: bad tokens are refused before they reach a service (services
//! still verify on their own).
//!
//! Checked: every write (any method but GET/HEAD/OPTIONS) and every WebSocket connect
//! (token from `Authorization` or `?token=`). Exempt: `…/users/register` and
//! `…/users/login`, whose callers have no token yet.
//!
//! Keys: the review service's JWKS, from `--jwks-url` or else from the review
//! instances in the gateway's pool (`http(s)://ADDR/api/users-reviews/.well-known/jwks.json`,
//! up to eight ready ones fetched at once), verified by the shared
//! [`liner_shared::auth::Verifier`]: refetched when a token names an unknown `kid`,
//! 503 (not 401) while no key can be had, and a key leaves with its instance — when the
//! review pool changes, the keys of instances no longer in it stop verifying at once
//! (only instances that registered with the registry's secret are ever in the pool).

use std::sync::Arc;

use axum::http::Method;
use http::request::Parts;
use liner_shared::ApiError;
use liner_shared::auth::{AuthError, Claims, KeySource, REVIEW_JWKS_PATH, Verifier, bearer_token};
use liner_shared::tls::PeerClient;

use crate::balance::Pool;

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

/// The review instances of the gateway's pool as the verifier's key source.
struct ReviewPool(Arc<Pool>);

impl KeySource for ReviewPool {
    fn trusted(&self) -> Vec<String> {
        self.0.endpoints().iter().map(|e| format!("{}{REVIEW_JWKS_PATH}", e.base_url)).collect()
    }
    fn to_fetch(&self) -> Vec<String> {
        self.0
            .endpoints()
            .iter()
            .filter(|e| e.is_ready())
            .map(|e| format!("{}{REVIEW_JWKS_PATH}", e.base_url))
            .collect()
    }
    fn generation(&self) -> u64 {
        self.0.generation()
    }
}

pub struct EdgeAuth {
    verifier: Verifier,
}

impl EdgeAuth {
    /// Keys from `jwks_url` when given, else from the review pool's instances, fetched
    /// with the gateway's upstream client.
    pub fn new(jwks_url: Option<String>, review: Arc<Pool>, client: PeerClient) -> Self {
        let verifier = match jwks_url {
            Some(url) => Verifier::remote(url, client),
            None => Verifier::from_source(Arc::new(ReviewPool(review)), client),
        };
        Self { verifier }
    }

    /// Verifies the request's token; the claims on success, else a 401 (bad token) or
    /// 503 (keys unavailable) in the API shape.
    pub async fn check(&self, parts: &Parts, upgrade: bool) -> Result<Claims, ApiError> {
        let token = bearer_token(parts, upgrade).ok_or(AuthError::Missing)?;
        Ok(self.verifier.verify(&token).await?)
    }

    /// Fetches keys until it has some (startup), so the first writes need not wait.
    pub async fn prefetch_until(&self, token: tokio_util::sync::CancellationToken) {
        self.verifier.prefetch_until(token).await;
    }
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
