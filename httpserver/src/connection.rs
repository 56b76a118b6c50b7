//! [`Http1Connection`]: one HTTP/1.x connection over an [`IoStream`] —
//! Tornado's `HTTP1Connection`, server role.
//!
//! The read side is one task ([`Http1Connection::serve`]) that reads a
//! request head, hands it to a message delegate, streams the body to it, and
//! waits for the response before reading the next request (so pipelined
//! requests are answered in order). The write side is called by whoever
//! answers: [`write_headers`](Http1Connection::write_headers),
//! [`write`](Http1Connection::write), [`finish`](Http1Connection::finish).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use whirl_ioloop::locks::Event;
use whirl_ioloop::{sleep_until, with_timeout, Sleep};
use whirl_iostream::{
    spare_write_buffer, CloseReason, IoStream, StreamError, WriteBuf, WriteFuture,
};

use crate::body::{BodyError, Decoder, Encoder, Framing};
use crate::date::append_date_header;
use crate::delegate::{HttpMessageDelegate, HttpServerConnectionDelegate, StartLine};
use crate::framing::{
    content_length, request_framing, response_has_no_body, wants_keep_alive, FramingError,
};
use crate::head::{parse_request_head, HeadLimits, ParseError};
use crate::headers::{
    is_valid_header_name, is_valid_header_value, Decimal, HeaderError, HttpHeaders,
};
use crate::start_line::{reason_phrase, ResponseStartLine, Version};
use crate::xheaders::RequestContext;

/// Default body piece handed to `data_received`: 64 KiB (Tornado's `chunk_size`).
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;
/// Default most body bytes: 100 MiB → 413 (Tornado's `max_body_size`).
pub const DEFAULT_MAX_BODY_SIZE: u64 = 100 * 1024 * 1024;
/// Default deadline for a whole request head, from the first byte waited for:
/// 30 s (hyper's; Tornado's 3600 s lets slowloris win).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default wait for the next request on a keep-alive connection: 75 s.
pub const DEFAULT_IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(75);
/// Default longest silence inside a request body: 60 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest body [`Http1Connection::respond`] copies into the head's buffer
/// (so head and body leave as one buffer) rather than queueing on its own.
const BODY_WITH_HEAD: usize = 1024;
/// Default most requests served on one connection: 1,000.
pub const DEFAULT_MAX_REQUESTS: usize = 1000;
/// Default wait for the next request after which an
/// [`HttpServer`](crate::HttpServer) connection is made dormant: 50 ms.
pub const DEFAULT_DORMANT_AFTER: Duration = Duration::from_millis(50);
/// Output queued for a connection above which it reads no further request
/// until the client has read: 1 MiB.
pub const WRITE_HIGH_WATER: usize = 1024 * 1024;

/// Settings of a connection; Tornado's `HTTP1ConnectionParameters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http1ConnectionParams {
    /// Close after every response. Default is `false`.
    pub no_keep_alive: bool,
    /// Most bytes per `data_received` call. Default is 64 KiB.
    pub chunk_size: usize,
    /// Limits of the request head. Default is [`HeadLimits::default`].
    pub head_limits: HeadLimits,
    /// Most body bytes (413 past it). Default is 100 MiB.
    pub max_body_size: u64,
    /// Deadline for a request head. Default is 30 s.
    pub header_timeout: Duration,
    /// Wait for the next request on a kept-alive connection. Default is 75 s.
    pub idle_connection_timeout: Duration,
    /// Longest silence inside a body. Default is 60 s.
    pub body_timeout: Duration,
    /// Most requests on one connection. Default is 1,000.
    pub max_requests: usize,
    /// How long a kept-alive connection of an
    /// [`HttpServer`](crate::HttpServer) waits for its next request before
    /// it is made dormant: its buffers, state and task are freed and only
    /// the socket is kept, with a small record, until the client sends
    /// again, leaves, or the idle timeout passes. An idle connection then
    /// costs about 0.4 KiB instead of 1.7 KiB; waking costs a few
    /// allocations (about 2 µs of CPU measured), paid by clients that pause
    /// longer than this between requests. A connection whose client comes
    /// back within four times its threshold after it fell asleep waits
    /// twice as long before its next sleep (up to 64 times this), so a
    /// client that pauses regularly stops paying for it after a wake or
    /// two. Raise it (or set `None`) when CPU matters more than memory. Only a
    /// connection nobody else holds a handle to is made dormant, and only
    /// when `idle_connection_timeout` is at least twice this (the timeout
    /// of a dormant connection is checked on a coarser clock: up to 1/16 of
    /// it, at most 1 s, late). `None`: never. Connections served with
    /// [`Http1Connection::serve`] directly are never made dormant. Default
    /// is [`DEFAULT_DORMANT_AFTER`].
    pub dormant_after: Option<Duration>,
}

impl Default for Http1ConnectionParams {
    fn default() -> Self {
        Http1ConnectionParams {
            no_keep_alive: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
            head_limits: HeadLimits::default(),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_connection_timeout: DEFAULT_IDLE_CONNECTION_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_requests: DEFAULT_MAX_REQUESTS,
            dormant_after: Some(DEFAULT_DORMANT_AFTER),
        }
    }
}

/// Why writing a message failed: a server's response, or a client's request
/// ([`Http1ClientConnection`](crate::Http1ClientConnection)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HttpOutputError {
    /// `write_headers` was already called for this message.
    HeadersAlreadyWritten,
    /// `write` or `finish` before `write_headers`.
    HeadersNotWritten,
    /// The headers hold an invalid `Content-Length`.
    InvalidContentLength,
    /// More or fewer bytes than the declared `Content-Length` (or body bytes
    /// on a request that has none); the connection was aborted rather than
    /// send mis-framed bytes.
    Framing(BodyError),
    /// The connection is closed.
    Closed(StreamError),
    /// A request header name that is not a token, or a value with a control
    /// character (CR, LF, NUL…); nothing was sent.
    InvalidHeader(HeaderError),
    /// A request method that is not a token, or a target with a space, a
    /// control or a non-ASCII byte; nothing was sent.
    InvalidRequestLine,
    /// Request headers whose framing contradicts itself or that we cannot
    /// produce (`Transfer-Encoding` with `Content-Length`, a coding other
    /// than `chunked`); nothing was sent.
    InvalidFraming(FramingError),
    /// `write` or `finish` after the message was finished.
    AlreadyFinished,
    /// [`Http1Connection::respond`] was given a `Content-Length` or
    /// `Transfer-Encoding`: it frames the body itself; nothing was sent.
    FramedByConnection,
}

