//! Read-mostly answers cached as serialized JSON: the first page of an album's reviews
//! (per sort and page size) with its aggregates, and a user's public profile (review
//! count and average). A release-day album page is read thousands of times per write.
//!
//! **Correctness first: versions, not deletes.** Every *subject* (an album, a user) has
//! a version; a cached answer is stored under `(subject, version, variant)`. A review
//! write (create, update, delete) commits, then bumps the versions of its album and its
//! author, then answers — so the writer's next read, and every later read on any
//! replica, asks for a version nothing was cached under and loads from the database. A reader that loaded before the write
//! and stores its page late stores it under the old version, where no one looks again
//! (a delete-based scheme would let that late store resurrect the old page).
//!
//! - With Redis (`REDIS_URL`, shared by the replicas) the versions live in Redis and each
//!   read asks for the subject's version (one round trip); the page itself is taken from
//!   this process's cache, else from Redis (`SET … EX`), else loaded. A version starts at
//!   a random value when Redis has none, so a Redis that restarted empty never hands out
//!   a version an old page was cached under.
//! - Likes bump the album (its page shows each review's count), follows both users
//!   (profiles show the counts). Whether *the caller* likes a review is never in a cached
//!   answer: the bytes are shared by every reader, so clients ask `GET /reviews/liked`.
//! - Without Redis (one instance) the versions are in this process: each write takes
//!   the next number of one counter, so a subject's version only grows.
//! - A cold page is loaded once however many readers arrive together (moka's
//!   `try_get_with` coalesces them per key; one load per replica).
//! - Redis unreachable: reads skip the cache and go to the database (never an error;
//!   calls go through `liner_shared::redis::Bounded`, so none waits more than a moment);
//!   a write whose version bump fails is logged — answers about it cached in Redis
//!   may then be served until they expire ([`PAGE_TTL`]), which only happens when this
//!   replica cannot reach a Redis the others can.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use liner_shared::ApiError;
use liner_shared::redis::Bounded;

use crate::reviews::model::Sort;

/// How long a cached page lives at most (in this process and in Redis).
pub const PAGE_TTL: Duration = Duration::from_secs(60);
/// Bytes of pages kept in this process.
const LOCAL_BYTES: u64 = 32 * 1024 * 1024;
/// Albums whose versions this process keeps without Redis before starting over.
const LOCAL_VERSIONS: usize = 100_000;
/// How long a subject's version is kept in Redis after it was first needed.
const VERSION_TTL_SECS: u64 = 7 * 24 * 3600;

/// What a cached answer is about; its version moves with every review write touching it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Album(String),
    User(String),
}

impl Subject {
    fn name(&self) -> String {
        match self {
            Subject::Album(id) => format!("album:{id}"),
            Subject::User(id) => format!("user:{id}"),
        }
    }
}

/// Which answer about the subject: the album page's sort and size, or the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    AlbumPage { sort: Sort, limit: i64 },
    Profile,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PageKey {
    subject: String,
    version: u64,
    variant: Variant,
}

impl PageKey {
    fn redis_key(&self) -> String {
        format!("liner:review:page:{}:{}:{:?}", self.subject, self.version, self.variant)
    }
}

pub struct Pages {
    local: moka::future::Cache<PageKey, Bytes>,
    redis: Option<Arc<Bounded>>,
    versions: LocalVersions,
    starts: VersionStarts,
}

/// Versions without Redis: a counter hands out ever larger numbers; subjects never
/// written to are at `floor`, which moves past every number handed out when the map
/// is cleared, so no old page is reachable after a clear.
#[derive(Default)]
struct LocalVersions {
    next: AtomicU64,
    map: Mutex<(HashMap<String, u64>, u64)>,
}

impl LocalVersions {
    fn get(&self, subject: &str) -> u64 {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.0.get(subject).copied().unwrap_or(map.1)
    }

    fn bump(&self, subject: &str) {
        let version = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.0.len() >= LOCAL_VERSIONS {
            map.0.clear();
            map.1 = version;
        }
        map.0.insert(subject.to_owned(), version);
    }
}

/// The version of `KEYS[1]`, set to `ARGV[1]` (random) first if Redis has none.
const GET_VERSION: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
  v = redis.call('GET', KEYS[1])
end
return v";

/// Bumps the version of `KEYS[1]` (starting from `ARGV[1]` if Redis has none).
const BUMP_VERSION: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
return redis.call('INCR', KEYS[1])";

fn version_key(subject: &str) -> String {
    format!("liner:review:version:{subject}")
}

