//! [`HttpServer`]: accepts connections and serves HTTP/1.x on each (Tornado's
//! `HTTPServer`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use slab::Slab;
use whirl_ioloop::{sleep, spawn};
use whirl_iostream::{DormantStream, IoStream, TcpServer, TlsServerConfig};

use crate::connection::{Http1Connection, Http1ConnectionParams, Resume};
use crate::delegate::{Flow, HttpMessageDelegate, HttpServerConnectionDelegate, StartLine};
use crate::gzip_delegate::GzipMessageDelegate;
use crate::head::RequestHead;
use crate::headers::{Decimal, HttpHeaders};
use crate::request::{HttpServerRequest, RefusedHead};
use crate::start_line::{reason_phrase, ResponseStartLine};
use crate::xheaders::XHeadersDelegate;

/// Default most connections served at once: unlimited (`usize::MAX`), as in
/// Tornado; running out of file descriptors pauses accepting instead.
pub const DEFAULT_MAX_CONNECTIONS: usize = usize::MAX;

/// A request handler given as a closure: called with each whole request (body
/// read and parsed) and the connection to answer on.
type HandlerFn = dyn Fn(HttpServerRequest, &Http1Connection);

/// An HTTP/1.x server: Tornado's `HTTPServer`.
///
/// Serve with a [`HttpServerConnectionDelegate`] (the streaming interface the
/// web layer uses) or, for simple servers, with a closure that gets each whole
/// request ([`HttpServer::from_fn`], Tornado's `HTTPServer(callback)`).
///
/// Settings are builder calls: [`with_params`](HttpServer::with_params)
/// (limits, timeouts, keep-alive), [`with_tls`](HttpServer::with_tls),
/// [`xheaders`](HttpServer::xheaders) and
/// [`trusted_downstream`](HttpServer::trusted_downstream),
/// [`decompress_request`](HttpServer::decompress_request),
/// [`max_connections`](HttpServer::max_connections). One server runs on one
/// loop; [`serve_threads`](crate::serve_threads) runs one per thread on a
/// shared port; [`shutdown_on_signals`](crate::shutdown_on_signals) stops
/// it gracefully on `SIGTERM`. Clones are handles to the same server.
///
/// A kept-alive connection that waits longer than
/// [`dormant_after`](Http1ConnectionParams::dormant_after) (50 ms) for its
/// next request is made dormant — freed down to its socket and a small
/// record, served again from where it left off when the client sends — so
/// thousands of idle connections cost little memory
/// ([`dormant_connection_count`](HttpServer::dormant_connection_count)).
///
/// # Examples
///
/// ```
/// use whirl_httpserver::{HttpHeaders, HttpServer, ResponseStartLine, Version};
/// use whirl_ioloop::IoLoop;
///
/// let io_loop = IoLoop::new();
/// let server = HttpServer::from_fn(|request, connection| {
///     let body = format!("Hello, {}", request.path());
///     let mut headers = HttpHeaders::new();
///     headers.insert("Content-Length", body.len().to_string());
///     let status = ResponseStartLine { version: Version::Http11, code: 200, reason: "OK".into() };
///     let _ = connection.write_headers(&status, &headers);
///     let _ = connection.write(body);
///     let _ = connection.finish();
/// });
/// let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];
/// # let reply = io_loop.run_sync(async move {
/// #     let s = whirl_iostream::IoStream::connect(addr).await.unwrap();
/// #     s.write("GET /world HTTP/1.0\r\n\r\n");
/// #     s.read_until_close().await.unwrap()
/// # });
/// # assert!(reply.ends_with(b"Hello, /world"));
/// ```
#[derive(Clone)]
pub struct HttpServer {
    /// The listener side.
    tcp: TcpServer,
    /// Settings and live connections, shared with the accept hook.
    shared: Rc<Shared>,
}

