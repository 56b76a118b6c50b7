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
//! deployment: shared nothing).

use std::io;

use clap::Parser;
use whirl::httpserver::{serve_threads, HttpHeaders, HttpServer, ResponseStartLine, Version};

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
}

/// The one answer.
const BODY: &str = "Hello, world";

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,whirl::access=warn"),
    )
    .init();
    let args = Args::parse();
    // Every thread binds the same port (`--port 0`: the one the first got)
    // and is accepting when this returns.
    let servers = serve_threads(args.threads.max(1), args.port, Some(&args.address), hello)?;
    log::info!("listening on http://{}:{}", args.address, servers.port());
    // The threads run until the process ends.
    servers.join()
}

/// One thread's server: every request gets `200 Hello, world`.
fn hello() -> HttpServer {
    HttpServer::from_fn(|_request, connection| {
        let mut headers = HttpHeaders::new();
        headers.insert("Content-Type", "text/plain");
        headers.insert("Content-Length", BODY.len().to_string());
        let status = ResponseStartLine {
            version: Version::Http11,
            code: 200,
            reason: "OK".to_string(),
        };
        if connection.write_headers(&status, &headers).is_ok() {
            let _ = connection.write(BODY);
            let _ = connection.finish();
        }
    })
}
