//! Moderation and report endpoints (see the module doc of `moderation`).

use axum::extract::State;
use axum::http::StatusCode;
use liner_shared::error::{ApiPath, ApiQuery};
use liner_shared::{ApiError, ApiJson, new_id, now_millis};

use super::model::{
    KickRequest, Moderation, Mute, MuteRequest, Report, ReportRequest, ReportStatus, ReportsQuery, SlowModeRequest,
    valid_user_id, validate_mute_secs, validate_reason, validate_slow_mode_secs,
};
use super::store::{self as mod_store, NewReport};
use crate::auth::Caller;
use crate::chat::hub::Event;
use crate::error::{ForumError, Result};
use crate::rooms::model::{EventKind, Room};
use crate::rooms::store::{self, Appended, Effect, NewMessage, RoomRow, StoredMessage};
use crate::state::AppState;

/// Takes a token from the caller's community-write bucket (moderation, reports, threads;
/// 429 when empty).
pub(crate) fn limit(state: &AppState, user: &Caller) -> Result<()> {
    match &*state.moderation_limit {
        Some(limit) => limit
            .check(&user.id().to_owned())
            .map_err(|wait| ForumError::RateLimited { retry_after_secs: wait.as_secs().max(1) }),
        None => Ok(()),
    }
}

async fn room(state: &AppState, room_id: &str) -> Result<RoomRow> {
    store::get_room(&state.db, room_id).await?.ok_or(ForumError::NotFound("room"))
}

fn is_moderator(state: &AppState, room: &RoomRow, user: &Caller) -> bool {
    state.chat.may_moderate(&room.created_by, user.id(), &user.username)
}

/// The room, when the caller moderates it (404 / 403 otherwise).
async fn moderated_room(state: &AppState, room_id: &str, user: &Caller) -> Result<RoomRow> {
    let room = room(state, room_id).await?;
    if !is_moderator(state, &room, user) {
        return Err(ForumError::forbidden("not_moderator", "only the room's creator or an admin may do this"));
    }
    Ok(room)
}

/// Stores a moderation event and fans it out; None when it changed nothing.
async fn record(state: &AppState, msg: NewMessage<'_>) -> Result<Option<StoredMessage>> {
    let room_id = msg.room_id;
    match store::append(&state.db, &state.writes, msg).await? {
        Appended::Stored { message: m, .. } => {
            tracing::info!(%room_id, kind = m.kind.as_str(), by = %m.user_id, seq = m.seq, "moderation event");
            state.fanout.publish(room_id, Event::stored(&m)).await;
            Ok(Some(*m))
        }
        Appended::RoomClosed => Err(ForumError::RoomClosed),
        Appended::NoChange | Appended::Duplicate { .. } | Appended::Held(_) => Ok(None),
    }
}

/// The target of a mute or kick: a user the review service knows (404 otherwise; its
/// id when it cannot be asked), and not a moderator of the room (422).
async fn target(state: &AppState, room: &RoomRow, user_id: &str) -> Result<String> {
    if !valid_user_id(user_id) {
        return Err(ForumError::NotFound("user"));
    }
    let username = match state.users.lookup(user_id).await {
        Some(Some(name)) => name,
        Some(None) => return Err(ForumError::NotFound("user")),
        None => user_id.to_owned(),
    };
    if state.chat.may_moderate(&room.created_by, user_id, &username) {
        return Err(ForumError::invalid("userId", "moderators cannot be muted or kicked"));
    }
    Ok(username)
}

/// Delete a message (a moderator, or its author): it becomes a tombstone for every
/// member, live and in history, as a sequenced `delete` event. Deleting a deleted message is a no-op.
#[utoipa::path(delete, path = "/rooms/{roomId}/messages/{messageId}", tag = "moderation",
    params(("roomId" = String, Path), ("messageId" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody),
        (status = 410, body = crate::openapi::ErrorBody)))]
