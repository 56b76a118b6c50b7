//! `whirl_web::testing`: `bind_unused_port`, `TestServer` (Tornado's
//! `AsyncHTTPTestCase`) and `run_sync` with a timeout, each used as a test
//! would use it.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::Duration;

use whirl_httpclient::{AsyncHttpClient, ErrorKind, HttpRequest};
use whirl_httpserver::{HttpHeaders, HttpServer, ResponseStartLine, Version};
use whirl_ioloop::{sleep, IoLoop};
use whirl_web::testing::{bind_unused_port, get_async_test_timeout, run_sync, TestServer};
use whirl_web::{
    Application, Context, HandlerResult, HttpError, RedirectHandler, RequestHandler, Route,
};

/// Generous: debug builds on a loaded machine are slow. Never a bound on
/// how fast anything is.
const TIMEOUT: Duration = Duration::from_secs(60);

/// `GET /hello` says hello; `POST /echo` sends back method, a header and
/// the body; `/teapot` is a 418.
struct Hello;

impl RequestHandler for Hello {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("Hello, world");
        Ok(())
    }
}

/// Echoes the request.
struct Echo;

impl RequestHandler for Echo {
    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        self.echo(cx)
    }

    async fn put(&mut self, cx: &mut Context) -> HandlerResult {
        self.echo(cx)
    }
}

impl Echo {
    /// Writes `METHOD x-test: VALUE\nBODY`.
    fn echo(&mut self, cx: &mut Context) -> HandlerResult {
        let request = cx.request();
        let header = request.headers.get("X-Test").unwrap_or("-").to_string();
        let line = format!("{} x-test: {header}\n", request.method());
        let body = request.body.clone();
        cx.write(line);
        cx.write(body);
        Ok(())
    }
}

/// Always 418.
struct Teapot;

impl RequestHandler for Teapot {
    async fn get(&mut self, _cx: &mut Context) -> HandlerResult {
        Err(HttpError::new(418))
    }
}

/// The application most tests serve.
fn app() -> Application {
    Application::new(vec![
        Route::new("/hello", || Hello),
        Route::new("/echo", || Echo),
        Route::new("/teapot", || Teapot),
        Route::new("/old", || RedirectHandler::new("/hello")),
    ])
}

fn init() -> IoLoop {
    let _ = env_logger::builder().is_test(true).try_init();
    IoLoop::new()
}

#[test]
fn bind_unused_port_listens_on_loopback_at_the_port_it_returns() {
    let (listener, port) = bind_unused_port();
    let local = listener.local_addr().unwrap();
    assert_eq!(local.port(), port);
    assert!(local.ip().is_loopback(), "{local}");
    let (other, other_port) = bind_unused_port();
    assert_ne!(port, other_port);
    drop(other);

    // A plain client reaches it.
    let mut client = TcpStream::connect(local).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    client.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    accepted.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
}

#[test]
fn fetch_gets_a_path_on_the_application() {
    let _io_loop = init();
    let server = TestServer::start(app()).unwrap();
    assert_eq!(
        server.url("/hello"),
        format!("http://127.0.0.1:{}/hello", server.port())
    );
    assert_eq!(server.addr().port(), server.port());

    let response = run_sync(server.fetch("/hello"), TIMEOUT).unwrap();
    assert_eq!(response.code, 200);
    assert_eq!(response.text(), "Hello, world");
    assert!(response.error.is_none());
    assert_eq!(response.effective_url, server.url("/hello"));
}

#[test]
fn fetch_returns_error_statuses_as_responses() {
    let _io_loop = init();
    let server = TestServer::start(app()).unwrap();
    let missing = run_sync(server.fetch("/missing"), TIMEOUT).unwrap();
    assert_eq!(missing.code, 404);
    let teapot = run_sync(server.fetch("/teapot"), TIMEOUT).unwrap();
    assert_eq!(teapot.code, 418);
    let error = teapot
        .error
        .as_ref()
        .expect("the error it would have raised");
    assert_eq!(error.code(), 418);
    // The client itself still raises, as AsyncHttpClient does.
    let raised = run_sync(server.client().fetch(server.url("/teapot")), TIMEOUT).unwrap_err();
    assert_eq!(raised.code(), 418);
}

#[test]
fn fetch_follows_redirects_and_takes_absolute_urls() {
    let _io_loop = init();
    let server = TestServer::start(app()).unwrap();
    let response = run_sync(server.fetch("/old"), TIMEOUT).unwrap();
    assert_eq!(
        (response.code, response.text().as_str()),
        (200, "Hello, world")
    );
    assert_eq!(response.effective_url, server.url("/hello"));

    let absolute = run_sync(server.fetch(&server.url("/hello")), TIMEOUT).unwrap();
    assert_eq!(absolute.code, 200);

    let not_followed = HttpRequest::get("/old").follow_redirects(false);
    let response = run_sync(server.fetch_request(not_followed), TIMEOUT).unwrap();
    assert_eq!(response.code, 301);
    assert_eq!(response.headers.get("Location"), Some("/hello"));
}

