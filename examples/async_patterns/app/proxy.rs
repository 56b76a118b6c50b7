//! `ANY /proxy/<path>`: the seed's forwarding handler — any method, its
//! headers and body, sent on to `--upstream`/`<path>` with an explicitly
//! built [`HttpRequest`], and the answer relayed back.
//!
//! Nothing is held whole. The handler streams its request body
//! (`STREAM_REQUEST_BODY`): `prepare` starts the upstream fetch at once with
//! a body producer reading a [`pipe`](super::pipe), and `data_received`
//! feeds that pipe as the client's bytes arrive (waiting when it is full,
//! which slows the client to the upstream's pace). The response comes back
//! through the client's `header_callback` and `streaming_callback` into a
//! queue that the verb method drains, flushing each piece to the client.

use std::cell::RefCell;
use std::rc::Rc;

use whirl::httpclient::{AsyncHttpClient, HttpClientError, HttpRequest};
use whirl::httpserver::HttpHeaders;
use whirl::ioloop::queues::Queue;
use whirl::ioloop::{spawn, JoinHandle};
use whirl::web::{Context, HandlerResult, HttpError, RequestHandler};

use super::pipe::{pipe, PipeWriter};
use super::{upstream_error, Shared};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1):
/// never forwarded in either direction. (`Host` and `Expect` are also kept
/// back from the upstream request: the client writes its own `Host`, and
/// `100-continue` was already answered by this server.)
const HOP_BY_HOP: &[&str] = &[
    "Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Connection",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
];

/// What the upstream fetch reports to the handler, in order.
enum Upstream {
    /// The final response head (interim 1xx heads are skipped).
    Head {
        /// The status.
        code: u16,
        /// The reason phrase.
        reason: String,
        /// The headers, as received.
        headers: Vec<(String, String)>,
    },
    /// A piece of the body.
    Piece(Vec<u8>),
    /// The fetch ended: `Ok` once the whole body was handed on.
    Done(Result<(), HttpClientError>),
}

/// Forwards one request (Tornado: a handler awaiting
/// `AsyncHTTPClient().fetch(HTTPRequest(url, method, headers, body,
/// validate_cert=False))`, streaming both ways).
pub struct ProxyHandler {
    /// The example's settings.
    shared: Rc<Shared>,
    /// Where the client's body goes (until it is complete).
    body: Option<PipeWriter>,
    /// What the upstream fetch reports.
    events: Queue<Upstream>,
    /// The fetch, aborted if this handler goes away first.
    fetch: Option<JoinHandle<()>>,
}

impl ProxyHandler {
    /// A handler for one request.
    pub fn new(shared: Rc<Shared>) -> ProxyHandler {
        ProxyHandler {
            shared,
            body: None,
            events: Queue::new(),
            fetch: None,
        }
    }

