//! Password hashing with Argon2id at the OWASP parameters (19 MiB, t=2, p=1).
//!
//! Hashing is CPU- and memory-heavy by design, so it runs off the async workers on a
//! fixed set of dedicated threads (`--hash-threads`, default one per core); callers
//! queue for a free one.
//!
//! Why the memory is owned here and not by the `argon2` crate: its `hash_password`
//! allocates and frees a 19 MiB block on every call, and the allocator decides whether
//! that memory ever goes back to the system (glibc kept one block per thread that ever
//! hashed: a login burst left `liner up` at 1.2 GB on the blocking pool, ~390 MB on
//! dedicated threads). Here each hashing thread owns one block, hands it to
//! `hash_password_into_with_memory` for every hash it runs, and drops it after
//! [`RELEASE_AFTER`] without work. So memory for hashing is at most threads × 19 MiB
//! while logins arrive, and nothing once they stop — whatever the allocator. Free
//! threads are taken most-recently-used first, so light traffic keeps one block warm.
//!
//! Stored hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`); a hash
//! stored with other parameters still verifies (with a temporary block if it needs more
//! memory, up to [`MAX_VERIFY_KIB`]).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Memory per hash, KiB (OWASP: 19 MiB).
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;
/// A hashing thread idle this long gives its block back.
pub const RELEASE_AFTER: Duration = Duration::from_secs(5);
/// The most memory a stored hash may ask for when it is verified.
const MAX_VERIFY_KIB: u32 = 256 * 1024;

/// A hashing thread's working memory: empty until the first hash, empty again after
/// [`RELEASE_AFTER`] without work.
#[derive(Default)]
struct Memory(Vec<Block>);

impl Memory {
    /// At least `blocks` blocks (the usual case: exactly the default parameters').
    fn blocks(&mut self, blocks: usize) -> &mut [Block] {
        if self.0.len() < blocks {
            self.0 = vec![Block::default(); blocks];
        }
        &mut self.0[..blocks]
    }
    fn release(&mut self) {
        self.0 = Vec::new();
    }
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

#[derive(Clone)]
pub struct Passwords {
    /// One permit per free thread; a job holds its permit until it is done, so a
    /// caller that gives up waiting never lets two jobs onto one thread.
    permits: Arc<Semaphore>,
    /// Free threads, most recently used last.
    free: Arc<Mutex<Vec<usize>>>,
    threads: Arc<[mpsc::Sender<Job>]>,
    /// A hash of a random password, verified against when the user does not exist, so an
    /// unknown username takes as long to refuse as a wrong password.
    decoy: Arc<str>,
}

fn default_params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, 1, Some(OUTPUT_BYTES)).unwrap_or_default()
}

/// Hashes `password` with a fresh salt into a PHC string, in `memory`.
fn hash_with(memory: &mut Memory, password: &[u8]) -> anyhow::Result<String> {
    let params = default_params();
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness for a salt: {e}"))?;
    let mut out = [0u8; OUTPUT_BYTES];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut out, memory.blocks(params.block_count()))
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// True when `password` matches the PHC string `stored` (false for any malformed one).
fn verify_with(memory: &mut Memory, password: &[u8], stored: &str) -> bool {
    let Ok(phc) = PasswordHash::new(stored) else { return false };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(phc.algorithm.as_str()), Params::try_from(&phc)) else {
        return false;
    };
    let version = phc.version.map_or(Ok(Version::V0x13), Version::try_from);
    let Ok(version) = version else { return false };
    if params.m_cost() > MAX_VERIFY_KIB || params.p_cost() != 1 {
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password,
        salt.as_ref(),
        &mut out,
        memory.blocks(params.block_count()),
    );
    // `Output`'s equality is constant-time.
    hashed.is_ok() && Output::new(&out).is_ok_and(|computed| &computed == expected)
}

