//! [`Http1ClientConnection`]: the client role of one HTTP/1.x connection
//! over an [`IoStream`] — Tornado's `HTTP1Connection` with `is_client`, as
//! `simple_httpclient` drives it.
//!
//! The client writes a request ([`write_headers`], [`write`], [`finish`]),
//! then reads its response with [`read_response`], which hands the head,
//! the body in pieces and the end to a message delegate and says whether
//! the connection can carry another request. One request at a time: no
//! pipelining. Framing is shared with the server role: the same
//! [`Encoder`] frames the request body, the same [`Decoder`] reads the
//! response body, and [`response_framing`] decides which one applies.
//!
//! Deadlines are not kept here: the client wraps these futures in its own
//! `with_timeout` (connect, request and body timeouts are its settings, as
//! in Tornado's `simple_httpclient`).
//!
//! [`write_headers`]: Http1ClientConnection::write_headers
//! [`write`]: Http1ClientConnection::write
//! [`finish`]: Http1ClientConnection::finish
//! [`read_response`]: Http1ClientConnection::read_response

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use whirl_iostream::{
    spare_write_buffer, CloseReason, IoStream, StreamError, WriteBuf, WriteFuture,
};

use crate::body::{BodyError, Decoder, Encoder, Framing};
use crate::connection::{
    append_header_lines, HttpOutputError, DEFAULT_CHUNK_SIZE, DEFAULT_MAX_BODY_SIZE,
};
use crate::delegate::{HttpMessageDelegate, StartLine};
use crate::framing::{request_framing, response_framing, response_wants_keep_alive, FramingError};
use crate::head::{parse_response_head, HeadLimits, ParseError, ResponseHead};
use crate::headers::{is_valid_header_name, is_valid_header_value, HeaderError, HttpHeaders};
use crate::start_line::RequestStartLine;

/// Most 1xx responses read before the final one: 10 (Tornado's
/// `_MAX_1XX_RESPONSES`); one more fails the response.
pub const MAX_INFORMATIONAL_RESPONSES: usize = 10;

/// Settings of a client connection; the client's half of Tornado's
/// `HTTP1ConnectionParameters`. Timeouts are not among them: the client
/// applies its own deadlines around the connection's futures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http1ClientParams {
    /// Never reuse the connection: every response ends with it closed, and
    /// a request without a `Connection` header gets `Connection: close`.
    /// Tornado's `simple_httpclient` always works this way. Default is
    /// `false`.
    pub no_keep_alive: bool,
    /// Most bytes per `data_received` call. Default is 64 KiB.
    pub chunk_size: usize,
    /// Limits of the response head: `max_header_size` (the whole head) and
    /// `max_headers`; `max_request_line` does not apply. Tornado:
    /// `max_header_size`. Default is [`HeadLimits::default`] (64 KiB, 100
    /// fields).
    pub head_limits: HeadLimits,
    /// Most response body bytes: a longer declared length is refused before
    /// any of the body is read, a longer chunked or close-delimited body as
    /// soon as it passes the limit. Default is 100 MiB.
    pub max_body_size: u64,
}

impl Default for Http1ClientParams {
    fn default() -> Self {
        Http1ClientParams {
            no_keep_alive: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
            head_limits: HeadLimits::default(),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
        }
    }
}

/// How a response ended, and what the connection is good for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseOutcome {
    /// The response arrived whole and the connection can carry another
    /// request (write it with `write_headers`). Tornado's client never
    /// reuses connections; whirl's may pool this one.
    KeepAlive,
    /// The response arrived whole and the connection is now closed: the
    /// server or the request said `Connection: close`, the body ran until
    /// the server closed, the request was not finished, or `no_keep_alive`
    /// is set.
    Closed,
    /// `101 Switching Protocols`: the head was delivered and the stream now
    /// belongs to the caller (take it with
    /// [`stream`](Http1ClientConnection::stream) or
    /// [`into_stream`](Http1ClientConnection::into_stream)); it carries no
    /// more HTTP.
    Upgraded,
}

impl ResponseOutcome {
    /// Whether the connection can carry another request.
    pub fn is_reusable(self) -> bool {
        self == ResponseOutcome::KeepAlive
    }
}

