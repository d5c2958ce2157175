//! Users: registration, login (token issuing) and public profiles.

pub mod handlers;
pub mod limiter;
pub mod model;
pub mod store;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/register", post(handlers::register))
        .route("/users/login", post(handlers::login))
        .route("/users/profile/{user_id}", get(handlers::profile))
}