impl fmt::Display for HttpOutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpOutputError::HeadersAlreadyWritten => {
                f.write_str("the message headers were already written")
            }
            HttpOutputError::HeadersNotWritten => {
                f.write_str("the message headers were not written yet")
            }
            HttpOutputError::InvalidContentLength => {
                f.write_str("the message Content-Length is invalid")
            }
            HttpOutputError::Framing(e) => write!(f, "the connection was aborted: {e}"),
            HttpOutputError::Closed(e) => write!(f, "the connection is closed: {e}"),
            HttpOutputError::InvalidHeader(e) => write!(f, "the header was not sent: {e}"),
            HttpOutputError::InvalidRequestLine => {
                f.write_str("the request method or target holds a forbidden character")
            }
            HttpOutputError::InvalidFraming(e) => {
                write!(f, "the request headers frame no body we can send: {e}")
            }
            HttpOutputError::AlreadyFinished => f.write_str("the message was already finished"),
            HttpOutputError::FramedByConnection => f.write_str(
                "respond() sets Content-Length itself: none may be given, nor Transfer-Encoding",
            ),
        }
    }
}

impl std::error::Error for HttpOutputError {}

/// Where the response to the current request stands.
#[derive(Debug)]
struct Response {
    /// Whether the request is a HEAD (its response carries no body).
    is_head: bool,
    /// The request's method (for the access log; empty when it is off).
    method: String,
    /// The request's version (decides chunked vs close-delimited).
    version: Version,
    /// Whether the client and our settings allow keeping the connection.
    keep_alive: bool,
    /// The body framing, once headers were written.
    encoder: Option<Encoder>,
    /// Whether the response carries no body (HEAD, 1xx, 204, 304): writes
    /// are dropped.
    no_body: bool,
    /// Whether `finish` was called.
    finished: bool,
    /// Whether the connection closes after this response.
    close_after: bool,
    /// The request target (for the access log).
    target: String,
    /// The response status (for the access log).
    code: u16,
    /// When the loop picked up the request's head, by its clock
    /// (`whirl_ioloop::loop_time`: no clock read of its own; the request's
    /// own `start_time` is this too, see `Http1Connection::request_start_time`).
    started: Instant,
}

impl Response {
    /// Back to the state before any request, keeping the access log's
    /// buffers (so copying the method and target costs no allocation).
    fn reset(&mut self) {
        let (mut method, mut target) = (
            std::mem::take(&mut self.method),
            std::mem::take(&mut self.target),
        );
        method.clear();
        target.clear();
        if target.capacity() > 256 {
            // A long target once need not be held by an idle connection.
            target = String::new();
        }
        *self = Response {
            method,
            target,
            ..Response::idle()
        };
    }

    /// The state before any request.
    fn idle() -> Response {
        Response {
            is_head: false,
            method: String::new(),
            version: Version::Http11,
            keep_alive: false,
            encoder: None,
            no_body: false,
            finished: false,
            close_after: false,
            target: String::new(),
            code: 0,
            // The loop's clock as it picked the head up (read when its
            // iteration began or its poll returned): a request costs no
            // clock read of its own.
            started: whirl_ioloop::loop_time(),
        }
    }
}

/// State shared by the read task and the responders.
struct Inner {
    /// The connection's stream.
    stream: IoStream,
    /// Settings, shared by the connections of one server.
    params: Rc<Http1ConnectionParams>,
    /// The current response.
    response: RefCell<Response>,
    /// Set when the current response finished (or the stream closed).
    response_done: DoneFlag,
    /// Responses finished on this connection so far.
    responses_finished: Cell<u64>,
    /// Set once the stream closed; made only when someone waits for that
    /// (an idle connection is smaller without it).
    closed: RefCell<Option<Event>>,
    /// True from a request's head until its response finished.
    in_request: Cell<bool>,
    /// True once asked to close after the request in flight.
    closing: Cell<bool>,
    /// The body limit of the request in flight, when a delegate changed
    /// it (reset at each request).
    max_body_size: Cell<Option<u64>>,
    /// The client's address, when known.
    remote_addr: Option<SocketAddr>,
    /// Whether the connection is TLS (requests say `https`).
    secure: bool,
    /// Where the request in flight came from, as the server believes it:
    /// the peer, or what a proxy reported (set by the xheaders wrapper).
    context: Cell<RequestContext>,
    /// The most verbose level the access log (`whirl::access`) had enabled
    /// when the connection opened; `None` when it was off. Read once per
    /// connection: asking the logger costs as much as a small request.
    access_level: Option<log::Level>,
}

/// One HTTP/1.x server connection; a cheap handle (clones share it).
///
/// Tornado: `HTTP1Connection` (server side). Use [`Http1Connection::serve`]
/// to run it; message delegates answer through `write_headers`, `write` and
/// `finish`.
#[derive(Clone)]
pub struct Http1Connection {
    /// Shared state.
    inner: Rc<Inner>,
}

/// Where a connection made dormant left off, to serve it again from there.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Resume {
    /// The deadline of the wait for the next request (`None`: none).
    pub(crate) deadline: Option<Instant>,
    /// Requests served so far (`max_requests` counts them all; a dormant
    /// record is smaller with 32 bits, and `max_requests` beyond them
    /// saturates).
    pub(crate) served: u32,
    /// How many times this connection's `dormant_after` was doubled: each
    /// time its client came back soon after it fell asleep (see
    /// [`Resume::woken_by_client`]).
    pub(crate) doublings: u8,
}

/// Most doublings of a connection's `dormant_after` (×64: 3.2 s from the
/// default 50 ms).
const MAX_DOUBLINGS: u8 = 6;

impl Resume {
    /// This connection's `dormant_after`: the setting, doubled as often as
    /// its client came back soon after a sleep.
    fn dormant_after(&self, params: &Http1ConnectionParams) -> Option<Duration> {
        let after = params.dormant_after?;
        Some(after.saturating_mul(1 << self.doublings.min(MAX_DOUBLINGS)))
    }

    /// Notes that the client sent again (or left) at `now`, after sleeping
    /// since it was quiet for this connection's `dormant_after`. A client
    /// that came back within four times that is one that pauses, not one
    /// that left: waking it costs more CPU (a few allocations) than its
    /// memory is worth, so it waits twice as long before its next sleep.
    pub(crate) fn woken_by_client(&mut self, params: &Http1ConnectionParams, now: Instant) {
        let (Some(deadline), Some(after)) = (self.deadline, self.dormant_after(params)) else {
            return;
        };
        let Some(waiting_since) = deadline.checked_sub(params.idle_connection_timeout) else {
            return;
        };
        if now.saturating_duration_since(waiting_since) < after.saturating_mul(4) {
            self.doublings = (self.doublings + 1).min(MAX_DOUBLINGS);
        }
    }
}

/// How a wait for the next request ended.
enum Waited {
    /// Bytes of it arrived.
    Request,
    /// The connection is to end.
    End,
    /// Nothing arrived for `dormant_after`: the connection may sleep, its
    /// wait ending at the deadline given.
    Quiet(Option<Instant>),
}

