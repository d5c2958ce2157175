//! The token signing key. Only the review service holds the private half; everyone else
//! verifies with the public half it publishes as a JWKS.
//!
//! Where the key comes from, first match wins:
//! 1. `LINER_JWT_PRIVATE_KEY` — a PKCS#8 PEM in the environment (a Kubernetes secret);
//! 2. the key file (`--jwt-key-file`, default `<data-dir>/review-jwt-ed25519.pem`);
//! 3. neither exists: a fresh key is generated and written to the key file (mode 0600),
//!    so the embedded default needs no setup and keeps its key across restarts.

use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use liner_shared::auth::{Claims, ISSUER, Jwk, JwkSet, Verifier};

/// Issues tokens and knows its own public key.
pub struct Signer {
    encoding: EncodingKey,
    jwk: Jwk,
    ttl_secs: i64,
}

impl Signer {
    pub fn load_or_generate(key_file: &Path, ttl_secs: u64) -> anyhow::Result<Self> {
        let key = match std::env::var("LINER_JWT_PRIVATE_KEY") {
            Ok(pem) if !pem.trim().is_empty() => SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| anyhow::anyhow!("LINER_JWT_PRIVATE_KEY is not an Ed25519 PKCS#8 PEM: {e}"))?,
            _ if key_file.exists() => {
                let pem = std::fs::read_to_string(key_file)
                    .map_err(|e| anyhow::anyhow!("cannot read JWT key {}: {e}", key_file.display()))?;
                SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 PEM: {e}", key_file.display()))?
            }
            _ => generate_into(key_file)?,
        };
        Self::from_key(&key, ttl_secs)
    }

    fn from_key(key: &SigningKey, ttl_secs: u64) -> anyhow::Result<Self> {
        let der = key.to_pkcs8_der().map_err(|e| anyhow::anyhow!("encoding JWT key: {e}"))?;
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let jwk = Jwk::ed25519(&key.verifying_key().to_bytes());
        Ok(Self { encoding, jwk, ttl_secs: ttl_secs as i64 })
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: vec![self.jwk.clone()] }
    }

    /// A verifier for this signer's own tokens.
    pub fn verifier(&self) -> anyhow::Result<Arc<Verifier>> {
        Ok(Arc::new(Verifier::from_jwks(&self.jwks())?))
    }

    pub fn issue(&self, user_id: &str, username: &str) -> anyhow::Result<String> {
        let now = liner_shared::now_millis() / 1000;
        let claims = Claims {
            sub: user_id.to_owned(),
            name: username.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + self.ttl_secs,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.jwk.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }
}

fn generate_into(path: &Path) -> anyhow::Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for a JWT key: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key.to_pkcs8_pem(Default::default()).map_err(|e| anyhow::anyhow!("encoding JWT key: {e}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private(path, pem.as_bytes()).map_err(|e| anyhow::anyhow!("cannot write JWT key {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a new JWT signing key");
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
