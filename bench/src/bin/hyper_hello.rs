//! The HTTP benchmark's peer: hyper 1 on a tokio `current_thread` runtime,
//! answering every request — any method, any path — with `200` and
//! `Hello, world`, over HTTP/1.1 with keep-alive.
//!
//! ```text
//! cargo run --release -p whirl-bench --bin hyper_hello -- --port 8888
//! curl -i http://127.0.0.1:8888/anything
//! bench/http.sh
//! ```
//!
//! The response is byte for byte the one `examples/hello_httpserver.rs`
//! sends: title-case header names, `Content-Type: text/plain`,
//! `Content-Length: 12`, then hyper's `Date` (rendered once per second, as
//! whirl's is).

use std::convert::Infallible;
use std::io;

use clap::Parser;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

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

/// The one answer.
const BODY: &[u8] = b"Hello, world";

/// Answers any request with `200 Hello, world`; hyper adds `Content-Length`
/// and drains whatever request body comes.
async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let listener = TcpListener::bind((args.address.as_str(), args.port)).await?;
    let port = listener.local_addr()?.port();
    log::info!("listening on http://{}:{port}", args.address);

    let mut http = http1::Builder::new();
    http.keep_alive(true)
        .title_case_headers(true)
        .auto_date_header(true);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: this connection is lost, the server is not.
                log::warn!("accept failed: {e}");
                continue;
            }
        };
        let connection = http.serve_connection(TokioIo::new(stream), service_fn(hello));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                log::debug!("connection from {peer}: {e}");
            }
        });
    }
}
