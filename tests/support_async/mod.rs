//! What the `async_patterns` tests share: servers on threads of their own
//! (one loop each, so a blocked app never stalls its upstream or the test),
//! the test upstream, a TLS variant of it, a temporary directory, a
//! captured log, and blocking HTTP helpers with bounded waits.

pub mod upstream;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use whirl::httpclient::{HttpClient, HttpRequest, HttpResponse};
use whirl::httpserver::HttpServer;
use whirl::ioloop::{IoLoop, LoopHandle};

/// The longest any single exchange in these tests may take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A server running on a thread and loop of its own; stopped when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its loop, to stop it.
    handle: LoopHandle,
    /// Its thread.
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Starts the server `build` makes (on the new thread, where its loop
    /// is current), with the blocking detector on at 50 ms.
    pub fn start<F>(build: F) -> Server
    where
        F: FnOnce() -> io::Result<HttpServer> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel();
        let thread = thread::spawn(move || {
            let io_loop = IoLoop::new();
            io_loop.set_blocking_log_threshold(Some(Duration::from_millis(50)));
            let server = match build() {
                Ok(server) => server,
                Err(e) => panic!("cannot start a test server: {e}"),
            };
            let addr = server.local_addrs()[0];
            sender
                .send((addr, io_loop.handle()))
                .expect("the test waits for the address");
            io_loop.start();
            server.stop();
            io_loop.close();
        });
        let (addr, handle) = receiver
            .recv_timeout(Duration::from_secs(10))
            .expect("the server thread reports its address");
        Server {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Fetches `request` with the blocking client: every status comes back as
/// a response, redirects are not followed, and nothing waits longer than
/// [`EXCHANGE_TIMEOUT`].
pub fn fetch(request: impl Into<HttpRequest>) -> HttpResponse {
    let request: HttpRequest = request.into();
    let what = format!("{} {}", request.method, request.url);
    HttpClient::new()
        .fetch(
            request
                .raise_error(false)
                .follow_redirects(false)
                .decompress_response(false)
                .connect_timeout(EXCHANGE_TIMEOUT)
                .request_timeout(EXCHANGE_TIMEOUT),
        )
        .unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

/// When one request of a batch was sent and answered.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// Just before it was sent.
    pub start: Instant,
    /// When its answer was in.
    pub end: Instant,
}

/// Sends `count` `GET`s of `url` at once (one thread each, released
/// together) and returns their spans, asserting each answered 200.
pub fn concurrent_gets(url: &str, count: usize) -> Vec<Span> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(count));
    let threads: Vec<_> = (0..count)
        .map(|_| {
            let (url, barrier) = (url.to_string(), barrier.clone());
            thread::spawn(move || {
                let client = HttpClient::new();
                barrier.wait();
                let start = Instant::now();
                let response = client
                    .fetch(HttpRequest::get(url.as_str()).request_timeout(EXCHANGE_TIMEOUT))
                    .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
                let end = Instant::now();
                assert_eq!(response.code, 200, "GET {url}: {}", response.text());
                Span { start, end }
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("request thread"))
        .collect()
}

/// From the first start to the last end.
pub fn wall_time(spans: &[Span]) -> Duration {
    let first = spans.iter().map(|s| s.start).min().expect("spans");
    let last = spans.iter().map(|s| s.end).max().expect("spans");
    last - first
}

/// Whether every request was in flight at one moment: the last one was
/// sent before the first answer came back.
pub fn all_overlap(spans: &[Span]) -> bool {
    let last_start = spans.iter().map(|s| s.start).max().expect("spans");
    let first_end = spans.iter().map(|s| s.end).min().expect("spans");
    last_start < first_end
}

/// Sends raw `bytes` on a new connection and reads the whole answer (the
/// request should say `Connection: close`): returns the status, the head
/// and the body (de-chunked).
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(EXCHANGE_TIMEOUT)).unwrap();
    stream.write_all(bytes).expect("send");
    read_response(&mut stream)
}

/// Reads one response until the server closes: (status, head, body).
pub fn read_response(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("read the answer");
    parse_response(&all)
}

/// Splits a response read to its end into (status, head, body).
pub fn parse_response(all: &[u8]) -> (u16, String, Vec<u8>) {
    let split = find(all, b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let mut body = all[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

/// The position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a complete chunked body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n").expect("a chunk size line");
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("a hexadecimal chunk size");
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
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

/// Deterministic bytes that look random (every byte value, no repeats a
/// shifted copy could hide).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A directory removed (with its contents) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory under the system's temporary one.
    pub fn new(label: &str) -> TempDir {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "whirl-async-patterns-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The names of the files directly in it.
    pub fn file_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read the directory")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Warnings and errors logged by any server in this test binary.
pub fn captured_log() -> Vec<String> {
    logger()
        .lines
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Installs the capturing logger (once).
pub fn capture_log() {
    let _ = logger();
}

/// The logger: keeps warnings and errors.
struct Capture {
    /// What was logged.
    lines: Mutex<Vec<String>>,
}

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let line = format!("{} {}: {}", record.level(), record.target(), record.args());
            self.lines
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line);
        }
    }

    fn flush(&self) {}
}

/// The installed logger.
fn logger() -> &'static Capture {
    static LOGGER: OnceLock<&'static Capture> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture {
            lines: Mutex::new(Vec::new()),
        }));
        if log::set_logger(capture).is_ok() {
            log::set_max_level(log::LevelFilter::Warn);
        }
        capture
    })
}
