//! Likes: one per user per review (the table's primary key), so liking twice is one like
//! and unliking twice is none; both answer 200 with the count. A review's count is read
//! with it (every listing), a user's liked reviews are a list of their own, and whether
//! the caller likes a review comes with every answer that is not shared by all readers
//! (the album page is: clients ask `GET /reviews/liked?ids=` for that one).

pub mod handlers;
pub mod model;
pub mod store;

use axum::Router;
use axum::routing::{get, put};

pub use handlers::mark_liked;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reviews/{review_id}/like", put(handlers::like).delete(handlers::unlike))
        .route("/reviews/liked", get(handlers::liked))
        .route("/users/{user_id}/likes", get(handlers::user_likes))
}
