//! Password hashing with Argon2id at the OWASP parameters (19 MiB, t=2, p=1).
//!
//! Hashing is CPU- and memory-heavy by design, so it runs off the async workers on a
//! small fixed set of dedicated threads, and callers queue for one of them. Fixed
//! threads matter for memory, not only CPU: each hash allocates a 19 MiB block, and
//! glibc keeps freed memory in the allocating thread's arena. Spread over the tokio
//! blocking pool, a burst of logins left the process at ~1.2 GB; on N dedicated
//! threads each one reuses its own block, so the high-water mark is ~N × 19 MiB.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::{Semaphore, oneshot};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct Passwords {
    /// One permit per hashing thread: holding one guarantees a free thread, so
    /// handing the job over never blocks the async caller.
    permits: Arc<Semaphore>,
    jobs: mpsc::SyncSender<Job>,
    /// A hash of a random password, verified against when the user does not exist, so an
    /// unknown username takes as long to refuse as a wrong password.
    decoy: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Passwords {
    /// Starts `threads` hashing threads; they end when the last clone is dropped.
    pub fn new(threads: usize) -> anyhow::Result<Self> {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::sync_channel::<Job>(threads);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                loop {
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                }
            })?;
        }
        let decoy = argon2()
            .hash_password(liner_shared::new_id().as_bytes())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Self { permits: Arc::new(Semaphore::new(threads)), jobs, decoy: decoy.into() })
    }

    /// Runs `work` on a hashing thread.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
        let _permit = self.permits.acquire().await?;
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(work());
            }))
            .map_err(|_| anyhow::anyhow!("password hashing threads are gone"))?;
        Ok(rx.await?)
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.run(move || argon2().hash_password(password.as_bytes()).map(|h| h.to_string()))
            .await?
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    }

    /// True when `password` matches `hash`; with no hash, checks a decoy and says false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.to_string());
        let ok = self.run(move || argon2().verify_password(password.as_bytes(), hash.as_str()).is_ok()).await?;
        Ok(known && ok)
    }
}