/// What every connection of a server shares.
struct Shared {
    /// Starts a message delegate per request.
    delegate: Rc<dyn HttpServerConnectionDelegate>,
    /// Connection settings.
    params: RefCell<Rc<Http1ConnectionParams>>,
    /// Whether TLS is on (requests then say `https`).
    tls: Cell<bool>,
    /// Open connections, served or dormant (for the connection cap,
    /// `close_all_connections`, and to find a dormant one again).
    connections: RefCell<Slab<Tracked>>,
    /// True while a sweeper task looks for dormant connections whose idle
    /// timeout passed.
    sweeping: Cell<bool>,
    /// Whether proxy headers set each request's address and protocol.
    xheaders: Cell<bool>,
    /// Proxies skipped in `X-Forwarded-For` (with `xheaders`).
    trusted_downstream: RefCell<Rc<[IpAddr]>>,
    /// Whether gzip request bodies are decompressed.
    decompress: Cell<bool>,
    /// Most live connections; more are closed at once.
    max_connections: Cell<usize>,
    /// True while connections are being refused at the cap (logged once
    /// per such spell).
    refusing: Cell<bool>,
}

impl HttpServerConnectionDelegate for Shared {
    /// The user's delegate, wrapped as the settings ask: proxy headers
    /// first, then gzip outermost (Tornado's order).
    fn start_request(&self, connection: &Http1Connection) -> Box<dyn HttpMessageDelegate> {
        let mut message = self.delegate.start_request(connection);
        if self.xheaders.get() {
            let trusted = self.trusted_downstream.borrow().clone();
            message = Box::new(XHeadersDelegate::new(message, connection, trusted));
        }
        if self.decompress.get() {
            message = Box::new(GzipMessageDelegate::new(message, connection));
        }
        message
    }

    /// The user's delegate takes a whole request only when no wrapper
    /// would have stood in front of its message delegate.
    fn whole_request(
        &self,
        connection: &Http1Connection,
        head: RequestHead,
    ) -> Result<Flow, RequestHead> {
        if self.xheaders.get() || self.decompress.get() {
            return Err(head);
        }
        self.delegate.whole_request(connection, head)
    }

    fn on_close(&self, connection: &Http1Connection) {
        self.delegate.on_close(connection);
    }
}

impl HttpServer {
    /// A server whose requests go to `delegate`.
    pub fn new(delegate: impl HttpServerConnectionDelegate + 'static) -> HttpServer {
        let shared = Rc::new(Shared {
            delegate: Rc::new(delegate),
            params: RefCell::new(Rc::new(Http1ConnectionParams::default())),
            tls: Cell::new(false),
            connections: RefCell::new(Slab::new()),
            sweeping: Cell::new(false),
            xheaders: Cell::new(false),
            trusted_downstream: RefCell::new(Rc::from(Vec::new())),
            decompress: Cell::new(false),
            max_connections: Cell::new(DEFAULT_MAX_CONNECTIONS),
            refusing: Cell::new(false),
        });
        let hook = shared.clone();
        let tcp = TcpServer::new(move |stream: IoStream, peer: SocketAddr| {
            let shared = hook.clone();
            async move {
                // Step 1. Past the cap, close at once (checked and counted
                // in one step, so a burst of accepts cannot overshoot).
                let open = shared.connections.borrow().len();
                if open >= shared.max_connections.get() {
                    if !shared.refusing.replace(true) {
                        log::warn!(
                            "{open} connections open, the max_connections limit: \
                             closing new connections until some end"
                        );
                    }
                    stream.close();
                    return;
                }
                if shared.refusing.replace(false) {
                    log::info!("accepting connections again ({open} open)");
                }
                // Step 2. Serve it — with TCP_NODELAY (nginx's `tcp_nodelay
                // on`): every response is written whole or flushed on
                // purpose, so Nagle could only delay the last piece of a
                // streamed one until the client's delayed ACK.
                if let Err(e) = stream.set_nodelay(true) {
                    log::debug!("TCP_NODELAY not set: {e}");
                }
                let connection = shared.connection_over(stream, peer);
                let key = shared
                    .connections
                    .borrow_mut()
                    .insert(Tracked::Serving(connection.clone()));
                run_connection(shared, key, connection, None).await;
            }
        });
        HttpServer { tcp, shared }
    }

