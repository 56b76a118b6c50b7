//! [`HttpServerRequest`]: one request as an application sees it (Tornado's
//! `httputil.HTTPServerRequest`), with no connection attached.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::head::RequestHead;
use crate::headers::HttpHeaders;
use crate::httputil::{
    is_legal_cookie_name, parse_body_arguments, parse_cookie, parse_qs_bytes, Arguments, Files,
    FormError, ParseBodyConfig,
};
use crate::spare::give_back;
use crate::start_line::{RequestStartLine, Version};

/// Why a request head cannot become an [`HttpServerRequest`]; every case is
/// answered with 400 ([`RequestError::status`]). Tornado raises
/// `HTTPInputError` from the `HTTPServerRequest` constructor for these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// An HTTP/1.1 request without a `Host` header.
    MissingHost,
    /// A `Host` (or an absolute-form target's authority) with a character
    /// no host may hold, such as whitespace or `@`.
    InvalidHost,
    /// More than one `Host` header, or one holding a comma.
    MultipleHosts,
    /// A query string that cannot be parsed.
    InvalidQuery(FormError),
}

impl RequestError {
    /// The status a server answers with: always 400 Bad Request.
    pub fn status(&self) -> u16 {
        400
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::MissingHost => f.write_str("the HTTP/1.1 request has no Host header"),
            RequestError::InvalidHost => f.write_str("the Host header is not a valid host"),
            RequestError::MultipleHosts => f.write_str("the request has more than one Host"),
            RequestError::InvalidQuery(e) => write!(f, "invalid query string: {e}"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::InvalidQuery(e) => Some(e),
            _ => None,
        }
    }
}

impl From<FormError> for RequestError {
    fn from(e: FormError) -> Self {
        RequestError::InvalidQuery(e)
    }
}

/// A single HTTP request: its head, its body once read, where it came from,
/// and its arguments. Tornado: `httputil.HTTPServerRequest`.
///
/// Argument names are text and values bytes, as in Tornado; the web layer
/// decodes values when asked (`get_argument`).
///
/// The request line's parts are read through methods ([`method`],
/// [`uri`], [`path`], [`query`], [`host`], [`host_name`]) rather than held
/// in fields: the request keeps the target as it came from the head and
/// notes where in it the path, query and host lie, so building a request
/// copies no more than a `Host` header's value (and the host name
/// lowercased, when it has capitals). Tornado's attributes of the same
/// names are plain strings, and assignable; these are not.
///
/// [`method`]: Self::method
/// [`uri`]: Self::uri
/// [`path`]: Self::path
/// [`query`]: Self::query
/// [`host`]: Self::host
/// [`host_name`]: Self::host_name
///
/// # Examples
///
/// ```
/// use whirl_httpserver::{parse_request_head, HeadLimits, HttpServerRequest};
///
/// let raw = b"POST /form?a=1 HTTP/1.1\r\nHost: Example.com:8080\r\n\
///     Content-Type: application/x-www-form-urlencoded\r\nCookie: s=abc\r\n\r\n";
/// let (head, _) = parse_request_head(raw, &HeadLimits::default()).unwrap().unwrap();
/// let mut request = HttpServerRequest::new(head, "127.0.0.1".parse().ok(), "http").unwrap();
/// request.body = b"a=2&b=3".to_vec();
/// request.parse_body().unwrap();
///
/// assert_eq!((request.method(), request.uri()), ("POST", "/form?a=1"));
/// assert_eq!((request.path(), request.query()), ("/form", "a=1"));
/// assert_eq!((request.host(), request.host_name()), ("Example.com:8080", "example.com"));
/// assert_eq!(request.arguments["a"], [b"1".to_vec(), b"2".to_vec()]);
/// assert_eq!(request.query_arguments["a"], [b"1".to_vec()]);
/// assert_eq!(request.body_arguments["b"], [b"3".to_vec()]);
/// assert_eq!(request.cookies()["s"], "abc");
/// assert_eq!(request.full_url(), "http://Example.com:8080/form?a=1");
/// ```
#[derive(Clone)]
pub struct HttpServerRequest {
    /// The method, as sent.
    method: String,
    /// The request target as sent, then whatever part of the request the
    /// target does not hold: the host from `Host`, the host name
    /// lowercased, `/` for an absolute-form target without a path.
    text: String,
    /// Where the target's parts lie in [`text`](Self::text).
    parts: Parts,
    /// The protocol version.
    pub version: Version,
    /// The request headers.
    pub headers: HttpHeaders,
    /// The body, once read (empty until then).
    pub body: Vec<u8>,
    /// The client's address; `None` over a Unix socket (Tornado fakes
    /// `0.0.0.0`). With `xheaders`, the address a trusted proxy reported.
    pub remote_ip: Option<IpAddr>,
    /// `http` or `https` (with `xheaders`, as a trusted proxy reported).
    pub protocol: Cow<'static, str>,
    /// Query and body arguments together, query ones first.
    pub arguments: Arguments,
    /// The arguments from the query string.
    pub query_arguments: Arguments,
    /// The arguments from the body, once [`parse_body`](Self::parse_body)
    /// has run.
    pub body_arguments: Arguments,
    /// Files uploaded in a `multipart/form-data` body, once
    /// [`parse_body`](Self::parse_body) has run.
    pub files: Files,
    /// When the request started: when the server's loop picked up its head
    /// (the loop's clock in that iteration), or when it was built.
    pub start_time: Instant,
    /// When the response finished, once it has.
    pub finish_time: Option<Instant>,
}

