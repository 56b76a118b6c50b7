//! Failures with no usable response are `HttpClientError`s with code 599
//! and a message that says what happened: refused, DNS, connect timeout,
//! request timeout, timeout in queue, body too large, malformed responses.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use support::{app_server, gzip, run, RawServer, TEST_TIMEOUT};
use whirl_httpclient::{
    AsyncHttpClient, ClientConfig, ErrorKind, HttpClientError, HttpRequest, NETWORK_ERROR_CODE,
};

/// Fetches `request` with a fresh client and expects a failure.
fn fail(request: impl Into<HttpRequest>) -> HttpClientError {
    let request = request.into();
    run(async move { AsyncHttpClient::new().fetch(request).await })
        .expect_err("the fetch should fail")
}

/// Asserts `e` is a 599 of `kind` whose message contains `words`.
#[track_caller]
fn assert_599(e: &HttpClientError, kind: ErrorKind, words: &str) {
    assert_eq!(e.code(), NETWORK_ERROR_CODE, "{e}");
    assert_eq!(e.kind(), kind, "{e}");
    assert!(
        e.message().to_lowercase().contains(&words.to_lowercase()),
        "{e:?} should say {words:?}"
    );
    assert!(e.response().is_none(), "{e}");
}

/// A port on 127.0.0.1 nothing listens on.
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn connection_refused_is_599_saying_so() {
    let addr = closed_port();
    let e = fail(format!("http://{addr}/"));
    assert_599(&e, ErrorKind::Connect, "refused");
    assert!(e.message().contains(&addr.to_string()), "{e}");
    assert!(!e.is_timeout());
}

#[test]
fn dns_failure_is_599_saying_so() {
    let e = fail("http://no-such-host.invalid/");
    assert_599(&e, ErrorKind::Dns, "resolve");
    assert!(e.message().contains("no-such-host.invalid"), "{e}");
}

/// A listener whose accept queue is full (backlog 0, one connection
/// waiting, never accepted): a new connection's SYN is dropped, so
/// connecting hangs. (A non-routable address such as 10.255.255.1 is the
/// usual way, but on machines behind a transparent proxy it connects at
/// once.) Returns the listener and the connection that fills it; `None` if
/// this system does not make connects hang that way.
fn full_backlog() -> Option<(socket2::Socket, Vec<TcpStream>, SocketAddr)> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(stream) => fillers.push(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Some((socket, fillers, addr))
            }
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn connect_timeout_is_599_saying_so() {
    let Some((_listener, _fillers, addr)) = full_backlog() else {
        eprintln!("skipped: connecting to a full accept queue does not hang on this system");
        return;
    };
    let e = fail(
        HttpRequest::get(format!("http://{addr}/")).connect_timeout(Duration::from_millis(200)),
    );
    assert_599(&e, ErrorKind::ConnectTimeout, "timeout while connecting");
    assert!(e.is_timeout());
}

#[test]
fn request_timeout_when_the_server_never_answers() {
    let server = app_server();
    let e = fail(HttpRequest::get(server.url("/hang")).request_timeout(Duration::from_millis(300)));
    assert_599(&e, ErrorKind::RequestTimeout, "timeout during request");
    assert!(e.is_timeout());
    assert_eq!(server.stats.seen().len(), 1, "the request was sent");
}

#[test]
fn zero_timeouts_mean_no_limit_as_in_tornado() {
    let server = app_server();
    let request = HttpRequest::get(server.url("/"))
        .request_timeout(Duration::ZERO)
        .connect_timeout(Duration::ZERO);
    let response = run(async move { AsyncHttpClient::new().fetch(request).await })
        .expect("a zero timeout is no timeout, not an instant one");
    assert_eq!(response.code, 200);
}

#[test]
fn request_timeout_when_the_body_stalls() {
    // The head and half the body come, then nothing.
    let server = RawServer::spawn(|_, mut conn| {
        if conn.read_request().is_some() {
            let _ = conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf ");
            conn.wait_for_close();
        }
    });
    let e = fail(HttpRequest::get(server.url("/")).request_timeout(Duration::from_millis(300)));
    assert_599(&e, ErrorKind::RequestTimeout, "timeout");
}

#[test]
fn timeout_in_queue_when_max_clients_are_busy() {
    let server = app_server();
    let hang = server.url("/hang");
    let quick = server.url("/");
    let e = run(async move {
        let client = AsyncHttpClient::with_config(ClientConfig {
            max_clients: 1,
            ..ClientConfig::default()
        });
        let busy = client.clone();
        let first = whirl_ioloop::spawn(async move {
            busy.fetch(HttpRequest::get(hang).request_timeout(TEST_TIMEOUT))
                .await
        });
        // Let the first request take the only slot.
        support::wait_until("the first request is in flight", || {
            !server.stats.seen().is_empty()
        })
        .await;
        let e = client
            .fetch(HttpRequest::get(quick).request_timeout(Duration::from_millis(200)))
            .await
            .unwrap_err();
        first.abort();
        assert_eq!(
            server.stats.seen().len(),
            1,
            "the queued request never left"
        );
        e
    });
    assert_599(&e, ErrorKind::TimeoutInQueue, "timeout in request queue");
    assert!(e.is_timeout());
}

