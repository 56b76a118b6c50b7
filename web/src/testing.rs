//! Helpers for testing handlers over real sockets: Tornado's
//! `tornado.testing`.
//!
//! - [`bind_unused_port`] — a listening socket on a free loopback port.
//! - [`TestServer`] — Tornado's `AsyncHTTPTestCase` as a value: it serves an
//!   [`Application`] (or any [`HttpServer`]) on `127.0.0.1` in the current
//!   loop and fetches from it with its own [`AsyncHttpClient`], returning
//!   error statuses as plain responses so a test can look at any of them.
//! - [`run_sync`] — runs the current loop until a future completes, and
//!   fails the test (panics) if it takes longer than a timeout, as
//!   Tornado's `gen_test` does; [`get_async_test_timeout`] is the usual
//!   timeout.
//!
//! The server and the client run on the same loop as the test, one thread,
//! so a test can also reach into the application's shared state between
//! fetches.
//!
//! # Examples
//!
//! ```
//! use whirl_httpclient::HttpRequest;
//! use whirl_ioloop::IoLoop;
//! use whirl_web::testing::{get_async_test_timeout, run_sync, TestServer};
//! use whirl_web::{Application, Context, HandlerResult, RequestHandler, Route};
//!
//! struct Greeter;
//!
//! impl RequestHandler for Greeter {
//!     async fn get(&mut self, cx: &mut Context) -> HandlerResult {
//!         let name = cx.get_argument_or("name", "world")?;
//!         cx.write(format!("Hello, {name}"));
//!         Ok(())
//!     }
//!
//!     async fn post(&mut self, cx: &mut Context) -> HandlerResult {
//!         let name = cx.get_body_argument("name")?;
//!         cx.set_status(201);
//!         cx.write(format!("Welcome, {name}"));
//!         Ok(())
//!     }
//! }
//!
//! let _io_loop = IoLoop::new(); // the thread's current loop
//! let app = Application::new(vec![Route::new("/", || Greeter)]);
//! let server = TestServer::start(app).unwrap();
//! let timeout = get_async_test_timeout();
//!
//! let response = run_sync(server.fetch("/?name=whirl"), timeout).unwrap();
//! assert_eq!((response.code, response.text().as_str()), (200, "Hello, whirl"));
//!
//! // Error statuses come back as responses, not errors.
//! let missing = run_sync(server.fetch("/nowhere"), timeout).unwrap();
//! assert_eq!(missing.code, 404);
//!
//! // Other methods and bodies: a request whose URL is a path.
//! let form = HttpRequest::post("/")
//!     .header("Content-Type", "application/x-www-form-urlencoded")
//!     .body("name=ferris");
//! let created = run_sync(server.fetch_request(form), timeout).unwrap();
//! assert_eq!((created.code, created.text().as_str()), (201, "Welcome, ferris"));
//! server.stop();
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use whirl_httpclient::{AsyncHttpClient, HttpClientError, HttpRequest, HttpResponse};
use whirl_httpserver::HttpServer;
use whirl_ioloop::IoLoop;

use crate::Application;

/// The timeout [`get_async_test_timeout`] gives when `ASYNC_TEST_TIMEOUT`
/// is not set: 5 s, Tornado's.
pub const DEFAULT_ASYNC_TEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds a listening TCP socket to a free port on `127.0.0.1` and returns
/// it with its port; hand it to [`HttpServer::add_sockets`] (or
/// [`TestServer::from_server`] does it for you). Tornado:
/// `tornado.testing.bind_unused_port`.
///
/// # Examples
///
/// ```
/// use whirl_web::testing::bind_unused_port;
///
/// let (listener, port) = bind_unused_port();
/// assert_eq!(listener.local_addr().unwrap().port(), port);
/// assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
/// ```
///
/// # Panics
///
/// If the operating system cannot bind a loopback socket (no test could
/// run then).
pub fn bind_unused_port() -> (TcpListener, u16) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("bind_unused_port: cannot bind 127.0.0.1:0: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("bind_unused_port: no local address: {e}"))
        .port();
    (listener, port)
}

/// How long a test may wait for an asynchronous operation:
/// `ASYNC_TEST_TIMEOUT` (seconds, fractions allowed) when set and valid,
/// else [`DEFAULT_ASYNC_TEST_TIMEOUT`]. Tornado:
/// `tornado.testing.get_async_test_timeout`.
pub fn get_async_test_timeout() -> Duration {
    std::env::var("ASYNC_TEST_TIMEOUT")
        .ok()
        .and_then(|value| value.trim().parse::<f64>().ok())
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .unwrap_or(DEFAULT_ASYNC_TEST_TIMEOUT)
}

/// Runs the thread's current loop ([`IoLoop::current`]) until `future`
/// completes and returns its output. Tornado: `IOLoop.run_sync(f,
/// timeout=…)` as `gen_test` uses it.
///
/// # Panics
///
/// If `future` has not completed after `timeout` — the test fails, as
/// under Tornado's `gen_test`, with a message naming the caller's line;
/// and as [`IoLoop::run_sync`] (the loop is already running, or `future`
/// panics).
#[track_caller]
pub fn run_sync<F: Future>(future: F, timeout: Duration) -> F::Output {
    match IoLoop::current().run_sync_timeout(future, timeout) {
        Ok(output) => output,
        Err(_) => panic!("run_sync: the future did not complete within {timeout:?}"),
    }
}