impl HttpServerRequest {
    /// Builds a request from its parsed head, the client's address and the
    /// protocol (`http` or `https`). Tornado: `HTTPServerRequest(start_line=…,
    /// headers=…, connection=…)`.
    ///
    /// Splits the target into path and query, parses the query into
    /// [`query_arguments`](Self::query_arguments) (blank values kept) and
    /// [`arguments`](Self::arguments), and checks `Host` as Tornado does.
    /// An absolute-form target (`GET http://host/path?q`) is routed on its
    /// path and takes its host from its authority, as RFC 9112 §3.2.2 asks
    /// (Tornado keeps the whole URL as the path).
    ///
    /// # Errors
    ///
    /// [`RequestError::MissingHost`] for HTTP/1.1 without `Host`;
    /// [`RequestError::InvalidHost`] for a host with a forbidden character;
    /// [`RequestError::MultipleHosts`] for two `Host` headers or a comma;
    /// [`RequestError::InvalidQuery`] for more than 1,000 query fields or a
    /// name that is not UTF-8.
    pub fn new(
        head: RequestHead,
        remote_ip: Option<IpAddr>,
        protocol: impl Into<Cow<'static, str>>,
    ) -> Result<HttpServerRequest, RequestError> {
        HttpServerRequest::from_head(head, remote_ip, protocol).map_err(|refused| refused.error)
    }

    /// As [`new`](Self::new), giving the head back with the error, so a
    /// caller can still answer from it (the web layer builds a request
    /// without the query to render its 400 page).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), in a [`RefusedHead`].
    pub fn from_head(
        head: RequestHead,
        remote_ip: Option<IpAddr>,
        protocol: impl Into<Cow<'static, str>>,
    ) -> Result<HttpServerRequest, RefusedHead> {
        HttpServerRequest::from_head_at(head, remote_ip, protocol, Instant::now())
    }

