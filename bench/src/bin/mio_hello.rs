//! The HTTP benchmark's floor: the least a single-threaded mio program can do
//! to answer `wrk` — accept, read until each `\r\n\r\n`, write a fixed
//! `200 Hello, world` per request (the bytes whirl's `hello_httpserver`
//! sends, `Date` included, rendered once per second). No parsing, no headers
//! looked at, no bodies (a request with one is misread: this is a floor, not
//! a server).
//!
//! ```text
//! cargo run --release -p whirl-bench --bin mio_hello -- --port 8888
//! curl -i http://127.0.0.1:8888/
//! bench/http.sh
//! ```
//!
//! Pipelined requests that arrive together are answered with one write. A
//! read shorter than the buffer means the socket was drained, so the loop
//! waits for the next event instead of reading again to see `WouldBlock`
//! (tokio does the same); a full buffer is read again.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use memchr::memmem;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
}

/// The answer up to the `Date` value: the bytes `examples/hello_httpserver.rs` sends.
const RESPONSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nDate: ";
/// The answer after the `Date` value.
const RESPONSE_TAIL: &[u8] = b"\r\n\r\nHello, world";
/// The end of a request head.
const HEAD_END: &[u8] = b"\r\n\r\n";
/// Bytes per read.
const READ_CHUNK: usize = 64 * 1024;
/// A head longer than this without its end closes the connection.
const MAX_HEAD: usize = 64 * 1024;
/// The listener's token; connections use their slab index.
const LISTENER: Token = Token(usize::MAX);

/// The one answer, its `Date` rendered once per second.
#[derive(Debug, Default)]
struct Response {
    /// The Unix second `bytes` was rendered in.
    second: u64,
    /// The whole response.
    bytes: Vec<u8>,
}

impl Response {
    /// Renders the answer again if the second changed.
    fn refresh(&mut self) {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second || self.bytes.is_empty() {
            self.second = second;
            self.bytes.clear();
            self.bytes.extend_from_slice(RESPONSE_HEAD);
            self.bytes
                .extend_from_slice(httpdate::fmt_http_date(now).as_bytes());
            self.bytes.extend_from_slice(RESPONSE_TAIL);
        }
    }
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
    fn ready(&mut self, buf: &mut [u8], response: &[u8]) -> io::Result<bool> {
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
                consumed += at + HEAD_END.len();
                self.output.extend_from_slice(response);
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
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
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
    let mut response = Response::default();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        response.refresh();
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
                connection.ready(&mut buf, &response.bytes)
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