pub async fn delete_message(
    State(state): State<AppState>,
    user: Caller,
    ApiPath((room_id, message_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    limit(&state, &user)?;
    let room = room(&state, &room_id).await?;
    let message = store::get_message(&state.db, &room_id, &message_id)
        .await?
        .filter(|m| m.kind == EventKind::Message)
        .ok_or(ForumError::NotFound("message"))?;
    if message.user_id != user.id() && !is_moderator(&state, &room, &user) {
        return Err(
            ForumError::forbidden("not_moderator", "only its author or a moderator may delete a message").into()
        );
    }
    if message.deleted_at.is_none() {
        let event = NewMessage {
            room_id: &room_id,
            kind: EventKind::Delete,
            user_id: user.id(),
            username: &user.username,
            target_id: Some(&message_id),
            moderator: true,
            effect: Effect::Delete { message_id: &message_id },
            ..NewMessage::default()
        };
        record(&state, event).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Mute a member for `seconds` (moderators): their sends and edits are refused with
/// `muted` until then. Muting again replaces the end. A sequenced `mute` event.
#[utoipa::path(put, path = "/rooms/{roomId}/mutes/{userId}", tag = "moderation", request_body = MuteRequest,
    params(("roomId" = String, Path), ("userId" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Mute), (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody), (status = 410, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn mute(
    State(state): State<AppState>,
    user: Caller,
    ApiPath((room_id, target_id)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<MuteRequest>,
) -> Result<ApiJson<Mute>, ApiError> {
    limit(&state, &user)?;
    validate_mute_secs(req.seconds)?;
    let room = moderated_room(&state, &room_id, &user).await?;
    let username = target(&state, &room, &target_id).await?;
    let until = now_millis() + req.seconds * 1000;
    let event = NewMessage {
        room_id: &room_id,
        kind: EventKind::Mute,
        user_id: user.id(),
        username: &user.username,
        target_id: Some(&target_id),
        target_name: Some(&username),
        amount: Some(until),
        moderator: true,
        effect: Effect::Mute { until },
        ..NewMessage::default()
    };
    record(&state, event).await?;
    Ok(ApiJson(Mute { user_id: target_id, username, until: liner_shared::rfc3339(until) }))
}

/// End a member's mute (moderators); a sequenced `unmute` event when one was running.
#[utoipa::path(delete, path = "/rooms/{roomId}/mutes/{userId}", tag = "moderation",
    params(("roomId" = String, Path), ("userId" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody),
        (status = 410, body = crate::openapi::ErrorBody)))]
pub async fn unmute(
    State(state): State<AppState>,
    user: Caller,
    ApiPath((room_id, target_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    limit(&state, &user)?;
    moderated_room(&state, &room_id, &user).await?;
    let username = state.users.lookup(&target_id).await.flatten().unwrap_or_else(|| target_id.clone());
    let event = NewMessage {
        room_id: &room_id,
        kind: EventKind::Unmute,
        user_id: user.id(),
        username: &user.username,
        target_id: Some(&target_id),
        target_name: Some(&username),
        moderator: true,
        effect: Effect::Unmute,
        ..NewMessage::default()
    };
    record(&state, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Kick a member (moderators): their live connections to the room, on every replica,
/// get the `kick` frame and close with 4403. They may connect again. A sequenced `kick` event.
#[utoipa::path(post, path = "/rooms/{roomId}/kicks", tag = "moderation", request_body = KickRequest,
    params(("roomId" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody), (status = 410, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn kick(
    State(state): State<AppState>,
    user: Caller,
    ApiPath(room_id): ApiPath<String>,
    ApiJson(req): ApiJson<KickRequest>,
) -> Result<StatusCode, ApiError> {
    limit(&state, &user)?;
    let room = moderated_room(&state, &room_id, &user).await?;
    let username = target(&state, &room, &req.user_id).await?;
    let event = NewMessage {
        room_id: &room_id,
        kind: EventKind::Kick,
        user_id: user.id(),
        username: &user.username,
        target_id: Some(&req.user_id),
        target_name: Some(&username),
        moderator: true,
        ..NewMessage::default()
    };
    record(&state, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set slow mode (moderators): one message per member per `seconds` (0: off; moderators
/// exempt); sends that come sooner are refused with `slow_mode`. A sequenced `slowmode` event.
/// The choice is the moderator's: adaptive slow mode leaves the room alone for 10 minutes
/// (setting the value the rule had switched on makes it the moderator's to keep).
#[utoipa::path(put, path = "/rooms/{roomId}/slow-mode", tag = "moderation", request_body = SlowModeRequest,
    params(("roomId" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Room), (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody), (status = 410, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn slow_mode(
    State(state): State<AppState>,
    user: Caller,
    ApiPath(room_id): ApiPath<String>,
    ApiJson(req): ApiJson<SlowModeRequest>,
) -> Result<ApiJson<Room>, ApiError> {
    limit(&state, &user)?;
    validate_slow_mode_secs(req.seconds)?;
    moderated_room(&state, &room_id, &user).await?;
    let event = NewMessage {
        room_id: &room_id,
        kind: EventKind::SlowMode,
        user_id: user.id(),
        username: &user.username,
        amount: Some(req.seconds),
        moderator: true,
        effect: Effect::SlowMode { secs: req.seconds },
        ..NewMessage::default()
    };
    record(&state, event).await?;
    let row = room(&state, &room_id).await?;
    let online = state.fanout.online(&row.id).await;
    Ok(ApiJson(row.into_view(online)))
}

/// The room's slow mode and running mutes, and whether the caller moderates the room.
#[utoipa::path(get, path = "/rooms/{roomId}/moderation", tag = "moderation",
    params(("roomId" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Moderation), (status = 401, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn moderation(
    State(state): State<AppState>,
    user: Caller,
    ApiPath(room_id): ApiPath<String>,
) -> Result<ApiJson<Moderation>, ApiError> {
    let room = room(&state, &room_id).await?;
    let mutes = mod_store::active_mutes(&state.db, &room_id, now_millis()).await?;
    let moderator = is_moderator(&state, &room, &user);
    let slow_mode_automatic = room.slow_mode_auto_since > 0;
    Ok(ApiJson(Moderation { moderator, slow_mode_secs: room.slow_mode_secs, slow_mode_automatic, mutes }))
}

/// Report a message to the room's moderators (any member, once per message, not one's own).
#[utoipa::path(post, path = "/rooms/{roomId}/messages/{messageId}/reports", tag = "moderation", request_body = ReportRequest,
    params(("roomId" = String, Path), ("messageId" = String, Path)), security(("bearer" = [])),
    responses((status = 201, body = Report), (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody),
        (status = 403, description = "one's own message", body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody),
        (status = 409, description = "reported already; `error.existingId` names the report", body = crate::openapi::ErrorBody),
        (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    user: Caller,
    ApiPath((room_id, message_id)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<ReportRequest>,
) -> Result<(StatusCode, ApiJson<Report>), ApiError> {
    limit(&state, &user)?;
    let reason = validate_reason(&req.reason)?;
    room(&state, &room_id).await?;
    let message = store::get_message(&state.db, &room_id, &message_id)
        .await?
        .filter(|m| m.kind == EventKind::Message)
        .ok_or(ForumError::NotFound("message"))?;
    if message.user_id == user.id() {
        return Err(ForumError::forbidden("own_message", "you cannot report your own message").into());
    }
    let id = new_id();
    let new = NewReport {
        id: &id,
        room_id: &room_id,
        message_id: &message_id,
        reporter_id: user.id(),
        reporter_name: &user.username,
        reason: &reason,
        created_at: now_millis(),
    };
    mod_store::insert_report(&state.db, &new).await?;
    let report = mod_store::get_report(&state.db, &room_id, &id).await?.ok_or(ForumError::NotFound("report"))?;
    Ok((StatusCode::CREATED, ApiJson(report)))
}

/// The room's reports (moderators), oldest first, each with the message as it stands.
#[utoipa::path(get, path = "/rooms/{roomId}/reports", tag = "moderation",
    params(("roomId" = String, Path), ReportsQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<Report>), (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody),
        (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn reports(
    State(state): State<AppState>,
    user: Caller,
    ApiPath(room_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReportsQuery>,
) -> Result<ApiJson<Vec<Report>>, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") | Some("open") => ReportStatus::Open,
        Some("resolved") => ReportStatus::Resolved,
        Some(_) => return Err(ForumError::BadQuery("status must be open or resolved".into()).into()),
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ForumError::BadQuery("limit must be 1 to 200".into()).into());
    }
    moderated_room(&state, &room_id, &user).await?;
    Ok(ApiJson(mod_store::list_reports(&state.db, &room_id, status, limit).await?))
}

/// Resolve a report (moderators); resolving a resolved report changes nothing.
#[utoipa::path(post, path = "/rooms/{roomId}/reports/{reportId}/resolve", tag = "moderation",
    params(("roomId" = String, Path), ("reportId" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Report), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn resolve(
    State(state): State<AppState>,
    user: Caller,
    ApiPath((room_id, report_id)): ApiPath<(String, String)>,
) -> Result<ApiJson<Report>, ApiError> {
    limit(&state, &user)?;
    moderated_room(&state, &room_id, &user).await?;
    mod_store::get_report(&state.db, &room_id, &report_id).await?.ok_or(ForumError::NotFound("report"))?;
    mod_store::resolve_report(&state.db, &room_id, &report_id, user.id(), now_millis()).await?;
    let report = mod_store::get_report(&state.db, &room_id, &report_id).await?.ok_or(ForumError::NotFound("report"))?;
    Ok(ApiJson(report))
}