/// An error while reading a request.
enum ReadError {
    /// A malformed or oversized head.
    Head(ParseError),
    /// A malformed or oversized body.
    Body(BodyError),
    /// The stream failed or closed.
    Stream(StreamError),
    /// The head did not arrive before its deadline.
    TimedOut,
}

impl From<StreamError> for ReadError {
    fn from(e: StreamError) -> Self {
        ReadError::Stream(e)
    }
}

impl Http1Connection {
    /// A connection over `stream` (not yet serving), from the client at
    /// `remote_addr` (when known), over TLS if `secure`. The settings may
    /// come in an `Rc` that many connections share (as `HttpServer`'s do:
    /// an idle connection is smaller by their ~100 bytes).
    pub fn new(
        stream: IoStream,
        params: impl Into<Rc<Http1ConnectionParams>>,
        remote_addr: Option<SocketAddr>,
        secure: bool,
    ) -> Http1Connection {
        // A client that shuts down its side has left (Tornado, nginx): its
        // handler hears of it even while no read is pending.
        stream.set_close_on_peer_shutdown(true);
        Http1Connection {
            inner: Rc::new_cyclic(|weak: &Weak<Inner>| {
                let weak = weak.clone();
                stream.set_close_callback(move || {
                    // Nobody waits on a connection already let go of.
                    let Some(inner) = weak.upgrade() else {
                        return;
                    };
                    inner.response_done.set();
                    let closed = inner.closed.borrow().clone();
                    if let Some(closed) = closed {
                        closed.set();
                    }
                });
                Inner {
                    stream,
                    params: params.into(),
                    response: RefCell::new(Response::idle()),
                    response_done: DoneFlag::default(),
                    responses_finished: Cell::new(0),
                    closed: RefCell::new(None),
                    in_request: Cell::new(false),
                    closing: Cell::new(false),
                    max_body_size: Cell::new(None),
                    remote_addr,
                    secure,
                    context: Cell::new(RequestContext::new(remote_addr.map(|a| a.ip()), secure)),
                    access_level: access_log_level(),
                }
            }),
        }
    }

