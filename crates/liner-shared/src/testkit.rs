//! Test support: each test owns its data.
//!
//! `scripts/test` exports `LINER_TEST_PG_URL` (a PostgreSQL server a test may create
//! databases on) and `LINER_TEST_REDIS_URL`; it starts throwaway servers when none are
//! configured. Run outside that script, the defaults are the local standard ports.

use sqlx::Connection;

/// The admin URL of the test PostgreSQL server.
pub fn pg_admin_url() -> String {
    std::env::var("LINER_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The test Redis server.
pub fn redis_url() -> String {
    std::env::var("LINER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Creates a new, empty database named `liner_test_<random>` and returns its URL.
/// Databases are swept by `scripts/test` before each run rather than dropped here:
/// a test that crashes still leaves nothing behind for the next run.
pub async fn fresh_pg_database() -> String {
    let admin = pg_admin_url();
    let name = format!("liner_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("test PostgreSQL at {admin} is not reachable ({e}); run the tests with scripts/test")
    });
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
    let _ = conn.close().await;
    match admin.rsplit_once('/') {
        Some((base, _)) if !base.ends_with('/') => format!("{base}/{name}"),
        _ => format!("{admin}/{name}"),
    }
}

pub use crate::config::Backend;

/// A fresh database for a service on `backend`: a new PostgreSQL database, or `None`
/// for the service's default SQLite file in its own (temporary) data dir.
pub async fn fresh_database(backend: Backend) -> Option<crate::config::DatabaseUrl> {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_pg_database().await.parse().expect("test PostgreSQL URL")),
    }
}

/// Generates one `#[tokio::test]` per backend for each named `async fn name(Backend)`:
/// `mod sqlite { … }` and `mod postgres { … }`, so a filter like `postgres::` picks one.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testkit::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testkit::Backend::Postgres).await
                }
            )*
        }
    };
}