/// Why a response could not be read. Every one of these closes the
/// connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HttpClientConnectionError {
    /// `read_response` before `write_headers`: no request awaits an answer.
    RequestNotWritten,
    /// The response head is malformed or over the limits.
    Head(ParseError),
    /// The response's framing headers contradict themselves or are invalid
    /// (`Transfer-Encoding` with `Content-Length`, two different lengths, a
    /// 1xx declaring a body).
    Framing(FramingError),
    /// More than [`MAX_INFORMATIONAL_RESPONSES`] 1xx responses.
    TooManyInformational,
    /// The body's chunked coding or trailers are malformed.
    Body(BodyError),
    /// The body is larger than `max_body_size`: `declared` by its
    /// `Content-Length` (refused before any of it was read), or `None` when
    /// a chunked or close-delimited body grew past the limit.
    BodyTooLarge {
        /// The declared length, if the response declared one.
        declared: Option<u64>,
        /// The limit.
        max: u64,
    },
    /// The connection closed before any byte of the response arrived — a
    /// server dropping an idle keep-alive connection looks like this; an
    /// idempotent request may be retried on a fresh connection.
    ClosedBeforeResponse(StreamError),
    /// The connection closed in the middle of the response: in its head, or
    /// in a `Content-Length` or chunked body (a body that runs until close
    /// ends at the server's close instead, successfully).
    ClosedEarly(StreamError),
    /// The stream failed otherwise (another read pending, buffer full).
    Stream(StreamError),
}

impl fmt::Display for HttpClientConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HttpClientConnectionError as E;
        match self {
            E::RequestNotWritten => f.write_str("no request was written to read a response to"),
            E::Head(e) => write!(f, "malformed response head: {e}"),
            E::Framing(e) => write!(f, "malformed response framing: {e}"),
            E::TooManyInformational => write!(
                f,
                "the server sent more than {MAX_INFORMATIONAL_RESPONSES} 1xx responses"
            ),
            E::Body(e) => write!(f, "malformed response body: {e}"),
            E::BodyTooLarge {
                declared: Some(length),
                max,
            } => write!(
                f,
                "the response body of {length} bytes is over the {max}-byte limit"
            ),
            E::BodyTooLarge {
                declared: None,
                max,
            } => {
                write!(f, "the response body grew past the {max}-byte limit")
            }
            E::ClosedBeforeResponse(e) => {
                write!(f, "the connection closed before the response began: {e}")
            }
            E::ClosedEarly(e) => write!(f, "the connection closed mid-response: {e}"),
            E::Stream(e) => write!(f, "the response could not be read: {e}"),
        }
    }
}

impl std::error::Error for HttpClientConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        use HttpClientConnectionError as E;
        match self {
            E::Head(e) => Some(e),
            E::Framing(e) => Some(e),
            E::Body(e) => Some(e),
            E::ClosedBeforeResponse(e) | E::ClosedEarly(e) | E::Stream(e) => Some(e),
            _ => None,
        }
    }
}

impl From<FramingError> for HttpClientConnectionError {
    fn from(e: FramingError) -> Self {
        match e {
            FramingError::TooLarge { length, max } => HttpClientConnectionError::BodyTooLarge {
                declared: Some(length),
                max,
            },
            e => HttpClientConnectionError::Framing(e),
        }
    }
}

/// The request on the connection, from `write_headers` until its response
/// was read and the connection is ready for the next one.
#[derive(Debug)]
struct Request {
    /// The request's method (a response to HEAD has no body).
    method: String,
    /// Whether the request said `Connection: close` (or `no_keep_alive` is
    /// on): the connection is not reused after the response.
    close: bool,
    /// Frames the request body; finished once `finish` was called.
    encoder: Encoder,
}

/// State shared by the handles of one connection.
struct Inner {
    /// The connection's stream.
    stream: IoStream,
    /// Settings.
    params: Http1ClientParams,
    /// The request under way; `None` before the first and after a response
    /// that left the connection reusable.
    request: RefCell<Option<Request>>,
}