    /// A server that calls `handler` with each whole request and the
    /// connection to answer on (Tornado's `HTTPServer(callback)`). Bodies are
    /// read whole (up to `max_body_size`) and form bodies parsed first; a
    /// request whose `Host` or query is invalid, or whose form body is
    /// malformed, is answered 400 without calling `handler`.
    pub fn from_fn<F>(handler: F) -> HttpServer
    where
        F: Fn(HttpServerRequest, &Http1Connection) + 'static,
    {
        HttpServer::new(CallableAdapter {
            handler: Rc::new(handler),
        })
    }

    /// Sets the connection settings: limits, timeouts, keep-alive. Default is
    /// [`Http1ConnectionParams::default`].
    pub fn with_params(self, params: Http1ConnectionParams) -> HttpServer {
        *self.shared.params.borrow_mut() = Rc::new(params);
        self
    }

    /// Trusts proxy headers: each request's address becomes `X-Real-IP`, else
    /// the last `X-Forwarded-For` entry not in
    /// [`trusted_downstream`](HttpServer::trusted_downstream), and its
    /// protocol `X-Scheme` or `X-Forwarded-Proto` (last entry, `http` or
    /// `https` only); values that do not parse are ignored (see
    /// [`RequestContext::apply_xheaders`](crate::RequestContext::apply_xheaders)).
    /// Delegates read the result from
    /// [`Http1Connection::context`]; the access log shows it. Turn it on only
    /// behind a proxy that sets these headers. Tornado: `xheaders`. Default
    /// is `false`.
    pub fn xheaders(self, on: bool) -> HttpServer {
        self.shared.xheaders.set(on);
        self
    }

    /// Proxies whose addresses are skipped in `X-Forwarded-For` (with
    /// [`xheaders`](HttpServer::xheaders)), so the client's address is found
    /// behind a chain of them. Tornado: `trusted_downstream`. Default is
    /// none.
    pub fn trusted_downstream(self, proxies: Vec<IpAddr>) -> HttpServer {
        *self.shared.trusted_downstream.borrow_mut() = Rc::from(proxies);
        self
    }

    /// Decompresses request bodies sent with `Content-Encoding: gzip` before
    /// the delegate sees them, bounding the decompressed size by
    /// `max_body_size` (413 past it; 400 for malformed gzip); see
    /// [`GzipMessageDelegate`]. Without it such bodies arrive as sent.
    /// Tornado: `decompress_request`. Default is `false`.
    pub fn decompress_request(self, on: bool) -> HttpServer {
        self.shared.decompress.set(on);
        self
    }

    /// Most connections served at once: past it a new connection is closed
    /// as soon as it is accepted, with no response (answering would mean
    /// reading its request first), and a warning is logged once until
    /// connections are accepted again. Connections still in their TLS
    /// handshake are not counted. Tornado has no such limit. Default is
    /// [`DEFAULT_MAX_CONNECTIONS`] (unlimited).
    pub fn max_connections(self, max: usize) -> HttpServer {
        self.shared.max_connections.set(max);
        self
    }

    /// Serves HTTPS with `config` (Tornado: `ssl_options`). Default is plain
    /// HTTP.
    pub fn with_tls(self, config: TlsServerConfig) -> HttpServer {
        self.shared.tls.set(true);
        HttpServer {
            tcp: self.tcp.with_tls(config),
            shared: self.shared,
        }
    }

    /// Binds and listens; returns the bound addresses. Tornado: `listen`.
    ///
    /// # Errors
    ///
    /// Binding or registration errors.
    pub fn listen(&self, port: u16, address: Option<&str>) -> io::Result<Vec<SocketAddr>> {
        self.tcp.listen(port, address)
    }

    /// Serves on already bound listening sockets. Tornado: `add_sockets`.
    ///
    /// # Errors
    ///
    /// Registration errors.
    pub fn add_sockets(&self, sockets: Vec<std::net::TcpListener>) -> io::Result<Vec<SocketAddr>> {
        self.tcp.add_sockets(sockets)
    }

