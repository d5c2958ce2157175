//! Usernames for `message` frames, and whether a token's user exists at all, looked up
//! over REST from the review service (which owns users; the forum never reads its
//! tables). The review instances are called directly ([`ServiceUrls`]: from the
//! registry, or `--review-url`), never through the public gateway and its limits.
//!
//! A token is validly signed, but its user may since have been deleted (or the token
//! minted by a key of another deployment's database): when the review service answers
//! 404 for the user, the forum refuses the token like the review service does.
//!
//! Why cached and why a fallback: a username is resolved once per WebSocket connection
//! (and stored with each message), so the review service sees at most one request per
//! user per [`CACHE_TTL`]. When it is down or slow, chat must keep working: the token's
//! `name` claim (the username at login) is used instead, and further lookups are
//! skipped for [`BACKOFF`] so connects do not each wait for a timeout. The cache is
//! bounded ([`CACHE_CAPACITY`] users) and entries expire, so memory does not grow with
//! every user who ever connected.

use std::time::Duration;

use liner_discovery::peers::ServiceUrls;
use liner_shared::auth::Claims;
use liner_shared::tls::PeerClient;

use crate::pause::Pause;
use moka::sync::Cache;
use serde::Deserialize;

const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_CAPACITY: u64 = 100_000;
const BACKOFF: Duration = Duration::from_secs(10);
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// A profile is a few hundred bytes; anything past this is not one.
const MAX_PROFILE_BYTES: usize = 64 * 1024;

pub struct Usernames {
    /// Plain HTTP, or TLS for `https://` review instances (`liner_shared::tls`).
    client: PeerClient,
    /// The review instances (base URLs).
    review: ServiceUrls,
    /// user id → username, or `None`: the review service does not know the user.
    cache: Cache<String, Option<String>>,
    pause: Pause,
}

/// The token's user does not exist (the review service said so).
#[derive(Debug)]
pub struct UnknownUser;

#[derive(Deserialize)]
struct Profile {
    username: String,
}

impl Usernames {
    pub fn new(review: ServiceUrls, client: PeerClient) -> Self {
        Self {
            client,
            review,
            cache: Cache::builder().max_capacity(CACHE_CAPACITY).time_to_live(CACHE_TTL).build(),
            pause: Pause::new(BACKOFF),
        }
    }

    /// The user's current username, else (review service away) the token's, else the
    /// user id; [`UnknownUser`] when the review service says the user does not exist.
    pub async fn resolve(&self, claims: &Claims) -> Result<String, UnknownUser> {
        match self.lookup(&claims.sub).await {
            Some(Some(name)) => Ok(name),
            Some(None) => Err(UnknownUser),
            None if claims.name.is_empty() => Ok(claims.sub.clone()),
            None => Ok(claims.name.clone()),
        }
    }

    /// A user's current username: `Some(None)` when the review service says there is no
    /// such user, `None` when it cannot be asked now.
    pub async fn lookup(&self, user_id: &str) -> Option<Option<String>> {
        if let Some(hit) = self.cache.get(user_id) {
            return Some(hit);
        }
        // Ids are ours (the token is signed), but keep the URL well-formed regardless.
        let id_ok = !user_id.is_empty() && user_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return None;
        }
        let Some(base) = self.review.pick() else {
            tracing::debug!("no review instance known yet; using the token's name");
            return None;
        };
        let url = format!("{base}/api/users-reviews/users/profile/{user_id}");
        let found = self.pause.ask("using token names for usernames", self.fetch(&url)).await?;
        self.cache.insert(user_id.to_owned(), found.clone());
        Some(found)
    }

    /// `Ok(None)`: the service answered but does not know the user.
    async fn fetch(&self, url: &str) -> anyhow::Result<Option<String>> {
        let (status, body) = self.client.get(url, LOOKUP_TIMEOUT, MAX_PROFILE_BYTES).await?;
        if status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        anyhow::ensure!(status.is_success(), "answered {status}");
        let profile: Profile = serde_json::from_slice(&body)?;
        Ok(Some(profile.username))
    }
}