    /// The client's address, when known.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr
    }

    /// Whether the connection is TLS.
    pub fn is_secure(&self) -> bool {
        self.inner.secure
    }

    /// Where the request in flight came from: the peer's address and
    /// `http`/`https`, or — when the server has `xheaders` on — what a proxy
    /// reported. Build requests from this, not from
    /// [`remote_addr`](Self::remote_addr). Tornado:
    /// `request.connection.context`.
    pub fn context(&self) -> RequestContext {
        self.inner.context.get()
    }

    /// When the loop picked up the head of the request in flight (or the
    /// last one): the loop's clock ([`whirl_ioloop::loop_time`]) in the
    /// iteration that read it, so it costs no clock read. What the access
    /// log counts its time from, and what a delegate gives
    /// [`HttpServerRequest::from_head_at`](crate::HttpServerRequest::from_head_at) as the request's
    /// [`start_time`](crate::HttpServerRequest::start_time).
    pub fn request_start_time(&self) -> Instant {
        self.inner.response.borrow().started
    }

    /// Replaces the request context (the xheaders wrapper does, per
    /// request); the access log reports its address.
    pub fn set_context(&self, context: RequestContext) {
        self.inner.context.set(context);
    }

    /// Sets the most body bytes the request in flight may send, instead of
    /// the `max_body_size` setting (a handler that streams uploads raises
    /// it; 413 past it). Takes effect when called from the message
    /// delegate's `headers_received` (or the flow it returns), before the
    /// body is read; the next request starts from the setting again.
    /// Tornado: `HTTP1Connection.set_max_body_size`.
    pub fn set_max_body_size(&self, max: u64) {
        self.inner.max_body_size.set(Some(max));
    }

    /// The most body bytes the request in flight may send: the value set
    /// with [`set_max_body_size`](Self::set_max_body_size), else the
    /// setting.
    pub fn max_body_size(&self) -> u64 {
        self.inner
            .max_body_size
            .get()
            .unwrap_or(self.inner.params.max_body_size)
    }

    /// Whether `other` is a handle to the same connection.
    pub fn same_as(&self, other: &Http1Connection) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Waits until the connection is closed (by either side). Tornado:
    /// `set_close_callback`, as a future.
    pub async fn closed(&self) {
        if self.inner.stream.closed() {
            return;
        }
        let closed = self
            .inner
            .closed
            .borrow_mut()
            .get_or_insert_with(Event::new)
            .clone();
        closed.wait().await;
    }

    /// Whether a request is in flight: its head was read and its response
    /// is not finished yet.
    pub fn in_request(&self) -> bool {
        self.inner.in_request.get()
    }

    /// How many responses this connection has finished. Responses finish in
    /// the order of their requests, so a handler that goes on after
    /// answering (its response finished, the next request perhaps under
    /// way) can tell whether its own response finished: the count passed
    /// the one it read while its response was still open.
    pub fn responses_finished(&self) -> u64 {
        self.inner.responses_finished.get()
    }

    /// Records that the current response finished (and logs it).
    fn mark_finished(&self, response: &mut Response) {
        response.finished = true;
        let finished = &self.inner.responses_finished;
        finished.set(finished.get() + 1);
        self.log_access(response);
    }

    /// Closes the connection once the request in flight (if any) has been
    /// answered, and waits until it is closed. Used for graceful shutdown.
    pub async fn close_when_idle(&self) {
        self.inner.closing.set(true);
        if !self.inner.in_request.get() {
            self.close_when_flushed().await;
        }
        self.closed().await;
    }

    /// The stream, with the connection's state freed; the connection back
    /// if another handle to it exists.
    pub(crate) fn into_stream(self) -> Result<IoStream, Http1Connection> {
        match Rc::try_unwrap(self.inner) {
            Ok(inner) => Ok(inner.stream),
            Err(inner) => Err(Http1Connection { inner }),
        }
    }

    /// The underlying stream.
    pub fn stream(&self) -> &IoStream {
        &self.inner.stream
    }

    /// The connection's settings.
    pub fn params(&self) -> &Http1ConnectionParams {
        &self.inner.params
    }

    /// Serves requests until the connection closes: for each, a message
    /// delegate from `delegate`, the head, the body in `chunk_size` pieces,
    /// then the response awaited before the next request.
    ///
    /// Malformed requests are answered with a bare status (400, 413, 414, 431,
    /// 501, 505) and the connection is closed; timeouts close it silently.
    pub async fn serve(self, delegate: Rc<dyn HttpServerConnectionDelegate>) {
        self.serve_from(&delegate, None, false).await;
    }

    /// Serves as [`serve`](Self::serve) does, from where a dormant
    /// connection left off (`resume`: its count of requests, and the
    /// deadline of the wait for its next one). With `may_sleep`, returns the
    /// connection's place instead of going on waiting once it has waited
    /// `dormant_after` for a request, when nobody but the caller and one
    /// other (the server's list) holds it: the caller then makes it
    /// dormant. `None` once the connection ended (closed, the delegate told).
    pub(crate) async fn serve_from(
        &self,
        delegate: &Rc<dyn HttpServerConnectionDelegate>,
        resume: Option<Resume>,
        may_sleep: bool,
    ) -> Option<Resume> {
        let resume = resume.unwrap_or_default();
        let (mut served, mut deadline) = (resume.served as usize, resume.deadline);
        let sleep_after = resume.dormant_after(&self.inner.params).filter(|after| {
            may_sleep && self.inner.params.idle_connection_timeout >= after.saturating_mul(2)
        });
        let mut idle_timer = None;
        // Between requests this future holds only the wait; the request's
        // own, larger state lives in a box while it is served, so an idle
        // connection costs little memory. The box is kept for the next
        // request when that one is buffered already (pipelined), freed
        // before a wait.
        let mut request = None;
        loop {
            if served > 0 {
                if self.inner.stream.buffered() == 0 {
                    request = None;
                }
                let waited = self
                    .wait_for_request(&mut idle_timer, deadline.take(), sleep_after)
                    .await;
                match waited {
                    Waited::Request => {}
                    Waited::End => break,
                    Waited::Quiet(deadline) => {
                        let served = u32::try_from(served).unwrap_or(u32::MAX);
                        return Some(Resume {
                            deadline,
                            served,
                            ..resume
                        });
                    }
                }
            }
            let slot = request.get_or_insert_with(|| Box::pin(None));
            slot.set(Some(self.serve_one(&**delegate, served)));
            let go_on = match slot.as_mut().as_pin_mut() {
                Some(serving) => serving.await,
                None => false,
            };
            slot.set(None);
            if !go_on {
                break;
            }
            served += 1;
        }
        drop((idle_timer, request));
        delegate.on_close(self);
        self.close_when_flushed().await;
        None
    }

    /// Waits for the next request on a kept-alive connection, first letting
    /// a client that does not read its answers catch up, until `deadline`
    /// (`None`: the idle timeout from now). `End` when the connection is to
    /// end (closing, the idle timeout, the peer left); `Quiet` when
    /// `sleep_after` (if any) passed with nothing to read and nobody else
    /// holding the connection.
    async fn wait_for_request(
        &self,
        idle_timer: &mut Option<Sleep>,
        deadline: Option<Instant>,
        sleep_after: Option<Duration>,
    ) -> Waited {
        let stream = &self.inner.stream;
        if self.inner.closing.get() {
            return Waited::End;
        }
        if stream.write_buffer_size() > WRITE_HIGH_WATER {
            let _ = stream.write(Vec::new()).await;
        }
        let any_byte =
            |buf: &[u8]| -> Result<_, StreamError> { Ok((!buf.is_empty()).then_some(((), 0))) };
        if stream.try_read_parsed(any_byte).is_some() {
            return Waited::Request; // pipelined: the next request is here already
        }
        let params = &self.inner.params;
        // A clock read of our own, not the loop's cached one: when a put to
        // sleep fails, the retry must wait a real `dormant_after` (the
        // loop's clock does not move while this task runs, and a handler
        // that blocked the loop leaves it far behind).
        let now = Instant::now();
        let deadline = deadline.or_else(|| now.checked_add(params.idle_connection_timeout));
        // Pinned here and lent: the read's state is held once by this
        // future, not again by `wait_until`'s (an idle connection is mostly
        // this wait).
        let mut read = std::pin::pin!(stream.read_parsed(any_byte));
        // Asleep once quiet for `dormant_after`, if held by the caller
        // (`serve_from`'s) and the server's list only: nobody could tell
        // the connection was made anew. Someone else's handle is checked
        // for again each `dormant_after`.
        let mut quiet_since = now;
        while let Some(sleep_at) = sleep_after
            .and_then(|after| quiet_since.checked_add(after))
            .filter(|at| deadline.is_none_or(|deadline| *at < deadline))
        {
            match wait_until(idle_timer, Some(sleep_at), read.as_mut()).await {
                Some(Ok(())) => return Waited::Request,
                Some(Err(_)) => return Waited::End,
                None if Rc::strong_count(&self.inner) <= 2 => return Waited::Quiet(deadline),
                None => quiet_since = sleep_at,
            }
        }
        match wait_until(idle_timer, deadline, read).await {
            Some(Ok(())) => Waited::Request,
            _ => Waited::End,
        }
    }

    /// Serves one request; returns whether to go on with another.
    async fn serve_one(&self, delegate: &dyn HttpServerConnectionDelegate, served: usize) -> bool {
        let params = *self.inner.params;
        let stream = &self.inner.stream;

        // Step 1. The head, if it is here whole (the wait for a kept-alive
        // connection's next request is `wait_for_request`).
        if self.inner.closing.get() {
            return false;
        }
        let limits = params.head_limits;
        let buffered = stream.try_read_parsed(|buf| parse_request_head(buf, &limits));

        // Step 2. The head — at once if it is already buffered, else under
        // one deadline that trickled bytes never reset.
        let read_head = async {
            match buffered {
                Some(parsed) => parsed.map_err(ReadError::Head),
                None => {
                    let read = stream.read_parsed(|buf| {
                        parse_request_head(buf, &limits).map_err(ReadError::Head)
                    });
                    match with_timeout(params.header_timeout, read).await {
                        Ok(result) => result,
                        Err(_) => Err(ReadError::TimedOut),
                    }
                }
            }
        };
        let head = match read_head.await {
            Err(ReadError::TimedOut) => {
                log::debug!("closing a connection that sent no complete head in time");
                return false;
            }
            Err(ReadError::Head(e)) => {
                log::debug!("malformed request: {e}");
                self.refuse(e.status()).await;
                return false;
            }
            Err(_) => return false,
            Ok(head) => head,
        };

        // Step 3. Framing: refuse every ambiguity before reading any body.
        // (The declared length is checked against the limit in step 5, once
        // the delegate had its chance to change the limit.)
        let framing = match request_framing(&head.headers, u64::MAX) {
            Ok(framing) => framing,
            Err(e) => {
                log::debug!("refusing request framing: {e}");
                self.refuse(e.status()).await;
                return false;
            }
        };
        if let Some(status) = host_error(&head) {
            self.refuse(status).await;
            return false;
        }

        // Step 4. Start the message.
        {
            let mut response = self.inner.response.borrow_mut();
            response.reset();
            response.is_head = head.start_line.method == "HEAD";
            // Kept only for the access log: no copies when it is off.
            if self.inner.access_level.is_some() {
                response.method.push_str(&head.start_line.method);
                response.target.push_str(&head.start_line.target);
            }
            response.version = head.start_line.version;
            response.keep_alive = !params.no_keep_alive
                && served + 1 < params.max_requests
                && wants_keep_alive(&head.start_line, &head.headers);
        }
        self.inner.response_done.clear();
        self.inner.in_request.set(true);
        self.inner.max_body_size.set(None);
        // A request without a body is whole already: its delegate may take
        // it at once, with no message delegate made for it.
        let head = if framing == Framing::Empty {
            match delegate.whole_request(self, head) {
                Ok(flow) => {
                    if let Some(flow) = flow {
                        self.run_until_answered(flow).await;
                    }
                    return self.answered().await;
                }
                Err(head) => head,
            }
        } else {
            head
        };
        let mut message = delegate.start_request(self);
        let expect_continue = head.start_line.version == Version::Http11
            && framing != Framing::Empty
            && head
                .headers
                .get("Expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        let start_line = StartLine::Request(head.start_line);
        if let Some(flow) = message.headers_received(start_line, head.headers) {
            flow.await;
        }
        // Step 5. A declared length over the limit is refused unread (and
        // never invited with a 100 Continue).
        let max_body = self.max_body_size();
        if let Framing::Length(length) = framing {
            if length > max_body {
                log::debug!("refusing a body of {length} bytes (the limit is {max_body})");
                if self.inner.response.borrow().encoder.is_none() {
                    self.refuse(413).await;
                }
                stream.close();
                message.on_connection_close();
                return false;
            }
        }
        if expect_continue {
            let (started, finished) = {
                let response = self.inner.response.borrow();
                (response.encoder.is_some(), response.finished)
            };
            if !started {
                stream.write("HTTP/1.1 100 (Continue)\r\n\r\n");
            } else if finished {
                // Answered before the body was invited: the client may
                // never send it (RFC 9110 §10.1.1), so what comes next
                // cannot be framed — reading on would take its next request
                // for this body. Close after the answer, the body unread
                // (Tornado too closes a connection whose answer finished
                // before its body was read: `_disconnect_on_finish`).
                message.on_connection_close();
                self.inner.response_done.wait().await;
                self.inner.in_request.set(false);
                return false;
            }
        }

        // Step 6. The body, piece by piece. Its reader is boxed, and only
        // made for a request that has a body: inline it would make every
        // connection's future larger for as long as it lives, idle or not.
        let body = if framing == Framing::Empty {
            Ok(())
        } else {
            Box::pin(self.read_body(framing, max_body, &mut *message)).await
        };
        match body {
            Ok(()) => {
                if let Some(flow) = message.finish_flow() {
                    self.run_until_answered(flow).await;
                }
            }
            Err(e) => {
                match e {
                    ReadError::Body(e) => {
                        log::debug!("malformed request body: {e}");
                        if self.inner.response.borrow().encoder.is_none() {
                            self.refuse(e.status()).await;
                        }
                    }
                    ReadError::Stream(e) if e.as_closed().is_none() => {
                        log::debug!("request body not read: {e}");
                    }
                    _ => {}
                }
                stream.close();
                message.on_connection_close();
                return false;
            }
        }

        // Step 7. Wait for the response (or the connection closing).
        self.answered().await
    }

    /// Waits for the response to the request in flight (or the connection
    /// closing); returns whether to go on with another request.
    async fn answered(&self) -> bool {
        self.inner.response_done.wait().await;
        self.inner.in_request.set(false);
        let response = self.inner.response.borrow();
        !self.inner.stream.closed()
            && !self.inner.closing.get()
            && response.finished
            && response.keep_alive
            && !response.close_after
    }

    /// Runs `flow` (the delegate's answer) in this task until it completes
    /// or the response is finished; what is left of it then goes on as a
    /// task of its own, so the next request is read meanwhile.
    async fn run_until_answered(&self, mut flow: Pin<Box<dyn Future<Output = ()>>>) {
        let done = &self.inner.response_done;
        let finished = std::future::poll_fn(|cx| {
            if flow.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            // Woken also when someone else finishes the response.
            done.poll_wait(cx).map(|()| false)
        })
        .await;
        if !finished {
            drop(whirl_ioloop::spawn(flow));
        }
    }

    /// Reads the body, handing it to `message` in `chunk_size` pieces.
    async fn read_body(
        &self,
        framing: Framing,
        max_body: u64,
        message: &mut dyn HttpMessageDelegate,
    ) -> Result<(), ReadError> {
        let params = *self.inner.params;
        let mut decoder = Decoder::new(framing, max_body);
        while !decoder.is_done() {
            let piece = self
                .inner
                .stream
                .read_parsed(|buf| -> Result<_, ReadError> {
                    let window = &buf[..buf.len().min(params.chunk_size)];
                    let step = decoder.decode(window).map_err(ReadError::Body)?;
                    if step.consumed == 0 && !step.done {
                        return Ok(None);
                    }
                    Ok(Some((window[step.data].to_vec(), step.consumed)))
                });
            let piece = match with_timeout(params.body_timeout, piece).await {
                Ok(result) => result?,
                Err(_) => {
                    log::debug!("timeout reading a request body");
                    self.inner.stream.close_with_reason(CloseReason::Timeout);
                    return Err(ReadError::Stream(StreamError::Closed(
                        self.inner.stream.error().expect("just closed"),
                    )));
                }
            };
            if !piece.is_empty() {
                if let Some(flow) = message.data_received(piece) {
                    flow.await;
                }
            }
        }
        Ok(())
    }

    /// Answers with a bare status line and closes once it is sent (Tornado's
    /// `HTTP/1.1 400 Bad Request\r\n\r\n`).
    async fn refuse(&self, status: u16) {
        let line = format!("HTTP/1.1 {status} {}\r\n\r\n", reason_phrase(status));
        let _ = self.inner.stream.write(line).await;
        self.inner.stream.close();
    }

    /// Waits for queued output to reach the kernel, then closes.
    async fn close_when_flushed(&self) {
        if !self.inner.stream.closed() {
            let _ = self.inner.stream.write(Vec::new()).await;
            self.inner.stream.close();
        }
    }

    // ----- the responder's side ----------------------------------------------

    /// Writes the response head. Tornado: `HTTP1Connection.write_headers`.
    ///
    /// Framing follows from the headers: a `Content-Length` is honoured
    /// exactly; without one, an HTTP/1.1 response is sent chunked (the header
    /// is added) and an HTTP/1.0 one is delimited by closing the connection.
    /// HEAD, 1xx, 204 and 304 responses carry no body (later writes are
    /// dropped). `Connection: close` or `Keep-Alive` is added as needed, and
    /// `Date` (rendered once a second) unless `headers` has one.
    ///
    /// # Errors
    ///
    /// [`HttpOutputError::HeadersAlreadyWritten`],
    /// [`HttpOutputError::InvalidContentLength`], or `Closed`.
    pub fn write_headers(
        &self,
        start_line: &ResponseStartLine,
        headers: &HttpHeaders,
    ) -> Result<WriteFuture, HttpOutputError> {
        let mut response = self.inner.response.borrow_mut();
        self.check_no_head_yet(&response)?;
        let code = start_line.code;
        let no_body = response_has_no_body(code, if response.is_head { "HEAD" } else { "" });
        let declared =
            content_length(headers).map_err(|_| HttpOutputError::InvalidContentLength)?;
        let mut add_chunked = false;
        let framing = if no_body {
            Framing::Empty
        } else if let Some(length) = declared {
            Framing::Length(length)
        } else if headers
            .get("Transfer-Encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            Framing::Chunked
        } else if response.version == Version::Http11 {
            add_chunked = true;
            Framing::Chunked
        } else {
            Framing::CloseDelimited
        };
        let says = Says::of(headers);
        let keep_alive = self.begin_response(&mut response, code, framing, no_body, says.close);

        // Step 1. The status line and the caller's headers, in one buffer.
        let mut head = spare_write_buffer(128 + headers.len() * 32);
        append_status_line(&mut head, start_line);
        append_header_lines(&mut head, headers);
        // Step 2. What the connection itself must say.
        if add_chunked {
            head.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        let tail = HeadTail {
            date: !says.date,
            keep_alive,
            says_close: says.close,
            says_connection: says.connection,
            version: response.version,
        };
        tail.append_to(&mut head);
        Ok(self.inner.stream.write(head))
    }

    /// Writes a whole response at once — its head, the `Content-Length` of
    /// `body`, the body — and finishes it: [`write_headers`], [`write`] and
    /// [`finish`] in one call, for the common response whose body is known
    /// up front, with its headers as name–value pairs rather than an
    /// [`HttpHeaders`] (Tornado: `write_headers(start_line, headers,
    /// chunk)` followed by `finish()`).
    ///
    /// The connection adds `Content-Length` (except on 1xx, 204 and 304
    /// responses, which have no body), `Date` unless `headers` has one, and
    /// `Connection` as [`write_headers`] does. A HEAD request's response
    /// says the length and sends no body.
    ///
    /// ```no_run
    /// use whirl_httpserver::{HttpServer, ResponseStartLine};
    ///
    /// let server = HttpServer::from_fn(|_request, connection| {
    ///     let ok = ResponseStartLine::new(200);
    ///     let _ = connection.respond(&ok, &[("Content-Type", "text/plain")], "Hello, World!");
    /// });
    /// ```
    ///
    /// [`write_headers`]: Http1Connection::write_headers
    /// [`write`]: Http1Connection::write
    /// [`finish`]: Http1Connection::finish
    ///
    /// # Errors
    ///
    /// [`HttpOutputError::HeadersAlreadyWritten`]; `Closed`;
    /// [`HttpOutputError::InvalidHeader`] for a name that is not a token or
    /// a value with a control character, and
    /// [`HttpOutputError::FramedByConnection`] for a `Content-Length` or
    /// `Transfer-Encoding` among `headers` — nothing is sent in these cases.
    pub fn respond(
        &self,
        start_line: &ResponseStartLine,
        headers: &[(&str, &str)],
        body: impl Into<WriteBuf>,
    ) -> Result<WriteFuture, HttpOutputError> {
        let mut says = Says::default();
        for (name, value) in headers {
            if !is_valid_header_name(name) {
                return Err(HttpOutputError::InvalidHeader(HeaderError::InvalidName));
            }
            if !is_valid_header_value(value) {
                return Err(HttpOutputError::InvalidHeader(HeaderError::InvalidValue));
            }
            if name.eq_ignore_ascii_case("Content-Length")
                || name.eq_ignore_ascii_case("Transfer-Encoding")
            {
                return Err(HttpOutputError::FramedByConnection);
            }
            says.date |= name.eq_ignore_ascii_case("Date");
            if name.eq_ignore_ascii_case("Connection") {
                says.connection = true;
                says.close |= says_close(value);
            }
        }
        self.respond_whole(start_line, says, headers.len(), body.into(), |head| {
            for (name, value) in headers {
                append_header_line(head, name, value);
            }
        })
    }

    /// As [`respond`](Http1Connection::respond), with the headers in an
    /// [`HttpHeaders`] (whose fields were checked as they were added): the
    /// web layer's path for a response finished at once.
    ///
    /// # Errors
    ///
    /// [`HttpOutputError::HeadersAlreadyWritten`]; `Closed`;
    /// [`HttpOutputError::FramedByConnection`] when `headers` has a
    /// `Content-Length` or `Transfer-Encoding` (nothing is sent).
    pub fn respond_with(
        &self,
        start_line: &ResponseStartLine,
        headers: &HttpHeaders,
        body: impl Into<WriteBuf>,
    ) -> Result<WriteFuture, HttpOutputError> {
        if headers.contains("Content-Length") || headers.contains("Transfer-Encoding") {
            return Err(HttpOutputError::FramedByConnection);
        }
        self.respond_whole(
            start_line,
            Says::of(headers),
            headers.len(),
            body.into(),
            |head| append_header_lines(head, headers),
        )
    }

    /// The rest of [`respond`](Http1Connection::respond) once the caller's
    /// headers are checked: the head (`header_lines` appends the caller's
    /// `count` fields), the `Content-Length` of `body`, the body, the end.
    fn respond_whole(
        &self,
        start_line: &ResponseStartLine,
        says: Says,
        count: usize,
        body: WriteBuf,
        header_lines: impl FnOnce(&mut Vec<u8>),
    ) -> Result<WriteFuture, HttpOutputError> {
        let mut response = self.inner.response.borrow_mut();
        self.check_no_head_yet(&response)?;
        let code = start_line.code;
        let no_body = response_has_no_body(code, if response.is_head { "HEAD" } else { "" });
        let framing = if no_body {
            Framing::Empty
        } else {
            Framing::Length(body.len() as u64)
        };
        let keep_alive = self.begin_response(&mut response, code, framing, no_body, says.close);

        let mut head = spare_write_buffer(160 + count * 32);
        append_status_line(&mut head, start_line);
        header_lines(&mut head);
        if !((100..200).contains(&code) || code == 204 || code == 304) {
            head.extend_from_slice(b"Content-Length: ");
            head.extend_from_slice(Decimal::from(body.len()).as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        let tail = HeadTail {
            date: !says.date,
            keep_alive,
            says_close: says.close,
            says_connection: says.connection,
            version: response.version,
        };
        tail.append_to(&mut head);
        let stream = &self.inner.stream;
        let last = if no_body || body.is_empty() {
            stream.write(head)
        } else if body.len() <= BODY_WITH_HEAD {
            // A small body goes in the head's buffer: one write, one copy
            // (the stream would have copied it to the head anyway).
            body.append_to(&mut head);
            stream.write(head)
        } else {
            stream.write(head);
            stream.write(body)
        };
        // The encoder is told of the whole body, so its state (and a write
        // after this one) is as if `write` and `finish` had run.
        if let Some(encoder) = response.encoder.as_mut() {
            if encoder
                .frame(body_len_of(framing))
                .and_then(|_| encoder.finish())
                .is_ok()
            {
                self.mark_finished(&mut response);
            }
        }
        drop(response);
        self.inner.response_done.set();
        Ok(last)
    }

    /// `HeadersAlreadyWritten` once a head was written, `Closed` on a closed
    /// stream.
    fn check_no_head_yet(&self, response: &Response) -> Result<(), HttpOutputError> {
        if response.encoder.is_some() {
            return Err(HttpOutputError::HeadersAlreadyWritten);
        }
        if let Some(e) = self.inner.stream.error() {
            return Err(HttpOutputError::Closed(StreamError::Closed(e)));
        }
        Ok(())
    }

    /// Records a response's status and framing; returns whether the
    /// connection stays open after it.
    fn begin_response(
        &self,
        response: &mut Response,
        code: u16,
        framing: Framing,
        no_body: bool,
        says_close: bool,
    ) -> bool {
        // A connection asked to close (graceful shutdown) says so on its last
        // response, so the client does not send another request into the close.
        let keep_alive = response.keep_alive
            && !self.inner.closing.get()
            && framing != Framing::CloseDelimited
            && !says_close;
        response.code = code;
        response.close_after = !keep_alive;
        response.no_body = no_body;
        response.encoder = Some(Encoder::new(framing));
        keep_alive
    }

    /// Writes a piece of the response body, framed as the headers decided.
    /// Tornado: `HTTP1Connection.write`.
    ///
    /// The piece is moved into the stream's queue, never copied: a `Vec`,
    /// a `String`, or static bytes (`&'static str`, `&'static [u8]`, which
    /// cost no allocation at all); copy a borrowed slice with `.to_vec()`.
    ///
    /// # Errors
    ///
    /// [`HttpOutputError::HeadersNotWritten`]; [`HttpOutputError::Framing`]
    /// if the piece goes past the declared `Content-Length` (the connection
    /// is aborted); `Closed`.
    pub fn write(&self, chunk: impl Into<WriteBuf>) -> Result<WriteFuture, HttpOutputError> {
        let chunk = chunk.into();
        let mut response = self.inner.response.borrow_mut();
        let no_body = response.no_body;
        let Some(encoder) = response.encoder.as_mut() else {
            return Err(HttpOutputError::HeadersNotWritten);
        };
        let stream = &self.inner.stream;
        if let Some(e) = stream.error() {
            return Err(HttpOutputError::Closed(StreamError::Closed(e)));
        }
        if no_body {
            return Ok(stream.write(Vec::new()));
        }
        match encoder.frame(chunk.len()) {
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
                drop(response);
                Err(self.abort(e))
            }
        }
    }

    /// Ends the response. Tornado: `HTTP1Connection.finish`.
    ///
    /// Logs the response to the access log (target `whirl::access`: `info`
    /// for 1xx–3xx, `warn` for 4xx, `error` for 5xx). Which of these levels
    /// are on is read when the connection opens: a logger installed or a
    /// level raised later applies to connections opened afterwards.
    ///
    /// # Errors
    ///
    /// [`HttpOutputError::HeadersNotWritten`]; [`HttpOutputError::Framing`]
    /// if fewer bytes than the declared `Content-Length` were written (the
    /// connection is aborted).
    pub fn finish(&self) -> Result<WriteFuture, HttpOutputError> {
        let mut response = self.inner.response.borrow_mut();
        let Some(encoder) = response.encoder.as_mut() else {
            return Err(HttpOutputError::HeadersNotWritten);
        };
        let result = match encoder.finish() {
            Ok(last) => {
                self.mark_finished(&mut response);
                Ok(self.inner.stream.write(last))
            }
            Err(e) => {
                drop(response);
                Err(self.abort(e))
            }
        };
        self.inner.response_done.set();
        result
    }

    /// Logs the finished request, Tornado's format:
    /// `200 GET /path (127.0.0.1) 0.42ms` — at `info` for success, `warn` for
    /// 4xx, `error` for 5xx (Tornado's `log_request`).
    fn log_access(&self, response: &Response) {
        let level = match response.code {
            500.. => log::Level::Error,
            400..=499 => log::Level::Warn,
            _ => log::Level::Info,
        };
        if self.inner.access_level.is_some_and(|most| level <= most) {
            let ip = self
                .inner
                .context
                .get()
                .remote_ip
                .map_or_else(|| "-".to_string(), |ip| ip.to_string());
            let ms = response.started.elapsed().as_secs_f64() * 1000.0;
            log::log!(
                target: "whirl::access",
                level,
                "{} {} {} ({ip}) {ms:.2}ms",
                response.code,
                response.method,
                response.target
            );
        }
    }

    /// Aborts the connection for a framing error of the response.
    fn abort(&self, e: BodyError) -> HttpOutputError {
        log::warn!("aborting connection: {e}");
        let reason = std::io::Error::other(e.to_string());
        self.inner.stream.close_with_reason(CloseReason::Io(reason));
        self.inner.response_done.set();
        HttpOutputError::Framing(e)
    }
}

/// Awaits `work` until `deadline` (`None`: no deadline); `None` if the
/// deadline came first.
///
/// The timer is the caller's and outlives the wait: a keep-alive connection
/// waits once per request, and a timer each time would cost a timer-heap
/// insert and removal per request. The timer is only ever pushed back
/// lazily: when it fires before the current deadline it is re-armed for it
/// (so it fires about once per timeout, not once per request).
async fn wait_until<F: Future>(
    timer: &mut Option<Sleep>,
    deadline: Option<Instant>,
    mut work: Pin<&mut F>,
) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        let Some(deadline) = deadline else {
            return Poll::Pending;
        };
        loop {
            let sleep = timer.get_or_insert_with(|| sleep_until(deadline));
            if sleep.deadline() > deadline {
                // A deadline earlier than the armed one (never for a fixed
                // timeout, whose deadlines only grow).
                *sleep = sleep_until(deadline);
            }
            match Pin::new(&mut *sleep).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    let fired_for = sleep.deadline();
                    *timer = None;
                    if fired_for >= deadline {
                        return Poll::Ready(None);
                    }
                }
            }
        }
    })
    .await
}

