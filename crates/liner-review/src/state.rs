//! What every handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use liner_shared::auth::Verifier;
use liner_shared::db::Db;

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
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
