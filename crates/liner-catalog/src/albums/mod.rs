//! Albums and genres: listing and search, one album, adding one, the genre list.

pub mod handlers;
pub mod model;
pub mod store;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/albums", get(handlers::list).post(handlers::create))
        .route("/albums/{album_id}", get(handlers::get))
        .route("/genres", get(handlers::genres))
}
