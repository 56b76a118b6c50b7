//! One request/response on one connection: the request head and body
//! written, the response read into a collector that buffers or streams
//! the body and decodes gzip — Tornado's `_HTTPConnection`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use whirl_httpserver::{
    Flow, GzipDecompressor, Http1ClientConnection, HttpClientConnectionError, HttpHeaders,
    HttpMessageDelegate, RequestStartLine, ResponseOutcome, StartLine, Version,
};

use crate::connect::{basic_auth, Proxy, Target};
use crate::error::{ErrorKind, HttpClientError};
use crate::request::{HttpRequest, RequestBody, DEFAULT_USER_AGENT};
use crate::response::TimeInfo;
use crate::writer::BodyWriter;

/// Methods sent without `allow_nonstandard_methods`.
const STANDARD_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// A response as read, before it becomes an `HttpResponse`.
#[derive(Debug, Default)]
pub(crate) struct RawResponse {
    /// The status.
    pub(crate) code: u16,
    /// The reason phrase.
    pub(crate) reason: String,
    /// The headers.
    pub(crate) headers: HttpHeaders,
    /// The body (empty when streamed).
    pub(crate) body: Vec<u8>,
    /// When the first byte of the final head arrived.
    pub(crate) first_byte: Option<Instant>,
    /// When the request was written.
    pub(crate) written: Option<Instant>,
}

/// Checks what Tornado's `HTTPRequest` checks before anything is sent.
pub(crate) fn validate(request: &HttpRequest) -> Result<(), HttpClientError> {
    let invalid = |why: String| HttpClientError::new(ErrorKind::InvalidRequest, why);
    if let Some(name) = &request.invalid_header {
        return Err(invalid(format!(
            "invalid header {name:?} (CR, LF or a bad name)"
        )));
    }
    if request.allow_nonstandard_methods {
        return Ok(());
    }
    if !STANDARD_METHODS.contains(&request.method.as_str()) {
        return Err(invalid(format!(
            "unknown method {} (set allow_nonstandard_methods)",
            request.method
        )));
    }
    let body_expected = matches!(request.method.as_str(), "POST" | "PATCH" | "PUT");
    let body_present = !matches!(request.body, RequestBody::Empty);
    if body_expected && !body_present {
        return Err(invalid(format!(
            "a body is required for {}",
            request.method
        )));
    }
    if body_present && !body_expected {
        return Err(invalid(format!(
            "a body is not allowed for {}",
            request.method
        )));
    }
    Ok(())
}

/// Sends `request` to `target` on `connection` and reads the response.
/// Returns it with whether the connection can be reused.
pub(crate) async fn exchange(
    connection: &Http1ClientConnection,
    target: &Target,
    request: &HttpRequest,
    time: &mut TimeInfo,
    started: Instant,
) -> Result<(RawResponse, ResponseOutcome), HttpClientError> {
    // Step 1. The head.
    let proxy = Proxy::of(request);
    let absolute_form = proxy.is_some() && !target.tls;
    let start_line = RequestStartLine {
        method: request.method.clone(),
        target: if absolute_form {
            // Without the fragment, and without credentials: those go in
            // `Authorization`, never on the request line.
            let mut url = target.url.clone();
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_fragment(None);
            url.to_string()
        } else {
            target.origin_form.clone()
        },
        version: Version::Http11,
    };
    let headers = request_headers(request, target, absolute_form.then_some(proxy).flatten())?;
    let write_error = |e: &dyn std::fmt::Display| {
        HttpClientError::new(
            ErrorKind::InvalidRequest,
            format!("the request cannot be sent: {e}"),
        )
    };
    // The head is queued; its bytes go out with the body's first write
    // (or when the response is awaited).
    drop(
        connection
            .write_headers(&start_line, &headers)
            .map_err(|e| write_error(&e))?,
    );

    // Step 2. The body — now, or once the server says 100 Continue.
    let collector = Rc::new(RefCell::new(Collector::new(request)));
    if request.expect_100_continue && !matches!(request.body, RequestBody::Empty) {
        collector.borrow_mut().held_body = Some((connection.clone(), request.body.clone()));
    } else {
        write_body(connection, &request.body).await?;
    }
    let written = Instant::now();
    time.pretransfer = written - started;

    // Step 3. The response.
    let mut delegate = CollectorHandle(collector.clone());
    let outcome = connection.read_response(&mut delegate).await;
    let mut collector = collector.borrow_mut();
    if let Some(error) = collector.error.take() {
        return Err(error);
    }
    let outcome = outcome.map_err(response_error)?;
    let mut raw = std::mem::take(&mut collector.response);
    raw.written = Some(written);
    Ok((raw, outcome))
}

