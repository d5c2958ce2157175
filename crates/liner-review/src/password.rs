//! Password hashing with Argon2id at the OWASP parameters (19 MiB, t=2, p=1).
//!
//! Hashing is CPU- and memory-heavy by design, so it runs on the blocking pool, and a
//! semaphore caps how many run at once: a burst of logins queues instead of taking all
//! the memory and starving the async workers.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the user does not exist, so an
    /// unknown username takes as long to refuse as a wrong password.
    decoy: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Passwords {
    pub fn new(max_parallel: usize) -> anyhow::Result<Self> {
        let decoy = argon2()
            .hash_password(liner_shared::new_id().as_bytes())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Self { permits: Arc::new(Semaphore::new(max_parallel.max(1))), decoy: decoy.into() })
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        tokio::task::spawn_blocking(move || {
            argon2()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2: {e}"))
        })
        .await?
    }

    /// True when `password` matches `hash`; with no hash, checks a decoy and says false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.to_string());
        let ok =
            tokio::task::spawn_blocking(move || argon2().verify_password(password.as_bytes(), hash.as_str()).is_ok())
                .await?;
        Ok(known && ok)
    }
}
