//! Test support: a real review service (the token issuer) and a real catalogue on
//! port 0, on SQLite or a fresh PostgreSQL database, driven over HTTP like any client.

#![allow(dead_code)]

use liner_catalog::import::{ImportReport, import_reader};
use liner_shared::db::Db;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub use liner_shared::testkit::{Backend, fresh_database};

pub struct Catalog {
    pub base: String,
    /// A second connection to the service's database, for imports and counts.
    pub db: Db,
    pub http: reqwest::Client,
    pub review_base: String,
    pub dir: TempDir,
    stop: CancellationToken,
}

impl Drop for Catalog {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts the review service and a catalogue (empty: no sample) on `backend`.
pub async fn start(backend: Backend) -> Catalog {
    if std::env::var_os("TEST_LOG").is_some() {
        liner_shared::telemetry::init();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let mut review_settings = liner_review::Settings::new("127.0.0.1:0".parse().unwrap(), dir.path().join("review"));
    review_settings.registrations_per_address = 0;
    let review = liner_review::build(review_settings).await.expect("review service builds");
    let review_base = format!("http://{}", review.addr());
    tokio::spawn(review.run_until(stop.clone()));

    let mut settings = liner_catalog::Settings::new("127.0.0.1:0".parse().unwrap(), dir.path().join("catalog"));
    settings.review = liner_discovery::peers::ReviewArgs::at(review_base.clone());
    settings.service.database_url = fresh_database(backend).await;
    let url = settings.service.database_url_or(liner_catalog::SQLITE_FILE).expect("db url");
    let running = liner_catalog::build(settings).await.expect("catalogue builds");
    let base = format!("http://{}/api/catalog", running.addr());
    tokio::spawn(running.run_until(stop.clone()));
    let db = liner_catalog::connect(&url, 4).await.expect("test connection");
    Catalog { base, db, http: reqwest::Client::new(), review_base, dir, stop }
}

impl Catalog {
    /// Registers a user and logs in; returns the token.
    pub async fn token(&self, username: &str) -> String {
        let api = format!("{}/api/users-reviews/users", self.review_base);
        let password = "correct horse battery";
        let res = self
            .http
            .post(format!("{api}/register"))
            .json(&json!({"username": username, "password": password, "email": format!("{username}@example.com")}))
            .send()
            .await
            .expect("register");
        assert_eq!(res.status(), 201);
        let res = self
            .http
            .post(format!("{api}/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("login body");
        body["token"].as_str().expect("token").to_owned()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.http.get(format!("{}{path}", self.base)).send().await.expect("GET");
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}/albums", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("POST");
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    /// The titles of one page of `GET /albums?{query}`.
    pub async fn titles(&self, query: &str) -> Vec<String> {
        let (status, body) = self.get(&format!("/albums?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        body["items"].as_array().expect("items").iter().map(|a| a["title"].as_str().unwrap().to_owned()).collect()
    }

    /// Every album of a listing, following `nextCursor`.
    pub async fn all_pages(&self, query: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("/albums?{query}&cursor={c}"),
                None => format!("/albums?{query}"),
            };
            let (status, body) = self.get(&q).await;
            assert_eq!(status, 200, "{q}: {body}");
            all.extend(body["items"].as_array().expect("items").iter().cloned());
            match body["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return all,
            }
        }
    }

    pub async fn import(&self, text: String) -> ImportReport {
        import_reader(&self.db, std::io::Cursor::new(text.into_bytes()), indicatif::ProgressBar::hidden())
            .await
            .expect("import")
    }

    pub async fn count(&self) -> i64 {
        liner_catalog::albums::store::count(&self.db).await.expect("count")
    }
}

/// One release group as a MusicBrainz dump line.
pub fn release_group(mbid: &str, title: &str, artist: &str, date: &str, kind: &str, genres: &[&str]) -> String {
    let genres: Vec<Value> = genres.iter().enumerate().map(|(i, g)| json!({"name": g, "count": 10 - i})).collect();
    json!({
        "id": mbid, "title": title, "first-release-date": date, "primary-type": kind, "secondary-types": [],
        "artist-credit": [{"name": artist, "joinphrase": "", "artist": {"id": "x", "name": artist}}],
        "genres": genres, "tags": [{"name": "seen live", "count": 5}],
    })
    .to_string()
}

/// A deterministic, valid mbid for test album `n`.
pub fn mbid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}
