//! How one service finds another: directly, by the registry's list of instances, never
//! through the public gateway (whose rate limits and edge rules are for clients).
//!
//! The forum and the catalogue need the review service twice: its public keys (JWKS)
//! to verify tokens, and (the forum) its user lookups. In a cluster both come from the
//! registered review instances, so no URL flag is needed; `--review-url` (and
//! `--jwks-url`) still point at one fixed place, as `liner up` and tests do.

use std::sync::Arc;

use liner_shared::auth::{FixedJwksUrl, KeySource, REVIEW_JWKS_PATH, Verifier};
use liner_shared::config::ServiceArgs;
use liner_shared::tls::{ClientTls, PeerClient};

use crate::proto::Instance;
use tokio_util::sync::CancellationToken;

/// Where the review service is, when it is not to be found through the registry.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReviewArgs {
    /// Base URL of a review instance [default: every review instance the registry lists].
    #[arg(long, env = "LINER_REVIEW_URL")]
    pub review_url: Option<String>,
    /// The review service's public keys (JWKS) [default: from the review instances].
    #[arg(long, env = "LINER_JWKS_URL")]
    pub jwks_url: Option<String>,
}

impl ReviewArgs {
    /// A fixed review instance (`liner up`, tests).
    pub fn at(base_url: impl Into<String>) -> Self {
        Self { review_url: Some(base_url.into()), jwks_url: None }
    }

    /// The review instances (fixed, or followed from the registry until `token` is
    /// cancelled) and a token verifier trusting their keys. Fails, with one line, when
    /// there is neither a URL nor a registry.
    /// `https://` instances are reached with `tls`.
    pub fn connect(
        &self,
        service: &ServiceArgs,
        tls: &ClientTls,
        token: CancellationToken,
    ) -> anyhow::Result<(ServiceUrls, Verifier)> {
        let review = match (&self.review_url, &service.discovery) {
            (Some(url), _) => {
                let url = url.trim_end_matches('/');
                ServiceUrls::fixed(url.strip_suffix("/api/users-reviews").unwrap_or(url))
            }
            (None, Some(discovery)) => {
                let credential = crate::client::Credential::new(service.discovery_token.resolve()?.as_deref())?;
                ServiceUrls::watch(discovery, credential, tls, "review", token)?
            }
            (None, None) => anyhow::bail!("cannot find the review service: give --discovery or --review-url"),
        };
        let keys: Arc<dyn KeySource> = match &self.jwks_url {
            Some(url) => Arc::new(FixedJwksUrl(url.clone())),
            None => Arc::new(ReviewKeys(review.clone())),
        };
        Ok((review, Verifier::from_source(keys, PeerClient::new(tls))))
    }
}

/// An instance's base URL from its registered address: `HOST:PORT` is plain HTTP, a
/// URL (`https://HOST:PORT` for a TLS listener) is taken as it is.
pub fn base_url(address: &str) -> String {
    if address.starts_with("http://") || address.starts_with("https://") {
        address.trim_end_matches('/').to_owned()
    } else {
        format!("http://{address}")
    }
}

/// The base URLs of a watched set of `service`'s instances. `https://` ones are logged
/// when this process has no CA to verify them with: they cannot be reached, and the
/// operator should hear why.
pub fn base_urls(service: &str, instances: &[Instance], tls: &ClientTls) -> Vec<String> {
    let urls: Vec<String> = instances.iter().map(|i| base_url(&i.address)).collect();
    if !tls.is_configured() && urls.iter().any(|u| u.starts_with("https://")) {
        tracing::warn!(%service, "instances speak TLS but no --tls-ca-file (LINER_TLS_CA_FILE) is set: not reached");
    }
    urls
}

/// The base URLs (`http(s)://HOST:PORT`) of another service's instances: fixed (a URL
/// given by flag) or followed from the registry. Services call each other directly
/// through it, never through the public gateway; it is also a token verifier's key
/// source (see [`ReviewKeys`]).
#[derive(Clone)]
pub struct ServiceUrls(Arc<UrlsInner>);

struct UrlsInner {
    urls: arc_swap::ArcSwap<Vec<String>>,
    /// Bumped on every change of `urls`.
    generation: std::sync::atomic::AtomicU64,
    next: std::sync::atomic::AtomicUsize,
}

impl ServiceUrls {
    /// One fixed base URL.
    pub fn fixed(base_url: impl Into<String>) -> Self {
        Self::with(vec![base_url.into().trim_end_matches('/').to_owned()])
    }

    /// The instances of `service` as the registry lists them, until `token` is cancelled
    /// (the last known set is kept while the registry is away; see [`watch_service`]).
    pub fn watch(
        discovery_url: &str,
        credential: crate::client::Credential,
        tls: &ClientTls,
        service: &str,
        token: CancellationToken,
    ) -> anyhow::Result<Self> {
        let mut watched = crate::client::watch_service(discovery_url, credential, tls, service, token)?;
        let (tls, service) = (tls.clone(), service.to_owned());
        let urls = Self::with(Vec::new());
        let follower = urls.clone();
        tokio::spawn(async move {
            while watched.changed().await.is_ok() {
                let set = watched.borrow_and_update().as_ref().map(|set| base_urls(&service, set, &tls));
                if let Some(set) = set {
                    follower.0.urls.store(Arc::new(set));
                    follower.0.generation.fetch_add(1, std::sync::atomic::Ordering::Release);
                }
            }
        });
        Ok(urls)
    }

    fn with(urls: Vec<String>) -> Self {
        Self(Arc::new(UrlsInner {
            urls: arc_swap::ArcSwap::from_pointee(urls),
            generation: Default::default(),
            next: Default::default(),
        }))
    }

    /// Every known base URL.
    pub fn all(&self) -> Arc<Vec<String>> {
        self.0.urls.load_full()
    }

    /// One base URL, taking turns; `None` while none is known.
    pub fn pick(&self) -> Option<String> {
        let urls = self.0.urls.load();
        let turn = self.0.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (!urls.is_empty()).then(|| urls[turn % urls.len()].clone())
    }

    pub fn generation(&self) -> u64 {
        self.0.generation.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// The JWKS of every known review instance, as a token verifier's key source.
pub struct ReviewKeys(pub ServiceUrls);

impl KeySource for ReviewKeys {
    fn trusted(&self) -> Vec<String> {
        self.0.all().iter().map(|base| format!("{base}{}", REVIEW_JWKS_PATH)).collect()
    }
    fn generation(&self) -> u64 {
        self.0.generation()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn registered_addresses_keep_their_scheme() {
        assert_eq!(super::base_url("10.0.0.7:8081"), "http://10.0.0.7:8081");
        assert_eq!(super::base_url("https://10.0.0.7:8081"), "https://10.0.0.7:8081");
        assert_eq!(super::base_url("http://10.0.0.7:8081/"), "http://10.0.0.7:8081");
    }

    #[test]
    fn a_watched_set_maps_to_base_urls_whatever_the_tls_configuration() {
        let instance = |address: &str| crate::proto::Instance {
            service: "review".into(),
            instance_id: address.into(),
            address: address.into(),
            metadata: Default::default(),
        };
        let set = [instance("h:1"), instance("https://h:2")];
        let urls = super::base_urls("review", &set, &liner_shared::tls::ClientTls::default());
        assert_eq!(urls, ["http://h:1", "https://h:2"], "no CA: logged, still listed (and refused when called)");
    }
}
