//! TLS between Liner's own processes (rustls with ring, no OpenSSL): a service's
//! listener, and the clients that call another service (the gateway's proxy, health
//! checks and WebSocket tunnels, JWKS fetches, the forum's username lookups, the
//! registry's gRPC client).
//!
//! Opt-in per process, and plain HTTP is untouched when it is off (the default, and
//! what `liner up` runs on loopback): the same connector, the same code path as before.
//!
//! - `--tls-cert-file` + `--tls-key-file`: the process's listener speaks TLS only (a
//!   plain request gets no answer), and the instance registers as `https://HOST:PORT`.
//! - `--tls-ca-file`: `https://` peers are verified against this CA, and only it — not
//!   the system's roots, so a publicly trusted certificate for the same name cannot
//!   stand in for a peer. Without it an `https://` peer is not reached at all (never
//!   plaintext, never an unverified handshake).
//!
//! Server-authenticated TLS: a caller checks whom it talks to; the callee does not ask
//! the caller for a certificate (the registry's shared secret and the users' tokens
//! authenticate callers). Files are read once, at startup: a missing, empty or garbled
//! file is a startup error in one line, not a handshake failure later.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The TLS flags every service takes alike (flattened into each one's settings).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// PEM certificate (chain) of this process's listener, with `--tls-key-file`: the
    /// listener then speaks TLS only and registers as `https://` (the gateway: its admin
    /// listener; its public one stays behind the load balancer's TLS).
    #[arg(long = "tls-cert-file", env = "LINER_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert-file`.
    #[arg(long = "tls-key-file", env = "LINER_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA that signed the other services' certificates: `https://` peers (registry,
    /// instances, `--review-url`) are verified against it only; without it none is reached.
    #[arg(long = "tls-ca-file", env = "LINER_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
}

