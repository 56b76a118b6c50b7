//! The raw HTTP/1.1 server, no web layer: a closure that answers every
//! request — any method, any path, whatever body comes — with `200` and
//! `Hello, world`. It is what the benchmarks tune and what the hostile-input
//! suites aim at.
//!
//! ```text
//! cargo run --release --example hello_httpserver -- --port 8888
//! curl -i http://127.0.0.1:8888/anything
//! wrk -t1 -c64 -d10s http://127.0.0.1:8888/
//! ```
//!
//! `--threads N` runs N threads, each with its own loop and its own
//! `SO_REUSEPORT` listener on the same port (Tornado's `reuse_port`
//! deployment: shared nothing). `SIGTERM` or Ctrl-C stops every thread
//! gracefully, giving requests in flight up to `--drain-timeout` seconds.
//!
//! `--header-timeout`, `--body-timeout`, `--max-body-size` and
//! `--decompress-request` change the connection limits, so the resource
//! attacks of `reliability/` can be aimed at them.

use std::io;
use std::time::Duration;

use clap::Parser;
use whirl::httpserver::{
    serve_threads, Http1Connection, Http1ConnectionParams, HttpServer, ResponseStartLine,
    ShutdownSignals, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_BODY_SIZE,
};
use whirl::ioloop::IoLoop;

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Threads, each with its own loop and listener.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seconds requests in flight get to finish after SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 10.0)]
    drain_timeout: f64,
    /// Answer each request this many milliseconds late, on a loop timer
    /// (for shutdown tests).
    #[arg(long, default_value_t = 0, hide = true)]
    delay_ms: u64,
    /// Seconds a client has to send a whole request head.
    #[arg(long, default_value_t = DEFAULT_HEADER_TIMEOUT.as_secs_f64())]
    header_timeout: f64,
    /// Seconds of silence allowed inside a request body.
    #[arg(long, default_value_t = DEFAULT_BODY_TIMEOUT.as_secs_f64())]
    body_timeout: f64,
    /// Most request body bytes (after decompression); 413 past it.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_SIZE)]
    max_body_size: u64,
    /// Gunzip `Content-Encoding: gzip` request bodies.
    #[arg(long)]
    decompress_request: bool,
}

/// The one answer.
const BODY: &str = "Hello, world";

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,whirl::access=warn"),
    )
    .init();
    let args = Args::parse();
    let drain_timeout = seconds("--drain-timeout", args.drain_timeout)?;
    let delay = Duration::from_millis(args.delay_ms);
    let params = Http1ConnectionParams {
        header_timeout: seconds("--header-timeout", args.header_timeout)?,
        body_timeout: seconds("--body-timeout", args.body_timeout)?,
        max_body_size: args.max_body_size,
        ..Http1ConnectionParams::default()
    };
    let decompress = args.decompress_request;
    // Caught from here on, so a signal sent once the address is known
    // cannot end the process before the drain.
    let signals = ShutdownSignals::catch()?;
    // Every thread binds the same port (`--port 0`: the one the first got)
    // and is accepting when this returns.
    let threads = args.threads.max(1);
    let servers = serve_threads(threads, args.port, Some(&args.address), move || {
        hello(delay)
            .with_params(params)
            .decompress_request(decompress)
    })?;
    log::info!("listening on http://{}:{}", args.address, servers.port());
    // The threads run until SIGTERM or Ctrl-C, then drain.
    signals.join(servers, drain_timeout)
}

/// `value` seconds as a duration; `flag` names it in the error.
fn seconds(flag: &str, value: f64) -> io::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{flag}: {e}")))
}

/// One thread's server: every request gets `200 Hello, world`, `delay`
/// late.
fn hello(delay: Duration) -> HttpServer {
    HttpServer::from_fn(move |_request, connection| {
        if delay.is_zero() {
            answer(connection);
        } else {
            let connection = connection.clone();
            IoLoop::current().call_later(delay, move || answer(&connection));
        }
    })
}

/// Sends `200 Hello, world`: head, `Content-Length` and body in one call
/// (`write_headers`, `write` and `finish` do the same in three, for a body
/// that comes in pieces).
fn answer(connection: &Http1Connection) {
    let status = ResponseStartLine::new(200); // 200 OK
    let _ = connection.respond(&status, &[("Content-Type", "text/plain")], BODY);
}
