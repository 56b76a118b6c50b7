//! The harness's floor: the least a single-threaded mio program can do to
//! answer `wrk` — accept, read until each `\r\n\r\n`, write a canned
//! response per request: `Hello, World!` (text/plain), or for a head that
//! starts `GET /json` the JSON body (serialised once a second, not per
//! request) — `Date` included, rendered once per second. No parsing, no headers
//! looked at, no bodies (a request with one is misread: this is a floor, not
//! a server), no `/static/`, no `/sleep`. A copy of bench's `mio_hello` with
//! the JSON route.
//!
//! ```text
//! cargo run --release --manifest-path bench/peers/Cargo.toml --bin mio_server -- --port 8888
//! curl -i http://127.0.0.1:8888/
//! ```
//!
//! Pipelined requests that arrive together are answered with one write. A
//! read shorter than the buffer means the socket was drained, so the loop
//! waits for the next event instead of reading again to see `WouldBlock`
//! (tokio does the same); a full buffer is read again.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use memchr::memmem;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

/// The start of a head that asks for the JSON body.
const JSON_REQUEST: &[u8] = b"GET /json";
/// The end of a request head.
const HEAD_END: &[u8] = b"\r\n\r\n";
/// Bytes per read.
const READ_CHUNK: usize = 64 * 1024;
/// A head longer than this without its end closes the connection.
const MAX_HEAD: usize = 64 * 1024;
/// The listener's token; connections use their slab index.
const LISTENER: Token = Token(usize::MAX);

/// The canned answers, their `Date` rendered once per second.
#[derive(Debug, Default)]
struct Responses {
    /// The Unix second the answers were rendered in.
    second: u64,
    /// `200 Hello, World!`.
    hello: Vec<u8>,
    /// `200 {"message":"Hello, World!"}`.
    json: Vec<u8>,
}

impl Responses {
    /// Renders the answers again if the second changed.
    fn refresh(&mut self) {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second || self.hello.is_empty() {
            self.second = second;
            let date = httpdate::fmt_http_date(now);
            let json = serde_json::to_vec(&whirl_peers::MESSAGE).unwrap_or_default();
            self.hello = render("text/plain", &date, whirl_peers::HELLO);
            self.json = render("application/json", &date, &json);
        }
    }

    /// The answer to the head `head`.
    fn to(&self, head: &[u8]) -> &[u8] {
        if head.starts_with(JSON_REQUEST) {
            &self.json
        } else {
            &self.hello
        }
    }
}

/// A whole `200` response.
fn render(content_type: &str, date: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nDate: {date}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One client connection.
#[derive(Debug)]
struct Connection {
    /// The socket, registered readable and writable (edge-triggered).
    stream: TcpStream,
    /// Bytes of a request head not yet complete (never holds a whole head).
    input: Vec<u8>,
    /// Responses not yet accepted by the kernel.
    output: Vec<u8>,
}

impl Connection {
    /// Reads what the socket holds, queues one response per complete head
    /// and writes. `Ok(false)` means the connection is done.
    fn ready(&mut self, buf: &mut [u8], responses: &Responses) -> io::Result<bool> {
        loop {
            let n = match self.stream.read(buf) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.input.extend_from_slice(&buf[..n]);
            let mut consumed = 0;
            while let Some(at) = memmem::find(&self.input[consumed..], HEAD_END) {
                let response = responses.to(&self.input[consumed..]);
                self.output.extend_from_slice(response);
                consumed += at + HEAD_END.len();
            }
            self.input.drain(..consumed);
            if self.input.len() > MAX_HEAD {
                return Ok(false);
            }
            if n < buf.len() {
                break;
            }
        }
        self.flush()
    }

    /// Writes queued responses until done or the socket is full.
    fn flush(&mut self) -> io::Result<bool> {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return Ok(false),
                Ok(n) => drop(self.output.drain(..n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

fn main() -> io::Result<()> {
    let args = whirl_peers::init();
    let address: SocketAddr = format!("{}:{}", args.address, args.port)
        .parse()
        .map_err(|e| io::Error::new(ErrorKind::InvalidInput, format!("bad address: {e}")))?;
    let mut listener = TcpListener::bind(address)?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    log::info!(
        "listening on http://{}:{}",
        args.address,
        listener.local_addr()?.port()
    );

    let mut connections: Slab<Connection> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0; READ_CHUNK];
    let mut responses = Responses::default();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        responses.refresh();
        for event in &events {
            if event.token() == LISTENER {
                accept(&listener, &poll, &mut connections);
                continue;
            }
            let key = event.token().0;
            let Some(connection) = connections.get_mut(key) else {
                continue;
            };
            let keep = if event.is_readable() || event.is_read_closed() {
                connection.ready(&mut buf, &responses)
            } else {
                connection.flush()
            };
            if !matches!(keep, Ok(true)) {
                let mut gone = connections.remove(key);
                let _ = poll.registry().deregister(&mut gone.stream);
            }
        }
    }
}

/// Accepts every pending connection.
fn accept(listener: &TcpListener, poll: &Poll, connections: &mut Slab<Connection>) {
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("accept failed: {e}");
                return;
            }
        };
        let entry = connections.vacant_entry();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if poll
            .registry()
            .register(&mut stream, Token(entry.key()), interest)
            .is_ok()
        {
            entry.insert(Connection {
                stream,
                input: Vec::new(),
                output: Vec::new(),
            });
        }
    }
}
