//! The album score: pure statistics, no I/O, so every number here is checkable by hand.
//!
//! A plain average ranks an album with one 5-star review above one with two hundred
//! reviews averaging 4.8. The score fixes that with a Bayesian (normal–normal) model:
//! before its ratings are seen, an album is assumed to be like the site as a whole,
//! worth [`PRIOR_WEIGHT`] (C = 5) ratings at the site-wide mean m. After its n ratings
//! (sum Σ, population variance s²):
//!
//! - `weighted` = (C·m + Σ) / (C + n) — the posterior mean. One 5.0 on a site whose
//!   mean is 3.0 gives (5·3 + 5) / 6 = 3.33; ten of them give (15 + 50) / 15 = 4.33.
//! - `low` / `high` = weighted ∓ z·σ/√(C + n), with z = 1.645 (two-sided 90 %) and
//!   σ² = (C·σ_site² + n·s²) / (C + n): the pooled spread of the C prior pseudo-ratings
//!   (which carry the site's spread) and the album's own ratings. This is the 90 %
//!   credible interval of the posterior, clamped to the rating scale [0.5, 5.0]. It
//!   always contains `weighted` and narrows as ratings accumulate (√(C + n) grows),
//!   while an album whose ratings disagree keeps a wider interval than one whose
//!   ratings agree.
//! - `divisiveness` = s, the population standard deviation of the album's ratings
//!   (0 for a single rating or for identical ratings).
//!
//! The prior (m, σ_site) comes from every rating on the site; while the site has fewer
//! than [`MIN_SITE_RATINGS`] ratings it is too noisy to lean on, and the fixed fallback
//! m = 3.0, σ_site = 1.0 ([`FALLBACK_MEAN`], [`FALLBACK_SD`]) is used instead.
//!
//! Sums are kept in whole half-stars (as stored), so counts, sums and the variance
//! numerator n·Σx² − (Σx)² are exact integers; only the final divisions are floating.

use serde::Serialize;
use utoipa::ToSchema;

/// C: how many ratings the site-wide prior is worth.
pub const PRIOR_WEIGHT: f64 = 5.0;
/// m while the site has fewer than [`MIN_SITE_RATINGS`] ratings.
pub const FALLBACK_MEAN: f64 = 3.0;
/// σ_site while the site has fewer than [`MIN_SITE_RATINGS`] ratings.
pub const FALLBACK_SD: f64 = 1.0;
/// Below this many ratings the site-wide mean and spread are not trusted.
pub const MIN_SITE_RATINGS: i64 = 20;
/// z for a two-sided 90 % interval (the 95th percentile of the standard normal).
pub const Z_90: f64 = 1.645;
const MIN_RATING: f64 = 0.5;
const MAX_RATING: f64 = 5.0;

/// Count, sum and sum of squares of a set of ratings, in half-stars (rating × 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: i64,
    pub sum_half: i64,
    pub sum_sq_half: i64,
}

impl Tally {
    /// From (half-star rating, count) pairs, as a histogram query returns them.
    pub fn from_counts(counts: &[(i64, i64)]) -> Self {
        counts.iter().fold(Tally::default(), |t, &(half, n)| Tally {
            count: t.count + n,
            sum_half: t.sum_half + half * n,
            sum_sq_half: t.sum_sq_half + half * half * n,
        })
    }

    /// Mean rating in stars; None without ratings.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_half as f64 / self.count as f64 / 2.0)
    }

    /// Population variance in stars²: (n·Σx² − (Σx)²) / n², exact up to the division.
    pub fn variance(&self) -> Option<f64> {
        (self.count > 0).then(|| {
            let n = i128::from(self.count);
            let numerator = n * i128::from(self.sum_sq_half) - i128::from(self.sum_half).pow(2);
            numerator as f64 / (n * n) as f64 / 4.0
        })
    }
}

/// The site-wide prior every album is shrunk toward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    pub mean: f64,
    pub sd: f64,
}

impl Prior {
    pub const FALLBACK: Prior = Prior { mean: FALLBACK_MEAN, sd: FALLBACK_SD };

