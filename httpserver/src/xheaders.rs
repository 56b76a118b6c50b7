//! Proxy headers: who the client really is when the server sits behind a
//! reverse proxy (Tornado's `xheaders=True`, `_HTTPRequestContext` and
//! `_ProxyAdapter`).
//!
//! [`RequestContext::apply_xheaders`] is the pure rule; [`XHeadersDelegate`]
//! is the wrapper message delegate that [`HttpServer`](crate::HttpServer)
//! puts in front of each request when `xheaders` is on, so that every
//! delegate — the closure adapter, the web layer — reads the client's address
//! from [`Http1Connection::context`] and finds the proxied one.

use std::net::IpAddr;

use crate::connection::Http1Connection;
use crate::delegate::{Flow, HttpMessageDelegate, StartLine};
use crate::headers::HttpHeaders;

/// Where the request in flight came from, as the server should believe it:
/// the peer's address and the connection's protocol, or what a trusted proxy
/// reported. Tornado: `_HTTPRequestContext` (`remote_ip`, `protocol`).
///
/// # Examples
///
/// ```
/// use whirl_httpserver::{HttpHeaders, RequestContext};
///
/// let mut headers = HttpHeaders::new();
/// headers.add("X-Forwarded-For", "1.2.3.4, 10.0.0.2");
/// headers.add("X-Forwarded-Proto", "https");
/// let peer = RequestContext { remote_ip: "10.0.0.1".parse().ok(), protocol: "http" };
///
/// let mut context = peer;
/// context.apply_xheaders(&headers, &["10.0.0.2".parse().unwrap()]);
/// assert_eq!(context.remote_ip, "1.2.3.4".parse().ok());
/// assert_eq!(context.protocol, "https");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestContext {
    /// The client's IP address; `None` when unknown (a Unix socket).
    pub remote_ip: Option<IpAddr>,
    /// `"http"` or `"https"`.
    pub protocol: &'static str,
}

impl RequestContext {
    /// The context of a connection from `remote_ip`, over TLS if `secure`.
    pub fn new(remote_ip: Option<IpAddr>, secure: bool) -> RequestContext {
        RequestContext {
            remote_ip,
            protocol: if secure { "https" } else { "http" },
        }
    }

    /// Replaces the address and protocol with those a proxy reported in
    /// `headers`, as Tornado's `_apply_xheaders` does:
    ///
    /// - the address is `X-Real-IP` if present, else the last
    ///   `X-Forwarded-For` entry that is not in `trusted_downstream` (the
    ///   first entry if all are trusted); it is used only if it parses as an
    ///   IP address (`evil.com` and `4.4.4.4<script>` are ignored — and an
    ///   invalid `X-Real-IP` is not replaced by `X-Forwarded-For`);
    /// - the protocol is the last comma-separated entry of `X-Scheme`, else
    ///   of `X-Forwarded-Proto`, used only if it is exactly `http` or
    ///   `https`.
    ///
    /// Repeated headers count as one joined with commas. Only enable this
    /// behind a proxy that sets these headers: otherwise any client can claim
    /// any address.
    pub fn apply_xheaders(&mut self, headers: &HttpHeaders, trusted_downstream: &[IpAddr]) {
        // Step 1. The address: X-Real-IP, else X-Forwarded-For from the right.
        let candidate = match headers.get_joined("X-Real-IP") {
            Some(real) => Some(real.trim().to_string()),
            None => headers.get_joined("X-Forwarded-For").map(|forwarded| {
                let mut chosen = "";
                for entry in forwarded.rsplit(',').map(str::trim) {
                    chosen = entry;
                    let trusted = entry
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| trusted_downstream.contains(&ip));
                    if !trusted {
                        break;
                    }
                }
                chosen.to_string()
            }),
        };
        if let Some(ip) = candidate.and_then(|c| c.parse::<IpAddr>().ok()) {
            self.remote_ip = Some(ip);
        }

        // Step 2. The protocol: the last entry of X-Scheme or X-Forwarded-Proto.
        let proto = headers
            .get_joined("X-Scheme")
            .or_else(|| headers.get_joined("X-Forwarded-Proto"));
        if let Some(proto) = proto {
            match proto.rsplit(',').next().map(str::trim) {
                Some("http") => self.protocol = "http",
                Some("https") => self.protocol = "https",
                _ => {}
            }
        }
    }
}

/// Wraps a request's message delegate so that, when its head arrives, the
/// connection's [`RequestContext`] is recomputed from the peer's address and
/// the proxy headers. Tornado: `_ProxyAdapter`.
///
/// The context is recomputed from the peer for every request, so nothing one
/// request claims carries over to the next; it stays in place after the
/// request (Tornado resets it) so that a response written later still sees
/// the proxied address.
pub(crate) struct XHeadersDelegate {
    /// The wrapped delegate.
    inner: Box<dyn HttpMessageDelegate>,
    /// The connection whose context is set.
    connection: Http1Connection,
    /// Proxies whose `X-Forwarded-For` entries are skipped.
    trusted_downstream: std::rc::Rc<[IpAddr]>,
}

impl XHeadersDelegate {
    /// Wraps `inner`, a delegate for a request on `connection`.
    pub(crate) fn new(
        inner: Box<dyn HttpMessageDelegate>,
        connection: &Http1Connection,
        trusted_downstream: std::rc::Rc<[IpAddr]>,
    ) -> XHeadersDelegate {
        XHeadersDelegate {
            inner,
            connection: connection.clone(),
            trusted_downstream,
        }
    }
}

