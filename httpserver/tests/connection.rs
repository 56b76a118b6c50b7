//! Behaviour of one HTTP/1.x connection over loopback, with raw bytes:
//! keep-alive and close, pipelining, bodiless responses, response framing,
//! `100-continue`, request body delivery, timeouts, disconnects, graceful
//! shutdown and the per-connection request limit (Tornado checklist 27,
//! 31–38, 41–44, 47).

mod support;

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    assert_serves, block_until, closed_within, connect, hello_server, join, read_response,
    read_to_close, read_until_close_or_quiet, respond, run_on, spawn_server, status, wait_until,
    Reader, HELLO,
};
use whirl_httpserver::{
    Flow, Http1Connection, Http1ConnectionParams, HttpHeaders, HttpMessageDelegate,
    HttpOutputError, HttpServer, HttpServerConnectionDelegate, StartLine,
};
use whirl_ioloop::{sleep, spawn, IoLoop};

/// How long a test waits for something that should happen "soon" (a close
/// after a short timeout): generous, never a claim about speed.
const SOON: Duration = Duration::from_secs(10);

/// A plain keep-alive GET for `path`.
fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// Sends `request` on `stream`.
fn send(stream: &mut TcpStream, request: impl AsRef<[u8]>) {
    stream.write_all(request.as_ref()).expect("write");
}

// ----- keep-alive and close (31–34) ----------------------------------------------

#[test]
fn keep_alive_serves_two_sequential_requests_on_one_socket() {
    let server = hello_server(Http1ConnectionParams::default());
    let mut stream = connect(server.addr);
    for path in ["/one", "/two"] {
        send(&mut stream, get(path));
        let response = read_response(&mut stream, false).unwrap();
        assert_eq!(response.code, 200);
        assert_eq!(response.header("X-Path"), Some(path));
        assert_eq!(response.body, HELLO.as_bytes());
        assert!(!response.has("Connection"), "{}", response.text());
    }
}

#[test]
fn pipelined_requests_in_one_write_are_answered_in_order() {
    // `/slow` answers late; the request after it must still come second.
    let server = spawn_server(|| {
        HttpServer::from_fn(|request, connection| {
            let connection = connection.clone();
            let delay = if request.path() == "/slow" { 200 } else { 0 };
            IoLoop::current().call_later(Duration::from_millis(delay), move || {
                respond(
                    &connection,
                    &request,
                    200,
                    request.path().to_string().into_bytes(),
                );
            });
        })
    });
    let mut stream = connect(server.addr);
    send(
        &mut stream,
        format!("{}{}{}", get("/slow"), get("/b"), get("/c")),
    );
    let mut reader = Reader::new(&mut stream);
    for path in ["/slow", "/b", "/c"] {
        let response = reader.read_response(false).unwrap();
        assert_eq!(response.code, 200);
        assert_eq!(response.body, path.as_bytes());
    }
}

