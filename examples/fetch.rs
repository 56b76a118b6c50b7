//! A small curl on `AsyncHttpClient`: any method, headers, a body or a
//! multipart form (`-F`, files streamed from disk); each response head goes
//! to stderr as it arrives, the body to stdout or `-o FILE` through
//! `streaming_callback` (never buffered whole), with an `indicatif` progress
//! bar while downloading to a file (drawn only when stderr is a terminal).
//!
//! ```text
//! cargo run --example hello &     # port 8888; httpbin 8889; file_server 8891
//! cargo run --example fetch -- http://127.0.0.1:8888/
//! cargo run --example fetch -- -X PUT -H 'Content-Type: text/plain' -d hi http://127.0.0.1:8889/put
//! cargo run --example fetch -- -F api_key=k1 -F image=@Cargo.toml http://127.0.0.1:8889/post
//! cargo run --release --example fetch -- -o /tmp/lock http://127.0.0.1:8891/Cargo.lock
//! ```
//!
//! A non-2xx status or a failure (599: refused, DNS, TLS, timeout) prints
//! the error after any body and exits with 1 (curl's `--fail-with-body`);
//! bad arguments exit with 2. As in curl, there is no whole-request timeout.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use whirl::httpclient::{AsyncHttpClient, HttpRequest, Multipart};
use whirl::ioloop::IoLoop;

/// Command line (curl's flags).
#[derive(Parser, Debug)]
struct Args {
    /// The URL to fetch.
    url: String,
    /// Method (default GET, or POST with -d or -F).
    #[arg(short = 'X', long = "request")]
    method: Option<String>,
    /// A request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Request body, sent as a form unless -H sets Content-Type.
    #[arg(short = 'd', long = "data", conflicts_with = "form")]
    data: Option<String>,
    /// A multipart field: name=value, or name=@path for a file (repeatable).
    #[arg(short = 'F', long = "form")]
    form: Vec<String>,
    /// Write the body to FILE instead of stdout.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Do not verify the server's certificate (https).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Most redirects followed.
    #[arg(long, default_value_t = 5)]
    max_redirects: usize,
    /// Ask for gzip and decode it.
    #[arg(long)]
    compressed: bool,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err((status, message)) => {
            eprintln!("fetch: {message}");
            ExitCode::from(status)
        }
    }
}

/// Fetches what `args` ask for; fails with an exit status and a message.
fn run(args: Args) -> Result<(), (u8, String)> {
    let request = build_request(&args).map_err(|message| (2, message))?;
    // Step 1. Where the body goes, and the progress bar for a file.
    let (sink, bar): (Box<dyn Write>, _) = match &args.output {
        Some(path) => {
            let file = File::create(path)
                .map_err(|e| (2, format!("cannot create {}: {e}", path.display())))?;
            (Box::new(BufWriter::new(file)), ProgressBar::no_length())
        }
        None => (Box::new(io::stdout().lock()), ProgressBar::hidden()),
    };
    let style = "{bytes}/{total_bytes} [{wide_bar}] {binary_bytes_per_sec}";
    bar.set_style(ProgressStyle::with_template(style).expect("a valid template"));
    // The sink and the first error writing to it, shared with the callback.
    let sink = Rc::new(RefCell::new((sink, Ok(()))));
    // Step 2. The head to stderr (sizing the bar); the body to the sink.
    let (head_bar, body_bar, body_sink) = (bar.clone(), bar.clone(), sink.clone());
    let request = request
        .header_callback(move |line| {
            let line = line.trim_end();
            if let Some(length) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                head_bar.set_length(length.trim().parse().unwrap_or(0));
            }
            head_bar.suspend(|| eprintln!("{line}"));
        })
        .streaming_callback(move |chunk| {
            body_bar.inc(chunk.len() as u64);
            let (out, written) = &mut *body_sink.borrow_mut();
            if written.is_ok() {
                *written = out.write_all(&chunk);
            }
        });
    // Step 3. Fetch on a loop of our own; then the body's fate, then the
    // response's.
    let result = IoLoop::new().run_sync(AsyncHttpClient::new().fetch(request));
    bar.finish_and_clear();
    let (out, written) = &mut *sink.borrow_mut();
    std::mem::replace(written, Ok(()))
        .and_then(|()| out.flush())
        .map_err(|e| (1, format!("writing the body: {e}")))?;
    result
        .and_then(|response| response.rethrow())
        .map_err(|e| (1, e.to_string()))
}

/// The request the flags describe (errors are messages for the user).
fn build_request(args: &Args) -> Result<HttpRequest, String> {
    let has_body = args.data.is_some() || !args.form.is_empty();
    let method = args
        .method
        .as_deref()
        .unwrap_or(if has_body { "POST" } else { "GET" });
    let mut request = HttpRequest::new(args.url.as_str())
        .method(method)
        .raise_error(false)
        .validate_cert(!args.insecure)
        .max_redirects(args.max_redirects)
        .decompress_response(args.compressed)
        .request_timeout(Duration::MAX)
        .max_body_size(u64::MAX);
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or(format!("-H {header:?}: not 'Name: value'"))?;
        request = request.header(name.trim(), value.trim());
    }
    if let Some(data) = &args.data {
        if !request.headers.contains("Content-Type") {
            request = request.header("Content-Type", "application/x-www-form-urlencoded");
        }
        request = request.body(data.as_str());
    }
    if !args.form.is_empty() {
        let mut form = Multipart::new();
        for item in &args.form {
            let (name, value) = item
                .split_once('=')
                .ok_or(format!("-F {item:?}: not name=value"))?;
            form = match value.strip_prefix('@') {
                Some(path) => form.file_from_path(name, path),
                None => form.field(name, value),
            };
        }
        request = request.multipart(form);
    }
    Ok(request)
}