/// The serve task's wait for the response in flight to finish: a flag and
/// the one waker waiting on it (only the connection's task waits), kept in
/// the connection itself rather than in an `Event` of its own.
#[derive(Default)]
struct DoneFlag {
    /// Whether it is set.
    set: Cell<bool>,
    /// The waiting task's waker.
    waker: Cell<Option<Waker>>,
}

impl DoneFlag {
    /// Sets it and wakes the waiter.
    fn set(&self) {
        self.set.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Clears it (a new response begins).
    fn clear(&self) {
        self.set.set(false);
    }

    /// Ready once set; else the waker is kept for `set`.
    fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.set.get() {
            return Poll::Ready(());
        }
        let waker = match self.waker.take() {
            Some(waker) if waker.will_wake(cx.waker()) => waker,
            _ => cx.waker().clone(),
        };
        self.waker.set(Some(waker));
        Poll::Pending
    }

    /// Waits until it is set.
    async fn wait(&self) {
        std::future::poll_fn(|cx| self.poll_wait(cx)).await;
    }
}

/// The most verbose level of `Info`, `Warn`, `Error` (the access log's)
/// enabled for `whirl::access`.
fn access_log_level() -> Option<log::Level> {
    [log::Level::Info, log::Level::Warn, log::Level::Error]
        .into_iter()
        .find(|&level| log::log_enabled!(target: "whirl::access", level))
}

