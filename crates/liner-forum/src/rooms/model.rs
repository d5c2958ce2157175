//! Room and message types on the wire, and the rules their fields must meet.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ForumError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoomType {
    Album,
    Genre,
}

impl RoomType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Album => "album",
            Self::Genre => "genre",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "album" => Some(Self::Album),
            "genre" => Some(Self::Genre),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRoom {
    pub room_type: RoomType,
    /// Required for an album room (1–64 of `[A-Za-z0-9_:.-]`), absent otherwise.
    #[serde(default)]
    pub album_id: Option<String>,
    /// Required for a genre room (1–64 of `[A-Za-z0-9_:.-]`, matched case-insensitively), absent otherwise.
    #[serde(default)]
    pub genre_id: Option<String>,
    /// 1–100 characters; default "Album <albumId>" / "Genre <genreId>".
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub title: Option<String>,
}

/// A room as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub id: String,
    pub room_type: RoomType,
    pub album_id: Option<String>,
    pub genre_id: Option<String>,
    pub title: String,
    pub created_by: String,
    pub created_at: String,
    pub active: bool,
    /// Connected members now, across all replicas.
    pub online: u64,
    /// Slow mode: one message per member per this many seconds (0: off; moderators are exempt).
    pub slow_mode_secs: i64,
    /// Slow mode was switched on by itself because the room is busy (adaptive slow mode);
    /// it switches off again when the room calms down.
    pub slow_mode_automatic: bool,
}

/// What a row of a room's sequenced log is: a chat line or a room event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventKind {
    #[default]
    Message,
    Edit,
    Delete,
    Mute,
    Unmute,
    Kick,
    SlowMode,
}

impl EventKind {
    const ALL: [Self; 7] =
        [Self::Message, Self::Edit, Self::Delete, Self::Mute, Self::Unmute, Self::Kick, Self::SlowMode];

    /// As stored, and as the frame's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Edit => "edit",
            Self::Delete => "delete",
            Self::Mute => "mute",
            Self::Unmute => "unmute",
            Self::Kick => "kick",
            Self::SlowMode => "slowmode",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A stored message as the history endpoint shows it (the `message` frame minus `type`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub id: String,
    pub seq: i64,
    pub room_id: String,
    pub user_id: String,
    pub username: String,
    /// The latest text (empty once deleted).
    pub message: String,
    pub sent_at: String,
    /// When the author last edited it (null: never).
    pub edited_at: Option<String>,
    /// Deleted by a moderator or its author: a tombstone, `message` empty.
    pub deleted: bool,
    /// In an album room: the author's rating of the album when they sent it (0.5–5), shown
    /// as a badge; absent when unrated, in a genre room, or the ratings could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_rating: Option<f64>,
    /// The review this line quotes: it opens the review's thread in the album's room
    /// ("discuss this review", `POST /rooms/{roomId}/threads`); `message` is the review's
    /// excerpt as it was then. Absent on other lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<QuotedReview>,
    /// On a reply in a thread: the id of the line that quotes the review.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
}

/// A review as a thread's opening line quotes it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotedReview {
    pub id: String,
    /// The review's author.
    pub user_id: String,
    pub username: String,
    /// 0.5–5.
    pub rating: f64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `album` or `genre`.
    pub room_type: Option<String>,
    pub album_id: Option<String>,
    /// Matched case-insensitively.
    pub genre_id: Option<String>,
    /// 1–200, default 100; newest rooms first.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only messages with a smaller seq (page backwards); default: the newest.
    pub before: Option<i64>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Only the replies in this thread (the id of the line that quotes the review).
    pub thread: Option<String>,
}

/// Album and genre ids: 1–64 of `[A-Za-z0-9_:.-]` (a MusicBrainz id fits), as in the review service.
pub fn validate_ref(field: &'static str, value: &str) -> Result<()> {
    let len = value.chars().count();
    if !(1..=64).contains(&len) {
        return Err(ForumError::invalid(field, "must be 1 to 64 characters"));
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-')) {
        return Err(ForumError::invalid(field, "may contain only A-Z, a-z, 0-9, '_', ':', '.' and '-'"));
    }
    Ok(())
}

pub const MAX_TITLE_CHARS: usize = 100;

/// How long after sending its author may edit a message.
pub const EDIT_WINDOW_MS: i64 = 15 * 60 * 1000;

/// Checks a create request; returns (active key, title). Genre ids match case-insensitively
/// ("Jazz" and "jazz" are one room); album ids are opaque and kept exact.
pub fn validate_create(req: &CreateRoom) -> Result<(String, String)> {
    let (key, default_title) = match req.room_type {
        RoomType::Album => {
            let album =
                req.album_id.as_deref().ok_or_else(|| ForumError::invalid("albumId", "required for an album room"))?;
            validate_ref("albumId", album)?;
            if req.genre_id.is_some() {
                return Err(ForumError::invalid("genreId", "not allowed in an album room"));
            }
            (format!("album:{album}"), format!("Album {album}"))
        }
        RoomType::Genre => {
            let genre =
                req.genre_id.as_deref().ok_or_else(|| ForumError::invalid("genreId", "required for a genre room"))?;
            validate_ref("genreId", genre)?;
            if req.album_id.is_some() {
                return Err(ForumError::invalid("albumId", "not allowed in a genre room"));
            }
            (format!("genre:{}", genre.to_lowercase()), format!("Genre {genre}"))
        }
    };
    let title = match &req.title {
        None => default_title,
        Some(t) => {
            let t = t.trim();
            let len = t.chars().count();
            if len == 0 || len > MAX_TITLE_CHARS {
                return Err(ForumError::invalid("title", "must be 1 to 100 characters"));
            }
            if t.chars().any(char::is_control) {
                return Err(ForumError::invalid("title", "must not contain control characters"));
            }
            t.to_owned()
        }
    };
    Ok((key, title))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(room_type: RoomType, album: Option<&str>, genre: Option<&str>, title: Option<&str>) -> CreateRoom {
        CreateRoom {
            room_type,
            album_id: album.map(Into::into),
            genre_id: genre.map(Into::into),
            title: title.map(Into::into),
        }
    }

    #[test]
    fn album_room_needs_album_id() {
        assert!(validate_create(&req(RoomType::Album, None, None, None)).is_err());
        assert!(validate_create(&req(RoomType::Album, Some("a1"), Some("jazz"), None)).is_err());
        let (key, title) = validate_create(&req(RoomType::Album, Some("a1"), None, None)).unwrap();
        assert_eq!((key.as_str(), title.as_str()), ("album:a1", "Album a1"));
    }

    #[test]
    fn genre_keys_ignore_case() {
        let (key, _) = validate_create(&req(RoomType::Genre, None, Some("Jazz"), Some(" Late night "))).unwrap();
        assert_eq!(key, "genre:jazz");
        assert!(validate_create(&req(RoomType::Genre, None, Some("no spaces"), None)).is_err());
        assert!(validate_create(&req(RoomType::Genre, None, Some("x"), Some("  "))).is_err());
        assert!(validate_create(&req(RoomType::Genre, None, Some("x"), Some(&"t".repeat(101)))).is_err());
    }
}
