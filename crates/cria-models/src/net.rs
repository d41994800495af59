//! Network policy: which URLs Cria may fetch, hop by hop, and with which credentials.
//!
//! Contract: every request, including every redirect hop, goes through [`check_url`] first:
//! https only, a host on the allow-list, no user:password in the URL, never an IP literal that is
//! private, loopback, link-local (cloud metadata at 169.254.169.254) or otherwise non-public, and
//! host names that resolve only to such addresses are refused by the client's resolver.
//! Redirects are followed here, not by the HTTP library, so each hop is re-checked and a
//! credential is attached only to requests for the exact host it was issued for.
//!
//! [`NetworkPolicy::loopback_for_tests`] is the one explicit exception, for loopback test
//! servers: it allows plain http to `localhost` and `*.localhost` names on its allow-list
//! (resolved to 127.0.0.1 only). IP literals stay refused even then, so the production rules
//! are what tests exercise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Response, StatusCode, Url};

use crate::{ModelsError, Result};

/// Most redirects followed for one request (the model hub uses one or two).
pub const MAX_REDIRECTS: usize = 5;
/// Default cap on metadata bodies (JSON listings): far more than any real listing.
pub const METADATA_BODY_LIMIT: u64 = 4 * 1024 * 1024;

/// A bearer token for one host (e.g. a hub access token for gated repositories).
#[derive(Clone)]
pub struct Credential {
    pub host: String,
    pub bearer_token: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("host", &self.host)
            .field("bearer_token", &"<redacted>")
            .finish()
    }
}

/// Where downloads may go.
#[derive(Debug, Clone)]
pub struct NetworkPolicy {
    /// Exact host names, or `*.domain` for any subdomain of `domain`.
    pub allowed_hosts: Vec<String>,
    /// Test-only: allow `http://localhost:<port>` resolved to 127.0.0.1.
    pub allow_loopback_http: bool,
    pub max_redirects: usize,
    pub connect_timeout: Duration,
    /// Longest silence between two reads before the transfer counts as stalled.
    pub read_timeout: Duration,
    pub credential: Option<Credential>,
}

impl NetworkPolicy {
    /// The model hub and its download CDNs, https only.
    pub fn production() -> Self {
        Self {
            allowed_hosts: vec![
                "huggingface.co".to_owned(),
                "*.huggingface.co".to_owned(),
                "*.hf.co".to_owned(),
            ],
            allow_loopback_http: false,
            max_redirects: MAX_REDIRECTS,
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(60),
            credential: None,
        }
    }

    /// For loopback test servers only: plain http to `localhost` (add `*.localhost` names to
    /// `allowed_hosts` to simulate other hosts), short timeouts.
    pub fn loopback_for_tests() -> Self {
        Self {
            allowed_hosts: vec!["localhost".to_owned()],
            allow_loopback_http: true,
            max_redirects: MAX_REDIRECTS,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            credential: None,
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_hosts
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(domain) => {
                    host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}"))
                }
                None => host == *pattern,
            })
    }
}

/// Checks one URL (a first request or a redirect hop) against the policy.
pub fn check_url(url: &Url, policy: &NetworkPolicy) -> Result<()> {
    let reject = |reason: String| ModelsError::UrlRejected {
        url: redact(url),
        reason,
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(reject("credentials inside URLs are not allowed".to_owned()));
    }
    let host = match url.host() {
        Some(url::Host::Domain(domain)) => domain.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => {
            return Err(reject(ip_refusal(IpAddr::V4(ip))));
        }
        Some(url::Host::Ipv6(ip)) => {
            return Err(reject(ip_refusal(IpAddr::V6(ip))));
        }
        None => return Err(reject("the URL has no host".to_owned())),
    };
    let loopback_test = policy.allow_loopback_http && is_localhost_name(&host);
    match url.scheme() {
        "https" => {}
        "http" if loopback_test => {}
        "http" => return Err(reject("plain http is not allowed; only https".to_owned())),
        other => {
            return Err(reject(format!(
                "the {other}: scheme is not allowed; only https"
            )));
        }
    }
    if !policy.host_allowed(&host) {
        return Err(reject(format!("{host} is not an allowed download host")));
    }
    Ok(())
}

/// Why an IP literal is refused. Literal addresses never match the host allow-list; saying which
/// class they belong to makes the log useful when a redirect points at an internal service.
fn ip_refusal(ip: IpAddr) -> String {
    if is_public(ip) {
        format!("IP address {ip} is not an allowed download host")
    } else {
        format!("IP address {ip} is private, loopback or link-local")
    }
}

/// `localhost` and its subdomains (RFC 6761 reserves them for loopback); used only by the
/// test policy, so tests can stand up "different hosts" on one machine.
fn is_localhost_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// True for globally routable unicast addresses.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