/// One HTTP/1.x client connection: writes a request, reads its response.
/// A cheap handle: clones share the connection (a delegate holds one to
/// write a body held back for `Expect: 100-continue` when the `100` comes).
///
/// Tornado: `HTTP1Connection` with `is_client=True`. Use
/// [`write_headers`](Self::write_headers), [`write`](Self::write) and
/// [`finish`](Self::finish) for the request — in any order with
/// [`read_response`](Self::read_response), since a server may answer before
/// it has read the whole body — and, when the outcome is
/// [`ResponseOutcome::KeepAlive`], the next request on the same connection.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
///
/// use whirl_httpserver::{
///     Flow, Http1ClientConnection, Http1ClientParams, HttpHeaders, HttpMessageDelegate,
///     RequestStartLine, ResponseOutcome, StartLine, Version,
/// };
/// use whirl_ioloop::IoLoop;
/// use whirl_iostream::IoStream;
///
/// // A server that answers one request, from a plain thread.
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// std::thread::spawn(move || {
///     let (mut socket, _) = listener.accept().unwrap();
///     let mut request = Vec::new();
///     let mut buf = [0; 1024];
///     while !request.ends_with(b"\r\n\r\n") {
///         let n = socket.read(&mut buf).unwrap();
///         request.extend_from_slice(&buf[..n]);
///     }
///     socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
/// });
///
/// /// Keeps the body.
/// #[derive(Default)]
/// struct Body(Vec<u8>);
///
/// impl HttpMessageDelegate for Body {
///     fn headers_received(&mut self, _: StartLine, _: HttpHeaders) -> Flow {
///         None
///     }
///     fn data_received(&mut self, chunk: Vec<u8>) -> Flow {
///         self.0.extend_from_slice(&chunk);
///         None
///     }
///     fn finish(&mut self) {}
///     fn on_connection_close(&mut self) {}
/// }
///
/// IoLoop::new().run_sync(async move {
///     let stream = IoStream::connect(addr).await.unwrap();
///     let connection = Http1ClientConnection::new(stream, Http1ClientParams::default());
///     let request = RequestStartLine {
///         method: "GET".into(),
///         target: "/".into(),
///         version: Version::Http11,
///     };
///     let mut headers = HttpHeaders::new();
///     headers.add("Host", "example.com");
///     connection.write_headers(&request, &headers).unwrap();
///     connection.finish().unwrap();
///     let mut body = Body::default();
///     let outcome = connection.read_response(&mut body).await.unwrap();
///     assert_eq!(body.0, b"hello");
///     assert_eq!(outcome, ResponseOutcome::KeepAlive);
/// });
/// ```
#[derive(Clone)]
pub struct Http1ClientConnection {
    /// Shared state.
    inner: Rc<Inner>,
}

/// An error while reading a response, before it is classified.
enum ReadError {
    /// A malformed or oversized head.
    Head(ParseError),
    /// A malformed or oversized body.
    Body(BodyError),
    /// The stream failed or closed.
    Stream(StreamError),
}

impl From<StreamError> for ReadError {
    fn from(e: StreamError) -> Self {
        ReadError::Stream(e)
    }
}

/// Closes the stream if a `read_response` future is dropped before it
/// ended (a deadline passed): the response is half read, so the connection
/// can carry nothing more.
struct CloseOnDrop<'a> {
    /// The connection's stream.
    stream: &'a IoStream,
    /// False once `read_response` ended by itself.
    armed: bool,
}

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.stream.close();
        }
    }
}

impl Http1ClientConnection {
    /// A client connection over `stream` (connected, and through its TLS
    /// handshake if any), ready for a request.
    pub fn new(stream: IoStream, params: Http1ClientParams) -> Http1ClientConnection {
        // A server that closes an idle kept-alive connection closes the
        // stream at once, so a pool sees it gone before reusing it.
        stream.set_close_on_peer_shutdown(true);
        Http1ClientConnection {
            inner: Rc::new(Inner {
                stream,
                params,
                request: RefCell::new(None),
            }),
        }
    }

    /// The underlying stream. `IoStream` is a handle: clone it to keep it
    /// (after [`ResponseOutcome::Upgraded`], say).
    pub fn stream(&self) -> &IoStream {
        &self.inner.stream
    }

    /// This handle's stream, for a caller done with HTTP on it (Tornado:
    /// `detach`). Other handles of the connection still refer to the same
    /// stream.
    pub fn into_stream(self) -> IoStream {
        self.inner.stream.clone()
    }

    /// The connection's settings.
    pub fn params(&self) -> &Http1ClientParams {
        &self.inner.params
    }

    /// Whether `other` is a handle to the same connection.
    pub fn same_as(&self, other: &Http1ClientConnection) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Whether a request can be written now: the stream is open and no
    /// request is under way (a new connection, or one whose last response
    /// ended with [`ResponseOutcome::KeepAlive`]).
    pub fn is_ready(&self) -> bool {
        !self.inner.stream.closed() && self.inner.request.borrow().is_none()
    }

