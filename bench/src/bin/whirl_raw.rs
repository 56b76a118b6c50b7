//! The harness's raw whirl server (bench/run.sh): `HttpServer::from_fn`, no
//! web layer, one loop on one thread — `examples/hello_httpserver.rs` with
//! the harness's bodies. `GET /json` answers `{"message":"Hello, World!"}`
//! serialised per request with `serde_json`; anything else
//! `Hello, World!` (text/plain).
//!
//! ```text
//! cargo run --release -p whirl-bench --bin whirl_raw -- --port 8888
//! curl -i http://127.0.0.1:8888/json
//! ```

use std::io;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;
use whirl_httpserver::{Http1ConnectionParams, HttpServer, ResponseStartLine};
use whirl_ioloop::IoLoop;
use whirl_iostream::WriteBuf;

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Idle milliseconds before a kept-alive connection is made dormant
    /// (`Http1ConnectionParams::dormant_after`); 0 never. Default: the
    /// server's default.
    #[arg(long)]
    dormant_after_ms: Option<u64>,
}

/// The plaintext body.
const HELLO: &str = "Hello, World!";

/// The JSON body.
#[derive(Serialize)]
struct Message {
    /// Always `Hello, World!`.
    message: &'static str,
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,whirl::access=warn"),
    )
    .init();
    let args = Args::parse();
    let io_loop = IoLoop::new();
    let server = HttpServer::from_fn(|request, connection| {
        let (content_type, body): (_, WriteBuf) = if request.path() == "/json" {
            let message = Message { message: HELLO };
            match serde_json::to_vec(&message) {
                Ok(json) => ("application/json", json.into()),
                Err(_) => return,
            }
        } else {
            ("text/plain", HELLO.into()) // static: no copy
        };
        let status = ResponseStartLine::new(200);
        let _ = connection.respond(&status, &[("Content-Type", content_type)], body);
    });
    let mut params = Http1ConnectionParams::default();
    if let Some(ms) = args.dormant_after_ms {
        params.dormant_after = (ms > 0).then(|| Duration::from_millis(ms));
    }
    let server = server.with_params(params);
    let addrs = server.listen(args.port, Some(&args.address))?;
    log::info!("listening on http://{}:{}", args.address, addrs[0].port());
    io_loop.start();
    Ok(())
}
