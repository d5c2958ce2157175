//! Moderation and report types on the wire, and the limits their fields must meet.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ForumError, Result};
use crate::rooms::model::MessageView;

/// Longest mute: 7 days.
pub const MAX_MUTE_SECS: i64 = 7 * 24 * 3600;
/// Slowest slow mode: one message an hour.
pub const MAX_SLOW_MODE_SECS: i64 = 3600;
/// Longest report reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MuteRequest {
    /// How long the user may not send or edit: 1–604,800 seconds (7 days).
    #[schema(minimum = 1, maximum = 604800)]
    pub seconds: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KickRequest {
    /// The user whose connections to the room are closed (4403).
    #[schema(min_length = 1, max_length = 64)]
    pub user_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlowModeRequest {
    /// One message per member per this many seconds: 0 (off) to 3,600.
    #[schema(minimum = 0, maximum = 3600)]
    pub seconds: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportRequest {
    /// Why the message should be looked at: 1–500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// A running mute.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mute {
    pub user_id: String,
    pub username: String,
    pub until: String,
}

/// The room's moderation state, and whether the caller moderates it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Moderation {
    /// The caller is the room's creator or an admin.
    pub moderator: bool,
    pub slow_mode_secs: i64,
    /// The slow mode was switched on by adaptive slow mode (the room is busy), not a moderator.
    pub slow_mode_automatic: bool,
    pub mutes: Vec<Mute>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    Open,
    Resolved,
}

/// A member's report of a message, with the message as it stands now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub id: String,
    pub room_id: String,
    pub message_id: String,
    pub reporter_id: String,
    pub reporter_name: String,
    pub reason: String,
    pub created_at: String,
    pub status: ReportStatus,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub message: MessageView,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// `open` (default) or `resolved`.
    pub status: Option<String>,
    /// 1–200, default 50; oldest first.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

pub fn validate_mute_secs(seconds: i64) -> Result<()> {
    if !(1..=MAX_MUTE_SECS).contains(&seconds) {
        return Err(ForumError::invalid("seconds", "must be 1 to 604800 (7 days)"));
    }
    Ok(())
}

pub fn validate_slow_mode_secs(seconds: i64) -> Result<()> {
    if !(0..=MAX_SLOW_MODE_SECS).contains(&seconds) {
        return Err(ForumError::invalid("seconds", "must be 0 (off) to 3600"));
    }
    Ok(())
}

/// The reason, trimmed: 1–500 characters, no control characters but line breaks.
pub fn validate_reason(reason: &str) -> Result<String> {
    let reason = reason.trim();
    let len = reason.chars().count();
    if len == 0 || len > MAX_REASON_CHARS {
        return Err(ForumError::invalid("reason", "must be 1 to 500 characters"));
    }
    if reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ForumError::invalid("reason", "must not contain control characters"));
    }
    Ok(reason.to_owned())
}

/// User ids as the review service makes them (UUIDs); 1–64 of `[A-Za-z0-9_-]`.
pub fn valid_user_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold() {
        assert!(validate_mute_secs(0).is_err());
        assert!(validate_mute_secs(MAX_MUTE_SECS + 1).is_err());
        assert!(validate_mute_secs(60).is_ok());
        assert!(validate_slow_mode_secs(-1).is_err());
        assert!(validate_slow_mode_secs(0).is_ok());
        assert!(validate_slow_mode_secs(3601).is_err());
        assert_eq!(validate_reason("  spam \n").unwrap(), "spam");
        assert!(validate_reason("   ").is_err());
        assert!(validate_reason(&"x".repeat(501)).is_err());
        assert!(validate_reason("a\u{0}b").is_err());
        assert!(valid_user_id("0190c3e2-aaaa"));
        assert!(!valid_user_id("../x"));
        assert!(!valid_user_id(""));
    }
}
