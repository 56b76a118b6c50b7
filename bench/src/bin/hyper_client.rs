//! The HTTP client benchmark's peer: hyper 1's pooled client (hyper-util's
//! legacy `Client` over `HttpConnector`) on a tokio `current_thread`
//! runtime — `--requests` keep-alive GETs of one URL, `--concurrency` at a
//! time; prints `requests=N seconds=S` for `bench/client.sh`.
//!
//! ```text
//! cargo run --release -p whirl-bench --bin mio_hello -- --port 8888 &
//! cargo run --release -p whirl-bench --bin hyper_client -- --url http://127.0.0.1:8888/
//! bench/client.sh
//! ```
//!
//! Each worker is a task; the pool keeps a connection per worker. Every
//! response is checked (status 200, the whole body read and its length
//! compared), as whirl's side does.

use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

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
    let uri: Uri = match args.url.parse() {
        Ok(uri) => uri,
        Err(e) => {
            eprintln!("hyper_client: {}: {e}", args.url);
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // Workers share the count of requests not yet started; they run on
    // this thread only (a LocalSet), as whirl's do.
    let local = tokio::task::LocalSet::new();
    let started = Instant::now();
    let result: Result<usize, String> = local.block_on(&runtime, async {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(args.concurrency)
            .build_http::<Empty<Bytes>>();
        let left = Rc::new(Cell::new(args.requests));
        let workers: Vec<_> = (0..args.concurrency)
            .map(|_| {
                let (client, left, uri) = (client.clone(), left.clone(), uri.clone());
                let body_len = args.body_len;
                tokio::task::spawn_local(async move {
                    let mut done = 0usize;
                    while left.get() > 0 {
                        left.set(left.get() - 1);
                        let response = client.get(uri.clone()).await.map_err(|e| e.to_string())?;
                        let status = response.status();
                        let body = response
                            .into_body()
                            .collect()
                            .await
                            .map_err(|e| e.to_string())?
                            .to_bytes();
                        if status != 200 || body.len() != body_len {
                            return Err(format!("unexpected response: {status} {body:?}"));
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
            eprintln!("hyper_client: {e}");
            ExitCode::FAILURE
        }
    }
}
