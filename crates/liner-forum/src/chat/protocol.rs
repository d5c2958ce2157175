//! WebSocket frames, exactly as `API.md` fixes them (plus the frames issue 12 adds),
//! and the parsing of client frames.
//!
//! Client frames are told apart by `type`: absent or `"message"` (a chat line, the
//! original frame), `"edit"` (the author rewrites a message) and `"typing"`.
//!
//! Parsing never fails the connection: every problem becomes a `(code, message)` pair
//! that the session sends back as an `error` frame. Codes are stable snake_case:
//! `bad_frame` (not JSON, not an object, binary, wrong field type, unknown type),
//! `missing_field`, `invalid_message` (blank), `message_too_long`,
//! `invalid_client_msg_id`, `invalid_message_id`, `invalid_thread_id`, `wrong_room`,
//! `wrong_user`, `rate_limited`, `room_closed`, `unavailable`, and for sends and edits
//! that the room refuses: `muted`, `slow_mode` (both with `retryAfter` seconds),
//! `message_not_found`, `thread_not_found`, `not_author`, `not_editable` (a quoted
//! review), `edit_window_closed`, `message_deleted`.

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};

use crate::rooms::model::{EventKind, MessageView};
use crate::rooms::store::StoredMessage;

/// Longest message, in characters (Unicode scalar values).
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Longest client message id, in characters.
pub const MAX_CLIENT_MSG_ID_CHARS: usize = 64;
/// Longest message id a client may name, in characters (ours are 36).
const MAX_MESSAGE_ID_CHARS: usize = 64;

/// What a client sends: `{"type"?, "userId"?, "roomId", "message"?, "messageId"?, "threadId"?, "clientMsgId"?}`.
/// `userId` may be left out (it is the token's subject either way).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawClientFrame {
    #[serde(rename = "type")]
    kind: Option<String>,
    user_id: Option<String>,
    room_id: Option<String>,
    message: Option<String>,
    message_id: Option<String>,
    thread_id: Option<String>,
}

/// A chat line that passed every check.
#[derive(Debug, PartialEq, Eq)]
pub struct Send {
    pub message: String,
    pub client_msg_id: Option<String>,
    /// A reply in this thread (the id of the line that quotes a review).
    pub thread_id: Option<String>,
}

/// A client frame that passed every check.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientFrame {
    Send(Send),
    /// The author's new text for one of their messages.
    Edit {
        message_id: String,
        message: String,
        client_msg_id: Option<String>,
    },
    /// The member is typing (forwarded, throttled, never stored).
    Typing,
}

/// A refused client frame: the `error` frame to answer with.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    pub client_msg_id: Option<String>,
    /// Seconds until the same frame may succeed (mutes, slow mode).
    pub retry_after: Option<u64>,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>, client_msg_id: Option<String>) -> Self {
        Self { code, message: message.into(), client_msg_id, retry_after: None }
    }

    pub fn retry_after_ms(mut self, ms: i64) -> Self {
        self.retry_after = Some(u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000).max(1));
        self
    }
}

/// A message id a client may name: 1–64 printable characters (ours are 36).
fn valid_message_id(id: &str) -> bool {
    let len = id.chars().count();
    (1..=MAX_MESSAGE_ID_CHARS).contains(&len) && !id.chars().any(char::is_control)
}