    /// The site's own mean and spread once it has enough ratings, else the fallback.
    pub fn from_site(site: &Tally) -> Self {
        match (site.count >= MIN_SITE_RATINGS, site.mean(), site.variance()) {
            (true, Some(mean), Some(variance)) => Prior { mean, sd: variance.sqrt() },
            _ => Self::FALLBACK,
        }
    }
}

/// An album's score on the wire; every field is null when it has no ratings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// Bayesian mean: (C·m + Σ ratings) / (C + n), see the operation's description.
    pub weighted: Option<f64>,
    /// Lower end of the 90 % interval for the album's true mean (≥ 0.5).
    pub low: Option<f64>,
    /// Upper end of the 90 % interval for the album's true mean (≤ 5.0).
    pub high: Option<f64>,
    /// Population standard deviation of the album's ratings.
    pub divisiveness: Option<f64>,
}

/// The score of an album with ratings `album` under `prior`.
pub fn score(album: &Tally, prior: &Prior) -> Score {
    let Some(variance) = album.variance() else {
        return Score::default();
    };
    let n = album.count as f64;
    let weight = PRIOR_WEIGHT + n;
    let weighted = (PRIOR_WEIGHT * prior.mean + album.sum_half as f64 / 2.0) / weight;
    let pooled_variance = (PRIOR_WEIGHT * prior.sd.powi(2) + n * variance) / weight;
    let half_width = Z_90 * (pooled_variance / weight).sqrt();
    Score {
        weighted: Some(weighted),
        low: Some((weighted - half_width).max(MIN_RATING)),
        high: Some((weighted + half_width).min(MAX_RATING)),
        divisiveness: Some(variance.sqrt()),
    }
}

