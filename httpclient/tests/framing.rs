//! How response bodies are delimited (Content-Length, chunked with
//! trailers, read until close on HTTP/1.0, none for HEAD/204/304), gzip
//! decoding, and the streaming and header callbacks.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use support::{app_server, gzip_text, run, RawServer, HELLO};
use whirl_httpclient::{AsyncHttpClient, HttpRequest, HttpResponse};

/// Fetches `request` twice with one client: both responses, and the
/// number of connections the raw server accepted.
fn fetch_twice(server: &RawServer, request: HttpRequest) -> (HttpResponse, HttpResponse, usize) {
    let (first, second) = run(async move {
        let client = AsyncHttpClient::new();
        let first = client.fetch(request.clone()).await.unwrap();
        let second = client.fetch(request).await.unwrap();
        (first, second)
    });
    (first, second, server.accepts())
}

#[test]
fn a_content_length_body_is_read_exactly_and_the_connection_kept() {
    let server = RawServer::answering(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    let (first, second, accepts) = fetch_twice(&server, HttpRequest::get(server.url("/")));
    assert_eq!(first.body, b"hello");
    assert_eq!(second.body, b"hello");
    assert_eq!(accepts, 1);
}

#[test]
fn a_zero_content_length_is_an_empty_body() {
    let server = RawServer::answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (first, second, accepts) = fetch_twice(&server, HttpRequest::get(server.url("/")));
    assert!(first.body.is_empty() && second.body.is_empty());
    assert_eq!(accepts, 1);
}

#[test]
fn a_chunked_body_with_extensions_and_trailers_is_joined() {
    let server = RawServer::answering(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n\
          5;ext=1\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
    );
    let (first, second, accepts) = fetch_twice(&server, HttpRequest::get(server.url("/")));
    assert_eq!(first.text(), "hello, world");
    assert_eq!(second.text(), "hello, world");
    assert_eq!(accepts, 1, "the connection is reusable after the trailers");
}

#[test]
fn whirls_own_chunked_responses_stream_whole() {
    let server = app_server();
    let url = server.url("/stream/5");
    let response = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    assert_eq!(response.headers.get("Transfer-Encoding"), Some("chunked"));
    assert_eq!(response.body.len(), 5 * 64 * 1024);
    assert!(response.body[..64 * 1024].iter().all(|&b| b == b'a'));
    assert!(response.body[4 * 64 * 1024..].iter().all(|&b| b == b'e'));
}

#[test]
fn an_http_10_body_runs_until_the_server_closes() {
    let server = RawServer::spawn(|_, mut conn| {
        if conn.read_request().is_some() {
            let _ = conn.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n");
            let _ = conn.write(b"all of this, ");
            let _ = conn.write(b"until the close");
        }
    });
    let (first, second, accepts) = fetch_twice(&server, HttpRequest::get(server.url("/")));
    assert_eq!(first.text(), "all of this, until the close");
    assert_eq!(second.text(), "all of this, until the close");
    assert_eq!(accepts, 2, "a close-delimited connection is not reused");
}

#[test]
fn an_http_11_body_without_length_runs_until_close() {
    let server = RawServer::spawn(|_, mut conn| {
        if conn.read_request().is_some() {
            let _ = conn.write(b"HTTP/1.1 200 OK\r\n\r\nno length");
        }
    });
    let (first, _, accepts) = fetch_twice(&server, HttpRequest::get(server.url("/")));
    assert_eq!(first.text(), "no length");
    assert_eq!(accepts, 2);
}

#[test]
fn connection_close_is_honoured() {
    let server = RawServer::spawn(|_, mut conn| {
        if conn.read_request().is_some() {
            let _ =
                conn.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let (first, _, accepts) = fetch_twice(&server, HttpRequest::get(server.url("/")));
    assert_eq!(first.body, b"ok");
    assert_eq!(accepts, 2);
}

#[test]
fn an_http_10_keep_alive_response_is_reused() {
    let server = RawServer::answering(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    );
    let (first, second, accepts) = fetch_twice(&server, HttpRequest::get(server.url("/")));
    assert_eq!(
        (first.body.as_slice(), second.body.as_slice()),
        (&b"ok"[..], &b"ok"[..])
    );
    assert_eq!(accepts, 1);
}

#[test]
fn a_head_response_has_no_body_despite_its_length() {
    let server = RawServer::answering(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
    let (first, second, accepts) =
        fetch_twice(&server, HttpRequest::get(server.url("/")).method("HEAD"));
    assert!(first.body.is_empty() && second.body.is_empty());
    assert_eq!(first.headers.get("Content-Length"), Some("1234"));
    assert_eq!(
        accepts, 1,
        "no body was waited for: the connection is reused"
    );
}

#[test]
fn head_against_whirls_server() {
    let server = app_server();
    let url = server.url("/");
    let response = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).method("HEAD"))
            .await
    })
    .unwrap();
    assert_eq!(response.code, 200);
    assert!(response.body.is_empty());
    assert_eq!(response.headers.get("X-Method"), Some("HEAD"));
}

#[test]
fn a_204_has_no_body() {
    let server = RawServer::answering(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
    let (first, second, accepts) = fetch_twice(&server, HttpRequest::get(server.url("/")));
    assert_eq!(first.code, 204);
    assert!(first.body.is_empty() && second.body.is_empty());
    assert_eq!(accepts, 1);
}

#[test]
fn a_304_has_no_body_despite_its_length() {
    let server = RawServer::answering(
        b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 50\r\n\r\n",
    );
    let request = HttpRequest::get(server.url("/"))
        .header("If-None-Match", "\"v1\"")
        .raise_error(false);
    let (first, second, accepts) = fetch_twice(&server, request);
    assert_eq!(first.code, 304);
    assert!(first.body.is_empty() && second.body.is_empty());
    assert_eq!(first.headers.get("ETag"), Some("\"v1\""));
    assert_eq!(accepts, 1);
}

#[test]
fn informational_responses_before_the_final_one_are_skipped() {
    let server = RawServer::answering(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
    );
    let (first, second, accepts) = fetch_twice(&server, HttpRequest::get(server.url("/")));
    assert_eq!((first.code, first.text()), (200, "final".to_string()));
    assert!(!first.headers.contains("Link"));
    assert_eq!(second.text(), "final");
    assert_eq!(accepts, 1);
}

#[test]
fn a_missing_reason_phrase_gets_the_standard_one() {
    let server = RawServer::answering_once(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n");
    let url = server.url("/");
    let response = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    assert_eq!(response.reason, "OK");
}

#[test]
fn a_custom_reason_phrase_is_kept() {
    let server = RawServer::answering_once(b"HTTP/1.1 200 Splendid\r\nContent-Length: 0\r\n\r\n");
    let url = server.url("/");
    let response = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    assert_eq!(response.reason, "Splendid");
}

#[test]
fn gzip_is_asked_for_and_decoded() {
    let server = app_server();
    let url = server.url("/gzip");
    let response = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    assert_eq!(response.text(), gzip_text());
    assert!(!response.headers.contains("Content-Encoding"));
    assert_eq!(
        response.headers.get("X-Consumed-Content-Encoding"),
        Some("gzip")
    );
    let seen = server.stats.last().request;
    assert_eq!(seen.headers.get("Accept-Encoding"), Some("gzip"));
}

#[test]
fn decompress_response_false_leaves_gzip_alone() {
    let server = app_server();
    let url = server.url("/gzip");
    let response = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).decompress_response(false))
            .await
    })
    .unwrap();
    assert_eq!(response.headers.get("Content-Encoding"), Some("gzip"));
    assert_eq!(&response.body[..2], b"\x1f\x8b", "still gzip");
    assert_eq!(response.body, support::gzip(gzip_text().as_bytes()));
    let seen = server.stats.last().request;
    assert!(!seen.headers.contains("Accept-Encoding"));
}

