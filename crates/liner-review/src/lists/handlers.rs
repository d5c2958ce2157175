//! Create, read, rename, delete a list; add, remove, reorder its albums and edit their
//! notes; a user's lists.

use axum::extract::State;
use axum::http::StatusCode;
use liner_shared::auth::AuthUser;
use liner_shared::error::{ApiPath, ApiQuery};
use liner_shared::{ApiError, ApiJson, new_id, now_millis, rfc3339};

use super::model::*;
use super::store::{self, ListRow};
use crate::error::ReviewError;
use crate::paging::{self, PageQuery};
use crate::reviews::model::validate_album_id;
use crate::state::AppState;
use crate::users;

fn summary(row: ListRow) -> ListSummary {
    ListSummary {
        id: row.id,
        user_id: row.user_id,
        username: row.username,
        name: row.name,
        description: row.description,
        item_count: row.item_count,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }
}

/// The list as it is now (after a change: read back whole).
async fn view(state: &AppState, list_id: &str) -> Result<List, ApiError> {
    let (row, items) = store::get(&state.db, list_id).await?.ok_or(ReviewError::NotFound("list"))?;
    let items = (1..)
        .zip(items)
        .map(|(position, i)| ListItem { album_id: i.album_id, position, note: i.note, added_at: rfc3339(i.added_at) })
        .collect();
    Ok(List { summary: summary(row), items })
}

/// Create a list (at most 100 per user).
#[utoipa::path(post, path = "/lists", tag = "lists", request_body = CreateList, security(("bearer" = [])),
    responses((status = 201, body = List), (status = 403, body = crate::openapi::ErrorBody),
        (status = 409, description = "100 lists already (`limit_reached`)", body = crate::openapi::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateList>,
) -> Result<(StatusCode, ApiJson<List>), ApiError> {
    validate_name(&req.name)?;
    validate_description(&req.description)?;
    state.admit_write(user.id())?;
    let id = new_id();
    store::create(&state.db, &id, user.id(), req.name.trim(), &req.description, now_millis()).await?;
    Ok((StatusCode::CREATED, ApiJson(view(&state, &id).await?)))
}

/// A list with its albums in order (public).
#[utoipa::path(get, path = "/lists/{listId}", tag = "lists", params(("listId" = String, Path)),
    responses((status = 200, body = List), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn get(State(state): State<AppState>, ApiPath(list_id): ApiPath<String>) -> Result<ApiJson<List>, ApiError> {
    Ok(ApiJson(view(&state, &list_id).await?))
}

/// Rename your list and/or change its description.
#[utoipa::path(put, path = "/lists/{listId}", tag = "lists", params(("listId" = String, Path)),
    request_body = UpdateList, security(("bearer" = [])),
    responses((status = 200, body = List), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(list_id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateList>,
) -> Result<ApiJson<List>, ApiError> {
    if req.name.is_none() && req.description.is_none() {
        return Err(ReviewError::invalid("name", "give name and/or description to change").into());
    }
    req.name.as_deref().map(validate_name).transpose()?;
    req.description.as_deref().map(validate_description).transpose()?;
    state.admit_write(user.id())?;
    let name = req.name.as_deref().map(str::trim);
    store::update(&state.db, &list_id, user.id(), name, req.description.as_deref(), now_millis()).await?;
    Ok(ApiJson(view(&state, &list_id).await?))
}

/// Delete your list.
#[utoipa::path(delete, path = "/lists/{listId}", tag = "lists", params(("listId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(list_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.admit_write(user.id())?;
    store::delete(&state.db, &list_id, user.id(), now_millis()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add an album (with a note) at the end of your list (at most 250 albums).
#[utoipa::path(post, path = "/lists/{listId}/items", tag = "lists", params(("listId" = String, Path)),
    request_body = AddItem, security(("bearer" = [])),
    responses((status = 201, body = List), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody),
        (status = 409, description = "already in the list (`already_in_list`) or 250 albums (`limit_reached`)", body = crate::openapi::ErrorBody)))]
pub async fn add_item(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(list_id): ApiPath<String>,
    ApiJson(req): ApiJson<AddItem>,
) -> Result<(StatusCode, ApiJson<List>), ApiError> {
    validate_album_id(&req.album_id)?;
    validate_note(&req.note)?;
    state.admit_write(user.id())?;
    store::add_item(&state.db, &list_id, user.id(), &req.album_id, &req.note, now_millis()).await?;
    Ok((StatusCode::CREATED, ApiJson(view(&state, &list_id).await?)))
}

/// Put your list's albums in a new order: every album of the list, once each.
#[utoipa::path(put, path = "/lists/{listId}/items", tag = "lists", params(("listId" = String, Path)),
    request_body = Reorder, security(("bearer" = [])),
    responses((status = 200, body = List), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn reorder(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(list_id): ApiPath<String>,
    ApiJson(req): ApiJson<Reorder>,
) -> Result<ApiJson<List>, ApiError> {
    if req.album_ids.len() as i64 > MAX_ITEMS {
        return Err(ReviewError::invalid("albumIds", "a list has at most 250 albums").into());
    }
    state.admit_write(user.id())?;
    store::reorder(&state.db, &list_id, user.id(), &req.album_ids, now_millis()).await?;
    Ok(ApiJson(view(&state, &list_id).await?))
}

/// Change the note of an album in your list.
#[utoipa::path(put, path = "/lists/{listId}/items/{albumId}", tag = "lists",
    params(("listId" = String, Path), ("albumId" = String, Path)), request_body = EditItem, security(("bearer" = [])),
    responses((status = 200, body = List), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn edit_item(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((list_id, album_id)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<EditItem>,
) -> Result<ApiJson<List>, ApiError> {
    validate_note(&req.note)?;
    state.admit_write(user.id())?;
    store::set_note(&state.db, &list_id, user.id(), &album_id, &req.note, now_millis()).await?;
    Ok(ApiJson(view(&state, &list_id).await?))
}

/// Remove an album from your list.
#[utoipa::path(delete, path = "/lists/{listId}/items/{albumId}", tag = "lists",
    params(("listId" = String, Path), ("albumId" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn remove_item(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((list_id, album_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.admit_write(user.id())?;
    store::remove_item(&state.db, &list_id, user.id(), &album_id, now_millis()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's lists, the newest first (without their items).
#[utoipa::path(get, path = "/users/{userId}/lists", tag = "lists", params(("userId" = String, Path), PageQuery),
    responses((status = 200, body = UserLists), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn of_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<ApiJson<UserLists>, ApiError> {
    let (limit, after) = query.start()?;
    let rows = store::page_of_user(&state.db, &user_id, &after, limit + 1).await?;
    if rows.is_empty() && !users::store::exists(&state.db, &user_id).await? {
        return Err(ReviewError::NotFound("user").into());
    }
    let (rows, next_cursor) = paging::finish(rows, limit, |row| (row.created_at, row.id.clone()));
    Ok(ApiJson(UserLists { user_id, items: rows.into_iter().map(summary).collect(), next_cursor }))
}
