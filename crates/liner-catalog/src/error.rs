//! Every way a catalogue request can fail, mapped to the API error shape here and
//! nowhere else.

use axum::response::{IntoResponse, Response};
use liner_shared::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// 422 — a body field is well-formed JSON but invalid; names the field.
    #[error("{field}: {problem}")]
    Invalid { field: &'static str, problem: String },
    /// 400 — a bad query parameter or cursor.
    #[error("{0}")]
    BadQuery(String),
    /// 404
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 — the same mbid, or the same title + artist + year, exists already.
    #[error("album exists")]
    Duplicate { existing_id: String },
    /// 503 — the database did not answer.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// 500 — logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl CatalogError {
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid { field, problem: problem.into() }
    }
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        if liner_shared::db::is_unavailable(&e) { Self::Unavailable(e.to_string()) } else { Self::Internal(e.into()) }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Invalid { field, problem } => ApiError::invalid(field, &problem),
            CatalogError::BadQuery(msg) => ApiError::bad_request("bad_query", msg),
            CatalogError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            CatalogError::Duplicate { existing_id } => {
                ApiError::conflict("album_exists", format!("this album is in the catalogue already ({existing_id})"))
                    .with_extra("existingId", existing_id)
            }
            CatalogError::Unavailable(cause) => ApiError::database_unavailable(cause),
            CatalogError::Internal(cause) => ApiError::internal(format!("{cause:#}")),
        }
    }
}

impl IntoResponse for CatalogError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
