//! whirl: Tornado's architecture rebuilt in Rust — one thread, one event loop,
//! and everything from sockets to web handlers layered on top of it.
//!
//! This facade re-exports each layer as a module:
//!
//! - [`ioloop`] — the event loop: fd handlers, timers, callbacks, tasks, a
//!   thread pool, locks and queues (package `whirl-ioloop`).
//! - [`iostream`] — buffered async streams over sockets and pipes, a TCP
//!   server and client, TLS, subprocesses (package `whirl-iostream`).
//! - [`httpserver`] — the HTTP/1.1 server: `HttpServer`, `Http1Connection`,
//!   and `httputil` (package `whirl-httpserver`).
//! - [`httpclient`] — the asynchronous HTTP/1.1 client: `AsyncHttpClient`,
//!   `HttpRequest`, `HttpResponse`, `Multipart` (package `whirl-httpclient`).
//! - [`web`] — the web framework: `Application`, `Route`, `RequestHandler`,
//!   `Context`, cookies, XSRF, static files, templates, `testing`
//!   (package `whirl-web`).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use whirl::ioloop::{sleep, IoLoop};
//!
//! let io_loop = IoLoop::new();
//! io_loop.run_sync(sleep(Duration::from_millis(1)));
//! ```

pub use whirl_httpclient as httpclient;
pub use whirl_httpserver as httpserver;
pub use whirl_ioloop as ioloop;
pub use whirl_iostream as iostream;
pub use whirl_web as web;
