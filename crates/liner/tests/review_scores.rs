//! Album scores, the user listing and charts, over HTTP through the gateway of a real
//! `liner up`, on SQLite and on PostgreSQL.
//!
//! Unless a test says otherwise the site has fewer than 20 ratings, so the prior is the
//! documented fallback: mean m = 3.0, spread 1.0, weight C = 5 (see
//! `liner_review::reviews::score`). Expected numbers are worked out in the comments.

mod common;

use common::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

liner_shared::on_both_backends!(
    album_scores_shrink_toward_the_prior,
    site_mean_becomes_the_prior,
    user_listing_pages_sorts_and_404,
    charts_rank_and_count_only_the_period,
);

#[track_caller]
fn approx(value: &Value, expected: f64) {
    let actual = value.as_f64().unwrap_or_else(|| panic!("{value} is not a number"));
    assert!((actual - expected).abs() < 1e-6, "{actual} != {expected}");
}

/// (weighted, low, high, divisiveness) of an album page's score.
fn score_of(body: &Value) -> (f64, f64, f64, f64) {
    let field = |name: &str| body["score"][name].as_f64().unwrap_or_else(|| panic!("score.{name}: {body}"));
    (field("weighted"), field("low"), field("high"), field("divisiveness"))
}

async fn album_scores_shrink_toward_the_prior(backend: Backend) {
    let app = TestApp::start(backend).await;
    let r = app.get("/reviews/album/unrated").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let nulls = serde_json::json!({"weighted": null, "low": null, "high": null, "divisiveness": null});
    assert_eq!(r.body["score"], nulls, "present and null without ratings");
    let doc = app.get("/openapi.json").await.body;
    for path in ["/reviews/album/{albumId}", "/charts"] {
        let text = doc["paths"][path]["get"]["description"].as_str().unwrap_or_default();
        assert!(text.contains("C = 5 ratings") && text.contains("m = 3.0 while"), "{path}: prior documented: {text}");
    }
    assert!(doc["paths"]["/reviews/user/{userId}"]["get"]["responses"]["404"].is_object());

    let mut tokens = Vec::new();
    for i in 0..6 {
        tokens.push(app.user(&format!("listener{i}")).await.1);
    }
    app.review(&tokens[0], "solo", 5.0).await;
    for token in &tokens {
        app.review(token, "crowd", 5.0).await;
    }
    app.review(&tokens[0], "split", 5.0).await;
    app.review(&tokens[1], "split", 1.0).await;

    // One 5.0: (5·3 + 5) / 6 = 3.333333; σ² = 5·1 / 6; ± 1.645·√(0.833333 / 6) = ± 0.613055.
    let solo = app.get("/reviews/album/solo").await.body;
    approx(&solo["score"]["weighted"], 20.0 / 6.0);
    approx(&solo["score"]["low"], 20.0 / 6.0 - 0.613_055_4);
    approx(&solo["score"]["high"], 20.0 / 6.0 + 0.613_055_4);
    // Six 5.0: (15 + 30) / 11 = 4.090909; σ² = 5 / 11; ± 1.645·√(0.454545 / 11) = ± 0.334394.
    let crowd = app.get("/reviews/album/crowd").await.body;
    approx(&crowd["score"]["weighted"], 45.0 / 11.0);
    approx(&crowd["score"]["high"], 45.0 / 11.0 + 0.334_394_1);
    // 5.0 and 1.0: (15 + 6) / 7 = 3.0; s = 2 (deviations ±2); σ² = (5 + 2·4) / 7 = 13/7;
    // ± 1.645·√(1.857143 / 7) = ± 0.847305.
    let split = app.get("/reviews/album/split").await.body;
    approx(&split["score"]["weighted"], 3.0);
    approx(&split["score"]["low"], 3.0 - 0.847_305_4);
    approx(&split["score"]["divisiveness"], 2.0);

    let (solo_w, solo_low, solo_high, solo_div) = score_of(&solo);
    let (crowd_w, crowd_low, crowd_high, crowd_div) = score_of(&crowd);
    assert!(solo_w < crowd_w && crowd_w < 5.0, "more agreeing ratings, less pull toward 3.0");
    assert_eq!(solo["averageRating"], 5.0, "the plain average is not pulled");
    for (low, w, high) in [(solo_low, solo_w, solo_high), (crowd_low, crowd_w, crowd_high)] {
        assert!(low < w && w < high, "interval {low}..{high} contains {w}");
    }
    assert!(crowd_high - crowd_low < solo_high - solo_low, "more reviews, narrower interval");
    assert_eq!((solo_div, crowd_div), (0.0, 0.0), "identical ratings are not divisive");
    app.stop().await;
}

async fn site_mean_becomes_the_prior(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, token) = app.user("prolific").await;
    // 20 ratings (enough to trust): 15 × 4.0 and 5 × 2.0 → site mean 3.5, variance 0.75.
    for i in 0..20 {
        app.review(&token, &format!("s{i}"), if i < 15 { 4.0 } else { 2.0 }).await;
    }
    // The first score request computes the prior. Album s0 holds one 4.0:
    // (5·3.5 + 4) / 6 = 3.583333 (the fallback would give (15 + 4) / 6 = 3.166667);
    // σ² = 5·0.75 / 6 = 0.625; ± 1.645·√(0.625 / 6) = ± 0.530922.
    let r = app.get("/reviews/album/s0").await;
    approx(&r.body["score"]["weighted"], 21.5 / 6.0);
    approx(&r.body["score"]["low"], 21.5 / 6.0 - 0.530_922_3);
    app.stop().await;
}

