//! List and search, read, create; the genre list.

use axum::extract::State;
use axum::http::StatusCode;
use liner_shared::auth::AuthUser;
use liner_shared::error::{ApiPath, ApiQuery};
use liner_shared::{ApiError, ApiJson, now_millis};

use super::model::*;
use super::store;
use crate::error::CatalogError;
use crate::state::AppState;

/// Albums: a search (best matches first) when `q` has words, else newest first.
#[utoipa::path(get, path = "/albums", tag = "albums", params(ListQuery),
    responses((status = 200, body = AlbumPage), (status = 400, body = crate::openapi::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<AlbumPage>, ApiError> {
    let listing = Listing::from_query(query)?;
    let (items, next) = store::page(&state.db, &listing).await?;
    Ok(ApiJson(AlbumPage { items, next_cursor: next.map(|c| c.encode()) }))
}

/// One album.
#[utoipa::path(get, path = "/albums/{albumId}", tag = "albums", params(("albumId" = String, Path)),
    responses((status = 200, body = Album), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn get(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<ApiJson<Album>, ApiError> {
    if id.len() > 128 {
        return Err(CatalogError::NotFound("album").into());
    }
    let album = store::get(&state.db, &id).await?.ok_or(CatalogError::NotFound("album"))?;
    Ok(ApiJson(album))
}

/// Add an album. The same mbid, or the same title + artist + year (case-insensitively),
/// twice is a 409 whose `error.existingId` names the album already there.
#[utoipa::path(post, path = "/albums", tag = "albums", request_body = CreateAlbum, security(("bearer" = [])),
    responses((status = 201, body = Album), (status = 400, body = crate::openapi::ErrorBody),
        (status = 401, body = crate::openapi::ErrorBody),
        (status = 409, description = "the album exists; `error.existingId` names it", body = crate::openapi::ErrorBody),
        (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateAlbum>,
) -> Result<(StatusCode, ApiJson<Album>), ApiError> {
    let album = validate_create(req)?;
    let created = store::insert(&state.db, &album, user.id(), now_millis()).await?;
    tracing::info!(album_id = %created.id, "album added");
    Ok((StatusCode::CREATED, ApiJson(created)))
}

/// Every genre with its number of albums, most used first.
#[utoipa::path(get, path = "/genres", tag = "genres",
    responses((status = 200, body = Vec<Genre>)))]
pub async fn genres(State(state): State<AppState>) -> Result<ApiJson<Vec<Genre>>, ApiError> {
    Ok(ApiJson(store::genres(&state.db).await?))
}
