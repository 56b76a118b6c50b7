//! [`Resolver`]: host names to socket addresses without blocking the loop
//! (Tornado's `netutil.Resolver`: its `DefaultExecutorResolver` and its
//! `OverrideResolver`).
//!
//! `getaddrinfo` blocks, so the system lookup runs on the loop's thread pool
//! ([`run_in_executor`]); IP literals are answered at once; and an override
//! map answers chosen names without asking the system at all (for tests, or
//! to pin a name to an address).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use whirl_ioloop::run_in_executor;

/// Turns host names into socket addresses without blocking the loop.
/// Tornado: `netutil.Resolver` (the default `DefaultExecutorResolver`, and
/// `OverrideResolver` when overrides are given).
///
/// Lookups happen in this order:
///
/// 1. an override for `(host, port)`, then one for `host` alone (host names
///    match without regard to ASCII case);
/// 2. an IP literal (`127.0.0.1`, `::1`, `[::1]`) resolves to itself, at once;
/// 3. anything else goes to the system resolver (`getaddrinfo`, via
///    [`ToSocketAddrs`]) on the [default thread pool](whirl_ioloop::default_pool),
///    never on the loop thread. Addresses come back in the system's order of
///    preference (RFC 6724), duplicates removed.
///
/// An override that names another host (or host and port) sends that name
/// through steps 2 and 3 — not through the overrides again, so overrides
/// cannot loop.
///
/// Clones are cheap and share the override map; changing a clone's overrides
/// copies the map first (the other clones keep theirs). A `Resolver` is
/// `Send + Sync`, so one can be configured once and handed to every loop.
///
/// # Examples
///
/// ```
/// use std::net::SocketAddr;
/// use whirl_ioloop::IoLoop;
/// use whirl_iostream::Resolver;
///
/// let mut resolver = Resolver::new();
/// let local: SocketAddr = "127.0.0.1:8888".parse().unwrap();
/// resolver.add_override("api.example.com", local);
///
/// IoLoop::new().run_sync(async {
///     assert_eq!(resolver.resolve("API.example.com", 443).await.unwrap(), vec![local]);
///     let literal = resolver.resolve("::1", 80).await.unwrap();
///     assert_eq!(literal, vec!["[::1]:80".parse().unwrap()]);
/// });
/// ```
#[derive(Clone, Default)]
pub struct Resolver {
    /// Names answered without asking the system; `None` when there are none.
    /// Shared by clones (copy-on-write).
    overrides: Option<Arc<HashMap<OverrideKey, OverrideTarget>>>,
}

impl Resolver {
    /// A resolver that asks the system (on the thread pool) for every name
    /// that is not an IP literal. Tornado: `DefaultExecutorResolver()`.
    pub fn new() -> Resolver {
        Resolver::default()
    }

    /// A resolver that answers the names in `overrides` itself and asks the
    /// system for the rest. Tornado: `OverrideResolver(resolver, mapping)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use whirl_iostream::{OverrideKey, OverrideTarget, Resolver};
    ///
    /// let resolver = Resolver::with_overrides(HashMap::from([
    ///     // Every port of this name goes to one address.
    ///     (OverrideKey::from("fake.test"), OverrideTarget::from("127.0.0.1:8080")),
    ///     // Port 443 of this name goes to another host, on port 8443.
    ///     (OverrideKey::from(("example.com", 443)), OverrideTarget::from(("localhost", 8443))),
    /// ]));
    /// # let _ = resolver;
    /// ```
    pub fn with_overrides(overrides: HashMap<OverrideKey, OverrideTarget>) -> Resolver {
        Resolver {
            overrides: (!overrides.is_empty()).then(|| Arc::new(overrides)),
        }
    }

    /// Adds (or replaces) one override; see [`OverrideKey`] and
    /// [`OverrideTarget`] for what converts into them. Other clones of this
    /// resolver are not affected.
    pub fn add_override(&mut self, key: impl Into<OverrideKey>, target: impl Into<OverrideTarget>) {
        let overrides = self.overrides.get_or_insert_with(Default::default);
        Arc::make_mut(overrides).insert(key.into(), target.into());
    }

