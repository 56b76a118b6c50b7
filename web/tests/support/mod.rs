//! Shared helpers for the web behaviour tests: an application served on
//! its own loop in a background thread, and a raw `std` HTTP/1.1 client
//! that parses responses (Content-Length, chunked, or until close) and
//! keeps the raw bytes.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use whirl_ioloop::{IoLoop, LoopHandle};
use whirl_web::Application;

/// Every read fails the test after this long (generous: debug builds on a
/// loaded machine are slow; never a bound on how fast anything is).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An application served on 127.0.0.1 (a free port) by a loop in its own
/// thread; stopped when dropped.
#[derive(Debug)]
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The loop's cross-thread handle.
    handle: LoopHandle,
    /// The loop's thread.
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.handle.stop();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() && !thread::panicking() {
                panic!("the server thread panicked");
            }
        }
    }
}

/// Serves the application `make` builds (on the server thread: handlers
/// are `!Send`).
pub fn serve<F>(make: F) -> TestApp
where
    F: FnOnce() -> Application + Send + 'static,
{
    let _ = env_logger::builder().is_test(true).try_init();
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let io_loop = IoLoop::new();
        let app = make();
        let server = app.listen(0, Some("127.0.0.1")).expect("listen");
        tx.send((server.local_addrs()[0], io_loop.handle()))
            .expect("send addr");
        io_loop.start();
        drop(server);
        io_loop.close();
    });
    let (addr, handle) = rx
        .recv_timeout(TEST_TIMEOUT)
        .expect("the app did not start");
    TestApp {
        addr,
        handle,
        thread: Some(thread),
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header fields, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
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

    /// Every value of header `name`.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The cookies the response sets, by name (value only).
    pub fn cookies(&self) -> HashMap<String, String> {
        self.headers_named("set-cookie")
            .into_iter()
            .filter_map(|c| {
                let pair = c.split(';').next()?;
                let (name, value) = pair.split_once('=')?;
                Some((
                    name.trim().to_string(),
                    value.trim().trim_matches('"').to_string(),
                ))
            })
            .collect()
    }
}

/// A keep-alive client connection.
#[derive(Debug)]
pub struct Client {
    /// The socket.
    stream: TcpStream,
    /// Bytes read past the last response.
    pending: Vec<u8>,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        Client {
            stream,
            pending: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads one response to a request with `method`.
    pub fn read_response(&mut self, method: &str) -> Response {
        let head_end = loop {
            if let Some(i) = find(&self.pending, b"\r\n\r\n") {
                break i;
            }
            self.fill()
                .expect("the server closed before a response head");
        };
        let head = String::from_utf8_lossy(&self.pending[..head_end]).into_owned();
        self.pending.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let mut parts = status_line.splitn(3, ' ');
        let _version = parts.next();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .expect("a status code");
        let reason = parts.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut response = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        let no_body = method == "HEAD" || matches!(status, 100..=199 | 204 | 304);
        if no_body {
            return response;
        }
        if response
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            response.body = self.read_chunked();
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length.parse().expect("a Content-Length");
            while self.pending.len() < length {
                self.fill().expect("the body was cut short");
            }
            response.body = self.pending.drain(..length).collect();
        } else {
            while self.fill().is_some() {}
            response.body = std::mem::take(&mut self.pending);
        }
        response
    }

    /// Sends a request and reads its response.
    pub fn request(&mut self, raw: &str) -> Response {
        self.send(raw.as_bytes());
        let method = raw.split(' ').next().unwrap_or("GET").to_string();
        self.read_response(&method)
    }

    /// Closes the connection with a reset (RST) instead of a FIN.
    pub fn reset(self) {
        let socket = socket2::SockRef::from(&self.stream);
        socket.set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
        drop(self);
    }

    /// Whether the server closed the connection (EOF, or reset) within the
    /// test timeout, with nothing more sent.
    pub fn is_closed(&mut self) -> bool {
        self.fill().is_none() && self.pending.is_empty()
    }

    /// Reads a chunked body.
    fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.pending, b"\r\n") {
                    break i;
                }
                self.fill().expect("cut in a chunk size");
            };
            let line = String::from_utf8_lossy(&self.pending[..line_end]).into_owned();
            self.pending.drain(..line_end + 2);
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16)
                .expect("a chunk size");
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    let end = loop {
                        if let Some(i) = find(&self.pending, b"\r\n") {
                            break i;
                        }
                        self.fill().expect("cut in trailers");
                    };
                    self.pending.drain(..end + 2);
                    if end == 0 {
                        return body;
                    }
                }
            }
            while self.pending.len() < size + 2 {
                self.fill().expect("cut in a chunk");
            }
            body.extend(self.pending.drain(..size));
            self.pending.drain(..2);
        }
    }

    /// Reads more bytes; `None` at EOF or on a reset.
    fn fill(&mut self) -> Option<usize> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    return Some(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("no reply within {TEST_TIMEOUT:?}")
                }
                Err(_) => return None,
            }
        }
    }
}

/// The first index of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection.
pub fn fetch(addr: SocketAddr, raw: &str) -> Response {
    Client::connect(addr).request(raw)
}

/// `GET path` (HTTP/1.1, keep-alive) on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    fetch(addr, &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
}

/// A fresh directory under the system's temp dir, removed (with its
/// contents) when dropped.
#[derive(Debug)]
pub struct TempDir {
    /// The directory.
    path: std::path::PathBuf,
}

impl TempDir {
    /// Creates `whirl-web-<label>-<pid>-<n>` in the temp dir.
    pub fn new(label: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("whirl-web-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Writes `bytes` to `relative` (creating its parent directories) and
    /// returns the file's path.
    pub fn write(&self, relative: &str, bytes: impl AsRef<[u8]>) -> std::path::PathBuf {
        let path = self.path.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dirs");
        }
        std::fs::write(&path, bytes).expect("write a temp file");
        path
    }

    /// Creates directory `relative` (and its parents); returns its path.
    pub fn mkdir(&self, relative: &str) -> std::path::PathBuf {
        let path = self.path.join(relative);
        std::fs::create_dir_all(&path).expect("create a dir");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