    /// The addresses the server listens on (each port resolved, so
    /// `listen(0, …)` tells which port it got).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tcp.local_addrs()
    }

    /// Stops accepting; connections already open go on. Tornado: `stop`.
    pub fn stop(&self) {
        self.tcp.stop();
    }

    /// Closes every open connection once its response in flight (if any) has
    /// been sent: idle ones (dormant ones too) at once, all of them
    /// together; returns once each is closed and its delegate's `on_close`
    /// was called. Call after
    /// [`stop`](HttpServer::stop) for a graceful shutdown (see
    /// [`drain`](crate::drain)). Tornado: `close_all_connections`.
    pub async fn close_all_connections(&self) {
        loop {
            // Dormant connections are woken to close as served ones do.
            let dormant: Vec<usize> = self.shared.dormant_keys(|_| true);
            for key in dormant {
                wake(&self.shared, key, false);
            }
            let open: Vec<Http1Connection> = self.shared.serving();
            if open.is_empty() {
                return;
            }
            // One task each, so every connection hears at once that it is
            // to close (an idle keep-alive one must not wait for a busy one
            // listed before it, nor take new requests meanwhile).
            let closing: Vec<_> = open
                .into_iter()
                .map(|connection| spawn(async move { connection.close_when_idle().await }))
                .collect();
            for task in closing {
                let _ = task.await;
            }
            // A closed connection stays listed until its task has told the
            // delegate (`on_close`) and let go of it: the next round (at
            // once done for it) waits for that.
        }
    }

    /// Number of open connections (dormant ones included).
    pub fn connection_count(&self) -> usize {
        self.shared.connections.borrow().len()
    }

    /// Number of open connections that are dormant: kept-alive ones that
    /// waited longer than [`dormant_after`](Http1ConnectionParams::dormant_after)
    /// for their next request, held as their socket and a small record.
    pub fn dormant_connection_count(&self) -> usize {
        self.shared
            .connections
            .borrow()
            .iter()
            .filter(|(_, tracked)| matches!(tracked, Tracked::Dormant(_)))
            .count()
    }

    /// Number of requests in flight: read, and not yet answered in full.
    pub fn requests_in_flight(&self) -> usize {
        self.shared
            .connections
            .borrow()
            .iter()
            .filter(|(_, tracked)| matches!(tracked, Tracked::Serving(c) if c.in_request()))
            .count()
    }
}

/// An open connection of a server.
enum Tracked {
    /// Being served by its task.
    Serving(Http1Connection),
    /// Dormant: nothing but its socket and where it left off (`None` only
    /// for the moment it is being put to sleep or woken).
    Dormant(Option<Box<Dormant>>),
}

/// A dormant connection: what it takes to serve it again.
struct Dormant {
    /// The socket, registered with the loop, calling `wake` on its next
    /// event.
    stream: DormantStream,
    /// The client's address.
    peer: SocketAddr,
    /// Where its service left off.
    resume: Resume,
}

impl Shared {
    /// A connection over `stream` from `peer`, with the server's settings.
    fn connection_over(&self, stream: IoStream, peer: SocketAddr) -> Http1Connection {
        let params = self.params.borrow().clone(); // one copy for all
        Http1Connection::new(stream, params, Some(peer), self.tls.get())
    }

    /// The connections being served (handles to them).
    fn serving(&self) -> Vec<Http1Connection> {
        self.connections
            .borrow()
            .iter()
            .filter_map(|(_, tracked)| match tracked {
                Tracked::Serving(c) => Some(c.clone()),
                Tracked::Dormant(_) => None,
            })
            .collect()
    }

    /// Keys of the dormant connections for which `pick` says yes.
    fn dormant_keys(&self, pick: impl Fn(&Dormant) -> bool) -> Vec<usize> {
        self.connections
            .borrow()
            .iter()
            .filter_map(|(key, tracked)| match tracked {
                Tracked::Dormant(Some(dormant)) if pick(dormant) => Some(key),
                _ => None,
            })
            .collect()
    }
}

/// Serves the connection listed under `key` until it ends (then drops it
/// from the list) or is made dormant (then its task ends here, and `wake`
/// starts another when the client sends again).
async fn run_connection(
    shared: Rc<Shared>,
    key: usize,
    mut connection: Http1Connection,
    mut resume: Option<Resume>,
) {
    let delegate: Rc<dyn HttpServerConnectionDelegate> = shared.clone();
    loop {
        let Some(quiet) = connection.serve_from(&delegate, resume, true).await else {
            break;
        };
        match put_to_sleep(&shared, key, connection, quiet) {
            Ok(()) => return,
            Err(awake) => (connection, resume) = (awake, Some(quiet)),
        }
    }
    let mut connections = shared.connections.borrow_mut();
    if matches!(connections.get(key), Some(Tracked::Serving(c)) if c.same_as(&connection)) {
        connections.remove(key);
    }
}

