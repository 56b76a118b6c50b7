//! What the hardening tests (`hostile.rs`, `faults.rs`) share: a server on
//! a loop of its own that the test can ask questions of (its open
//! connection count, or anything else living on the loop thread), a raw
//! HTTP/1.1 client over `std` sockets that parses one response at a time
//! and tells a closed connection from an open one without waiting, and a
//! bounded `wait_until`.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use whirl::httpserver::HttpServer;
use whirl::ioloop::{IoLoop, LoopHandle};

/// The longest any single read may wait (generous: debug builds on a loaded
/// machine are slow; never a bound on how fast anything is).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

thread_local! {
    /// The server of the loop running on this thread (set by
    /// [`Served::start`] on the server thread).
    static SERVER: RefCell<Option<HttpServer>> = const { RefCell::new(None) };
}

/// A server on a thread and loop of its own; stopped when dropped.
#[derive(Debug)]
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The loop's cross-thread handle.
    handle: LoopHandle,
    /// The loop's thread.
    thread: Option<thread::JoinHandle<()>>,
}

impl Served {
    /// Starts the server `build` makes (on the new thread, where its loop
    /// is current, so `!Send` handlers and clients live there).
    pub fn start<F>(build: F) -> Served
    where
        F: FnOnce() -> io::Result<HttpServer> + Send + 'static,
    {
        let _ = env_logger::builder().is_test(true).try_init();
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let io_loop = IoLoop::new();
            let server = build().unwrap_or_else(|e| panic!("cannot start a test server: {e}"));
            tx.send((server.local_addrs()[0], io_loop.handle()))
                .expect("the test waits for the address");
            SERVER.with(|s| *s.borrow_mut() = Some(server));
            io_loop.start();
            if let Some(server) = SERVER.with(|s| s.borrow_mut().take()) {
                server.stop();
            }
            io_loop.close();
        });
        let (addr, handle) = rx
            .recv_timeout(TEST_TIMEOUT)
            .expect("the server thread reports its address");
        Served {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// Runs `f` on the server's loop thread and returns what it returns:
    /// this is also proof that the loop is still running.
    pub fn on_loop<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        self.handle.add_callback(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(TEST_TIMEOUT)
            .expect("the server's loop did not run a callback")
    }

    /// Connections the server holds open right now.
    pub fn connection_count(&self) -> usize {
        self.on_loop(|| SERVER.with(|s| s.borrow().as_ref().map_or(0, |s| s.connection_count())))
    }

    /// Waits (bounded) until the server holds no connection at all; says
    /// whether it got there.
    pub fn drains(&self) -> bool {
        wait_until(TEST_TIMEOUT, || self.connection_count() == 0)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.handle.stop();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() && !thread::panicking() {
                panic!("the server thread panicked");
            }
        }
    }
}

/// Waits (up to `limit`) until `ready` holds; says whether it did.
pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    ready()
}

/// One response as it came over the wire.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The status line, without its CRLF.
    pub status_line: String,
    /// Header fields, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Whether the body was delimited by the server closing the
    /// connection (then the connection is known to be closed).
    pub close_delimited: bool,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why no response could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The server closed (EOF or reset) before a whole response; holds
    /// what had arrived.
    Closed(Vec<u8>),
    /// The response was not HTTP as the test understands it.
    Malformed(String),
}

/// A raw client connection.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    stream: TcpStream,
    /// Bytes read past the last response.
    pending: Vec<u8>,
}

