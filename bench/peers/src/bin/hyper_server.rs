//! hyper 1 on a tokio `current_thread` runtime: one thread, HTTP/1.1,
//! keep-alive, the harness's routes (see the crate docs).
//!
//! ```text
//! cargo run --release --manifest-path bench/peers/Cargo.toml --bin hyper_server -- --port 8888
//! curl -i http://127.0.0.1:8888/json
//! ```
//!
//! Pipelined responses are flushed together (`pipeline_flush(true)`). hyper
//! has no file server: `/static/NAME` reads the file whole per request
//! (`std::fs::read`, from the page cache) and sends it as one body.

use std::convert::Infallible;
use std::io;
use std::path::Path;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use whirl_peers::{static_file, HELLO, MESSAGE, SLEEP};

/// A response with `body` and `Content-Type`; hyper adds `Content-Length`
/// and `Date`.
fn respond(content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Routes one request.
async fn serve(
    request: Request<Incoming>,
    dir: &'static Path,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    Ok(match path {
        "/" => respond("text/plain", Bytes::from_static(HELLO)),
        "/json" => match serde_json::to_vec(&MESSAGE) {
            Ok(json) => respond("application/json", Bytes::from(json)),
            Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
        },
        "/sleep" => {
            tokio::time::sleep(SLEEP).await;
            respond("text/plain", Bytes::from_static(HELLO))
        }
        _ => match static_file(dir, path).map(std::fs::read) {
            Some(Ok(bytes)) => respond("application/octet-stream", Bytes::from(bytes)),
            _ => status(StatusCode::NOT_FOUND),
        },
    })
}

/// An empty response with `code`.
fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let args = whirl_peers::init();
    let listener = TcpListener::bind((args.address.as_str(), args.port)).await?;
    let port = listener.local_addr()?.port();
    log::info!("listening on http://{}:{port}", args.address);
    // Every connection reads it; it lives as long as the process.
    let dir: &'static Path = Box::leak(args.static_dir.into_boxed_path());

    let mut http = http1::Builder::new();
    // pipeline_flush: responses to pipelined requests go out in one write
    // (hyper's setting for this; off by default).
    http.keep_alive(true)
        .auto_date_header(true)
        .pipeline_flush(true);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: this connection is lost, the server is not.
                log::warn!("accept failed: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = service_fn(move |request| serve(request, dir));
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                log::debug!("connection: {e}");
            }
        });
    }
}
