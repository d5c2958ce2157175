//! The token signing key. Only the review service holds the private half; everyone else
//! verifies with the public half it publishes as a JWKS.
//!
//! Where the key comes from, first match wins:
//! 1. `LINER_JWT_PRIVATE_KEY` — a PKCS#8 PEM in the environment (a Kubernetes secret);
//! 2. the key file (`--jwt-key-file`, default `<data-dir>/review-jwt-ed25519.pem`);
//! 3. neither exists: on SQLite (one instance, the embedded default) a fresh key is
//!    generated and written to the key file (mode 0600), so `liner up` needs no setup
//!    and keeps its key across restarts. On PostgreSQL (replicas) the service refuses to
//!    start instead: replicas that each generated a key would refuse each other's tokens.
//!
//! Rotation without logging anyone out: start the replicas with the new key as the
//! current one and the old one as the *previous* key (`LINER_JWT_PREVIOUS_KEY` or
//! `--jwt-previous-key-file`, its private or public PEM). The JWKS then publishes both,
//! new tokens are signed with the new key, and tokens signed with the old one verify
//! until they expire; after one token lifetime the previous key can be dropped.

use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use liner_shared::auth::{Claims, ISSUER, Jwk, JwkSet, Verifier};

/// Where the signing keys are, and whether a missing one may be generated.
pub struct KeySources<'a> {
    pub key_file: &'a Path,
    pub previous_key_file: Option<&'a Path>,
    /// True for a single instance (SQLite): a missing key is generated into `key_file`.
    pub may_generate: bool,
    pub ttl_secs: u64,
}

/// Issues tokens and knows its own public key (and the previous one, during a rotation).
pub struct Signer {
    encoding: EncodingKey,
    jwk: Jwk,
    previous: Option<Jwk>,
    ttl_secs: i64,
}

impl Signer {
    /// The current key (and the previous one, if configured); see the module doc.
    pub fn load(sources: &KeySources) -> anyhow::Result<Self> {
        let key_file = sources.key_file;
        let key = match std::env::var("LINER_JWT_PRIVATE_KEY") {
            Ok(pem) if !pem.trim().is_empty() => SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| anyhow::anyhow!("LINER_JWT_PRIVATE_KEY is not an Ed25519 PKCS#8 PEM: {e}"))?,
            _ if key_file.exists() => {
                let pem = std::fs::read_to_string(key_file)
                    .map_err(|e| anyhow::anyhow!("cannot read JWT key {}: {e}", key_file.display()))?;
                SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 PEM: {e}", key_file.display()))?
            }
            _ if sources.may_generate => generate_into(key_file)?,
            _ => anyhow::bail!(
                "no signing key: set LINER_JWT_PRIVATE_KEY or --jwt-key-file (e.g. from `openssl genpkey -algorithm ed25519`); \
                 on PostgreSQL every replica must sign with the same key, so none is generated"
            ),
        };
        let previous = match std::env::var("LINER_JWT_PREVIOUS_KEY") {
            Ok(pem) if !pem.trim().is_empty() => Some(public_key(&pem, "LINER_JWT_PREVIOUS_KEY")?),
            _ => match sources.previous_key_file {
                Some(path) => {
                    let pem = std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("cannot read previous JWT key {}: {e}", path.display()))?;
                    Some(public_key(&pem, &path.display().to_string())?)
                }
                None => None,
            },
        };
        let mut signer = Self::from_key(&key, sources.ttl_secs)?;
        signer.previous = previous.map(|k| Jwk::ed25519(&k.to_bytes())).filter(|p| p.kid != signer.jwk.kid);
        Ok(signer)
    }

    /// A single instance's key: the file's, generated there if missing (tests, tools).
    pub fn load_or_generate(key_file: &Path, ttl_secs: u64) -> anyhow::Result<Self> {
        Self::load(&KeySources { key_file, previous_key_file: None, may_generate: true, ttl_secs })
    }

    fn from_key(key: &SigningKey, ttl_secs: u64) -> anyhow::Result<Self> {
        let der = key.to_pkcs8_der().map_err(|e| anyhow::anyhow!("encoding JWT key: {e}"))?;
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let jwk = Jwk::ed25519(&key.verifying_key().to_bytes());
        Ok(Self { encoding, jwk, previous: None, ttl_secs: ttl_secs as i64 })
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// The current key, then the previous one (during a rotation).
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: std::iter::once(&self.jwk).chain(&self.previous).cloned().collect() }
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

/// The public half of a PEM: a PKCS#8 private key or an SPKI public key.
fn public_key(pem: &str, what: &str) -> anyhow::Result<VerifyingKey> {
    if let Ok(key) = SigningKey::from_pkcs8_pem(pem) {
        return Ok(key.verifying_key());
    }
    VerifyingKey::from_public_key_pem(pem)
        .map_err(|e| anyhow::anyhow!("{what} is neither an Ed25519 PKCS#8 private key nor a public key PEM: {e}"))
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
