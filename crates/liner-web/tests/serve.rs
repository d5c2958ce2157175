//! The web client's HTTP side: the page for every client route, hashed assets with
//! year-long caching whose imports all resolve, and the security headers everywhere.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let req = Request::get(path).body(Body::empty()).expect("request");
    let res = liner_web::router().oneshot(req).await.expect("infallible");
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn assert_secure(headers: &axum::http::HeaderMap) {
    assert_eq!(headers[header::CONTENT_SECURITY_POLICY], liner_web::CONTENT_SECURITY_POLICY);
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
}

/// `/assets/...` URLs named in `text` (HTML attributes and module imports).
fn asset_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quote in ['"', '\''] {
        for piece in text.split(quote).skip(1).step_by(2) {
            if let Some(rest) = piece.strip_prefix("/assets/").or_else(|| piece.strip_prefix("./")) {
                out.push(format!("/assets/{rest}"));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_client_route_gets_the_page_uncached() {
    for path in [
        "/",
        "/search?q=blue",
        "/albums/mb:abc",
        "/genres/jazz",
        "/users/u1",
        "/rooms/r1",
        "/login",
        "/signup",
        "/nope/deeper",
    ] {
        let (status, headers, body) = get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert!(headers.contains_key(header::ETAG));
        assert!(body.contains("<main id=\"main\""), "{path}");
        assert_secure(&headers);
    }
}

#[tokio::test]
async fn the_page_has_no_inline_script_or_style() {
    let (_, _, body) = get("/").await;
    assert!(!body.contains("style="), "no style attributes");
    assert!(!body.contains("<style"), "no style elements");
    for script in body.split("<script").skip(1) {
        assert!(script.contains("src=\"/assets/"), "every script is a file: {script}");
    }
}

#[tokio::test]
async fn every_referenced_asset_is_served_immutable_and_resolves() {
    let (_, _, page) = get("/").await;
    let mut todo = asset_refs(&page);
    assert!(todo.iter().any(|a| a.starts_with("/assets/main.") && a.ends_with(".js")), "{todo:?}");
    let mut seen = std::collections::HashSet::new();
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let (status, headers, body) = get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path} is served");
        assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=31536000, immutable", "{path}");
        assert_secure(&headers);
        let name = path.trim_start_matches("/assets/");
        assert_eq!(name.split('.').count(), 3, "{path} has a content hash in its name");
        if path.ends_with(".js") {
            assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
            todo.extend(asset_refs(&body));
        }
    }
    assert!(seen.len() >= 10, "the whole module graph is reachable: {seen:?}");
}

#[tokio::test]
async fn unknown_assets_are_404_not_the_page() {
    let (status, headers, _) = get("/assets/main.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unhashed names are not served");
    assert_secure(&headers);
    let (status, _, _) = get("/assets/main.000000000000.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_matching_etag_answers_304_and_writes_are_refused() {
    let (_, headers, _) = get("/").await;
    let etag = headers[header::ETAG].clone();
    let req = Request::get("/albums/x").header(header::IF_NONE_MATCH, etag).body(Body::empty()).expect("request");
    let res = liner_web::router().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    let req = Request::post("/").body(Body::empty()).expect("request");
    let res = liner_web::router().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_secure(res.headers());
}

#[test]
fn api_paths_are_not_the_web_client() {
    assert!(!liner_web::is_web_path("/api"));
    assert!(!liner_web::is_web_path("/api/catalog/albums"));
    assert!(liner_web::is_web_path("/apiary"));
    assert!(liner_web::is_web_path("/albums/1"));
}
