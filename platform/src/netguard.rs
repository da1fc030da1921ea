//! Where Docket may connect on a tenant's behalf (an import source today, an export
//! destination next): public internet addresses only. A tenant-supplied endpoint is parsed
//! as a URL (which normalises the tricks: `127.1`, `0x7f.0.0.1`, `2130706433`), its host is
//! resolved, and every address it resolves to must be public; IPv6 forms that embed an IPv4
//! address (mapped, compatible, NAT64, 6to4) are judged by that address. The client is then
//! pinned to the checked addresses ([`PinnedConnector`]) and follows no redirects, so a DNS
//! answer that changes after the check (rebinding) or a `Location:` header cannot move it.
//!
//! A deployment on a private network (and the tests, against the local S3 server) turns
//! the address rule off with `DOCKET_IMPORT_ALLOW_HTTP`; the connection is still pinned.

use object_store::client::{ClientOptions, HttpClient, HttpConnector};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Why an endpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a usable URL (scheme, syntax, credentials or a path in it).
    #[error("{0}")]
    Invalid(String),
    /// It names, or resolves to, an address that is not on the public internet.
    #[error("the endpoint {0} is not a public internet address; Docket connects only to public endpoints")]
    NotPublic(String),
    /// Its host name does not resolve.
    #[error("the endpoint host {0} does not resolve")]
    Unresolvable(String),
}

impl EndpointError {
    /// Machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            EndpointError::Invalid(_) => "invalid_endpoint",
            EndpointError::NotPublic(_) => "forbidden_endpoint",
            EndpointError::Unresolvable(_) => "destination_unreachable",
        }
    }
}

/// An endpoint that passed the checks, with the addresses it may be reached at.
#[derive(Debug, Clone)]
pub struct CheckedEndpoint {
    /// The URL as given (normalised).
    pub url: url::Url,
    /// Its host as the client will send it.
    pub host: String,
    /// The checked addresses; the client connects to these and nothing else.
    pub addrs: Vec<SocketAddr>,
}

/// Whether an IPv4 address is on the public internet (not loopback, private, shared
/// (CGNAT), link-local, documentation, benchmarking, multicast, reserved or "this network").
pub fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..=127).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..=19).contains(&b))
        || a >= 240)
}

