//! Follow, unfollow, follow status, followers and following, the feed.

use axum::extract::State;
use liner_shared::auth::AuthUser;
use liner_shared::error::{ApiPath, ApiQuery};
use liner_shared::{ApiError, ApiJson, now_millis, rfc3339};

use super::model::*;
use super::store::{self, Side};
use crate::error::ReviewError;
use crate::paging::{self, PageQuery};
use crate::reviews::handlers::to_review;
use crate::state::AppState;
use crate::{likes, users};

/// Follow a user (idempotent; following yourself is 400).
#[utoipa::path(put, path = "/users/{userId}/follow", tag = "follows", params(("userId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "Followed (now or already)", body = FollowState),
        (status = 400, description = "You cannot follow yourself (`cannot_follow_self`)", body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn follow(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(user_id): ApiPath<String>,
) -> Result<ApiJson<FollowState>, ApiError> {
    set_follow(&state, user.id(), user_id, true).await
}

/// Stop following a user (idempotent).
#[utoipa::path(delete, path = "/users/{userId}/follow", tag = "follows", params(("userId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "Not followed (now or already)", body = FollowState),
        (status = 400, description = "You cannot follow yourself (`cannot_follow_self`)", body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn unfollow(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(user_id): ApiPath<String>,
) -> Result<ApiJson<FollowState>, ApiError> {
    set_follow(&state, user.id(), user_id, false).await
}

async fn set_follow(state: &AppState, me: &str, user_id: String, on: bool) -> Result<ApiJson<FollowState>, ApiError> {
    if me == user_id {
        return Err(ReviewError::SelfFollow.into());
    }
    state.admit_write(me)?;
    if !users::store::exists(&state.db, &user_id).await? {
        return Err(ReviewError::NotFound("user").into());
    }
    let changed = if on {
        store::follow(&state.db, me, &user_id, now_millis()).await?
    } else {
        store::unfollow(&state.db, me, &user_id).await?
    };
    if changed {
        state.pages.follow_changed(me, &user_id).await;
    }
    let (followers, _) = store::counts(&state.db, &user_id).await?;
    Ok(ApiJson(FollowState { user_id, followers, followed_by_me: on }))
}

/// Whether the caller follows a user, and the user's follower count.
#[utoipa::path(get, path = "/users/{userId}/follow", tag = "follows", params(("userId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = FollowState), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(user_id): ApiPath<String>,
) -> Result<ApiJson<FollowState>, ApiError> {
    if !users::store::exists(&state.db, &user_id).await? {
        return Err(ReviewError::NotFound("user").into());
    }
    let followed_by_me = store::is_following(&state.db, user.id(), &user_id).await?;
    let (followers, _) = store::counts(&state.db, &user_id).await?;
    Ok(ApiJson(FollowState { user_id, followers, followed_by_me }))
}

/// Who follows a user, the latest first.
#[utoipa::path(get, path = "/users/{userId}/followers", tag = "follows", params(("userId" = String, Path), PageQuery),
    responses((status = 200, body = FollowList), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn followers(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<ApiJson<FollowList>, ApiError> {
    follow_list(&state, user_id, Side::Followers, query).await
}

/// Whom a user follows, the latest first.
#[utoipa::path(get, path = "/users/{userId}/following", tag = "follows", params(("userId" = String, Path), PageQuery),
    responses((status = 200, body = FollowList), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn following(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<ApiJson<FollowList>, ApiError> {
    follow_list(&state, user_id, Side::Following, query).await
}

async fn follow_list(
    state: &AppState,
    user_id: String,
    side: Side,
    query: PageQuery,
) -> Result<ApiJson<FollowList>, ApiError> {
    let (limit, after) = query.start()?;
    let rows = store::page(&state.db, &user_id, side, &after, limit + 1).await?;
    if rows.is_empty() && !users::store::exists(&state.db, &user_id).await? {
        return Err(ReviewError::NotFound("user").into());
    }
    let (rows, next_cursor) = paging::finish(rows, limit, |(id, _, at)| (*at, id.clone()));
    let items =
        rows.into_iter().map(|(id, username, at)| FollowEntry { id, username, followed_at: rfc3339(at) }).collect();
    Ok(ApiJson(FollowList { user_id, items, next_cursor }))
}

/// Reviews by the people you follow, newest first, paged by an opaque cursor.
#[utoipa::path(get, path = "/feed", tag = "follows", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Feed)))]
pub async fn feed(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<ApiJson<Feed>, ApiError> {
    let (limit, after) = query.start()?;
    let rows = store::feed(&state.db, user.id(), &after, limit + 1).await?;
    let (rows, next_cursor) = paging::finish(rows, limit, |row| (row.created_at, row.id.clone()));
    let mut items: Vec<_> = rows.into_iter().map(to_review).collect();
    likes::mark_liked(&state.db, Some(user.id()), &mut items).await?;
    Ok(ApiJson(Feed { items, next_cursor }))
}
