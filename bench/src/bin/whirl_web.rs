//! The harness's whirl web application (bench/run.sh): `Application`,
//! routing and `RequestHandler`s on one loop — Tornado's `helloworld.py`
//! with the harness's routes:
//!
//! - `GET /` — `Hello, World!`, as `examples/hello.rs` (text/plain)
//! - `GET /json` — `{"message":"Hello, World!"}` by `Context::write_json`
//! - `GET /static/NAME` — `StaticFileHandler` over `--static-dir`
//! - `GET /sleep` — `Hello, World!` after `whirl_ioloop::sleep(1 s)`
//!
//! ```text
//! cargo run --release -p whirl-bench --bin whirl_web -- --port 8888 --static-dir .
//! curl -i http://127.0.0.1:8888/json
//! ```
//!
//! The access log is off (`whirl::access=warn`) unless `RUST_LOG` says
//! otherwise: the peers do not log requests either.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;
use whirl_ioloop::{sleep, IoLoop};
use whirl_web::{Application, Context, HandlerResult, RequestHandler, Route, StaticFileHandler};

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Directory served under `/static/`.
    #[arg(long, default_value = ".")]
    static_dir: PathBuf,
}

/// The plaintext body.
const HELLO: &str = "Hello, World!";

/// `GET /`.
struct Plaintext;

impl RequestHandler for Plaintext {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_header("Content-Type", "text/plain")?;
        cx.write(HELLO);
        Ok(())
    }
}

/// The JSON body.
#[derive(Serialize)]
struct Message {
    /// Always `Hello, World!`.
    message: &'static str,
}

/// `GET /json`.
struct Json;

impl RequestHandler for Json {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write_json(&Message { message: HELLO })
    }
}

/// `GET /sleep`.
struct Sleep;

impl RequestHandler for Sleep {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        sleep(Duration::from_secs(1)).await;
        cx.set_header("Content-Type", "text/plain")?;
        cx.write(HELLO);
        Ok(())
    }
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,whirl::access=warn"),
    )
    .init();
    let args = Args::parse();
    let io_loop = IoLoop::new();
    let root = args.static_dir;
    let app = Application::new(vec![
        Route::new("/", || Plaintext),
        Route::new("/json", || Json),
        Route::new("/sleep", || Sleep),
        Route::new(r"/static/(.*)", move || {
            StaticFileHandler::new(root.clone())
        }),
    ]);
    let server = app.listen(args.port, Some(&args.address))?;
    log::info!("listening on http://{}", server.local_addrs()[0]);
    io_loop.start();
    Ok(())
}