impl HttpMessageDelegate for XHeadersDelegate {
    fn headers_received(&mut self, start_line: StartLine, headers: HttpHeaders) -> Flow {
        if let StartLine::Request(_) = start_line {
            let mut context = RequestContext::new(
                self.connection.remote_addr().map(|a| a.ip()),
                self.connection.is_secure(),
            );
            context.apply_xheaders(&headers, &self.trusted_downstream);
            self.connection.set_context(context);
        }
        self.inner.headers_received(start_line, headers)
    }

    fn data_received(&mut self, chunk: Vec<u8>) -> Flow {
        self.inner.data_received(chunk)
    }

    fn finish(&mut self) {
        self.inner.finish();
    }

    fn finish_flow(&mut self) -> Flow {
        self.inner.finish_flow()
    }

    fn on_connection_close(&mut self) {
        self.inner.on_connection_close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "127.0.0.1";

    /// Headers sent, trusted proxies, and the address expected.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);

    /// Applies `pairs` as headers to a plain-HTTP context from [`PEER`].
    fn apply(pairs: &[(&str, &str)], trusted: &[&str]) -> (String, &'static str) {
        let mut headers = HttpHeaders::new();
        for (name, value) in pairs {
            headers.add(*name, *value);
        }
        let trusted: Vec<IpAddr> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        let mut context = RequestContext::new(PEER.parse().ok(), false);
        context.apply_xheaders(&headers, &trusted);
        (context.remote_ip.unwrap().to_string(), context.protocol)
    }

    #[test]
    fn remote_ip_follows_tornados_xheader_test() {
        let cases: &[Case] = &[
            (&[], &[], PEER),
            (&[("X-Real-IP", "4.4.4.4")], &[], "4.4.4.4"),
            (
                &[("X-Real-IP", "2620:0:1cfe:face:b00c::3")],
                &[],
                "2620:0:1cfe:face:b00c::3",
            ),
            (&[("X-Forwarded-For", "4.4.4.4")], &[], "4.4.4.4"),
            (&[("X-Forwarded-For", "1.1.1.1, 4.4.4.4")], &[], "4.4.4.4"),
            (&[("X-Forwarded-For", "1.1.1.1,4.4.4.4")], &[], "4.4.4.4"),
            (
                &[
                    ("X-Forwarded-For", "1.1.1.1"),
                    ("X-Forwarded-For", "4.4.4.4"),
                ],
                &[],
                "4.4.4.4",
            ),
            (
                &[("X-Forwarded-For", "2620:0:1cfe:face:b00c::3")],
                &[],
                "2620:0:1cfe:face:b00c::3",
            ),
            // Invalid addresses are ignored.
            (&[("X-Real-IP", "evil.com")], &[], PEER),
            (&[("X-Real-IP", "4.4.4.4<script>")], &[], PEER),
            (&[("X-Forwarded-For", "evil.com")], &[], PEER),
            (
                &[("X-Forwarded-For", "1.1.1.1, 4.4.4.4<script>")],
                &[],
                PEER,
            ),
            // X-Real-IP wins, even when it is invalid.
            (
                &[("X-Real-IP", "4.4.4.4"), ("X-Forwarded-For", "5.5.5.5")],
                &[],
                "4.4.4.4",
            ),
            (
                &[("X-Real-IP", "bad"), ("X-Forwarded-For", "5.5.5.5")],
                &[],
                PEER,
            ),
            // trusted_downstream entries are skipped from the right.
            (
                &[("X-Forwarded-For", "5.5.5.5, 4.4.4.4, 2.2.2.2")],
                &["2.2.2.2"],
                "4.4.4.4",
            ),
            (
                &[("X-Forwarded-For", "5.5.5.5, 4.4.4.4")],
                &["4.4.4.4", "5.5.5.5"],
                "5.5.5.5",
            ),
            (
                &[("X-Forwarded-For", "5.5.5.5, evil, 2.2.2.2")],
                &["2.2.2.2"],
                PEER,
            ),
        ];
        for (headers, trusted, want) in cases {
            assert_eq!(apply(headers, trusted).0, *want, "{headers:?} {trusted:?}");
        }
    }

    #[test]
    fn protocol_takes_the_last_http_or_https_entry() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "http"),
            (&[("X-Scheme", "https")], "https"),
            (&[("X-Forwarded-Proto", "https")], "https"),
            (&[("X-Forwarded-Proto", "https , http")], "http"),
            (&[("X-Forwarded-Proto", "http, https")], "https"),
            (&[("X-Forwarded-Proto", "unknown")], "http"),
            (&[("X-Forwarded-Proto", "https, gopher")], "http"),
            (&[("X-Forwarded-Proto", "HTTPS")], "http"),
            (
                &[("X-Scheme", "https"), ("X-Forwarded-Proto", "http")],
                "https",
            ),
        ];
        for (headers, want) in cases {
            assert_eq!(apply(headers, &[]).1, *want, "{headers:?}");
        }
    }

    #[test]
    fn an_invalid_proto_keeps_https_on_a_tls_connection() {
        let mut headers = HttpHeaders::new();
        headers.add("X-Forwarded-Proto", "ftp");
        let mut context = RequestContext::new(None, true);
        context.apply_xheaders(&headers, &[]);
        assert_eq!(context, RequestContext::new(None, true));
    }
}
