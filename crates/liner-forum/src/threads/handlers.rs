//! Opening a review's thread (see the module doc of `threads`).

use axum::extract::State;
use axum::http::StatusCode;
use liner_shared::error::ApiPath;
use liner_shared::{ApiError, ApiJson};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::chat::hub::Event;
use crate::error::{ForumError, Result};
use crate::moderation;
use crate::ratings::Review;
use crate::rooms::model::{MessageView, RoomType};
use crate::rooms::store::{self, Appended, Hold, NewMessage, Quote, RoomRow};
use crate::state::AppState;

/// Longest excerpt of a review a thread's opening line quotes, in characters.
pub const EXCERPT_CHARS: usize = 280;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenThread {
    /// A review of the room's album.
    pub review_id: String,
}

/// Discuss a review in its album's room: stores a chat line quoting the review (its
/// `review`, and the first 280 characters of its text as `message`) that replies name as
/// their `threadId`. Opening the same review's thread again answers the first line (200).
/// 429 in slow mode or after too many writes; 503 while the review service cannot be asked.
#[utoipa::path(post, path = "/rooms/{roomId}/threads", tag = "rooms", request_body = OpenThread,
    params(("roomId" = String, Path)), security(("bearer" = [])),
    responses((status = 201, description = "the thread's opening line", body = MessageView),
        (status = 200, description = "the review's thread was open already", body = MessageView),
        (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody),
        (status = 403, description = "muted in this room", body = crate::openapi::ErrorBody),
        (status = 404, description = "no such room or review", body = crate::openapi::ErrorBody),
        (status = 410, body = crate::openapi::ErrorBody),
        (status = 422, description = "not an album room, or a review of another album", body = crate::openapi::ErrorBody)))]
pub async fn open(
    State(state): State<AppState>,
    user: Caller,
    ApiPath(room_id): ApiPath<String>,
    ApiJson(req): ApiJson<OpenThread>,
) -> Result<(StatusCode, ApiJson<MessageView>), ApiError> {
    moderation::handlers::limit(&state, &user)?;
    let room = album_room(&state, &room_id).await?;
    if let Some((id, _)) = store::find_thread(&state.db, &room_id, &req.review_id).await? {
        return Ok((StatusCode::OK, ApiJson(line(&state, &room_id, &id).await?)));
    }
    let review = review_of(&state, &room, &req.review_id).await?;
    let quote = Quote {
        review_id: review.id.clone(),
        user_id: review.user_id.clone(),
        username: review.username.clone(),
        rating_half: (review.rating * 2.0).round() as i64,
    };
    let excerpt = excerpt(&review.review_text);
    let album = room.album_id.as_deref().unwrap_or_default();
    let msg = NewMessage {
        room_id: &room_id,
        user_id: user.id(),
        username: &user.username,
        body: &excerpt,
        moderator: state.chat.may_moderate(&room.created_by, user.id(), &user.username),
        author_rating_half: state.ratings.of_user(album, user.id()).await,
        quote: Some(&quote),
        ..NewMessage::default()
    };
    match store::append(&state.db, &state.writes, msg).await? {
        Appended::Stored { message, .. } => {
            tracing::info!(%room_id, review_id = %quote.review_id, seq = message.seq, "thread opened");
            state.fanout.publish(&room_id, Event::stored(&message)).await;
            Ok((StatusCode::CREATED, ApiJson(message.view())))
        }
        Appended::Duplicate { id, .. } => Ok((StatusCode::OK, ApiJson(line(&state, &room_id, &id).await?))),
        Appended::RoomClosed => Err(ForumError::RoomClosed.into()),
        Appended::Held(Hold::Muted { .. }) => Err(ForumError::forbidden("muted", "you are muted in this room").into()),
        Appended::Held(Hold::SlowMode { retry_after_ms }) => {
            let retry_after_secs = u64::try_from(retry_after_ms).unwrap_or(0).div_ceil(1000).max(1);
            Err(ForumError::RateLimited { retry_after_secs }.into())
        }
        Appended::NoChange => Err(ForumError::Internal(anyhow::anyhow!("a quote changed nothing")).into()),
    }
}

/// The open album room (404, 410, 422 otherwise).
async fn album_room(state: &AppState, room_id: &str) -> Result<RoomRow> {
    let room = store::get_room(&state.db, room_id).await?.ok_or(ForumError::NotFound("room"))?;
    if !room.is_active() {
        return Err(ForumError::RoomClosed);
    }
    if room.room_type != RoomType::Album {
        return Err(ForumError::invalid("roomId", "only an album's room discusses its reviews"));
    }
    Ok(room)
}

/// The review, when it is one of the room's album (404, 422, 503 otherwise).
async fn review_of(state: &AppState, room: &RoomRow, review_id: &str) -> Result<Review> {
    let len = review_id.chars().count();
    if !(1..=64).contains(&len) || review_id.chars().any(char::is_control) {
        return Err(ForumError::invalid("reviewId", "must be 1 to 64 printable characters"));
    }
    let review = match state.ratings.review(review_id).await {
        Ok(Some(review)) => review,
        Ok(None) => return Err(ForumError::NotFound("review")),
        Err(_) => return Err(ForumError::Unavailable("the review service cannot be asked now".into())),
    };
    if room.album_id.as_deref() != Some(review.album_id.as_str()) {
        return Err(ForumError::invalid("reviewId", "is a review of another album than the room's"));
    }
    Ok(review)
}

async fn line(state: &AppState, room_id: &str, id: &str) -> Result<MessageView> {
    let stored = store::get_message(&state.db, room_id, id).await?.ok_or(ForumError::NotFound("thread"))?;
    Ok(stored.view())
}

/// The first [`EXCERPT_CHARS`] characters of a review's text, "…" when cut.
pub fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_at_a_character_boundary() {
        assert_eq!(excerpt("  short  "), "short");
        let long = "é".repeat(EXCERPT_CHARS + 5);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt(&"a".repeat(EXCERPT_CHARS)), "a".repeat(EXCERPT_CHARS));
    }
}
