//! Follow and feed types on the wire.

use serde::Serialize;
use utoipa::ToSchema;

use crate::reviews::model::Review;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowState {
    pub user_id: String,
    /// How many people follow this user now.
    pub followers: i64,
    /// Whether the caller follows this user now.
    pub followed_by_me: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowEntry {
    pub id: String,
    pub username: String,
    /// When the follow began.
    pub followed_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowList {
    pub user_id: String,
    /// The latest follow first.
    pub items: Vec<FollowEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Feed {
    /// Reviews by the people the caller follows, newest first, each with `likedByMe`.
    pub items: Vec<Review>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}
