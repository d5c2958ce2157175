//! The one error shape of the public API: `{"error": {"code", "message"}}` with the right status.
//!
//! Services keep their own typed error enums and convert them into [`ApiError`] in one
//! place; everything that can reject a request before a handler runs (JSON syntax,
//! content type, body size, path and query parsing, unknown routes) is mapped here so no
//! axum default text ever reaches a client. 5xx bodies are opaque: the cause is logged,
//! never sent.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An error as the client sees it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra fields placed inside the `error` object (e.g. `existingId` on a 409).
    pub extra: Option<(&'static str, String)>,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(flatten)]
    extra: Option<std::collections::BTreeMap<&'a str, &'a str>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: None, retry_after: None }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// 422: well-formed but invalid; the message names the field.
    pub fn invalid(field: &str, problem: &str) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("{field}: {problem}"))
    }
    pub fn too_many(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    /// 503 for a database that did not answer; the cause is logged, not shown.
    pub fn database_unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "database unavailable");
        Self::unavailable("database unavailable")
    }
    /// An unexpected failure: logs the cause, tells the client nothing about it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
    pub fn with_extra(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.extra = Some((key, value.into()));
        self
    }

    /// The JSON body, for callers that answer outside axum (e.g. a proxy).
    pub fn body_json(&self) -> String {
        let extra = self.extra.as_ref().map(|(k, v)| [(*k, v.as_str())].into_iter().collect());
        let env = Envelope { error: Body { code: self.code, message: &self.message, extra } };
        serde_json::to_string(&env)
            .unwrap_or_else(|_| r#"{"error":{"code":"internal","message":"internal error"}}"#.into())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.body_json()).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => {
                Self::bad_request("malformed_json", format!("malformed JSON: {}", e.body_text_inner()))
            }
            JsonRejection::JsonDataError(e) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", e.body_text_inner())
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
            other => Self::bad_request("bad_request", other.body_text()),
        }
    }
}

/// Strips axum's "Failed to deserialize the JSON body into the target type: " prefix.
trait InnerText {
    fn body_text_inner(&self) -> String;
}
impl<T: std::error::Error> InnerText for T {
    fn body_text_inner(&self) -> String {
        use std::error::Error;
        let mut cur: &dyn Error = self;
        while let Some(src) = cur.source() {
            cur = src;
        }
        cur.to_string()
    }
}

pub fn payload_too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body too large")
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request("bad_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("bad_query", r.body_text_inner())
    }
}

/// `Json` that answers every rejection in the API error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// `Query` that answers every rejection in the API error shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// `Path` that answers every rejection in the API error shape.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Fallback for unknown routes.
pub async fn route_not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Fallback for a known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
}
