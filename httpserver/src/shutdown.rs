//! Graceful shutdown: [`drain`] stops a server and lets the requests in
//! flight finish under a deadline; [`ShutdownSignals`] (and its shorthand
//! [`shutdown_on_signals`]) does it when the process gets `SIGTERM` or
//! `SIGINT` — what systemd, a container runtime or Ctrl-C sends before
//! anything harsher.
//!
//! `shutdown/signals.rs` holds the signal side (Unix only).

#[cfg(unix)]
mod signals;

use std::time::Duration;

use whirl_ioloop::with_timeout;

use crate::server::HttpServer;

#[cfg(unix)]
pub use signals::{shutdown_on_signals, ShutdownSignals};

/// Shuts `server` down gracefully, within `timeout`: stops accepting (the
/// listening sockets close, so new connections are refused), closes idle
/// keep-alive connections at once, and closes each busy one as soon as its
/// response is sent (a response written during the drain says
/// `Connection: close`). Returns whether every connection closed in time;
/// those still open when `timeout` passes are left for the caller, and are
/// cut when the loop is closed or the process ends.
///
/// Logs `shutting down (N requests in flight)` first, and a warning with
/// the number of connections still busy if the deadline passes. A client
/// whose request had not been read yet sees its connection closed before
/// any byte of a response, which HTTP clients treat as safe to retry.
/// Tornado has no single call for it: `server.stop()` then
/// `await server.close_all_connections()`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use whirl_httpserver::{drain, HttpServer};
/// use whirl_ioloop::IoLoop;
///
/// let io_loop = IoLoop::new();
/// let server = HttpServer::from_fn(|_request, _connection| {});
/// let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];
/// assert!(io_loop.run_sync(drain(&server, Duration::from_secs(1))));
/// assert!(std::net::TcpStream::connect(addr).is_err()); // refused
/// ```
pub async fn drain(server: &HttpServer, timeout: Duration) -> bool {
    // Step 1. Stop accepting: later connections are refused.
    server.stop();
    log::info!(
        "shutting down ({} requests in flight)",
        server.requests_in_flight()
    );
    // Step 2. Close idle connections now and busy ones once answered.
    if with_timeout(timeout, server.close_all_connections())
        .await
        .is_ok()
    {
        return true;
    }
    log::warn!(
        "{} connections still busy after {timeout:?}: cutting them short",
        server.connection_count()
    );
    false
}