/// The URL without query string or credentials, for messages and logs (signed CDN URLs carry
/// secrets in the query).
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// Resolves host names and drops addresses the policy does not allow, so a public name that
/// points at an internal address (DNS rebinding) cannot be reached.
struct PolicyResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            if allow_loopback && is_localhost_name(&host) {
                let addrs: reqwest::dns::Addrs =
                    Box::new(std::iter::once(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))));
                return Ok(addrs);
            }
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if resolved.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(resolved.into_iter());
            Ok(addrs)
        })
    }
}

/// Builds the HTTP client for `policy`: rustls with the ring provider, no automatic redirects,
/// the filtering resolver, timeouts, and no transparent decompression.
pub fn build_client(policy: &NetworkPolicy) -> Result<Client> {
    // Installing twice is harmless: the first provider wins and the error is ignored.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(PolicyResolver {
            allow_loopback: policy.allow_loopback_http,
        }))
        .connect_timeout(policy.connect_timeout)
        .read_timeout(policy.read_timeout)
        .user_agent(concat!("cria/", env!("CARGO_PKG_VERSION")));
    if policy.allow_loopback_http {
        // A proxy from the environment must not see (or swallow) loopback test traffic.
        builder = builder.no_proxy();
    }
    builder.build().map_err(|error| ModelsError::Network {
        url: String::new(),
        message: format!("could not set up the HTTP client: {error}"),
    })
}

/// Facts a redirecting hop told us about the final file (the model hub sends the LFS sha256 as
/// `X-Linked-Etag` and the size as `X-Linked-Size` on its redirect).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkedFacts {
    pub sha256: Option<String>,
    pub size: Option<u64>,
}

/// Sends `method url` with `headers`, following redirects by hand: every hop is checked, the
/// credential goes only to its own host, and `Authorization` is never forwarded.
pub async fn send_checked(
    client: &Client,
    policy: &NetworkPolicy,
    method: Method,
    url: &str,
    headers: &HeaderMap,
) -> Result<(Response, LinkedFacts)> {
    let start = Url::parse(url).map_err(|error| ModelsError::UrlRejected {
        url: url.to_owned(),
        reason: format!("not a valid URL: {error}"),
    })?;
    let mut current = start.clone();
    let mut linked = LinkedFacts::default();
    for _hop in 0..=policy.max_redirects {
        check_url(&current, policy)?;
        let mut request = client
            .request(method.clone(), current.clone())
            .headers(headers.clone());
        if let Some(credential) = &policy.credential
            && current
                .host_str()
                .is_some_and(|host| host.eq_ignore_ascii_case(&credential.host))
        {
            request = request.bearer_auth(&credential.bearer_token);
        }
        let response = request
            .send()
            .await
            .map_err(|error| network_error(&current, &error))?;
        collect_linked(response.headers(), &mut linked);
        if !is_redirect(response.status()) {
            return Ok((response, linked));
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| ModelsError::HttpStatus {
                status: response.status().as_u16(),
                url: redact(&current),
            })?;
        current = current
            .join(location)
            .map_err(|error| ModelsError::UrlRejected {
                url: location.to_owned(),
                reason: format!("the redirect target is not a valid URL: {error}"),
            })?;
    }
    Err(ModelsError::TooManyRedirects(
        policy.max_redirects,
        redact(&start),
    ))
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn collect_linked(headers: &HeaderMap, linked: &mut LinkedFacts) {
    if let Some(etag) = headers
        .get("x-linked-etag")
        .and_then(|value| value.to_str().ok())
    {
        let etag = etag
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_ascii_lowercase();
        if is_sha256_hex(&etag) {
            linked.sha256 = Some(etag);
        }
    }
    if let Some(size) = headers
        .get("x-linked-size")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
    {
        linked.size = Some(size);
    }
}

/// True for 64 lowercase or uppercase hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

pub(crate) fn network_error(url: &Url, error: &reqwest::Error) -> ModelsError {
    // reqwest's messages can include the full URL (with signed query); print ours instead.
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the connection broke while receiving data"
    } else {
        "request failed"
    };
    ModelsError::Network {
        url: redact(url),
        message: kind.to_owned(),
    }
}

