//! Live chat: `GET /api/forums/connect` upgrades to a WebSocket session.
//!
//! Everything that can be refused is refused *before* the upgrade, as a normal HTTP
//! error in the API shape, in this order: foreign `Origin` (403 `origin_not_allowed`),
//! missing/bad token (401), bad query (400), `userId` not the token's (403
//! `wrong_user`), unknown room (404), closed room (410 `room_closed`), not a WebSocket
//! request (400 `websocket_required`). The Origin check is what stops another web site
//! from using a visitor's browser to open a chat socket (browsers always send Origin
//! on WebSocket requests; non-browser clients usually send none and are let through).

pub mod actions;
pub mod fanout;
pub mod hub;
pub mod protocol;
pub mod redis;
pub mod session;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use liner_shared::ApiError;
use liner_shared::auth::{AuthError, bearer_token};
use liner_shared::error::ApiQuery;
use serde::Deserialize;

use crate::error::ForumError;
use crate::rooms::store;
use crate::state::AppState;

/// Bytes a WebSocket reads at once (and its initial read buffer, which every member
/// keeps while idle). Clients send chat lines of a few hundred bytes; a bigger frame
/// (up to the frame limit) grows the buffer while it is read. 1 KiB instead of 4 KiB:
/// 35.3 -> 32.5 KiB per idle member (`scripts/bench-idle`, docs/BENCHMARKS.md).
const READ_BUFFER_BYTES: usize = 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/connect", get(connect))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ConnectQuery {
    /// The room to join (required).
    room_id: Option<String>,
    /// Must be the token's user when given.
    user_id: Option<String>,
    /// Replay every stored message with a greater seq first, then go live.
    #[param(minimum = 0)]
    since: Option<i64>,
    /// The bearer token, for browsers (which cannot set headers on a WebSocket).
    #[allow(dead_code)] // read from the raw query by `bearer_token`; here for the OpenAPI document
    token: Option<String>,
}

/// Join a room's live chat (WebSocket upgrade).
///
/// Client → server text frames (told apart by `type`; absent means `message`):
/// - `{"roomId", "message", "userId"?, "clientMsgId"?, "threadId"?}` — a message (1–2,000 characters;
///   frames above 16 KiB close the connection with 1009); with `threadId`, a reply in a
///   review's thread (the id of the line quoting the review, `POST /rooms/{roomId}/threads`);
/// - `{"type":"edit","roomId","messageId","message","clientMsgId"?}` — the author rewrites
///   their message, within 15 minutes of sending it; acked like a message;
/// - `{"type":"typing","roomId"}` — passed on to the others at most once per 3 s, never stored.
///
/// Server → client text frames:
/// - `{"type":"message","id","seq","roomId","userId","username","message","sentAt","editedAt","deleted"}` — every
///   message of the room in seq order, exactly once (own messages included); a deleted one
///   (replayed) has `deleted: true` and an empty `message`; a thread's opening line has
///   `review: {"id","userId","username","rating"}` (and the review's excerpt as `message`),
///   a reply `threadId`;
/// - room events, sequenced with the messages (same `seq` counter, same order, replayed by
///   `since`), each with `{"id","seq","roomId","userId","username","sentAt"}` (the author of an
///   edit, the moderator of the rest) and: `{"type":"edit","messageId","message"}`,
///   `{"type":"delete","messageId"}` (now a tombstone), `{"type":"mute","target":{"userId","username"},"until"}`,
///   `{"type":"unmute","target"}`, `{"type":"kick","target"}`, `{"type":"slowmode","seconds","automatic"}`
///   (`automatic`: switched by adaptive slow mode, author "Liner", not by a moderator);
/// - `{"type":"typing","roomId","userId","username"}` — not sequenced, best effort;
/// - `{"type":"ack","clientMsgId","id","seq"}` — stored; a retry with the same clientMsgId gets the same ack;
/// - `{"type":"error","code","message","clientMsgId"?,"retryAfter"?}` — codes `bad_frame`, `missing_field`,
///   `invalid_message`, `message_too_long`, `invalid_client_msg_id`, `invalid_message_id`, `wrong_room`,
///   `wrong_user`, `rate_limited`, `room_closed`, `unavailable`, `muted` and `slow_mode` (with
///   `retryAfter` seconds), `message_not_found`, `not_author`, `edit_window_closed`,
///   `message_deleted`, `invalid_thread_id`, `thread_not_found`, `not_editable` (a quoted
///   review); the connection stays open;
/// - `{"type":"presence","joined"|"left":{"userId","username"},"online"}`;
/// - `{"type":"closed"}` then close code 4410 when the room is closed.
///
/// Close codes: 1001 server stopping, 1008 continued abuse (bad or rate-limited frames),
/// 1007 text frame not UTF-8, 1009 frame too large, 4008 too slow to read (send queue full),
/// 4403 kicked by a moderator (after the `kick` frame; connecting again is allowed), 4408 idle
/// (no frame or pong for the idle timeout), 4410 room closed. Reconnect with `since=<last seq>` to resume.
#[utoipa::path(get, path = "/connect", tag = "chat", params(ConnectQuery), security(("bearer" = [])),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody),
        (status = 403, description = "foreign Origin or userId not the token's", body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody), (status = 410, body = crate::openapi::ErrorBody)))]
