//! The web client, served by the gateway for every path outside `/api/`.
//!
//! The client is plain ES modules and one stylesheet (`assets/`), with no build step:
//! the browser loads the modules as written, so there is no Node.js toolchain to keep
//! current and what is in the repository is what runs. The files are compiled into
//! the binary, so `liner up` (or a lone gateway) serves the site with nothing else to
//! deploy. Why, the routes and the caching: `README.md` beside this crate.
//!
//! Two kinds of answer:
//! - `/assets/<name>.<hash>.<ext>`: a file by its content-hashed name (`assets`
//!   module), cacheable for a year (`immutable`); any other `/assets/` path is a 404.
//! - every other path: `index.html`, `no-cache` with an ETag, and the client-side
//!   router renders the page the path names (`/albums/<id>`, `/rooms/<id>`, …).
//!
//! Every answer carries a Content-Security-Policy that allows only this origin and no
//! inline script or style, `nosniff`, and `Referrer-Policy: same-origin`.

mod assets;

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;

/// The policy on every web answer: this origin only, no inline code, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

struct File {
    body: Bytes,
    content_type: HeaderValue,
    etag: HeaderValue,
}

struct Site {
    /// Public (hashed) name → file.
    assets: HashMap<String, File>,
    index: File,
}

static SITE: LazyLock<Site> = LazyLock::new(|| {
    let mut assets = HashMap::new();
    let mut index = None;
    for built in assets::build() {
        let file = File {
            body: Bytes::from(built.body),
            content_type: HeaderValue::from_static(built.content_type),
            etag: HeaderValue::from_str(&format!("\"{}\"", &built.digest[..32])).expect("hex is a valid header"),
        };
        if built.public_name == assets::INDEX {
            index = Some(file);
        } else {
            assets.insert(built.public_name, file);
        }
    }
    Site { assets, index: index.expect("assets/index.html is embedded") }
});

/// Whether `path` belongs to the web client (everything outside `/api`).
pub fn is_web_path(path: &str) -> bool {
    !(path == "/api" || path.starts_with("/api/"))
}

/// The client as a router, for mounting as a fallback.
pub fn router() -> Router {
    Router::new().fallback(serve)
}

/// Answers one request for the web client (GET and HEAD; 405 otherwise).
pub async fn serve(req: Request) -> Response {
    let site = &*SITE;
    let head = req.method() == Method::HEAD;
    let mut res = if req.method() != Method::GET && !head {
        let mut res = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        res
    } else if let Some(name) = req.uri().path().strip_prefix("/assets/") {
        match site.assets.get(name) {
            Some(file) => file_response(file, IMMUTABLE, req.headers()),
            None => plain(StatusCode::NOT_FOUND, "no such asset"),
        }
    } else {
        file_response(&site.index, NO_CACHE, req.headers())
    };
    if head {
        *res.body_mut() = Body::empty();
    }
    secure(res.headers_mut());
    res
}

fn file_response(file: &File, cache: &'static str, request: &HeaderMap) -> Response {
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|tag| tag.trim() == file.etag || tag.trim() == "*")));
    let mut res = if fresh {
        Response::builder().status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        Response::builder().header(header::CONTENT_TYPE, file.content_type.clone()).body(Body::from(file.body.clone()))
    }
    .unwrap_or_default();
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::ETAG, file.etag.clone());
    res
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut res = Response::new(Body::from(text));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    res
}

fn secure(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}
