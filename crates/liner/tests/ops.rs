//! Operational surface: health, readiness, metrics, request ids, OpenAPI, CLI config errors.

mod common;

use common::{Backend, TestApp};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_request_ids() {
    let app = TestApp::start(Backend::Sqlite).await;
    let gw = format!("http://{}", app.gateway);
    let admin = format!("http://{}", app.admin);
    for base in [&gw, &admin] {
        for path in ["/healthz", "/readyz"] {
            let r = app.http.get(format!("{base}{path}")).send().await.expect("sent");
            assert_eq!(r.status(), StatusCode::OK, "{base}{path}");
        }
    }
    app.get("/reviews/album/x").await;
    // Metrics on the admin listener only; a made-up method is counted as `other`.
    let r = app
        .http
        .request(reqwest::Method::from_bytes(b"BREW").expect("method"), format!("{}/reviews/album/x", app.base));
    r.send().await.expect("sent");
    let public = app.http.get(format!("{gw}/metrics")).send().await.expect("sent").text().await.expect("text");
    assert!(!public.contains("http_requests_total"), "no metrics on the public listener");
    let review_metrics =
        app.http.get(format!("{admin}/metrics")).send().await.expect("sent").text().await.expect("text");
    assert!(review_metrics.contains("method=\"other\""), "{review_metrics}");
    assert!(!review_metrics.contains("BREW"), "no series named by a client");
    assert!(
        review_metrics
            .contains("http_requests_total{service=\"review\",route=\"/api/users-reviews/reviews/album/{album_id}\""),
        "{review_metrics}"
    );

    // The gateway sets a request id when missing and keeps the client's when present.
    let r = app.http.get(format!("{}/reviews/album/x", app.base)).send().await.expect("sent");
    assert!(r.headers().get("x-request-id").is_some_and(|v| v.len() >= 16));
    let r = app
        .http
        .get(format!("{}/reviews/album/x", app.base))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.headers()["x-request-id"], "trace-me-123");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_every_operation() {
    let app = TestApp::start(Backend::Sqlite).await;
    let doc = app.get("/openapi.json").await.body;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{doc}");
    let paths = &doc["paths"];
    for (path, method) in [
        ("/users/register", "post"),
        ("/users/login", "post"),
        ("/users/profile/{userId}", "get"),
        ("/reviews", "post"),
        ("/reviews/{reviewId}", "get"),
        ("/reviews/{reviewId}", "put"),
        ("/reviews/{reviewId}", "delete"),
        ("/reviews/album/{albumId}", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    for schema in ["Review", "AlbumReviews", "RegisterRequest", "LoginResponse", "ErrorBody"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema} missing");
    }
    let create = &paths["/reviews"]["post"]["responses"];
    for status in ["201", "401", "403", "409", "422"] {
        assert!(create[status].is_object(), "POST /reviews documents {status}");
    }
    app.stop().await;
}

/// What scripts/fuzz-api holds the services to: every status an operation can answer is
/// in its document, in the error shape, 429 with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_error_an_operation_can_get() {
    let app = TestApp::start(Backend::Sqlite).await;
    for service in ["users-reviews", "catalog", "forums"] {
        let url = format!("http://{}/api/{service}/openapi.json", app.gateway);
        let doc: serde_json::Value = app.http.get(url).send().await.expect("sent").json().await.expect("json");
        let ops = doc["paths"].as_object().expect("paths").iter().flat_map(|(path, item)| {
            item.as_object().expect("path item").iter().map(move |(method, op)| (format!("{method} {path}"), op))
        });
        for (name, op) in ops {
            let responses = &op["responses"];
            let mut expected = vec!["400", "429", "502", "503", "504"];
            if op["requestBody"].is_object() {
                expected.extend(["408", "413", "415", "422"]);
            }
            if op["security"].is_array() {
                expected.push("401");
            }
            for status in expected {
                let error_schema = &responses[status]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(error_schema, "#/components/schemas/ErrorBody", "{service}: {name} documents {status}");
            }
            assert!(responses["429"]["headers"]["Retry-After"].is_object(), "{service}: {name} 429 Retry-After");
        }
    }
    let doc = app.get("/openapi.json").await.body;
    assert!(doc["paths"]["/users/register"]["post"]["responses"]["429"].is_object(), "register is rate limited");
    assert!(doc["paths"]["/users/profile/{userId}"]["get"]["responses"]["401"].is_object(), "a bad token is 401");
    app.stop().await;
}

#[test]
fn bad_configuration_fails_fast_with_one_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liner"))
        .args(["review", "--database-url", "mysql://nope"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("database URL must start with"), "{err}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liner"))
        .args(["review", "--listen", "127.0.0.1:1", "--data-dir", "/proc/definitely/not/writable"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().filter(|l| l.starts_with("liner:")).count(), 1, "{err}");
}

/// Replicas on PostgreSQL must share one configured key: without one the review service
/// refuses to start (one line) instead of generating a key of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_on_postgresql_refuses_to_start_without_a_signing_key() {
    let db = liner_shared::testkit::fresh_pg_database().await;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liner"))
        .args(["review", "--listen", "127.0.0.1:0", "--database-url", &db, "--data-dir"])
        .arg(data_dir.path())
        .env_remove("LINER_JWT_PRIVATE_KEY")
        .env_remove("LINER_JWT_KEY_FILE")
        .output()
        .expect("runs");
    assert!(!out.status.success(), "started without a key");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("liner:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("no signing key"), "{err}");
    assert!(!data_dir.path().join("review-jwt-ed25519.pem").exists(), "no key was generated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_of_liner_up_refuses_a_process_without_its_token() {
    use liner_discovery::proto::discovery_client::DiscoveryClient;
    use liner_discovery::proto::{Instance, ListRequest, RegisterRequest};

    let app = TestApp::start(Backend::Sqlite).await;
    let mut client = DiscoveryClient::connect(format!("http://{}", app.discovery)).await.expect("connect");
    let fake = Instance {
        service: "review".into(),
        instance_id: "review@evil".into(),
        address: "127.0.0.1:9".into(),
        metadata: Default::default(),
    };
    let refused = client.register(RegisterRequest { instance: Some(fake), ttl_seconds: 10 }).await;
    assert_eq!(refused.expect_err("refused").code(), tonic::Code::Unauthenticated);
    let listed = client.list(ListRequest { service: "review".into() }).await;
    assert_eq!(listed.expect_err("reads need the token too").code(), tonic::Code::Unauthenticated);
    // The real services registered with the run's token: the API works through the gateway.
    assert_eq!(app.get("/reviews/album/x").await.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_serves_grpc_health() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let app = TestApp::start(Backend::Sqlite).await;
    let mut targets: Vec<(&str, std::net::SocketAddr)> = app.services.clone();
    targets.push(("gateway", app.admin));
    targets.push(("discovery.v1.Discovery", app.discovery));
    for (service, addr) in targets {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{service}: {e}"));
        let mut client = HealthClient::new(channel);
        for name in ["", service] {
            let status = client.check(HealthCheckRequest { service: name.into() }).await;
            let status = status.unwrap_or_else(|e| panic!("{service} ({name:?}): {e}")).into_inner().status();
            assert_eq!(status, ServingStatus::Serving, "{service} ({name:?})");
        }
    }
    app.stop().await;
}
