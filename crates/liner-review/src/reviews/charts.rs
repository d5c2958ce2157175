//! Album charts: the best-scored albums among the reviews created in a rolling period.
//!
//! Each album is scored from its reviews in the period only, with the same site-wide
//! prior as the album page, so a chart ranks albums that people rated highly *lately*
//! and an album with one enthusiastic review cannot top it. The per-album aggregate is
//! a range scan of the `reviews_by_time` index (created_at, album_id, rating_half);
//! ranking happens here so the ordering uses exactly the `weighted` value that is shown.

use axum::extract::State;
use liner_shared::error::ApiQuery;
use liner_shared::{ApiError, ApiJson, now_millis};

use super::model::{Chart, ChartEntry, ChartQuery, page_limit};
use super::score::{self, Prior, Tally};
use super::store;
use crate::state::AppState;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Top albums by `score.weighted` among the reviews created in the period.
#[utoipa::path(get, path = "/charts", tag = "reviews",
    description = chart_description(),
    params(ChartQuery),
    responses((status = 200, body = Chart), (status = 400, body = crate::openapi::ErrorBody)))]
pub async fn charts(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ChartQuery>,
) -> Result<ApiJson<Chart>, ApiError> {
    let period = query.period.unwrap_or_default();
    let limit = page_limit(query.limit)?;
    let since = period.days().map_or(i64::MIN, |days| now_millis() - days * MILLIS_PER_DAY);
    let prior = state.site_prior.get(&state.db).await?;
    let tallies = store::album_tallies_since(&state.db, since).await?;
    Ok(ApiJson(Chart { period, items: rank(tallies, &prior, limit as usize) }))
}

fn chart_description() -> String {
    format!(
        "Counts only reviews created in the period: the last 7 (`week`, the default), 30 \
         (`month`) or 365 (`year`) days before the request, or `all`. Items are ordered by \
         `score.weighted` (highest first), then by `total` (more first), then by `albumId`. \
         {}",
        score::explanation()
    )
}

/// Scores every album and keeps the best `limit`: weighted desc, total desc, albumId asc.
fn rank(tallies: Vec<(String, Tally)>, prior: &Prior, limit: usize) -> Vec<ChartEntry> {
    let mut entries: Vec<ChartEntry> = tallies
        .into_iter()
        .filter(|(_, tally)| tally.count > 0)
        .map(|(album_id, tally)| ChartEntry {
            album_id,
            total: tally.count,
            average_rating: tally.mean().unwrap_or_default(),
            score: score::score(&tally, prior),
        })
        .collect();
    let weighted = |e: &ChartEntry| e.score.weighted.unwrap_or_default();
    entries.sort_by(|a, b| {
        weighted(b).total_cmp(&weighted(a)).then(b.total.cmp(&a.total)).then_with(|| a.album_id.cmp(&b.album_id))
    });
    entries.truncate(limit);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_weighted_then_total_then_id() {
        let one = |half| Tally::from_counts(&[(half, 1)]);
        let tallies = vec![
            ("b-one-3.0".to_owned(), one(6)),                         // (15 + 3) / 6 = 3.0
            ("c-two-3.0".to_owned(), Tally::from_counts(&[(6, 2)])),  // (15 + 6) / 7 = 3.0
            ("a-one-3.0".to_owned(), one(6)),                         // 3.0
            ("d-one-5.0".to_owned(), one(10)),                        // (15 + 5) / 6 = 3.33
            ("e-ten-4.5".to_owned(), Tally::from_counts(&[(9, 10)])), // (15 + 45) / 15 = 4.0
            ("f-one-0.5".to_owned(), one(1)),                         // (15 + 0.5) / 6 = 2.58
        ];
        let ids: Vec<String> = rank(tallies, &Prior::FALLBACK, 5).into_iter().map(|e| e.album_id).collect();
        assert_eq!(ids, ["e-ten-4.5", "d-one-5.0", "c-two-3.0", "a-one-3.0", "b-one-3.0"]);
    }
}
