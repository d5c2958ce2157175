//! Every way a forum REST or WebSocket-upgrade request can fail, mapped to the API error
//! shape here and nowhere else. (Failures *inside* an open WebSocket are `error` frames,
//! see `chat::protocol`.)

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use liner_shared::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ForumError {
    /// 422 — a field is well-formed JSON but invalid; names the field.
    #[error("{field}: {problem}")]
    Invalid { field: &'static str, problem: String },
    /// 400 — a bad query parameter.
    #[error("{0}")]
    BadQuery(String),
    /// 400 — `/connect` called without a WebSocket upgrade.
    #[error("expected a WebSocket upgrade request")]
    NotWebSocket,
    /// 403 — authenticated, but not allowed (not the creator, not the token's user, foreign Origin).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 401 — a validly signed token of a user the review service does not know.
    #[error("the token's user does not exist")]
    UnknownUser,
    /// 404
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 — an active room for this album or genre exists already.
    #[error("room exists")]
    RoomExists { existing_id: String },
    /// 409 — this user reported this message already.
    #[error("report exists")]
    ReportExists { existing_id: String },
    /// 429 — too many moderation or report writes from this user.
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// 410 — the room is closed (connects are refused; history stays readable).
    #[error("room closed")]
    RoomClosed,
    /// 503 — the database did not answer.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// 500 — logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ForumError {
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid { field, problem: problem.into() }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden { code, message: message.into() }
    }
}

impl From<crate::users::UnknownUser> for ForumError {
    fn from(_: crate::users::UnknownUser) -> Self {
        ForumError::UnknownUser
    }
}

impl From<sqlx::Error> for ForumError {
    fn from(e: sqlx::Error) -> Self {
        if liner_shared::db::is_unavailable(&e) { Self::Unavailable(e.to_string()) } else { Self::Internal(e.into()) }
    }
}

impl From<ForumError> for ApiError {
    fn from(e: ForumError) -> Self {
        match e {
            ForumError::Invalid { field, problem } => ApiError::invalid(field, &problem),
            ForumError::BadQuery(msg) => ApiError::bad_request("bad_query", msg),
            ForumError::NotWebSocket => ApiError::bad_request("websocket_required", e.to_string()),
            ForumError::Forbidden { code, message } => ApiError::new(StatusCode::FORBIDDEN, code, message),
            ForumError::UnknownUser => ApiError::unauthorized(e.to_string()),
            ForumError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            ForumError::RoomExists { existing_id } => ApiError::conflict(
                "room_exists",
                format!("an active room for this album or genre exists already (room {existing_id})"),
            )
            .with_extra("existingId", existing_id),
            ForumError::ReportExists { existing_id } => {
                ApiError::conflict("report_exists", "you reported this message already")
                    .with_extra("existingId", existing_id)
            }
            ForumError::RateLimited { retry_after_secs } => {
                ApiError::too_many("too many moderation or report requests; slow down", retry_after_secs)
            }
            ForumError::RoomClosed => ApiError::new(StatusCode::GONE, "room_closed", "the room is closed"),
            ForumError::Unavailable(cause) => ApiError::database_unavailable(cause),
            ForumError::Internal(cause) => ApiError::internal(format!("{cause:#}")),
        }
    }
}

impl IntoResponse for ForumError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

pub type Result<T, E = ForumError> = std::result::Result<T, E>;