/// Whether an IPv6 address is on the public internet; forms carrying an IPv4 address are
/// judged by it.
pub fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside sites)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard
        || (s[0] == 0x2001 && s[1] < 0x0200)) // IETF protocol assignments (Teredo, ORCHID…)
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) && !(s[5] == 0 && s[6] == 0) {
        return Some(tail()); // ::ffff:a.b.c.d and ::a.b.c.d (not :: or ::1)
    }
    if s[0] == 0x0064 && s[1] == 0xff9b {
        return Some(tail()); // 64:ff9b::a.b.c.d and the local-use 64:ff9b:1::/48
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// Whether an address is public.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// Parses `endpoint` and checks what it may be: `https://` (or `http://` when
/// `allow_private`), no user info, no path beyond `/`, no query.
pub fn parse(endpoint: &str, allow_private: bool) -> Result<url::Url, EndpointError> {
    let url = url::Url::parse(endpoint)
        .map_err(|e| EndpointError::Invalid(format!("`endpoint` is not a URL: {e}")))?;
    let scheme_ok = url.scheme() == "https" || (allow_private && url.scheme() == "http");
    if !scheme_ok {
        return Err(EndpointError::Invalid(
            "`endpoint` must be an https:// URL".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::Invalid(
            "`endpoint` must not carry credentials; send them in `credentials`".into(),
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(EndpointError::Invalid(
            "`endpoint` is the service's base URL, without a path or query".into(),
        ));
    }
    if url.host().is_none() {
        return Err(EndpointError::Invalid("`endpoint` names no host".into()));
    }
    Ok(url)
}

/// Parses, resolves and checks `endpoint` (see the module documentation).
pub async fn check(endpoint: &str, allow_private: bool) -> Result<CheckedEndpoint, EndpointError> {
    let url = parse(endpoint, allow_private)?;
    let port = url.port_or_known_default().unwrap_or(443);
    let (host, addrs) = match url.host() {
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
        Some(url::Host::Ipv6(ip)) => (format!("[{ip}]"), vec![SocketAddr::new(ip.into(), port)]),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !allow_private && (d == "localhost" || d.ends_with(".localhost")) {
                return Err(EndpointError::NotPublic(d));
            }
            let found: Vec<SocketAddr> = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::lookup_host((d.as_str(), port)),
            )
            .await
            .map_err(|_| EndpointError::Unresolvable(d.clone()))?
            .map_err(|_| EndpointError::Unresolvable(d.clone()))?
            .collect();
            if found.is_empty() {
                return Err(EndpointError::Unresolvable(d));
            }
            (d, found)
        }
        None => return Err(EndpointError::Invalid("`endpoint` names no host".into())),
    };
    // Every address must pass: a host with one public and one private record would let the
    // client pick the private one.
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(EndpointError::NotPublic(match url.host() {
            Some(url::Host::Domain(_)) => format!("{host} (resolves to {})", bad.ip()),
            _ => host,
        }));
    }
    Ok(CheckedEndpoint { url, host, addrs })
}

/// An object-store HTTP client that reaches the checked host only at its checked
/// addresses and never follows a redirect.
#[derive(Debug, Clone)]
pub struct PinnedConnector {
    endpoint: CheckedEndpoint,
}

impl PinnedConnector {
    /// A connector for `endpoint`.
    pub fn new(endpoint: CheckedEndpoint) -> Self {
        Self { endpoint }
    }
}

/// How long connecting to a tenant's endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request to it may take (reading one object included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

impl HttpConnector for PinnedConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let host = self.endpoint.host.trim_start_matches('[').trim_end_matches(']');
        let client = reqwest::Client::builder()
            .resolve_to_addrs(host, &self.endpoint.addrs)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_spelling_of_a_private_address_is_refused() {
        for ep in [
            "https://127.0.0.1",
            "https://127.1",
            "https://0x7f.0.0.1",
            "https://0177.0.0.1",
            "https://2130706433",
            "https://[::1]",
            "https://[::ffff:127.0.0.1]",
            "https://[::ffff:7f00:1]",
            "https://[::127.0.0.1]",
            "https://[64:ff9b::10.0.0.1]",
            "https://[2002:a9fe:a9fe::]",
            "https://[fe80::1]",
            "https://[fd00::1]",
            "https://10.1.2.3",
            "https://172.16.0.1",
            "https://192.168.1.1",
            "https://169.254.169.254",
            "https://100.64.0.1",
            "https://0.0.0.0",
            "https://localhost",
            "https://minio.localhost",
            "https://LOCALHOST.",
        ] {
            let e = check(ep, false).await.expect_err(ep);
            assert_eq!(e.code(), "forbidden_endpoint", "{ep}: {e}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in ["8.8.8.8", "52.216.0.1", "2606:4700::1111", "2a00:1450::1"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn urls_with_credentials_paths_or_plain_http_are_invalid() {
        for ep in [
            "http://s3.example.com",
            "https://user:pw@s3.example.com",
            "https://s3.example.com/bucket",
            "https://s3.example.com/?x=1",
            "ftp://s3.example.com",
            "not a url",
        ] {
            assert_eq!(parse(ep, false).expect_err(ep).code(), "invalid_endpoint", "{ep}");
        }
        assert!(parse("http://127.0.0.1:9000", true).is_ok());
        assert!(parse("https://s3.eu-west-1.amazonaws.com", false).is_ok());
    }

    #[tokio::test]
    async fn private_addresses_pass_where_the_deployment_allows_them() {
        let c = check("http://127.0.0.1:9000", true).await.expect("allowed");
        assert_eq!(c.addrs, vec!["127.0.0.1:9000".parse().expect("addr")]);
    }
}
