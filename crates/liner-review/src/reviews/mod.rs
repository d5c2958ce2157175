//! Album reviews: one per user per album, owner-only changes, listings by album or by
//! user with aggregates, album scores (`score`, with the site-wide prior cached in
//! `site_prior`) and charts.

pub mod charts;
pub mod handlers;
pub mod model;
pub mod score;
pub mod site_prior;
pub mod store;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reviews", post(handlers::create))
        .route("/reviews/{review_id}", get(handlers::get).put(handlers::update).delete(handlers::delete))
        .route("/reviews/album/{album_id}", get(handlers::list_by_album))
        .route("/reviews/user/{user_id}", get(handlers::list_by_user))
        .route("/charts", get(charts::charts))
}