/// A hashing thread: runs jobs in its own memory; gives the memory back when idle.
fn hashing_thread(jobs: mpsc::Receiver<Job>) {
    let mut memory = Memory::default();
    loop {
        match jobs.recv_timeout(RELEASE_AFTER) {
            Ok(job) => job(&mut memory),
            Err(RecvTimeoutError::Timeout) => memory.release(),
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl Passwords {
    /// Starts `threads` hashing threads; they end when the last clone is dropped.
    pub fn new(threads: usize) -> anyhow::Result<Self> {
        let threads = threads.max(1);
        let mut senders = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || hashing_thread(rx))?;
            senders.push(tx);
        }
        let decoy = hash_with(&mut Memory::default(), liner_shared::new_id().as_bytes())?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(threads)),
            free: Arc::new(Mutex::new((0..threads).collect())),
            threads: senders.into(),
            decoy: decoy.into(),
        })
    }

    /// Runs `work` on a free hashing thread, in that thread's memory.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut Memory) -> T + Send + 'static) -> anyhow::Result<T> {
        let permit: OwnedSemaphorePermit = self.permits.clone().acquire_owned().await?;
        let thread = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let thread = thread.ok_or_else(|| anyhow::anyhow!("a permit without a free hashing thread"))?;
        let free = self.free.clone();
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let result = work(memory);
            free.lock().unwrap_or_else(|p| p.into_inner()).push(thread);
            drop(permit);
            let _ = tx.send(result);
        });
        self.threads[thread].send(job).map_err(|_| anyhow::anyhow!("password hashing threads are gone"))?;
        Ok(rx.await?)
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.run(move |memory| hash_with(memory, password.as_bytes())).await?
    }

    /// True when `password` matches `hash`; with no hash, checks a decoy and says false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.to_string());
        let ok = self.run(move |memory| verify_with(memory, password.as_bytes(), &hash)).await?;
        Ok(known && ok)
    }
}

#[cfg(test)]
mod tests {
    use argon2::PasswordHasher;

    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_and_a_wrong_password_does_not() {
        let passwords = Passwords::new(2).unwrap();
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(passwords.verify("correct horse".into(), Some(hash.clone())).await.unwrap());
        assert!(!passwords.verify("correct horsf".into(), Some(hash)).await.unwrap());
        assert!(!passwords.verify("correct horse".into(), None).await.unwrap(), "the decoy never matches");
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_still_verify() {
        // Users registered before this module owned its memory have hashes from
        // `Argon2::hash_password`; they must keep logging in.
        let params = Params::new(MEMORY_KIB, ITERATIONS, 1, None).unwrap();
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"old password")
            .unwrap()
            .to_string();
        let passwords = Passwords::new(1).unwrap();
        assert!(passwords.verify("old password".into(), Some(old.clone())).await.unwrap());
        assert!(!passwords.verify("new password".into(), Some(old)).await.unwrap());
    }

    #[tokio::test]
    async fn malformed_or_greedy_stored_hashes_are_refused_not_panicked_on() {
        let passwords = Passwords::new(1).unwrap();
        for stored in [
            "",
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$bcrypt$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(!passwords.verify("x".into(), Some(stored.into())).await.unwrap(), "{stored}");
        }
    }

    #[tokio::test]
    async fn callers_that_give_up_do_not_overbook_a_thread() {
        // Cancel half the callers mid-wait; every later call must still find a thread.
        let passwords = Passwords::new(2).unwrap();
        let mut calls = Vec::new();
        for i in 0..8 {
            let p = passwords.clone();
            calls.push(tokio::spawn(async move { p.hash(format!("password {i}")).await }));
        }
        for call in calls.iter().step_by(2) {
            call.abort();
        }
        for call in calls.into_iter().skip(1).step_by(2) {
            assert!(call.await.unwrap().is_ok());
        }
        assert!(passwords.hash("after the storm".into()).await.is_ok());
        let _all = passwords.permits.acquire_many(2).await.unwrap();
        assert_eq!(passwords.free.lock().unwrap().len(), 2, "every thread is free again");
    }
}