#[test]
fn a_chunked_gzip_body_is_decoded() {
    let compressed = support::gzip(gzip_text().as_bytes());
    let server = RawServer::spawn(move |_, mut conn| {
        if conn.read_request().is_some() {
            let mut response =
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                    .to_vec();
            for piece in compressed.chunks(7) {
                response.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                response.extend_from_slice(piece);
                response.extend_from_slice(b"\r\n");
            }
            response.extend_from_slice(b"0\r\n\r\n");
            let _ = conn.write(&response);
        }
    });
    let url = server.url("/");
    let response = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    assert_eq!(response.text(), gzip_text());
}

#[test]
fn broken_gzip_is_a_malformed_response() {
    let server = RawServer::answering_once(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\nnot gzip!!",
    );
    let url = server.url("/");
    let e = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap_err();
    assert_eq!(
        (e.code(), e.kind()),
        (599, whirl_httpclient::ErrorKind::MalformedResponse),
        "{e}"
    );
}

#[test]
fn a_truncated_gzip_body_is_an_error() {
    let compressed = support::gzip(gzip_text().as_bytes());
    let server = RawServer::spawn(move |_, mut conn| {
        if conn.read_request().is_some() {
            let cut = &compressed[..compressed.len() / 2];
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                cut.len()
            );
            let _ = conn.write(head.as_bytes());
            let _ = conn.write(cut);
        }
    });
    let url = server.url("/");
    let e = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap_err();
    assert_eq!(e.code(), 599, "{e}");
    assert!(e.message().contains("gzip"), "{e}");
}