/// Where a version Redis has none of starts: never a number handed out before, in this
/// process or another, so a Redis that restarted empty cannot bring back an old page.
/// A random base drawn once per process (not a random draw per read: that is a syscall
/// on every read), stepping 2^22 per call, so two starts of one process are 4 million
/// writes apart; below 2^62, so INCR never overflows.
struct VersionStarts {
    base: u64,
    calls: AtomicU64,
}

impl VersionStarts {
    fn new() -> Self {
        Self { base: uuid::Uuid::new_v4().as_u128() as u64, calls: AtomicU64::new(0) }
    }

    fn next(&self) -> u64 {
        self.base.wrapping_add(self.calls.fetch_add(1, Ordering::Relaxed) << 24) >> 2
    }
}

impl Pages {
    pub fn new(redis: Option<Arc<Bounded>>) -> Self {
        let local = moka::future::Cache::builder()
            .weigher(|k: &PageKey, v: &Bytes| (k.subject.len() + v.len()).try_into().unwrap_or(u32::MAX))
            .max_capacity(LOCAL_BYTES)
            .time_to_live(PAGE_TTL)
            .build();
        Self { local, redis, versions: LocalVersions::default(), starts: VersionStarts::new() }
    }

    /// The page from the cache, or from `load` (once per key however many ask at once).
    /// `None` from the version lookup (Redis away) means: load, do not cache.
    pub async fn get_or_load<F>(&self, subject: &Subject, variant: Variant, load: F) -> Result<Bytes, ApiError>
    where
        F: Future<Output = Result<Bytes, ApiError>>,
    {
        let subject = subject.name();
        let Some(version) = self.version(&subject).await else {
            return load.await;
        };
        let key = PageKey { subject, version, variant };
        let redis_key = key.redis_key();
        self.local
            .try_get_with(key, async {
                if let Some(page) = self.redis_get(&redis_key).await {
                    return Ok(page);
                }
                let page = load.await?;
                self.redis_set(&redis_key, &page).await;
                Ok(page)
            })
            .await
            // Every reader that waited on this load gets the same error.
            .map_err(|e: std::sync::Arc<ApiError>| (*e).clone())
    }

    /// After a committed review write: later reads of its album and its author, on any
    /// replica, load afresh.
    pub async fn review_written(&self, album_id: &str, user_id: &str) {
        self.invalidate(&Subject::Album(album_id.to_owned())).await;
        self.invalidate(&Subject::User(user_id.to_owned())).await;
    }

    /// After a like or unlike: the album page shows the review's count.
    pub async fn review_liked(&self, album_id: &str) {
        self.invalidate(&Subject::Album(album_id.to_owned())).await;
    }

    /// After a follow or unfollow: both profiles show follower and following counts.
    pub async fn follow_changed(&self, follower: &str, followee: &str) {
        self.invalidate(&Subject::User(follower.to_owned())).await;
        self.invalidate(&Subject::User(followee.to_owned())).await;
    }

    async fn invalidate(&self, subject: &Subject) {
        let subject = subject.name();
        self.versions.bump(&subject);
        let Some(redis) = &self.redis else { return };
        // Tried even while Redis is being skipped: other replicas may still read pages
        // cached under the old version.
        let mut conn = redis.conn_anyway();
        let script = redis::Script::new(BUMP_VERSION);
        let mut bump = script.key(version_key(&subject));
        bump.arg(self.starts.next()).arg(VERSION_TTL_SECS);
        // A failure is logged there; cached answers then expire within PAGE_TTL.
        redis.call("page cache version bump", bump.invoke_async::<u64>(&mut conn)).await;
    }

    /// The subject's version; `None` when Redis is configured but away (read the
    /// database, cache nothing).
    async fn version(&self, subject: &str) -> Option<u64> {
        let Some(redis) = &self.redis else { return Some(self.versions.get(subject)) };
        let mut conn = redis.conn()?;
        let script = redis::Script::new(GET_VERSION);
        let mut get = script.key(version_key(subject));
        get.arg(self.starts.next()).arg(VERSION_TTL_SECS);
        redis.call("page cache version", get.invoke_async(&mut conn)).await
    }

    async fn redis_get(&self, key: &str) -> Option<Bytes> {
        let redis = self.redis.as_ref()?;
        let mut conn = redis.conn()?;
        let got: Option<Option<Vec<u8>>> =
            redis.call("page cache read", redis::cmd("GET").arg(key).query_async(&mut conn)).await;
        got.flatten().map(Bytes::from)
    }

    async fn redis_set(&self, key: &str, page: &Bytes) {
        let Some(redis) = &self.redis else { return };
        let Some(mut conn) = redis.conn() else { return };
        let mut set = redis::cmd("SET");
        set.arg(key).arg(page.as_ref()).arg("EX").arg(PAGE_TTL.as_secs());
        redis.call("page cache store", set.query_async::<()>(&mut conn)).await;
    }
}
