//! Usernames for `message` frames, looked up over REST from the review service (which
//! owns users; the forum never reads its tables).
//!
//! Why cached and why a fallback: a username is resolved once per WebSocket connection
//! (and stored with each message), so the review service sees at most one request per
//! user per [`CACHE_TTL`]. When it is down or slow, chat must keep working: the token's
//! `name` claim (the username at login) is used instead, and further lookups are
//! skipped for [`BACKOFF`] so connects do not each wait for a timeout. The cache is
//! bounded ([`CACHE_CAPACITY`] users) and entries expire, so memory does not grow with
//! every user who ever connected.

use std::time::{Duration, Instant};

use liner_shared::auth::Claims;
use moka::sync::Cache;
use serde::Deserialize;

const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_CAPACITY: u64 = 100_000;
const BACKOFF: Duration = Duration::from_secs(10);
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Usernames {
    client: reqwest::Client,
    /// e.g. `http://127.0.0.1:8081/api/users-reviews`.
    api_base: String,
    /// user id → username.
    cache: Cache<String, String>,
    down_until: std::sync::Mutex<Option<Instant>>,
}

#[derive(Deserialize)]
struct Profile {
    username: String,
}

impl Usernames {
    /// `review_url` is the review service's base URL, with or without its `/api/users-reviews` prefix.
    pub fn new(review_url: &str) -> anyhow::Result<Self> {
        let base = review_url.trim_end_matches('/');
        let base = base.strip_suffix("/api/users-reviews").unwrap_or(base);
        let client = reqwest::Client::builder().timeout(LOOKUP_TIMEOUT).connect_timeout(LOOKUP_TIMEOUT).build()?;
        Ok(Self {
            client,
            api_base: format!("{base}/api/users-reviews"),
            cache: Cache::builder().max_capacity(CACHE_CAPACITY).time_to_live(CACHE_TTL).build(),
            down_until: std::sync::Mutex::new(None),
        })
    }

    /// The user's current username, else the token's, else the user id.
    pub async fn resolve(&self, claims: &Claims) -> String {
        let fallback = if claims.name.is_empty() { claims.sub.clone() } else { claims.name.clone() };
        if let Some(hit) = self.cache.get(&claims.sub) {
            return hit;
        }
        // Ids are ours (the token is signed), but keep the URL well-formed regardless.
        let id_ok =
            !claims.sub.is_empty() && claims.sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok || self.is_backing_off() {
            return fallback;
        }
        let url = format!("{}/users/profile/{}", self.api_base, claims.sub);
        match self.fetch(&url).await {
            Ok(Some(name)) => {
                self.cache.insert(claims.sub.clone(), name.clone());
                name
            }
            Ok(None) => fallback,
            Err(e) => {
                tracing::warn!(error = %e, "review service unreachable for username lookups; using token names");
                *self.down_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + BACKOFF);
                fallback
            }
        }
    }

    fn is_backing_off(&self) -> bool {
        self.down_until.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|t| Instant::now() < t)
    }

    /// `Ok(None)`: the service answered but does not know the user.
    async fn fetch(&self, url: &str) -> anyhow::Result<Option<String>> {
        let res = self.client.get(url).send().await?;
        if res.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let profile: Profile = res.error_for_status()?.json().await?;
        Ok(Some(profile.username))
    }
}
