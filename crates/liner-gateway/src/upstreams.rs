//! Which instances serve which path prefix.

use std::str::FromStr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Public path prefix → service name.
pub const ROUTES: &[(&str, &str)] = &[("/api/users-reviews", "review"), ("/api/forums", "forum")];

/// `SERVICE=http://HOST:PORT` from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    pub service: String,
    pub base_url: String,
}

impl FromStr for StaticRoute {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (service, url) = s.split_once('=').ok_or("expected SERVICE=http://HOST:PORT")?;
        if !ROUTES.iter().any(|(_, name)| *name == service) {
            return Err(format!("unknown service {service:?}: expected review or forum"));
        }
        let url = url.trim_end_matches('/');
        let authority = url.strip_prefix("http://").ok_or("upstream URL must start with http://")?;
        if authority.is_empty() || authority.contains('/') {
            return Err("upstream URL must be http://HOST:PORT".into());
        }
        Ok(Self { service: service.to_owned(), base_url: url.to_owned() })
    }
}

/// The instances of each service, picked round-robin.
#[derive(Default)]
pub struct Upstreams {
    services: RwLock<Vec<(String, Vec<String>)>>,
    next: AtomicUsize,
}

impl Upstreams {
    pub fn from_static(routes: &[StaticRoute]) -> Self {
        let this = Self::default();
        for (_, service) in ROUTES {
            let urls: Vec<String> =
                routes.iter().filter(|r| r.service == *service).map(|r| r.base_url.clone()).collect();
            this.set(service, urls);
        }
        this
    }

    pub fn set(&self, service: &str, urls: Vec<String>) {
        let mut services = self.services.write().unwrap_or_else(|p| p.into_inner());
        services.retain(|(name, _)| name != service);
        services.push((service.to_owned(), urls));
    }

    pub fn has_any(&self) -> bool {
        self.services.read().unwrap_or_else(|p| p.into_inner()).iter().any(|(_, urls)| !urls.is_empty())
    }

    /// The next instance of `service`, or None when it has none.
    pub fn pick(&self, service: &str) -> Option<String> {
        let services = self.services.read().unwrap_or_else(|p| p.into_inner());
        let urls = &services.iter().find(|(name, _)| name == service)?.1;
        if urls.is_empty() {
            return None;
        }
        Some(urls[self.next.fetch_add(1, Ordering::Relaxed) % urls.len()].clone())
    }
}

/// The service a request path belongs to.
pub fn service_for(path: &str) -> Option<&'static str> {
    ROUTES.iter().find_map(|(prefix, service)| {
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then_some(*service)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(service_for("/api/users-reviews/users/login"), Some("review"));
        assert_eq!(service_for("/api/forums"), Some("forum"));
        assert_eq!(service_for("/api/forumsx/rooms"), None);
        assert_eq!(service_for("/healthz"), None);
    }

    #[test]
    fn static_routes_are_checked() {
        assert!("review=http://127.0.0.1:1".parse::<StaticRoute>().is_ok());
        assert!("nope=http://127.0.0.1:1".parse::<StaticRoute>().is_err());
        assert!("review=https://x:1".parse::<StaticRoute>().is_err());
        assert!("review=http://x:1/path".parse::<StaticRoute>().is_err());
    }
}
