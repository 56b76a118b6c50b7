//! Who answered, and whom it believes it answers: every `GET`, on any
//! path, gets a line of JSON with this instance's `--name`, the client's
//! address and scheme as whirl resolved them (`remote_ip`, `protocol`) and
//! the peer the connection really came from. Run two behind nginx to watch
//! the balancing and the proxy headers at work (`docs/DEPLOYMENT.md`).
//!
//! ```text
//! cargo run --example whoami -- --port 8001 --name a --xheaders
//! curl http://127.0.0.1:8001/
//! curl -H 'X-Real-IP: 203.0.113.9' http://127.0.0.1:8001/   # believed with --xheaders
//! ```
//!
//! `--xheaders` takes the client's address from `X-Real-IP`, else
//! `X-Forwarded-For`, and the scheme from `X-Forwarded-Proto`: turn it on
//! only behind a proxy that sets them, since anyone can send them.
//! `--trusted-downstream` lists proxies skipped in `X-Forwarded-For` when
//! there are several. `SIGTERM` or Ctrl-C stops it gracefully.

use std::io;
use std::net::IpAddr;

use clap::Parser;
use serde::Serialize;
use whirl::httpserver::{shutdown_on_signals, SHUTDOWN_TIMEOUT};
use whirl::ioloop::IoLoop;
use whirl::web::{Application, Context, HandlerResult, RequestHandler, Route, Settings};

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// This instance's name, in every answer [default: whoami-<pid>].
    #[arg(long)]
    name: Option<String>,
    /// Trust the proxy headers `X-Real-IP`, `X-Forwarded-For`,
    /// `X-Forwarded-Proto`.
    #[arg(long)]
    xheaders: bool,
    /// Proxies skipped in `X-Forwarded-For` (comma-separated addresses).
    #[arg(long, value_delimiter = ',')]
    trusted_downstream: Vec<IpAddr>,
}

/// The answer.
#[derive(Serialize)]
struct WhoAmI<'a> {
    /// `--name`.
    instance: &'a str,
    /// The client as whirl believes it (proxy headers with `--xheaders`).
    remote_ip: Option<IpAddr>,
    /// `http` or `https`, likewise.
    protocol: &'a str,
    /// The socket's peer: the proxy, when there is one.
    peer: Option<String>,
}

/// Answers `GET` on every path.
struct WhoAmIHandler {
    /// This instance's name.
    name: String,
}

impl RequestHandler for WhoAmIHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let peer = cx.connection().remote_addr().map(|a| a.to_string());
        let request = cx.request();
        let answer = WhoAmI {
            instance: &self.name,
            remote_ip: request.remote_ip,
            protocol: &request.protocol,
            peer,
        };
        let mut body = serde_json::to_string(&answer).expect("plain data serializes");
        body.push('\n');
        cx.set_header("Content-Type", "application/json")?;
        cx.write(body);
        Ok(())
    }
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let name = args
        .name
        .unwrap_or_else(|| format!("whoami-{}", std::process::id()));
    let io_loop = IoLoop::new();
    let settings = Settings {
        xheaders: args.xheaders,
        ..Settings::default()
    };
    let routes = vec![Route::new(".*", move || WhoAmIHandler {
        name: name.clone(),
    })];
    let server = Application::with_settings(routes, settings)
        .listen(args.port, Some(&args.address))?
        .trusted_downstream(args.trusted_downstream);
    shutdown_on_signals(&server, SHUTDOWN_TIMEOUT)?;
    log::info!("listening on http://{}", server.local_addrs()[0]);
    io_loop.start();
    Ok(())
}
