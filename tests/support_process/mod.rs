//! What the process-level tests (`shutdown`, `nginx`) share: built example
//! binaries started as child processes with their log captured, signals
//! sent with `kill(1)`, bounded waits for their exit, and a raw HTTP/1.1
//! client that tells a whole response from a truncated one.

#![allow(dead_code)] // each test binary uses its own part

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a response may take to start and to finish: longer than any
/// drain deadline in these tests, so a silent server shows as a failure.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Path of a built example, next to this test's own binary.
///
/// # Panics
///
/// If it was not built (`cargo build --examples` first).
pub fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --examples` first",
        path.display()
    );
    path
}

/// Sends `signal` (`TERM`, `INT`, `KILL`, …) to process `pid` with `kill(1)`.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -s {signal} {pid} failed");
}

/// A server example running as a child process; killed (SIGKILL) when
/// dropped unless it already exited.
pub struct ExampleServer {
    /// The example's name, for messages.
    pub name: String,
    /// Where it listens (from its `listening on http://ADDR` line).
    pub addr: SocketAddr,
    /// The process.
    child: Child,
    /// Every log line so far.
    lines: Arc<Mutex<Vec<String>>>,
    /// Log lines as they come, after the `listening on` one.
    log: mpsc::Receiver<String>,
    /// Its exit status, once reaped.
    status: Option<ExitStatus>,
}

impl ExampleServer {
    /// Starts example `name` with `--port 0` and `args`, and waits for its
    /// `listening on http://ADDR` line.
    pub fn start(name: &str, args: &[&str]) -> ExampleServer {
        let mut child = Command::new(example(name))
            .args(["--port", "0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        // Step 1. Read the log on a thread of its own (the server must
        // never block on a full pipe), keeping every line.
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (sender, log) = mpsc::channel();
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                let _ = sender.send(line);
            }
        });
        // Step 2. Wait for the address.
        let marker = "listening on http://";
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = log
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("{name} logged no address ({e})"));
            if let Some(at) = line.find(marker) {
                let text = line[at + marker.len()..].trim();
                break text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"));
            }
        };
        ExampleServer {
            name: name.to_string(),
            addr,
            child,
            lines,
            log,
            status: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`, …).
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Waits up to `timeout` for the process to exit; its status, or
    /// `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
            if self.status.is_none() {
                if Instant::now() >= deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.status
    }

    /// Waits up to `timeout` for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!(
                    "{}: no log line with {needle:?} ({e}); log:\n{}",
                    self.name,
                    self.log_text()
                ),
            }
        }
    }

    /// The whole log so far (give the reader a moment after exit).
    pub fn log_text(&self) -> String {
        std::thread::sleep(Duration::from_millis(50));
        self.lines.lock().unwrap().join("\n")
    }

    /// The request counts of every `shutting down (N requests in flight)`
    /// line so far (one per server thread).
    pub fn in_flight_at_shutdown(&self) -> Vec<usize> {
        self.log_text()
            .lines()
            .filter_map(|line| {
                let rest = &line[line.find("shutting down (")? + "shutting down (".len()..];
                rest.split(' ').next()?.parse().ok()
            })
            .collect()
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A whole response: its status, body, and whether it said
    /// `Connection: close`.
    Complete {
        /// Status code.
        status: u16,
        /// The body, exactly `Content-Length` bytes.
        body: Vec<u8>,
        /// Whether the connection closes after it.
        close: bool,
    },
    /// The connection was refused (nobody listening) or reset before it
    /// was accepted (the listener closed): no request was sent.
    Refused,
    /// The connection was closed or reset before any byte of a response.
    ClosedBeforeAnyByte,
    /// Part of a response arrived, then the connection ended: a lost
    /// request.
    Truncated(String),
}

impl Outcome {
    /// Whether this is a whole `200`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Complete { status: 200, .. })
    }
}

/// A keep-alive HTTP/1.1 client over one connection at a time, that
/// reconnects when the server closes.
pub struct Client {
    /// Where to connect.
    addr: SocketAddr,
    /// The open connection, if any.
    stream: Option<BufReader<TcpStream>>,
}

impl Client {
    /// A client of `addr` (connects on first use).
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, stream: None }
    }

    /// Sends `GET path` with `headers` (each `Name: value`), on the open
    /// connection or a new one, and reads the response.
    pub fn get(&mut self, path: &str, headers: &[&str]) -> Outcome {
        // Step 1. A connection.
        if self.stream.is_none() {
            match TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
                    stream.set_nodelay(true).unwrap();
                    self.stream = Some(BufReader::new(stream));
                }
                // A listener closing while the handshake was in its queue
                // resets it: refused too, nothing was sent.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Outcome::Refused
                }
                Err(e) => return Outcome::Truncated(format!("connect: {e}")),
            }
        }
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        // Step 2. The request, then the response.
        let stream = self.stream.as_mut().expect("connected");
        let outcome = match stream.get_mut().write_all(request.as_bytes()) {
            Ok(()) => read_response(stream),
            Err(_) => Outcome::ClosedBeforeAnyByte,
        };
        if !matches!(outcome, Outcome::Complete { close: false, .. }) {
            self.stream = None;
        }
        outcome
    }
}

/// Reads one response framed by `Content-Length`.
fn read_response(stream: &mut BufReader<TcpStream>) -> Outcome {
    // Step 1. The head, line by line; nothing at all is a close before
    // any byte.
    let mut head = Vec::new();
    loop {
        let before = head.len();
        match stream.read_until(b'\n', &mut head) {
            Ok(0) if head.is_empty() => return Outcome::ClosedBeforeAnyByte,
            Ok(0) => return Outcome::Truncated(format!("head cut short: {head:?}")),
            Ok(_) if &head[before..] == b"\r\n" => break,
            Ok(_) => {}
            Err(e) if head.is_empty() && is_reset(&e) => return Outcome::ClosedBeforeAnyByte,
            Err(e) => return Outcome::Truncated(format!("head: {e} after {head:?}")),
        }
    }
    // Step 2. Status and framing.
    let head = String::from_utf8_lossy(&head).into_owned();
    let status: u16 = match head.split(' ').nth(1).and_then(|s| s.parse().ok()) {
        Some(status) => status,
        None => return Outcome::Truncated(format!("bad status line in {head:?}")),
    };
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let Some(length) = header("Content-Length").and_then(|v| v.parse::<usize>().ok()) else {
        return Outcome::Truncated(format!("no Content-Length in {head:?}"));
    };
    let close = header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    // Step 3. The body, whole.
    let mut body = vec![0; length];
    if let Err(e) = stream.read_exact(&mut body) {
        return Outcome::Truncated(format!("body of {length} bytes: {e}"));
    }
    Outcome::Complete {
        status,
        body,
        close,
    }
}

/// Whether `e` says the peer reset or closed the connection.
fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}