impl Conn {
    /// Connects to `addr`; every read waits at most [`TEST_TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            pending: Vec::new(),
        }
    }

    /// Sends raw bytes; a server that already closed is not an error here
    /// (what comes back is what the test checks).
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Closes the write half (the server reads EOF after what was sent).
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }

    /// Closes the connection with a reset (RST) instead of a FIN
    /// (`SO_LINGER` 0).
    pub fn reset(self) {
        let socket = socket2::SockRef::from(&self.stream);
        socket.set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
        drop(self);
    }

    /// The underlying socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Reads the next final response (interim 1xx ones are skipped) to a
    /// request with `method`.
    pub fn read_response(&mut self, method: &str) -> Result<Response, ReadError> {
        loop {
            let response = self.read_one(method)?;
            if !(100..200).contains(&response.status) {
                return Ok(response);
            }
        }
    }

    /// Reads one response (interim or final).
    fn read_one(&mut self, method: &str) -> Result<Response, ReadError> {
        let head_end = loop {
            if let Some(i) = find(&self.pending, b"\r\n\r\n") {
                break i;
            }
            if !self.fill() {
                return Err(ReadError::Closed(std::mem::take(&mut self.pending)));
            }
        };
        let head = String::from_utf8_lossy(&self.pending[..head_end]).into_owned();
        self.pending.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ReadError::Malformed(format!("status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut response = Response {
            status,
            status_line,
            headers,
            ..Response::default()
        };
        if method == "HEAD" || matches!(status, 100..=199 | 204 | 304) {
            return Ok(response);
        }
        if response
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            response.body = self.read_chunked()?;
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| ReadError::Malformed(format!("Content-Length {length:?}")))?;
            while self.pending.len() < length {
                if !self.fill() {
                    return Err(ReadError::Closed(std::mem::take(&mut self.pending)));
                }
            }
            response.body = self.pending.drain(..length).collect();
        } else {
            while self.fill() {}
            response.body = std::mem::take(&mut self.pending);
            response.close_delimited = true;
        }
        Ok(response)
    }

    /// Whether the server closed this connection: sends a `GET /` and reads.
    /// EOF or a reset means closed; a `200` means it was open and in sync
    /// (its framing of what came before was right). Anything else is an
    /// error: the connection is open but out of step.
    pub fn probe_closed(&mut self) -> Result<bool, String> {
        if !self.pending.is_empty() {
            return Err(format!(
                "unexpected bytes after the response: {:?}",
                String::from_utf8_lossy(&self.pending)
            ));
        }
        self.send(b"GET / HTTP/1.1\r\nHost: probe\r\n\r\n");
        match self.read_response("GET") {
            Err(ReadError::Closed(rest)) if rest.is_empty() => Ok(true),
            Err(e) => Err(format!("the follow-up request got {e:?}")),
            Ok(r) if r.status == 200 && r.body == b"ok" => Ok(false),
            Ok(r) => Err(format!(
                "the follow-up request on the same connection got {:?} {:?}",
                r.status_line,
                r.text()
            )),
        }
    }

    /// Reads a chunked body.
    fn read_chunked(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| ReadError::Malformed(format!("chunk size {line:?}")))?;
            if size == 0 {
                // Trailers end with an empty line.
                while !self.read_line()?.is_empty() {}
                return Ok(body);
            }
            while self.pending.len() < size + 2 {
                if !self.fill() {
                    return Err(ReadError::Closed(body));
                }
            }
            body.extend(self.pending.drain(..size));
            self.pending.drain(..2);
        }
    }

    /// Reads one CRLF-ended line.
    fn read_line(&mut self) -> Result<String, ReadError> {
        loop {
            if let Some(i) = find(&self.pending, b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending[..i]).into_owned();
                self.pending.drain(..i + 2);
                return Ok(line);
            }
            if !self.fill() {
                return Err(ReadError::Closed(std::mem::take(&mut self.pending)));
            }
        }
    }

    /// Reads more bytes; `false` at EOF or on a reset. Panics when nothing
    /// arrives within [`TEST_TIMEOUT`].
    fn fill(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("no reply within {TEST_TIMEOUT:?}")
                }
                Err(_) => return false,
            }
        }
    }

    /// Reads until the server closes (EOF or reset); returns what came.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.pending)
    }
}

/// The first index of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `GET path` on a fresh connection; the response.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let mut conn = Conn::connect(addr);
    conn.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    conn.read_response("GET")
        .unwrap_or_else(|e| panic!("GET {path}: {e:?}"))
}

/// Checks that a fresh connection gets `200 ok` for `GET /`.
///
/// # Errors
///
/// What went wrong, as a sentence.
pub fn serves(addr: SocketAddr) -> Result<(), String> {
    let mut conn = Conn::connect(addr);
    if !conn.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n") {
        return Err("a fresh connection could not send".to_string());
    }
    match conn.read_response("GET") {
        Ok(r) if r.status == 200 && r.body == b"ok" => Ok(()),
        Ok(r) => Err(format!(
            "a fresh connection got {:?} {:?} instead of 200",
            r.status_line,
            r.text()
        )),
        Err(e) => Err(format!("a fresh connection got no response: {e:?}")),
    }
}

/// Panics unless a fresh connection gets `200 ok` for `GET /`.
pub fn assert_serves(addr: SocketAddr) {
    if let Err(e) = serves(addr) {
        panic!("{e}");
    }
}
