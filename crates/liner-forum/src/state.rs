//! What every handler and WebSocket session can reach.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use liner_shared::auth::Verifier;
use liner_shared::db::Db;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chat::fanout::Fanout;
use crate::ratings::Ratings;
use crate::rooms::store::WriteQueue;
use crate::users::Usernames;

/// Limits and policies of the chat, from `Settings`.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Allowed `Origin` values (lower-case, no trailing slash); `*` allows any.
    pub allowed_origins: Vec<String>,
    /// User ids or usernames (any case) that may close and moderate any room.
    pub admin_users: Vec<String>,
    /// Frames queued for one connection before it counts as too slow and is dropped.
    pub send_queue: usize,
    /// Messages per second a connection may send (sustained) …
    pub rate_per_sec: f64,
    /// … and in a burst.
    pub rate_burst: u32,
    pub idle_timeout: Duration,
    pub ping_interval: Duration,
    /// Largest WebSocket frame / message accepted from a client, in bytes.
    pub max_frame_bytes: usize,
    /// When a busy room slows itself down.
    pub adaptive: crate::moderation::adaptive::AdaptiveSettings,
}

impl ChatConfig {
    /// Whether this user moderates a room created by `creator`: its creator, or an admin
    /// named in config by user id or username.
    pub fn may_moderate(&self, creator: &str, user_id: &str, username: &str) -> bool {
        creator == user_id || self.admin_users.iter().any(|a| a == user_id || a.eq_ignore_ascii_case(username))
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// Serialises SQLite message writes (see `rooms::store`).
    pub writes: Arc<WriteQueue>,
    pub verifier: Arc<Verifier>,
    pub fanout: Arc<Fanout>,
    pub users: Arc<Usernames>,
    /// Album ratings from the review service, for badges and the rating split.
    pub ratings: Arc<Ratings>,
    pub chat: Arc<ChatConfig>,
    /// Members' `typing` passed on lately, shared by this replica's connections.
    pub typing: crate::chat::actions::TypingThrottle,
    /// Moderation, report and thread-opening writes per user (see `moderation`).
    pub moderation_limit: Arc<Option<liner_shared::rate::KeyedLimit<String>>>,
    /// Cancelled when the service stops: every session closes with 1001.
    pub shutdown: CancellationToken,
    /// Sessions, so that stopping can wait for their close frames.
    pub sessions: TaskTracker,
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
