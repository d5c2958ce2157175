//! Like, unlike, which of these do I like, a user's liked reviews.

use axum::extract::State;
use liner_shared::auth::{AuthUser, MaybeAuthUser};
use liner_shared::db::Db;
use liner_shared::error::{ApiPath, ApiQuery};
use liner_shared::{ApiError, ApiJson, now_millis};

use super::model::*;
use super::store;
use crate::error::{Result, ReviewError};
use crate::paging::{self, PageQuery};
use crate::reviews::handlers::to_review;
use crate::reviews::model::Review;
use crate::state::AppState;
use crate::users;

/// Sets `likedByMe` on each review for the caller (left out without one).
pub async fn mark_liked(db: &Db, caller: Option<&str>, items: &mut [Review]) -> Result<()> {
    let Some(user_id) = caller else { return Ok(()) };
    let ids: Vec<&str> = items.iter().map(|r| r.id.as_str()).collect();
    let liked = store::liked_among(db, user_id, &ids).await?;
    for review in items {
        review.liked_by_me = Some(liked.contains(&review.id));
    }
    Ok(())
}

/// Like a review (idempotent: liking twice is one like).
#[utoipa::path(put, path = "/reviews/{reviewId}/like", tag = "likes", params(("reviewId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "Liked (now or already)", body = LikeState),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn like(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(review_id): ApiPath<String>,
) -> Result<ApiJson<LikeState>, ApiError> {
    set_like(&state, user.id(), review_id, true).await
}

/// Take your like back (idempotent: unliking what you do not like changes nothing).
#[utoipa::path(delete, path = "/reviews/{reviewId}/like", tag = "likes", params(("reviewId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "Not liked (now or already)", body = LikeState),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn unlike(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(review_id): ApiPath<String>,
) -> Result<ApiJson<LikeState>, ApiError> {
    set_like(&state, user.id(), review_id, false).await
}

async fn set_like(
    state: &AppState,
    user_id: &str,
    review_id: String,
    liked: bool,
) -> Result<ApiJson<LikeState>, ApiError> {
    state.admit_write(user_id)?;
    let album_id = store::album_of(&state.db, &review_id).await?.ok_or(ReviewError::NotFound("review"))?;
    let changed = if liked {
        store::like(&state.db, &review_id, user_id, now_millis()).await?
    } else {
        store::unlike(&state.db, &review_id, user_id).await?
    };
    if changed {
        state.pages.review_liked(&album_id).await;
    }
    let likes = store::count(&state.db, &review_id).await?;
    Ok(ApiJson(LikeState { review_id, likes, liked_by_me: liked }))
}

/// Which of these reviews the caller likes (for pages shared by every reader, such as
/// the album page).
#[utoipa::path(get, path = "/reviews/liked", tag = "likes", params(LikedQuery), security(("bearer" = [])),
    responses((status = 200, body = Liked)))]
pub async fn liked(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<LikedQuery>,
) -> Result<ApiJson<Liked>, ApiError> {
    let ids: Vec<&str> = query.ids.split(',').filter(|id| !id.is_empty()).collect();
    if ids.len() > MAX_IDS || ids.iter().any(|id| id.len() > 64) {
        return Err(ReviewError::BadQuery(format!("ids: at most {MAX_IDS} ids of at most 64 characters")).into());
    }
    let liked = store::liked_among(&state.db, user.id(), &ids).await?;
    // In the order asked, once each.
    let mut seen = std::collections::HashSet::new();
    let ids = ids.into_iter().filter(|id| liked.contains(*id) && seen.insert(*id)).map(str::to_owned).collect();
    Ok(ApiJson(Liked { ids }))
}

/// The reviews a user likes, the latest liked first (`likedByMe` when a token is given).
#[utoipa::path(get, path = "/users/{userId}/likes", tag = "likes", params(("userId" = String, Path), PageQuery),
    security((), ("bearer" = [])),
    responses((status = 200, body = UserLikes), (status = 404, description = "No such user", body = crate::openapi::ErrorBody)))]
pub async fn user_likes(
    State(state): State<AppState>,
    MaybeAuthUser(caller): MaybeAuthUser,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<ApiJson<UserLikes>, ApiError> {
    let (limit, after) = query.start()?;
    let rows = store::page_of_user(&state.db, &user_id, &after, limit + 1).await?;
    if rows.is_empty() && !users::store::exists(&state.db, &user_id).await? {
        return Err(ReviewError::NotFound("user").into());
    }
    let (rows, next_cursor) = paging::finish(rows, limit, |(row, liked_at)| (*liked_at, row.id.clone()));
    let mut items: Vec<Review> = rows.into_iter().map(|(row, _)| to_review(row)).collect();
    mark_liked(&state.db, caller.as_ref().map(|c| c.sub.as_str()), &mut items).await?;
    Ok(ApiJson(UserLikes { user_id, items, next_cursor }))
}
