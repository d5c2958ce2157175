//! Create, read, list by album or user, update, delete.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use liner_shared::auth::{AuthUser, MaybeAuthUser};
use liner_shared::error::{ApiPath, ApiQuery};
use liner_shared::{ApiError, ApiJson, new_id, now_millis, rfc3339};

use super::model::*;
use super::score::{self, Tally};
use super::store::{self, Change, ReviewRow, Scope};
use crate::cache::{Subject, Variant};
use crate::error::ReviewError;
use crate::state::AppState;
use crate::{likes, users};

/// A stored review on the wire (`likedByMe` left out: see `likes::mark_liked`).
pub fn to_review(row: ReviewRow) -> Review {
    Review {
        id: row.id,
        user_id: row.user_id,
        username: row.username,
        album_id: row.album_id,
        rating: row.rating_half as f64 / 2.0,
        review_text: row.review_text,
        spoiler: row.spoiler,
        likes: row.likes,
        liked_by_me: None,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }
}

/// Post a review (one per user per album).
#[utoipa::path(post, path = "/reviews", tag = "reviews", request_body = CreateReview, security(("bearer" = [])),
    responses((status = 201, body = Review), (status = 401, body = crate::openapi::ErrorBody),
        (status = 403, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody),
        (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateReview>,
) -> Result<(StatusCode, ApiJson<Review>), ApiError> {
    if req.user_id.as_deref().is_some_and(|id| id != user.id()) {
        return Err(ReviewError::Forbidden("userId must be the token's user").into());
    }
    validate_album_id(&req.album_id)?;
    let rating_half = rating_to_halves(req.rating)?;
    validate_text(&req.review_text)?;
    let now = now_millis();
    let row = ReviewRow {
        id: new_id(),
        user_id: user.0.sub.clone(),
        username: user.0.name.clone(),
        album_id: req.album_id,
        rating_half,
        review_text: req.review_text,
        spoiler: req.spoiler,
        likes: 0,
        created_at: now,
        updated_at: now,
    };
    store::insert(&state.db, &row).await?;
    state.pages.review_written(&row.album_id, &row.user_id).await;
    Ok((StatusCode::CREATED, ApiJson(to_review(row))))
}

/// One review (with `likedByMe` when a token is given).
#[utoipa::path(get, path = "/reviews/{reviewId}", tag = "reviews", params(("reviewId" = String, Path)),
    security((), ("bearer" = [])),
    responses((status = 200, body = Review), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    MaybeAuthUser(caller): MaybeAuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<Review>, ApiError> {
    let row = store::get(&state.db, &id).await?.ok_or(ReviewError::NotFound("review"))?;
    let mut review = to_review(row);
    likes::mark_liked(&state.db, caller.as_ref().map(|c| c.sub.as_str()), std::slice::from_mut(&mut review)).await?;
    Ok(ApiJson(review))
}

/// An album's reviews with rating aggregates and score, newest first by default; with
/// `blind=true` hidden until the caller has reviewed the album.
#[utoipa::path(get, path = "/reviews/album/{albumId}", tag = "reviews",
    description = score::explanation(), security((), ("bearer" = [])),
    params(("albumId" = String, Path, min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_:.-]+$"), AlbumQuery),
    responses((status = 200, body = AlbumPage), (status = 400, body = crate::openapi::ErrorBody),
        (status = 401, description = "`blind=true` without a token, or a bad token", body = crate::openapi::ErrorBody),
        (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn list_by_album(
    State(state): State<AppState>,
    MaybeAuthUser(caller): MaybeAuthUser,
    ApiPath(album_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<AlbumQuery>,
) -> Result<Response, ApiError> {
    validate_album_id(&album_id)?;
    // Blind-first: a different, uncached answer until the caller's own review exists;
    // from then on the one shared page below, byte for byte what everyone gets.
    if query.blind == Some(true) {
        let caller = caller.ok_or_else(|| ApiError::unauthorized("blind=true needs a token"))?;
        if !store::has_reviewed(&state.db, &caller.sub, &album_id).await? {
            return Ok(ApiJson(HiddenAlbumReviews { album_id, hidden: true, items: Vec::new() }).into_response());
        }
    }
    let query = query.listing();
    let json = [(CONTENT_TYPE, "application/json")];
    if query.cursor.is_some() {
        return Ok(ApiJson(album_page(&state, album_id, query).await?).into_response());
    }
    // First pages are what everyone reads: served from the cache, as bytes.
    let (sort, limit) = (query.sort.unwrap_or_default(), page_limit(query.limit)?);
    let load = async {
        metrics::counter!("review_album_page_loads_total").increment(1);
        let page = album_page(&state, album_id.clone(), query).await?;
        serde_json::to_vec(&page).map(Bytes::from).map_err(|e| ReviewError::Internal(e.into()).into())
    };
    let subject = Subject::Album(album_id.clone());
    let page = state.pages.get_or_load(&subject, Variant::AlbumPage { sort, limit }, load).await?;
    Ok((json, page).into_response())
}

/// One page of an album's reviews with its aggregates, from the database.
async fn album_page(state: &AppState, album_id: String, query: ListQuery) -> Result<AlbumReviews, ApiError> {
    let listing = listing(state, Scope::Album(&album_id), query).await?;
    let tally = Tally::from_counts(&listing.counts);
    let prior = state.site_prior.get(&state.db).await?;
    Ok(AlbumReviews {
        album_id,
        total: tally.count,
        average_rating: tally.mean(),
        histogram: histogram(&listing.counts),
        score: score::score(&tally, &prior),
        items: listing.items,
        next_cursor: listing.next_cursor,
    })
}

/// A user's reviews, newest first by default; same paging and sorts as the album
/// listing; `likedByMe` on each when a token is given.
#[utoipa::path(get, path = "/reviews/user/{userId}", tag = "reviews", security((), ("bearer" = [])),
    params(("userId" = String, Path), ListQuery),
    responses((status = 200, body = UserReviews), (status = 400, body = crate::openapi::ErrorBody),
        (status = 404, description = "No such user", body = crate::openapi::ErrorBody)))]
pub async fn list_by_user(
    State(state): State<AppState>,
    MaybeAuthUser(caller): MaybeAuthUser,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<UserReviews>, ApiError> {
    let mut listing = listing(&state, Scope::User(&user_id), query).await?;
    likes::mark_liked(&state.db, caller.as_ref().map(|c| c.sub.as_str()), &mut listing.items).await?;
    let tally = Tally::from_counts(&listing.counts);
    // A user with reviews exists (foreign key); only an empty listing needs the check.
    if tally.count == 0 && !users::store::exists(&state.db, &user_id).await? {
        return Err(ReviewError::NotFound("user").into());
    }
    Ok(ApiJson(UserReviews {
        user_id,
        total: tally.count,
        average_rating: tally.mean(),
        items: listing.items,
        next_cursor: listing.next_cursor,
    }))
}

/// What both listings share: the scope's rating counts and one keyset page.
struct Listing {
    counts: Vec<(i64, i64)>,
    items: Vec<Review>,
    next_cursor: Option<String>,
}

async fn listing(state: &AppState, scope: Scope<'_>, query: ListQuery) -> Result<Listing, ReviewError> {
    let limit = page_limit(query.limit)?;
    let sort = query.sort.unwrap_or_default();
    let cursor = match &query.cursor {
        Some(raw) => Cursor::decode(raw, sort)?,
        None => Cursor::start(sort),
    };
    let counts = store::rating_counts(&state.db, scope).await?;
    // One extra row tells whether another page follows.
    let mut rows = store::page(&state.db, scope, sort, &cursor, limit + 1).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .map(|r| Cursor { rating_half: r.rating_half, created_at: r.created_at, id: r.id.clone() }.encode(sort))
    } else {
        None
    };
    Ok(Listing { counts, items: rows.into_iter().map(to_review).collect(), next_cursor })
}

/// Change the rating, text and/or spoiler flag of your own review.
#[utoipa::path(put, path = "/reviews/{reviewId}", tag = "reviews", params(("reviewId" = String, Path)),
    request_body = UpdateReview, security(("bearer" = [])),
    responses((status = 200, body = Review), (status = 401, body = crate::openapi::ErrorBody),
        (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody),
        (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateReview>,
) -> Result<ApiJson<Review>, ApiError> {
    if req.rating.is_none() && req.review_text.is_none() && req.spoiler.is_none() {
        return Err(ReviewError::invalid("rating", "give rating, reviewText and/or spoiler to change").into());
    }
    let rating_half = req.rating.map(rating_to_halves).transpose()?;
    if let Some(text) = &req.review_text {
        validate_text(text)?;
    }
    let change = Change { rating_half, text: req.review_text.as_deref(), spoiler: req.spoiler };
    let updated = store::update(&state.db, &id, user.id(), change, now_millis()).await?;
    match updated {
        Some(row) => {
            state.pages.review_written(&row.album_id, &row.user_id).await;
            // Read back whole: the author's current name and the likes.
            let row = store::get(&state.db, &id).await?.ok_or(ReviewError::NotFound("review"))?;
            Ok(ApiJson(to_review(row)))
        }
        None => Err(missing_or_foreign(&state, &id).await),
    }
}

/// Delete your own review.
#[utoipa::path(delete, path = "/reviews/{reviewId}", tag = "reviews", params(("reviewId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::openapi::ErrorBody),
        (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    match store::delete(&state.db, &id, user.id()).await? {
        Some(album_id) => {
            state.pages.review_written(&album_id, user.id()).await;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(missing_or_foreign(&state, &id).await),
    }
}

/// After a write matched no row owned by the caller: 404 if absent, else 403.
async fn missing_or_foreign(state: &AppState, id: &str) -> ApiError {
    match store::exists(&state.db, id).await {
        Ok(true) => ReviewError::Forbidden("only the author may change this review").into(),
        Ok(false) => ReviewError::NotFound("review").into(),
        Err(e) => e.into(),
    }
}
