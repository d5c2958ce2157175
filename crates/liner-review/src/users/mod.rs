//! Users: registration, login (token issuing), public profiles and one's own settings.

pub mod handlers;
pub mod limiter;
pub mod model;
pub mod settings;
pub mod store;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/register", post(handlers::register))
        .route("/users/login", post(handlers::login))
        .route("/users/profile/{user_id}", get(handlers::profile))
        .route("/users/me/settings", get(settings::read).put(settings::update))
}
