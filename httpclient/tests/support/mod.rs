//! Shared helpers for the HTTP client behaviour tests: whirl's own server
//! on a loop of its own in a background thread (with a log of what it
//! received), a raw `std` server for hand-crafted and malformed responses,
//! and [`run`], which drives a client future on a fresh loop with a bound.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use whirl_httpserver::{
    Http1Connection, HttpHeaders, HttpServer, HttpServerRequest, ResponseStartLine, Version,
};
use whirl_ioloop::{IoLoop, LoopHandle};
use whirl_iostream::TlsServerConfig;

/// Every test ends by itself: a stuck read or loop fails after this long.
/// Generous, because debug builds on a loaded machine are slow; never an
/// upper bound on how fast anything should be.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The body the test app answers a request without a body with.
pub const HELLO: &str = "Hello, world";

/// Runs `future` to completion on a fresh loop, failing the test if it
/// takes longer than [`TEST_TIMEOUT`].
pub fn run<F: Future>(future: F) -> F::Output {
    let _ = env_logger::builder().is_test(true).try_init();
    let io_loop = IoLoop::new();
    let output = io_loop
        .run_sync_timeout(future, TEST_TIMEOUT)
        .expect("the test did not finish within TEST_TIMEOUT");
    io_loop.close();
    output
}

// ----- whirl's server on a background thread ----------------------------------

/// A request as the test app received it, and the connection it came on.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request (body read; form bodies parsed).
    pub request: HttpServerRequest,
    /// The client's address: one per connection.
    pub peer: Option<SocketAddr>,
}

/// What a [`TestServer`] shares with its test: what it received, and how
/// many requests it was answering at once.
#[derive(Debug, Default)]
pub struct Stats {
    /// Every request received, in order.
    pub seen: Mutex<Vec<Seen>>,
    /// Requests received and not yet answered.
    pub in_flight: AtomicUsize,
    /// The most requests ever received and not yet answered.
    pub max_in_flight: AtomicUsize,
}

impl Stats {
    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The last request received.
    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the server received no request")
    }

    /// How many different connections the requests came on.
    pub fn connections(&self) -> usize {
        let mut peers: Vec<_> = self.seen().iter().map(|s| s.peer).collect();
        peers.sort();
        peers.dedup();
        peers.len()
    }
}

/// A server running on its own loop in a background thread; stopped (and
/// the thread joined) when dropped.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    /// What it received.
    pub stats: Arc<Stats>,
    /// The loop's cross-thread handle.
    handle: LoopHandle,
    /// The loop's thread.
    thread: Option<thread::JoinHandle<()>>,
}

impl TestServer {
    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.stop();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() && !thread::panicking() {
                panic!("the server thread panicked");
            }
        }
    }
}

/// Starts the server `make` builds (on the server thread: servers are
/// `!Send`) on 127.0.0.1, a free port, in a loop of its own.
pub fn spawn_server<F>(make: F) -> TestServer
where
    F: FnOnce(Arc<Stats>) -> HttpServer + Send + 'static,
{
    let stats = Arc::new(Stats::default());
    let shared = stats.clone();
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let io_loop = IoLoop::new();
        let server = make(shared);
        let addr = server.listen(0, Some("127.0.0.1")).expect("listen")[0];
        tx.send((addr, io_loop.handle())).expect("send addr");
        io_loop.start();
        drop(server);
        io_loop.close();
    });
    let (addr, handle) = rx
        .recv_timeout(TEST_TIMEOUT)
        .expect("the server did not start");
    TestServer {
        addr,
        stats,
        handle,
        thread: Some(thread),
    }
}

/// The test app (see [`app`]) over plain HTTP.
pub fn app_server() -> TestServer {
    spawn_server(app)
}

/// The test app over HTTPS with the PEM certificate and key.
pub fn tls_app_server(cert_pem: &str, key_pem: &str) -> TestServer {
    let (cert, key) = (cert_pem.to_string(), key_pem.to_string());
    spawn_server(move |stats| {
        let config = TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).expect("tls");
        app(stats).with_tls(config)
    })
}

/// A self-signed certificate for `localhost` and `127.0.0.1`: (cert PEM,
/// key PEM).
pub fn self_signed() -> (String, String) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = rcgen::generate_simple_self_signed(names).expect("rcgen");
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