/// A server on `127.0.0.1` (a free port) in the current loop, with a
/// client to fetch from it: Tornado's `AsyncHTTPTestCase` (`get_app`,
/// `get_url`, `fetch`, `tearDown`) as a value a test holds.
///
/// [`fetch`](Self::fetch) and [`fetch_request`](Self::fetch_request) return
/// futures; run them with [`run_sync`] or await them inside one. They do
/// not raise on error statuses (`raise_error(false)`, as Tornado's test
/// `fetch`): a 404 is an `Ok` response with its `error` set; `Err` means no
/// response at all (code 599). Dropping the server stops it.
///
/// See the [module docs](self) for an example.
pub struct TestServer {
    /// The server, listening on `addr`.
    server: HttpServer,
    /// Where it listens (127.0.0.1 and its port).
    addr: SocketAddr,
    /// The client `fetch` uses (its own pool, closed by `stop`).
    client: AsyncHttpClient,
}

impl TestServer {
    /// Serves `app` on a free port of `127.0.0.1` in the current loop, with
    /// the application's HTTP settings. Tornado: `AsyncHTTPTestCase.setUp`
    /// with `get_app`.
    ///
    /// # Errors
    ///
    /// Binding or registering the listening socket failed.
    pub fn start(app: Application) -> io::Result<TestServer> {
        let server = app.listen(0, Some("127.0.0.1"))?;
        TestServer::listening(server)
    }

    /// Serves `server` (any [`HttpServer`], such as one made with
    /// [`HttpServer::from_fn`]) on a socket from [`bind_unused_port`], in
    /// the current loop.
    ///
    /// # Errors
    ///
    /// Registering the listening socket failed.
    pub fn from_server(server: HttpServer) -> io::Result<TestServer> {
        let (listener, _port) = bind_unused_port();
        server.add_sockets(vec![listener])?;
        TestServer::listening(server)
    }

    /// Wraps a server that is listening on loopback.
    fn listening(server: HttpServer) -> io::Result<TestServer> {
        let addr = server
            .local_addrs()
            .into_iter()
            .find(|addr| addr.ip().is_loopback())
            .ok_or_else(|| io::Error::other("the test server listens on no loopback address"))?;
        Ok(TestServer {
            server,
            addr,
            client: AsyncHttpClient::new(),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on. Tornado: `get_http_port`.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The absolute URL of `path` on this server
    /// (`http://127.0.0.1:PORT/path`); `path` should start with `/`.
    /// Tornado: `get_url`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Fetches `path` (or an absolute `http://`/`https://` URL, fetched as
    /// it is) with `GET`, following redirects. Tornado:
    /// `AsyncHTTPTestCase.fetch(path)`, with `raise_error=False`.
    ///
    /// The future owns what it needs, so it may outlive the borrow of
    /// `self` (to be spawned, or joined with others).
    ///
    /// # Errors
    ///
    /// The future fails only when there is no response (code 599: refused,
    /// timed out, malformed); every status comes back as `Ok`.
    pub fn fetch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<HttpResponse, HttpClientError>> + 'static {
        self.fetch_request(HttpRequest::get(path))
    }

    /// Fetches `request`, whose URL may be a path on this server (anything
    /// not starting with `http://` or `https://` is put after
    /// [`url`](Self::url)'s prefix): for other methods, bodies, headers,
    /// timeouts. Its `raise_error` is set to `false`, as in
    /// [`fetch`](Self::fetch); for a raising fetch use
    /// `server.client().fetch(server.url(path))`. Tornado:
    /// `AsyncHTTPTestCase.fetch(path, method=…, body=…, …)`.
    ///
    /// # Errors
    ///
    /// As [`fetch`](Self::fetch).
    pub fn fetch_request(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, HttpClientError>> + 'static {
        let mut request = request.raise_error(false);
        if !is_absolute(&request.url) {
            request.url = self.url(&request.url);
        }
        let client = self.client.clone();
        async move { client.fetch(request).await }
    }

    /// The client [`fetch`](Self::fetch) uses. Tornado: `http_client`.
    pub fn client(&self) -> &AsyncHttpClient {
        &self.client
    }

    /// The server. Tornado: `http_server`.
    pub fn http_server(&self) -> &HttpServer {
        &self.server
    }

    /// Stops accepting connections and closes the client's idle pooled
    /// connections (connections still answering go on). Dropping the
    /// server does the same. Tornado: `AsyncHTTPTestCase.tearDown`.
    pub fn stop(&self) {
        self.server.stop();
        self.client.close();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Whether `url` names a scheme of its own (else it is a path on the test
/// server).
fn is_absolute(url: &str) -> bool {
    let lower = |n: usize| url.get(..n).map(str::to_ascii_lowercase);
    lower(7).as_deref() == Some("http://") || lower(8).as_deref() == Some("https://")
}

#[cfg(test)]
mod tests {
    use super::is_absolute;

    #[test]
    fn absolute_urls_are_told_from_paths() {
        for (url, absolute) in [
            ("/", false),
            ("/a?b=http://c", false),
            ("", false),
            ("http://127.0.0.1:1/", true),
            ("HTTPS://example.com/", true),
            ("http:/", false),
        ] {
            assert_eq!(is_absolute(url), absolute, "{url:?}");
        }
    }
}