#[test]
fn connection_close_is_echoed_then_eof() {
    let server = hello_server(Http1ConnectionParams::default());
    let mut stream = connect(server.addr);
    send(
        &mut stream,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let mut reader = Reader::new(&mut stream);
    let response = reader.read_response(false).unwrap();
    assert_eq!(response.code, 200);
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(reader.closed_within(SOON));
}

#[test]
fn http10_without_keep_alive_has_no_connection_header_then_eof() {
    let server = hello_server(Http1ConnectionParams::default());
    let mut stream = connect(server.addr);
    send(&mut stream, "GET / HTTP/1.0\r\n\r\n");
    let mut reader = Reader::new(&mut stream);
    let response = reader.read_response(false).unwrap();
    assert_eq!(response.code, 200);
    assert!(!response.has("Connection"), "{}", response.text());
    assert_eq!(response.body, HELLO.as_bytes());
    assert!(reader.closed_within(SOON));
}

#[test]
fn http10_with_keep_alive_says_keep_alive_and_stays_open() {
    let server = hello_server(Http1ConnectionParams::default());
    let mut stream = connect(server.addr);
    for _ in 0..2 {
        send(
            &mut stream,
            "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        );
        let response = read_response(&mut stream, false).unwrap();
        assert_eq!(response.code, 200);
        assert_eq!(response.header("Connection"), Some("Keep-Alive"));
        assert_eq!(response.body, HELLO.as_bytes());
    }
}

#[test]
fn no_keep_alive_closes_after_every_response() {
    let server = hello_server(Http1ConnectionParams {
        no_keep_alive: true,
        ..Http1ConnectionParams::default()
    });
    let mut stream = connect(server.addr);
    send(&mut stream, get("/"));
    let mut reader = Reader::new(&mut stream);
    let response = reader.read_response(false).unwrap();
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(reader.closed_within(SOON));
}

#[test]
fn max_requests_closes_after_the_last_allowed_response() {
    let server = hello_server(Http1ConnectionParams {
        max_requests: 3,
        ..Http1ConnectionParams::default()
    });
    let mut stream = connect(server.addr);
    for i in 1..=3 {
        send(&mut stream, get(&format!("/{i}")));
        let response = read_response(&mut stream, false).unwrap();
        assert_eq!(response.code, 200);
        if i < 3 {
            assert!(!response.has("Connection"), "{}", response.text());
        } else {
            assert_eq!(response.header("Connection"), Some("close"));
        }
    }
    assert!(closed_within(&mut stream, SOON));
}

// ----- bodiless responses (41–43) -------------------------------------------------

/// A server whose `/stream` answers in pieces with no `Content-Length`,
/// `/204` and `/304` try to send a body anyway, and anything else is hello.
fn framing_app() -> HttpServer {
    HttpServer::from_fn(|request, connection| match request.path() {
        "/stream" => {
            let connection = connection.clone();
            let _ = connection.write_headers(&status(200), &HttpHeaders::new());
            let _ = connection.write("abc");
            IoLoop::current().call_later(Duration::from_millis(30), move || {
                let _ = connection.write("defg");
                let _ = connection.write(Vec::new());
                let _ = connection.finish();
            });
        }
        "/204" | "/304" => {
            let code = if request.path() == "/204" { 204 } else { 304 };
            let mut headers = HttpHeaders::new();
            headers.insert("ETag", "\"v1\"");
            let _ = connection.write_headers(&status(code), &headers);
            let _ = connection.write("a body that must not be sent");
            let _ = connection.finish();
        }
        _ => respond(connection, &request, 200, HELLO.as_bytes().to_vec()),
    })
}

#[test]
fn head_has_the_get_headers_and_no_body_and_repeats_on_keep_alive() {
    let server = spawn_server(framing_app);
    let mut stream = connect(server.addr);
    send(&mut stream, get("/"));
    let get_response = read_response(&mut stream, false).unwrap();
    // HEAD to a sized and to a streamed answer, twice each, then a GET: any
    // stray body byte would be read as the start of the next response.
    let head = |path: &str| format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    send(
        &mut stream,
        format!(
            "{}{}{}{}{}",
            head("/"),
            head("/"),
            head("/stream"),
            head("/stream"),
            get("/")
        ),
    );
    let mut reader = Reader::new(&mut stream);
    for _ in 0..2 {
        let response = reader.read_response(true).unwrap();
        assert_eq!(response.code, 200);
        let without_method = |r: &support::Response| -> Vec<(String, String)> {
            r.headers
                .iter()
                .filter(|(name, _)| name != "X-Method" && name != "Date")
                .cloned()
                .collect()
        };
        assert_eq!(without_method(&response), without_method(&get_response));
        assert_eq!(response.header("Content-Length"), Some("12"));
        assert!(response.raw.ends_with(b"\r\n\r\n"));
    }
    for _ in 0..2 {
        let response = reader.read_response(true).unwrap();
        assert_eq!(response.code, 200);
    }
    let last = reader.read_response(false).unwrap();
    assert_eq!(
        (last.code, last.body.as_slice()),
        (200, HELLO.as_bytes()),
        "{}",
        last.text()
    );
}

#[test]
fn responses_204_and_304_carry_no_body_and_no_framing_headers() {
    let server = spawn_server(framing_app);
    let mut stream = connect(server.addr);
    send(
        &mut stream,
        format!("{}{}{}", get("/204"), get("/304"), get("/")),
    );
    let mut reader = Reader::new(&mut stream);
    for code in [204, 304] {
        let response = reader.read_response(false).unwrap();
        assert_eq!(response.code, code);
        assert!(!response.has("Transfer-Encoding"), "{}", response.text());
        assert!(!response.has("Content-Length"), "{}", response.text());
        assert_eq!(response.header("ETag"), Some("\"v1\""));
    }
    let next = reader.read_response(false).unwrap();
    assert_eq!(
        (next.code, next.body.as_slice()),
        (200, HELLO.as_bytes()),
        "{}",
        next.text()
    );
}

// ----- response framing (44, 47) --------------------------------------------------

#[test]
fn streamed_response_is_chunked_on_http11() {
    let server = spawn_server(framing_app);
    let mut stream = connect(server.addr);
    send(&mut stream, get("/stream"));
    let mut reader = Reader::new(&mut stream);
    let response = reader.read_response(false).unwrap();
    assert_eq!(response.header("Transfer-Encoding"), Some("chunked"));
    assert!(!response.has("Content-Length"));
    assert!(
        response
            .raw
            .ends_with(b"\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"),
        "{}",
        response.text()
    );
    assert_eq!(response.body, b"abcdefg");
    // The connection is still usable.
    drop(reader);
    send(&mut stream, get("/"));
    assert_eq!(read_response(&mut stream, false).unwrap().code, 200);
}

#[test]
fn streamed_response_is_close_delimited_on_http10() {
    let server = spawn_server(framing_app);
    let mut stream = connect(server.addr);
    send(
        &mut stream,
        "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    let reply = read_to_close(&mut stream);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(!text.contains("Transfer-Encoding"), "{text}");
    assert!(!text.contains("Content-Length"), "{text}");
    assert!(!text.contains("Keep-Alive"), "{text}");
    assert!(text.ends_with("\r\n\r\nabcdefg"), "{text}");
}

#[test]
fn wrong_content_length_aborts_the_connection_and_others_are_served() {
    let results: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = results.clone();
    let server = spawn_server(move || {
        HttpServer::from_fn(move |request, connection| {
            let mut headers = HttpHeaders::new();
            let outcome = match request.path() {
                "/short" => {
                    headers.insert("Content-Length", "10");
                    let _ = connection.write_headers(&status(200), &headers);
                    let _ = connection.write("12345");
                    connection.finish().err()
                }
                "/long" => {
                    headers.insert("Content-Length", "5");
                    let _ = connection.write_headers(&status(200), &headers);
                    connection.write("1234567890").err()
                }
                _ => {
                    respond(connection, &request, 200, HELLO.as_bytes().to_vec());
                    return;
                }
            };
            let outcome = match outcome {
                Some(HttpOutputError::Framing(_)) => "aborted".to_string(),
                other => format!("{other:?}"),
            };
            seen.lock()
                .unwrap()
                .push(format!("{} {outcome}", request.path()));
        })
    });
    for path in ["/short", "/long"] {
        let mut stream = connect(server.addr);
        send(&mut stream, get(path));
        let (reply, closed) = read_until_close_or_quiet(&mut stream, support::TEST_TIMEOUT);
        assert!(closed, "{path}: the connection was not aborted");
        let text = String::from_utf8_lossy(&reply);
        // Whatever arrived, it is never a whole, well-framed response.
        assert!(
            !text.ends_with("1234567890") && !text.ends_with("\r\n\r\n12345"),
            "{path}: {text:?}"
        );
        assert_serves(server.addr);
    }
    assert_eq!(
        *results.lock().unwrap(),
        ["/short aborted", "/long aborted"]
    );
}

// ----- request bodies (27, 35, 11, 13, 14) ----------------------------------------

/// What a [`Recorder`] saw, across all its requests.
type Events = Arc<Mutex<Vec<String>>>;

/// A connection delegate whose messages record every call and answer with
/// the body echoed (or hello) and `X-Pieces` listing the piece sizes.
struct Recorder {
    /// Shared with the test.
    events: Events,
}

impl HttpServerConnectionDelegate for Recorder {
    fn start_request(&self, connection: &Http1Connection) -> Box<dyn HttpMessageDelegate> {
        Box::new(RecordingMessage {
            events: self.events.clone(),
            connection: connection.clone(),
            pieces: Vec::new(),
            body: Vec::new(),
        })
    }

    fn on_close(&self, _connection: &Http1Connection) {
        self.events.lock().unwrap().push("connection closed".into());
    }
}

/// One request seen by a [`Recorder`].
struct RecordingMessage {
    /// Shared with the test.
    events: Events,
    /// Where to answer.
    connection: Http1Connection,
    /// Sizes of the pieces of body.
    pieces: Vec<usize>,
    /// The body so far.
    body: Vec<u8>,
}

impl HttpMessageDelegate for RecordingMessage {
    fn headers_received(&mut self, start_line: StartLine, _headers: HttpHeaders) -> Flow {
        if let StartLine::Request(line) = start_line {
            self.events
                .lock()
                .unwrap()
                .push(format!("headers {}", line.target));
        }
        None
    }

    fn data_received(&mut self, chunk: Vec<u8>) -> Flow {
        self.events
            .lock()
            .unwrap()
            .push(format!("data {}", chunk.len()));
        self.pieces.push(chunk.len());
        self.body.extend_from_slice(&chunk);
        None
    }

    fn finish(&mut self) {
        self.events.lock().unwrap().push("finish".into());
        let body = if self.body.is_empty() {
            HELLO.as_bytes().to_vec()
        } else {
            std::mem::take(&mut self.body)
        };
        let pieces: Vec<String> = self.pieces.iter().map(usize::to_string).collect();
        let mut headers = HttpHeaders::new();
        headers.insert("Content-Length", body.len().to_string());
        headers.insert("X-Pieces", pieces.join(","));
        if self
            .connection
            .write_headers(&status(200), &headers)
            .is_ok()
        {
            let _ = self.connection.write(body);
            let _ = self.connection.finish();
        }
    }

    fn on_connection_close(&mut self) {
        self.events
            .lock()
            .unwrap()
            .push("on_connection_close".into());
    }
}

/// A server with a [`Recorder`] and `params`; the events it records.
fn recorder_server(params: Http1ConnectionParams) -> (support::TestServer, Events) {
    let events: Events = Arc::default();
    let recorded = events.clone();
    let server =
        spawn_server(move || HttpServer::new(Recorder { events: recorded }).with_params(params));
    (server, events)
}

#[test]
fn body_is_delivered_in_chunk_size_pieces() {
    let (server, _) = recorder_server(Http1ConnectionParams {
        chunk_size: 16,
        ..Http1ConnectionParams::default()
    });
    let body = "x".repeat(50);
    let mut stream = connect(server.addr);
    send(
        &mut stream,
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{body}"),
    );
    let response = read_response(&mut stream, false).unwrap();
    assert_eq!(response.header("X-Pieces"), Some("16,16,16,2"));
    assert_eq!(response.body, body.as_bytes());
}

#[test]
fn chunked_body_with_extensions_and_trailers_is_decoded() {
    let (server, events) = recorder_server(Http1ConnectionParams::default());
    let mut stream = connect(server.addr);
    send(
        &mut stream,
        "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         4;name=value\r\nWiki\r\n\
         6;quoted=\"a;b\"\r\npedia \r\n\
         E\r\nin \r\n\r\nchunks.\r\n\
         0;last\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n",
    );
    let response = read_response(&mut stream, false).unwrap();
    assert_eq!(response.code, 200);
    assert_eq!(response.body, b"Wikipedia in \r\n\r\nchunks.");
    // The trailers were consumed: the next request on the socket is clean.
    send(&mut stream, get("/after"));
    let next = read_response(&mut stream, false).unwrap();
    assert_eq!((next.code, next.body.as_slice()), (200, HELLO.as_bytes()));
    let events = events.lock().unwrap();
    assert_eq!(events.iter().filter(|e| *e == "finish").count(), 2);
}

#[test]
fn expect_100_continue_gets_an_interim_response_before_the_body_is_sent() {
    let server = hello_server(Http1ConnectionParams::default());
    let mut stream = connect(server.addr);
    send(
        &mut stream,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    // The body is not sent until the interim answer arrives.
    stream.set_read_timeout(Some(SOON)).unwrap();
    let mut reader = Reader::new(&mut stream);
    let interim = reader.read_response(false).unwrap();
    assert_eq!(interim.raw, b"HTTP/1.1 100 (Continue)\r\n\r\n");
    drop(reader);
    send(&mut stream, "hello");
    let response = read_response(&mut stream, false).unwrap();
    assert_eq!(
        (response.code, response.body.as_slice()),
        (200, &b"hello"[..])
    );
}

// ----- timeouts (36, 37) -----------------------------------------------------------

#[test]
fn slowloris_is_closed_at_the_header_timeout_while_others_are_served() {
    let server = hello_server(Http1ConnectionParams {
        header_timeout: Duration::from_millis(300),
        ..Http1ConnectionParams::default()
    });
    let addr = server.addr;
    let trickling = Arc::new(AtomicBool::new(false));
    let started = trickling.clone();
    let slowloris = thread::spawn(move || {
        // A head that never ends, one byte every 100 ms, for up to `SOON`.
        let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .chain(std::iter::repeat(&b'a'));
        let mut stream = connect(addr);
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let since = Instant::now();
        for &byte in head {
            if since.elapsed() > SOON {
                break;
            }
            if stream.write_all(&[byte]).is_err() {
                return (since.elapsed(), Vec::new());
            }
            started.store(true, Ordering::SeqCst);
            // The read doubles as the pause between bytes.
            let mut buf = [0u8; 256];
            match std::io::Read::read(&mut stream, &mut buf) {
                Ok(n) if n > 0 => return (since.elapsed(), buf[..n].to_vec()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                _ => return (since.elapsed(), Vec::new()),
            }
        }
        panic!("the slow client was never closed");
    });
    block_until("the slow client to start", || {
        trickling.load(Ordering::SeqCst)
    });
    // Meanwhile, a normal client is served.
    assert_serves(addr);
    let (lasted, reply) = slowloris.join().expect("the slow client failed");
    assert!(
        reply.is_empty(),
        "the timeout sent {:?}",
        String::from_utf8_lossy(&reply)
    );
    // Closed by the deadline, not by anything earlier.
    assert!(
        lasted >= Duration::from_millis(250),
        "closed after {lasted:?}"
    );
    assert_serves(addr);
}

#[test]
fn idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = hello_server(Http1ConnectionParams {
        idle_connection_timeout: Duration::from_millis(300),
        ..Http1ConnectionParams::default()
    });
    let mut stream = connect(server.addr);
    send(&mut stream, get("/"));
    assert_eq!(read_response(&mut stream, false).unwrap().code, 200);
    let since = Instant::now();
    assert!(closed_within(&mut stream, SOON));
    assert!(since.elapsed() >= Duration::from_millis(250));
}

#[test]
fn the_idle_timeout_counts_from_the_last_response_not_the_first() {
    // The idle timer is kept across requests and pushed back lazily: a
    // connection busy for longer than the timeout in all, but never idle
    // for as long, stays open; then a real idle spell closes it on time.
    let server = hello_server(Http1ConnectionParams {
        idle_connection_timeout: Duration::from_millis(800),
        ..Http1ConnectionParams::default()
    });
    let mut stream = connect(server.addr);
    for _ in 0..8 {
        send(&mut stream, get("/"));
        assert_eq!(read_response(&mut stream, false).unwrap().code, 200);
        std::thread::sleep(Duration::from_millis(150));
    }
    send(&mut stream, get("/"));
    assert_eq!(read_response(&mut stream, false).unwrap().code, 200);
    let since = Instant::now();
    assert!(closed_within(&mut stream, SOON));
    assert!(since.elapsed() >= Duration::from_millis(700));
}

#[test]
fn stalled_body_is_closed_at_the_body_timeout_with_no_response() {
    let (server, events) = recorder_server(Http1ConnectionParams {
        body_timeout: Duration::from_millis(300),
        ..Http1ConnectionParams::default()
    });
    let mut stream = connect(server.addr);
    send(
        &mut stream,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
    );
    assert!(closed_within(&mut stream, SOON));
    block_until("the connection to be closed", || {
        events
            .lock()
            .unwrap()
            .contains(&"connection closed".to_string())
    });
    assert_eq!(
        *events.lock().unwrap(),
        [
            "headers /",
            "data 10",
            "on_connection_close",
            "connection closed"
        ]
    );
}

#[test]
fn body_timeout_is_inactivity_not_a_total() {
    // Twenty pieces 25 ms apart take longer than the timeout in all, but
    // never pause anywhere near it.
    let server = hello_server(Http1ConnectionParams {
        body_timeout: Duration::from_millis(400),
        ..Http1ConnectionParams::default()
    });
    let mut stream = connect(server.addr);
    send(
        &mut stream,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n",
    );
    for _ in 0..20 {
        thread::sleep(Duration::from_millis(25));
        send(&mut stream, "ab");
    }
    let response = read_response(&mut stream, false).unwrap();
    assert_eq!(response.code, 200);
    assert_eq!(response.body, "ab".repeat(20).as_bytes());
}

// ----- disconnects (38) --------------------------------------------------------------

#[test]
fn client_gone_mid_body_calls_on_connection_close_once_and_never_finish() {
    let (server, events) = recorder_server(Http1ConnectionParams::default());
    let mut stream = connect(server.addr);
    send(
        &mut stream,
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
    );
    block_until("the first piece to arrive", || {
        events.lock().unwrap().contains(&"data 10".to_string())
    });
    drop(stream);
    block_until("the connection to be closed", || {
        events
            .lock()
            .unwrap()
            .contains(&"connection closed".to_string())
    });
    // Give a second call, if there were one, time to happen.
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        *events.lock().unwrap(),
        [
            "headers /upload",
            "data 10",
            "on_connection_close",
            "connection closed"
        ]
    );
    assert_serves(server.addr);
}

#[test]
fn writing_after_the_client_closed_returns_closed_and_nothing_panics() {
    let client_gone = Arc::new(AtomicBool::new(false));
    let outcome: Arc<Mutex<Option<String>>> = Arc::default();
    let (gone, result) = (client_gone.clone(), outcome.clone());
    let server = spawn_server(move || {
        HttpServer::from_fn(move |request, connection| {
            if request.path() != "/hold" {
                respond(connection, &request, 200, HELLO.as_bytes().to_vec());
                return;
            }
            let (gone, result, connection) = (gone.clone(), result.clone(), connection.clone());
            spawn(async move {
                wait_until(|| gone.load(Ordering::SeqCst)).await;
                // The peer is gone; the stream learns it from a failed write.
                let mut answer = connection
                    .write_headers(&status(200), &HttpHeaders::new())
                    .err();
                for _ in 0..1000 {
                    if answer.is_some() {
                        break;
                    }
                    sleep(Duration::from_millis(5)).await;
                    answer = connection.write(vec![b'x'; 1024]).err();
                }
                *result.lock().unwrap() = Some(match answer {
                    Some(HttpOutputError::Closed(_)) => "closed".into(),
                    other => format!("{other:?}"),
                });
            });
        })
    });
    let stream = connect(server.addr);
    (&stream).write_all(get("/hold").as_bytes()).unwrap();
    thread::sleep(Duration::from_millis(50));
    stream.shutdown(Shutdown::Both).unwrap();
    drop(stream);
    client_gone.store(true, Ordering::SeqCst);
    block_until("the handler to give up", || {
        outcome.lock().unwrap().is_some()
    });
    assert_eq!(outcome.lock().unwrap().as_deref(), Some("closed"));
    assert_serves(server.addr);
}

// ----- graceful shutdown ---------------------------------------------------------------

#[test]
fn stop_then_close_all_connections_drains_the_response_in_flight() {
    let io_loop = IoLoop::new();
    run_on(&io_loop, async {
        let arrived = Rc::new(std::cell::Cell::new(false));
        let seen = arrived.clone();
        let server = HttpServer::from_fn(move |request, connection| {
            if request.path() == "/slow" {
                seen.set(true);
                let connection = connection.clone();
                spawn(async move {
                    sleep(Duration::from_millis(300)).await;
                    respond(&connection, &request, 200, b"slow but whole".to_vec());
                });
            } else {
                respond(connection, &request, 200, HELLO.as_bytes().to_vec());
            }
        });
        let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];

        // An idle keep-alive client, and one whose response is slow.
        let idle_served = Arc::new(AtomicBool::new(false));
        let served = idle_served.clone();
        let idle = thread::spawn(move || {
            let mut stream = connect(addr);
            send(&mut stream, get("/"));
            assert_eq!(read_response(&mut stream, false).unwrap().code, 200);
            served.store(true, Ordering::SeqCst);
            read_to_close(&mut stream)
        });
        let slow = thread::spawn(move || {
            let mut stream = connect(addr);
            send(&mut stream, get("/slow"));
            let response = read_response(&mut stream, false).unwrap();
            (response, read_to_close(&mut stream))
        });
        wait_until(|| arrived.get() && idle_served.load(Ordering::SeqCst)).await;
        assert_eq!(server.connection_count(), 2);

        server.stop();
        server.close_all_connections().await;
        assert_eq!(server.connection_count(), 0);

        let (response, after) = join(slow).await;
        assert_eq!(response.code, 200);
        assert_eq!(response.body, b"slow but whole");
        // Regression: the last response of a draining connection says it is
        // the last.
        assert_eq!(response.header("Connection"), Some("close"));
        assert!(after.is_empty());
        assert!(join(idle).await.is_empty());
        // No longer listening.
        assert!(TcpStream::connect(addr).is_err());
    });
}

// ----- backpressure ---------------------------------------------------------------

#[test]
fn a_client_that_never_reads_cannot_grow_the_servers_output_queue() {
    // Each answer is 256 KiB; the client pipelines 200 requests (50 MiB of
    // answers) and reads nothing. The server must stop reading requests once
    // its queue is past the high-water mark, so the queue stays bounded.
    const ANSWER: usize = 256 * 1024;
    let peak = Arc::new(Mutex::new(0usize));
    let seen = peak.clone();
    let server = spawn_server(move || {
        HttpServer::from_fn(move |request, connection| {
            let queued = connection.stream().write_buffer_size();
            let mut peak = seen.lock().unwrap();
            *peak = (*peak).max(queued);
            drop(peak);
            respond(connection, &request, 200, vec![b'x'; ANSWER]);
        })
    });
    let mut stream = connect(server.addr);
    let requests: String = (0..200).map(|i| get(&format!("/{i}"))).collect();
    // Send from a thread: the server stops reading, so the send may block.
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let _ = writer.write_all(requests.as_bytes());
    });
    thread::sleep(Duration::from_millis(500));
    let peak_while_stalled = *peak.lock().unwrap();
    assert!(
        peak_while_stalled <= whirl_httpserver::WRITE_HIGH_WATER + 2 * ANSWER,
        "output queue grew to {peak_while_stalled} bytes"
    );
    // Now read everything: all 200 answers arrive.
    let mut reader = Reader::new(&mut stream);
    for _ in 0..200 {
        let response = reader.read_response(false).expect("an answer");
        assert_eq!(response.body.len(), ANSWER);
    }
    let _ = sender.join();
}