/// Parses and checks one text frame from `user_id`, connected to `room_id`.
pub fn parse_client_frame(text: &str, room_id: &str, user_id: &str) -> Result<ClientFrame, Refusal> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| Refusal::new("bad_frame", "frame is not valid JSON", None))?;
    if !value.is_object() {
        return Err(Refusal::new("bad_frame", "frame must be a JSON object", None));
    }
    // The id first, so that every later refusal can name it.
    let client_msg_id = match value.get("clientMsgId") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Refusal::new("bad_frame", "clientMsgId must be a string", None)),
    };
    let raw: RawClientFrame = serde_json::from_value(value)
        .map_err(|e| Refusal::new("bad_frame", format!("bad field: {e}"), client_msg_id.clone()))?;
    if let Some(cid) = &client_msg_id {
        let len = cid.chars().count();
        if len == 0 || len > MAX_CLIENT_MSG_ID_CHARS || cid.chars().any(char::is_control) {
            return Err(Refusal::new(
                "invalid_client_msg_id",
                "clientMsgId must be 1 to 64 printable characters",
                None,
            ));
        }
    }
    let refuse = |code, message: &str| Refusal::new(code, message, client_msg_id.clone());
    let Some(frame_room) = raw.room_id else { return Err(refuse("missing_field", "roomId is required")) };
    if frame_room != room_id {
        return Err(refuse("wrong_room", "roomId is not the room this connection joined"));
    }
    if raw.user_id.as_deref().is_some_and(|u| u != user_id) {
        return Err(refuse("wrong_user", "userId is not the token's user"));
    }
    match raw.kind.as_deref() {
        None | Some("message") => {
            let message = checked_text(raw.message).map_err(|(code, m)| refuse(code, m))?;
            if raw.thread_id.as_deref().is_some_and(|id| !valid_message_id(id)) {
                return Err(refuse("invalid_thread_id", "threadId must be 1 to 64 printable characters"));
            }
            Ok(ClientFrame::Send(Send { message, client_msg_id, thread_id: raw.thread_id }))
        }
        Some("edit") => {
            let Some(message_id) = raw.message_id else { return Err(refuse("missing_field", "messageId is required")) };
            if !valid_message_id(&message_id) {
                return Err(refuse("invalid_message_id", "messageId must be 1 to 64 printable characters"));
            }
            let message = checked_text(raw.message).map_err(|(code, m)| refuse(code, m))?;
            Ok(ClientFrame::Edit { message_id, message, client_msg_id })
        }
        Some("typing") => Ok(ClientFrame::Typing),
        Some(_) => Err(refuse("bad_frame", "type must be message, edit or typing")),
    }
}

/// A message's text: present, 1–2,000 characters, not blank.
fn checked_text(message: Option<String>) -> Result<String, (&'static str, &'static str)> {
    let Some(message) = message else { return Err(("missing_field", "message is required")) };
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(("message_too_long", "message must be at most 2000 characters"));
    }
    if message.trim().is_empty() {
        return Err(("invalid_message", "message must be 1 to 2000 characters and not blank"));
    }
    Ok(message)
}

#[derive(Debug, Serialize)]
pub struct UserRef {
    #[serde(rename = "userId")]
    pub user_id: String,
    pub username: String,
}

/// What every sequenced room event frame carries: its own id and seq, and who did it
/// (the author of an edit, the moderator of a moderation event) when.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventHead {
    pub id: String,
    pub seq: i64,
    pub room_id: String,
    pub user_id: String,
    pub username: String,
    pub sent_at: String,
}

/// Everything the server sends, tagged by `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", rename_all_fields = "camelCase")]
pub enum ServerFrame {
    Message(MessageView),
    /// The author edited `messageId`; `message` is its new text.
    Edit {
        #[serde(flatten)]
        head: EventHead,
        message_id: String,
        message: String,
    },
    /// `messageId` is now a tombstone.
    Delete {
        #[serde(flatten)]
        head: EventHead,
        message_id: String,
    },
    /// `target` may not send (or edit) until `until`.
    Mute {
        #[serde(flatten)]
        head: EventHead,
        target: UserRef,
        until: String,
    },
    Unmute {
        #[serde(flatten)]
        head: EventHead,
        target: UserRef,
    },
    /// `target`'s connections to the room are closed (4403).
    Kick {
        #[serde(flatten)]
        head: EventHead,
        target: UserRef,
    },
    /// Slow mode is now `seconds` (0: off); `automatic`: switched by adaptive slow mode
    /// (the room got busy, or calmed down), not by a moderator.
    #[serde(rename = "slowmode")]
    SlowMode {
        #[serde(flatten)]
        head: EventHead,
        seconds: i64,
        automatic: bool,
    },
    /// Not stored, not sequenced: `userId` is typing.
    Typing {
        room_id: String,
        user_id: String,
        username: String,
    },
    Ack {
        client_msg_id: Option<String>,
        id: String,
        seq: i64,
    },
    Error {
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    Presence {
        #[serde(skip_serializing_if = "Option::is_none")]
        joined: Option<UserRef>,
        #[serde(skip_serializing_if = "Option::is_none")]
        left: Option<UserRef>,
        online: u64,
    },
    Closed,
}

impl ServerFrame {
    pub fn to_text(&self) -> Utf8Bytes {
        // Serialising these plain structs cannot fail; fall back to a valid frame anyway.
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"internal error"}"#.into())
            .into()
    }
}

