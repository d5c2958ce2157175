//! What the other processes use to talk to the registry.
//!
//! - [`Registrar`] / [`register_forever`]: every service runs one. It registers,
//!   heartbeats at a third of the granted TTL, and deregisters when its token is
//!   cancelled. Every heartbeat carries the registration, so a restarted (empty)
//!   registry learns the instance back from the next heartbeat. While the registry is
//!   unreachable it retries with capped exponential back-off and the service keeps
//!   serving: discovery is never on a request's path.
//! - [`watch_service`]: the gateway's view of one service. It keeps a Watch stream
//!   open, reconnects with back-off, and keeps the last known set while the registry
//!   is down. While a freshly restarted registry says its set is not `complete`, it
//!   only adds instances and never drops the ones it knew.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use liner_shared::server::Bound;
use liner_shared::tls::ClientTls;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::proto::discovery_client::DiscoveryClient;
use crate::proto::{DeregisterRequest, HeartbeatRequest, Instance, RegisterRequest, WatchRequest};

/// Longest wait between two attempts while the registry is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// One instance, as it registers itself.
#[derive(Debug, Clone)]
pub struct Registration {
    pub service: String,
    pub instance_id: String,
    /// `HOST:PORT` the gateway can reach (plain HTTP), or `https://HOST:PORT` for a
    /// listener that speaks TLS.
    pub address: String,
    pub metadata: HashMap<String, String>,
    /// Requested lease TTL.
    pub ttl: Duration,
}

impl Registration {
    /// A registration with the instance id `SERVICE@HOST:PORT` (a restarted replica on
    /// the same address replaces its old entry, TLS or not), the crate version as
    /// metadata and a 10 s lease.
    pub fn new(service: impl Into<String>, address: impl Display) -> Self {
        let service = service.into();
        let address = address.to_string();
        let mut metadata = HashMap::new();
        metadata.insert("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned());
        let host_port = address.strip_prefix("https://").unwrap_or(&address);
        let instance_id = format!("{service}@{host_port}");
        Self { instance_id, service, address, metadata, ttl: Duration::from_secs(10) }
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn request(&self) -> RegisterRequest {
        RegisterRequest {
            instance: Some(Instance {
                service: self.service.clone(),
                instance_id: self.instance_id.clone(),
                address: self.address.clone(),
                metadata: self.metadata.clone(),
            }),
            ttl_seconds: u32::try_from(self.ttl.as_secs().max(1)).unwrap_or(u32::MAX),
        }
    }
}

/// The address to advertise for a listener bound at `bound`: `host` when given, else
/// the bound IP, with an unspecified IP (`0.0.0.0`, `::`) replaced by loopback.
pub fn advertise_address(bound: std::net::SocketAddr, host: Option<&str>) -> String {
    match host {
        Some(host) if !host.is_empty() => format!("{host}:{}", bound.port()),
        _ if bound.ip().is_unspecified() => format!("127.0.0.1:{}", bound.port()),
        _ => bound.to_string(),
    }
}

/// What a listener registers as: its advertised `HOST:PORT`, as `https://HOST:PORT`
/// when it speaks TLS (plain listeners register as they always did).
pub fn registered_address(bound: &Bound, host: Option<&str>) -> String {
    let address = advertise_address(bound.addr(), host);
    if bound.scheme() == "https" { format!("https://{address}") } else { address }
}

/// A channel to the registry that connects on first use and reconnects by itself; to
/// an `https://` registry over TLS, verified with `tls`.
fn channel(url: &str, call_timeout: Option<Duration>, tls: &ClientTls) -> anyhow::Result<Channel> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| anyhow::anyhow!("bad discovery URL {url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    if let Some(t) = call_timeout {
        endpoint = endpoint.timeout(t);
    }
    if url.starts_with("http://") {
        return Ok(endpoint.connect_lazy());
    }
    anyhow::ensure!(url.starts_with("https://"), "discovery URL must be http(s)://HOST:PORT, got {url:?}");
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let connector = tls.connector(http, true, false).ok_or_else(|| {
        anyhow::anyhow!("the discovery URL {url} is https:// but no --tls-ca-file (LINER_TLS_CA_FILE) names its CA")
    })?;
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// The registry's shared secret as every call carries it (`authorization: Bearer …`);
/// `Credential::none()` for a registry that asks for none.
#[derive(Clone, Default)]
pub struct Credential(Option<AsciiMetadataValue>);

impl Credential {
    pub fn none() -> Self {
        Self(None)
    }

    /// From the resolved token (`DiscoveryToken::resolve`).
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        token
            .map(|t| format!("Bearer {t}").parse::<AsciiMetadataValue>())
            .transpose()
            .map(Self)
            .map_err(|_| anyhow::anyhow!("the discovery token must be printable ASCII"))
    }
}

impl tonic::service::Interceptor for Credential {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            req.metadata_mut().insert("authorization", value.clone());
        }
        Ok(req)
    }
}

type Client = DiscoveryClient<InterceptedService<Channel, Credential>>;