#[test]
fn a_reason_phrase_with_a_line_break_cannot_inject_headers() {
    let server = spawn_server(|| {
        HttpServer::from_fn(|_request, connection| {
            let status = whirl_httpserver::ResponseStartLine {
                version: whirl_httpserver::Version::Http11,
                code: 200,
                reason: "OK\r\nX-Evil: 1".to_string(),
            };
            let mut headers = HttpHeaders::new();
            headers.insert("Content-Length", "0");
            if connection.write_headers(&status, &headers).is_ok() {
                let _ = connection.finish();
            }
        })
    });
    let mut stream = connect(server.addr);
    send(&mut stream, get("/"));
    let response = read_response(&mut stream, false).unwrap();
    assert_eq!(response.code, 200);
    assert!(!response.has("X-Evil"), "{}", response.text());
    assert!(
        response.text().starts_with("HTTP/1.1 200 Unknown\r\n"),
        "{}",
        response.text()
    );
}

#[test]
fn closed_resolves_when_the_client_leaves_and_at_once_after() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = spawn_server(move || {
        HttpServer::from_fn(move |request, connection| {
            let (log, watched) = (log.clone(), connection.clone());
            // The watch starts while the connection is open: its event is
            // made by this wait and set by the close.
            spawn(async move {
                watched.closed().await;
                log.lock().unwrap().push("closed");
                watched.closed().await; // already closed: at once
                log.lock().unwrap().push("closed again");
            });
            support::respond(connection, &request, 200, HELLO.as_bytes().to_vec());
        })
    });
    let mut stream = connect(server.addr);
    send(&mut stream, get("/watch"));
    assert_eq!(read_response(&mut stream, false).unwrap().code, 200);
    assert!(seen.lock().unwrap().is_empty(), "still open");
    drop(stream);
    block_until("the close to be seen", || seen.lock().unwrap().len() == 2);
    assert_eq!(*seen.lock().unwrap(), ["closed", "closed again"]);
}

