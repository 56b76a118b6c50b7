//! Shared helpers for the HTTP server behaviour tests: a server running on
//! its own loop in a background thread, a raw `std` client that speaks bytes
//! (with a timeout on every read), and a small response reader that keeps
//! the raw bytes so tests can assert exact framing.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use whirl_httpserver::{
    Http1Connection, Http1ConnectionParams, HttpHeaders, HttpServer, HttpServerRequest,
    ResponseStartLine, Version,
};
use whirl_ioloop::{sleep, IoLoop, LoopHandle};

/// The body the hello server answers a request without a body with.
pub const HELLO: &str = "Hello, world";

/// Every test ends by itself: a stuck read or loop fails after this long.
/// Generous, because debug builds on a loaded machine are slow; never an
/// upper bound on how fast anything should be.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`exchange`] waits with no new bytes before it decides the
/// server is keeping the connection open.
pub const QUIET: Duration = Duration::from_millis(1500);

/// A server running on its own loop in a background thread; stopped (and
/// the thread joined) when dropped.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    /// The loop's cross-thread handle.
    handle: LoopHandle,
    /// The loop's thread.
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.stop();
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread fails the test (unless the test
            // is already failing).
            if thread.join().is_err() && !thread::panicking() {
                panic!("the server thread panicked");
            }
        }
    }
}

/// Starts the server `make` builds (on the server thread: servers and
/// delegates are `!Send`) on 127.0.0.1, a free port, in a loop of its own.
pub fn spawn_server<F>(make: F) -> TestServer
where
    F: FnOnce() -> HttpServer + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let io_loop = IoLoop::new();
        let server = make();
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
        handle,
        thread: Some(thread),
    }
}

/// The hello server (see [`hello_app`]) with `params`.
pub fn hello_server(params: Http1ConnectionParams) -> TestServer {
    spawn_server(move || hello_app().with_params(params))
}

/// A closure server that answers every request — any method, any path —
/// with 200: the request body echoed back if there was one, else
/// [`HELLO`]; `X-Method` and `X-Path` say what was asked.
pub fn hello_app() -> HttpServer {
    HttpServer::from_fn(|request, connection| {
        let body = if request.body.is_empty() {
            HELLO.as_bytes().to_vec()
        } else {
            request.body.clone()
        };
        respond(connection, &request, 200, body);
    })
}

/// Answers `request` on `connection` with `code`, a `Content-Length` and
/// `body`.
pub fn respond(
    connection: &Http1Connection,
    request: &HttpServerRequest,
    code: u16,
    body: Vec<u8>,
) {
    let mut headers = HttpHeaders::new();
    headers.insert("Content-Type", "text/plain");
    headers.insert("Content-Length", body.len().to_string());
    headers.insert("X-Method", request.method());
    headers.insert("X-Path", request.path());
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

// ----- the raw client ---------------------------------------------------------

/// Connects to `addr` with [`TEST_TIMEOUT`] on reads and writes.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TEST_TIMEOUT)).unwrap();
    stream
}

/// Writes `bytes` on a fresh connection and reads until the server closes
/// it or stays silent for [`QUIET`]: the bytes received, and whether the
/// server closed the connection (EOF or reset).
pub fn exchange(addr: SocketAddr, bytes: &[u8]) -> (Vec<u8>, bool) {
    exchange_with(addr, bytes, QUIET)
}

/// [`exchange`] with a chosen quiet period.
pub fn exchange_with(addr: SocketAddr, bytes: &[u8], quiet: Duration) -> (Vec<u8>, bool) {
    let mut stream = connect(addr);
    // The server may close before it has read everything (a 431, a 413):
    // a failed write is not the test's failure, what came back is.
    let _ = stream.write_all(bytes);
    read_until_close_or_quiet(&mut stream, quiet)
}

/// Reads until EOF (or a reset), or until nothing arrives for `quiet`;
/// returns the bytes and whether the connection was closed.
pub fn read_until_close_or_quiet(stream: &mut TcpStream, quiet: Duration) -> (Vec<u8>, bool) {
    stream.set_read_timeout(Some(quiet)).unwrap();
    let deadline = Instant::now() + TEST_TIMEOUT;
    let mut reply = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        assert!(Instant::now() < deadline, "the server kept talking");
        match stream.read(&mut buf) {
            Ok(0) => return (reply, true),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (reply, false)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (reply, true),
        }
    }
}

/// Reads until the server closes the connection (EOF or reset), failing the
/// test after [`TEST_TIMEOUT`]; returns what arrived first.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let (reply, closed) = read_until_close_or_quiet(stream, TEST_TIMEOUT);
    assert!(closed, "the server did not close the connection");
    reply
}

/// Whether the server has closed `stream`: waits up to `within` for EOF,
/// failing the test if any bytes arrive instead.
pub fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let (reply, closed) = read_until_close_or_quiet(stream, within);
    assert!(
        reply.is_empty(),
        "unexpected bytes: {:?}",
        String::from_utf8_lossy(&reply)
    );
    closed
}

/// The status line of `reply` (without its CRLF), or `""`.
pub fn status_line(reply: &[u8]) -> String {
    let end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(reply.len());
    String::from_utf8_lossy(&reply[..end]).into_owned()
}

/// Asserts that a fresh connection to `addr` is served: a plain GET gets a
/// 200 with the hello body.
pub fn assert_serves(addr: SocketAddr) {
    if let Err(e) = serves(addr) {
        panic!("{e}");
    }
}