    /// As [`from_head`](Self::from_head), with the
    /// [`start_time`](Self::start_time) given rather than read from the
    /// clock: a server passes the time its connection picked up the head
    /// ([`Http1Connection::request_start_time`]), so a request costs no
    /// clock read.
    ///
    /// [`Http1Connection::request_start_time`]: crate::Http1Connection::request_start_time
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), in a [`RefusedHead`].
    #[inline] // built where the caller keeps it, not moved there
    pub fn from_head_at(
        head: RequestHead,
        remote_ip: Option<IpAddr>,
        protocol: impl Into<Cow<'static, str>>,
        start_time: Instant,
    ) -> Result<HttpServerRequest, RefusedHead> {
        let RequestHead {
            start_line,
            headers,
        } = head;
        // The checks borrow the parts; a refused head is put back together.
        let (checked, query_arguments) = match check_head(&start_line, &headers) {
            Ok(found) => found,
            Err(error) => {
                let head = RequestHead {
                    start_line,
                    headers,
                };
                return Err(RefusedHead {
                    error,
                    head: Box::new(head),
                });
            }
        };
        let mut text = start_line.target;
        let parts = checked.place(&mut text);
        Ok(HttpServerRequest {
            method: start_line.method,
            text,
            parts,
            version: start_line.version,
            headers,
            body: Vec::new(),
            remote_ip,
            protocol: protocol.into(),
            arguments: query_arguments.clone(),
            query_arguments,
            body_arguments: Arguments::new(),
            files: Files::new(),
            start_time,
            finish_time: None,
        })
    }

    /// The method, as sent (`GET`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target, as sent (`/path?query`).
    pub fn uri(&self) -> &str {
        self.parts.uri.of(&self.text)
    }

    /// The path part of the target (`/path`); for an absolute-form target
    /// (`http://host/path`) its path, `/` when it has none.
    pub fn path(&self) -> &str {
        self.parts.path.of(&self.text)
    }

    /// The query part of the target, without the `?` (empty when there is
    /// none).
    pub fn query(&self) -> &str {
        self.parts.query.of(&self.text)
    }

    /// The requested host: the `Host` header, or the authority of an
    /// absolute-form target; `127.0.0.1` for HTTP/1.0 without `Host`.
    pub fn host(&self) -> &str {
        self.parts.host.of(&self.text)
    }

    /// [`host`](Self::host) lowercased and without its port.
    pub fn host_name(&self) -> &str {
        self.parts.host_name.of(&self.text)
    }

    /// Parses [`body`](Self::body) by its `Content-Type` into
    /// [`body_arguments`](Self::body_arguments) and [`files`](Self::files),
    /// and adds the body arguments to [`arguments`](Self::arguments), with
    /// the default [`ParseBodyConfig`]. Tornado: `_parse_body`. Call it once,
    /// after the body is complete.
    ///
    /// # Errors
    ///
    /// A [`FormError`] (400) for a malformed form body; then nothing is
    /// added.
    pub fn parse_body(&mut self) -> Result<(), FormError> {
        self.parse_body_with(&ParseBodyConfig::default())
    }

    /// As [`parse_body`](Self::parse_body), with the given limits.
    ///
    /// # Errors
    ///
    /// As [`parse_body`](Self::parse_body).
    pub fn parse_body_with(&mut self, config: &ParseBodyConfig) -> Result<(), FormError> {
        let content_type = self.headers.get("Content-Type").unwrap_or("");
        // No body, no arguments — unless parsing would refuse it: an empty
        // multipart body, or one in an encoding we cannot read.
        let multipart = content_type
            .trim_start()
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("multipart/"));
        let encoded = self
            .headers
            .get("Content-Encoding")
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
        if self.body.is_empty() && !multipart && !encoded {
            return Ok(());
        }
        let form = parse_body_arguments(content_type, &self.body, Some(&self.headers), config)?;
        for (name, values) in form.arguments {
            self.arguments
                .entry(name.clone())
                .or_default()
                .extend(values.iter().cloned());
            self.body_arguments.entry(name).or_default().extend(values);
        }
        for (name, files) in form.files {
            self.files.entry(name).or_default().extend(files);
        }
        Ok(())
    }

    /// The cookies the client sent, by name. Tornado: the `cookies`
    /// property.
    ///
    /// Each `Cookie` header is read with [`parse_cookie`] (several headers
    /// are read as one joined with `;`, as HTTP/2 asks; Tornado joins them
    /// with a comma); as in Tornado, which keeps them in Python's
    /// `SimpleCookie`, names that are not cookie tokens (empty, or with
    /// spaces, commas, non-ASCII…) are dropped. Computed on each call.
    pub fn cookies(&self) -> HashMap<String, String> {
        let mut cookies = HashMap::new();
        for header in self.headers.get_all("Cookie") {
            cookies.extend(
                parse_cookie(header)
                    .into_iter()
                    .filter(|(name, _)| is_legal_cookie_name(name)),
            );
        }
        cookies
    }

    /// The full URL: protocol, host and target, such as
    /// `http://example.com/a?b=1`. Tornado: `full_url`.
    pub fn full_url(&self) -> String {
        let (protocol, host, uri) = (&self.protocol, self.host(), self.uri());
        if uri.starts_with('/') || uri == "*" {
            format!("{protocol}://{host}{uri}")
        } else if uri.contains('?') {
            format!("{protocol}://{host}{}?{}", self.path(), self.query())
        } else {
            format!("{protocol}://{host}{}", self.path())
        }
    }

    /// How long the request took: until [`finish_time`](Self::finish_time)
    /// once set, until now before. Tornado: `request_time`.
    pub fn request_time(&self) -> Duration {
        self.finish_time
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(self.start_time)
    }

    /// Records now as the time the response finished.
    pub fn mark_finished(&mut self) {
        self.finish_time = Some(Instant::now());
    }
}

