//! httpbin's request-inspection API on whirl's web layer: the same
//! endpoints and the same JSON (`args`, `data`, `files`, `form`,
//! `headers`, `json`, `method`, `origin`, `url`), byte for byte where it
//! can be — the natural peer for testing an HTTP client, and a tour of the
//! framework: path arguments, forms and multipart uploads, cookies,
//! redirects, `flush` for streaming, and timers (`/delay`, `/drip`) that
//! wait without blocking anyone.
//!
//! ```text
//! cargo run --release --example httpbin            # port 8889
//! curl -i 'http://127.0.0.1:8889/get?a=1&a=2'
//! curl -F file=@Cargo.toml -F note=hi http://127.0.0.1:8889/post
//! curl -L http://127.0.0.1:8889/redirect/3
//! curl -N 'http://127.0.0.1:8889/drip?duration=3&numbytes=6'
//! ```
//!
//! `/` lists every endpoint. `--port N` (`0` picks a free one) and
//! `--address` choose where it listens; 8889 lets it run beside the other
//! examples (`async_patterns` fetches it by default). `--xheaders` trusts
//! `X-Real-IP` / `X-Forwarded-For` from a proxy in front (the access log
//! then shows the client's address; `/ip` shows `X-Forwarded-For` as sent,
//! as httpbin does). `SIGTERM` or Ctrl-C
//! stops it gracefully.
//!
//! Where whirl answers differently from httpbin 0.10, on purpose:
//! - `url` is the URL as sent (percent-escapes kept); Werkzeug shows an
//!   IRI, with escaped UTF-8 decoded.
//! - A `files` field holding several files lists them all (httpbin shows
//!   the first only).
//! - `/status/1xx` is refused with 400: a 1xx is an interim answer, and
//!   the client would wait for another. `TRACE` is not answered (405).
//! - Numbers that do not parse (`/delay/x`, `/drip?numbytes=x`, `?seed=x`)
//!   and `/redirect/0` answer 400, where httpbin fails with 500.
//! - `?seed=` repeats the bytes of whirl's own generator, not Python's.
//! - `/drip?code=204` sends no bytes; `/response-headers` lists but does
//!   not send a `Content-Length` or `Transfer-Encoding` asked for in the
//!   query; a urlencoded body with names that are not UTF-8 is refused
//!   with 400 by whirl's form parser (Werkzeug replaces the bytes).
//! - As in Tornado, a `GET` 200 without an `ETag` gets one (the body's
//!   SHA-1) and a matching `If-None-Match` gets 304; reason phrases are
//!   the standard ones (`I'm a teapot`, not `I'M A TEAPOT`).
//! - Left out: digest auth, brotli, images, `/links`, `/forms/post`,
//!   `/encoding/utf8`, `/robots.txt`, `/deny` and the Swagger UI.

mod app;
mod auth;
mod caching;
mod cookies;
mod dynamic;
mod endpoint;
mod formats;
mod inspect;
mod json;
mod random;
mod status;
mod streams;

use std::io;

use clap::Parser;
use whirl::httpserver::{shutdown_on_signals, SHUTDOWN_TIMEOUT};
use whirl::ioloop::IoLoop;

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8889)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Take the client's address and scheme from a proxy's `X-Real-IP`,
    /// `X-Forwarded-For` and `X-Forwarded-Proto` (only behind one).
    #[arg(long)]
    xheaders: bool,
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let io_loop = IoLoop::new();
    let server = app::application()
        .listen(args.port, Some(&args.address))?
        .xheaders(args.xheaders);
    shutdown_on_signals(&server, SHUTDOWN_TIMEOUT)?;
    log::info!("listening on http://{}", server.local_addrs()[0]);
    io_loop.start();
    Ok(())
}