// ----- respond: a whole response in one call ------------------------------------

/// A server answering with `Http1Connection::respond`: `/close` asks to
/// close, `/empty` is a 204, `/bad` and `/framed` give headers `respond`
/// refuses (then answer 500 through `write_headers`, saying which error),
/// `/twice` responds twice (the second must be refused); anything else is
/// `Hello, World!` as text.
fn respond_server() -> support::TestServer {
    spawn_server(|| {
        HttpServer::from_fn(|request, connection| {
            // Under `/with`, the same answers through `respond_with` (the
            // headers in an `HttpHeaders`).
            let (path, with) = match request.path().strip_prefix("/with") {
                Some(rest) => (rest.to_string(), true),
                None => (request.path().to_string(), false),
            };
            let respond = |start: &whirl_httpserver::ResponseStartLine,
                           pairs: &[(&str, &str)],
                           body: &'static str| {
                if with {
                    let mut headers = HttpHeaders::new();
                    for (name, value) in pairs {
                        headers.add(*name, *value);
                    }
                    connection.respond_with(start, &headers, body)
                } else {
                    connection.respond(start, pairs, body)
                }
            };
            let ok = whirl_httpserver::ResponseStartLine::new(200);
            if let Some(size) = path.strip_prefix("/sized/") {
                // An owned body of that many bytes (0, 1, 2… 250, 0, 1…).
                let body: Vec<u8> = (0..size.parse().unwrap())
                    .map(|i: usize| (i % 251) as u8)
                    .collect();
                let answer = if with {
                    connection.respond_with(&ok, &HttpHeaders::new(), body)
                } else {
                    connection.respond(&ok, &[], body)
                };
                answer.unwrap();
                return;
            }
            let answer = match path.as_str() {
                "/close" => respond(&ok, &[("Connection", "close")], "bye"),
                "/empty" => {
                    let no_content = whirl_httpserver::ResponseStartLine::new(204);
                    respond(&no_content, &[], "ignored")
                }
                "/bad" => connection.respond(&ok, &[("X-A", "a\r\nX-Injected: 1")], "x"),
                "/framed" => respond(&ok, &[("content-length", "1")], "x"),
                "/chunked" => respond(&ok, &[("Transfer-Encoding", "chunked")], "x"),
                "/twice" => {
                    let first = respond(&ok, &[("Content-Type", "text/plain")], "one");
                    let second = respond(&ok, &[], "two");
                    assert!(matches!(
                        second,
                        Err(HttpOutputError::HeadersAlreadyWritten)
                    ));
                    first
                }
                _ => respond(&ok, &[("Content-Type", "text/plain")], "Hello, World!"),
            };
            if let Err(e) = answer {
                let error = format!("{e:?}");
                let mut headers = HttpHeaders::new();
                headers.add("Content-Length", error.len().to_string());
                let status = whirl_httpserver::ResponseStartLine::new(500);
                connection.write_headers(&status, &headers).unwrap();
                connection.write(error.into_bytes()).unwrap();
                connection.finish().unwrap();
            }
        })
    })
}

