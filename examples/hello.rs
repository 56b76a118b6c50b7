//! The web framework's smallest app: one `RequestHandler` on `/` answering
//! `Hello, world`, with the access log on — Tornado's `helloworld.py`.
//!
//! ```text
//! cargo run --release --example hello
//! curl -i http://127.0.0.1:8888/
//! ```
//!
//! Each request is logged as Tornado logs it
//! (`200 GET / (127.0.0.1) 0.05ms`); `RUST_LOG=warn` silences that.
//! `--port N` (`0` picks a free one) and `--address` choose where it listens.
//! `SIGTERM` or Ctrl-C stops it gracefully: requests in flight are answered
//! first (`shutdown_on_signals`).

use std::io;

use clap::Parser;
use whirl::httpserver::{shutdown_on_signals, SHUTDOWN_TIMEOUT};
use whirl::ioloop::IoLoop;
use whirl::web::{Application, Context, HandlerResult, RequestHandler, Route};

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

/// Answers `GET /`.
struct MainHandler;

impl RequestHandler for MainHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("Hello, world");
        Ok(())
    }
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let io_loop = IoLoop::new();
    let app = Application::new(vec![Route::new("/", || MainHandler)]);
    let server = app.listen(args.port, Some(&args.address))?;
    shutdown_on_signals(&server, SHUTDOWN_TIMEOUT)?;
    log::info!("listening on http://{}", server.local_addrs()[0]);
    io_loop.start();
    Ok(())
}
