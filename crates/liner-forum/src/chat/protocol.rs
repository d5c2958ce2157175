//! WebSocket frames, exactly as `API.md` fixes them, and the parsing of client frames.
//!
//! Parsing never fails the connection: every problem becomes a `(code, message)` pair
//! that the session sends back as an `error` frame. Codes are stable snake_case:
//! `bad_frame` (not JSON, not an object, binary, wrong field type), `missing_field`,
//! `invalid_message` (blank), `message_too_long`, `invalid_client_msg_id`,
//! `wrong_room`, `wrong_user`, `rate_limited`, `room_closed`, `unavailable`.

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};

use crate::rooms::model::MessageView;

/// Longest message, in characters (Unicode scalar values).
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Longest client message id, in characters.
pub const MAX_CLIENT_MSG_ID_CHARS: usize = 64;

/// What a client sends: `{"userId", "roomId", "message", "clientMsgId"?}`.
/// `userId` may be left out (it is the token's subject either way).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawClientFrame {
    user_id: Option<String>,
    room_id: Option<String>,
    message: Option<String>,
}

/// A client frame that passed every check.
#[derive(Debug, PartialEq, Eq)]
pub struct Send {
    pub message: String,
    pub client_msg_id: Option<String>,
}

/// A refused client frame: the `error` frame to answer with.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    pub client_msg_id: Option<String>,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>, client_msg_id: Option<String>) -> Self {
        Self { code, message: message.into(), client_msg_id }
    }
}

/// Parses and checks one text frame from `user_id`, connected to `room_id`.
pub fn parse_client_frame(text: &str, room_id: &str, user_id: &str) -> Result<Send, Refusal> {
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
    let Some(message) = raw.message else { return Err(refuse("missing_field", "message is required")) };
    let len = message.chars().count();
    if len > MAX_MESSAGE_CHARS {
        return Err(refuse("message_too_long", "message must be at most 2000 characters"));
    }
    if message.trim().is_empty() {
        return Err(refuse("invalid_message", "message must be 1 to 2000 characters and not blank"));
    }
    Ok(Send { message, client_msg_id })
}

#[derive(Debug, Serialize)]
pub struct UserRef {
    #[serde(rename = "userId")]
    pub user_id: String,
    pub username: String,
}

/// Everything the server sends, tagged by `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", rename_all_fields = "camelCase")]
pub enum ServerFrame {
    Message(MessageView),
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
        ServerFrame::Error { code: r.code, message: r.message, client_msg_id: r.client_msg_id }
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
        assert_eq!(ok, Ok(Send { message: "hi".into(), client_msg_id: Some("c1".into()) }));
        let ok = parse_client_frame(r#"{"roomId":"r1","message":"hi"}"#, "r1", "u1");
        assert_eq!(ok, Ok(Send { message: "hi".into(), client_msg_id: None }));
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
    }
}
