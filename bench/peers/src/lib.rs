//! What the peers share: the command line and the workload's bodies.
//!
//! Every server of the harness (bench/run.sh) answers the same routes:
//!
//! - `GET /` — `200`, `Content-Type: text/plain`, `Hello, World!`
//! - `GET /json` — `200`, `Content-Type: application/json`,
//!   `{"message":"Hello, World!"}` serialised per request with `serde_json`
//! - `GET /static/NAME` — the file `NAME` under `--static-dir`
//! - `GET /sleep` — `Hello, World!` after an asynchronous 1 s sleep

use std::path::PathBuf;

use clap::Parser;
use serde::Serialize;

/// The plaintext body.
pub const HELLO: &[u8] = b"Hello, World!";

/// How long `/sleep` waits.
pub const SLEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// The JSON body, serialised per request.
#[derive(Debug, Serialize)]
pub struct Message {
    /// Always `Hello, World!`.
    pub message: &'static str,
}

/// The JSON body's value.
pub const MESSAGE: Message = Message {
    message: "Hello, World!",
};

/// Command line of every peer.
#[derive(Parser, Debug)]
pub struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: String,
    /// Directory served under `/static/`.
    #[arg(long, default_value = ".")]
    pub static_dir: PathBuf,
}

/// Parses the command line and starts the logger (info, to stderr).
pub fn init() -> Args {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    Args::parse()
}

/// The file a `/static/NAME` path names, if the name is a plain file name
/// (no `/`, no `..`): the peers are benchmarks, not file servers, but they
/// still never leave their directory.
pub fn static_file(dir: &std::path::Path, path: &str) -> Option<PathBuf> {
    let name = path.strip_prefix("/static/")?;
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    Some(dir.join(name))
}