/// Fetches a small metadata document (a JSON listing): body capped at `limit` bytes, compressed
/// encodings refused (nothing is ever inflated, so a gzip bomb stays a few bytes).
pub async fn fetch_metadata(
    client: &Client,
    policy: &NetworkPolicy,
    url: &str,
    limit: u64,
) -> Result<Vec<u8>> {
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    headers.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    let (mut response, _) = send_checked(client, policy, Method::GET, url, &headers).await?;
    let shown = redact(response.url());
    if !response.status().is_success() {
        return Err(ModelsError::HttpStatus {
            status: response.status().as_u16(),
            url: shown,
        });
    }
    refuse_encoded(response.headers(), &shown)?;
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(ModelsError::BodyTooLarge { url: shown, limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| network_error(response.url(), &error))?
    {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(ModelsError::BodyTooLarge { url: shown, limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Errors unless the body is sent as-is (no gzip, br, deflate, zstd...).
pub(crate) fn refuse_encoded(headers: &HeaderMap, url: &str) -> Result<()> {
    let encoding_header = HeaderName::from_static("content-encoding");
    if let Some(encoding) = headers.get(&encoding_header) {
        let encoding = encoding.to_str().unwrap_or("?").trim().to_ascii_lowercase();
        if !encoding.is_empty() && encoding != "identity" {
            return Err(ModelsError::UnexpectedEncoding {
                url: url.to_owned(),
                encoding,
            });
        }
    }
    Ok(())
}

/// One file of a hub repository listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RemoteFile {
    pub path: String,
    pub size: u64,
    pub sha256: Option<String>,
}

#[derive(serde::Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    lfs: Option<TreeLfs>,
}

#[derive(serde::Deserialize)]
struct TreeLfs {
    oid: String,
    size: u64,
}

/// Parses the hub's tree listing (`/api/models/<repo>/tree/<revision>`): file paths, sizes and
/// the LFS sha256 of large files, used when the catalog says a checksum is unknown.
pub fn parse_tree_listing(body: &[u8]) -> Result<Vec<RemoteFile>> {
    let entries: Vec<TreeEntry> =
        serde_json::from_slice(body).map_err(|error| ModelsError::Network {
            url: String::new(),
            message: format!("the file listing is not valid JSON: {error}"),
        })?;
    Ok(entries
        .into_iter()
        .filter(|entry| entry.kind == "file")
        .map(|entry| match entry.lfs {
            Some(lfs) if is_sha256_hex(&lfs.oid) => RemoteFile {
                path: entry.path,
                size: lfs.size,
                sha256: Some(lfs.oid.to_ascii_lowercase()),
            },
            _ => RemoteFile {
                path: entry.path,
                size: entry.size,
                sha256: None,
            },
        })
        .collect())
}

/// Lists a hub repository at a revision through `base` (`https://huggingface.co` in production).
pub async fn list_repository(
    client: &Client,
    policy: &NetworkPolicy,
    base: &str,
    repo: &str,
    revision: &str,
) -> Result<Vec<RemoteFile>> {
    let url = format!(
        "{}/api/models/{repo}/tree/{revision}?recursive=true",
        base.trim_end_matches('/')
    );
    let body = fetch_metadata(client, policy, &url, METADATA_BODY_LIMIT).await?;
    parse_tree_listing(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, policy: &NetworkPolicy) -> std::result::Result<(), String> {
        check_url(&Url::parse(url).unwrap(), policy).map_err(|error| error.to_string())
    }

    #[test]
    fn production_allows_only_https_hub_hosts() {
        let policy = NetworkPolicy::production();
        assert!(check("https://huggingface.co/a/b/resolve/main/x.gguf", &policy).is_ok());
        assert!(check("https://cdn-lfs-us-1.hf.co/x?sig=1", &policy).is_ok());
        assert!(check("https://cas-bridge.xethub.hf.co/x", &policy).is_ok());
        for bad in [
            "http://huggingface.co/x",
            "https://evil.example/x",
            "https://huggingface.co.evil.example/x",
            "https://hf.co.evil/x",
            "https://xhf.co/x",
            "file:///etc/passwd",
            "ftp://huggingface.co/x",
            "https://user:pw@huggingface.co/x",
            "https://127.0.0.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "http://localhost/x",
            "https://localhost/x",
        ] {
            assert!(check(bad, &policy).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn test_policy_still_refuses_ip_literals_and_other_hosts() {
        let policy = NetworkPolicy::loopback_for_tests();
        assert!(check("http://localhost:1234/x", &policy).is_ok());
        let error = check("http://127.0.0.1:1234/x", &policy).unwrap_err();
        assert!(error.contains("loopback"), "{error}");
        assert!(check("http://169.254.169.254/x", &policy).is_err());
        assert!(check("http://example.com/x", &policy).is_err());
    }

    #[test]
    fn public_address_classes() {
        for public in ["8.8.8.8", "2606:4700::1111", "18.164.0.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }

    #[test]
    fn redaction_drops_query_and_credentials() {
        let url = Url::parse("https://u:p@cdn.hf.co/x.gguf?X-Amz-Signature=secret").unwrap();
        let shown = redact(&url);
        assert!(
            !shown.contains("secret") && !shown.contains("u:p"),
            "{shown}"
        );
    }

    #[test]
    fn tree_listing_yields_lfs_checksums() {
        let body = br#"[
            {"type":"directory","oid":"1","size":0,"path":"UD-Q4_K_XL"},
            {"type":"file","oid":"abc","size":1519,"path":"README.md"},
            {"type":"file","oid":"def","size":135,"path":"m.gguf",
             "lfs":{"oid":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","size":33800000000,"pointerSize":135}}
        ]"#;
        let files = parse_tree_listing(body).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].size, 33_800_000_000);
        assert_eq!(files[1].sha256.as_deref().map(str::len), Some(64));
        assert_eq!(files[0].sha256, None);
        assert!(parse_tree_listing(b"<html>").is_err());
    }
}
