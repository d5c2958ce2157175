//! What a member's client frames do: a chat line is stored (a reply in a review's thread
//! when it names `threadId`), an edit rewrites one of the member's own messages, `typing`
//! is passed on. Each answers with an `ack`, an `error`
//! frame, or nothing.
//!
//! Why edits travel over the WebSocket (rather than a REST `PATCH`): they are the
//! author's own chat, made while connected, and get what sends get — the connection's
//! rate limit, `clientMsgId` idempotency and an `ack` with the seq of the stored event,
//! which every member (the author included) then receives in order. Moderation, which
//! moderators may do without being in the room and which answers 403 to others, is REST
//! (`moderation`).
//!
//! Typing is throttled per member, not per connection: at most one `typing` frame per
//! user and room per [`TYPING_EVERY`] leaves a replica ([`TypingThrottle`], one map that
//! all of the replica's connections share), the rest are dropped without an answer (a
//! client may send one per keystroke, and a person with two tabs open sends from both).
//! It is never stored, never sequenced, and crosses replicas on the best-effort fan-out.
//!
//! Per replica, not across replicas: a person whose tabs are connected to two replicas
//! may pass one frame per 3 s from each. That is enough: the throttle is there so that
//! keystrokes do not flood the other members and the fan-out, and a person has few
//! connections, each rate limited, so the worst case is a small constant factor, while
//! the "is typing…" line reads the same for one frame or two. Agreeing across replicas
//! would cost a Redis round trip per typing frame for nothing anyone would see.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message;
use moka::sync::Cache;
use tokio::sync::mpsc;

use super::hub::Event;
use super::protocol::{self, ClientFrame, Refusal, ServerFrame};
use super::session::{Conn, Ctl, push};
use crate::moderation::adaptive;
use crate::rooms::model::{EDIT_WINDOW_MS, EventKind};
use crate::rooms::store::{self, Appended, Effect, Hold, NewMessage};
use crate::state::AppState;

/// At most one `typing` frame per user and room leaves a replica per this long.
pub const TYPING_EVERY: Duration = Duration::from_secs(3);

/// Members typing at once on one replica that the throttle keeps apart. Past it the
/// oldest entries are evicted before their 3 s are up, so a typist may be passed on a
/// little more often — never less, and each connection is still rate limited.
const TYPING_CAPACITY: u64 = 10_000;

/// Who has been passed on as typing, per (room, user), within the last [`TYPING_EVERY`]
/// on this replica: an entry lives that long, and while it does that member's `typing`
/// frames are dropped, from any of their connections. Cheap to clone (one shared map).
#[derive(Clone)]
pub struct TypingThrottle {
    recent: Cache<(String, String), ()>,
}

impl Default for TypingThrottle {
    fn default() -> Self {
        TypingThrottle { recent: Cache::builder().max_capacity(TYPING_CAPACITY).time_to_live(TYPING_EVERY).build() }
    }
}

impl TypingThrottle {
    /// Whether this member's typing is passed on now; true at most once per
    /// [`TYPING_EVERY`] for a room and user, however many connections ask at once:
    /// `or_insert_with` makes racing calls for one key one insert, and only its caller
    /// sees a fresh entry (`or_insert` looks, then inserts, so two racing tabs could
    /// both pass).
    pub fn admit(&self, room_id: &str, user_id: &str) -> bool {
        self.recent.entry((room_id.to_owned(), user_id.to_owned())).or_insert_with(|| ()).is_fresh()
    }
}

/// A refusal to answer with, and whether it counts as a strike against the connection.
type Answer = Option<(Refusal, bool)>;

/// Handles one text frame of a member.
pub(super) async fn handle(text: &str, tx: &mpsc::Sender<Message>, ctl: &Ctl, state: &AppState, conn: &Conn) -> Answer {
    match protocol::parse_client_frame(text, &conn.room_id, &conn.user_id) {
        Err(refusal) => Some((refusal, true)),
        Ok(ClientFrame::Send(send)) => {
            if let Some(thread_id) = &send.thread_id
                && let Some(refusal) = check_thread(state, conn, thread_id, &send.client_msg_id).await
            {
                return Some(refusal);
            }
            let author_rating_half = match &conn.album_id {
                Some(album) => state.ratings.of_user(album, &conn.user_id).await,
                None => None,
            };
            let msg = NewMessage {
                room_id: &conn.room_id,
                user_id: &conn.user_id,
                username: &conn.username,
                client_msg_id: send.client_msg_id.as_deref(),
                body: &send.message,
                moderator: conn.moderator,
                author_rating_half,
                thread_id: send.thread_id.as_deref(),
                ..NewMessage::default()
            };
            let appended = store::append(&state.db, &state.writes, msg).await;
            answer(appended, send.client_msg_id, tx, ctl, state, conn).await
        }
        Ok(ClientFrame::Edit { message_id, message, client_msg_id }) => {
            edit(&message_id, &message, client_msg_id, tx, ctl, state, conn).await
        }
        Ok(ClientFrame::Typing) => {
            typing(state, conn).await;
            None
        }
    }
}

