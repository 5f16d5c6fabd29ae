//! The client's address behind trusted proxies: `X-Forwarded-For` is believed only when the
//! TCP peer is one of `server.trusted_proxies`, and then read from the right, skipping the
//! trusted hops, so a client cannot name itself by prepending an address of its choice.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

/// The networks whose `X-Forwarded-For` is believed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(ip, bits)| format!("{ip}/{bits}")))
            .finish()
    }
}

/// The address a request came from, after the trusted proxies: what audit rows record and
/// per-address limits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`, `::1/128`) or single addresses.
    ///
    /// # Errors
    /// The first entry that is not an address or a CIDR, named.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut nets = Vec::with_capacity(entries.len());
        for entry in entries {
            let e = entry.trim();
            let (addr, bits) = match e.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (e, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| {
                format!("server.trusted_proxies: `{entry}` is not an address or CIDR")
            })?;
            let ip = ip.to_canonical();
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| {
                    format!("server.trusted_proxies: `{entry}` has an invalid prefix length")
                })?,
            };
            nets.push((ip, bits));
        }
        Ok(Self(nets))
    }

    /// Whether `ip` is in one of the networks.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }

    /// The client behind `peer`: `peer` itself unless it is trusted; then the rightmost
    /// address of `X-Forwarded-For` that is not a trusted proxy (or the leftmost, when all
    /// are). A hop that is not an address ends the walk at the hop before it.
    #[must_use]
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                break;
            };
            client = ip.to_canonical();
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

/// Puts the request's [`ClientAddr`] in its extensions (when the server gave the peer).
pub(crate) async fn client_address(
    axum::extract::State(proxies): axum::extract::State<TrustedProxies>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(peer) = peer {
        let client = proxies.client(peer, req.headers());
        req.extensions_mut().insert(ClientAddr(client));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy_read_from_the_right() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".to_owned(), "::1".to_owned()]).unwrap();
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "198.51.100.9".parse().unwrap();
        // From a stranger, the header is ignored.
        assert_eq!(
            trusted.client(stranger, &headers(&["203.0.113.7"])),
            stranger
        );
        // Behind a proxy: the rightmost untrusted hop, whatever the client prepended.
        assert_eq!(
            trusted.client(proxy, &headers(&["1.1.1.1, 203.0.113.7, 10.9.9.9"])),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // Several headers are one list; IPv4-mapped IPv6 peers are IPv4.
        assert_eq!(
            trusted.client(
                "::ffff:10.0.0.1".parse().unwrap(),
                &headers(&["203.0.113.7", "10.0.0.2"])
            ),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // No header, or garbage: the proxy itself (or the last good hop).
        assert_eq!(trusted.client(proxy, &HeaderMap::new()), proxy);
        assert_eq!(
            trusted.client(proxy, &headers(&["203.0.113.7, not-an-ip"])),
            proxy
        );
        assert!(TrustedProxies::parse(&["10.0.0.0/33".to_owned()]).is_err());
        assert!(TrustedProxies::parse(&["ten".to_owned()]).is_err());
        assert!(
            TrustedProxies::parse(&["0.0.0.0/0".to_owned()])
                .unwrap()
                .contains(stranger)
        );
    }
}
