//! The caller's identity, from the bearer token, of a user the review service knows
//! (see `users`: a deleted user's token is refused).
//!
//! The forum's own extractor (rather than `liner_shared::auth::AuthUser`) because its
//! state is `AppState`, and the WebSocket route also takes `?token=`.

use axum::extract::FromRequestParts;
use http::request::Parts;
use liner_shared::ApiError;
use liner_shared::auth::{AuthError, Claims, bearer_token};

use crate::error::ForumError;
use crate::state::AppState;

/// An authenticated caller (header token only); 401 when the token is missing or bad.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    /// The current username (see `users`).
    pub username: String,
}

impl Caller {
    pub fn id(&self) -> &str {
        &self.claims.sub
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts, false).ok_or(AuthError::Missing)?;
        let claims = state.verifier.verify(&token).await?;
        let username = state.users.resolve(&claims).await.map_err(ForumError::from)?;
        Ok(Caller { claims, username })
    }
}