impl Drop for HttpServerRequest {
    /// Gives the request's strings to the next request on this thread
    /// (see `spare.rs`).
    fn drop(&mut self) {
        give_back([
            std::mem::take(&mut self.method),
            std::mem::take(&mut self.text),
        ]);
    }
}

impl fmt::Debug for HttpServerRequest {
    /// Like Tornado's `repr`: no headers, no body.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServerRequest")
            .field("protocol", &self.protocol)
            .field("host", &self.host())
            .field("method", &self.method)
            .field("uri", &self.uri())
            .field("version", &self.version)
            .field("remote_ip", &self.remote_ip)
            .finish_non_exhaustive()
    }
}

/// What [`HttpServerRequest::from_head`] refused: the error, and the head
/// given back.
#[derive(Debug, Clone)]
pub struct RefusedHead {
    /// Why the head cannot become a request.
    pub error: RequestError,
    /// The head, untouched (boxed: the error stays small).
    pub head: Box<RequestHead>,
}

/// A span of a request's [`text`](HttpServerRequest::text): bytes
/// `start..end`.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Where `inner`, a slice of `outer`, lies: its byte offset in `outer`,
    /// plus `base` (where `outer` itself lies in the text).
    fn within(outer: &str, inner: &str, base: usize) -> Span {
        let offset = inner.as_ptr().addr() - outer.as_ptr().addr();
        debug_assert!(offset + inner.len() <= outer.len(), "not a slice of outer");
        Span::at(base + offset, inner.len())
    }

    /// `len` bytes from `start`.
    fn at(start: usize, len: usize) -> Span {
        // A head's limits keep it far below 4 GiB (as the header map's own
        // offsets assume).
        let fit = |n: usize| u32::try_from(n).expect("request text past 4 GiB");
        Span {
            start: fit(start),
            end: fit(start + len),
        }
    }

    /// The text this span covers (every span is made from slices of the
    /// text, so it lies on char boundaries).
    #[inline]
    fn of(self, text: &str) -> &str {
        &text[self.start as usize..self.end as usize]
    }
}

/// Where the target and what the request read from it lie in the request's
/// text. `uri` is the whole target: it always starts at 0.
#[derive(Debug, Clone, Copy)]
struct Parts {
    uri: Span,
    path: Span,
    query: Span,
    host: Span,
    host_name: Span,
}

/// What [`check_head`] found: where in the target the path and query are
/// (no path: an absolute-form target without one), and the host.
struct Checked<'h> {
    path: Option<Span>,
    query: Span,
    host: Host<'h>,
}

/// Where a request's host comes from.
enum Host<'h> {
    /// The authority of an absolute-form target: this span of it.
    InTarget(Span),
    /// Text to copy after the target: the `Host` header, or `127.0.0.1`
    /// for HTTP/1.0 without one.
    Copied(&'h str),
}