#[test]
fn streaming_callback_gets_the_body_in_pieces_and_body_stays_empty() {
    let server = app_server();
    let url = server.url("/stream/6");
    let pieces: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let sink = pieces.clone();
    let response = run(async move {
        let request = HttpRequest::get(url).streaming_callback(move |piece| {
            sink.borrow_mut().push(piece);
        });
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert!(response.body.is_empty());
    let pieces = pieces.borrow();
    assert!(pieces.len() >= 6, "{} pieces", pieces.len());
    let joined: Vec<u8> = pieces.concat();
    assert_eq!(joined.len(), 6 * 64 * 1024);
    assert!(joined[..64 * 1024].iter().all(|&b| b == b'a'));
    assert!(joined[5 * 64 * 1024..].iter().all(|&b| b == b'f'));
}

#[test]
fn streaming_callback_gets_decoded_gzip() {
    let server = app_server();
    let url = server.url("/gzip");
    let pieces: Rc<RefCell<Vec<u8>>> = Rc::default();
    let sink = pieces.clone();
    let response = run(async move {
        let request = HttpRequest::get(url)
            .streaming_callback(move |piece| sink.borrow_mut().extend_from_slice(&piece));
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert!(response.body.is_empty());
    assert_eq!(
        String::from_utf8(pieces.borrow().clone()).unwrap(),
        gzip_text()
    );
}

#[test]
fn header_callback_gets_the_status_line_each_header_and_the_final_crlf() {
    let server = RawServer::answering_once(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Two: a\r\nX-Two: b\r\nContent-Length: 2\r\n\r\nok",
    );
    let url = server.url("/");
    let lines: Rc<RefCell<Vec<String>>> = Rc::default();
    let sink = lines.clone();
    let response = run(async move {
        let request = HttpRequest::get(url)
            .header_callback(move |line| sink.borrow_mut().push(line.to_string()));
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert_eq!(response.body, b"ok", "the body is still collected");
    let lines = lines.borrow();
    assert_eq!(
        *lines,
        [
            "HTTP/1.1 200 OK\r\n",
            "Content-Type: text/plain\r\n",
            "X-Two: a\r\n",
            "X-Two: b\r\n",
            "Content-Length: 2\r\n",
            "\r\n",
        ]
    );
}

#[test]
fn header_callback_with_streaming_callback_leaves_nothing_buffered() {
    let server = app_server();
    let url = server.url("/");
    let lines: Rc<RefCell<Vec<String>>> = Rc::default();
    let body: Rc<RefCell<Vec<u8>>> = Rc::default();
    let (line_sink, body_sink) = (lines.clone(), body.clone());
    let response = run(async move {
        let request = HttpRequest::get(url)
            .header_callback(move |line| line_sink.borrow_mut().push(line.to_string()))
            .streaming_callback(move |piece| body_sink.borrow_mut().extend_from_slice(&piece));
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert!(response.body.is_empty());
    assert_eq!(body.borrow().as_slice(), HELLO.as_bytes());
    let lines = lines.borrow();
    assert!(lines[0].starts_with("HTTP/1.1 200"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "X-Method: GET\r\n"), "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("\r\n"));
}

#[test]
fn header_callback_reports_the_responses_own_version() {
    let server = RawServer::answering_once(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let url = server.url("/");
    let lines: Rc<RefCell<Vec<String>>> = Rc::default();
    let sink = lines.clone();
    run(async move {
        let request = HttpRequest::get(url)
            .header_callback(move |line| sink.borrow_mut().push(line.to_string()));
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert_eq!(lines.borrow()[0], "HTTP/1.0 200 OK\r\n");
}

#[test]
fn a_bodiless_gzip_response_is_not_an_incomplete_gzip_body() {
    // HEAD, 204 and 304 carry no body even when they say Content-Encoding:
    // gzip (a 304 repeats the headers of the 200 it stands for).
    let server = app_server();
    let url = server.url("/gzip");
    let head = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).method("HEAD"))
            .await
    })
    .unwrap();
    assert_eq!(head.code, 200);
    assert!(head.body.is_empty());
    let raw = RawServer::answering(
        b"HTTP/1.1 304 Not Modified\r\nContent-Encoding: gzip\r\nETag: \"g\"\r\n\r\n",
    );
    let (first, _, accepts) = fetch_twice(&raw, HttpRequest::get(raw.url("/")).raise_error(false));
    assert_eq!(first.code, 304);
    assert!(first.error.as_deref().is_some_and(|e| e.code() == 304));
    assert_eq!(accepts, 1);
}
