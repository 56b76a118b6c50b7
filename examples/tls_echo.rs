//! A TLS line-echo server: `TcpServer::with_tls` over a self-signed
//! certificate made at start-up (with `rcgen`), Tornado's
//! `TCPServer(ssl_options=…)`.
//!
//! ```text
//! cargo run --example tls_echo -- --port 8443
//! openssl s_client -quiet -connect 127.0.0.1:8443 -servername localhost   # type lines
//! ```
//!
//! The certificate lives in memory only; `--cert-out PATH` saves it so a
//! client can trust it (`openssl s_client -CAfile PATH …`).

use std::io;
use std::net::SocketAddr;

use clap::Parser;
use whirl::ioloop::IoLoop;
use whirl::iostream::{IoStream, TcpServer, TlsServerConfig};

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8443)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Where to save the self-signed certificate (PEM), for clients to trust.
    #[arg(long)]
    cert_out: Option<std::path::PathBuf>,
}

/// Longest line echoed; a longer one closes the connection.
const MAX_LINE: usize = 64 * 1024;

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();

    // A certificate for localhost and 127.0.0.1, made fresh on every start.
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    if let Some(path) = &args.cert_out {
        std::fs::write(path, &cert_pem)?;
        log::info!("certificate saved to {}", path.display());
    }
    let tls = TlsServerConfig::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?;

    let io_loop = IoLoop::new();
    let server = TcpServer::new(echo_lines).with_tls(tls);
    let addrs = server.listen(args.port, Some(&args.address))?;
    log::info!("listening on tls://{}", addrs[0]);
    io_loop.start();
    Ok(())
}

/// Echoes each line back until the client hangs up.
async fn echo_lines(stream: IoStream, peer: SocketAddr) {
    log::info!("TLS connection from {peer}");
    loop {
        match stream.read_until(b"\n", MAX_LINE).await {
            Ok(line) => {
                if stream.write(line).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                log::info!("{peer} done: {e}");
                break;
            }
        }
    }
}