    /// Resolves `host` to the addresses to try for `port`, in order of
    /// preference. Tornado: `Resolver.resolve(host, port)`.
    ///
    /// # Errors
    ///
    /// The system resolver's error (unknown name, no network, a host name
    /// with a NUL byte, …); `NotFound` if the name resolves to no address;
    /// `Other` if the lookup thread panicked.
    pub async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        // Step 1. Overrides.
        let (host, port) = match self.lookup(host, port) {
            Some(OverrideTarget::Addrs(addrs)) => return non_empty(host, addrs.clone()),
            Some(OverrideTarget::Host(target)) => (target.as_str(), port),
            Some(OverrideTarget::HostPort(target, target_port)) => (target.as_str(), *target_port),
            None => (host, port),
        };
        // Step 2. IP literals need no lookup.
        if let Some(ip) = parse_ip_literal(host) {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        // Step 3. getaddrinfo blocks: run it on the thread pool.
        let name = host.to_owned();
        let addrs = run_in_executor(move || {
            (name.as_str(), port)
                .to_socket_addrs()
                .map(|addrs| addrs.collect::<Vec<_>>())
        })
        .await
        .map_err(|e| io::Error::other(format!("the resolver thread failed: {e}")))??;
        non_empty(host, dedup(addrs))
    }

    /// The override for `(host, port)`, else for `host`, if any.
    fn lookup(&self, host: &str, port: u16) -> Option<&OverrideTarget> {
        let overrides = self.overrides.as_ref()?;
        overrides
            .get(&OverrideKey::host_port(host, port))
            .or_else(|| overrides.get(&OverrideKey::host(host)))
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let empty = HashMap::new();
        let overrides = self.overrides.as_deref().unwrap_or(&empty);
        f.debug_struct("Resolver")
            .field("overrides", overrides)
            .finish()
    }
}

/// Which names an override of a [`Resolver`] answers: a host on every port,
/// or a host on one port. Host names are compared without regard to ASCII
/// case. Tornado: the keys of `OverrideResolver`'s mapping (`host` or
/// `(host, port)`).
///
/// Made from `&str` or `String` (any port) and from `(&str, u16)` or
/// `(String, u16)` (that port only).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OverrideKey {
    /// The host name, ASCII-lowercased.
    host: String,
    /// The port it applies to; `None` for every port.
    port: Option<u16>,
}

impl OverrideKey {
    /// Matches `host` on every port.
    pub fn host(host: &str) -> OverrideKey {
        OverrideKey {
            host: host.to_ascii_lowercase(),
            port: None,
        }
    }

    /// Matches `host` on `port` only.
    pub fn host_port(host: &str, port: u16) -> OverrideKey {
        OverrideKey {
            host: host.to_ascii_lowercase(),
            port: Some(port),
        }
    }
}

impl From<&str> for OverrideKey {
    fn from(host: &str) -> Self {
        OverrideKey::host(host)
    }
}

impl From<String> for OverrideKey {
    fn from(host: String) -> Self {
        OverrideKey::host(&host)
    }
}

impl From<(&str, u16)> for OverrideKey {
    fn from((host, port): (&str, u16)) -> Self {
        OverrideKey::host_port(host, port)
    }
}

impl From<(String, u16)> for OverrideKey {
    fn from((host, port): (String, u16)) -> Self {
        OverrideKey::host_port(&host, port)
    }
}

/// What an overridden name resolves to. Tornado: the values of
/// `OverrideResolver`'s mapping (`host` or `(host, port)`), plus literal
/// addresses.
///
/// Made from a [`SocketAddr`] or `Vec<SocketAddr>` (`Addrs`), an [`IpAddr`]
/// (that address on the asked port), `(&str, u16)` or `(String, u16)`
/// (`HostPort`), and `&str` or `String`: a socket address such as
/// `"127.0.0.1:8080"` or `"[::1]:8080"` becomes `Addrs`, anything else
/// (`"localhost"`, `"::1"`) becomes `Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideTarget {
    /// Exactly these addresses, in this order; the asked port is ignored.
    Addrs(Vec<SocketAddr>),
    /// This host instead, on the asked port, resolved as usual.
    Host(String),
    /// This host and port instead, resolved as usual.
    HostPort(String, u16),
}

impl From<SocketAddr> for OverrideTarget {
    fn from(addr: SocketAddr) -> Self {
        OverrideTarget::Addrs(vec![addr])
    }
}

impl From<Vec<SocketAddr>> for OverrideTarget {
    fn from(addrs: Vec<SocketAddr>) -> Self {
        OverrideTarget::Addrs(addrs)
    }
}

impl From<IpAddr> for OverrideTarget {
    fn from(ip: IpAddr) -> Self {
        OverrideTarget::Host(ip.to_string())
    }
}

impl From<&str> for OverrideTarget {
    fn from(target: &str) -> Self {
        match target.parse::<SocketAddr>() {
            Ok(addr) => OverrideTarget::Addrs(vec![addr]),
            Err(_) => OverrideTarget::Host(target.to_owned()),
        }
    }
}

