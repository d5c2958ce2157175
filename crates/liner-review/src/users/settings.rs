//! The caller's own settings, `/users/me/settings`: read and written only with the
//! user's own token and never part of a shared (cached) answer, so they cannot leak to
//! another reader. Today one: `blindFirst` (see `reviews::handlers::list_by_album`).

use axum::extract::State;
use liner_shared::auth::AuthUser;
use liner_shared::{ApiError, ApiJson};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store;
use crate::error::ReviewError;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSettings {
    /// Hide an album's score and reviews until you have rated it: clients then ask for
    /// album pages with `blind=true`. Default false.
    pub blind_first: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateSettings {
    pub blind_first: bool,
}

const NO_USER: ReviewError = ReviewError::Forbidden("the token's user does not exist");

/// Your own settings.
#[utoipa::path(get, path = "/users/me/settings", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserSettings), (status = 403, body = crate::openapi::ErrorBody)))]
pub async fn read(State(state): State<AppState>, user: AuthUser) -> Result<ApiJson<UserSettings>, ApiError> {
    let blind_first = store::blind_first(&state.db, user.id()).await?.ok_or(NO_USER)?;
    Ok(ApiJson(UserSettings { blind_first }))
}

/// Change your own settings.
#[utoipa::path(put, path = "/users/me/settings", tag = "users", request_body = UpdateSettings,
    security(("bearer" = [])),
    responses((status = 200, body = UserSettings), (status = 403, body = crate::openapi::ErrorBody),
        (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<UpdateSettings>,
) -> Result<ApiJson<UserSettings>, ApiError> {
    state.admit_write(user.id())?;
    if !store::set_blind_first(&state.db, user.id(), req.blind_first).await? {
        return Err(NO_USER.into());
    }
    Ok(ApiJson(UserSettings { blind_first: req.blind_first }))
}
