//! "Discuss this review": a review opens a thread in its album's room.
//!
//! A thread is not a second log. Its opening line is a chat line of the room that quotes
//! the review (`review`: id, author, rating; `message`: the review's excerpt as it was
//! then), stored and sequenced like every line, so it reaches every member in order,
//! replays with `since`, obeys mutes and slow mode, and can be deleted or reported. A
//! reply is a chat line naming the opening line's id (`threadId` on the send frame and
//! on the `message` frame); history filters a thread's replies with `?thread=`. So a
//! member sees the thread live, in the room's own order, and clients that know nothing
//! of threads still see every line.
//!
//! Opening is idempotent per review and room (a unique index on the quoted review id):
//! the second opener, on any replica, gets the first one's line (200 instead of 201).
//! The forum reads the review from the review service directly (`ratings`) and checks
//! that it is a review of the room's album.

pub mod handlers;

use axum::Router;
use axum::routing::post;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/rooms/{room_id}/threads", post(handlers::open))
}