pub async fn connect(State(state): State<AppState>, req: Request) -> Response {
    match upgrade(state, req).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn upgrade(state: AppState, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _body) = req.into_parts();
    if let Some(origin) = parts.headers.get(http::header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|o| origin_allowed(&state.chat.allowed_origins, o));
        if !allowed {
            return Err(ForumError::forbidden("origin_not_allowed", "this Origin may not open chat connections").into());
        }
    }
    let token = bearer_token(&parts, true).ok_or(AuthError::Missing)?;
    let claims = state.verifier.verify(&token).await?;
    let username = state.users.resolve(&claims).await.map_err(ForumError::from)?;
    let ApiQuery(query) = ApiQuery::<ConnectQuery>::from_request_parts(&mut parts, &state).await?;
    let room_id =
        query.room_id.filter(|r| !r.is_empty()).ok_or_else(|| ForumError::BadQuery("roomId is required".into()))?;
    if query.user_id.as_deref().is_some_and(|u| u != claims.sub) {
        return Err(ForumError::forbidden("wrong_user", "userId is not the token's user").into());
    }
    if query.since.is_some_and(|s| s < 0) {
        return Err(ForumError::BadQuery("since must be 0 or more".into()).into());
    }
    let room = store::get_room(&state.db, &room_id).await?.ok_or(ForumError::NotFound("room"))?;
    if !room.is_active() {
        return Err(ForumError::RoomClosed.into());
    }
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &state).await.map_err(|_| ForumError::NotWebSocket)?;
    let moderator = state.chat.may_moderate(&room.created_by, &claims.sub, &username);
    let album_id = room.album_id;
    let conn = session::Conn { room_id, user_id: claims.sub, username, since: query.since, album_id, moderator };
    let max = state.chat.max_frame_bytes;
    let sessions = state.sessions.clone();
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before the
    // first read, so every connection, idle or not, would keep that much resident;
    // 4 KiB per read still takes any frame up to `max` (the buffer grows for it).
    Ok(ws
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| sessions.track_future(session::run(socket, state, conn))))
}

fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    allowed.iter().any(|a| a == "*" || *a == origin)
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins_match_exactly_ignoring_case() {
        let allowed = vec!["http://127.0.0.1:8080".to_owned()];
        assert!(super::origin_allowed(&allowed, "HTTP://127.0.0.1:8080/"));
        assert!(!super::origin_allowed(&allowed, "http://127.0.0.1:8081"));
        assert!(!super::origin_allowed(&allowed, "http://evil.example"));
        assert!(super::origin_allowed(&["*".to_owned()], "http://evil.example"));
    }
}
