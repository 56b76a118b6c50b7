//! The HTTP client benchmark, whirl's side: `--requests` keep-alive GETs of
//! one URL through one `AsyncHttpClient`, `--concurrency` at a time, on one
//! loop; prints `requests=N seconds=S` for `bench/client.sh`.
//!
//! ```text
//! cargo run --release -p whirl-bench --bin mio_hello -- --port 8888 &
//! cargo run --release -p whirl-bench --bin whirl_client -- --url http://127.0.0.1:8888/
//! bench/client.sh
//! ```
//!
//! `max_clients` is the concurrency, so every worker has a slot and the
//! pool keeps one connection per worker. Every response is checked (status
//! 200, the body's length) so a broken exchange cannot pass as a fast one.

use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use clap::Parser;
use whirl_httpclient::{AsyncHttpClient, ClientConfig, HttpRequest};
use whirl_ioloop::IoLoop;

/// Command line (the same for every client of the benchmark).
#[derive(Parser, Debug)]
struct Args {
    /// The URL to fetch.
    #[arg(long)]
    url: String,
    /// Requests in all.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Expected body length (the hello servers send 12 bytes).
    #[arg(long, default_value_t = 12)]
    body_len: usize,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let io_loop = IoLoop::new();
    let client = AsyncHttpClient::with_config(ClientConfig {
        max_clients: args.concurrency,
        max_idle_per_host: args.concurrency,
        ..ClientConfig::default()
    });
    // Requests not yet started, shared by the workers.
    let left = Rc::new(Cell::new(args.requests));
    let started = Instant::now();
    let result: Result<usize, String> = io_loop.run_sync(async {
        let workers: Vec<_> = (0..args.concurrency)
            .map(|_| {
                let (client, left, url) = (client.clone(), left.clone(), args.url.clone());
                let body_len = args.body_len;
                whirl_ioloop::spawn(async move {
                    let mut done = 0usize;
                    while left.get() > 0 {
                        left.set(left.get() - 1);
                        let response = client
                            .fetch(HttpRequest::get(url.as_str()))
                            .await
                            .map_err(|e| e.to_string())?;
                        if response.code != 200 || response.body.len() != body_len {
                            return Err(format!("unexpected response: {response:?}"));
                        }
                        done += 1;
                    }
                    Ok(done)
                })
            })
            .collect();
        let mut done = 0;
        for worker in workers {
            done += worker.await.map_err(|e| e.to_string())??;
        }
        Ok(done)
    });
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(done) => {
            println!("requests={done} seconds={seconds:.4}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("whirl_client: {e}");
            ExitCode::FAILURE
        }
    }
}
