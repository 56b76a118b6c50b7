//! A line echo server on the stream layer: `TcpServer` hands each connection
//! to a task as an `IoStream`, which reads a line with `read_until` and writes
//! it back — Tornado's `TCPServer.handle_stream` with
//! `stream.read_until(b"\n")` / `stream.write(line)`. Compare `fd_handler`,
//! which does the same by hand on raw fd handlers.
//!
//! ```text
//! cargo run --example echo_server -- --port 8888
//! nc 127.0.0.1 8888          # type lines; each comes back
//! ```
//!
//! A line longer than `--max-line` bytes (default 64 KiB) closes that
//! connection (Tornado's `UnsatisfiableReadError`); others carry on.

use std::io;
use std::net::SocketAddr;

use clap::Parser;
use whirl::ioloop::IoLoop;
use whirl::iostream::{IoStream, StreamError, TcpServer};

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Longest line echoed, delimiter included; a longer one closes the
    /// connection.
    #[arg(long, default_value_t = 64 * 1024)]
    max_line: usize,
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();

    let io_loop = IoLoop::new();
    let max_line = args.max_line;
    let server = TcpServer::new(move |stream, peer| echo_lines(stream, peer, max_line));
    let addrs = server.listen(args.port, Some(&args.address))?;
    for addr in &addrs {
        log::info!("listening on tcp://{addr}");
    }
    io_loop.start();
    Ok(())
}

/// Echoes each line back until the client hangs up.
async fn echo_lines(stream: IoStream, peer: SocketAddr, max_line: usize) {
    log::info!("connection from {peer}");
    let mut lines = 0u64;
    let outcome = loop {
        let line = match stream.read_until(b"\n", max_line).await {
            Ok(line) => line,
            Err(e) => break e,
        };
        lines += 1;
        // The write queues at once; awaiting it keeps a client that never
        // reads from growing our write queue without bound.
        if let Err(e) = stream.write(line).await {
            break e;
        }
    };
    match outcome {
        StreamError::UnsatisfiableRead { max_bytes } => {
            log::warn!("{peer}: line longer than {max_bytes} bytes, closing")
        }
        e => log::info!("{peer} done after {lines} lines: {e}"),
    }
}