/// 400 for a request with two `Host` headers or an invalid one, or an
/// HTTP/1.1 request without one (RFC 9112 §3.2).
fn host_error(head: &crate::head::RequestHead) -> Option<u16> {
    match head.headers.get_once("Host") {
        Err(_) => Some(400),
        Ok(None) if head.start_line.version == Version::Http11 => Some(400),
        Ok(Some(host)) => crate::request::check_host(host).err().map(|e| e.status()),
        Ok(None) => None,
    }
}

/// Appends a `Name: value` CRLF line to `head` for each of `headers`: the
/// header block of either role (Tornado builds it in `write_headers`).
///
/// Values go out as Latin-1, one byte per char, as HTTP/1.1 (and Tornado)
/// have them. A value holding a char past U+00FF, which Latin-1 cannot
/// carry, goes out as its UTF-8 bytes instead (all `>= 0x80`): cutting each
/// char to one byte would turn U+010A into LF and inject a header.
pub(crate) fn append_header_lines(head: &mut Vec<u8>, headers: &HttpHeaders) {
    for (name, value) in headers.iter() {
        append_header_line(head, name, value);
    }
}

/// Appends one `Name: value` CRLF line, the value as
/// [`append_header_lines`] writes it.
fn append_header_line(head: &mut Vec<u8>, name: &str, value: &str) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    if value.is_ascii() || value.chars().any(|c| u32::from(c) > 0xff) {
        head.extend_from_slice(value.as_bytes());
    } else {
        head.extend(value.chars().map(|c| u32::from(c) as u8));
    }
    head.extend_from_slice(b"\r\n");
}

