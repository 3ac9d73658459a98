//! [`OutboundGuard`]: checks a user-given URL (syntax, then every address its host resolves
//! to) and makes the bounded HTTP exchange with exactly the addresses it checked.
//!
//! The host is resolved once, in [`OutboundGuard::check`]; the client for a [`CheckedUrl`]
//! has those addresses pinned (`ClientBuilder::resolve_to_addrs`) and a resolver that refuses
//! every other name, so a DNS answer that changes between the check and the connection (DNS
//! rebinding) cannot redirect the call. Proxies from the environment are ignored for the same
//! reason: a proxy would resolve the host itself.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::dns::{Name, Resolve, Resolving};

use super::address::{AddressClass, AllowList, ProcessMode};
use super::answer::{HttpAnswer, OutboundError, classify};
use super::{endpoint, parse_outbound_url};
use crate::config::Config;
use crate::error::{CoreError, CoreResult};

/// Clients kept for reuse (keyed by host and pinned addresses) before the cache is emptied.
const MAX_CACHED_CLIENTS: usize = 256;

/// A host name (none for an IP literal) and the addresses it is pinned to.
type PinnedHost = (Option<String>, Vec<SocketAddr>);

/// Time and size bounds of every outbound exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundLimits {
    /// Longest a TCP (and TLS) connect may take.
    pub connect_timeout: Duration,
    /// Longest resolving the host may take.
    pub resolve_timeout: Duration,
    /// Largest answer body read by [`OutboundGuard::get`]; [`OutboundGuard::send`] takes its own.
    pub max_body_bytes: usize,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits {
            connect_timeout: Duration::from_secs(3),
            resolve_timeout: Duration::from_secs(3),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Why a URL may not be called. The text is meant for the person who gave the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not an acceptable outbound URL (scheme, credentials, query, ...).
    #[error("{0}")]
    Malformed(String),
    /// The host name has no address (or resolving it took too long).
    #[error("host {host:?} does not resolve to any address")]
    Unresolvable { host: String },
    /// An address of the host is link-local or a metadata address.
    #[error("{} {addr}, {}, which is never allowed", verb(*.resolved), .class.describe())]
    Never {
        addr: IpAddr,
        class: AddressClass,
        resolved: bool,
    },
    /// An address of the host is in a class the allow-list does not open.
    #[error(
        "{} {addr}, {}, which is not allowed here (add {} to `outbound_allow` / ORCH_OUTBOUND_ALLOW to allow it)",
        verb(*.resolved), .class.describe(), hint(*.class)
    )]
    NotAllowed {
        addr: IpAddr,
        class: AddressClass,
        resolved: bool,
    },
}

impl Refusal {
    /// True when the refusal comes from the address rules (as opposed to a malformed URL or
    /// a host that does not resolve).
    pub fn is_address_rule(&self) -> bool {
        matches!(self, Refusal::Never { .. } | Refusal::NotAllowed { .. })
    }
}

fn verb(resolved: bool) -> &'static str {
    if resolved { "resolves to" } else { "is" }
}

fn hint(class: AddressClass) -> &'static str {
    match class {
        AddressClass::Loopback => "`loopback` or a CIDR containing it",
        AddressClass::Private => "`private` or a CIDR containing it",
        _ => "a CIDR containing it",
    }
}

/// A URL that passed the guard, with the addresses its host resolved to (all allowed).
/// Use it right away: it is a snapshot of the DNS answer, not a standing permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    url: Url,
    domain: Option<String>,
    addrs: Vec<SocketAddr>,
}

impl CheckedUrl {
    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL as text without a trailing `/` (how it is stored).
    pub fn base(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    /// The checked addresses, in the order they are tried.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The URL of `path` (absolute, e.g. `/health`) under this base URL.
    pub fn endpoint(&self, path: &str) -> String {
        endpoint(self.url.as_str(), path)
    }
}

/// The guard for URLs users give (backends to adopt or validate, remote workers). Cheap to
/// clone; clones share the client cache.
#[derive(Debug, Clone)]
pub struct OutboundGuard {
    allow: Arc<AllowList>,
    limits: OutboundLimits,
    clients: Arc<Mutex<HashMap<PinnedHost, reqwest::Client>>>,
}

impl OutboundGuard {
    /// A guard that allows public addresses plus what `allow` names, with default limits.
    pub fn new(allow: AllowList) -> OutboundGuard {
        OutboundGuard {
            allow: Arc::new(allow),
            limits: OutboundLimits::default(),
            clients: Arc::default(),
        }
    }

    /// The guard `config.outbound_allow` describes; when it is unset, the default of `mode`
    /// (loopback in standalone, nothing extra in `api` and `worker` processes).
    pub fn for_mode(config: &Config, mode: ProcessMode) -> OutboundGuard {
        let allow = config
            .outbound_allow
            .clone()
            .unwrap_or_else(|| AllowList::default_for(mode));
        OutboundGuard::new(allow)
    }

    /// The guard `config.outbound_allow` describes. Processes settle the mode default into
    /// the configuration at start-up ([`crate::config::Config::settle_outbound_allow`]); a
    /// configuration that never went through that gets the standalone default.
    pub fn from_config(config: &Config) -> OutboundGuard {
        OutboundGuard::for_mode(config, ProcessMode::Standalone)
    }

    /// The same guard with other limits.
    pub fn with_limits(mut self, limits: OutboundLimits) -> OutboundGuard {
        self.limits = limits;
        self
    }

    /// What the guard allows beyond public addresses.
    pub fn allow_list(&self) -> &AllowList {
        &self.allow
    }

    /// The time and size bounds in use.
    pub fn limits(&self) -> OutboundLimits {
        self.limits
    }