/// Passes the member's typing on to the room, unless [`TypingThrottle`] says it just was.
async fn typing(state: &AppState, conn: &Conn) {
    if !state.typing.admit(&conn.room_id, &conn.user_id) {
        return;
    }
    let frame = ServerFrame::Typing {
        room_id: conn.room_id.clone(),
        user_id: conn.user_id.clone(),
        username: conn.username.clone(),
    };
    let event = Event::Typing { user_id: Arc::from(conn.user_id.as_str()), frame: frame.to_text() };
    state.fanout.publish(&conn.room_id, event).await;
}

/// A reply's thread must be a line of this room that quotes a review; the refusal otherwise.
async fn check_thread(state: &AppState, conn: &Conn, thread_id: &str, client_msg_id: &Option<String>) -> Answer {
    match store::get_message(&state.db, &conn.room_id, thread_id).await {
        Ok(Some(opener)) if opener.quote.is_some() => None,
        Ok(_) => Some((Refusal::new("thread_not_found", "no such thread in this room", client_msg_id.clone()), true)),
        Err(e) => {
            tracing::warn!(error = %e, room_id = %conn.room_id, "thread not checked");
            Some((
                Refusal::new(
                    "unavailable",
                    "message not stored; retry with the same clientMsgId",
                    client_msg_id.clone(),
                ),
                false,
            ))
        }
    }
}

/// Checks that the member may edit the message (theirs, a chat line, not deleted, within
/// [`EDIT_WINDOW_MS`]), then stores the edit; the store checks again in its transaction.
async fn edit(
    message_id: &str,
    message: &str,
    client_msg_id: Option<String>,
    tx: &mpsc::Sender<Message>,
    ctl: &Ctl,
    state: &AppState,
    conn: &Conn,
) -> Answer {
    let refuse = |code, text: &str, strike| Some((Refusal::new(code, text, client_msg_id.clone()), strike));
    let target = match store::get_message(&state.db, &conn.room_id, message_id).await {
        Ok(target) => target,
        Err(e) => {
            tracing::warn!(error = %e, room_id = %conn.room_id, "edit not stored");
            return refuse("unavailable", "edit not stored; retry with the same clientMsgId", false);
        }
    };
    let not_before = liner_shared::now_millis() - EDIT_WINDOW_MS;
    match target {
        Some(t) if t.kind == EventKind::Message => {
            if t.quote.is_some() {
                return refuse("not_editable", "a quoted review cannot be edited", false);
            }
            if t.user_id != conn.user_id {
                return refuse("not_author", "only its author may edit a message", true);
            }
            if t.deleted_at.is_some() {
                return refuse("message_deleted", "the message was deleted", false);
            }
            if t.sent_at < not_before {
                return refuse("edit_window_closed", "a message can be edited for 15 minutes after it was sent", false);
            }
        }
        _ => return refuse("message_not_found", "no such message in this room", true),
    }
    let msg = NewMessage {
        room_id: &conn.room_id,
        kind: EventKind::Edit,
        user_id: &conn.user_id,
        username: &conn.username,
        client_msg_id: client_msg_id.as_deref(),
        body: message,
        target_id: Some(message_id),
        moderator: conn.moderator,
        effect: Effect::Edit { message_id, not_before },
        ..NewMessage::default()
    };
    let appended = store::append(&state.db, &state.writes, msg).await;
    answer(appended, client_msg_id, tx, ctl, state, conn).await
}

/// Acks a stored row and hands it to the fan-out, or says why it was not stored.
async fn answer(
    appended: crate::error::Result<Appended>,
    client_msg_id: Option<String>,
    tx: &mpsc::Sender<Message>,
    ctl: &Ctl,
    state: &AppState,
    conn: &Conn,
) -> Answer {
    let refuse = |refusal: Refusal| Some((refusal, false));
    match appended {
        Ok(Appended::Stored { message: m, slow_mode_secs }) => {
            metrics::counter!("forum_messages_stored_total").increment(1);
            push(tx, ctl, ServerFrame::Ack { client_msg_id, id: m.id.clone(), seq: m.seq }.to_text());
            state.fanout.publish(&conn.room_id, Event::stored(&m)).await;
            adaptive::after_message(state, &m, slow_mode_secs).await;
            None
        }
        Ok(Appended::Duplicate { id, seq }) => {
            push(tx, ctl, ServerFrame::Ack { client_msg_id, id, seq }.to_text());
            None
        }
        Ok(Appended::RoomClosed) => refuse(Refusal::new("room_closed", "the room is closed", client_msg_id)),
        Ok(Appended::Held(Hold::Muted { until })) => {
            let text = format!("you are muted in this room until {}", liner_shared::rfc3339(until));
            refuse(Refusal::new("muted", text, client_msg_id).retry_after_ms(until - liner_shared::now_millis()))
        }
        Ok(Appended::Held(Hold::SlowMode { retry_after_ms })) => {
            let text = format!("slow mode: wait {} s before your next message", (retry_after_ms + 999) / 1000);
            refuse(Refusal::new("slow_mode", text, client_msg_id).retry_after_ms(retry_after_ms))
        }
        Ok(Appended::NoChange) => {
            refuse(Refusal::new("message_deleted", "the message was deleted or can no longer be edited", client_msg_id))
        }
        Err(e) => {
            tracing::warn!(error = %e, room_id = %conn.room_id, "message not stored");
            refuse(Refusal::new("unavailable", "message not stored; retry with the same clientMsgId", client_msg_id))
        }
    }
}