#[test]
fn a_declared_body_over_max_body_size_is_refused() {
    let server = RawServer::answering_once(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    let e = fail(HttpRequest::get(server.url("/")).max_body_size(100));
    assert_599(&e, ErrorKind::BodyTooLarge, "1000");
}

#[test]
fn a_chunked_body_growing_over_max_body_size_is_refused() {
    let server = RawServer::spawn(|_, mut conn| {
        if conn.read_request().is_some() {
            let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..10 {
                response.extend_from_slice(b"64\r\n");
                response.extend_from_slice(&[b'x'; 100]);
                response.extend_from_slice(b"\r\n");
            }
            response.extend_from_slice(b"0\r\n\r\n");
            let _ = conn.write(&response);
        }
    });
    let e = fail(HttpRequest::get(server.url("/")).max_body_size(250));
    assert_599(&e, ErrorKind::BodyTooLarge, "limit");
}

#[test]
fn a_close_delimited_body_growing_over_max_body_size_is_refused() {
    let server = RawServer::spawn(|_, mut conn| {
        if conn.read_request().is_some() {
            let mut response = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
            response.extend_from_slice(&[b'x'; 1000]);
            let _ = conn.write(&response);
        }
    });
    let e = fail(HttpRequest::get(server.url("/")).max_body_size(250));
    assert_599(&e, ErrorKind::BodyTooLarge, "limit");
}

#[test]
fn a_gzip_body_decoding_past_max_body_size_is_refused() {
    let compressed = gzip(&vec![b'z'; 100_000]);
    assert!(compressed.len() < 1000);
    let server = RawServer::spawn(move |_, mut conn| {
        if conn.read_request().is_some() {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                compressed.len()
            );
            let _ = conn.write(head.as_bytes());
            let _ = conn.write(&compressed);
        }
    });
    let e = fail(HttpRequest::get(server.url("/")).max_body_size(10_000));
    assert_599(&e, ErrorKind::BodyTooLarge, "gzip");
}

#[test]
fn a_garbage_status_line_is_a_malformed_response() {
    let server = RawServer::answering_once(b"SPDY/9 banana\r\nContent-Length: 0\r\n\r\n");
    let e = fail(server.url("/"));
    assert_599(&e, ErrorKind::MalformedResponse, "malformed");
}

