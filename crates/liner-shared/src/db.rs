//! Storage plumbing: one pool type for both backends.
//!
//! Liner keeps one SQL text per query for SQLite and PostgreSQL. Schemas use only the
//! common subset (TEXT ids made by the application, BIGINT unix-millisecond times,
//! BIGINT and DOUBLE PRECISION numbers, `$N` placeholders, `ON CONFLICT`, `RETURNING`,
//! row-value comparisons), so sqlx's `Any` driver runs the same statement on either
//! pool and the repository code has no per-backend branches. What `Any` cannot decode
//! (Postgres `uuid`, `timestamptz`, `numeric`, SQLite booleans) is simply never used.
//! Each service still keeps one migration tree per backend, and its tests run against
//! both backends so the two stay in step.
//!
//! Migrations run on connect by default. A cluster instead runs them once, from
//! `liner migrate <service>` (a Job), and starts the replicas with
//! [`MigrationMode::Verify`], which changes nothing and refuses a database that lags the
//! binary. Concurrent `apply` runs are still safe: sqlx holds a PostgreSQL advisory lock
//! (keyed by the database name) while it migrates.

use std::collections::HashMap;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{AnyPool, Executor};

use crate::config::{Backend, DatabaseUrl, MigrationMode};

/// A connected, migrated database.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

/// The two migration trees of a service; the right one runs on connect.
#[derive(Clone, Copy)]
pub struct Migrations<'a> {
    pub sqlite: &'a Migrator,
    pub postgres: &'a Migrator,
}

static DRIVERS: Once = Once::new();

/// sqlx's bookkeeping table (its default; no Liner migrator renames it).
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// How long a pooled connection may sit unused before it is closed.
const SQLITE_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const POSTGRES_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl Db {
    /// Connects, applies SQLite durability pragmas, and runs (or, with
    /// [`MigrationMode::Verify`], only checks) the matching migrations.
    pub async fn connect(
        url: &DatabaseUrl,
        max_connections: u32,
        migrations: Migrations<'_>,
        mode: MigrationMode,
    ) -> anyhow::Result<Self> {
        DRIVERS.call_once(install_default_drivers);
        let backend = url.backend();
        // Connections opened for a burst close again once idle: a SQLite connection is a
        // thread with its own page and statement caches, so a pool left at its burst size
        // kept megabytes after the burst (docs/BENCHMARKS.md, "Footprint").
        let idle_timeout = match backend {
            Backend::Sqlite => SQLITE_IDLE_TIMEOUT,
            Backend::Postgres => POSTGRES_IDLE_TIMEOUT,
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .idle_timeout(idle_timeout)
            .acquire_timeout(Duration::from_secs(5))
            // No ping before handing out a connection: sqlx's default round-trips to the
            // server on every acquire, which on PostgreSQL doubled the messages per write
            // (docs/BENCHMARKS.md, "review writes"). A connection that died is found by
            // the query itself, answered as 503 (`is_unavailable`) and dropped by the pool.
            .test_before_acquire(false);
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // busy_timeout first: it queues writers instead of failing them, and
                    // the journal_mode switch below needs it too when a connection is
                    // opened while another one holds the write lock (without it, that
                    // open fails at once with "database is locked"). WAL lets readers run
                    // beside the writer; synchronous=FULL makes every acknowledged commit
                    // survive a crash of the process or the machine.
                    conn.execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(url.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to database {url:?}: {e}"))?;
        let migrator = match backend {
            Backend::Sqlite => migrations.sqlite,
            Backend::Postgres => migrations.postgres,
        };
        match mode {
            MigrationMode::Apply => {
                migrator.run(&pool).await.map_err(|e| anyhow::anyhow!("migrations failed on {url:?}: {e}"))?
            }
            MigrationMode::Verify => verify(&pool, migrator).await.map_err(|e| {
                anyhow::anyhow!("database {url:?} is not migrated: {e}; run `liner migrate <service>` first")
            })?,
        }
        Ok(Self { pool, backend })
    }

    /// Readiness: can a trivial query run now?
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// Checks, without changing anything, that every migration of `migrator` is applied
/// and unchanged.
async fn verify(pool: &AnyPool, migrator: &Migrator) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    // Fails only when the bookkeeping table is missing: nothing was ever applied.
    let applied = conn
        .list_applied_migrations(MIGRATIONS_TABLE)
        .await
        .map_err(|e| anyhow::anyhow!("no migrations applied ({e})"))?;
    if let Some(version) = conn.dirty_version(MIGRATIONS_TABLE).await? {
        anyhow::bail!("migration {version} is partially applied");
    }
    let applied: HashMap<i64, &[u8]> = applied.iter().map(|m| (m.version, m.checksum.as_ref())).collect();
    let expected: Vec<_> = migrator.iter().filter(|m| !m.migration_type.is_down_migration()).collect();
    let missing: Vec<_> = expected.iter().filter(|m| applied.get(&m.version) != Some(&m.checksum.as_ref())).collect();
    match missing.first() {
        None => Ok(()),
        Some(first) => anyhow::bail!(
            "{} of {} migrations missing or changed (first: {} {})",
            missing.len(),
            expected.len(),
            first.version,
            first.description
        ),
    }
}

/// True when the database did not answer (pool exhausted or closed, connection lost),
/// or answered that it is going away or not there yet: a 503 the client may retry, not
/// a 500. A restart of PostgreSQL ends every query in flight with `57P01`
/// (admin_shutdown) and refuses connections with `57P03` while it starts; those were
/// 500s until `a_postgres_restart_is_unavailable_never_internal` (below) and
/// `outages.rs` showed it. The SQLSTATEs: class 08 (connection exception), 57P01–57P03
/// (admin, crash shutdown; cannot connect now), 53300 (too many connections).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")),
        _ => false,
    }
}

/// True when the error is a unique-constraint violation (a duplicate), on either backend.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;
    use crate::throwaway::{PostgresOptions, ThrowawayPostgres};

    /// A restart of PostgreSQL, as the services see it: the query in flight when it
    /// stops (fast, as `pg_ctl restart` does), and one sent while it is down, are both
    /// "unavailable" (503), never a bug (500); once it is back the same pool serves.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_postgres_restart_is_unavailable_never_internal() {
        DRIVERS.call_once(install_default_drivers);
        let pg = ThrowawayPostgres::start(PostgresOptions::default()).expect("throwaway PostgreSQL");
        let url = pg.fresh_database().await.expect("database");
        let pool = AnyPoolOptions::new().max_connections(3).acquire_timeout(Duration::from_secs(5)).connect(&url).await;
        let pool = pool.expect("pool");
        let in_flight = tokio::spawn({
            let pool = pool.clone();
            async move { sqlx::query("SELECT pg_sleep(30)").execute(&pool).await }
        });
        let started = std::time::Instant::now();
        loop {
            let running: (i64,) =
                sqlx::query_as("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'")
                    .fetch_one(&pool)
                    .await
                    .expect("pg_stat_activity");
            if running.0 > 0 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "the query never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::task::block_in_place(|| pg.stop()).expect("stops");
        let e = in_flight.await.expect("task").expect_err("the query in flight fails");
        assert!(is_unavailable(&e), "the query in flight at the shutdown: {e:?}");
        let e = sqlx::query("SELECT 1").execute(&pool).await.expect_err("down");
        assert!(is_unavailable(&e), "a query while it is down: {e:?}");
        tokio::task::block_in_place(|| pg.start_again()).expect("starts again");
        sqlx::query("SELECT 1").execute(&pool).await.expect("the same pool serves once it is back");
    }
}