#[test]
fn fetch_request_sends_other_methods_headers_and_bodies() {
    let _io_loop = init();
    let server = TestServer::start(app()).unwrap();
    let post = HttpRequest::post("/echo")
        .header("X-Test", "yes")
        .body("some body");
    let response = run_sync(server.fetch_request(post), TIMEOUT).unwrap();
    assert_eq!(response.code, 200);
    assert_eq!(response.text(), "POST x-test: yes\nsome body");

    let put = HttpRequest::put("/echo").body(vec![b'x'; 100_000]);
    let response = run_sync(server.fetch_request(put), TIMEOUT).unwrap();
    assert_eq!(response.body.len(), "PUT x-test: -\n".len() + 100_000);

    // A request that would raise does not: fetch_request sets
    // raise_error(false).
    let raising = HttpRequest::get("/echo").raise_error(true);
    let response = run_sync(server.fetch_request(raising), TIMEOUT).unwrap();
    assert_eq!(response.code, 405);
}

#[test]
fn fetches_run_concurrently_on_one_loop() {
    let _io_loop = init();
    let server = TestServer::start(app()).unwrap();
    let fetches: Vec<_> = (0..20).map(|_| server.fetch("/hello")).collect();
    let codes = run_sync(
        async move {
            let tasks: Vec<_> = fetches.into_iter().map(whirl_ioloop::spawn).collect();
            let mut codes = Vec::new();
            for task in tasks {
                codes.push(task.await.unwrap().unwrap().code);
            }
            codes
        },
        TIMEOUT,
    );
    assert_eq!(codes, vec![200; 20]);
}

#[test]
fn from_server_serves_any_http_server_on_an_unused_port() {
    let _io_loop = init();
    let server = TestServer::from_server(HttpServer::from_fn(|request, connection| {
        let body = format!("raw {}", request.path());
        let mut headers = HttpHeaders::new();
        headers.insert("Content-Length", body.len().to_string());
        let ok = ResponseStartLine {
            version: Version::Http11,
            code: 200,
            reason: "OK".into(),
        };
        let _ = connection.write_headers(&ok, &headers);
        let _ = connection.write(body);
        let _ = connection.finish();
    }))
    .unwrap();
    let response = run_sync(server.fetch("/x?y=1"), TIMEOUT).unwrap();
    assert_eq!(response.text(), "raw /x");
    assert_eq!(server.http_server().local_addrs(), vec![server.addr()]);
}

/// Fetches another server's `/hello` from inside a handler.
struct Relay {
    /// Where to fetch from.
    upstream: String,
}

impl RequestHandler for Relay {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let response = AsyncHttpClient::current()
            .fetch(self.upstream.as_str())
            .await
            .map_err(|e| HttpError::new(502).log_message(e.to_string()))?;
        cx.write(format!("relayed: {}", response.text()));
        Ok(())
    }
}

#[test]
fn two_servers_share_the_test_loop() {
    // The relay's handler fetches from the other server while the test
    // waits on the relay: all three run on this thread's loop.
    let _io_loop = init();
    let upstream = TestServer::start(app()).unwrap();
    let url = upstream.url("/hello");
    let relay = TestServer::start(Application::new(vec![Route::new("/", move || Relay {
        upstream: url.clone(),
    })]))
    .unwrap();
    let response = run_sync(relay.fetch("/"), TIMEOUT).unwrap();
    assert_eq!(response.text(), "relayed: Hello, world");
}

#[test]
fn stop_refuses_new_connections() {
    let _io_loop = init();
    let server = TestServer::start(app()).unwrap();
    let url = server.url("/hello");
    assert_eq!(run_sync(server.fetch("/hello"), TIMEOUT).unwrap().code, 200);
    server.stop();
    assert_eq!(server.client().idle_connections(), 0);
    let refused = run_sync(AsyncHttpClient::new().fetch(url), TIMEOUT).unwrap_err();
    assert_eq!(refused.code(), 599);
    assert_eq!(refused.kind(), ErrorKind::Connect, "{refused}");
}

#[test]
fn dropping_the_server_stops_it() {
    let _io_loop = init();
    let url = {
        let server = TestServer::start(app()).unwrap();
        server.url("/hello")
    };
    let refused = run_sync(AsyncHttpClient::new().fetch(url), TIMEOUT).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Connect, "{refused}");
}

#[test]
fn run_sync_returns_the_output_and_runs_the_current_loop() {
    let io_loop = init();
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    io_loop.add_callback(move || flag.set(true));
    let value = run_sync(
        async {
            sleep(Duration::from_millis(5)).await;
            42
        },
        TIMEOUT,
    );
    assert_eq!(value, 42);
    assert!(ran.get(), "the callback ran on the same loop");
}

#[test]
#[should_panic(expected = "run_sync: the future did not complete within 50ms")]
fn run_sync_fails_the_test_on_timeout() {
    let _io_loop = init();
    run_sync(sleep(Duration::from_secs(30)), Duration::from_millis(50));
}

#[test]
fn the_default_async_test_timeout_is_tornados() {
    // ASYNC_TEST_TIMEOUT is read from the environment; this test does not
    // set it (that would race with other tests), only reads it.
    let expected = match std::env::var("ASYNC_TEST_TIMEOUT") {
        Ok(value) => value
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok()),
        Err(_) => None,
    };
    assert_eq!(
        get_async_test_timeout(),
        expected.unwrap_or(Duration::from_secs(5))
    );
}
