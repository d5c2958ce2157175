//! The catalogue through the gateway of a real `liner up`: discovery routing, the
//! shipped sample loaded on first start, search, and writes that need a token.

mod common;

use common::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

liner_shared::on_both_backends!(catalogue_through_the_gateway);

async fn get(app: &TestApp, path: &str) -> Value {
    let res = app.http.get(format!("http://{}/api/catalog{path}", app.gateway)).send().await.expect("sent");
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.json().await.expect("json")
}

async fn catalogue_through_the_gateway(backend: Backend) {
    let app = TestApp::start(backend).await;

    // A new installation is not empty: the sample was loaded.
    let page = get(&app, "/albums?limit=5").await;
    let items = page["items"].as_array().expect("items");
    assert!(!items.is_empty(), "sample loaded: {page}");
    let album = &items[0];
    assert!(album["id"].as_str().unwrap().starts_with("mb:"), "sample albums carry their MusicBrainz id: {album}");

    // Search finds a sample album by the words of its title and artist, in any case.
    let title = album["title"].as_str().unwrap();
    let artist = album["artist"].as_str().unwrap();
    // (At most 200 characters are accepted; a cut last word still matches as a prefix.)
    let q: String = format!("{title} {artist}").to_uppercase().chars().take(200).collect();
    let found = get(&app, &format!("/albums?limit=100&q={}", percent_encode(&q))).await;
    assert!(found["items"].as_array().unwrap().iter().any(|a| a["id"] == album["id"]), "{q}: {found}");
    assert!(!get(&app, "/genres").await.as_array().unwrap().is_empty());

    // Writes need a token: the gateway refuses without one; with one, the album is added.
    let body = json!({"title": "Through The Gateway", "artist": "Liner Tests", "year": 2024});
    let url = format!("http://{}/api/catalog/albums", app.gateway);
    let res = app.http.post(&url).json(&body).send().await.expect("sent");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (_, token) = app.user("ann").await;
    let res = app.http.post(&url).bearer_auth(&token).json(&body).send().await.expect("sent");
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.expect("json");
    let read = get(&app, &format!("/albums/{}", created["id"].as_str().unwrap())).await;
    assert_eq!(read, created);
    assert_eq!(get(&app, "/albums?q=through%20gate").await["items"][0]["id"], created["id"]);

    app.stop().await;
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