/// Makes the connection listed under `key` dormant: its state and buffers
/// freed, its socket kept with a record of where it left off. Hands the
/// connection back (to be served on) if it cannot sleep: another handle to
/// it exists, or its stream is not quiet.
fn put_to_sleep(
    shared: &Rc<Shared>,
    key: usize,
    connection: Http1Connection,
    resume: Resume,
) -> Result<(), Http1Connection> {
    // Step 1. The list's handle goes, so ours is the only one left (if no
    // one else holds one).
    let listed = {
        let mut connections = shared.connections.borrow_mut();
        match connections.get_mut(key) {
            Some(tracked @ Tracked::Serving(_)) => {
                std::mem::replace(tracked, Tracked::Dormant(None))
            }
            _ => return Err(connection),
        }
    };
    drop(listed);
    let Some(peer) = connection.remote_addr() else {
        return Err(relist(shared, key, connection));
    };
    // Step 2. The connection's state goes, then the stream's (down to its
    // socket, whose next event wakes it).
    let stream = match connection.into_stream() {
        Ok(stream) => stream,
        Err(connection) => return Err(relist(shared, key, connection)),
    };
    let waker = shared.clone();
    match stream.into_dormant(move |_| wake(&waker, key, true)) {
        Ok(stream) => {
            if let Some(Tracked::Dormant(slot)) = shared.connections.borrow_mut().get_mut(key) {
                *slot = Some(Box::new(Dormant {
                    stream,
                    peer,
                    resume,
                }));
            }
            sweep_while_dormant(shared);
            Ok(())
        }
        Err(stream) => Err(relist(shared, key, shared.connection_over(stream, peer))),
    }
}

/// Lists `connection` under `key` as served; returns it.
fn relist(shared: &Shared, key: usize, connection: Http1Connection) -> Http1Connection {
    if let Some(tracked) = shared.connections.borrow_mut().get_mut(key) {
        *tracked = Tracked::Serving(connection.clone());
    }
    connection
}

/// Serves the dormant connection listed under `key` again (its client sent
/// something or left — `by_client` — its idle timeout passed, or the server
/// is closing its connections): a new connection over its socket, a new
/// task, from where it left off. Does nothing if it is not dormant (any
/// more).
fn wake(shared: &Rc<Shared>, key: usize, by_client: bool) {
    let dormant = match shared.connections.borrow_mut().get_mut(key) {
        Some(Tracked::Dormant(slot)) => slot.take(),
        _ => None,
    };
    let Some(dormant) = dormant else {
        return;
    };
    let Dormant {
        stream,
        peer,
        mut resume,
    } = *dormant;
    if by_client {
        resume.woken_by_client(&shared.params.borrow(), Instant::now());
    }
    match stream.wake() {
        Ok(stream) => {
            let connection = relist(shared, key, shared.connection_over(stream, peer));
            spawn(run_connection(
                shared.clone(),
                key,
                connection,
                Some(resume),
            ));
        }
        Err(e) => {
            // The loop let go of the socket (it is being closed).
            log::debug!("a dormant connection could not wake: {e}");
            shared.connections.borrow_mut().remove(key);
        }
    }
}

/// Starts, unless one runs, the task that wakes dormant connections whose
/// idle timeout passed (so they close as served ones do); it ends when none
/// is dormant. One timer for all of them, checked every 1/16 of the idle
/// timeout (at most every second).
fn sweep_while_dormant(shared: &Rc<Shared>) {
    if shared.sweeping.replace(true) {
        return;
    }
    let shared = shared.clone();
    spawn(async move {
        loop {
            let timeout = shared.params.borrow().idle_connection_timeout;
            sleep((timeout / 16).clamp(Duration::from_millis(10), Duration::from_secs(1))).await;
            let now = Instant::now();
            let due = shared.dormant_keys(|d| d.resume.deadline.is_some_and(|at| at <= now));
            for key in due {
                wake(&shared, key, false);
            }
            let connections = shared.connections.borrow();
            if !connections
                .iter()
                .any(|(_, tracked)| matches!(tracked, Tracked::Dormant(_)))
            {
                break;
            }
        }
        shared.sweeping.set(false);
    });
}

