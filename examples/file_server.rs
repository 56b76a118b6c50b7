//! A directory on the web: files are served by `StaticFileHandler` (ETags,
//! 304s, ranges, big files in bounded memory), directories by an index page
//! rendered from the template `examples/file_server/templates/index.html`.
//!
//! ```text
//! cargo run --release --example file_server -- --root . --port 8891
//! curl -i http://127.0.0.1:8891/                  # the index of --root
//! curl -i http://127.0.0.1:8891/Cargo.toml        # a file, with Etag and Last-Modified
//! curl -i -H 'Range: bytes=0-9' http://127.0.0.1:8891/Cargo.toml   # 206
//! curl -i http://127.0.0.1:8891/src               # 301 to /src/
//! curl -i --path-as-is http://127.0.0.1:8891/../etc/passwd          # 403
//! ```
//!
//! Nothing outside `--root` can be reached: the index uses the same
//! resolver as the file handler (`static_files::resolve_path`), which
//! refuses `..`, `%2e%2e`, backslashes, absolute paths and symlinks that
//! lead out. `--port` defaults to 8891 so it can run beside the others.
//! `SIGTERM` or Ctrl-C stops it gracefully (downloads in flight finish).

use std::path::PathBuf;
use std::{fs, io};

use clap::Parser;
use serde::Serialize;
use whirl::httpserver::{shutdown_on_signals, SHUTDOWN_TIMEOUT};
use whirl::ioloop::IoLoop;
use whirl::web::escape::{url_escape, url_unescape_lossy};
use whirl::web::static_files::{resolve_path, ResolvedPath};
use whirl::web::{
    Application, Context, HandlerResult, HttpError, RequestHandler, Route, Settings,
    StaticFileHandler,
};

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// The directory to serve.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8891)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
}

/// Where the index template lives (found wherever the binary runs from).
const TEMPLATES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/file_server/templates"
);

/// Serves `/<path>`: the index of a directory URL ending in `/`; anything
/// else — files, the redirect of `/dir` to `/dir/`, errors — is the
/// `StaticFileHandler`'s.
struct FileServer {
    /// The directory served.
    root: PathBuf,
}

/// What the index template shows.
#[derive(Serialize)]
struct Listing {
    /// The directory's URL path, decoded (`/src/`).
    path: String,
    /// Its entries.
    entries: Vec<Entry>,
}

/// One row of the index page.
#[derive(Serialize)]
struct Entry {
    /// The file name, as shown.
    name: String,
    /// The link to it, percent-encoded (and ending in `/` for directories).
    href: String,
    /// Whether it is a directory.
    is_dir: bool,
    /// Its size, for people (`1.5 KiB`).
    size: String,
}

impl RequestHandler for FileServer {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET", "HEAD"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        // The path still percent-encoded, without its leading `/`: the
        // resolver decodes it exactly once, as the file handler does.
        let url_path = cx.request().path().to_string();
        let raw = url_path.strip_prefix('/').unwrap_or(&url_path);
        let directory = match resolve_path(&self.root, raw) {
            Ok(ResolvedPath::Directory(directory)) if url_path.ends_with('/') => directory,
            _ => {
                let mut files = StaticFileHandler::new(self.root.clone());
                return match cx.request().method() {
                    "HEAD" => files.head(cx).await,
                    _ => files.get(cx).await,
                };
            }
        };
        let entries = list(&directory)
            .map_err(|e| HttpError::new(403).log_message(format!("cannot list: {e}")))?;
        let path = url_unescape_lossy(&url_path, false);
        cx.render("index.html", Listing { path, entries })
    }

    /// As `GET` (the connection drops the body).
    async fn head(&mut self, cx: &mut Context) -> HandlerResult {
        self.get(cx).await
    }
}

/// The entries of `directory`: subdirectories first, then by name.
fn list(directory: &std::path::Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(directory)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Symlinks are followed; a dangling one shows as an empty file.
        let metadata = fs::metadata(entry.path()).ok();
        let is_dir = metadata.as_ref().is_some_and(|m| m.is_dir());
        let href = url_escape(&name, false) + if is_dir { "/" } else { "" };
        let size = human_size(metadata.map_or(0, |m| m.len()));
        entries.push(Entry {
            name,
            href,
            is_dir,
            size,
        });
    }
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    Ok(entries)
}

/// `bytes` as `512 B`, `1.5 KiB`, `3.0 MiB`.
fn human_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let root = args.root.clone();
    if !root.is_dir() {
        let message = format!("--root {} is not a directory", root.display());
        return Err(io::Error::new(io::ErrorKind::NotFound, message));
    }
    let io_loop = IoLoop::new();
    let settings = Settings {
        template_path: Some(TEMPLATES.into()),
        ..Settings::default()
    };
    let routes = vec![Route::new("/(.*)", move || FileServer {
        root: root.clone(),
    })];
    let server =
        Application::with_settings(routes, settings).listen(args.port, Some(&args.address))?;
    shutdown_on_signals(&server, SHUTDOWN_TIMEOUT)?;
    log::info!("serving {}", args.root.display());
    log::info!("listening on http://{}", server.local_addrs()[0]);
    io_loop.start();
    Ok(())
}