fn backoff(failures: u32, cap: Duration) -> Duration {
    let exp = FIRST_BACKOFF.saturating_mul(1u32 << failures.min(10));
    exp.min(cap).max(FIRST_BACKOFF)
}

/// What a service needs to register itself: `None` when it was given no registry.
/// The advertised address is the bound one, with `advertise_host` in place of its IP
/// (see [`registered_address`]); `tls` verifies an `https://` registry.
pub fn registrar_for(
    args: &liner_shared::config::ServiceArgs,
    tls: &ClientTls,
    service: &str,
    bound: &Bound,
) -> anyhow::Result<Option<Registrar>> {
    let address = registered_address(bound, args.advertise_host.as_deref());
    let Some(url) = args.discovery.as_deref() else { return Ok(None) };
    let credential = Credential::new(args.discovery_token.resolve()?.as_deref())?;
    Ok(Some(Registrar::new(url, Registration::new(service, address), tls)?.with_credential(credential)))
}

/// Runs `serve` while registered (when there is a registrar) and, once `token` is
/// cancelled and serving ends, waits for the deregistration before returning.
pub async fn serve_registered(
    registrar: Option<Registrar>,
    token: CancellationToken,
    serve: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let registration = registrar.map(|r| tokio::spawn(r.run(token)));
    let served = serve.await;
    if let Some(task) = registration {
        let _ = task.await;
    }
    served
}

/// Keeps one instance registered until cancelled.
pub struct Registrar {
    channel: Channel,
    client: Client,
    registration: Registration,
}

impl Registrar {
    /// Checks the URL; no connection is made yet.
    pub fn new(discovery_url: &str, registration: Registration, tls: &ClientTls) -> anyhow::Result<Self> {
        let channel = channel(discovery_url, Some(Duration::from_secs(3)), tls)?;
        let client = DiscoveryClient::with_interceptor(channel.clone(), Credential::none());
        Ok(Self { channel, client, registration })
    }

    /// Sends `credential` with every call.
    pub fn with_credential(mut self, credential: Credential) -> Self {
        self.client = DiscoveryClient::with_interceptor(self.channel.clone(), credential);
        self
    }

