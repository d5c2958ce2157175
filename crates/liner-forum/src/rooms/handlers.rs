//! Room endpoints.

use crate::auth::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use liner_shared::error::{ApiPath, ApiQuery};
use liner_shared::{ApiError, ApiJson, new_id, now_millis};

use super::model::{CreateRoom, HistoryQuery, ListQuery, MessageView, Room, RoomType, validate_create, validate_ref};
use super::store::{self, RoomRow};
use crate::chat::hub::Event;
use crate::error::ForumError;
use crate::ratings::RatingSplit;
use crate::state::AppState;

/// Create an album or genre room (at most one active room per album or genre).
#[utoipa::path(post, path = "/rooms", tag = "rooms", request_body = CreateRoom, security(("bearer" = [])),
    responses((status = 201, body = Room), (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody),
        (status = 409, description = "an active room exists; `error.existingId` names it", body = crate::openapi::ErrorBody),
        (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: Caller,
    ApiJson(req): ApiJson<CreateRoom>,
) -> Result<(StatusCode, ApiJson<Room>), ApiError> {
    let (active_key, title) = validate_create(&req)?;
    let row = RoomRow {
        id: new_id(),
        room_type: req.room_type,
        album_id: req.album_id,
        genre_id: req.genre_id,
        title,
        created_by: user.id().to_owned(),
        created_at: now_millis(),
        closed_at: None,
        last_seq: 0,
        slow_mode_secs: 0,
        slow_mode_auto_since: 0,
    };
    store::insert_room(&state.db, &row, &active_key).await?;
    tracing::info!(room_id = %row.id, key = %active_key, "room created");
    Ok((StatusCode::CREATED, ApiJson(row.into_view(0))))
}

/// Active rooms, newest first, with live online counts. `limit` 1–200 (default 100).
#[utoipa::path(get, path = "/rooms", tag = "rooms", params(ListQuery),
    responses((status = 200, body = Vec<Room>), (status = 400, body = crate::openapi::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<Vec<Room>>, ApiError> {
    let room_type = match query.room_type.as_deref() {
        None | Some("") => None,
        Some(t) => {
            Some(RoomType::parse(t).ok_or_else(|| ForumError::BadQuery("roomType must be album or genre".into()))?)
        }
    };
    for (field, value) in [("albumId", &query.album_id), ("genreId", &query.genre_id)] {
        if let Some(v) = value {
            validate_ref(field, v).map_err(|e| ForumError::BadQuery(e.to_string()))?;
        }
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=200).contains(&limit) {
        return Err(ForumError::BadQuery("limit must be 1 to 200".into()).into());
    }
    let rows =
        store::list_active(&state.db, room_type, query.album_id.as_deref(), query.genre_id.as_deref(), limit).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let online = state.fanout.online_many(&ids).await;
    Ok(ApiJson(rows.into_iter().zip(online).map(|(row, n)| row.into_view(n)).collect()))
}

/// One room, active or closed.
#[utoipa::path(get, path = "/rooms/{roomId}", tag = "rooms", params(("roomId" = String, Path)),
    responses((status = 200, body = Room), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn get(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<ApiJson<Room>, ApiError> {
    let row = store::get_room(&state.db, &id).await?.ok_or(ForumError::NotFound("room"))?;
    let online = if row.is_active() { state.fanout.online(&row.id).await } else { 0 };
    Ok(ApiJson(row.into_view(online)))
}

/// Close a room (its creator or a configured admin). Closing a closed room is a no-op.
#[utoipa::path(delete, path = "/rooms/{roomId}", tag = "rooms", params(("roomId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn close(
    State(state): State<AppState>,
    user: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let row = store::get_room(&state.db, &id).await?.ok_or(ForumError::NotFound("room"))?;
    if !state.chat.may_moderate(&row.created_by, user.id(), &user.username) {
        return Err(ForumError::forbidden("forbidden", "only the room's creator or an admin may close it").into());
    }
    if store::close_room(&state.db, &id, now_millis()).await? {
        tracing::info!(room_id = %id, by = %user.id(), "room closed");
        state.fanout.publish(&id, Event::Closed).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A page of a room's messages with seq below `before`, newest last. `limit` 1–200 (default 50);
/// `thread`: only the replies in that thread.
#[utoipa::path(get, path = "/rooms/{roomId}/messages", tag = "rooms", params(("roomId" = String, Path), HistoryQuery),
    responses((status = 200, body = Vec<MessageView>), (status = 400, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<ApiJson<Vec<MessageView>>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ForumError::BadQuery("limit must be 1 to 200".into()).into());
    }
    let before = query.before.unwrap_or(i64::MAX);
    if before < 1 {
        return Err(ForumError::BadQuery("before must be 1 or more".into()).into());
    }
    store::get_room(&state.db, &id).await?.ok_or(ForumError::NotFound("room"))?;
    let rows = store::messages_before(&state.db, &id, before, limit, query.thread.as_deref()).await?;
    Ok(ApiJson(rows.iter().map(|m| m.view()).collect()))
}

/// Most posters the rating split counts.
const MAX_SPLIT_MEMBERS: i64 = 10_000;

/// The rating split of an album room: how everyone who ever posted a chat line in it
/// rated the album (loved ≥ 4, mixed, disliked ≤ 2, unrated), from the review service's
/// ratings (cached briefly). A genre room, or ratings that cannot be read now, count
/// everyone as unrated (`available` false for the latter).
#[utoipa::path(get, path = "/rooms/{roomId}/ratings", tag = "rooms", params(("roomId" = String, Path)),
    responses((status = 200, body = RatingSplit), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn ratings(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<RatingSplit>, ApiError> {
    let room = store::get_room(&state.db, &id).await?.ok_or(ForumError::NotFound("room"))?;
    let members = store::posters(&state.db, &id, MAX_SPLIT_MEMBERS).await?;
    let members = members.iter().map(String::as_str);
    let split = match &room.album_id {
        Some(album) => RatingSplit::of(members, state.ratings.album(album).await.as_ref()),
        None => RatingSplit { available: true, ..RatingSplit::of(members, None) },
    };
    Ok(ApiJson(split))
}