    /// Relays the upstream's answer; runs once the client's body is in.
    async fn relay(&mut self, cx: &mut Context) -> HandlerResult {
        // Step 1. The body is complete: let the producer end it.
        if let Some(body) = self.body.take() {
            body.finish();
        }
        // Step 2. Head, pieces, end — flushing each piece as it comes.
        let mut next = None;
        loop {
            let event = match next.take() {
                Some(event) => event,
                None => self.events.get().await,
            };
            match event {
                Upstream::Head {
                    code,
                    reason,
                    headers,
                } => {
                    cx.clear_header("Content-Type");
                    if reason.is_empty() {
                        cx.set_status(code);
                    } else {
                        cx.set_status_reason(code, reason);
                    }
                    let mut seen: Vec<String> = Vec::new();
                    for (name, value) in forwardable(&headers) {
                        let lower = name.to_ascii_lowercase();
                        if seen.contains(&lower) {
                            cx.add_header(name, value)?;
                        } else {
                            cx.set_header(name, value)?;
                            seen.push(lower);
                        }
                    }
                    cx.flush().await?;
                }
                Upstream::Piece(mut piece) => {
                    // Gather what already arrived into one write.
                    while piece.len() < 256 * 1024 {
                        match self.events.get_nowait() {
                            Ok(Upstream::Piece(more)) => piece.extend_from_slice(&more),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    cx.write(piece);
                    cx.flush().await?;
                }
                Upstream::Done(Ok(())) => return Ok(()),
                // Before the head: a 502 or 504 page. After it: the
                // framework closes the connection, so the client sees a
                // cut response, never a wrong one.
                Upstream::Done(Err(e)) => return Err(upstream_error(&e)),
            }
        }
    }
}

impl RequestHandler for ProxyHandler {
    const STREAM_REQUEST_BODY: bool = true;

    async fn prepare(&mut self, cx: &mut Context) -> HandlerResult {
        let request = cx.request();
        let raw_path = cx.path_arg_raw(0).unwrap_or("");
        let url = upstream_url(&self.shared.config.upstream, raw_path, request.query())?;
        let validate_cert = cx.get_query_argument_or("validate_cert", "1")? != "0";
        let timeout = self.shared.config.upstream_timeout;
        let mut upstream = HttpRequest::new(url)
            .method(request.method())
            .allow_nonstandard_methods(true) // any method, with or without a body
            .follow_redirects(false) // a proxy relays redirects
            .decompress_response(false) // and bodies as they are
            .raise_error(false) // and every status
            .validate_cert(validate_cert)
            .connect_timeout(timeout)
            .request_timeout(timeout);
        upstream.headers = forwarded_headers(cx);

        // The body: framed as the client framed it, fed by `data_received`.
        let length = request.headers.get("Content-Length").map(str::trim);
        let chunked = request
            .headers
            .get_all("Transfer-Encoding")
            .any(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked || length.is_some_and(|l| l != "0") {
            if chunked {
                upstream.headers.insert("Transfer-Encoding", "chunked");
            }
            let (writer, reader) = pipe();
            self.body = Some(writer);
            let reader = Rc::new(RefCell::new(Some(reader)));
            upstream = upstream.body_producer(move |out| {
                // Called once per attempt; a streamed body cannot be sent
                // twice, so a retry fails instead of sending it short.
                let reader = reader.borrow_mut().take();
                Box::pin(async move {
                    let reader = reader.ok_or_else(|| {
                        HttpClientError::new(
                            whirl::httpclient::ErrorKind::Body,
                            "a streamed body cannot be sent again",
                        )
                    })?;
                    loop {
                        match reader.read().await {
                            Ok(Some(piece)) => out.write(piece).await?,
                            Ok(None) => return Ok(()),
                            Err(_) => {
                                return Err(HttpClientError::new(
                                    whirl::httpclient::ErrorKind::Body,
                                    "the client's body was cut short",
                                ))
                            }
                        }
                    }
                })
            });
        } else if length.is_some() {
            upstream = upstream.body(Vec::new());
        }

        // The response: head and pieces into the queue, then the outcome.
        let events = self.events.clone();
        let head = Rc::new(RefCell::new(HeadParser::default()));
        upstream = upstream.header_callback(move |line| {
            if let Some(event) = head.borrow_mut().line(line) {
                let _ = events.put_nowait(event);
            }
        });
        let events = self.events.clone();
        upstream = upstream.streaming_callback(move |piece| {
            let _ = events.put_nowait(Upstream::Piece(piece));
        });
        let events = self.events.clone();
        let client: AsyncHttpClient = self.shared.client.clone();
        self.fetch = Some(spawn(async move {
            let outcome = client.fetch(upstream).await.map(drop);
            let _ = events.put_nowait(Upstream::Done(outcome));
        }));
        Ok(())
    }

    async fn data_received(&mut self, _cx: &mut Context, chunk: Vec<u8>) -> HandlerResult {
        if let Some(body) = &self.body {
            if body.write(chunk).await.is_err() {
                // The upstream request already failed (its error is
                // answered once the body is in); drop the rest.
                self.body = None;
            }
        }
        Ok(())
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        self.relay(cx).await
    }

    async fn head(&mut self, cx: &mut Context) -> HandlerResult {
        self.relay(cx).await
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        self.relay(cx).await
    }

    async fn put(&mut self, cx: &mut Context) -> HandlerResult {
        self.relay(cx).await
    }

    async fn patch(&mut self, cx: &mut Context) -> HandlerResult {
        self.relay(cx).await
    }

    async fn delete(&mut self, cx: &mut Context) -> HandlerResult {
        self.relay(cx).await
    }

    async fn options(&mut self, cx: &mut Context) -> HandlerResult {
        self.relay(cx).await
    }
}

impl Drop for ProxyHandler {
    fn drop(&mut self) {
        // The client left (or the answer is done): stop the fetch, which
        // would otherwise queue a response nobody reads.
        if let Some(fetch) = self.fetch.take() {
            fetch.abort();
        }
    }
}

/// The upstream URL for `raw_path` (still percent-encoded, as the client
/// sent it) and the query, without the proxy's own `validate_cert`.
///
/// # Errors
///
/// 400 for a `.` or `..` segment, which would climb out of the upstream's
/// base path once the URL is normalised.
fn upstream_url(base: &str, raw_path: &str, query: &str) -> Result<String, HttpError> {
    let climbs = raw_path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    });
    if climbs {
        return Err(HttpError::new(400).log_message(format!("dot segment in {raw_path:?}")));
    }
    let mut url = format!("{}/{raw_path}", base.trim_end_matches('/'));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some("validate_cert"))
        .collect();
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    Ok(url)
}