/// The headers sent: the caller's, plus `Host`, `User-Agent`,
/// `Accept-Encoding`, auth, and the body's length or type.
fn request_headers(
    request: &HttpRequest,
    target: &Target,
    proxy: Option<Proxy>,
) -> Result<HttpHeaders, HttpClientError> {
    // Fields the request lacks are added (`add`: no second search).
    let mut headers = request.headers.clone();
    if !headers.contains("Host") {
        headers.add("Host", &target.host_header);
    }
    if !headers.contains("User-Agent") {
        let agent = request.user_agent.as_deref().unwrap_or(DEFAULT_USER_AGENT);
        headers.add("User-Agent", agent);
    }
    if request.decompress_response && !headers.contains("Accept-Encoding") {
        headers.add("Accept-Encoding", "gzip");
    }
    if let Some(user) = &request.auth_username {
        let password = request.auth_password.as_deref().unwrap_or("");
        headers.insert("Authorization", basic_auth(user, password));
    } else if !target.url.username().is_empty() || target.url.password().is_some() {
        // Credentials in the URL, as Tornado reads them (decoded).
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(target.url.username());
        let password = target.url.password().map(decode).unwrap_or_default();
        headers.insert("Authorization", basic_auth(&user, &password));
    }
    if let Some(authorization) = proxy.and_then(|p| p.authorization) {
        headers.insert("Proxy-Authorization", authorization);
    }
    if request.expect_100_continue && !matches!(request.body, RequestBody::Empty) {
        headers.insert("Expect", "100-continue");
    }
    match &request.body {
        RequestBody::Empty => {}
        RequestBody::Bytes(bytes) => {
            if !headers.contains("Content-Length") && !headers.contains("Transfer-Encoding") {
                headers.insert("Content-Length", bytes.len().to_string());
            }
        }
        RequestBody::Producer(_) => {}
        RequestBody::Multipart(form) => {
            let length = form.content_length().map_err(|e| {
                HttpClientError::new(ErrorKind::Body, format!("sizing the multipart body: {e}"))
            })?;
            headers.insert("Content-Type", form.content_type());
            headers.insert("Content-Length", length.to_string());
        }
    }
    Ok(headers)
}

/// Writes `body` and ends the request.
async fn write_body(
    connection: &Http1ClientConnection,
    body: &RequestBody,
) -> Result<(), HttpClientError> {
    let writer = BodyWriter::new(connection.clone());
    match body {
        RequestBody::Empty => {}
        RequestBody::Bytes(bytes) => writer.write(bytes.clone()).await?,
        RequestBody::Producer(producer) => producer(writer.clone()).await?,
        RequestBody::Multipart(form) => {
            for piece in form.stream() {
                let piece = piece.map_err(|e| {
                    HttpClientError::new(
                        ErrorKind::Body,
                        format!("reading the multipart body: {e}"),
                    )
                })?;
                writer.write(piece).await?;
            }
        }
    }
    let finished = connection.finish().map_err(|e| {
        HttpClientError::new(ErrorKind::Body, format!("ending the request body: {e}"))
    })?;
    finished.await.map_err(|e| {
        HttpClientError::new(
            ErrorKind::ConnectionClosed,
            format!("sending the request: {e}"),
        )
    })
}

/// A connection error while reading the response, in Tornado's terms.
fn response_error(e: HttpClientConnectionError) -> HttpClientError {
    let kind = match &e {
        HttpClientConnectionError::BodyTooLarge { .. } => ErrorKind::BodyTooLarge,
        HttpClientConnectionError::ClosedBeforeResponse(_)
        | HttpClientConnectionError::ClosedEarly(_)
        | HttpClientConnectionError::Stream(_) => ErrorKind::ConnectionClosed,
        _ => ErrorKind::MalformedResponse,
    };
    let message = match &e {
        HttpClientConnectionError::ClosedBeforeResponse(_) => {
            format!("Connection closed before a response ({e})")
        }
        other => other.to_string(),
    };
    HttpClientError::new(kind, message)
}

/// Whether `e` says the server dropped the connection before answering
/// (a stale pooled connection).
pub(crate) fn is_stale(e: &HttpClientError) -> bool {
    e.kind() == ErrorKind::ConnectionClosed
        && e.message()
            .starts_with("Connection closed before a response")
}

/// Collects a response: head, then the body buffered or streamed, gzip
/// decoded.
struct Collector {
    /// The response so far.
    response: RawResponse,
    /// Where body pieces go instead of the buffer.
    streaming: Option<crate::request::StreamingCallback>,
    /// Where head lines go.
    header_callback: Option<crate::request::HeaderCallback>,
    /// Whether to decode gzip.
    decompress: bool,
    /// Most body bytes (decoded).
    max_body_size: u64,
    /// The gzip decoder, when the body is gzip.
    gzip: Option<GzipDecompressor>,
    /// A failure found while collecting (ends the response).
    error: Option<HttpClientError>,
    /// A body held back for `100 Continue`: the connection and the body.
    held_body: Option<(Http1ClientConnection, RequestBody)>,
    /// Whether a redirect response would be followed (redirects are
    /// followed and some are left).
    follows_redirects: bool,
    /// The response is a redirect that will be followed: its head and body
    /// are not the caller's, and go to neither callback (Tornado's
    /// `_should_follow_redirect`).
    redirect: bool,
}

