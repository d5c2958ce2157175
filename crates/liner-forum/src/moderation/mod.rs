//! Moderation of a room by its creator and the admins named in config
//! (`--forum-admins`): delete a message (a tombstone), mute a member for a while, kick a
//! member's live connections, slow mode; and reports of messages by any member, which
//! moderators list and resolve.
//!
//! Every moderation action is a row of the room's sequenced log (`rooms::store`): it
//! gets the next seq, is fanned out to every member in order with the messages, and
//! is replayed by `since=`, so a member who reconnects sees the same tombstones, mutes
//! and slow-mode changes. Reports are not room events: only moderators see them.
//! A busy room also slows itself down (`adaptive`).
//!
//! Why REST (and not WebSocket frames): moderators act from anywhere, including from
//! outside the room, and a refusal is a plain 403/404/422. Writes are rate limited per
//! user ([`WRITES_PER_SEC`], [`WRITES_BURST`]) on top of the gateway's limits.

pub mod adaptive;
pub mod handlers;
pub mod model;
pub mod store;

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::state::AppState;

/// Moderation and report writes a user may make per second, sustained …
pub const WRITES_PER_SEC: f64 = 2.0;
/// … and in a burst.
pub const WRITES_BURST: u32 = 30;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rooms/{room_id}/messages/{message_id}", delete(handlers::delete_message))
        .route("/rooms/{room_id}/messages/{message_id}/reports", post(handlers::report))
        .route("/rooms/{room_id}/moderation", get(handlers::moderation))
        .route("/rooms/{room_id}/mutes/{user_id}", put(handlers::mute).delete(handlers::unmute))
        .route("/rooms/{room_id}/kicks", post(handlers::kick))
        .route("/rooms/{room_id}/slow-mode", put(handlers::slow_mode))
        .route("/rooms/{room_id}/reports", get(handlers::reports))
        .route("/rooms/{room_id}/reports/{report_id}/resolve", post(handlers::resolve))
}
