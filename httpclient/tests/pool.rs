//! Connection pooling (Tornado's simple client never reuses connections,
//! its issue #324): keep-alive reuse, no pooling with a zero idle timeout,
//! idle connections closed after the timeout, `max_clients` with a queue,
//! and a transparent retry when a pooled connection turns out closed.

mod support;

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use support::{app_server, run, wait_until, RawServer, HELLO, TEST_TIMEOUT};
use whirl_httpclient::{AsyncHttpClient, ClientConfig, ErrorKind, HttpRequest};
use whirl_ioloop::multi;

#[test]
fn sequential_requests_reuse_one_connection() {
    let server = app_server();
    let url = server.url("/");
    run(async move {
        let client = AsyncHttpClient::new();
        for i in 0..5 {
            let response = client.fetch(format!("{url}?i={i}")).await.unwrap();
            assert_eq!(response.text(), HELLO);
            assert_eq!(client.idle_connections(), 1);
        }
        // A POST goes on the same connection too.
        client
            .fetch(HttpRequest::post(&url).body("b"))
            .await
            .unwrap();
    });
    assert_eq!(server.stats.seen().len(), 6);
    assert_eq!(server.stats.connections(), 1);
}

#[test]
fn a_raw_server_sees_one_accept_for_many_requests() {
    let server = RawServer::answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let url = server.url("/");
    run(async move {
        let client = AsyncHttpClient::new();
        for _ in 0..10 {
            assert_eq!(client.fetch(url.as_str()).await.unwrap().body, b"ok");
        }
    });
    assert_eq!(server.accepts(), 1);
}

#[test]
fn a_zero_idle_timeout_opens_a_connection_per_request() {
    let server = app_server();
    let url = server.url("/");
    run(async move {
        let client = AsyncHttpClient::with_config(ClientConfig {
            idle_timeout: Duration::ZERO,
            ..ClientConfig::default()
        });
        for _ in 0..3 {
            client.fetch(url.as_str()).await.unwrap();
            assert_eq!(client.idle_connections(), 0);
        }
    });
    assert_eq!(server.stats.connections(), 3);
}

