//! Request bodies: bytes, body producers (chunked without a length),
//! `Expect: 100-continue`, and multipart uploads of fields and files
//! parsed by whirl's own server.

mod support;

use std::sync::mpsc;

use support::{app_server, run, RawServer, TempDir, TEST_TIMEOUT};
use whirl_httpclient::{AsyncHttpClient, ErrorKind, HttpClientError, HttpRequest, Multipart};
use whirl_httpserver::HttpServerRequest;

#[test]
fn a_large_body_arrives_whole() {
    let server = app_server();
    let url = server.url("/echo");
    let body: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let sent = body.clone();
    let response = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::post(url).body(sent))
            .await
    })
    .unwrap();
    assert_eq!(response.body.len(), body.len());
    assert!(response.body == body);
    let seen = server.stats.last().request;
    assert_eq!(
        seen.headers.get("Content-Length"),
        Some(body.len().to_string().as_str())
    );
}

#[test]
fn a_body_producer_without_length_arrives_chunked() {
    let server = app_server();
    let url = server.url("/echo");
    let response = run(async move {
        let request = HttpRequest::post(url).body_producer(|writer| {
            Box::pin(async move {
                for i in 0..5 {
                    writer.write(format!("piece {i};")).await?;
                }
                Ok(())
            })
        });
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    let expected = "piece 0;piece 1;piece 2;piece 3;piece 4;";
    assert_eq!(response.text(), expected);
    let seen = server.stats.last().request;
    assert_eq!(seen.headers.get("Transfer-Encoding"), Some("chunked"));
    assert!(!seen.headers.contains("Content-Length"));
    assert_eq!(seen.body, expected.as_bytes());
}

#[test]
fn a_body_producer_sends_several_chunks_on_the_wire() {
    let (tx, rx) = mpsc::channel();
    let server = RawServer::spawn(move |_, mut conn| {
        if let Some(request) = conn.read_head() {
            let _ = tx.send(request);
            // Read the chunked body raw, up to its last chunk.
            let Some(raw) = conn.read_until(b"0\r\n\r\n") else {
                return;
            };
            let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", raw.len());
            let _ = conn.write(reply.as_bytes());
            let _ = conn.write(&raw);
        }
    });
    let url = server.url("/");
    let response = run(async move {
        let request = HttpRequest::put(url).body_producer(|writer| {
            Box::pin(async move {
                writer.write("abc").await?;
                writer.write("").await?;
                writer.write("defgh").await
            })
        });
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    let head = rx.recv_timeout(TEST_TIMEOUT).unwrap();
    assert_eq!(head.line, "PUT / HTTP/1.1");
    assert_eq!(head.header("Transfer-Encoding").as_deref(), Some("chunked"));
    assert_eq!(response.text(), "3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n");
}

#[test]
fn a_body_producer_with_a_content_length_is_not_chunked() {
    let server = app_server();
    let url = server.url("/echo");
    let response = run(async move {
        let request = HttpRequest::post(url)
            .header("Content-Length", "11")
            .body_producer(|writer| {
                Box::pin(async move {
                    writer.write("hello ").await?;
                    writer.write("world").await
                })
            });
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert_eq!(response.text(), "hello world");
    let seen = server.stats.last().request;
    assert_eq!(seen.headers.get("Content-Length"), Some("11"));
    assert!(!seen.headers.contains("Transfer-Encoding"));
}

#[test]
fn a_body_producer_writing_past_its_content_length_fails() {
    let server = app_server();
    let url = server.url("/echo");
    let e = run(async move {
        let request = HttpRequest::post(url)
            .header("Content-Length", "3")
            .body_producer(|writer| Box::pin(async move { writer.write("too long").await }));
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap_err();
    assert_eq!(e.code(), 599, "{e}");
    assert_eq!(e.kind(), ErrorKind::Body, "{e}");
}

#[test]
fn a_body_producer_error_fails_the_fetch_with_it() {
    let server = app_server();
    let url = server.url("/echo");
    let e = run(async move {
        let request = HttpRequest::post(url).body_producer(|writer| {
            Box::pin(async move {
                writer.write("partial").await?;
                Err(HttpClientError::new(ErrorKind::Body, "the source ran dry"))
            })
        });
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap_err();
    assert_eq!((e.code(), e.kind()), (599, ErrorKind::Body));
    assert_eq!(e.message(), "the source ran dry");
    assert!(
        server.stats.seen().is_empty(),
        "a half-sent body never reaches the handler"
    );
}

#[test]
fn expect_100_continue_with_whirls_server_delivers_the_body() {
    let server = app_server();
    let url = server.url("/echo");
    let lines = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
    let sink = lines.clone();
    let response = run(async move {
        let request = HttpRequest::post(url)
            .body("sent after 100")
            .expect_100_continue(true)
            .header_callback(move |line| sink.borrow_mut().push(line.to_string()));
        let client = AsyncHttpClient::new();
        let first = client.fetch(request.clone()).await.unwrap();
        // The connection is clean afterwards: it carries another request.
        let second = client.fetch(request).await.unwrap();
        assert_eq!(second.text(), "sent after 100");
        first
    });
    assert_eq!(response.text(), "sent after 100");
    let seen = server.stats.last().request;
    assert_eq!(seen.headers.get("Expect"), Some("100-continue"));
    assert_eq!(seen.body, b"sent after 100");
    assert_eq!(server.stats.connections(), 1);
    let lines = lines.borrow();
    assert!(lines[0].starts_with("HTTP/1.1 100"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("HTTP/1.1 200")),
        "{lines:?}"
    );
}

#[test]
fn expect_100_continue_answered_at_once_never_sends_the_body() {
    // The server refuses on the head alone: the body is never sent, and
    // the refusal is the response.
    let (tx, rx) = mpsc::channel();
    let server = RawServer::spawn(move |_, mut conn| {
        if let Some(head) = conn.read_head() {
            let _ = conn.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nnope");
            // Whatever arrives next (nothing, then the client's close).
            let _ = tx.send((head, conn.wait_for_close()));
        }
    });
    let url = server.url("/");
    let e = run(async move {
        let request = HttpRequest::post(url)
            .body(vec![b'x'; 100_000])
            .expect_100_continue(true);
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap_err();
    assert_eq!((e.code(), e.kind()), (413, ErrorKind::Status), "{e}");
    assert_eq!(e.response().unwrap().body, b"nope");
    let (head, closed_without_body) = rx.recv_timeout(TEST_TIMEOUT).unwrap();
    assert_eq!(head.header("Expect").as_deref(), Some("100-continue"));
    assert!(closed_without_body, "the body was sent anyway");
}

#[test]
fn multipart_fields_and_a_file_from_disk_arrive_parsed() {
    let dir = TempDir::new("upload");
    let contents: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let path = dir.write("scan.png", &contents);
    let server = app_server();
    let url = server.url("/upload");
    let form = Multipart::new()
        .field("api_key", "k1")
        .field("api_secret", "s3cr3t")
        .file_from_path("image", &path)
        .file("notes", "notes.txt", b"line one\r\nline two".to_vec());
    let response = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::post(url).multipart(form))
            .await
    })
    .unwrap();
    assert_eq!(response.code, 200);
    let seen = server.stats.last().request;
    let content_type = seen.headers.get("Content-Type").unwrap();
    assert!(
        content_type.starts_with("multipart/form-data; boundary="),
        "{content_type}"
    );
    assert!(seen.headers.contains("Content-Length"));
    assert!(!seen.headers.contains("Transfer-Encoding"));
    assert_eq!(body_arguments(&seen, "api_key"), ["k1"]);
    assert_eq!(body_arguments(&seen, "api_secret"), ["s3cr3t"]);
    let image = &seen.files["image"];
    assert_eq!(image.len(), 1);
    assert_eq!(image[0].filename, "scan.png");
    assert_eq!(image[0].content_type, "image/png");
    assert!(image[0].body == contents, "the file arrived byte for byte");
    let notes = &seen.files["notes"][0];
    assert_eq!(
        (notes.filename.as_str(), notes.content_type.as_str()),
        ("notes.txt", "text/plain")
    );
    assert_eq!(notes.body, b"line one\r\nline two");
}

/// The text values of body argument `name` of `request`.
fn body_arguments(request: &HttpServerRequest, name: &str) -> Vec<String> {
    request
        .body_arguments
        .get(name)
        .map(|values| {
            values
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_multipart_upload_follows_a_307_with_its_files() {
    let dir = TempDir::new("upload-307");
    let path = dir.write("data.bin", vec![7u8; 70_000]);
    let server = app_server();
    let url = server.url("/redirect/307?to=/landed");
    let form = Multipart::new().field("a", "1").file_from_path("f", &path);
    run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::post(url).multipart(form))
            .await
    })
    .unwrap();
    let seen = server.stats.seen();
    assert_eq!(seen.len(), 2);
    let landed = &seen[1].request;
    assert_eq!(landed.path(), "/landed");
    assert_eq!(landed.files["f"][0].body, vec![7u8; 70_000]);
    assert_eq!(landed.body_arguments["a"], [b"1".to_vec()]);
}

#[test]
fn a_multipart_file_that_is_missing_fails_before_sending() {
    let dir = TempDir::new("upload-missing");
    let server = app_server();
    let url = server.url("/upload");
    let form = Multipart::new().file_from_path("f", dir.path().join("absent.bin"));
    let e = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::post(url).multipart(form))
            .await
    })
    .unwrap_err();
    assert_eq!((e.code(), e.kind()), (599, ErrorKind::Body), "{e}");
    assert!(server.stats.seen().is_empty());
}
