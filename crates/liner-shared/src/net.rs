//! Who the client is when requests come through proxies.
//!
//! `X-Forwarded-For` is only as good as whoever wrote it. A service believes it only from
//! a peer it was told to trust (`--trusted-proxies`), and then takes the right-most hop
//! that is not itself a trusted proxy: everything left of that was written by the
//! client and may be made up. From any other peer the header is ignored, so a direct
//! caller cannot pick the address its limits are counted under.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed (CIDRs or single addresses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Loopback only: the gateway of `liner up` or a cluster on one machine.
    pub fn loopback() -> Self {
        Self(vec![
            IpNet::V4(ipnet::Ipv4Net::new_assert([127, 0, 0, 0].into(), 8)),
            IpNet::from(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
        ])
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer`.
    pub fn client_addr(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let hops: Vec<&str> = hops.flat_map(|v| v.split(',')).map(str::trim).collect();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list, e.g. `10.0.0.0/8,127.0.0.1`; empty trusts nobody.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let nets = s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("not an address or CIDR: {p:?}"))
        });
        nets.collect::<Result<Vec<_>, _>>().map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(trusted.client_addr(&headers("1.2.3.4"), ip("203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(TrustedProxies::default().client_addr(&headers("1.2.3.4"), ip("127.0.0.1")), ip("127.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted: TrustedProxies = "10.0.0.0/8, 127.0.0.1".parse().unwrap();
        let h = headers("6.6.6.6, 1.2.3.4, 10.0.0.7");
        assert_eq!(trusted.client_addr(&h, ip("127.0.0.1")), ip("1.2.3.4"), "the spoofed left part is ignored");
        assert_eq!(trusted.client_addr(&HeaderMap::new(), ip("10.1.1.1")), ip("10.1.1.1"));
        assert_eq!(trusted.client_addr(&headers("garbage"), ip("10.1.1.1")), ip("10.1.1.1"));
        assert_eq!(trusted.client_addr(&headers("10.0.0.2, 10.0.0.3"), ip("10.1.1.1")), ip("10.0.0.2"));
    }

    #[test]
    fn lists_parse_and_loopback_covers_both_families() {
        assert!("".parse::<TrustedProxies>().unwrap().0.is_empty());
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("nonsense".parse::<TrustedProxies>().is_err());
        let lo = TrustedProxies::loopback();
        assert!(lo.trusts(ip("127.0.0.1")) && lo.trusts(ip("127.9.9.9")) && lo.trusts(ip("::1")));
        assert!(lo.trusts(ip("::ffff:127.0.0.1")), "IPv4-mapped loopback");
        assert!(!lo.trusts(ip("10.0.0.1")));
    }
}