/// The client's headers minus hop-by-hop ones, plus `X-Forwarded-For`,
/// `X-Forwarded-Host` and `X-Forwarded-Proto`.
fn forwarded_headers(cx: &Context) -> HttpHeaders {
    let request = cx.request();
    let mut headers = HttpHeaders::new();
    let pairs: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    for (name, value) in forwardable(&pairs) {
        if !matches!(
            name.to_ascii_lowercase().as_str(),
            "host" | "expect" | "x-forwarded-for"
        ) {
            headers.add(name, value);
        }
    }
    let client = request
        .remote_ip
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let forwarded_for = match request.headers.get_joined("X-Forwarded-For") {
        Some(earlier) => format!("{earlier}, {client}"),
        None => client,
    };
    headers.insert("X-Forwarded-For", forwarded_for);
    headers.insert("X-Forwarded-Host", request.host());
    headers.insert("X-Forwarded-Proto", request.protocol.clone());
    headers
}

/// `headers` without the hop-by-hop ones, including those the
/// `Connection` header names.
fn forwardable(headers: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    let named: Vec<String> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Connection"))
        .flat_map(|(_, value)| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .collect();
    headers.iter().filter_map(move |(name, value)| {
        let hop = HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
            || named.contains(&name.to_ascii_lowercase());
        (!hop).then_some((name.as_str(), value.as_str()))
    })
}

/// Turns the lines `header_callback` hands over into the final head.
#[derive(Default)]
struct HeadParser {
    /// The status and reason of the head being read.
    status: Option<(u16, String)>,
    /// Its headers so far.
    headers: Vec<(String, String)>,
}

impl HeadParser {
    /// Takes one line; returns the head once its final empty line came
    /// (and it is not an interim 1xx).
    fn line(&mut self, line: &str) -> Option<Upstream> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            let (code, reason) = self.status.take()?;
            let headers = std::mem::take(&mut self.headers);
            return (!(100..200).contains(&code)).then_some(Upstream::Head {
                code,
                reason,
                headers,
            });
        }
        if self.status.is_none() {
            // "HTTP/1.1 200 OK"
            let mut parts = line.splitn(3, ' ');
            let _version = parts.next();
            let code = parts.next()?.parse().ok()?;
            let reason = parts.next().unwrap_or("").to_string();
            self.status = Some((code, reason));
        } else if let Some((name, value)) = line.split_once(':') {
            self.headers
                .push((name.trim().to_string(), value.trim().to_string()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_raw_path_and_drop_validate_cert() {
        let url = upstream_url("http://up:1/", "a%20b/c", "x=1&validate_cert=0&y=2").unwrap();
        assert_eq!(url, "http://up:1/a%20b/c?x=1&y=2");
        assert!(upstream_url("http://up:1/api", "../admin", "").is_err());
        assert!(upstream_url("http://up:1/api", "a/%2E%2e/b", "").is_err());
    }
}
