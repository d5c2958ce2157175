//! Review, listing and chart types on the wire, the field and query rules, and the listing cursor.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::score::Score;
use crate::error::{Result, ReviewError};

pub const MAX_REVIEW_CHARS: usize = 10_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateReview {
    /// Optional; when present it must be the token's user.
    pub user_id: Option<String>,
    /// 1–64 characters of `[A-Za-z0-9_:.-]` (a MusicBrainz release-group id fits).
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_:.-]+$")]
    pub album_id: String,
    /// 0.5 to 5.0 in steps of 0.5.
    #[schema(minimum = 0.5, maximum = 5.0, multiple_of = 0.5)]
    pub rating: f64,
    /// Up to 10,000 characters; may be empty or omitted.
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub review_text: String,
    /// The text gives away the album's surprises: clients hide it until asked. Default false.
    #[serde(default)]
    pub spoiler: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateReview {
    /// 0.5 to 5.0 in steps of 0.5.
    #[schema(minimum = 0.5, maximum = 5.0, multiple_of = 0.5)]
    pub rating: Option<f64>,
    /// Up to 10,000 characters; may be empty.
    #[schema(max_length = 10000)]
    pub review_text: Option<String>,
    /// Mark or unmark the text as a spoiler.
    pub spoiler: Option<bool>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub album_id: String,
    pub rating: f64,
    pub review_text: String,
    /// The text gives away the album's surprises: clients hide it until asked.
    pub spoiler: bool,
    /// How many people like this review.
    pub likes: i64,
    /// Whether the caller likes it: present when a token is given, except on the album
    /// page, which is one cached answer for every reader (ask `GET /reviews/liked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liked_by_me: Option<bool>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbumReviews {
    pub album_id: String,
    pub total: i64,
    /// Null when the album has no reviews.
    pub average_rating: Option<f64>,
    /// Count per rating value, keys `"0.5"` … `"5.0"`, all present.
    pub histogram: BTreeMap<String, i64>,
    pub score: Score,
    pub items: Vec<Review>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The album page for a blind-first caller who has not reviewed the album yet: no score,
/// no aggregates, no reviews (`items` is empty: the caller has none of their own).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HiddenAlbumReviews {
    pub album_id: String,
    /// Always true.
    pub hidden: bool,
    /// Always empty.
    pub items: Vec<Review>,
}

/// What `GET /reviews/album/{albumId}` answers: the page, or with `blind=true` before
/// the caller's own review, the page hidden.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AlbumPage {
    Shown(AlbumReviews),
    Hidden(HiddenAlbumReviews),
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserReviews {
    pub user_id: String,
    pub total: i64,
    /// Null when the user has no reviews.
    pub average_rating: Option<f64>,
    pub items: Vec<Review>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Which reviews a chart counts: those created in the last 7, 30 or 365 days
/// (rolling, from the moment of the request), or all of them.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    #[default]
    Week,
    Month,
    Year,
    All,
}

