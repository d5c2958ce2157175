//! Like types on the wire.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::reviews::model::Review;

/// Review ids asked about at most per `GET /reviews/liked`.
pub const MAX_IDS: usize = 100;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LikeState {
    pub review_id: String,
    /// The review's likes after the request.
    pub likes: i64,
    /// Whether the caller likes it now.
    pub liked_by_me: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LikedQuery {
    /// Review ids separated by commas, at most 100.
    pub ids: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Liked {
    /// Those of the ids asked about that the caller likes.
    pub ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserLikes {
    pub user_id: String,
    /// The reviews the user likes, the latest liked first.
    pub items: Vec<Review>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}
