//! Follows and the feed. Following is one row per (follower, followee), so following
//! twice is one follow; following oneself is refused (400, and a CHECK in the schema).
//! Profiles carry the counts (cached like the rest of the profile, versions bumped on
//! every change). The feed is the reviews of the people one follows, newest first,
//! paged by keyset on (created_at, id) — not by offset, so a review written while a
//! reader pages shifts nothing: no page repeats an item or skips one.

pub mod handlers;
pub mod model;
pub mod store;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/{user_id}/follow", get(handlers::status).put(handlers::follow).delete(handlers::unfollow))
        .route("/users/{user_id}/followers", get(handlers::followers))
        .route("/users/{user_id}/following", get(handlers::following))
        .route("/feed", get(handlers::feed))
}
