//! Rooms: create, list, get, close, and read their message history over REST.

pub mod handlers;
pub mod model;
pub mod store;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rooms", get(handlers::list).post(handlers::create))
        .route("/rooms/{room_id}", get(handlers::get).delete(handlers::close))
        .route("/rooms/{room_id}/messages", get(handlers::history))
        .route("/rooms/{room_id}/ratings", get(handlers::ratings))
}