impl fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("tcp", &self.tcp)
            .field("connections", &self.connection_count())
            .finish()
    }
}

/// The delegate behind [`HttpServer::from_fn`]: buffers each request, then
/// calls the closure (Tornado's `_CallableAdapter`).
struct CallableAdapter {
    /// The user's handler.
    handler: Rc<HandlerFn>,
}

impl HttpServerConnectionDelegate for CallableAdapter {
    fn start_request(&self, connection: &Http1Connection) -> Box<dyn HttpMessageDelegate> {
        Box::new(BufferedRequest {
            handler: self.handler.clone(),
            connection: connection.clone(),
            request: None,
        })
    }

    /// A request without a body goes to the closure at once: nothing to
    /// buffer.
    fn whole_request(
        &self,
        connection: &Http1Connection,
        head: RequestHead,
    ) -> Result<Flow, RequestHead> {
        match request_of(connection, head) {
            Ok(request) => call_handler(&*self.handler, connection, request),
            Err(refused) => answer_refused(connection, &refused),
        }
        Ok(None)
    }
}

/// The request of `head` as it came on `connection`, or why it is refused.
#[inline(always)]
fn request_of(
    connection: &Http1Connection,
    head: RequestHead,
) -> Result<HttpServerRequest, RefusedHead> {
    let context = connection.context();
    let started = connection.request_start_time();
    HttpServerRequest::from_head_at(head, context.remote_ip, context.protocol, started)
}

/// Answers a refused head with its error page.
fn answer_refused(connection: &Http1Connection, refused: &RefusedHead) {
    log::debug!("bad request: {}", refused.error);
    answer_error(connection, refused.error.status());
}

/// Parses the body of a whole `request` and calls `handler` with it, or
/// answers 400 for a body that does not parse.
#[inline(always)]
fn call_handler(handler: &HandlerFn, connection: &Http1Connection, mut request: HttpServerRequest) {
    if let Err(e) = request.parse_body() {
        log::debug!("bad request body: {e}");
        answer_error(connection, e.status());
        return;
    }
    handler(request, connection);
}

/// Answers `code` with a small HTML page (Tornado's default error page).
fn answer_error(connection: &Http1Connection, code: u16) {
    let reason = reason_phrase(code);
    let body = format!("<html><title>{code}: {reason}</title><body>{code}: {reason}</body></html>");
    let mut headers = HttpHeaders::new();
    headers.insert("Content-Type", "text/html; charset=UTF-8");
    headers.insert("Content-Length", Decimal::from(body.len()));
    headers.insert("Connection", "close");
    let status = ResponseStartLine::new(code);
    if connection.write_headers(&status, &headers).is_ok() {
        let _ = connection.write(body);
        let _ = connection.finish();
    }
}

/// One request being buffered for a closure handler.
struct BufferedRequest {
    /// The user's handler.
    handler: Rc<HandlerFn>,
    /// Where to answer.
    connection: Http1Connection,
    /// The request, once its head arrived and was valid.
    request: Option<HttpServerRequest>,
}

impl HttpMessageDelegate for BufferedRequest {
    fn headers_received(&mut self, start_line: StartLine, headers: HttpHeaders) -> Flow {
        let StartLine::Request(start_line) = start_line else {
            return None;
        };
        let head = RequestHead {
            start_line,
            headers,
        };
        match request_of(&self.connection, head) {
            Ok(request) => self.request = Some(request),
            Err(refused) => answer_refused(&self.connection, &refused),
        }
        None
    }

    fn data_received(&mut self, chunk: Vec<u8>) -> Flow {
        if let Some(request) = self.request.as_mut() {
            if request.body.is_empty() {
                request.body = chunk;
            } else {
                request.body.extend_from_slice(&chunk);
            }
        }
        None
    }

    fn finish(&mut self) {
        if let Some(request) = self.request.take() {
            call_handler(&*self.handler, &self.connection, request);
        }
    }

    fn on_connection_close(&mut self) {
        self.request = None;
    }
}