    /// Closes the connection now; queued writes are dropped. Tornado:
    /// `close`.
    pub fn close(&self) {
        self.inner.stream.close();
    }

    // ----- the request -------------------------------------------------------

    /// Writes the request line and headers, in one buffer. Tornado:
    /// `HTTP1Connection.write_headers` (client side).
    ///
    /// The request line is always `HTTP/1.1` (as in Tornado;
    /// `start_line.version` is not used). The body's framing follows from
    /// the headers: a `Content-Length` is honoured exactly; `Transfer-Encoding:
    /// chunked` sends chunks; with neither, a `POST`, `PUT` or `PATCH` is
    /// sent chunked (the header is added, Tornado's `_chunking_output`) and
    /// any other method has no body. With `no_keep_alive`, a request without
    /// a `Connection` header gets `Connection: close`. The method is
    /// remembered (a response to HEAD has no body), and so is a
    /// `Connection: close`.
    ///
    /// # Errors
    ///
    /// Nothing is sent on an error. [`HttpOutputError::Closed`];
    /// [`HttpOutputError::HeadersAlreadyWritten`] while a request is under
    /// way (or after [`ResponseOutcome::Upgraded`]);
    /// [`HttpOutputError::InvalidRequestLine`] for a method that is not a
    /// token or a target with a space, control or non-ASCII byte;
    /// [`HttpOutputError::InvalidHeader`] for a name or value that could
    /// inject bytes; [`HttpOutputError::InvalidContentLength`];
    /// [`HttpOutputError::InvalidFraming`] for `Transfer-Encoding` with
    /// `Content-Length` or a coding other than `chunked`.
    pub fn write_headers(
        &self,
        start_line: &RequestStartLine,
        headers: &HttpHeaders,
    ) -> Result<WriteFuture, HttpOutputError> {
        let mut request = self.inner.request.borrow_mut();
        let params = self.inner.params;

        // Step 1. An open connection with no request under way.
        if let Some(e) = self.inner.stream.error() {
            return Err(HttpOutputError::Closed(StreamError::Closed(e)));
        }
        if request.is_some() {
            return Err(HttpOutputError::HeadersAlreadyWritten);
        }

        // Step 2. Refuse anything that would put bytes on the wire the
        // caller did not mean: a request line or header with CR, LF, NUL…
        if !is_valid_header_name(&start_line.method) || !is_valid_target(&start_line.target) {
            return Err(HttpOutputError::InvalidRequestLine);
        }
        for (name, value) in headers.iter() {
            if !is_valid_header_name(name) {
                return Err(HttpOutputError::InvalidHeader(HeaderError::InvalidName));
            }
            if !is_valid_header_value(value) {
                return Err(HttpOutputError::InvalidHeader(HeaderError::InvalidValue));
            }
        }

        // Step 3. The body's framing, by the rules our own server reads
        // requests with.
        let framing = match request_framing(headers, u64::MAX) {
            Ok(framing) => framing,
            Err(FramingError::InvalidContentLength) => {
                return Err(HttpOutputError::InvalidContentLength)
            }
            Err(e) => return Err(HttpOutputError::InvalidFraming(e)),
        };
        let add_chunked = framing == Framing::Empty
            && !headers.contains("Content-Length")
            && matches!(start_line.method.as_str(), "POST" | "PUT" | "PATCH");
        let framing = if add_chunked {
            Framing::Chunked
        } else {
            framing
        };
        let says_close = headers
            .get_all("Connection")
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"));
        let add_close = params.no_keep_alive && !headers.contains("Connection");

        // Step 4. The request line, the caller's headers and ours, in one
        // buffer.
        let mut head = spare_write_buffer(
            start_line.method.len() + start_line.target.len() + 64 + headers.len() * 32,
        );
        head.extend_from_slice(start_line.method.as_bytes());
        head.push(b' ');
        head.extend_from_slice(start_line.target.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        append_header_lines(&mut head, headers);
        if add_chunked {
            head.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        if add_close {
            head.extend_from_slice(b"Connection: close\r\n");
        }
        head.extend_from_slice(b"\r\n");
        *request = Some(Request {
            method: start_line.method.clone(),
            close: says_close || params.no_keep_alive,
            encoder: Encoder::new(framing),
        });
        Ok(self.inner.stream.write(head))
    }

    /// Writes a piece of the request body, framed as the headers decided.
    /// Tornado: `HTTP1Connection.write`. Owned or static bytes, moved into
    /// the stream's queue without a copy (as [`Http1Connection::write`](crate::Http1Connection::write)).
    ///
    /// # Errors
    ///
    /// [`HttpOutputError::HeadersNotWritten`];
    /// [`HttpOutputError::AlreadyFinished`]; `Closed`;
    /// [`HttpOutputError::Framing`] if the piece goes past the declared
    /// `Content-Length`, or is not empty on a request without a body (the
    /// connection is aborted rather than send mis-framed bytes).
    pub fn write(&self, chunk: impl Into<WriteBuf>) -> Result<WriteFuture, HttpOutputError> {
        let chunk = chunk.into();
        let mut request = self.inner.request.borrow_mut();
        let Some(request_state) = request.as_mut() else {
            return Err(HttpOutputError::HeadersNotWritten);
        };
        if request_state.encoder.is_finished() {
            return Err(HttpOutputError::AlreadyFinished);
        }
        let stream = &self.inner.stream;
        if let Some(e) = stream.error() {
            return Err(HttpOutputError::Closed(StreamError::Closed(e)));
        }
        match request_state.encoder.frame(chunk.len()) {
            Ok((head, tail)) => {
                if !head.as_slice().is_empty() {
                    stream.write(head.as_slice().to_vec());
                }
                let written = stream.write(chunk);
                Ok(if tail.is_empty() {
                    written
                } else {
                    stream.write(tail)
                })
            }
            Err(e) => {
                drop(request);
                Err(self.abort(e))
            }
        }
    }

    /// Ends the request body (the last chunk, for a chunked one). Tornado:
    /// `HTTP1Connection.finish`.
    ///
    /// # Errors
    ///
    /// [`HttpOutputError::HeadersNotWritten`];
    /// [`HttpOutputError::AlreadyFinished`]; `Closed`;
    /// [`HttpOutputError::Framing`] if fewer bytes than the declared
    /// `Content-Length` were written (the connection is aborted).
    pub fn finish(&self) -> Result<WriteFuture, HttpOutputError> {
        let mut request = self.inner.request.borrow_mut();
        let Some(request_state) = request.as_mut() else {
            return Err(HttpOutputError::HeadersNotWritten);
        };
        if request_state.encoder.is_finished() {
            return Err(HttpOutputError::AlreadyFinished);
        }
        if let Some(e) = self.inner.stream.error() {
            return Err(HttpOutputError::Closed(StreamError::Closed(e)));
        }
        match request_state.encoder.finish() {
            Ok(last) => Ok(self.inner.stream.write(last)),
            Err(e) => {
                drop(request);
                Err(self.abort(e))
            }
        }
    }

    /// Aborts the connection for a framing error of the request.
    fn abort(&self, e: BodyError) -> HttpOutputError {
        log::warn!("aborting client connection: {e}");
        let reason = std::io::Error::other(e.to_string());
        self.inner.stream.close_with_reason(CloseReason::Io(reason));
        HttpOutputError::Framing(e)
    }

    // ----- the response ------------------------------------------------------

    /// Reads the response to the request written, handing it to `delegate`:
    /// `headers_received` for each head, `data_received` for each piece of
    /// the body (at most `chunk_size` bytes, its [`Flow`](crate::Flow)
    /// awaited before more is read), then exactly one of `finish` (the
    /// response arrived whole) or `on_connection_close` (it did not).
    /// Tornado: `HTTP1Connection.read_response`.
    ///
    /// 1xx responses before the final one are delivered to
    /// `headers_received` too, and their flow awaited before the next head
    /// is read: that is where a client that sent `Expect: 100-continue`
    /// writes the body it held back (through a clone of this connection).
    /// A `101 Switching Protocols` is delivered, followed by `finish`, and
    /// ends HTTP on the connection ([`ResponseOutcome::Upgraded`]).
    ///
    /// The body's framing is [`response_framing`]'s, decided before any of
    /// it is read. The connection stays open for another request
    /// ([`ResponseOutcome::KeepAlive`]) only if the response is HTTP/1.1
    /// without `Connection: close` (or HTTP/1.0 with
    /// `Connection: keep-alive`), its body was not delimited by the close,
    /// the request neither said `Connection: close` nor was sent with
    /// `no_keep_alive`, the request was finished, and the server sent
    /// nothing past the response (nor a body on a 204); otherwise it is
    /// closed ([`ResponseOutcome::Closed`]).
    ///
    /// If the future is dropped before it ends (the caller's deadline), the
    /// connection is closed and neither `finish` nor `on_connection_close`
    /// is called: the caller that dropped it reports the failure.
    ///
    /// # Errors
    ///
    /// A [`HttpClientConnectionError`]; the connection is then closed, and
    /// `delegate.on_connection_close()` was called.
    pub async fn read_response(
        &self,
        delegate: &mut dyn HttpMessageDelegate,
    ) -> Result<ResponseOutcome, HttpClientConnectionError> {
        let mut guard = CloseOnDrop {
            stream: &self.inner.stream,
            armed: true,
        };
        let result = self.read_message(delegate).await;
        guard.armed = false;
        match result {
            Ok(outcome) => {
                match outcome {
                    ResponseOutcome::KeepAlive => *self.inner.request.borrow_mut() = None,
                    ResponseOutcome::Closed => self.inner.stream.close(),
                    ResponseOutcome::Upgraded => {}
                }
                delegate.finish();
                Ok(outcome)
            }
            Err(e) => {
                log::debug!("closing a client connection: {e}");
                self.inner.stream.close();
                delegate.on_connection_close();
                Err(e)
            }
        }
    }

    /// Reads the heads and the body; decides what the connection is good
    /// for next. Calls neither `finish` nor `on_connection_close`.
    async fn read_message(
        &self,
        delegate: &mut dyn HttpMessageDelegate,
    ) -> Result<ResponseOutcome, HttpClientConnectionError> {
        let params = self.inner.params;
        let stream = &self.inner.stream;

        // Step 1. Whose response: the request's method and whether it said
        // close.
        let (method, request_close) = match &*self.inner.request.borrow() {
            Some(request) => (request.method.clone(), request.close),
            None => return Err(HttpClientConnectionError::RequestNotWritten),
        };

        // Step 2. The heads: each 1xx but 101 is delivered (its flow
        // awaited) and followed by another head; the rest is final.
        let mut informational = 0;
        let head = loop {
            let head = self.read_head(informational == 0).await?;
            let code = head.start_line.code;
            if !(100..200).contains(&code) || code == 101 {
                break head;
            }
            response_framing(code, &method, &head.headers, params.max_body_size)?;
            informational += 1;
            if informational > MAX_INFORMATIONAL_RESPONSES {
                return Err(HttpClientConnectionError::TooManyInformational);
            }
            let start_line = StartLine::Response(head.start_line);
            if let Some(flow) = delegate.headers_received(start_line, head.headers) {
                flow.await;
            }
        };

        // Step 3. The final head's framing, refused before any of the body
        // is read; then the head goes to the delegate.
        let code = head.start_line.code;
        let framing = response_framing(code, &method, &head.headers, params.max_body_size)?;
        // A 204 that declares a body may be followed by one we do not read.
        let body_on_204 = code == 204
            && (head.headers.contains("Transfer-Encoding")
                || head
                    .headers
                    .get_all("Content-Length")
                    .any(|v| v.trim() != "0"));
        let head_allows_reuse = response_wants_keep_alive(&head.start_line, &head.headers)
            && !request_close
            && !params.no_keep_alive
            && framing != Framing::CloseDelimited
            && !body_on_204;
        let start_line = StartLine::Response(head.start_line);
        if let Some(flow) = delegate.headers_received(start_line, head.headers) {
            flow.await;
        }
        if code == 101 {
            return Ok(ResponseOutcome::Upgraded);
        }

        // Step 4. The body, piece by piece.
        self.read_body(framing, delegate).await?;

        // Step 5. Another request only on a clean connection whose request
        // was sent whole.
        let finished = self
            .inner
            .request
            .borrow()
            .as_ref()
            .is_some_and(|request| request.encoder.is_finished());
        let reusable = head_allows_reuse && finished && !stream.closed() && stream.buffered() == 0;
        Ok(if reusable {
            ResponseOutcome::KeepAlive
        } else {
            ResponseOutcome::Closed
        })
    }

    /// Reads one response head. `first`: no head of this response came yet,
    /// so a close with nothing buffered is [`ClosedBeforeResponse`].
    ///
    /// [`ClosedBeforeResponse`]: HttpClientConnectionError::ClosedBeforeResponse
    async fn read_head(&self, first: bool) -> Result<ResponseHead, HttpClientConnectionError> {
        let limits = self.inner.params.head_limits;
        let stream = &self.inner.stream;
        let read =
            stream.read_parsed(|buf| parse_response_head(buf, &limits).map_err(ReadError::Head));
        match read.await {
            Ok(head) => Ok(head),
            Err(ReadError::Stream(e @ StreamError::Closed(_)))
                if first && stream.buffered() == 0 =>
            {
                Err(HttpClientConnectionError::ClosedBeforeResponse(e))
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// Reads the body, handing it to `delegate` in `chunk_size` pieces. A
    /// close-delimited body ends, successfully, at the server's close.
    async fn read_body(
        &self,
        framing: Framing,
        delegate: &mut dyn HttpMessageDelegate,
    ) -> Result<(), HttpClientConnectionError> {
        let params = self.inner.params;
        let chunk_size = params.chunk_size.max(1);
        let mut decoder = Decoder::new(framing, params.max_body_size);
        while !decoder.is_done() {
            let piece = self
                .inner
                .stream
                .read_parsed(|buf| -> Result<_, ReadError> {
                    let window = &buf[..buf.len().min(chunk_size)];
                    let step = decoder.decode(window).map_err(ReadError::Body)?;
                    if step.consumed == 0 && !step.done {
                        return Ok(None);
                    }
                    Ok(Some((window[step.data].to_vec(), step.consumed)))
                })
                .await;
            let piece = match piece {
                Ok(piece) => piece,
                Err(ReadError::Stream(StreamError::Closed(closed)))
                    if matches!(closed.reason(), CloseReason::Eof) && decoder.finish_on_eof() =>
                {
                    return Ok(());
                }
                Err(e) => return Err(classify(e)),
            };
            if !piece.is_empty() {
                if let Some(flow) = delegate.data_received(piece) {
                    flow.await;
                }
            }
        }
        Ok(())
    }
}

/// The public error for a read error in the middle of a response.
fn classify(e: ReadError) -> HttpClientConnectionError {
    match e {
        ReadError::Head(e) => HttpClientConnectionError::Head(e),
        ReadError::Body(BodyError::TooLarge { max }) => HttpClientConnectionError::BodyTooLarge {
            declared: None,
            max,
        },
        ReadError::Body(e) => HttpClientConnectionError::Body(e),
        ReadError::Stream(e @ StreamError::Closed(_)) => HttpClientConnectionError::ClosedEarly(e),
        ReadError::Stream(e) => HttpClientConnectionError::Stream(e),
    }
}

/// Whether `target` may go on a request line as is: visible ASCII only (no
/// space, control or non-ASCII byte; those must be percent-encoded).
fn is_valid_target(target: &str) -> bool {
    !target.is_empty() && target.bytes().all(|b| (0x21..0x7f).contains(&b))
}

impl fmt::Debug for Http1ClientConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http1ClientConnection")
            .field("stream", &self.inner.stream)
            .field("params", &self.inner.params)
            .field("request", &self.inner.request.borrow())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        for ok in ["/", "*", "/a?b=c%20d", "http://x.test:80/p#f", "~!$&'()"] {
            assert!(is_valid_target(ok), "{ok:?}");
        }
        for bad in [
            "",
            "/a b",
            "/a\r\nX: 1",
            "/\0",
            "/\t",
            "/caf\u{e9}",
            "/\x7f",
        ] {
            assert!(!is_valid_target(bad), "{bad:?}");
        }
    }

    #[test]
    fn framing_errors_become_client_errors() {
        assert!(matches!(
            HttpClientConnectionError::from(FramingError::TooLarge { length: 9, max: 8 }),
            HttpClientConnectionError::BodyTooLarge {
                declared: Some(9),
                max: 8
            }
        ));
        assert!(matches!(
            classify(ReadError::Body(BodyError::TooLarge { max: 8 })),
            HttpClientConnectionError::BodyTooLarge {
                declared: None,
                max: 8
            }
        ));
        assert!(matches!(
            HttpClientConnectionError::from(FramingError::TransferEncodingWithLength),
            HttpClientConnectionError::Framing(FramingError::TransferEncodingWithLength)
        ));
        assert!(ResponseOutcome::KeepAlive.is_reusable());
        assert!(!ResponseOutcome::Closed.is_reusable() && !ResponseOutcome::Upgraded.is_reusable());
    }
}
