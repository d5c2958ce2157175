//! Album ratings for rating-aware rooms: the badge on a chat line in an album room
//! (`authorRating`) and the room's rating split, read over REST from the review service
//! (which owns reviews), called directly like `users`, never through the gateway. Also
//! one review by id, for the line that opens its thread (`threads`).
//!
//! Why per album and not per (album, user): one request for an album's review listing
//! (whose first page the review service serves from its own cache) answers every
//! member of the room, the badge and the split alike; a room is about one album. The
//! map is cached for [`CACHE_TTL`] — a new or changed rating shows within that, which
//! is the cheap invalidation. At most [`MAX_PAGES`] pages are read (the newest
//! [`MAX_PAGES`] × 100 reviews); raters beyond that get no badge.
//!
//! Why a review service outage cannot break chat: every failure is "no ratings"
//! (`None`), the lookup times out after [`LOOKUP_TIMEOUT`], and further lookups are
//! skipped for [`BACKOFF`] so sends do not each wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use liner_discovery::peers::ServiceUrls;
use liner_shared::tls::PeerClient;

use crate::pause::Pause;
use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const CACHE_TTL: Duration = Duration::from_secs(30);
const CACHE_CAPACITY: u64 = 10_000;
const BACKOFF: Duration = Duration::from_secs(10);
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_PAGES: usize = 10;
const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// user id → rating in halves (1 = 0.5 … 10 = 5.0).
pub type AlbumRatings = Arc<HashMap<String, i64>>;

pub struct Ratings {
    client: PeerClient,
    review: ServiceUrls,
    cache: Cache<String, AlbumRatings>,
    pause: Pause,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    items: Vec<Item>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    user_id: String,
    rating: f64,
}

/// A review as the review service shows it (the fields a thread's quote needs).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub album_id: String,
    pub rating: f64,
    pub review_text: String,
}

/// The review service could not be asked.
#[derive(Debug)]
pub struct Unreachable;

/// How the members of an album room rated the album.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatingSplit {
    /// Members who rated it 4 or more.
    pub loved: u64,
    /// Rated 2.5 to 3.5.
    pub mixed: u64,
    /// Rated 2 or less.
    pub disliked: u64,
    /// Members without a rating (all of them in a genre room, or while ratings cannot be read).
    pub unrated: u64,
    /// False when the review service could not be asked: every member counts as unrated.
    pub available: bool,
}

impl RatingSplit {
    /// Classifies each member (user id) by their rating in `ratings`.
    pub fn of<'a>(members: impl IntoIterator<Item = &'a str>, ratings: Option<&AlbumRatings>) -> Self {
        let mut split = Self { available: ratings.is_some(), ..Self::default() };
        for m in members {
            match ratings.and_then(|r| r.get(m)) {
                Some(h) if *h >= 8 => split.loved += 1,
                Some(h) if *h <= 4 => split.disliked += 1,
                Some(_) => split.mixed += 1,
                None => split.unrated += 1,
            }
        }
        split
    }
}

impl Ratings {
    pub fn new(review: ServiceUrls, client: PeerClient) -> Self {
        Self {
            client,
            review,
            cache: Cache::builder().max_capacity(CACHE_CAPACITY).time_to_live(CACHE_TTL).build(),
            pause: Pause::new(BACKOFF),
        }
    }

    /// One member's rating of the album in halves; `None` when unrated or unknown now.
    pub async fn of_user(&self, album_id: &str, user_id: &str) -> Option<i64> {
        self.album(album_id).await?.get(user_id).copied()
    }

    /// The album's ratings by user; `None` when the review service cannot be asked now.
    pub async fn album(&self, album_id: &str) -> Option<AlbumRatings> {
        if let Some(hit) = self.cache.get(album_id) {
            return Some(hit);
        }
        let base = self.review.pick()?;
        let map = Arc::new(self.pause.ask("no rating badges", self.fetch(&base, album_id)).await?);
        self.cache.insert(album_id.to_owned(), map.clone());
        Some(map)
    }

    /// One review (`Ok(None)`: there is no such review). Not cached: opening a thread is rare.
    pub async fn review(&self, review_id: &str) -> Result<Option<Review>, Unreachable> {
        let base = self.review.pick().ok_or(Unreachable)?;
        let id: String = form_urlencoded::byte_serialize(review_id.as_bytes()).collect();
        let url = format!("{base}/api/users-reviews/reviews/{id}");
        let fetched = self.client.get(&url, LOOKUP_TIMEOUT, MAX_PAGE_BYTES).await;
        match fetched {
            Ok((status, _)) if status == http::StatusCode::NOT_FOUND => Ok(None),
            Ok((status, body)) if status.is_success() => serde_json::from_slice(&body).map(Some).map_err(|e| {
                tracing::warn!(error = %e, "review service answered a review we cannot read");
                Unreachable
            }),
            Ok((status, _)) => {
                tracing::warn!(%status, "review service refused a review lookup");
                Err(Unreachable)
            }
            Err(e) => {
                tracing::warn!(error = %e, "review service unreachable for a review");
                Err(Unreachable)
            }
        }
    }

    /// Walks the album's listing (album ids are validated `[A-Za-z0-9_:.-]`, URL-safe).
    async fn fetch(&self, base: &str, album_id: &str) -> anyhow::Result<HashMap<String, i64>> {
        let mut map = HashMap::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = format!("{base}/api/users-reviews/reviews/album/{album_id}?limit=100");
            if let Some(c) = &cursor {
                url.push_str("&cursor=");
                url.extend(form_urlencoded::byte_serialize(c.as_bytes()));
            }
            let (status, body) = self.client.get(&url, LOOKUP_TIMEOUT, MAX_PAGE_BYTES).await?;
            anyhow::ensure!(status.is_success(), "answered {status}");
            let page: Page = serde_json::from_slice(&body)?;
            for item in page.items {
                map.entry(item.user_id).or_insert((item.rating * 2.0).round() as i64);
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_classifies_by_halves() {
        let map: AlbumRatings = Arc::new(
            [("a", 10), ("b", 8), ("c", 7), ("d", 5), ("e", 4), ("f", 1)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        );
        let s = RatingSplit::of(["a", "b", "c", "d", "e", "f", "g"], Some(&map));
        assert_eq!((s.loved, s.mixed, s.disliked, s.unrated, s.available), (2, 2, 2, 1, true));
        let none = RatingSplit::of(["a"], None);
        assert_eq!((none.unrated, none.available), (1, false));
    }
}