/// Whether a fresh connection to `addr` is served (see [`assert_serves`]).
///
/// # Errors
///
/// What went wrong, as a sentence.
pub fn serves(addr: SocketAddr) -> Result<(), String> {
    let mut stream = connect(addr);
    stream
        .write_all(b"GET /alive HTTP/1.1\r\nHost: test\r\n\r\n")
        .map_err(|e| format!("a fresh connection could not send: {e}"))?;
    let response = read_response(&mut stream, false)
        .map_err(|e| format!("a fresh connection got no response: {e}"))?;
    if response.code != 200 || response.body != HELLO.as_bytes() {
        return Err(format!(
            "a fresh connection got {:?} instead of 200",
            response.text()
        ));
    }
    Ok(())
}

// ----- reading responses ------------------------------------------------------

/// One response as it came over the wire.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// The status code.
    pub code: u16,
    /// The status line, without CRLF.
    pub status_line: String,
    /// Header fields in order, as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Every byte of the response (head and framed body).
    pub raw: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether header `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The raw response as text, for failure messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// Reads bytes from a socket, keeping what it read beyond each response.
#[derive(Debug)]
pub struct Reader<'a> {
    /// The socket.
    stream: &'a mut TcpStream,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
}

impl<'a> Reader<'a> {
    /// A reader over `stream`.
    pub fn new(stream: &'a mut TcpStream) -> Reader<'a> {
        Reader {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes; `Ok(false)` at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes the first `n` bytes, reading as needed.
    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Takes one line, CRLF included.
    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return Ok(self.buf.drain(..at + 2).collect());
            }
            if !self.fill()? {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads one response. `head_request`: the request was HEAD, so the
    /// response has no body whatever its headers say.
    ///
    /// # Errors
    ///
    /// EOF (`UnexpectedEof`) or a socket error before the response is whole.
    pub fn read_response(&mut self, head_request: bool) -> io::Result<Response> {
        let mut response = Response::default();
        let first = self.line()?;
        response.raw.extend_from_slice(&first);
        response.status_line = String::from_utf8_lossy(&first[..first.len() - 2]).into_owned();
        response.code = response
            .status_line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "bad status line"))?;
        loop {
            let line = self.line()?;
            response.raw.extend_from_slice(&line);
            if line == b"\r\n" {
                break;
            }
            let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
            let (name, value) = text
                .split_once(':')
                .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "bad header"))?;
            response
                .headers
                .push((name.to_string(), value.trim().to_string()));
        }
        let no_body = head_request
            || (100..200).contains(&response.code)
            || response.code == 204
            || response.code == 304;
        if no_body {
            return Ok(response);
        }
        if let Some(length) = response.header("Content-Length") {
            let length: usize = length
                .parse()
                .map_err(|_| io::Error::new(ErrorKind::InvalidData, "bad length"))?;
            let body = self.take(length)?;
            response.raw.extend_from_slice(&body);
            response.body = body;
        } else if response
            .header("Transfer-Encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let size_line = self.line()?;
                response.raw.extend_from_slice(&size_line);
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&size_line[..size_line.len() - 2]).trim(),
                    16,
                )
                .map_err(|_| io::Error::new(ErrorKind::InvalidData, "bad chunk size"))?;
                if size == 0 {
                    let end = self.line()?;
                    response.raw.extend_from_slice(&end);
                    break;
                }
                let data = self.take(size + 2)?;
                response.raw.extend_from_slice(&data);
                response.body.extend_from_slice(&data[..size]);
            }
        } else {
            while self.fill()? {}
            let rest = std::mem::take(&mut self.buf);
            response.raw.extend_from_slice(&rest);
            response.body = rest;
        }
        Ok(response)
    }

    /// Bytes read beyond the responses returned so far.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }

    /// Waits for EOF (or a reset) up to `within`, expecting no more bytes;
    /// returns whether the server closed.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        assert!(
            self.buf.is_empty(),
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        closed_within(self.stream, within)
    }
}

/// Reads one response from `stream` (see [`Reader::read_response`]); for a
/// socket that carries one response at a time.
pub fn read_response(stream: &mut TcpStream, head_request: bool) -> io::Result<Response> {
    let mut reader = Reader::new(stream);
    let response = reader.read_response(head_request)?;
    assert!(
        reader.leftover().is_empty(),
        "bytes after the response: {:?}",
        String::from_utf8_lossy(reader.leftover())
    );
    Ok(response)
}

/// Closes both directions of `stream`.
pub fn hang_up(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Both);
}

// ----- running on the test's own loop -------------------------------------------

/// Runs `future` on `io_loop`; panics if it does not finish within
/// [`TEST_TIMEOUT`].
pub fn run_on<F: std::future::Future>(io_loop: &IoLoop, future: F) -> F::Output {
    io_loop
        .run_sync_timeout(future, TEST_TIMEOUT)
        .expect("the test did not finish in time")
}

/// Waits, without blocking the loop, until `done()` holds.
pub async fn wait_until(mut done: impl FnMut() -> bool) {
    while !done() {
        sleep(Duration::from_millis(2)).await;
    }
}

/// Waits, without blocking the loop, for a thread to finish; re-raises its
/// panic so a failing client fails the test.
pub async fn join<T>(handle: thread::JoinHandle<T>) -> T {
    wait_until(|| handle.is_finished()).await;
    match handle.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Blocks the calling (non-loop) thread until `done()` holds; fails the test
/// after [`TEST_TIMEOUT`].
pub fn block_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TEST_TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}