#[test]
fn respond_sends_head_length_and_body_and_keeps_the_connection() {
    respond_sends_head_length_and_body_and_keeps_the_connection_under("");
}

#[test]
fn respond_with_headers_sends_head_length_and_body_and_keeps_the_connection() {
    respond_sends_head_length_and_body_and_keeps_the_connection_under("/with");
}

/// The checks of `respond_sends_head_length_and_body_and_keeps_the_connection`,
/// for the paths under `prefix`.
fn respond_sends_head_length_and_body_and_keeps_the_connection_under(prefix: &str) {
    let server = respond_server();
    let mut stream = connect(server.addr);
    let get = |path: &str| get(&format!("{prefix}{path}"));
    // Two requests in one write: both answered, in order, on one socket.
    send(&mut stream, format!("{}{}", get("/a"), get("/twice")));
    let mut reader = Reader::new(&mut stream);
    let first = reader.read_response(false).unwrap();
    assert_eq!(first.code, 200, "{}", first.text());
    assert_eq!(first.header("Content-Type"), Some("text/plain"));
    assert_eq!(first.header("Content-Length"), Some("13"));
    assert!(
        first.has("Date") && !first.has("Connection"),
        "{}",
        first.text()
    );
    assert_eq!(first.body, b"Hello, World!");
    let second = reader.read_response(false).unwrap();
    assert_eq!((second.code, second.body.as_slice()), (200, &b"one"[..]));
    drop(reader);
    // HEAD: the length of the body a GET would get, and no body.
    send(
        &mut stream,
        format!("HEAD {prefix}/a HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    let head = read_response(&mut stream, true).unwrap();
    assert_eq!(head.header("Content-Length"), Some("13"), "{}", head.text());
    assert!(head.body.is_empty());
    // 204: neither length nor body.
    send(&mut stream, get("/empty"));
    let empty = read_response(&mut stream, false).unwrap();
    assert_eq!(empty.code, 204);
    assert!(
        !empty.has("Content-Length") && empty.body.is_empty(),
        "{}",
        empty.text()
    );
    // The connection is still good.
    send(&mut stream, get("/again"));
    assert_eq!(
        read_response(&mut stream, false).unwrap().body,
        b"Hello, World!"
    );
}

/// Bodies around the size `respond` copies into the head's buffer, and far
/// past it, pipelined in one write: each arrives whole, in order, with its
/// length.
#[test]
fn respond_sends_small_and_large_bodies_whole_and_in_order() {
    let server = respond_server();
    for prefix in ["", "/with"] {
        let mut stream = connect(server.addr);
        let sizes = [0usize, 1, 1023, 1024, 1025, 4096, 100_000, 13];
        let requests: String = sizes
            .iter()
            .map(|n| get(&format!("{prefix}/sized/{n}")))
            .collect();
        send(&mut stream, requests);
        let mut reader = Reader::new(&mut stream);
        for n in sizes {
            let response = reader.read_response(false).unwrap();
            assert_eq!(response.code, 200, "{prefix} {n}");
            assert_eq!(
                response.header("Content-Length"),
                Some(n.to_string().as_str())
            );
            let expected: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            assert!(response.body == expected, "{prefix} {n}: the body differs");
        }
    }
}

#[test]
fn respond_refuses_injected_or_framing_headers_and_sends_nothing() {
    let server = respond_server();
    let mut stream = connect(server.addr);
    for (path, error) in [
        ("/bad", "InvalidHeader(InvalidValue)"),
        ("/framed", "FramedByConnection"),
        ("/chunked", "FramedByConnection"),
        ("/with/framed", "FramedByConnection"),
        ("/with/chunked", "FramedByConnection"),
    ] {
        send(&mut stream, get(path));
        let response = read_response(&mut stream, false).unwrap();
        assert_eq!(response.code, 500, "{path}: {}", response.text());
        assert_eq!(response.body, error.as_bytes(), "{path}");
        assert!(!response.has("X-Injected"), "{}", response.text());
    }
}

#[test]
fn respond_with_connection_close_closes_after_the_response() {
    let server = respond_server();
    // `respond_with` closes the same way.
    let mut stream = connect(server.addr);
    send(&mut stream, get("/with/close"));
    let response = read_response(&mut stream, false).unwrap();
    assert_eq!(response.body, b"bye");
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(closed_within(&mut stream, SOON));
    let mut stream = connect(server.addr);
    send(&mut stream, get("/close"));
    let response = read_response(&mut stream, false).unwrap();
    assert_eq!(response.body, b"bye");
    let connection: Vec<_> = response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Connection"))
        .collect();
    assert_eq!(
        connection.len(),
        1,
        "one Connection line: {}",
        response.text()
    );
    assert!(closed_within(&mut stream, SOON));
    // HTTP/1.0 with keep-alive asked: kept, and said so.
    let mut stream = connect(server.addr);
    send(
        &mut stream,
        "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    let response = read_response(&mut stream, false).unwrap();
    assert_eq!(
        response.header("Connection"),
        Some("Keep-Alive"),
        "{}",
        response.text()
    );
    assert_eq!(response.body, b"Hello, World!");
}

// ----- the request's start time ----------------------------------------------

/// A closure server's request starts when its connection parsed the head:
/// the same instant `request_start_time` reports (one clock read), before
/// the handler runs, and anew for each request on a kept-alive connection.
#[test]
fn responses_finished_counts_each_response_as_it_finishes() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = spawn_server(move || {
        let record = record.clone();
        HttpServer::from_fn(move |request, connection| {
            let before = connection.responses_finished();
            let ok = whirl_httpserver::ResponseStartLine::new(200);
            if request.path() == "/streamed" {
                // write_headers + write + finish: counted at finish only.
                let mut headers = HttpHeaders::new();
                headers.add("Content-Length", "2");
                connection.write_headers(&ok, &headers).unwrap();
                connection.write("ok").unwrap();
                let written = connection.responses_finished();
                connection.finish().unwrap();
                record.lock().unwrap().push((before, written));
            } else {
                let _ = connection.respond(&ok, &[], "ok");
            }
            record
                .lock()
                .unwrap()
                .push((before, connection.responses_finished()));
        })
    });
    let mut stream = connect(server.addr);
    for path in ["/", "/streamed", "/"] {
        send(&mut stream, get(path));
        assert_eq!(read_response(&mut stream, false).unwrap().code, 200);
    }
    let seen = seen.lock().unwrap();
    assert_eq!(*seen, [(0, 1), (1, 1), (1, 2), (2, 3)]);
}

#[test]
fn a_request_starts_when_its_connection_picked_up_the_head() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = spawn_server(move || {
        let record = record.clone();
        HttpServer::from_fn(move |request, connection| {
            let handled = Instant::now();
            record.lock().unwrap().push((
                request.start_time,
                connection.request_start_time(),
                handled,
            ));
            let ok = whirl_httpserver::ResponseStartLine::new(200);
            let _ = connection.respond(&ok, &[], "ok");
        })
    });
    let mut stream = connect(server.addr);
    for _ in 0..2 {
        send(&mut stream, get("/"));
        assert_eq!(read_response(&mut stream, false).unwrap().code, 200);
        thread::sleep(Duration::from_millis(5));
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for (start, connection_start, handled) in seen.iter() {
        assert_eq!(start, connection_start);
        assert!(start <= handled);
    }
    assert!(
        seen[1].0 >= seen[0].2 + Duration::from_millis(5),
        "the second request kept the first one's start"
    );
}
