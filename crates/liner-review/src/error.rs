//! Every way a review-service request can fail, mapped to the API error shape here and
//! nowhere else.

use axum::response::{IntoResponse, Response};
use liner_shared::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// 422 — a field is well-formed JSON but invalid; names the field.
    #[error("{field}: {problem}")]
    Invalid { field: &'static str, problem: String },
    /// 401 — login failed (same message for unknown user and wrong password).
    #[error("invalid username or password")]
    BadCredentials,
    /// 429 — too many failed logins for this username or address.
    #[error("too many failed logins")]
    LoginLocked { retry_after_secs: u64 },
    /// 429 — this address registered its hourly allowance of accounts.
    #[error("too many registrations from this address")]
    RegistrationsLimited { retry_after_secs: u64 },
    /// 403 — authenticated, but not the owner / not the token's user.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 — username or email taken.
    #[error("{0} already taken")]
    Taken(&'static str),
    /// 409 — this user already reviewed this album.
    #[error("review exists")]
    DuplicateReview { existing_id: String },
    /// 409 — the album is already in the list.
    #[error("album already in the list")]
    AlreadyInList,
    /// 409 — a bound on what a user may own is reached (lists per user, items per list).
    #[error("{0}")]
    LimitReached(&'static str),
    /// 400 — following oneself.
    #[error("you cannot follow yourself")]
    SelfFollow,
    /// 429 — this user wrote too fast (likes, follows, lists).
    #[error("too many writes")]
    WritesLimited { retry_after_secs: u64 },
    /// 400 — a bad cursor, sort or limit.
    #[error("{0}")]
    BadQuery(String),
    /// 503 — the database did not answer.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// 500 — logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ReviewError {
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid { field, problem: problem.into() }
    }
}

impl From<sqlx::Error> for ReviewError {
    fn from(e: sqlx::Error) -> Self {
        if liner_shared::db::is_unavailable(&e) { Self::Unavailable(e.to_string()) } else { Self::Internal(e.into()) }
    }
}

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::Invalid { field, problem } => ApiError::invalid(field, &problem),
            ReviewError::BadCredentials => ApiError::unauthorized("invalid username or password"),
            ReviewError::LoginLocked { retry_after_secs } => {
                ApiError::too_many("too many failed logins; try again later", retry_after_secs)
            }
            ReviewError::RegistrationsLimited { retry_after_secs } => {
                ApiError::too_many("too many accounts registered from this address; try again later", retry_after_secs)
            }
            ReviewError::Forbidden(why) => ApiError::forbidden(why),
            ReviewError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            ReviewError::Taken(what) => ApiError::conflict(
                if what == "username" { "username_taken" } else { "email_taken" },
                format!("{what} already taken"),
            ),
            ReviewError::DuplicateReview { existing_id } => {
                ApiError::conflict("review_exists", format!("you already reviewed this album (review {existing_id})"))
                    .with_extra("existingId", existing_id)
            }
            ReviewError::AlreadyInList => ApiError::conflict("already_in_list", "that album is already in the list"),
            ReviewError::LimitReached(why) => ApiError::conflict("limit_reached", why),
            ReviewError::SelfFollow => ApiError::bad_request("cannot_follow_self", "you cannot follow yourself"),
            ReviewError::WritesLimited { retry_after_secs } => {
                ApiError::too_many("too many writes; slow down", retry_after_secs)
            }
            ReviewError::BadQuery(msg) => ApiError::bad_request("bad_query", msg),
            ReviewError::Unavailable(cause) => ApiError::database_unavailable(cause),
            ReviewError::Internal(cause) => ApiError::internal(format!("{cause:#}")),
        }
    }
}

impl IntoResponse for ReviewError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

pub type Result<T, E = ReviewError> = std::result::Result<T, E>;
