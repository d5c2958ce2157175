//! Which service serves which path prefix, and the static (fallback) upstream list.

use std::str::FromStr;

/// Public path prefix → service name.
pub const ROUTES: &[(&str, &str)] =
    &[("/api/users-reviews", "review"), ("/api/forums", "forum"), ("/api/catalog", "catalog")];

/// `SERVICE=http://HOST:PORT` (or `https://`, for an instance that speaks TLS) from the
/// command line.
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
            return Err(format!("unknown service {service:?}: expected review, forum or catalog"));
        }
        let url = url.trim_end_matches('/');
        let authority = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
        let authority = authority.ok_or("upstream URL must start with http:// or https://")?;
        if authority.is_empty() || authority.contains('/') {
            return Err("upstream URL must be http(s)://HOST:PORT".into());
        }
        Ok(Self { service: service.to_owned(), base_url: url.to_owned() })
    }
}

/// `SERVICE=MILLIS` from the command line: a per-route upstream timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTimeout {
    pub service: String,
    pub timeout: std::time::Duration,
}

impl FromStr for RouteTimeout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (service, ms) = s.split_once('=').ok_or("expected SERVICE=MILLISECONDS")?;
        if !ROUTES.iter().any(|(_, name)| *name == service) {
            return Err(format!("unknown service {service:?}: expected review, forum or catalog"));
        }
        let ms: u64 = ms.parse().map_err(|_| format!("bad milliseconds {ms:?}"))?;
        if ms == 0 {
            return Err("timeout must be positive".into());
        }
        Ok(Self { service: service.to_owned(), timeout: std::time::Duration::from_millis(ms) })
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
        assert_eq!(service_for("/api/catalog/albums"), Some("catalog"));
        assert_eq!(service_for("/healthz"), None);
    }

    #[test]
    fn static_routes_are_checked() {
        assert!("review=http://127.0.0.1:1".parse::<StaticRoute>().is_ok());
        assert!("nope=http://127.0.0.1:1".parse::<StaticRoute>().is_err());
        assert!("catalog=http://127.0.0.1:1".parse::<StaticRoute>().is_ok());
        assert!("review=https://x:1".parse::<StaticRoute>().is_ok());
        assert!("review=ftp://x:1".parse::<StaticRoute>().is_err());
        assert!("review=http://x:1/path".parse::<StaticRoute>().is_err());
        assert!("forum=1500".parse::<RouteTimeout>().is_ok());
        assert!("forum=0".parse::<RouteTimeout>().is_err());
        assert!("chat=10".parse::<RouteTimeout>().is_err());
    }
}