    /// Registers, heartbeats and, once `token` is cancelled, deregisters.
    pub async fn run(mut self, token: CancellationToken) {
        let reg = &self.registration;
        let mut lease: Option<String> = None;
        let mut interval = reg.ttl / 3;
        let mut failures = 0u32;
        loop {
            let attempt = match &lease {
                None => self.client.register(reg.request()).await.map(|r| {
                    let r = r.into_inner();
                    (r.lease_id, r.ttl_seconds, true)
                }),
                Some(id) => self
                    .client
                    .heartbeat(HeartbeatRequest { lease_id: id.clone(), registration: Some(reg.request()) })
                    .await
                    .map(|r| {
                        let r = r.into_inner();
                        (r.lease_id, r.ttl_seconds, r.reregistered)
                    }),
            };
            let wait = match attempt {
                Ok((id, ttl, fresh)) => {
                    if fresh || failures > 0 {
                        tracing::info!(service = %reg.service, instance = %reg.instance_id, lease = %id, ttl, "registered with discovery");
                    }
                    failures = 0;
                    lease = Some(id);
                    interval = (Duration::from_secs(u64::from(ttl.max(1))) / 3).max(Duration::from_millis(200));
                    interval
                }
                Err(status) => {
                    if status.code() == tonic::Code::NotFound {
                        lease = None;
                    }
                    if status.code() == tonic::Code::Unauthenticated {
                        tracing::error!(service = %reg.service, "the registry refused this service's discovery token (LINER_DISCOVERY_TOKEN); retrying");
                    } else if failures == 0 {
                        tracing::warn!(service = %reg.service, error = %status.message(), "discovery unreachable; retrying with back-off");
                    }
                    failures = failures.saturating_add(1);
                    // Never wait longer than a heartbeat interval, so a registry that
                    // comes back learns about us before our lease would have expired.
                    backoff(failures, MAX_BACKOFF.min(interval))
                }
            };
            tokio::select! {
                () = token.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        if let Some(lease_id) = lease {
            let bye = self.client.deregister(DeregisterRequest { lease_id });
            match tokio::time::timeout(Duration::from_secs(2), bye).await {
                Ok(Ok(_)) => {
                    tracing::info!(service = %reg.service, instance = %reg.instance_id, "deregistered from discovery")
                }
                Ok(Err(e)) => {
                    tracing::warn!(service = %reg.service, error = %e.message(), "deregister failed; the lease will expire")
                }
                Err(_) => tracing::warn!(service = %reg.service, "deregister timed out; the lease will expire"),
            }
        }
    }
}

/// Registers `service` at `address` (`HOST:PORT`) with the registry at `discovery_url`
/// and keeps it registered until `token` is cancelled. Fails only on a bad URL.
pub async fn register_forever(
    discovery_url: &str,
    service: &str,
    address: impl Display,
    token: CancellationToken,
) -> anyhow::Result<()> {
    Registrar::new(discovery_url, Registration::new(service, address), &ClientTls::default())?.run(token).await;
    Ok(())
}

/// The live instances of one service as last heard; `None` until the registry first answered.
pub type Watched = watch::Receiver<Option<Arc<Vec<Instance>>>>;

/// Watches `service` until `token` is cancelled (see the module doc for the rules).
pub fn watch_service(
    discovery_url: &str,
    credential: Credential,
    tls: &ClientTls,
    service: &str,
    token: CancellationToken,
) -> anyhow::Result<Watched> {
    let mut client = DiscoveryClient::with_interceptor(channel(discovery_url, None, tls)?, credential);
    let (tx, rx) = watch::channel(None);
    let service = service.to_owned();
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let call = client.watch(WatchRequest { service: service.clone() });
            let outcome = tokio::select! {
                () = token.cancelled() => return,
                r = call => r,
            };
            match outcome {
                Ok(stream) => {
                    let mut stream = stream.into_inner();
                    loop {
                        let next = tokio::select! {
                            () = token.cancelled() => return,
                            m = stream.message() => m,
                        };
                        match next {
                            Ok(Some(msg)) => {
                                if failures > 0 {
                                    tracing::info!(%service, "discovery watch reconnected");
                                }
                                failures = 0;
                                // The read guard must be gone before the write below.
                                let known = tx.borrow().clone();
                                let set = merge(known.as_deref(), msg.instances, msg.complete);
                                tx.send_replace(Some(Arc::new(set)));
                            }
                            Ok(None) => break,
                            Err(e) => {
                                tracing::debug!(%service, error = %e.message(), "discovery watch broke");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(%service, error = %e.message(), "discovery watch failed"),
            }
            if failures == 0 {
                tracing::warn!(%service, "discovery watch lost; keeping the last known instances");
            }
            failures = failures.saturating_add(1);
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(backoff(failures, MAX_BACKOFF)) => {}
            }
        }
    });
    Ok(rx)
}

/// The set to publish: the registry's when it is complete, else the union with what
/// we knew (the registry's entry wins for an instance both know).
fn merge(known: Option<&Vec<Instance>>, fresh: Vec<Instance>, complete: bool) -> Vec<Instance> {
    let mut set = fresh;
    if !complete && let Some(known) = known {
        for old in known {
            if !set.iter().any(|i| i.instance_id == old.instance_id) {
                set.push(old.clone());
            }
        }
        set.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str) -> Instance {
        Instance { service: "s".into(), instance_id: id.into(), address: "h:1".into(), metadata: HashMap::new() }
    }

    #[test]
    fn incomplete_sets_only_add() {
        let known = vec![inst("a"), inst("b")];
        let ids = |v: Vec<Instance>| v.into_iter().map(|i| i.instance_id).collect::<Vec<_>>();
        assert_eq!(ids(merge(Some(&known), vec![inst("c")], false)), ["a", "b", "c"]);
        assert_eq!(ids(merge(Some(&known), vec![inst("c")], true)), ["c"]);
        assert_eq!(ids(merge(None, vec![inst("c")], false)), ["c"]);
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(backoff(1, MAX_BACKOFF), Duration::from_millis(200));
        assert_eq!(backoff(30, MAX_BACKOFF), MAX_BACKOFF);
        assert_eq!(backoff(30, Duration::from_secs(1)), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_tls_listener_registers_an_https_url_and_a_plain_one_host_port() {
        let plain = Bound::bind(([127, 0, 0, 1], 0).into(), "test").await.expect("bind");
        let port = plain.addr().port();
        assert_eq!(registered_address(&plain, None), format!("127.0.0.1:{port}"));
        assert_eq!(registered_address(&plain, Some("review.internal")), format!("review.internal:{port}"));

        let dir = tempfile::tempdir().expect("tempdir");
        let cert = liner_shared::throwaway::TestCa::new("test CA").and_then(|ca| ca.server_cert(&["127.0.0.1"]));
        let cert = cert.expect("certificate");
        std::fs::write(dir.path().join("cert.pem"), &cert.cert_pem).expect("cert file");
        std::fs::write(dir.path().join("key.pem"), &cert.key_pem).expect("key file");
        let config = liner_shared::tls::server_config(&dir.path().join("cert.pem"), &dir.path().join("key.pem"));
        let tls = Bound::bind_tls(([127, 0, 0, 1], 0).into(), "test", Some(config.expect("TLS config")));
        let tls = tls.await.expect("bind");
        let port = tls.addr().port();
        assert_eq!(registered_address(&tls, None), format!("https://127.0.0.1:{port}"));
        assert_eq!(registered_address(&tls, Some("review.internal")), format!("https://review.internal:{port}"));
        let registration = Registration::new("review", registered_address(&tls, None));
        assert_eq!(registration.instance_id, format!("review@127.0.0.1:{port}"), "the id does not change with TLS");
    }

    #[test]
    fn advertised_addresses() {
        let any: std::net::SocketAddr = "0.0.0.0:81".parse().unwrap();
        assert_eq!(advertise_address(any, None), "127.0.0.1:81");
        assert_eq!(advertise_address(any, Some("10.0.0.7")), "10.0.0.7:81");
    }
}
