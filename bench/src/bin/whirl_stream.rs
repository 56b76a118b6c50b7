//! The floor of whirl's own layers (bench/run.sh's `whirl-stream`): the mio
//! floor's canned answers (`bench/peers/src/bin/mio_server.rs`) served on
//! whirl's `TcpServer` and `IoStream`, with no HTTP layer — read until each
//! `\r\n\r\n`, answer `Hello, World!` (text/plain), or for a head that
//! starts `GET /json` the JSON body, `Date` included, rendered once per
//! second by the loop's clock. Set against the mio floor it says what
//! whirl's event loop and buffered stream cost; set against `whirl_raw`,
//! what the HTTP layer costs on top. No parsing, no headers looked at, no
//! bodies (a request with one is misread: this is a floor, not a server).
//!
//! ```text
//! cargo run --release -p whirl-bench --bin whirl_stream -- --port 8888
//! curl -i http://127.0.0.1:8888/json
//! ```
//!
//! Pipelined requests that arrive together are answered with one write, as
//! the mio floor does.

use std::cell::RefCell;
use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use memchr::memmem;
use serde::Serialize;
use whirl_ioloop::IoLoop;
use whirl_iostream::{spare_write_buffer, IoStream, StreamError, TcpServer};

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

/// The plaintext body.
const HELLO: &[u8] = b"Hello, World!";
/// The start of a head that asks for the JSON body.
const JSON_REQUEST: &[u8] = b"GET /json";
/// The end of a request head.
const HEAD_END: &[u8] = b"\r\n\r\n";
/// Queued bytes past which a connection waits for its writes before
/// reading on (a client that sends and never reads cannot grow the queue
/// without bound).
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// The JSON body.
#[derive(Serialize)]
struct Message {
    /// Always `Hello, World!`.
    message: &'static str,
}

/// The canned answers, their `Date` rendered once per second.
#[derive(Default)]
struct Responses {
    /// When the second the answers name ends, by the loop's clock (`None`
    /// before the first rendering).
    until: Option<Instant>,
    /// `200 Hello, World!`.
    hello: Vec<u8>,
    /// `200 {"message":"Hello, World!"}`.
    json: Vec<u8>,
}

thread_local! {
    /// This thread's answers, shared by its connections.
    static RESPONSES: RefCell<Responses> = RefCell::default();
}

impl Responses {
    /// Renders the answers again once their second is over.
    fn refresh(&mut self) {
        let now = whirl_ioloop::loop_time();
        if self.until.is_some_and(|until| now < until) {
            return;
        }
        let wall = SystemTime::now();
        let into_second = wall.duration_since(UNIX_EPOCH).map_or(Duration::ZERO, |d| {
            Duration::from_nanos(d.subsec_nanos().into())
        });
        let date = httpdate::fmt_http_date(wall);
        let json = serde_json::to_vec(&Message {
            message: "Hello, World!",
        })
        .unwrap_or_default();
        self.hello = render("text/plain", &date, HELLO);
        self.json = render("application/json", &date, &json);
        self.until = now.checked_add(Duration::from_secs(1) - into_second);
    }

    /// The answer to the head at the front of `head`.
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

/// The answers to every whole head at the front of `buf`, and the bytes
/// they took; `None` while no head is whole.
fn answer(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, StreamError> {
    let mut consumed = 0;
    let mut out = Vec::new();
    RESPONSES.with(|responses| {
        let mut responses = responses.borrow_mut();
        while let Some(at) = memmem::find(&buf[consumed..], HEAD_END) {
            if out.capacity() == 0 {
                responses.refresh();
                out = spare_write_buffer(responses.hello.len());
            }
            out.extend_from_slice(responses.to(&buf[consumed..]));
            consumed += at + HEAD_END.len();
        }
    });
    Ok((consumed > 0).then_some((out, consumed)))
}

/// Answers one connection until it closes.
async fn serve(stream: IoStream) {
    loop {
        let answers = match stream.try_read_parsed(answer) {
            Some(answers) => answers,
            None => stream.read_parsed(answer).await,
        };
        let Ok(answers) = answers else {
            return; // closed, or a head past the stream's buffer limit
        };
        let written = stream.write(answers);
        if stream.write_buffer_size() > WRITE_HIGH_WATER && written.await.is_err() {
            return;
        }
    }
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let io_loop = IoLoop::new();
    let server = TcpServer::new(|stream, _peer| serve(stream));
    let addrs = server.listen(args.port, Some(&args.address))?;
    eprintln!("listening on http://{}:{}", args.address, addrs[0].port());
    io_loop.start();
    Ok(())
}