#[test]
fn a_non_http_reply_is_a_malformed_response() {
    let server = RawServer::answering_once(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n");
    let e = fail(server.url("/"));
    assert_599(&e, ErrorKind::MalformedResponse, "malformed");
}

#[test]
fn transfer_encoding_with_content_length_is_a_malformed_response() {
    let server = RawServer::answering_once(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    let e = fail(server.url("/"));
    assert_599(&e, ErrorKind::MalformedResponse, "framing");
}

#[test]
fn two_different_content_lengths_are_a_malformed_response() {
    let server = RawServer::answering_once(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    );
    let e = fail(server.url("/"));
    assert_599(&e, ErrorKind::MalformedResponse, "framing");
}

#[test]
fn a_non_numeric_content_length_is_a_malformed_response() {
    let server = RawServer::answering_once(b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello");
    let e = fail(server.url("/"));
    assert_599(&e, ErrorKind::MalformedResponse, "malformed");
}

#[test]
fn repeated_equal_content_lengths_are_accepted() {
    let server = RawServer::answering_once(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    );
    let url = server.url("/");
    let response = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    assert_eq!(response.body, b"hello");
}

#[test]
fn a_broken_chunk_size_is_a_malformed_response() {
    let server = RawServer::answering_once(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    );
    let e = fail(server.url("/"));
    assert_599(&e, ErrorKind::MalformedResponse, "malformed");
}

#[test]
fn a_chunked_body_cut_short_is_an_error() {
    let server = RawServer::answering_once(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nonly part",
    );
    let e = fail(server.url("/"));
    assert_599(&e, ErrorKind::ConnectionClosed, "closed");
}

#[test]
fn a_content_length_body_cut_short_is_an_error() {
    let server =
        RawServer::answering_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part");
    let e = fail(server.url("/"));
    assert_599(&e, ErrorKind::ConnectionClosed, "closed");
}

#[test]
fn a_head_cut_short_is_an_error() {
    let server = RawServer::answering_once(b"HTTP/1.1 200 OK\r\nContent-Le");
    let e = fail(server.url("/"));
    assert_eq!(e.code(), NETWORK_ERROR_CODE, "{e}");
    assert!(
        matches!(
            e.kind(),
            ErrorKind::ConnectionClosed | ErrorKind::MalformedResponse
        ),
        "{e}"
    );
}

#[test]
fn a_close_before_any_response_is_an_error() {
    let server = RawServer::spawn(|_, mut conn| {
        conn.read_request();
    });
    let e = fail(server.url("/"));
    assert_599(&e, ErrorKind::ConnectionClosed, "closed before a response");
    // A fresh connection is not retried: the server saw one.
    assert_eq!(server.accepts(), 1);
}

#[test]
fn a_head_over_max_header_size_is_refused() {
    let server = RawServer::spawn(|_, mut conn| {
        if conn.read_request().is_some() {
            let big = "a".repeat(4000);
            let response =
                format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\nContent-Length: 2\r\n\r\nok");
            let _ = conn.write(response.as_bytes());
        }
    });
    let e = fail(HttpRequest::get(server.url("/")).max_header_size(1024));
    assert_599(&e, ErrorKind::MalformedResponse, "");
    let url = server.url("/");
    let fine = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    assert_eq!(fine.body, b"ok");
}

#[test]
fn too_many_informational_responses_are_refused() {
    let server = RawServer::spawn(|_, mut conn| {
        if conn.read_request().is_some() {
            let response = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n".repeat(20);
            let _ = conn.write(response.as_bytes());
            let _ = conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let e = fail(server.url("/"));
    assert_599(&e, ErrorKind::MalformedResponse, "1xx");
}

#[test]
fn a_failed_request_does_not_poison_the_pool() {
    // The first connection sends garbage; the next request gets a new one.
    let server = RawServer::spawn(|index, mut conn| {
        while conn.read_request().is_some() {
            let reply: &[u8] = if index == 0 {
                b"garbage\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            };
            if conn.write(reply).is_err() {
                break;
            }
        }
    });
    let url = server.url("/");
    let (first, second) = run(async move {
        let client = AsyncHttpClient::new();
        let first = client.fetch(url.as_str()).await;
        let second = client.fetch(url.as_str()).await;
        (first, second)
    });
    assert_eq!(first.unwrap_err().kind(), ErrorKind::MalformedResponse);
    assert_eq!(second.unwrap().body, b"ok");
    assert_eq!(server.accepts(), 2);
}

/// whirl's server with a 1000-byte body limit: it refuses a longer
/// declared length with 413 before reading the body, and closes.
fn small_limit_server() -> support::TestServer {
    support::spawn_server(|stats| {
        support::app(stats).with_params(whirl_httpserver::Http1ConnectionParams {
            max_body_size: 1000,
            ..whirl_httpserver::Http1ConnectionParams::default()
        })
    })
}

#[test]
#[ignore = "known gap: the client writes the whole body before it reads; a server that \
            answers 413 early and closes makes the write fail (EPIPE) and its answer is \
            lost (599). Reading while writing (Http1ClientConnection allows it) would \
            narrow the race but not close it; expect_100_continue is the remedy."]
fn a_server_refusing_a_large_upload_early_is_answered_with_its_status() {
    let server = small_limit_server();
    let url = server.url("/upload");
    let e = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::post(url).body(vec![b'x'; 8 * 1024 * 1024]))
            .await
    })
    .unwrap_err();
    assert_eq!((e.code(), e.kind()), (413, ErrorKind::Status), "{e}");
}

#[test]
fn expect_100_continue_gets_the_refusal_of_a_large_upload() {
    let server = small_limit_server();
    let url = server.url("/upload");
    let e = run(async move {
        let request = HttpRequest::post(url)
            .body(vec![b'x'; 8 * 1024 * 1024])
            .expect_100_continue(true);
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap_err();
    assert_eq!((e.code(), e.kind()), (413, ErrorKind::Status), "{e}");
    assert!(server.stats.seen().is_empty());
}

#[test]
fn the_client_recovers_after_a_request_timeout() {
    let server = app_server();
    let (hang, quick) = (server.url("/hang"), server.url("/"));
    let (timed_out, next) = run(async move {
        let client = AsyncHttpClient::new();
        let timed_out = client
            .fetch(HttpRequest::get(hang).request_timeout(Duration::from_millis(200)))
            .await;
        let next = client.fetch(quick).await;
        (timed_out, next)
    });
    assert_eq!(timed_out.unwrap_err().kind(), ErrorKind::RequestTimeout);
    assert_eq!(next.unwrap().text(), support::HELLO);
    assert_eq!(
        server.stats.connections(),
        2,
        "the timed-out connection was not reused"
    );
}

#[test]
fn a_fetch_dropped_by_its_caller_frees_its_slot() {
    let server = app_server();
    let (hang, quick) = (server.url("/hang"), server.url("/"));
    let response = run(async move {
        let client = AsyncHttpClient::with_config(ClientConfig {
            max_clients: 1,
            ..ClientConfig::default()
        });
        let gave_up =
            whirl_ioloop::with_timeout(Duration::from_millis(200), client.fetch(hang)).await;
        assert!(gave_up.is_err());
        client
            .fetch(HttpRequest::get(quick).request_timeout(Duration::from_secs(20)))
            .await
    });
    assert_eq!(response.unwrap().text(), support::HELLO);
}
