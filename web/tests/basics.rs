//! The application core: routing, verbs, arguments, errors, panics.

mod support;

use support::{fetch, get, serve, Client};
use whirl_web::{Application, Context, HttpError, RequestHandler, Route};

struct Hello;

impl RequestHandler for Hello {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET", "POST"];

    async fn get(&mut self, cx: &mut Context) -> Result<(), HttpError> {
        let name = cx.get_argument_or("name", "world")?;
        cx.write(format!("Hello, {name}"));
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context) -> Result<(), HttpError> {
        let name = cx.get_argument("name")?;
        cx.write(format!("Posted {name}"));
        Ok(())
    }
}

struct Story;

impl RequestHandler for Story {
    async fn get(&mut self, cx: &mut Context) -> Result<(), HttpError> {
        let id = cx.path_arg(0).unwrap_or_default().to_string();
        let url = cx.reverse_url("story", &[&id])?;
        cx.write(format!("story {id} at {url}"));
        Ok(())
    }
}

struct Panics;

impl RequestHandler for Panics {
    async fn get(&mut self, _cx: &mut Context) -> Result<(), HttpError> {
        panic!("boom");
    }
}

fn app() -> Application {
    Application::new(vec![
        Route::new("/", || Hello),
        Route::new(r"/story/([0-9]+)", || Story).name("story"),
        Route::new("/panic", || Panics),
    ])
}

#[test]
fn hello_routes_and_arguments() {
    let server = serve(app);
    let r = get(server.addr, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "Hello, world");
    assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    assert!(r.header("etag").is_some());
    let r = get(server.addr, "/?name=%20whirl%20");
    assert_eq!(r.text(), "Hello, whirl");
    let r = get(server.addr, "/story/42");
    assert_eq!(r.text(), "story 42 at /story/42");
}

#[test]
fn unmatched_unsupported_and_unknown() {
    let server = serve(app);
    assert_eq!(get(server.addr, "/nowhere").status, 404);
    let r = fetch(server.addr, "DELETE / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    let r = fetch(server.addr, "PROPFIND / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 501);
    let r = fetch(
        server.addr,
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 400, "a missing required argument is 400");
}

#[test]
fn a_panic_is_a_500_and_the_server_goes_on() {
    let server = serve(app);
    let mut client = Client::connect(server.addr);
    let r = client.request("GET /panic HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("500: Internal Server Error"));
    assert!(!r.text().contains("boom"), "no detail outside debug");
    let r = client.request("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200, "the same connection still works");
}

#[test]
fn form_bodies_are_arguments() {
    let server = serve(app);
    let body = "name=form";
    let r = fetch(
        server.addr,
        &format!(
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!((r.status, r.text().as_str()), (200, "Posted form"));
}

/// Records whether `on_connection_close` ran, and waits forever in `get`.
struct Abandoned {
    closed: std::sync::mpsc::Sender<&'static str>,
}

impl RequestHandler for Abandoned {
    async fn get(&mut self, _cx: &mut Context) -> Result<(), HttpError> {
        whirl_ioloop::sleep(std::time::Duration::from_secs(3600)).await;
        Ok(())
    }

    fn on_connection_close(&mut self, _cx: &mut Context) {
        let _ = self.closed.send("closed");
    }

    fn on_finish(&mut self, _cx: &mut Context) {
        let _ = self.closed.send("finished");
    }
}

#[test]
fn a_reset_while_the_handler_waits_cancels_it_and_calls_on_connection_close() {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = serve(move || {
        let tx = tx.clone();
        Application::new(vec![
            Route::new("/wait", move || Abandoned { closed: tx.clone() }),
            Route::new("/", || Hello),
        ])
    });
    let mut client = Client::connect(server.addr);
    client.send(b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\n");
    // Let the handler start, then reset the connection.
    std::thread::sleep(std::time::Duration::from_millis(200));
    client.reset();
    let timeout = support::TEST_TIMEOUT;
    assert_eq!(rx.recv_timeout(timeout), Ok("closed"));
    assert_eq!(
        rx.recv_timeout(timeout),
        Ok("finished"),
        "on_finish once, after"
    );
    assert_eq!(get(server.addr, "/").status, 200, "the loop goes on");
}
