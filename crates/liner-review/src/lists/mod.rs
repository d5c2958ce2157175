//! Lists: a user's named, ordered lists of albums, each album with a note. Anyone may
//! read a list; only its owner changes it (403 otherwise). Every change runs in one
//! transaction that first touches the list's row with the owner in the condition — the
//! owner check and, on PostgreSQL, a row lock that queues concurrent changes of one list,
//! so the item bound and the positions hold under racing requests (SQLite has one writer
//! anyway). Bounds: [`model::MAX_LISTS_PER_USER`] lists, [`model::MAX_ITEMS`] items,
//! names, descriptions and notes by length. Album ids are the catalogue's, as in reviews.

pub mod handlers;
pub mod model;
pub mod store;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/lists", post(handlers::create))
        .route("/lists/{list_id}", get(handlers::get).put(handlers::update).delete(handlers::delete))
        .route("/lists/{list_id}/items", post(handlers::add_item).put(handlers::reorder))
        .route("/lists/{list_id}/items/{album_id}", delete(handlers::remove_item).put(handlers::edit_item))
        .route("/users/{user_id}/lists", get(handlers::of_user))
}