/// The method in words, with the constants in force, for the OpenAPI descriptions.
pub fn explanation() -> String {
    format!(
        "`score.weighted` is a Bayesian mean: (C·m + sum of ratings) / (C + n), with prior weight \
         C = {PRIOR_WEIGHT} ratings and prior mean m = the site-wide mean of all ratings \
         (m = {FALLBACK_MEAN:.1} while the site has fewer than {MIN_SITE_RATINGS} ratings; the \
         site-wide figures are recomputed at most every few seconds). `score.low`/`score.high` \
         are a 90 % credible interval: weighted ∓ {Z_90}·σ/√(C + n), with σ² = (C·σ_site² + \
         n·s²) / (C + n), s the album's and σ_site the site's standard deviation (σ_site = \
         {FALLBACK_SD:.1} while the site has fewer than {MIN_SITE_RATINGS} ratings), clamped to \
         [{MIN_RATING:.1}, {MAX_RATING:.1}]. `score.divisiveness` is s, the population standard \
         deviation of the album's ratings (0 for one rating). All four are null without ratings."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("a value");
        assert!((actual - expected).abs() < 1e-6, "{actual} != {expected}");
    }

    #[test]
    fn tally_from_histogram() {
        // Ratings 5.0, 4.0, 3.0 = halves 10, 8, 6: n = 3, Σ = 24, Σx² = 100 + 64 + 36 = 200.
        let t = Tally::from_counts(&[(10, 1), (8, 1), (6, 1)]);
        assert_eq!(t, Tally { count: 3, sum_half: 24, sum_sq_half: 200 });
        close(t.mean(), 4.0); // 24 / 3 / 2
        // (3·200 − 24²) / 3² / 4 = 24 / 36 = 0.6667; directly: deviations 1, 0, −1 → 2/3.
        close(t.variance(), 2.0 / 3.0);
        assert_eq!(Tally::default().mean(), None);
        assert_eq!(Tally::default().variance(), None);
    }

    #[test]
    fn no_ratings_no_score() {
        assert_eq!(score(&Tally::default(), &Prior::FALLBACK), Score::default());
        let json = serde_json::to_value(Score::default()).expect("serializes");
        assert_eq!(json, serde_json::json!({"weighted": null, "low": null, "high": null, "divisiveness": null}));
    }

    #[test]
    fn one_rating_is_pulled_toward_the_prior() {
        // One 5.0 under m = 3, σ_site = 1: weighted = (5·3 + 5) / 6 = 3.333333.
        // σ² = (5·1 + 1·0) / 6 = 0.833333; half width = 1.645·√(0.833333 / 6)
        //    = 1.645·0.372678 = 0.613055 → [2.720278, 3.946388].
        let s = score(&Tally::from_counts(&[(10, 1)]), &Prior::FALLBACK);
        close(s.weighted, 20.0 / 6.0);
        close(s.low, 3.333_333_3 - 0.613_055_4);
        close(s.high, 3.333_333_3 + 0.613_055_4);
        close(s.divisiveness, 0.0);
    }

    #[test]
    fn many_identical_ratings_move_toward_their_mean_and_narrow() {
        // Ten 5.0: weighted = (15 + 50) / 15 = 4.333333; σ² = (5·1 + 10·0) / 15 = 0.333333;
        // half width = 1.645·√(0.333333 / 15) = 1.645·0.149071 = 0.245222.
        let s = score(&Tally::from_counts(&[(10, 10)]), &Prior::FALLBACK);
        close(s.weighted, 65.0 / 15.0);
        close(s.low, 4.333_333_3 - 0.245_222_4);
        close(s.high, 4.333_333_3 + 0.245_222_4);
        close(s.divisiveness, 0.0);
    }

    #[test]
    fn spread_ratings_under_a_site_prior() {
        // Ratings 5, 4, 3 (n = 3, Σ = 12 stars, s² = 2/3) under m = 3.5, σ_site = 0.8:
        // weighted = (5·3.5 + 12) / 8 = 29.5 / 8 = 3.6875;
        // σ² = (5·0.64 + 3·0.666667) / 8 = (3.2 + 2) / 8 = 0.65;
        // half width = 1.645·√(0.65 / 8) = 1.645·0.285044 = 0.468897 → [3.218603, 4.156397];
        // divisiveness = √(2/3) = 0.816497.
        let s = score(&Tally::from_counts(&[(10, 1), (8, 1), (6, 1)]), &Prior { mean: 3.5, sd: 0.8 });
        close(s.weighted, 3.6875);
        close(s.low, 3.6875 - 0.468_896_9);
        close(s.high, 3.6875 + 0.468_896_9);
        close(s.divisiveness, 0.816_496_6);
    }

    #[test]
    fn interval_is_clamped_to_the_scale() {
        // One 5.0 under m = 4.8: weighted = (24 + 5) / 6 = 4.833333; + 0.613055 > 5 → 5.0.
        let s = score(&Tally::from_counts(&[(10, 1)]), &Prior { mean: 4.8, sd: 1.0 });
        close(s.weighted, 29.0 / 6.0);
        close(s.high, 5.0);
        // One 0.5 under m = 0.6: weighted = (3 + 0.5) / 6 = 0.583333; − 0.613055 < 0.5 → 0.5.
        let s = score(&Tally::from_counts(&[(1, 1)]), &Prior { mean: 0.6, sd: 1.0 });
        close(s.low, 0.5);
    }

    #[test]
    fn site_prior_needs_enough_ratings() {
        // 15 × 4.0 and 5 × 2.0 (halves 8 and 4): n = 20, Σ = 140 halves → mean 3.5;
        // Σx² = 15·64 + 5·16 = 1040; variance = (20·1040 − 140²) / 20² / 4 = 1200 / 1600 = 0.75;
        // directly: deviations +0.5 (×15), −1.5 (×5) → (3.75 + 11.25) / 20 = 0.75.
        let site = Tally::from_counts(&[(8, 15), (4, 5)]);
        let prior = Prior::from_site(&site);
        assert_eq!(prior.mean, 3.5);
        assert!((prior.sd - 0.75_f64.sqrt()).abs() < 1e-12);
        // One rating fewer than MIN_SITE_RATINGS: the fallback.
        assert_eq!(Prior::from_site(&Tally::from_counts(&[(8, 14), (4, 5)])), Prior::FALLBACK);
        assert_eq!(Prior::from_site(&Tally::default()), Prior::FALLBACK);
    }

    #[test]
    fn explanation_names_the_constants() {
        let text = explanation();
        for needle in ["C = 5 ratings", "m = 3.0 while", "fewer than 20 ratings", "1.645", "σ_site = 1.0 while"] {
            assert!(text.contains(needle), "{needle:?} missing from {text}");
        }
    }
}
