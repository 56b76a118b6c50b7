//! The seed's walk through Tornado's ways of (not) blocking the loop, one
//! route per handler: a task that blocks the server (`/sync`), one
//! scheduled with `call_later` (`/async`), awaited as a subprocess
//! (`/async_task`), handed to a thread pool (`/future`) and awaited from
//! it under a deadline (`/future_response`); fetching another service with
//! the blocking client, a callback and `await` (`/client/*`); a streaming
//! forwarding proxy (`/proxy/<path>`); an upload forwarded to an OCR
//! service as multipart (`/upload`). See `app/` for each handler.
//!
//! ```text
//! cargo run --release --example httpbin          # the upstream, port 8889
//! cargo run --release --example ocr_service      # the OCR stand-in, port 8890
//! cargo run --release --example async_patterns   # this, port 8888
//! curl -i http://127.0.0.1:8888/async_task
//! curl -i 'http://127.0.0.1:8888/future_response?timeout=0.5'   # 504: the task takes 1 s
//! curl -i -d name=whirl http://127.0.0.1:8888/proxy/post
//! curl -i -F type=id -F file=@photo.jpg http://127.0.0.1:8888/upload
//! ```
//!
//! Try `/sync` from two terminals at once: the second waits for the first,
//! and the log warns that the loop was blocked. `--task` sets the slow task
//! (`sh -c`; default `sleep 1`, the seed used `ping -c 2 host`).
//! `SIGTERM` or Ctrl-C stops it gracefully.

mod app;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use whirl::httpserver::{shutdown_on_signals, SHUTDOWN_TIMEOUT};
use whirl::ioloop::IoLoop;

use app::{Config, DEMO_API_KEY, DEMO_API_SECRET};

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// What /client/* fetch and /proxy/<path> forwards to (the httpbin
    /// example by default).
    #[arg(long, default_value = "http://127.0.0.1:8889")]
    upstream: String,
    /// Where /upload posts images (the ocr_service example by default).
    #[arg(long, default_value = "http://127.0.0.1:8890/")]
    ocr_url: String,
    /// Where /upload saves files [default: <temp dir>/whirl-uploads].
    #[arg(long)]
    upload_dir: Option<PathBuf>,
    /// The slow task, run with `sh -c`.
    #[arg(long, default_value = "sleep 1")]
    task: String,
    /// API key sent to the OCR service.
    #[arg(long, default_value = DEMO_API_KEY)]
    api_key: String,
    /// API secret sent to the OCR service.
    #[arg(long, default_value = DEMO_API_SECRET)]
    api_secret: String,
    /// Seconds an upstream (or OCR) request may take.
    #[arg(long, default_value_t = 20.0)]
    upstream_timeout: f64,
    /// Threads of the pool behind /future and /future_response.
    #[arg(long, default_value_t = 10)]
    pool_size: usize,
    /// Most upstream requests at once (Tornado's max_clients).
    #[arg(long, default_value_t = 10)]
    max_clients: usize,
    /// Warn when one step blocks the loop longer than this many seconds
    /// (0 turns the detector off).
    #[arg(long, default_value_t = 0.05)]
    blocking_threshold: f64,
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let seconds = |s: f64, what: &str| {
        Duration::try_from_secs_f64(s)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}")))
    };
    let upload_dir = args
        .upload_dir
        .unwrap_or_else(|| std::env::temp_dir().join("whirl-uploads"));
    std::fs::create_dir_all(&upload_dir)?;
    let config = Config {
        upstream: args.upstream,
        ocr_url: args.ocr_url,
        upload_dir,
        task: args.task,
        api_key: args.api_key,
        api_secret: args.api_secret,
        upstream_timeout: seconds(args.upstream_timeout, "--upstream-timeout")?,
        pool_size: args.pool_size,
        max_clients: args.max_clients,
    };
    let threshold = seconds(args.blocking_threshold, "--blocking-threshold")?;

    let io_loop = IoLoop::new();
    // The blocking detector (Tornado 4's set_blocking_log_threshold): /sync
    // and /client/sync trip it on purpose.
    io_loop.set_blocking_log_threshold((!threshold.is_zero()).then_some(threshold));
    log::info!(
        "task {:?}, upstream {}, OCR {}, uploads in {}",
        config.task,
        config.upstream,
        config.ocr_url,
        config.upload_dir.display()
    );
    let server = app::application(config).listen(args.port, Some(&args.address))?;
    shutdown_on_signals(&server, SHUTDOWN_TIMEOUT)?;
    log::info!("listening on http://{}", server.local_addrs()[0]);
    io_loop.start();
    Ok(())
}