impl Collector {
    /// A collector for `request`'s response.
    fn new(request: &HttpRequest) -> Collector {
        Collector {
            response: RawResponse::default(),
            streaming: request.streaming_callback.clone(),
            header_callback: request.header_callback.clone(),
            decompress: request.decompress_response,
            max_body_size: request.max_body_size,
            gzip: None,
            error: None,
            held_body: None,
            follows_redirects: request.follow_redirects && request.max_redirects > 0,
            redirect: false,
        }
    }

    /// Hands decoded bytes on.
    fn deliver(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        match &self.streaming {
            Some(callback) => (callback.borrow_mut())(bytes),
            None => self.response.body.extend_from_slice(&bytes),
        }
    }
}

/// The delegate the connection feeds (a handle on the shared collector).
struct CollectorHandle(Rc<RefCell<Collector>>);

impl HttpMessageDelegate for CollectorHandle {
    fn headers_received(&mut self, start_line: StartLine, headers: HttpHeaders) -> Flow {
        let StartLine::Response(line) = start_line else {
            return None;
        };
        let mut c = self.0.borrow_mut();
        let followed = c.follows_redirects
            && matches!(line.code, 301 | 302 | 303 | 307 | 308)
            && headers.contains("Location");
        if let Some(callback) = c.header_callback.clone().filter(|_| !followed) {
            let mut callback = callback.borrow_mut();
            callback(&format!(
                "{} {} {}\r\n",
                line.version, line.code, line.reason
            ));
            for (name, value) in headers.iter() {
                callback(&format!("{name}: {value}\r\n"));
            }
            callback("\r\n");
        }
        if line.code == 100 {
            // Send the held body now.
            let held = c.held_body.take();
            drop(c);
            let collector = self.0.clone();
            return held.map(|(connection, body)| {
                Box::pin(async move {
                    if let Err(e) = write_body(&connection, &body).await {
                        collector.borrow_mut().error = Some(e);
                        connection.close();
                    }
                }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
            });
        }
        if (100..200).contains(&line.code) && line.code != 101 {
            return None;
        }
        c.response.code = line.code;
        c.response.reason = if line.reason.is_empty() {
            whirl_httpserver::reason_phrase(line.code).to_string()
        } else {
            line.reason.clone()
        };
        c.response.first_byte = Some(Instant::now());
        c.redirect = followed;
        let mut headers = headers.clone();
        let gzip = !followed
            && c.decompress
            && headers
                .get("Content-Encoding")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
        if gzip {
            // Tornado's `_GzipMessageDelegate` renames the header: the body
            // handed on is no longer encoded.
            if let Some(encoding) = headers.get("Content-Encoding").map(str::to_string) {
                headers.remove("Content-Encoding");
                headers.insert("X-Consumed-Content-Encoding", encoding);
            }
            c.gzip = Some(GzipDecompressor::new(c.max_body_size));
        }
        c.response.headers = headers;
        None
    }

    fn data_received(&mut self, chunk: Vec<u8>) -> Flow {
        let mut c = self.0.borrow_mut();
        if c.error.is_some() || c.redirect {
            return None;
        }
        let Some(mut gzip) = c.gzip.take() else {
            c.deliver(chunk);
            return None;
        };
        let mut input = &chunk[..];
        loop {
            match gzip.decompress(input, 64 * 1024) {
                Ok((out, used)) => {
                    input = &input[used..];
                    let done = out.is_empty() && used == 0;
                    c.deliver(out);
                    if done {
                        break;
                    }
                }
                Err(e) => {
                    let kind = if matches!(e, whirl_httpserver::GzipError::TooLarge { .. }) {
                        ErrorKind::BodyTooLarge
                    } else {
                        ErrorKind::MalformedResponse
                    };
                    c.error = Some(HttpClientError::new(
                        kind,
                        format!("decoding the gzip body: {e}"),
                    ));
                    return None;
                }
            }
        }
        c.gzip = Some(gzip);
        None
    }

    fn finish(&mut self) {
        let mut c = self.0.borrow_mut();
        if let Some(gzip) = c.gzip.take() {
            if let Err(e) = gzip.finish() {
                c.error = Some(HttpClientError::new(
                    ErrorKind::MalformedResponse,
                    format!("the gzip body is incomplete: {e}"),
                ));
            }
        }
    }

    fn on_connection_close(&mut self) {}
}
