//! Register, login, profile.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use liner_shared::auth::MaybeAuthUser;
use liner_shared::error::ApiPath;
use liner_shared::{ApiError, ApiJson, new_id, now_millis, rfc3339};

use super::limiter::{MAX_FAILURES_PER_ADDR, MAX_FAILURES_PER_USER};
use super::model::*;
use super::store;
use crate::cache::{Subject, Variant};
use crate::error::ReviewError;
use crate::state::AppState;

/// Register a new user.
#[utoipa::path(post, path = "/users/register", tag = "users", request_body = RegisterRequest,
    responses((status = 201, body = RegisteredUser), (status = 400, body = crate::openapi::ErrorBody),
        (status = 409, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody)))]
// 429 (sign-ups per address, with `Retry-After`) comes from the shared `CommonErrors`.
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, ApiJson<RegisteredUser>), ApiError> {
    validate_username(&req.username)?;
    validate_email(&req.email)?;
    validate_password(&req.password)?;
    // Accounts created per client address and hour (0: no limit). Checked before the
    // hash and counted after the insert, so concurrent sign-ups may overshoot by a few.
    let addr_key = format!("addr:{}", state.trusted_proxies.client_addr(&headers, peer.ip()));
    let max = state.registrations_per_addr;
    if max > 0 {
        state
            .registrations
            .check(&addr_key, max)
            .await
            .map_err(|retry_after_secs| ReviewError::RegistrationsLimited { retry_after_secs })?;
    }
    let user = User {
        id: new_id(),
        username: req.username,
        email: req.email,
        password_hash: state.passwords.hash(req.password).await.map_err(ReviewError::Internal)?,
        created_at: now_millis(),
    };
    store::insert(&state.db, &user).await?;
    if max > 0 {
        state.registrations.record(&addr_key).await;
    }
    tracing::info!(user_id = %user.id, "user registered");
    let body = RegisteredUser {
        id: user.id,
        username: user.username,
        email: user.email,
        created_at: rfc3339(user.created_at),
    };
    Ok((StatusCode::CREATED, ApiJson(body)))
}

/// Log in with username (or email) and password; returns a bearer token.
#[utoipa::path(post, path = "/users/login", tag = "users", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
        (status = 401, description = "unknown user or wrong password (one message for both)", body = crate::openapi::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<ApiJson<LoginResponse>, ApiError> {
    let user = if req.username.contains('@') {
        store::find_by_email(&state.db, &req.username).await?
    } else {
        store::find_by_username(&state.db, &req.username).await?
    };
    // Failures count per account (name in any case and email share one counter), and per
    // typed text for names that match no account.
    let user_key = match &user {
        Some(user) => format!("user:{}", user.id),
        None => format!("name:{}", req.username.to_lowercase()),
    };
    let addr_key = format!("addr:{}", state.trusted_proxies.client_addr(&headers, peer.ip()));
    let limiter = &state.login_failures;
    for (key, max) in [(&user_key, MAX_FAILURES_PER_USER), (&addr_key, MAX_FAILURES_PER_ADDR)] {
        limiter.check(key, max).await.map_err(|retry_after_secs| ReviewError::LoginLocked { retry_after_secs })?;
    }
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = state.passwords.verify(req.password, hash).await.map_err(ReviewError::Internal)?;
    let Some(user) = user.filter(|_| ok) else {
        limiter.record(&user_key).await;
        limiter.record(&addr_key).await;
        return Err(ReviewError::BadCredentials.into());
    };
    limiter.reset(&user_key).await;
    let token = state.signer.issue(&user.id, &user.username).map_err(ReviewError::Internal)?;
    Ok(ApiJson(LoginResponse {
        token,
        token_type: "Bearer",
        expires_in: state.signer.ttl_secs(),
        user: UserRef { id: user.id, username: user.username },
    }))
}

/// A user's public profile (with `email` when the caller is that user).
#[utoipa::path(get, path = "/users/profile/{userId}", tag = "users", security((), ("bearer" = [])),
    params(("userId" = String, Path, description = "user id")),
    responses((status = 200, body = Profile), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn profile(
    State(state): State<AppState>,
    MaybeAuthUser(caller): MaybeAuthUser,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let is_self = caller.is_some_and(|c| c.sub == user_id);
    if is_self {
        // The owner's view carries the email: never cached.
        return Ok(ApiJson(load_profile(&state, &user_id, true).await?).into_response());
    }
    let load = async {
        let profile = load_profile(&state, &user_id, false).await?;
        serde_json::to_vec(&profile).map(Bytes::from).map_err(|e| ReviewError::Internal(e.into()).into())
    };
    let page = state.pages.get_or_load(&Subject::User(user_id.clone()), Variant::Profile, load).await?;
    Ok(([(CONTENT_TYPE, "application/json")], page).into_response())
}

/// A profile from the database (404 for an unknown user: not cached).
async fn load_profile(state: &AppState, user_id: &str, with_email: bool) -> Result<Profile, ApiError> {
    let user = store::find_by_id(&state.db, user_id).await?.ok_or(ReviewError::NotFound("user"))?;
    let (review_count, average_rating) = store::review_stats(&state.db, &user.id).await?;
    let (followers, following) = crate::follows::store::counts(&state.db, &user.id).await?;
    let blind_first = if with_email { store::blind_first(&state.db, &user.id).await? } else { None };
    Ok(Profile {
        id: user.id,
        username: user.username,
        created_at: rfc3339(user.created_at),
        review_count,
        average_rating,
        followers,
        following,
        email: with_email.then_some(user.email),
        blind_first,
    })
}