impl Checked<'_> {
    /// Appends to `text` (the target) what it does not hold, and says
    /// where each part lies: the path `/` (absolute form without a path),
    /// the host from `Host`, and last the host name, lowercased, when
    /// lowercasing changes it (else it is a span of the host).
    fn place(&self, text: &mut String) -> Parts {
        let uri = Span::at(0, text.len());
        let path = self.path.unwrap_or_else(|| {
            text.push('/');
            Span::at(text.len() - 1, 1)
        });
        let host = match self.host {
            Host::InTarget(span) => span,
            Host::Copied(host) => {
                text.push_str(host);
                Span::at(text.len() - host.len(), host.len())
            }
        };
        let host_text = host.of(text);
        let name = split_host_and_port(host_text);
        let mut host_name = Span::within(host_text, name, host.start as usize);
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            // Rare (hosts come lowercase), so the copy may allocate.
            let lower = name.to_ascii_lowercase();
            host_name = Span::at(text.len(), lower.len());
            text.push_str(&lower);
        }
        Parts {
            uri,
            path,
            query: self.query,
            host,
            host_name,
        }
    }
}

/// Where the path, query and host of a head are, and its query arguments,
/// or why it is refused (Tornado's checks in `HTTPServerRequest.__init__`).
fn check_head<'h>(
    start_line: &RequestStartLine,
    headers: &'h HttpHeaders,
) -> Result<(Checked<'h>, Arguments), RequestError> {
    // Step 1: the host, from the one Host header (Tornado reads two
    // joined, and refuses the comma that joins them).
    let header_host = headers
        .get_once("Host")
        .map_err(|_| RequestError::MultipleHosts)?;
    match header_host {
        Some(host) => check_host(host)?,
        None if start_line.version == Version::Http10 => {}
        None => return Err(RequestError::MissingHost),
    }
    // Step 2: path and query; an absolute-form target brings its host.
    let target = start_line.target.as_str();
    let (authority, path_and_query) = split_absolute_form(target);
    if let Some(authority) = authority {
        check_host(authority)?;
    }
    // Both slices of the target, so their spans can be taken.
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, &path_and_query[path_and_query.len()..]));
    let query_arguments = if query.is_empty() {
        Arguments::new()
    } else {
        parse_qs_bytes(query.as_bytes(), true)?
    };
    let host = match (authority, header_host) {
        (Some(authority), _) => Host::InTarget(Span::within(target, authority, 0)),
        (None, Some(host)) => Host::Copied(host),
        (None, None) => Host::Copied("127.0.0.1"),
    };
    let checked = Checked {
        path: (authority.is_none() || !path.is_empty()).then(|| Span::within(target, path, 0)),
        query: Span::within(target, query, 0),
        host,
    };
    Ok((checked, query_arguments))
}

/// Bytes a host may hold besides `%XX` escapes: RFC 3986 host characters,
/// with brackets and colons anywhere (as Tornado allows).
static HOST_BYTE: [bool; 256] = crate::headers::alnum_and(b"-._~!$&'()*+,;=[]:");
/// [`HOST_BYTE`] without the comma, and so the bytes of a host that needs
/// no closer look.
static PLAIN_HOST_BYTE: [bool; 256] = crate::headers::alnum_and(b"-._~!$&'()*+;=[]:");

/// Checks a host as Tornado does: RFC 3986 host characters (brackets and
/// colons anywhere) with `%XX` escapes, then no comma.
pub(crate) fn check_host(host: &str) -> Result<(), RequestError> {
    let bytes = host.as_bytes();
    // The usual host (`example.com:8080`) has no escape and no comma: one
    // branch-free pass over a table settles it.
    if bytes
        .iter()
        .fold(true, |ok, &b| ok & PLAIN_HOST_BYTE[usize::from(b)])
    {
        return Ok(());
    }
    let mut comma = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(RequestError::InvalidHost)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(RequestError::InvalidHost);
                }
                i += 3;
            }
            b => {
                if !HOST_BYTE[usize::from(b)] {
                    return Err(RequestError::InvalidHost);
                }
                comma |= b == b',';
                i += 1;
            }
        }
    }
    if comma {
        return Err(RequestError::MultipleHosts);
    }
    Ok(())
}