impl TlsArgs {
    /// The listener's TLS configuration, when a certificate is given.
    pub fn server(&self) -> anyhow::Result<Option<Arc<ServerConfig>>> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => server_config(cert, key).map(Some),
            (None, None) => Ok(None),
            _ => anyhow::bail!("--tls-cert-file and --tls-key-file go together"),
        }
    }

    /// How this process verifies `https://` peers.
    pub fn client(&self) -> anyhow::Result<ClientTls> {
        self.tls_ca_file.as_deref().map_or(Ok(ClientTls::default()), ClientTls::from_ca_file)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file; none is an error.
fn certificates(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let unreadable =
        |e: rustls::pki_types::pem::Error| anyhow::anyhow!("cannot read the {what} {}: {e}", path.display());
    let certs = CertificateDer::pem_file_iter(path).map_err(unreadable)?.collect::<Result<Vec<_>, _>>();
    let certs = certs.map_err(unreadable)?;
    anyhow::ensure!(!certs.is_empty(), "the {what} {} holds no PEM certificate", path.display());
    Ok(certs)
}

/// A listener's configuration: TLS 1.2/1.3, no client certificate, ALPN `h2` and
/// `http/1.1` (gRPC and HTTP on one port, as in plain text).
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let chain = certificates(cert, "TLS certificate file")?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("cannot read a private key from the TLS key file {}: {e}", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("the TLS key does not fit the certificate {}: {e}", cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How `https://` peers are verified: against the configured CA only, or (no CA
/// configured) not reached at all. Cheap to clone.
#[derive(Clone, Default, Debug)]
pub struct ClientTls(Option<Arc<ClientConfig>>);

/// The HTTP connector of an internal client that also speaks TLS.
pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

impl ClientTls {
    /// Trusts the CA certificates of `path` (PEM) and nothing else.
    pub fn from_ca_file(path: &Path) -> anyhow::Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in certificates(path, "TLS CA file")? {
            roots.add(cert).map_err(|e| anyhow::anyhow!("the TLS CA file {}: {e}", path.display()))?;
        }
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self(Some(Arc::new(config))))
    }

    pub fn is_configured(&self) -> bool {
        self.0.is_some()
    }

    /// `http` wrapped to reach `https://` URLs too (and `http://` ones unchanged when
    /// `or_http`), offering HTTP/2 or HTTP/1.1 by ALPN; `None` without a CA.
    pub fn connector(&self, mut http: HttpConnector, h2: bool, or_http: bool) -> Option<HttpsConnector> {
        let config = self.0.as_deref()?.clone();
        http.enforce_http(false);
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config);
        let builder = if or_http { builder.https_or_http() } else { builder.https_only() };
        Some(if h2 { builder.enable_http2().wrap_connector(http) } else { builder.enable_http1().wrap_connector(http) })
    }
}

/// The HTTP client one service calls another with (HTTP/1.1, pooled, short connect
/// timeout): plain hyper when no CA is configured — exactly the client of before —
/// else the same behind rustls for `https://` URLs.
#[derive(Clone, Debug)]
pub enum PeerClient {
    Plain(Client<HttpConnector, Body>),
    Tls(Client<HttpsConnector, Body>),
}

/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl Default for PeerClient {
    fn default() -> Self {
        Self::new(&ClientTls::default())
    }
}

impl PeerClient {
    pub fn new(tls: &ClientTls) -> Self {
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(Duration::from_secs(30));
        match PeerConnector::new(tls) {
            PeerConnector::Tls(https) => Self::Tls(builder.build(https)),
            PeerConnector::Plain(http) => Self::Plain(builder.build(http)),
        }
    }

    /// Sends `req` (its URI absolute); upgrades (WebSocket) work either way.
    pub fn request(&self, req: Request<Body>) -> ResponseFuture {
        match self {
            Self::Plain(client) => client.request(req),
            Self::Tls(client) => client.request(req),
        }
    }

    /// `GET url`: the status and at most `max_bytes` of body, all within `timeout`.
    pub async fn get(&self, url: &str, timeout: Duration, max_bytes: usize) -> anyhow::Result<(StatusCode, Bytes)> {
        let req = Request::get(url).body(Body::empty())?;
        let exchange = async {
            let res = self.request(req).await?;
            let status = res.status();
            let body = Limited::new(res.into_body(), max_bytes).collect().await;
            let body = body.map_err(|e| anyhow::anyhow!("reading the body: {e}"))?.to_bytes();
            Ok::<_, anyhow::Error>((status, body))
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| anyhow::anyhow!("no answer within {timeout:?}"))?
    }
}

/// An error opening a connection (the connectors' own error type).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connection opened by [`PeerConnector`]: TLS for `https://` peers, plain TCP else.
pub type PeerStream = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;

/// What [`PeerClient`] connects with (no Nagle delay, a short connect timeout, TLS for
/// `https://` peers when a CA is configured), for a caller that keeps its connections
/// itself: the gateway's request path (`liner-gateway`'s `connections`).
#[derive(Clone, Debug)]
pub enum PeerConnector {
    Plain(HttpConnector),
    Tls(HttpsConnector),
}

impl PeerConnector {
    pub fn new(tls: &ClientTls) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        match tls.connector(http.clone(), false, true) {
            Some(https) => Self::Tls(https),
            None => Self::Plain(http),
        }
    }

    /// Opens a connection to `origin` (`scheme://authority`).
    pub async fn connect(&self, origin: http::Uri) -> Result<PeerStream, BoxError> {
        use tower::Service;
        match self.clone() {
            Self::Plain(mut http) => Ok(hyper_rustls::MaybeHttpsStream::Http(http.call(origin).await?)),
            Self::Tls(mut https) => https.call(origin).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("liner-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn missing_or_empty_files_are_refused_in_one_line() {
        let err = ClientTls::from_ca_file("/nonexistent/ca.pem".as_ref()).unwrap_err().to_string();
        assert!(err.starts_with("cannot read the TLS CA file /nonexistent/ca.pem"), "{err}");
        let dir = dir();
        let empty = dir.join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = ClientTls::from_ca_file(&empty).unwrap_err().to_string();
        let key_err = server_config(&empty, &empty).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("holds no PEM certificate") && !err.contains('\n'), "{err}");
        assert!(key_err.contains("TLS certificate file") && !key_err.contains('\n'), "{key_err}");
    }

    #[test]
    fn a_certificate_needs_its_key() {
        let only_cert = TlsArgs { tls_cert_file: Some("c.pem".into()), ..Default::default() };
        assert!(only_cert.server().unwrap_err().to_string().contains("go together"));
        assert!(TlsArgs::default().server().unwrap().is_none(), "no TLS unless asked for");
        assert!(!TlsArgs::default().client().unwrap().is_configured());
    }

    #[test]
    fn without_a_ca_the_peer_client_is_the_plain_one() {
        assert!(matches!(PeerClient::default(), PeerClient::Plain(_)));
        assert!(ClientTls::default().connector(HttpConnector::new(), false, true).is_none());
    }
}