#[test]
fn different_destinations_get_different_connections() {
    let a = app_server();
    let b = app_server();
    let (url_a, url_b) = (a.url("/"), b.url("/"));
    run(async move {
        let client = AsyncHttpClient::new();
        for _ in 0..2 {
            client.fetch(url_a.as_str()).await.unwrap();
            client.fetch(url_b.as_str()).await.unwrap();
        }
        assert_eq!(client.idle_connections(), 2);
    });
    assert_eq!(a.stats.connections(), 1);
    assert_eq!(b.stats.connections(), 1);
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let (closed_tx, closed_rx) = mpsc::channel();
    let server = RawServer::spawn(move |index, mut conn| {
        while conn.read_request().is_some() {
            if conn
                .write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
        // read_request saw EOF: the client closed the connection.
        let _ = closed_tx.send(index);
    });
    let url = server.url("/");
    run(async move {
        let client = AsyncHttpClient::with_config(ClientConfig {
            idle_timeout: Duration::from_millis(200),
            ..ClientConfig::default()
        });
        client.fetch(url.as_str()).await.unwrap();
        assert_eq!(client.idle_connections(), 1);
        wait_until("the idle connection is dropped", || {
            client.idle_connections() == 0
        })
        .await;
        // A later request opens a new connection.
        client.fetch(url.as_str()).await.unwrap();
    });
    // The server saw the first connection closed by the client.
    let closed = closed_rx
        .recv_timeout(TEST_TIMEOUT)
        .expect("the idle connection was closed");
    assert_eq!(closed, 0);
    assert_eq!(server.accepts(), 2);
}

#[test]
fn close_drops_idle_connections() {
    let (closed_tx, closed_rx) = mpsc::channel();
    let server = RawServer::spawn(move |index, mut conn| {
        while conn.read_request().is_some() {
            if conn
                .write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
        let _ = closed_tx.send(index);
    });
    let url = server.url("/");
    run(async move {
        let client = AsyncHttpClient::new();
        client.fetch(url.as_str()).await.unwrap();
        assert_eq!(client.idle_connections(), 1);
        client.close();
        assert_eq!(client.idle_connections(), 0);
        // Keep the loop turning until the close reached the server.
        whirl_ioloop::sleep(Duration::from_millis(10)).await;
    });
    assert_eq!(closed_rx.recv_timeout(TEST_TIMEOUT), Ok(0));
}

#[test]
fn max_clients_bounds_requests_in_flight_and_queues_the_rest() {
    let server = app_server();
    let url = server.url("/slow/150");
    let responses = run(async move {
        let client = AsyncHttpClient::with_config(ClientConfig {
            max_clients: 2,
            ..ClientConfig::default()
        });
        let fetches = (0..6).map(|_| {
            let client = client.clone();
            let url = url.clone();
            async move { client.fetch(url).await }
        });
        let responses = multi(fetches.map(whirl_ioloop::spawn)).await;
        assert!(client.idle_connections() <= 2);
        responses
    });
    assert_eq!(responses.len(), 6);
    for response in responses {
        let response = response
            .expect("the task ran")
            .expect("the fetch succeeded");
        assert_eq!(response.text(), "slow");
    }
    let max = server.stats.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 2, "{max} requests were in flight at once");
    assert!(max >= 1);
    assert_eq!(server.stats.seen().len(), 6);
    assert!(
        server.stats.connections() <= 2,
        "at most two connections were needed"
    );
}

#[test]
fn queued_requests_report_their_time_in_the_queue() {
    let server = app_server();
    let url = server.url("/slow/100");
    let responses = run(async move {
        let client = AsyncHttpClient::with_config(ClientConfig {
            max_clients: 1,
            ..ClientConfig::default()
        });
        let a = whirl_ioloop::spawn({
            let (client, url) = (client.clone(), url.clone());
            async move { client.fetch(url).await }
        });
        let b = whirl_ioloop::spawn(async move { client.fetch(url).await });
        [a.await.unwrap().unwrap(), b.await.unwrap().unwrap()]
    });
    // One of the two waited for the other; its wait is in time_info.queue
    // and within its total.
    let waited = responses.iter().max_by_key(|r| r.time_info.queue).unwrap();
    assert!(!waited.time_info.queue.is_zero());
    assert!(waited.time_info.queue <= waited.time_info.total);
    assert_eq!(server.stats.max_in_flight.load(Ordering::SeqCst), 1);
}

#[test]
fn max_idle_per_host_bounds_the_pool() {
    let server = app_server();
    let url = server.url("/slow/50");
    run(async move {
        let client = AsyncHttpClient::with_config(ClientConfig {
            max_idle_per_host: 1,
            ..ClientConfig::default()
        });
        let fetches = (0..3).map(|_| {
            let (client, url) = (client.clone(), url.clone());
            whirl_ioloop::spawn(async move { client.fetch(url).await })
        });
        for result in multi(fetches).await {
            result.unwrap().unwrap();
        }
        assert_eq!(client.idle_connections(), 1);
    });
}

/// A raw server whose first connection answers one request keep-alive and
/// then, on the next request, closes without answering — a server that
/// dropped an idle keep-alive connection just as the client reused it.
/// Later connections answer normally; the requests each saw are sent on
/// `tx`.
fn dropping_server(tx: mpsc::Sender<(usize, String)>) -> RawServer {
    RawServer::spawn(move |index, mut conn| {
        let mut served = 0;
        while let Some(request) = conn.read_request() {
            let _ = tx.send((index, request.line.clone()));
            if index == 0 && served == 1 {
                return;
            }
            served += 1;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
                request.body.len().max(2),
                if request.body.is_empty() {
                    "ok".to_string()
                } else {
                    String::from_utf8_lossy(&request.body).into_owned()
                }
            );
            if conn.write(reply.as_bytes()).is_err() {
                return;
            }
        }
    })
}

#[test]
fn a_stale_pooled_connection_is_retried_transparently_for_get() {
    let (tx, rx) = mpsc::channel();
    let server = dropping_server(tx);
    let url = server.url("/");
    let second = run(async move {
        let client = AsyncHttpClient::new();
        client.fetch(url.as_str()).await.unwrap();
        client.fetch(format!("{url}again")).await
    });
    assert_eq!(second.unwrap().body, b"ok");
    let seen: Vec<_> = rx.try_iter().collect();
    assert_eq!(
        seen,
        [
            (0, "GET / HTTP/1.1".to_string()),
            (0, "GET /again HTTP/1.1".to_string()),
            (1, "GET /again HTTP/1.1".to_string()),
        ]
    );
    assert_eq!(server.accepts(), 2);
}