/// Splits `http://authority/rest` into the authority and `/rest`; any other
/// target has no authority and is returned whole.
fn split_absolute_form(target: &str) -> (Option<&str>, &str) {
    if target.starts_with('/') {
        return (None, target); // origin form, the usual case
    }
    let Some((scheme, rest)) = target.split_once("://") else {
        return (None, target);
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return (None, target);
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    (Some(&rest[..end]), &rest[end..])
}

/// The host without a `:port` suffix. Tornado: `split_host_and_port`.
fn split_host_and_port(host: &str) -> &str {
    // A plain scan from the end: a host is short, and `rsplit_once`'s
    // word-at-a-time search costs more to set up than it saves.
    let Some(colon) = host.bytes().rposition(|b| b == b':') else {
        return host;
    };
    let (name, port) = (&host[..colon], &host[colon + 1..]);
    if !name.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        name
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::{parse_request_head, HeadLimits};

    fn request(raw: &str) -> Result<HttpServerRequest, RequestError> {
        let (head, _) = parse_request_head(raw.as_bytes(), &HeadLimits::default())
            .expect("valid head")
            .expect("complete head");
        HttpServerRequest::new(head, Some(IpAddr::from([10, 0, 0, 1])), "https")
    }

    #[test]
    fn splits_the_target() {
        // (request line, path, query, host, full URL)
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            ("GET / HTTP/1.1", "/", "", "h", "https://h/"),
            (
                "GET /a/b?x=1&y HTTP/1.1",
                "/a/b",
                "x=1&y",
                "h",
                "https://h/a/b?x=1&y",
            ),
            ("GET /a? HTTP/1.1", "/a", "", "h", "https://h/a?"),
            ("GET /a?b?c HTTP/1.1", "/a", "b?c", "h", "https://h/a?b?c"),
            ("OPTIONS * HTTP/1.1", "*", "", "h", "https://h*"),
            (
                "GET http://other:81/p?q=1 HTTP/1.1",
                "/p",
                "q=1",
                "other:81",
                "https://other:81/p?q=1",
            ),
            (
                "GET HTTP://other HTTP/1.1",
                "/",
                "",
                "other",
                "https://other/",
            ),
            (
                "GET https://other?q HTTP/1.1",
                "/",
                "q",
                "other",
                "https://other/?q",
            ),
        ];
        for (line, path, query, host, url) in cases {
            let r = request(&format!("{line}\r\nHost: h\r\n\r\n")).unwrap();
            assert_eq!(
                (r.path(), r.query(), r.host()),
                (*path, *query, *host),
                "{line}"
            );
            assert_eq!(r.full_url(), *url, "{line}");
        }
    }

    #[test]
    fn query_arguments_keep_blanks_and_limits_hold() {
        let r = request("GET /?a=1&b=&a=%FF&c HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(r.query_arguments["a"], [b"1".to_vec(), b"\xff".to_vec()]);
        assert_eq!(r.query_arguments["b"], [b"".to_vec()]);
        assert_eq!(r.query_arguments["c"], [b"".to_vec()]);
        assert_eq!(r.arguments, r.query_arguments);
        assert!(r.body_arguments.is_empty() && r.files.is_empty());

        let many = |n: usize| vec!["a=1"; n].join("&");
        let ok = request(&format!("GET /?{} HTTP/1.1\r\nHost: h\r\n\r\n", many(1000))).unwrap();
        assert_eq!(ok.arguments["a"].len(), 1000);
        let err =
            request(&format!("GET /?{} HTTP/1.1\r\nHost: h\r\n\r\n", many(1001))).unwrap_err();
        assert_eq!(
            err,
            RequestError::InvalidQuery(FormError::TooManyArguments { limit: 1000 })
        );
        assert_eq!(err.status(), 400);
        let err = request("GET /?%FF=1 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap_err();
        assert_eq!(
            err,
            RequestError::InvalidQuery(FormError::InvalidArgumentName)
        );
    }

    #[test]
    fn host_checks_follow_tornado() {
        // (request, host or error)
        type Case = (
            &'static str,
            Result<(&'static str, &'static str), RequestError>,
        );
        let cases: &[Case] = &[
            (
                "GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n",
                Ok(("Example.COM:8080", "example.com")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
                Ok(("[::1]:80", "[::1]")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n",
                Ok(("[::1]", "[::1]")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a%41b\r\n\r\n",
                Ok(("a%41b", "a%41b")),
            ),
            ("GET / HTTP/1.1\r\nHost: h:\r\n\r\n", Ok(("h:", "h:"))),
            ("GET / HTTP/1.1\r\nHost:\r\n\r\n", Ok(("", ""))),
            ("GET / HTTP/1.0\r\n\r\n", Ok(("127.0.0.1", "127.0.0.1"))),
            ("GET / HTTP/1.1\r\n\r\n", Err(RequestError::MissingHost)),
            (
                "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
                Err(RequestError::InvalidHost),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a%4\r\n\r\n",
                Err(RequestError::InvalidHost),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n",
                Err(RequestError::InvalidHost),
            ),
            (
                "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n",
                Err(RequestError::InvalidHost),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                Err(RequestError::MultipleHosts),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n",
                Err(RequestError::MultipleHosts),
            ),
            (
                "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
                Err(RequestError::InvalidHost),
            ),
            (
                "GET http://Other.EXAMPLE:81/p HTTP/1.1\r\nHost: h\r\n\r\n",
                Ok(("Other.EXAMPLE:81", "other.example")),
            ),
            ("GET http://[::1] HTTP/1.0\r\n\r\n", Ok(("[::1]", "[::1]"))),
        ];
        for (raw, want) in cases {
            let got = request(raw).map(|r| (r.host().to_string(), r.host_name().to_string()));
            let want = want.clone().map(|(h, n)| (h.to_string(), n.to_string()));
            assert_eq!(got, want, "{raw:?}");
        }
    }

    /// The target, the host and the lowercased host name share one string;
    /// each part reads back whole, also in storage an earlier request left.
    #[test]
    fn each_part_reads_back_apart_from_what_was_added_after_the_target() {
        let long = "x".repeat(300);
        let heads = [
            format!("GET /a/{long}?q={long} HTTP/1.1\r\nHost: WWW.Example.com:8080\r\n\r\n"),
            "PUT /b?c=d HTTP/1.1\r\nHost: Host.Name\r\n\r\n".to_string(),
            "GET https://Abs.Example HTTP/1.0\r\nHost: ignored\r\n\r\n".to_string(),
            "DELETE /only HTTP/1.0\r\n\r\n".to_string(),
        ];
        let want = [
            (
                "GET",
                format!("/a/{long}?q={long}"),
                format!("/a/{long}"),
                format!("q={long}"),
                "WWW.Example.com:8080",
                "www.example.com",
            ),
            (
                "PUT",
                "/b?c=d".into(),
                "/b".into(),
                "c=d".into(),
                "Host.Name",
                "host.name",
            ),
            (
                "GET",
                "https://Abs.Example".into(),
                "/".into(),
                String::new(),
                "Abs.Example",
                "abs.example",
            ),
            (
                "DELETE",
                "/only".into(),
                "/only".into(),
                String::new(),
                "127.0.0.1",
                "127.0.0.1",
            ),
        ];
        // Twice: the second round builds in the strings the first gave back.
        for _ in 0..2 {
            for (raw, (method, uri, path, query, host, name)) in heads.iter().zip(&want) {
                let r = request(raw).unwrap();
                assert_eq!(
                    (
                        r.method(),
                        r.uri(),
                        r.path(),
                        r.query(),
                        r.host(),
                        r.host_name()
                    ),
                    (
                        *method,
                        uri.as_str(),
                        path.as_str(),
                        query.as_str(),
                        *host,
                        *name
                    ),
                    "{raw:?}"
                );
            }
        }
        let r = request(&heads[1]).unwrap();
        assert_eq!(r.full_url(), "https://Host.Name/b?c=d");
        let shown = format!("{r:?}");
        assert!(shown.contains(r#"host: "Host.Name""#) && shown.contains(r#"uri: "/b?c=d""#));
    }

    #[test]
    fn parse_body_merges_after_query_arguments() {
        let mut r = request(
            "POST /?a=q HTTP/1.1\r\nHost: h\r\n\
             Content-Type: multipart/form-data; boundary=B\r\n\r\n",
        )
        .unwrap();
        r.body = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nbody\r\n\
                   --B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.png\"\r\n\
                   Content-Type: image/png\r\n\r\n\x89PNG\r\n--B--\r\n"
            .to_vec();
        r.parse_body().unwrap();
        assert_eq!(r.arguments["a"], [b"q".to_vec(), b"body".to_vec()]);
        assert_eq!(r.query_arguments["a"], [b"q".to_vec()]);
        assert_eq!(r.body_arguments["a"], [b"body".to_vec()]);
        let file = &r.files["f"][0];
        assert_eq!(
            (
                file.filename.as_str(),
                file.content_type.as_str(),
                file.body.as_slice()
            ),
            ("x.png", "image/png", &b"\x89PNG"[..])
        );
    }

    #[test]
    fn parse_body_errors_leave_the_request_alone() {
        let mut r = request(
            "POST /?a=q HTTP/1.1\r\nHost: h\r\n\
             Content-Type: multipart/form-data; boundary=B\r\n\r\n",
        )
        .unwrap();
        r.body =
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nbody\r\n--B\r\n".to_vec();
        assert_eq!(r.parse_body().unwrap_err(), FormError::NoFinalBoundary);
        assert_eq!(r.arguments["a"], [b"q".to_vec()]);
        assert!(r.body_arguments.is_empty());

        // A JSON body is not a form: no arguments, no error.
        let mut r = request("POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n\r\n")
            .unwrap();
        r.body = b"{\"a\": 1}".to_vec();
        r.parse_body().unwrap();
        assert!(r.arguments.is_empty());

        // An empty body is refused as a full one is: empty multipart, an
        // encoding we cannot read; otherwise it has no arguments.
        let empty = |head: &str| {
            let mut r = request(head).unwrap();
            r.parse_body()
        };
        assert_eq!(
            empty("POST / HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n\r\n")
                .unwrap_err(),
            FormError::BodyTooShort
        );
        assert!(matches!(
            empty("POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Encoding: br\r\n\r\n"),
            Err(FormError::UnsupportedContentEncoding(_))
        ));
        empty("POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Encoding: identity\r\n\r\n").unwrap();
        empty("GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    }

    #[test]
    fn cookies_drop_names_simplecookie_refuses() {
        let r = request(
            "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=\"q\"; c; d e=2\r\nCookie: f=3; a=4\r\n\r\n",
        )
        .unwrap();
        let mut cookies: Vec<_> = r.cookies().into_iter().collect();
        cookies.sort();
        let want = [("a", "4"), ("b", "q"), ("f", "3")];
        let want: Vec<_> = want
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(cookies, want);
        assert!(request("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap()
            .cookies()
            .is_empty());
    }

    #[test]
    fn request_time_stops_at_finish() {
        let mut r = request("GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert!(r.finish_time.is_none());
        r.mark_finished();
        let finished = r.request_time();
        assert_eq!(r.request_time(), finished);
        r.finish_time = Some(r.start_time + Duration::from_millis(420));
        assert_eq!(r.request_time(), Duration::from_millis(420));
        // A finish before the start (set by hand) is zero, not a panic.
        r.start_time += Duration::from_secs(1);
        assert_eq!(r.request_time(), Duration::ZERO);
    }

    #[test]
    fn debug_shows_no_body_or_headers() {
        let mut r = request("GET /x HTTP/1.1\r\nHost: h\r\nX-Secret: s\r\n\r\n").unwrap();
        r.body = b"secret body".to_vec();
        let shown = format!("{r:?}");
        assert!(
            shown.contains("/x") && shown.contains("10.0.0.1"),
            "{shown}"
        );
        assert!(!shown.contains("secret"), "{shown}");
    }
}