impl From<Refusal> for ServerFrame {
    fn from(r: Refusal) -> Self {
        ServerFrame::Error {
            code: r.code,
            message: r.message,
            client_msg_id: r.client_msg_id,
            retry_after: r.retry_after,
        }
    }
}

impl From<&StoredMessage> for ServerFrame {
    /// The frame of a row of the room's log, live or replayed.
    fn from(m: &StoredMessage) -> Self {
        let head = || EventHead {
            id: m.id.clone(),
            seq: m.seq,
            room_id: m.room_id.clone(),
            user_id: m.user_id.clone(),
            username: m.username.clone(),
            sent_at: liner_shared::rfc3339(m.sent_at),
        };
        let target_id = m.target_id.clone().unwrap_or_default();
        let target = || UserRef {
            user_id: target_id.clone(),
            username: m.target_name.clone().unwrap_or_else(|| target_id.clone()),
        };
        match m.kind {
            EventKind::Message => ServerFrame::Message(m.view()),
            EventKind::Edit => {
                ServerFrame::Edit { head: head(), message_id: target_id.clone(), message: m.body.clone() }
            }
            EventKind::Delete => ServerFrame::Delete { head: head(), message_id: target_id.clone() },
            EventKind::Mute => ServerFrame::Mute {
                head: head(),
                target: target(),
                until: liner_shared::rfc3339(m.amount.unwrap_or(m.sent_at)),
            },
            EventKind::Unmute => ServerFrame::Unmute { head: head(), target: target() },
            EventKind::Kick => ServerFrame::Kick { head: head(), target: target() },
            EventKind::SlowMode => ServerFrame::SlowMode {
                head: head(),
                seconds: m.amount.unwrap_or(0),
                automatic: m.target_id.as_deref() == Some(crate::moderation::adaptive::AUTOMATIC),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> &'static str {
        parse_client_frame(text, "r1", "u1").unwrap_err().code
    }

    #[test]
    fn good_frames_pass() {
        let ok = parse_client_frame(r#"{"userId":"u1","roomId":"r1","message":"hi","clientMsgId":"c1"}"#, "r1", "u1");
        assert_eq!(
            ok,
            Ok(ClientFrame::Send(Send { message: "hi".into(), client_msg_id: Some("c1".into()), thread_id: None }))
        );
        let ok = parse_client_frame(r#"{"type":"message","roomId":"r1","message":"hi"}"#, "r1", "u1");
        assert_eq!(ok, Ok(ClientFrame::Send(Send { message: "hi".into(), client_msg_id: None, thread_id: None })));
        let ok = parse_client_frame(r#"{"type":"edit","roomId":"r1","messageId":"m","message":"yo"}"#, "r1", "u1");
        let edit = ClientFrame::Edit { message_id: "m".into(), message: "yo".into(), client_msg_id: None };
        assert_eq!(ok, Ok(edit));
        assert_eq!(parse_client_frame(r#"{"type":"typing","roomId":"r1"}"#, "r1", "u1"), Ok(ClientFrame::Typing));
        let reply = parse_client_frame(r#"{"roomId":"r1","message":"agreed","threadId":"t"}"#, "r1", "u1");
        let want = Send { message: "agreed".into(), client_msg_id: None, thread_id: Some("t".into()) };
        assert_eq!(reply, Ok(ClientFrame::Send(want)));
        assert_eq!(code(r#"{"roomId":"r1","message":"x","threadId":""}"#), "invalid_thread_id");
    }

    #[test]
    fn new_frame_types_are_checked_like_messages() {
        assert_eq!(code(r#"{"type":"shout","roomId":"r1","message":"x"}"#), "bad_frame");
        assert_eq!(code(r#"{"type":"typing","roomId":"r2"}"#), "wrong_room");
        assert_eq!(code(r#"{"type":"edit","roomId":"r1","message":"x"}"#), "missing_field");
        assert_eq!(code(r#"{"type":"edit","roomId":"r1","messageId":"","message":"x"}"#), "invalid_message_id");
        assert_eq!(code(r#"{"type":"edit","roomId":"r1","messageId":"m","message":" "}"#), "invalid_message");
        let long = format!(r#"{{"type":"edit","roomId":"r1","messageId":"m","message":"{}"}}"#, "x".repeat(2001));
        assert_eq!(code(&long), "message_too_long");
    }

    #[test]
    fn bad_frames_get_codes() {
        assert_eq!(code("not json"), "bad_frame");
        assert_eq!(code("[1,2]"), "bad_frame");
        assert_eq!(code(r#"{"roomId":"r1","message":5}"#), "bad_frame");
        assert_eq!(code(r#"{"roomId":"r1"}"#), "missing_field");
        assert_eq!(code(r#"{"message":"x"}"#), "missing_field");
        assert_eq!(code(r#"{"roomId":"r2","message":"x"}"#), "wrong_room");
        assert_eq!(code(r#"{"roomId":"r1","userId":"u2","message":"x"}"#), "wrong_user");
        assert_eq!(code(r#"{"roomId":"r1","message":"  "}"#), "invalid_message");
        assert_eq!(code(r#"{"roomId":"r1","message":"x","clientMsgId":""}"#), "invalid_client_msg_id");
        let long = format!(r#"{{"roomId":"r1","message":"{}","clientMsgId":"c"}}"#, "é".repeat(2001));
        let refusal = parse_client_frame(&long, "r1", "u1").unwrap_err();
        assert_eq!((refusal.code, refusal.client_msg_id.as_deref()), ("message_too_long", Some("c")));
        let max = format!(r#"{{"roomId":"r1","message":"{}"}}"#, "é".repeat(2000));
        assert!(parse_client_frame(&max, "r1", "u1").is_ok());
    }

    #[test]
    fn frames_serialise_as_the_contract_says() {
        let ack = ServerFrame::Ack { client_msg_id: None, id: "m".into(), seq: 3 }.to_text();
        assert_eq!(ack.as_str(), r#"{"type":"ack","clientMsgId":null,"id":"m","seq":3}"#);
        let p = ServerFrame::Presence {
            joined: Some(UserRef { user_id: "u".into(), username: "n".into() }),
            left: None,
            online: 2,
        };
        assert_eq!(p.to_text().as_str(), r#"{"type":"presence","joined":{"userId":"u","username":"n"},"online":2}"#);
        assert_eq!(ServerFrame::Closed.to_text().as_str(), r#"{"type":"closed"}"#);
        let refusal = Refusal::new("slow_mode", "wait", None).retry_after_ms(1500);
        let text = ServerFrame::from(refusal).to_text();
        assert_eq!(text.as_str(), r#"{"type":"error","code":"slow_mode","message":"wait","retryAfter":2}"#);
        let head = EventHead {
            id: "e".into(),
            seq: 7,
            room_id: "r".into(),
            user_id: "u".into(),
            username: "n".into(),
            sent_at: "t".into(),
        };
        let slow = ServerFrame::SlowMode { head, seconds: 10, automatic: false }.to_text();
        let want = r#"{"type":"slowmode","id":"e","seq":7,"roomId":"r","userId":"u","username":"n","sentAt":"t","seconds":10,"automatic":false}"#;
        assert_eq!(slow.as_str(), want);
    }
}
