//! Adding and reading albums, on SQLite and PostgreSQL: the album shape, duplicates
//! (409 naming the existing album), auth, and a 422 naming each bad field.

mod common;

use common::*;
use serde_json::{Value, json};

liner_shared::on_both_backends!(create_read_duplicates_and_validation);

async fn create_read_duplicates_and_validation(backend: Backend) {
    let c = start(backend).await;
    let token = c.token("ann").await;
    let mbid = "6E335887-60BA-38F0-95AF-FAE7774336BF";
    let body = json!({"title": "Kid A", "artist": "Radiohead", "year": 2000, "genres": ["electronic", "art-rock"], "mbid": mbid});

    // Writes need a token.
    let (status, err) = c.post(None, &body).await;
    assert_eq!(status, 401, "{err}");
    assert_eq!(err["error"]["code"], "unauthorized");
    let (status, _) = c.post(Some("not.a.token"), &body).await;
    assert_eq!(status, 401);

    // 201 with every field of the contract; the id comes from the mbid.
    let (status, album) = c.post(Some(&token), &body).await;
    assert_eq!(status, 201, "{album}");
    let id = "mb:6e335887-60ba-38f0-95af-fae7774336bf";
    assert_eq!(album["id"], id);
    assert_eq!(album["mbid"], "6e335887-60ba-38f0-95af-fae7774336bf");
    assert_eq!(
        (album["title"].as_str(), album["artist"].as_str(), album["year"].as_i64()),
        (Some("Kid A"), Some("Radiohead"), Some(2000))
    );
    assert_eq!(album["genres"], json!(["electronic", "art-rock"]));
    assert!(album["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(album["createdBy"].as_str().is_some_and(|u| !u.is_empty()));
    let (status, read) = c.get(&format!("/albums/{id}")).await;
    assert_eq!((status, &read), (200, &album));
    let (status, err) = c.get("/albums/mb:00000000-0000-0000-0000-000000000000").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "not_found");

    // Duplicates: the same mbid (any spelling), or the same title + artist + year in any case.
    for dup in [
        json!({"title": "Something else", "artist": "X", "mbid": mbid.to_lowercase()}),
        json!({"title": "KID A", "artist": "radiohead", "year": 2000}),
        json!({"title": "kid a", "artist": "RadioHead", "year": 2000, "mbid": "11111111-2222-4333-8444-555555555555"}),
    ] {
        let (status, err) = c.post(Some(&token), &dup).await;
        assert_eq!(status, 409, "{dup}: {err}");
        assert_eq!(err["error"]["code"], "album_exists");
        assert_eq!(err["error"]["existingId"], id, "{dup}");
    }
    // Another year is another album; without an mbid it gets an opaque id.
    let (status, other) = c.post(Some(&token), &json!({"title": "Kid A", "artist": "Radiohead"})).await;
    assert_eq!(status, 201, "{other}");
    assert!(other["mbid"].is_null() && other["year"].is_null() && other["genres"] == json!([]));
    assert!(!other["id"].as_str().unwrap().starts_with("mb:"));

    // Racing creates of one album store it once.
    let race = json!({"title": "In Rainbows", "artist": "Radiohead", "year": 2007});
    let results = futures_util::future::join_all((0..10).map(|_| c.post(Some(&token), &race))).await;
    let created: Vec<&Value> = results.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert!(results.iter().filter(|(s, _)| *s == 409).all(|(_, e)| e["error"]["existingId"] == created[0]["id"]));

    // 422 naming the field.
    let next_year = time::OffsetDateTime::now_utc().year() as i64 + 1;
    for (bad, field) in [
        (json!({"title": "", "artist": "A"}), "title"),
        (json!({"title": "   ", "artist": "A"}), "title"),
        (json!({"title": "t".repeat(301), "artist": "A"}), "title"),
        (json!({"title": "T", "artist": ""}), "artist"),
        (json!({"title": "T", "artist": "a\u{0}b"}), "artist"),
        (json!({"title": "T", "artist": "A", "year": 1859}), "year"),
        (json!({"title": "T", "artist": "A", "year": next_year + 1}), "year"),
        (json!({"title": "T", "artist": "A", "year": "1999"}), "year"),
        (json!({"title": "T", "artist": "A", "genres": ["Not A Slug"]}), "genres"),
        (json!({"title": "T", "artist": "A", "genres": ["g".repeat(65)]}), "genres"),
        (
            json!({"title": "T", "artist": "A", "genres": (0..11).map(|i| format!("g{i}")).collect::<Vec<_>>()}),
            "genres",
        ),
        (json!({"title": "T", "artist": "A", "mbid": "not-a-uuid"}), "mbid"),
        (json!({"title": "T", "artist": "A", "rating": 5}), "rating"),
        (json!({"artist": "A"}), "title"),
    ] {
        let (status, err) = c.post(Some(&token), &bad).await;
        assert_eq!(status, 422, "{bad}: {err}");
        assert_eq!(err["error"]["code"], "invalid_field");
        assert!(err["error"]["message"].as_str().unwrap().contains(field), "{bad}: {err}");
    }
    let (status, _) = c.post(Some(&token), &json!({"title": "T", "artist": "A", "year": next_year})).await;
    assert_eq!(status, 201, "next year is allowed");
    let res = c
        .http
        .post(format!("{}/albums", c.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // The OpenAPI document describes the service.
    let (status, doc) = c.get("/openapi.json").await;
    assert_eq!(status, 200);
    for path in ["/albums", "/albums/{albumId}", "/genres"] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert_eq!(count_paths(&doc), 3);
}

fn count_paths(doc: &Value) -> usize {
    doc["paths"].as_object().map_or(0, |p| p.len())
}