/// Appends `HTTP/1.1 <code> <reason>` CRLF. A reason with a control or
/// non-ASCII character could inject headers: it is replaced, as Tornado
/// does (checklist 45); an empty one is the standard phrase.
fn append_status_line(head: &mut Vec<u8>, start_line: &ResponseStartLine) {
    let code = start_line.code;
    if code == 200 && start_line.reason.is_empty() {
        head.extend_from_slice(b"HTTP/1.1 200 OK\r\n"); // the usual one, in one copy
        return;
    }
    head.extend_from_slice(b"HTTP/1.1 ");
    if (100..1000).contains(&code) {
        head.extend_from_slice(&[
            b'0' + (code / 100) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
        ]);
    } else {
        head.extend_from_slice(code.to_string().as_bytes());
    }
    head.push(b' ');
    let reason = if start_line.reason.is_empty() {
        reason_phrase(code)
    } else if start_line
        .reason
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        &start_line.reason
    } else {
        "Unknown"
    };
    head.extend_from_slice(reason.as_bytes());
    head.extend_from_slice(b"\r\n");
}

/// What the connection adds at the end of a response head.
struct HeadTail {
    /// Add a `Date` (the caller sent none).
    date: bool,
    /// The connection stays open after this response.
    keep_alive: bool,
    /// The caller's headers say `Connection: close`.
    says_close: bool,
    /// The caller's headers have a `Connection` field.
    says_connection: bool,
    /// The request's version.
    version: Version,
}