impl Period {
    /// The length of the rolling window; None for all time.
    pub fn days(self) -> Option<i64> {
        match self {
            Period::Week => Some(7),
            Period::Month => Some(30),
            Period::Year => Some(365),
            Period::All => None,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChartQuery {
    /// `week` (default), `month`, `year` or `all`: the last 7, 30 or 365 days, or all time.
    pub period: Option<Period>,
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChartEntry {
    pub album_id: String,
    /// Reviews of the album created in the period.
    pub total: i64,
    pub average_rating: f64,
    /// Computed from the period's reviews only.
    pub score: Score,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Chart {
    pub period: Period,
    /// Highest `score.weighted` first; ties: more reviews first, then by albumId.
    pub items: Vec<ChartEntry>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    #[default]
    Newest,
    Oldest,
    Highest,
    Lowest,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub sort: Option<Sort>,
}

/// The album listing's query: [`ListQuery`] and `blind`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlbumQuery {
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub sort: Option<Sort>,
    /// `true` (needs a token, else 401): until the caller has reviewed this album, answer
    /// `{albumId, hidden: true, items: []}` instead of the page — for blind-first users.
    /// After their review it is the ordinary (shared, cached) page.
    pub blind: Option<bool>,
}

impl AlbumQuery {
    pub fn listing(self) -> ListQuery {
        ListQuery { limit: self.limit, cursor: self.cursor, sort: self.sort }
    }
}

/// A page size from the query: 1–100, default 20.
pub fn page_limit(limit: Option<i64>) -> Result<i64> {
    let limit = limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ReviewError::BadQuery("limit must be 1 to 100".into()));
    }
    Ok(limit)
}

/// Ratings are stored as whole half-stars (1..=10) so equality and grouping are exact.
pub fn rating_to_halves(rating: f64) -> Result<i64> {
    let halves = rating * 2.0;
    if !(1.0..=10.0).contains(&halves) || halves.fract() != 0.0 {
        return Err(ReviewError::invalid("rating", "must be 0.5 to 5.0 in steps of 0.5"));
    }
    Ok(halves as i64)
}

pub fn validate_album_id(album_id: &str) -> Result<()> {
    let ok = (1..=64).contains(&album_id.len())
        && album_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'));
    if ok { Ok(()) } else { Err(ReviewError::invalid("albumId", "must be 1 to 64 of A-Z a-z 0-9 _ : . -")) }
}

pub fn validate_text(text: &str) -> Result<()> {
    if text.chars().count() > MAX_REVIEW_CHARS {
        return Err(ReviewError::invalid("reviewText", "must be at most 10000 characters"));
    }
    Ok(())
}

/// The position after the last item of a page: the sort key of that item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub rating_half: i64,
    pub created_at: i64,
    pub id: String,
}

impl Cursor {
    /// A position before every item in `sort` order.
    pub fn start(sort: Sort) -> Self {
        match sort {
            Sort::Newest | Sort::Highest => {
                Cursor { rating_half: i64::MAX, created_at: i64::MAX, id: "\u{10FFFF}".into() }
            }
            Sort::Oldest | Sort::Lowest => Cursor { rating_half: i64::MIN, created_at: i64::MIN, id: String::new() },
        }
    }

    /// Opaque to clients; carries the sort so a cursor cannot be replayed under another.
    pub fn encode(&self, sort: Sort) -> String {
        let s = sort_tag(sort);
        URL_SAFE_NO_PAD.encode(format!("{s}|{}|{}|{}", self.rating_half, self.created_at, self.id))
    }

    pub fn decode(raw: &str, sort: Sort) -> Result<Self> {
        let bad = || ReviewError::BadQuery("cursor is not valid for this listing".into());
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = text.splitn(4, '|');
        let (Some(tag), Some(r), Some(c), Some(id)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        if tag != sort_tag(sort) {
            return Err(bad());
        }
        Ok(Cursor {
            rating_half: r.parse().map_err(|_| bad())?,
            created_at: c.parse().map_err(|_| bad())?,
            id: id.into(),
        })
    }
}

fn sort_tag(sort: Sort) -> &'static str {
    match sort {
        Sort::Newest => "n",
        Sort::Oldest => "o",
        Sort::Highest => "h",
        Sort::Lowest => "l",
    }
}

/// All ten histogram keys, `"0.5"` … `"5.0"`, with their counts.
pub fn histogram(counts: &[(i64, i64)]) -> BTreeMap<String, i64> {
    (1..=10)
        .map(|h| {
            let n = counts.iter().find(|(half, _)| *half == h).map_or(0, |(_, n)| *n);
            (format!("{:.1}", h as f64 / 2.0), n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings() {
        assert_eq!(rating_to_halves(0.5).ok(), Some(1));
        assert_eq!(rating_to_halves(5.0).ok(), Some(10));
        for bad in [0.0, 0.25, 5.5, -1.0, 4.49, f64::NAN, f64::INFINITY] {
            assert!(rating_to_halves(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursor_round_trip_and_sort_binding() {
        let c = Cursor { rating_half: 7, created_at: 1_700_000_000_000, id: "abc|def".into() };
        assert_eq!(Cursor::decode(&c.encode(Sort::Highest), Sort::Highest).ok(), Some(c.clone()));
        assert!(Cursor::decode(&c.encode(Sort::Highest), Sort::Newest).is_err());
        assert!(Cursor::decode("not base64!", Sort::Newest).is_err());
    }

    #[test]
    fn histogram_has_all_keys() {
        let h = histogram(&[(9, 2), (1, 1)]);
        assert_eq!(h.len(), 10);
        assert_eq!(h["4.5"], 2);
        assert_eq!(h["0.5"], 1);
        assert_eq!(h["5.0"], 0);
    }
}
