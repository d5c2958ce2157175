//! Test support: start the real system on port 0 and talk to it like a client.
#![allow(dead_code)]

use std::net::SocketAddr;

use liner::up::{System, UpSettings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use liner_shared::testkit::{Backend, fresh_database};

/// Sends a request and reads its answer as JSON (whatever the status).
pub async fn json_of(req: reqwest::RequestBuilder) -> Value {
    req.send().await.expect("sent").json().await.expect("JSON answer")
}

/// A running `liner up` with its own data dir (and its own PostgreSQL database).
pub struct TestApp {
    pub base: String,
    pub gateway: SocketAddr,
    /// The gateway's admin listener (`/metrics`).
    pub admin: SocketAddr,
    /// The registry (gRPC).
    pub discovery: SocketAddr,
    /// Each service's own listener, by name.
    pub services: Vec<(&'static str, SocketAddr)>,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
    /// The review service's database, for tests that must set up what the API cannot
    /// (e.g. a backdated review).
    pub review_database_url: liner_shared::config::DatabaseUrl,
    system: Option<System>,
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut settings = UpSettings::new(([127, 0, 0, 1], 0).into(), data_dir.path().to_path_buf());
        settings.review_database_url = fresh_database(backend).await;
        // Tests sign up many users from loopback; `review_api.rs` tests the limit itself.
        settings.registrations_per_address = 0;
        let review_database_url = settings.review_database_url.clone().unwrap_or_else(|| {
            liner_review::Settings::new(settings.listen, settings.data_dir.clone())
                .database_url()
                .expect("review database url")
        });
        settings.forum_database_url = fresh_database(backend).await;
        settings.catalog_database_url = fresh_database(backend).await;
        let system = System::start(settings, CancellationToken::new()).await.expect("system starts");
        let gateway = system.gateway;
        Self {
            base: format!("http://{gateway}/api/users-reviews"),
            gateway,
            admin: system.admin,
            discovery: system.discovery,
            services: vec![("review", system.review), ("forum", system.forum), ("catalog", system.catalog)],
            data_dir,
            http: reqwest::Client::new(),
            review_database_url,
            system: Some(system),
        }
    }

    /// A connection pool to the review service's database, behind the API's back.
    pub async fn review_db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(self.review_database_url.as_str()).await.expect("review database")
    }

    pub async fn stop(mut self) {
        if let Some(system) = self.system.take() {
            system.shutdown().await.expect("clean shutdown");
        }
    }

    /// Sends a request; returns status, headers and the body parsed as JSON (Null if empty).
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Resp::from(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Registers `name` and logs in; returns (user id, token).
    pub async fn user(&self, name: &str) -> (String, String) {
        let r = self
            .post(
                "/users/register",
                None,
                json!({"username": name, "password": "correct horse", "email": format!("{name}@example.com")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "register {name}: {}", r.body);
        let r = self.post("/users/login", None, json!({"username": name, "password": "correct horse"})).await;
        assert_eq!(r.status, StatusCode::OK, "login {name}: {}", r.body);
        (r.body["user"]["id"].as_str().expect("id").to_owned(), r.body["token"].as_str().expect("token").to_owned())
    }

    pub async fn review(&self, token: &str, album: &str, rating: f64) -> Value {
        let r =
            self.post("/reviews", Some(token), json!({"albumId": album, "rating": rating, "reviewText": "ok"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub async fn from(res: reqwest::Response) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Self { status, headers, body }
    }

    /// Asserts the API error shape with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        assert!(
            self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message missing: {}",
            self.body
        );
    }

    #[track_caller]
    pub fn assert_invalid(&self, field: &str) {
        self.assert_error(422, "invalid_field");
        let msg = self.body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(field), "message should name {field}: {msg}");
    }
}

/// A review replica on `db` and `redis`; its root URL (the API is under `/api/users-reviews`).
pub async fn replica_at(db: &str, data_dir: &std::path::Path, redis: String, token: &CancellationToken) -> String {
    let mut settings = liner_review::Settings::new(([127, 0, 0, 1], 0).into(), data_dir.to_path_buf());
    settings.service.database_url = Some(db.parse().expect("db url"));
    settings.redis_url = Some(redis);
    // Redis keeps counts across tests and runs: sign-ups from loopback are not limited here.
    settings.registrations_per_address = 0;
    let running = liner_review::build(settings).await.expect("replica starts");
    let root = format!("http://{}", running.addr());
    tokio::spawn(running.run_until(token.clone()));
    root
}