async fn user_listing_pages_sorts_and_404(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (user_id, token) = app.user("collector").await;
    let (other_id, other) = app.user("bystander").await;
    let r = app.get(&format!("/reviews/user/{other_id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["total"].as_i64(), &r.body["averageRating"]), (Some(0), &Value::Null));
    assert_eq!(r.body["items"], serde_json::json!([]));

    let ratings = [3.0, 5.0, 1.0, 4.0, 2.0];
    for (i, rating) in ratings.iter().enumerate() {
        app.review(&token, &format!("album{i}"), *rating).await;
    }
    app.review(&other, "album0", 0.5).await; // someone else's review is not listed

    let all_pages = |sort: &'static str| {
        let (app, user_id) = (&app, &user_id);
        async move {
            let (mut ratings, mut cursor) = (Vec::new(), String::new());
            loop {
                let r = app.get(&format!("/reviews/user/{user_id}?sort={sort}&limit=2{cursor}")).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                assert_eq!(r.body["userId"], user_id.as_str());
                assert_eq!(r.body["total"], 5);
                approx(&r.body["averageRating"], 3.0); // (3 + 5 + 1 + 4 + 2) / 5
                for item in r.body["items"].as_array().expect("items") {
                    assert_eq!(item["userId"], user_id.as_str());
                    assert_eq!(item["username"], "collector");
                    ratings.push(item["rating"].as_f64().expect("rating"));
                }
                match r.body["nextCursor"].as_str() {
                    Some(c) => cursor = format!("&cursor={c}"),
                    None => return ratings,
                }
            }
        }
    };
    assert_eq!(all_pages("oldest").await, ratings);
    assert_eq!(all_pages("newest").await, [2.0, 4.0, 1.0, 5.0, 3.0]);
    assert_eq!(all_pages("highest").await, [5.0, 4.0, 3.0, 2.0, 1.0]);
    assert_eq!(all_pages("lowest").await, [1.0, 2.0, 3.0, 4.0, 5.0]);

    app.get("/reviews/user/no-such-user").await.assert_error(404, "not_found");
    for bad in ["limit=0", "limit=101", "sort=best", "cursor=garbage", "unknown=1"] {
        app.get(&format!("/reviews/user/{user_id}?{bad}")).await.assert_error(400, "bad_query");
    }
    app.stop().await;
}

async fn charts_rank_and_count_only_the_period(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut tokens = Vec::new();
    for name in ["ann", "ben", "cat"] {
        tokens.push(app.user(name).await.1);
    }
    let (ann, ben, cat) = (&tokens[0], &tokens[1], &tokens[2]);
    for token in [ann, ben, cat] {
        app.review(token, "steady", 4.5).await; // (15 + 13.5) / 8 = 3.5625
    }
    app.review(ann, "hyped", 5.0).await; // (15 + 5) / 6 = 3.333333
    app.review(ben, "pair", 3.0).await; // (15 + 6) / 7 = 3.0, total 2
    app.review(cat, "pair", 3.0).await;
    app.review(cat, "single", 3.0).await; // (15 + 3) / 6 = 3.0, total 1
    app.review(ann, "meh", 2.0).await; // (15 + 4) / 7 = 2.714286
    app.review(ben, "meh", 2.0).await;
    // Three 5.0 reviews of an old favourite, created 10, 100 and 400 days ago.
    let db = app.review_db().await;
    for (token, days) in [(ann, 10), (ben, 100), (cat, 400)] {
        let id = app.review(token, "old-gem", 5.0).await["id"].as_str().expect("id").to_owned();
        let done = sqlx::query("UPDATE reviews SET created_at = created_at - $1 WHERE id = $2")
            .bind(days * 86_400_000_i64)
            .bind(&id)
            .execute(&db)
            .await
            .expect("backdate");
        assert_eq!(done.rows_affected(), 1);
    }
    db.close().await;

    let chart = |query: &'static str| {
        let app = &app;
        async move {
            let r = app.get(&format!("/charts{query}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body
        }
    };
    let ids = |body: &Value| -> Vec<String> {
        body["items"].as_array().expect("items").iter().map(|i| i["albumId"].as_str().expect("id").to_owned()).collect()
    };
    let week = chart("").await;
    assert_eq!(week["period"], "week", "week is the default");
    assert_eq!(ids(&week), ["steady", "hyped", "pair", "single", "meh"], "no old-gem review is this week's");
    assert_eq!(week, chart("?period=week").await);
    let steady = &week["items"][0];
    assert_eq!((steady["total"].as_i64(), steady["averageRating"].as_f64()), (Some(3), Some(4.5)));
    approx(&steady["score"]["weighted"], 28.5 / 8.0);

    // Month: one old-gem review, (15 + 5) / 6 = 3.333333, tied with hyped (total 1): by albumId.
    let month = chart("?period=month").await;
    assert_eq!(ids(&month), ["steady", "hyped", "old-gem", "pair", "single", "meh"]);
    assert_eq!(month["items"][2]["total"], 1);
    // Year: two, (15 + 10) / 7 = 3.571429 > 3.5625. All time: three, (15 + 15) / 8 = 3.75.
    let year = chart("?period=year").await;
    assert_eq!((ids(&year)[0].as_str(), year["items"][0]["total"].as_i64()), ("old-gem", Some(2)));
    let all = chart("?period=all&limit=2").await;
    assert_eq!(ids(&all), ["old-gem", "steady"]);
    approx(&all["items"][0]["score"]["weighted"], 3.75);

    for bad in ["period=day", "period=", "limit=0", "limit=101", "limit=x", "unknown=1"] {
        app.get(&format!("/charts?{bad}")).await.assert_error(400, "bad_query");
    }
    app.stop().await;
}