    /// Checks `url` (the input named `field`): syntax, then every address its host resolves
    /// to. A refusal is `BAD_USER_INPUT` naming `field` and the rule that refused it.
    pub async fn check(&self, field: &str, url: &str) -> CoreResult<CheckedUrl> {
        self.inspect(url)
            .await
            .map_err(|refusal| CoreError::bad_input(field, refusal.to_string()))
    }

    /// As [`OutboundGuard::check`], with the refusal as a value the caller can inspect.
    pub async fn inspect(&self, url: &str) -> Result<CheckedUrl, Refusal> {
        let url = parse_outbound_url(url).map_err(Refusal::Malformed)?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Refusal::Malformed("has no port".into()))?;
        let host = url
            .host_str()
            .ok_or_else(|| Refusal::Malformed("must name a host".into()))?;
        // The parser has normalised IP literals (`0x7f.1` → `127.0.0.1`, IPv6 in brackets).
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let (domain, addrs) = match literal.parse::<IpAddr>() {
            Ok(ip) => (None, vec![SocketAddr::new(ip, port)]),
            Err(_) => {
                let addrs = self.resolve(host, port).await?;
                (Some(host.to_ascii_lowercase()), addrs)
            }
        };
        let resolved = domain.is_some();
        for addr in &addrs {
            let ip = addr.ip();
            let class = AddressClass::of(ip);
            if class.never_allowed() {
                return Err(Refusal::Never {
                    addr: ip,
                    class,
                    resolved,
                });
            }
            if !self.allow.allows(ip, class) {
                return Err(Refusal::NotAllowed {
                    addr: ip,
                    class,
                    resolved,
                });
            }
        }
        Ok(CheckedUrl { url, domain, addrs })
    }

    async fn resolve(&self, name: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let unresolvable = || Refusal::Unresolvable {
            host: name.to_string(),
        };
        let found = tokio::time::timeout(
            self.limits.resolve_timeout,
            tokio::net::lookup_host((name, port)),
        )
        .await
        .map_err(|_| unresolvable())?
        .map_err(|_| unresolvable())?;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for addr in found {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return Err(unresolvable());
        }
        Ok(addrs)
    }

    /// A client that reaches `checked`'s host only at the checked addresses, follows no
    /// redirects, ignores proxies, and gives up connecting after the connect timeout.
    pub fn client_for(&self, checked: &CheckedUrl) -> reqwest::Client {
        let key = (checked.domain.clone(), checked.addrs.clone());
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&key) {
            return client.clone();
        }
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.limits.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("orchestrator/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(CheckedNamesOnly));
        if let Some(domain) = &checked.domain {
            builder = builder.resolve_to_addrs(domain, &checked.addrs);
        }
        let client = builder
            .build()
            .expect("a reqwest client with static settings builds");
        if clients.len() >= MAX_CACHED_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        client
    }

    /// A request for `path` under `checked`, on its pinned client.
    pub fn request(
        &self,
        checked: &CheckedUrl,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client_for(checked)
            .request(method, checked.endpoint(path))
    }

    /// Sends `request` (made by [`OutboundGuard::request`] or on [`OutboundGuard::client_for`])
    /// and reads the answer: everything within `timeout`, the body in chunks up to `max_body`
    /// bytes. A 3xx answer is an error; any other status is returned with its body.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        max_body: usize,
    ) -> Result<HttpAnswer, OutboundError> {
        let started = Instant::now();
        let classify = |e: reqwest::Error| classify(&e, timeout);
        let exchange = async {
            let mut response = request.timeout(timeout).send().await.map_err(classify)?;
            let status = response.status();
            if status.is_redirection() {
                return Err(OutboundError::Redirect {
                    status: status.as_u16(),
                });
            }
            if response
                .content_length()
                .is_some_and(|len| len > max_body as u64)
            {
                return Err(OutboundError::TooLarge { limit: max_body });
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(classify)? {
                if body.len() + chunk.len() > max_body {
                    return Err(OutboundError::TooLarge { limit: max_body });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpAnswer {
                status: status.as_u16(),
                body,
                elapsed: started.elapsed(),
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(OutboundError::Timeout(timeout.as_millis())),
        }
    }

    /// `GET {checked}{path}` within `timeout`, reading at most the configured body limit.
    pub async fn get(
        &self,
        checked: &CheckedUrl,
        path: &str,
        timeout: Duration,
    ) -> Result<HttpAnswer, OutboundError> {
        let request = self.request(checked, reqwest::Method::GET, path);
        self.send(request, timeout, self.limits.max_body_bytes)
            .await
    }
}

/// The resolver of guarded clients: the checked name is answered by the pinned addresses
/// (reqwest applies them before asking the resolver); every other name is refused.
struct CheckedNamesOnly;

impl Resolve for CheckedNamesOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let message = format!("{} was not checked by the outbound guard", name.as_str());
        Box::pin(std::future::ready(Err(message.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_which_rule() {
        let never = Refusal::Never {
            addr: "169.254.169.254".parse().unwrap(),
            class: AddressClass::LinkLocalOrMetadata,
            resolved: true,
        };
        assert_eq!(
            never.to_string(),
            "resolves to 169.254.169.254, a link-local/metadata address, which is never allowed"
        );
        let not_allowed = Refusal::NotAllowed {
            addr: "10.0.0.5".parse().unwrap(),
            class: AddressClass::Private,
            resolved: false,
        };
        let text = not_allowed.to_string();
        assert!(
            text.starts_with("is 10.0.0.5, a private-network address"),
            "{text}"
        );
        assert!(text.contains("`private`"), "{text}");
    }
}