impl From<String> for OverrideTarget {
    fn from(target: String) -> Self {
        match target.parse::<SocketAddr>() {
            Ok(addr) => OverrideTarget::Addrs(vec![addr]),
            Err(_) => OverrideTarget::Host(target),
        }
    }
}

impl From<(&str, u16)> for OverrideTarget {
    fn from((host, port): (&str, u16)) -> Self {
        OverrideTarget::HostPort(host.to_owned(), port)
    }
}

impl From<(String, u16)> for OverrideTarget {
    fn from((host, port): (String, u16)) -> Self {
        OverrideTarget::HostPort(host, port)
    }
}

/// `host` as an IP address, if it is one (IPv6 with or without brackets).
fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// `addrs` without repeats, first occurrence kept (hosts files repeat lines).
fn dedup(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut unique = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !unique.contains(&addr) {
            unique.push(addr);
        }
    }
    unique
}

/// `addrs`, or a `NotFound` error naming `host` if there are none.
fn non_empty(host: &str, addrs: Vec<SocketAddr>) -> io::Result<Vec<SocketAddr>> {
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} resolved to no address"),
        ));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Polls `future` once, with no loop and a waker that does nothing.
    fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
        pin!(future)
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ip_literals_resolve_at_once_without_the_pool() {
        let resolver = Resolver::new();
        for (host, want) in [
            ("127.0.0.1", "127.0.0.1:80"),
            ("::1", "[::1]:80"),
            ("[::1]", "[::1]:80"),
            ("[fe80::1]", "[fe80::1]:80"),
        ] {
            match poll_once(resolver.resolve(host, 80)) {
                Poll::Ready(Ok(addrs)) => assert_eq!(addrs, vec![addr(want)], "{host}"),
                other => panic!("{host}: {other:?}"),
            }
        }
    }

    #[test]
    fn overrides_prefer_host_and_port_then_host() {
        let mut resolver = Resolver::new();
        resolver.add_override("fake.test", addr("127.0.0.1:1"));
        resolver.add_override(("fake.test", 443), addr("127.0.0.1:2"));
        resolver.add_override("other.test", "10.0.0.1");
        resolver.add_override(("moved.test", 80), ("192.0.2.7", 8080));
        let cases = [
            ("fake.test", 80, "127.0.0.1:1"),
            ("FAKE.Test", 80, "127.0.0.1:1"),
            ("fake.test", 443, "127.0.0.1:2"),
            ("other.test", 5, "10.0.0.1:5"),
            ("moved.test", 80, "192.0.2.7:8080"),
        ];
        for (host, port, want) in cases {
            match poll_once(resolver.resolve(host, port)) {
                Poll::Ready(Ok(addrs)) => assert_eq!(addrs, vec![addr(want)], "{host}:{port}"),
                other => panic!("{host}:{port}: {other:?}"),
            }
        }
    }

    #[test]
    fn overrides_are_copied_on_write() {
        let mut a = Resolver::with_overrides(HashMap::from([(
            "x.test".into(),
            addr("127.0.0.1:1").into(),
        )]));
        let b = a.clone();
        a.add_override("x.test", addr("127.0.0.1:2"));
        assert_eq!(
            b.lookup("x.test", 0),
            Some(&OverrideTarget::Addrs(vec![addr("127.0.0.1:1")]))
        );
        assert_eq!(
            a.lookup("x.test", 0),
            Some(&OverrideTarget::Addrs(vec![addr("127.0.0.1:2")]))
        );
    }

    #[test]
    fn an_empty_override_is_not_found() {
        let resolver =
            Resolver::with_overrides(HashMap::from([("none.test".into(), Vec::new().into())]));
        match poll_once(resolver.resolve("none.test", 80)) {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn string_targets_are_addresses_or_hosts() {
        let cases = [
            (
                "127.0.0.1:8080",
                OverrideTarget::Addrs(vec![addr("127.0.0.1:8080")]),
            ),
            (
                "[::1]:8080",
                OverrideTarget::Addrs(vec![addr("[::1]:8080")]),
            ),
            ("::1", OverrideTarget::Host("::1".into())),
            ("localhost", OverrideTarget::Host("localhost".into())),
        ];
        for (input, want) in cases {
            assert_eq!(OverrideTarget::from(input), want, "{input}");
        }
    }

    #[test]
    fn dedup_keeps_the_first_occurrence() {
        let a = addr("127.0.0.1:1");
        let b = addr("[::1]:1");
        assert_eq!(dedup(vec![a, b, a, b, a]), vec![a, b]);
    }
}
