//! What every handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use liner_shared::auth::Verifier;
use liner_shared::db::Db;
use liner_shared::rate::KeyedLimit;

use crate::error::ReviewError;
use crate::keys::Signer;
use crate::password::Passwords;
use crate::reviews::site_prior::SitePrior;
use crate::users::limiter::WindowCounter;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub signer: Arc<Signer>,
    pub verifier: Arc<Verifier>,
    pub passwords: Passwords,
    /// Failed logins per account and per client address.
    pub login_failures: Arc<WindowCounter>,
    /// Registrations per client address, at most `registrations_per_addr` (0: no limit).
    pub registrations: Arc<WindowCounter>,
    pub registrations_per_addr: u32,
    pub site_prior: Arc<SitePrior>,
    /// Album pages and profiles, served as bytes (see `cache`).
    pub pages: Arc<crate::cache::Pages>,
    /// Whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<liner_shared::net::TrustedProxies>,
    /// Per-user pace of the community writes (likes, follows, lists); None: no limit.
    pub social_writes: Option<Arc<KeyedLimit<String>>>,
}

/// Community writes a user may make per second, and in a burst: far above a person
/// clicking, far below a script (the gateway's 50/s per user covers every route).
pub const SOCIAL_WRITES_PER_SEC: f64 = 5.0;
pub const SOCIAL_WRITE_BURST: u32 = 30;

impl AppState {
    /// Takes one of the user's community-write tokens (`liner_shared::rate`, the limiter
    /// the gateway uses), or 429 with the wait.
    pub fn admit_write(&self, user_id: &str) -> Result<(), ReviewError> {
        let Some(limit) = &self.social_writes else { return Ok(()) };
        limit
            .check(&user_id.to_owned())
            .map_err(|wait| ReviewError::WritesLimited { retry_after_secs: wait.as_secs_f64().ceil() as u64 })
    }
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