impl HeadTail {
    /// Appends `Date`, the `Connection` line the version needs, and the
    /// blank line.
    fn append_to(&self, head: &mut Vec<u8>) {
        if self.date {
            append_date_header(head);
        }
        if !self.keep_alive && !self.says_close && self.version == Version::Http11 {
            head.extend_from_slice(b"Connection: close\r\n");
        }
        if self.keep_alive && self.version == Version::Http10 && !self.says_connection {
            head.extend_from_slice(b"Connection: Keep-Alive\r\n");
        }
        head.extend_from_slice(b"\r\n");
    }
}

/// What a caller's response headers say that the connection must know.
#[derive(Default, Clone, Copy)]
struct Says {
    /// A `Date` field.
    date: bool,
    /// A `Connection` field.
    connection: bool,
    /// `Connection: close`.
    close: bool,
}

impl Says {
    /// What `headers` say.
    fn of(headers: &HttpHeaders) -> Says {
        Says {
            date: headers.contains("Date"),
            connection: headers.contains("Connection"),
            close: headers.get_all("Connection").any(says_close),
        }
    }
}

/// Whether a `Connection` value lists `close`.
fn says_close(value: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case("close"))
}

/// The body length a framing declares (0 for all but `Length`).
fn body_len_of(framing: Framing) -> usize {
    match framing {
        Framing::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
        _ => 0,
    }
}

impl fmt::Debug for Http1Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http1Connection")
            .field("stream", &self.inner.stream)
            .field("params", &self.inner.params)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_say_the_standard_reason_or_the_given_one() {
        let line = |code, reason: &str| {
            let mut head = Vec::new();
            let start_line = ResponseStartLine {
                version: Version::Http11,
                code,
                reason: reason.to_string(),
            };
            append_status_line(&mut head, &start_line);
            String::from_utf8(head).unwrap()
        };
        assert_eq!(line(200, ""), "HTTP/1.1 200 OK\r\n");
        assert_eq!(line(200, "Fine"), "HTTP/1.1 200 Fine\r\n");
        assert_eq!(line(404, ""), "HTTP/1.1 404 Not Found\r\n");
        assert_eq!(line(299, ""), "HTTP/1.1 299 Unknown\r\n");
        assert_eq!(line(200, "a\r\nX: 1"), "HTTP/1.1 200 Unknown\r\n");
    }

    #[test]
    fn header_lines_are_latin1_or_utf8_never_truncated() {
        let mut headers = HttpHeaders::new();
        headers.add("A", "plain");
        headers.add("B", "caf\u{e9}");
        // U+010A and U+010D cut to one byte would be LF and CR.
        headers.add("C", "x\u{10a}Evil: 1\u{10d}");
        let mut head = Vec::new();
        append_header_lines(&mut head, &headers);
        assert_eq!(
            head,
            b"A: plain\r\nB: caf\xe9\r\nC: x\xc4\x8aEvil: 1\xc4\x8d\r\n".as_slice()
        );
    }
}
