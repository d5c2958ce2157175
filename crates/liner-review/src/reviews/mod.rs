//! Album reviews: one per user per album, owner-only changes, listings with aggregates.

pub mod handlers;
pub mod model;
pub mod store;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reviews", post(handlers::create))
        .route("/reviews/{review_id}", get(handlers::get).put(handlers::update).delete(handlers::delete))
        .route("/reviews/album/{album_id}", get(handlers::list_by_album))
}