/// The body of the `/gzip` route, before compression.
pub fn gzip_text() -> String {
    "whirl gzip body. ".repeat(200)
}

/// `text` gzip-compressed.
pub fn gzip(text: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text).unwrap();
    encoder.finish().unwrap()
}

/// whirl's server with a closure that records every request in `stats`
/// and answers by path:
///
/// - `/status/N`: status N, body `status N`;
/// - `/redirect/N?to=URL`: status N with `Location: URL`;
/// - `/loop`: 302 to itself;
/// - `/gzip`: [`gzip_text`] gzip-compressed, `Content-Encoding: gzip`;
/// - `/slow/MS`: 200 `slow` after MS milliseconds;
/// - `/hang`: never answers;
/// - `/stream/N`: N pieces of 64 KiB (`abc…`), chunked;
/// - anything else: 200, the request body echoed back if there was one,
///   else [`HELLO`].
///
/// Every answer says `X-Method` and `X-Uri`.
pub fn app(stats: Arc<Stats>) -> HttpServer {
    HttpServer::from_fn(move |request, connection| {
        stats.seen.lock().unwrap().push(Seen {
            request: request.clone(),
            peer: connection.remote_addr(),
        });
        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let path = request.path().to_string();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut headers = HttpHeaders::new();
        headers.insert("X-Method", request.method());
        headers.insert("X-Uri", request.uri());
        match segments.as_slice() {
            ["status", code] => {
                let code = code.parse().unwrap_or(500);
                stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                respond(connection, code, headers, format!("status {code}"));
            }
            ["redirect", code] => {
                let code = code.parse().unwrap_or(500);
                let to = request
                    .arguments
                    .get("to")
                    .and_then(|v| v.first())
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                headers.insert("Location", to);
                stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                respond(connection, code, headers, "redirecting");
            }
            ["loop"] => {
                headers.insert("Location", "/loop");
                stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                respond(connection, 302, headers, "again");
            }
            ["gzip"] => {
                headers.insert("Content-Encoding", "gzip");
                stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                respond(connection, 200, headers, gzip(gzip_text().as_bytes()));
            }
            ["slow", ms] => {
                let delay = Duration::from_millis(ms.parse().unwrap_or(100));
                let connection = connection.clone();
                let stats = stats.clone();
                IoLoop::current().call_later(delay, move || {
                    stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                    respond(&connection, 200, headers, "slow");
                });
            }
            ["hang"] => {}
            ["stream", pieces] => {
                stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                let pieces: usize = pieces.parse().unwrap_or(1);
                if connection.write_headers(&status(200), &headers).is_ok() {
                    for i in 0..pieces {
                        let byte = b'a' + (i % 26) as u8;
                        let _ = connection.write(vec![byte; 64 * 1024]);
                    }
                    let _ = connection.finish();
                }
            }
            _ => {
                stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                let body = if request.body.is_empty() {
                    HELLO.as_bytes().to_vec()
                } else {
                    request.body.clone()
                };
                respond(connection, 200, headers, body);
            }
        }
    })
}

/// Answers on `connection` with `code`, `headers`, a `Content-Length` and
/// `body`.
pub fn respond(
    connection: &Http1Connection,
    code: u16,
    mut headers: HttpHeaders,
    body: impl Into<Vec<u8>>,
) {
    let body = body.into();
    headers.insert("Content-Length", body.len().to_string());
    if connection.write_headers(&status(code), &headers).is_ok() {
        let _ = connection.write(body);
        let _ = connection.finish();
    }
}

/// A status line for `code` (the reason is filled in by the connection).
pub fn status(code: u16) -> ResponseStartLine {
    ResponseStartLine {
        version: Version::Http11,
        code,
        reason: String::new(),
    }
}

// ----- a raw server -----------------------------------------------------------

/// A `std` server: each accepted connection goes to the handler, on a
/// thread of its own, with its index (0 for the first). Stops accepting
/// when dropped (handler threads end when their peers close).
#[derive(Debug)]
pub struct RawServer {
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    /// Connections accepted so far.
    accepts: Arc<AtomicUsize>,
    /// Tells the accept loop to end.
    stop: Arc<AtomicBool>,
    /// The accept loop.
    thread: Option<thread::JoinHandle<()>>,
}