#[test]
fn a_stale_pooled_connection_is_not_retried_for_post() {
    let (tx, rx) = mpsc::channel();
    let server = dropping_server(tx);
    let url = server.url("/");
    let second = run(async move {
        let client = AsyncHttpClient::new();
        client.fetch(url.as_str()).await.unwrap();
        client.fetch(HttpRequest::post(&url).body("once")).await
    });
    let e = second.unwrap_err();
    assert_eq!(
        (e.code(), e.kind()),
        (599, ErrorKind::ConnectionClosed),
        "{e}"
    );
    assert_eq!(rx.try_iter().count(), 2, "the POST was sent once");
    assert_eq!(server.accepts(), 1);
}

#[test]
fn a_stale_pooled_connection_is_retried_for_put_with_its_body() {
    let (tx, rx) = mpsc::channel();
    let server = dropping_server(tx);
    let url = server.url("/");
    let second = run(async move {
        let client = AsyncHttpClient::new();
        client.fetch(url.as_str()).await.unwrap();
        client
            .fetch(HttpRequest::put(&url).body("idempotent"))
            .await
    });
    assert_eq!(second.unwrap().body, b"idempotent");
    assert_eq!(rx.try_iter().count(), 3);
    assert_eq!(server.accepts(), 2);
}

#[test]
fn a_stale_pooled_connection_is_not_retried_for_a_body_producer() {
    // A producer may have consumed what it sends (a pipe being relayed):
    // calling it a second time could send a shorter body as if whole.
    let (tx, rx) = mpsc::channel();
    let server = dropping_server(tx);
    let url = server.url("/");
    let second = run(async move {
        let client = AsyncHttpClient::new();
        client.fetch(url.as_str()).await.unwrap();
        let request = HttpRequest::put(&url)
            .header("Content-Length", "4")
            .body_producer(|writer| Box::pin(async move { writer.write("once").await }));
        client.fetch(request).await
    });
    let e = second.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionClosed, "{e}");
    assert_eq!(rx.try_iter().count(), 2, "the PUT was sent once");
    assert_eq!(server.accepts(), 1);
}

#[test]
fn a_server_closing_idle_connections_is_handled() {
    // The server closes each connection a moment after answering, without
    // saying Connection: close; the client notices or retries, either way
    // the next request succeeds on a new connection.
    let server = RawServer::spawn(|_, mut conn| {
        if conn.read_request().is_some() {
            let _ = conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let url = server.url("/");
    run(async move {
        let client = AsyncHttpClient::new();
        for _ in 0..3 {
            assert_eq!(client.fetch(url.as_str()).await.unwrap().body, b"ok");
            whirl_ioloop::sleep(Duration::from_millis(150)).await;
        }
    });
    assert_eq!(server.accepts(), 3);
}

#[test]
fn a_pooled_connection_reset_by_the_server_is_retried_for_get() {
    // The server answers keep-alive, then resets the idle connection (an
    // abortive close: RST, not FIN). The next GET must not fail.
    let server = RawServer::spawn(|index, mut conn| {
        if conn.read_request().is_some() {
            let _ = conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            if index == 0 {
                std::thread::sleep(Duration::from_millis(50));
                let _ = socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO));
                return;
            }
            // Later connections stay open for the next request.
            while conn.read_request().is_some() {
                if conn
                    .write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    let url = server.url("/");
    let second = run(async move {
        let client = AsyncHttpClient::new();
        client.fetch(url.as_str()).await.unwrap();
        whirl_ioloop::sleep(Duration::from_millis(300)).await;
        client.fetch(url.as_str()).await
    });
    assert_eq!(second.unwrap().body, b"ok");
    assert_eq!(server.accepts(), 2);
}

#[test]
fn the_shared_client_works_on_a_second_loop_of_the_same_thread() {
    // AsyncHttpClient::current() outlives a loop; a connection pooled on a
    // loop that is gone must not be used by the next one.
    let server = app_server();
    let url = server.url("/");
    let first_url = url.clone();
    run(async move {
        AsyncHttpClient::current().fetch(first_url).await.unwrap();
    });
    let second = run(async move {
        let request = HttpRequest::get(url).request_timeout(Duration::from_secs(10));
        AsyncHttpClient::current().fetch(request).await
    });
    assert_eq!(second.unwrap().text(), HELLO);
}
