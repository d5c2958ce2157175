//! What every Liner service shares, and nothing more: no business rules live here.
//!
//! A service crate builds on these pieces so that the error shape, the token check,
//! the operational endpoints and the shutdown story are the same everywhere — the
//! gateway and a client can then treat every service alike.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod net;
pub mod openapi;
pub mod rate;
pub mod redis;
pub mod server;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(feature = "testkit")]
pub mod throwaway;
pub mod tls;

pub use error::{ApiError, ApiJson};

/// Current time as unix milliseconds, the one time representation stored in every database.
pub fn now_millis() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}

/// Formats unix milliseconds as an RFC 3339 UTC string, the one time format on the wire.
pub fn rfc3339(millis: i64) -> String {
    let nanos = i128::from(millis) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// A new opaque, time-ordered id (UUIDv7 as text).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