impl RawServer {
    /// Starts accepting; `handler(index, connection)` serves each.
    pub fn spawn<F>(handler: F) -> RawServer
    where
        F: Fn(usize, RawConn) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let thread = {
            let (accepts, stop) = (accepts.clone(), stop.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let index = accepts.fetch_add(1, Ordering::SeqCst);
                    let handler = handler.clone();
                    thread::spawn(move || handler(index, RawConn::new(stream)));
                }
            })
        };
        RawServer {
            addr,
            accepts,
            stop,
            thread: Some(thread),
        }
    }

    /// A server that answers every request on every connection with
    /// `response`, keeping the connection open after each.
    pub fn answering(response: &'static [u8]) -> RawServer {
        RawServer::spawn(move |_, mut conn| {
            while conn.read_request().is_some() {
                if conn.write(response).is_err() {
                    break;
                }
            }
        })
    }

    /// A server that answers the first request on each connection with
    /// `response` and closes it.
    pub fn answering_once(response: &'static [u8]) -> RawServer {
        RawServer::spawn(move |_, mut conn| {
            if conn.read_request().is_some() {
                let _ = conn.write(response);
            }
        })
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A request as a raw server read it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The request line, without CRLF.
    pub line: String,
    /// The header lines, without CRLF.
    pub headers: Vec<String>,
    /// The body (by its `Content-Length`; a chunked body is de-chunked).
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// One connection of a [`RawServer`], with a read buffer.
#[derive(Debug)]
pub struct RawConn {
    /// The socket (reads time out after [`TEST_TIMEOUT`]).
    pub stream: TcpStream,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
}

impl RawConn {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream) -> RawConn {
        stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TEST_TIMEOUT)).unwrap();
        RawConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes; false at EOF or on an error.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Reads one line (without CRLF).
    fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Some(line);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Reads exactly `n` bytes.
    fn read_exact(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill() {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// Takes the bytes read and not yet consumed.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Reads up to and including `delimiter`, raw.
    pub fn read_until(&mut self, delimiter: &[u8]) -> Option<Vec<u8>> {
        loop {
            if let Some(at) = self
                .buf
                .windows(delimiter.len())
                .position(|w| w == delimiter)
            {
                return Some(self.buf.drain(..at + delimiter.len()).collect());
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Reads a request head only (for `Expect: 100-continue`).
    pub fn read_head(&mut self) -> Option<RawRequest> {
        let line = self.read_line()?;
        let mut headers = Vec::new();
        loop {
            let header = self.read_line()?;
            if header.is_empty() {
                break;
            }
            headers.push(header);
        }
        Some(RawRequest {
            line,
            headers,
            body: Vec::new(),
        })
    }

    /// Reads a whole request (head and body); `None` at EOF.
    pub fn read_request(&mut self) -> Option<RawRequest> {
        let mut request = self.read_head()?;
        let chunked = request
            .header("Transfer-Encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if chunked {
            loop {
                let size_line = self.read_line()?;
                let size_hex = size_line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_hex, 16).ok()?;
                if size == 0 {
                    while !self.read_line()?.is_empty() {}
                    break;
                }
                let data = self.read_exact(size)?;
                request.body.extend_from_slice(&data);
                self.read_exact(2)?;
            }
        } else if let Some(length) = request.header("Content-Length") {
            let length: usize = length.parse().ok()?;
            request.body = self.read_exact(length)?;
        }
        Some(request)
    }

    /// Writes all of `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Waits until the peer closes the connection (EOF or reset): true if
    /// it did within [`TEST_TIMEOUT`], false if bytes came instead.
    pub fn wait_for_close(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::TimedOut,
        }
    }
}

// ----- files ------------------------------------------------------------------

/// A directory under the system's temp dir, removed when dropped.
#[derive(Debug)]
pub struct TempDir {
    /// Its path.
    path: PathBuf,
}

impl TempDir {
    /// A new, empty directory.
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "whirl-httpclient-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` to `name` inside it; returns the file's path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, bytes).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Polls `done` on the current loop every 10 ms until it holds; panics
/// after [`TEST_TIMEOUT`].
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + TEST_TIMEOUT;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting until {what}"
        );
        whirl_ioloop::sleep(Duration::from_millis(10)).await;
    }
}
