//! `HttpClient`, the blocking client (Tornado's `HTTPClient`): from a plain
//! thread, from inside a running loop's task, with its own pool, and
//! without taking over the thread's current loop.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use support::{app_server, run, HELLO, TEST_TIMEOUT};
use whirl_httpclient::{AsyncHttpClient, ClientConfig, ErrorKind, HttpClient, HttpRequest};
use whirl_ioloop::IoLoop;

#[test]
fn fetch_from_a_plain_thread() {
    let server = app_server();
    let client = HttpClient::new();
    let response = client.fetch(server.url("/plain")).unwrap();
    assert_eq!(response.text(), HELLO);
    let posted = client
        .fetch(HttpRequest::post(server.url("/echo")).body("blocking"))
        .unwrap();
    assert_eq!(posted.body, b"blocking");
    let e = client.fetch(server.url("/status/404")).unwrap_err();
    assert_eq!((e.code(), e.kind()), (404, ErrorKind::Status));
    assert_eq!(
        server.stats.connections(),
        1,
        "its private loop keeps a pool"
    );
}

#[test]
fn fetch_from_a_plain_thread_reports_network_errors() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let e = HttpClient::new()
        .fetch(format!("http://{addr}/"))
        .unwrap_err();
    assert_eq!((e.code(), e.kind()), (599, ErrorKind::Connect), "{e}");
}

#[test]
fn fetch_with_a_zero_idle_timeout_opens_a_connection_each_time() {
    let server = app_server();
    let client = HttpClient::with_config(ClientConfig {
        idle_timeout: Duration::ZERO,
        ..ClientConfig::default()
    });
    for _ in 0..2 {
        client.fetch(server.url("/")).unwrap();
    }
    assert_eq!(server.stats.connections(), 2);
}

#[test]
fn fetch_from_inside_a_running_loops_task_still_works() {
    let server = app_server();
    let url = server.url("/inside");
    let (direct, spawned) = run(async move {
        // Blocks this loop (the anti-pattern the seed warns about), but
        // completes.
        let direct = HttpClient::new().fetch(url.as_str()).unwrap();
        let task = whirl_ioloop::spawn(async move { HttpClient::new().fetch(url).unwrap() });
        let spawned = task.await.unwrap();
        // The outer loop still works afterwards.
        whirl_ioloop::sleep(Duration::from_millis(1)).await;
        (direct, spawned)
    });
    assert_eq!(direct.text(), HELLO);
    assert_eq!(spawned.text(), HELLO);
    assert_eq!(server.stats.seen().len(), 2);
}

#[test]
fn the_outer_loops_async_client_works_around_a_blocking_fetch() {
    let server = app_server();
    let url = server.url("/");
    run(async move {
        let client = AsyncHttpClient::new();
        client.fetch(url.as_str()).await.unwrap();
        HttpClient::new().fetch(url.as_str()).unwrap();
        // The async client's pooled connection lives on the outer loop.
        assert_eq!(client.fetch(url.as_str()).await.unwrap().text(), HELLO);
    });
}

#[test]
fn a_blocking_client_does_not_become_the_threads_current_loop() {
    let server = app_server();
    let url = server.url("/");
    let outcome = std::thread::spawn(move || {
        // Tornado's HTTPClient makes its loop with make_current=False.
        let client = HttpClient::new();
        client.fetch(url).unwrap();
        let io_loop = IoLoop::new();
        let ran = Rc::new(Cell::new(false));
        let flag = ran.clone();
        // Goes to the current loop: it must be the one just made.
        drop(whirl_ioloop::spawn(async move { flag.set(true) }));
        io_loop
            .run_sync_timeout(whirl_ioloop::sleep(Duration::from_millis(20)), TEST_TIMEOUT)
            .unwrap();
        ran.get()
    })
    .join()
    .unwrap();
    assert!(
        outcome,
        "a task spawned on the thread's loop went to the blocking client's"
    );
}
