//! Behaviour of the client role, [`Http1ClientConnection`], over loopback:
//! against a raw-socket server scripted byte by byte in a thread (response
//! framing, 1xx, malformed and truncated responses, limits, keep-alive,
//! request framing and injection), and against whirl's own `HttpServer`
//! (three requests on one kept-alive connection).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use support::{join, run_on, TEST_TIMEOUT};
use whirl_httpserver::{
    BodyError, Flow, FramingError, Http1ClientConnection, Http1ClientParams,
    HttpClientConnectionError, HttpHeaders, HttpMessageDelegate, HttpOutputError, HttpServer,
    RequestStartLine, ResponseOutcome, ResponseStartLine, StartLine, Version,
};
use whirl_ioloop::{with_timeout, IoLoop};
use whirl_iostream::IoStream;

// ----- the scripted server --------------------------------------------------------

/// One accepted connection on the scripted server's side, with the bytes
/// read beyond what was taken so far.
struct Peer {
    /// The socket.
    stream: TcpStream,
    /// Bytes read and not yet taken.
    buf: Vec<u8>,
}

impl Peer {
    /// Reads more bytes; false at EOF (or a reset).
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return false,
                Err(e) => panic!("the peer could not read: {e}"),
            }
        }
    }

    /// Takes everything up to and including `delimiter`.
    fn read_until(&mut self, delimiter: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = self
                .buf
                .windows(delimiter.len())
                .position(|w| w == delimiter)
            {
                return self.buf.drain(..at + delimiter.len()).collect();
            }
            assert!(
                self.fill(),
                "EOF before {:?}; got {:?}",
                String::from_utf8_lossy(delimiter),
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Takes one request head, as text.
    fn read_head(&mut self) -> String {
        String::from_utf8(self.read_until(b"\r\n\r\n")).expect("an ASCII head")
    }

    /// Takes exactly `n` bytes.
    fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill(), "EOF before {n} bytes");
        }
        self.buf.drain(..n).collect()
    }

    /// Takes everything until the client closes.
    fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.buf)
    }

    /// Sends `bytes`.
    fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream
            .write_all(bytes.as_ref())
            .expect("the peer could not write");
    }
}

/// Starts a server on 127.0.0.1 that accepts one connection and runs
/// `script` on it, in a thread; returns its address and the thread.
fn serve_one<T, F>(script: F) -> (SocketAddr, thread::JoinHandle<T>)
where
    T: Send + 'static,
    F: FnOnce(Peer) -> T + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TEST_TIMEOUT)).unwrap();
        script(Peer {
            stream,
            buf: Vec::new(),
        })
    });
    (addr, handle)
}

// ----- the client's side ----------------------------------------------------------

/// Runs `future` on a fresh loop.
fn run<F: std::future::Future>(future: F) -> F::Output {
    run_on(&IoLoop::new(), future)
}

/// A client connection to `addr`.
async fn connect(addr: SocketAddr, params: Http1ClientParams) -> Http1ClientConnection {
    let stream = IoStream::connect(addr).await.expect("connect");
    Http1ClientConnection::new(stream, params)
}

/// A request line.
fn line(method: &str, target: &str) -> RequestStartLine {
    RequestStartLine {
        method: method.into(),
        target: target.into(),
        version: Version::Http11,
    }
}

/// `Host: x` and the given extra fields.
fn headers(extra: &[(&str, &str)]) -> HttpHeaders {
    let mut h = HttpHeaders::new();
    h.add("Host", "x");
    for (name, value) in extra {
        h.add(*name, *value);
    }
    h
}

/// What a [`Recorder`] saw.
#[derive(Debug, Default)]
struct Recorded {
    /// Each head's status and headers, in order.
    heads: Vec<(u16, HttpHeaders)>,
    /// The body, joined.
    body: Vec<u8>,
    /// The size of each `data_received` piece.
    pieces: Vec<usize>,
    /// `finish` calls.
    finished: usize,
    /// `on_connection_close` calls.
    closed: usize,
}

/// A message delegate that records everything; on a `100` it writes
/// `continue_body` and finishes the request (held back for
/// `Expect: 100-continue`), delaying the next head until that is written.
#[derive(Default)]
struct Recorder {
    /// What arrived.
    seen: Recorded,
    /// The connection and body to send on `100 Continue`.
    continue_body: Option<(Http1ClientConnection, Vec<u8>)>,
}

impl HttpMessageDelegate for Recorder {
    fn headers_received(&mut self, start_line: StartLine, headers: HttpHeaders) -> Flow {
        let StartLine::Response(ResponseStartLine { code, .. }) = start_line else {
            panic!("a client delegate got {start_line:?}");
        };
        self.seen.heads.push((code, headers));
        if code != 100 {
            return None;
        }
        let (connection, body) = self.continue_body.take()?;
        connection.write(body).expect("write the held-back body");
        let written = connection.finish().expect("finish the request");
        Some(Box::pin(async move {
            written.await.expect("the held-back body was sent");
        }))
    }

    fn data_received(&mut self, chunk: Vec<u8>) -> Flow {
        self.seen.pieces.push(chunk.len());
        self.seen.body.extend_from_slice(&chunk);
        None
    }

    fn finish(&mut self) {
        self.seen.finished += 1;
    }

    fn on_connection_close(&mut self) {
        self.seen.closed += 1;
    }
}

/// Sends `GET target` (no body) on `connection` and reads the response.
async fn get(
    connection: &Http1ClientConnection,
    method: &str,
    target: &str,
) -> (Result<ResponseOutcome, HttpClientConnectionError>, Recorded) {
    connection
        .write_headers(&line(method, target), &headers(&[]))
        .expect("write_headers");
    connection.finish().expect("finish");
    let mut recorder = Recorder::default();
    let outcome = connection.read_response(&mut recorder).await;
    (outcome, recorder.seen)
}

/// Asserts a response arrived whole with `code` and `body`.
fn assert_whole(seen: &Recorded, code: u16, body: &[u8]) {
    assert_eq!(
        seen.heads.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        [code]
    );
    assert_eq!(
        String::from_utf8_lossy(&seen.body),
        String::from_utf8_lossy(body)
    );
    assert_eq!((seen.finished, seen.closed), (1, 0), "{seen:?}");
}

/// Asserts a response failed: the delegate was told the connection closed
/// (once, and never finished) and the stream is closed.
fn assert_failed(connection: &Http1ClientConnection, seen: &Recorded) {
    assert_eq!((seen.finished, seen.closed), (0, 1), "{seen:?}");
    assert!(connection.stream().closed());
    assert!(!connection.is_ready());
}

// ----- response framing -----------------------------------------------------------

#[test]
fn get_with_content_length_arrives_in_chunk_size_pieces() {
    let (addr, peer) = serve_one(|mut peer| {
        let head = peer.read_head();
        peer.send("HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: 1\r\n\r\nhello world");
        head
    });
    run(async move {
        let params = Http1ClientParams {
            chunk_size: 4,
            ..Http1ClientParams::default()
        };
        let connection = connect(addr, params).await;
        let (outcome, seen) = get(&connection, "GET", "/a?b=1").await;
        assert_eq!(outcome.unwrap(), ResponseOutcome::KeepAlive);
        assert_whole(&seen, 200, b"hello world");
        assert_eq!(seen.heads[0].1.get("x-a"), Some("1"));
        assert!(
            seen.pieces.iter().all(|&n| (1..=4).contains(&n)),
            "{seen:?}"
        );
        assert!(connection.is_ready());
        assert_eq!(
            join(peer).await,
            "GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            "the request went out as one exact head"
        );
    });
}

#[test]
fn chunked_response_with_extensions_and_trailers() {
    let (addr, peer) = serve_one(|mut peer| {
        peer.read_head();
        peer.send(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
             5;name=value\r\nhello\r\n6;flag\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        );
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        let (outcome, seen) = get(&connection, "GET", "/").await;
        assert_eq!(outcome.unwrap(), ResponseOutcome::KeepAlive);
        assert_whole(&seen, 200, b"hello world");
        join(peer).await;
    });
}

#[test]
fn http10_body_reads_until_close_and_is_not_reused() {
    let (addr, peer) = serve_one(|mut peer| {
        peer.read_head();
        peer.send("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the ");
        thread::sleep(Duration::from_millis(20));
        peer.send("server closes");
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        let (outcome, seen) = get(&connection, "GET", "/").await;
        assert_eq!(outcome.unwrap(), ResponseOutcome::Closed);
        assert_whole(&seen, 200, b"until the server closes");
        assert!(connection.stream().closed() && !connection.is_ready());
        join(peer).await;
    });
}

#[test]
fn head_response_has_no_body_despite_its_content_length() {
    let (addr, peer) = serve_one(|mut peer| {
        let first = peer.read_head();
        peer.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        // Had the client waited for 100 bytes, this request would not come.
        let second = peer.read_head();
        peer.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        (first, second)
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        let (outcome, seen) = get(&connection, "HEAD", "/h").await;
        assert_eq!(outcome.unwrap(), ResponseOutcome::KeepAlive);
        assert_whole(&seen, 200, b"");
        assert_eq!(seen.heads[0].1.get("content-length"), Some("100"));
        let (outcome, seen) = get(&connection, "GET", "/g").await;
        assert_eq!(outcome.unwrap(), ResponseOutcome::KeepAlive);
        assert_whole(&seen, 200, b"ok");
        let (first, second) = join(peer).await;
        assert!(first.starts_with("HEAD /h HTTP/1.1\r\n"), "{first}");
        assert!(second.starts_with("GET /g HTTP/1.1\r\n"), "{second}");
    });
}

#[test]
fn responses_204_and_304_have_no_body() {
    let (addr, peer) = serve_one(|mut peer| {
        peer.read_head();
        peer.send("HTTP/1.1 204 No Content\r\n\r\n");
        peer.read_head();
        peer.send("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"x\"\r\n\r\n");
        peer.read_head();
        peer.send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast");
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        for (code, body) in [(204, &b""[..]), (304, b""), (200, b"last")] {
            let (outcome, seen) = get(&connection, "GET", "/").await;
            assert_eq!(outcome.unwrap(), ResponseOutcome::KeepAlive, "{code}");
            assert_whole(&seen, code, body);
        }
        join(peer).await;
    });
}

// ----- 1xx ------------------------------------------------------------------------

#[test]
fn expect_100_continue_sends_the_body_after_the_100() {
    let (addr, peer) = serve_one(|mut peer| {
        let head = peer.read_head();
        let early = peer.buf.clone();
        peer.send("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n");
        peer.send("HTTP/1.1 100 Continue\r\n\r\n");
        let body = peer.read_exact(5);
        peer.send("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
        (head, early, body)
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        let request_headers = headers(&[("Content-Length", "5"), ("Expect", "100-continue")]);
        connection
            .write_headers(&line("POST", "/upload"), &request_headers)
            .unwrap();
        let mut recorder = Recorder {
            continue_body: Some((connection.clone(), b"hello".to_vec())),
            ..Recorder::default()
        };
        let outcome = connection.read_response(&mut recorder).await.unwrap();
        assert_eq!(outcome, ResponseOutcome::KeepAlive);
        let seen = &recorder.seen;
        assert_eq!(
            seen.heads.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            [103, 100, 201]
        );
        assert_eq!(
            (seen.body.as_slice(), seen.finished, seen.closed),
            (&b"ok"[..], 1, 0)
        );
        let (head, early, body) = join(peer).await;
        assert!(head.contains("Expect: 100-continue\r\n"), "{head}");
        assert!(early.is_empty(), "the body went out before the 100");
        assert_eq!(body, b"hello");
    });
}

#[test]
fn a_final_response_without_100_leaves_the_connection_unusable() {
    // The server refuses the upload at once; the body was never sent, so
    // the connection cannot carry another request.
    let (addr, peer) = serve_one(|mut peer| {
        peer.read_head();
        peer.send("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n");
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        let request_headers = headers(&[("Content-Length", "5"), ("Expect", "100-continue")]);
        connection
            .write_headers(&line("PUT", "/"), &request_headers)
            .unwrap();
        let mut recorder = Recorder {
            continue_body: Some((connection.clone(), b"hello".to_vec())),
            ..Recorder::default()
        };
        let outcome = connection.read_response(&mut recorder).await.unwrap();
        assert_eq!(outcome, ResponseOutcome::Closed);
        assert_whole(&recorder.seen, 417, b"");
        join(peer).await;
    });
}

#[test]
fn switching_protocols_hands_the_stream_over() {
    let (addr, peer) = serve_one(|mut peer| {
        peer.read_head();
        peer.send(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nRAW",
        );
        peer.read_exact(4)
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        let (outcome, seen) = get(&connection, "GET", "/ws").await;
        assert_eq!(outcome.unwrap(), ResponseOutcome::Upgraded);
        assert_whole(&seen, 101, b"");
        assert!(matches!(
            connection.write_headers(&line("GET", "/"), &headers(&[])),
            Err(HttpOutputError::HeadersAlreadyWritten)
        ));
        let stream = connection.into_stream();
        assert_eq!(stream.read_bytes(3, false).await.unwrap(), b"RAW");
        stream.write("PONG").await.unwrap();
        assert_eq!(join(peer).await, b"PONG");
    });
}

// ----- malformed, truncated and oversized responses ---------------------------------

/// Answers one GET with `response`, then waits for the client to close;
/// returns the client's error and what its delegate saw.
fn refused(
    response: &'static str,
    params: Http1ClientParams,
) -> (HttpClientConnectionError, Recorded) {
    let (addr, peer) = serve_one(move |mut peer| {
        peer.read_head();
        peer.send(response);
        // The client closes; nothing more may come from it.
        peer.read_to_end()
    });
    run(async move {
        let connection = connect(addr, params).await;
        let (outcome, seen) = get(&connection, "GET", "/").await;
        let error = outcome.expect_err("the response was accepted");
        assert_failed(&connection, &seen);
        assert_eq!(join(peer).await, b"");
        (error, seen)
    })
}

#[test]
fn informational_response_with_body_headers_is_an_error() {
    for (response, code) in [
        ("HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n", 100),
        (
            "HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n",
            103,
        ),
    ] {
        let (error, seen) = refused(response, Http1ClientParams::default());
        assert!(
            matches!(
                error,
                HttpClientConnectionError::Framing(FramingError::BodyOnInformational { code: c })
                    if c == code
            ),
            "{error}"
        );
        assert!(seen.heads.is_empty(), "{seen:?}");
    }
}

#[test]
fn transfer_encoding_with_content_length_is_an_error() {
    let (error, seen) = refused(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        Http1ClientParams::default(),
    );
    assert!(
        matches!(
            error,
            HttpClientConnectionError::Framing(FramingError::TransferEncodingWithLength)
        ),
        "{error}"
    );
    assert!(seen.heads.is_empty() && seen.body.is_empty(), "{seen:?}");
}

#[test]
fn two_different_content_lengths_are_an_error() {
    for response in [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
    ] {
        let (error, seen) = refused(response, Http1ClientParams::default());
        assert!(
            matches!(
                error,
                HttpClientConnectionError::Framing(FramingError::InvalidContentLength)
            ),
            "{error}"
        );
        assert!(seen.body.is_empty(), "{seen:?}");
    }
}

#[test]
fn malformed_head_is_an_error() {
    let (error, _) = refused("HTTP/1.1 abc OK\r\n\r\n", Http1ClientParams::default());
    assert!(
        matches!(error, HttpClientConnectionError::Head(_)),
        "{error}"
    );
}

#[test]
fn malformed_chunked_body_is_an_error() {
    let (error, seen) = refused(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
        Http1ClientParams::default(),
    );
    assert!(
        matches!(
            error,
            HttpClientConnectionError::Body(BodyError::MissingChunkTerminator)
        ),
        "{error}"
    );
    assert_eq!(seen.heads.len(), 1);
}

#[test]
fn too_many_informational_responses_are_an_error() {
    let (error, seen) = refused(
        "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
         HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
         HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
         HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
         HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
         HTTP/1.1 102 Processing\r\n\r\n",
        Http1ClientParams::default(),
    );
    assert!(
        matches!(error, HttpClientConnectionError::TooManyInformational),
        "{error}"
    );
    assert_eq!(
        seen.heads.len(),
        whirl_httpserver::MAX_INFORMATIONAL_RESPONSES
    );
}

#[test]
fn body_cut_short_is_an_error_and_the_delegate_is_told() {
    for response in [
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "HTTP/1.1 200 OK\r\nContent-Len",
    ] {
        let (addr, peer) = serve_one(move |mut peer| {
            peer.read_head();
            peer.send(response);
        });
        run(async move {
            let connection = connect(addr, Http1ClientParams::default()).await;
            let (outcome, seen) = get(&connection, "GET", "/").await;
            let error = outcome.expect_err(response);
            assert!(
                matches!(error, HttpClientConnectionError::ClosedEarly(_)),
                "{response:?}: {error}"
            );
            assert_failed(&connection, &seen);
            join(peer).await;
        });
    }
}

#[test]
fn a_connection_closed_before_any_response_says_so() {
    // What a server dropping an idle keep-alive connection looks like.
    let (addr, peer) = serve_one(|mut peer| {
        peer.read_head();
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        let (outcome, seen) = get(&connection, "GET", "/").await;
        let error = outcome.unwrap_err();
        assert!(
            matches!(error, HttpClientConnectionError::ClosedBeforeResponse(_)),
            "{error}"
        );
        assert_failed(&connection, &seen);
        join(peer).await;
    });
}

#[test]
fn declared_body_over_max_body_size_is_refused_before_reading() {
    // The server sends the head only: the refusal must not wait for a body.
    let params = Http1ClientParams {
        max_body_size: 100,
        ..Http1ClientParams::default()
    };
    let (error, seen) = refused("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", params);
    assert!(
        matches!(
            error,
            HttpClientConnectionError::BodyTooLarge {
                declared: Some(1000),
                max: 100
            }
        ),
        "{error}"
    );
    assert!(seen.heads.is_empty() && seen.pieces.is_empty(), "{seen:?}");

    let (error, seen) = refused(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n",
        Http1ClientParams {
            max_body_size: 50,
            ..Http1ClientParams::default()
        },
    );
    assert!(
        matches!(
            error,
            HttpClientConnectionError::BodyTooLarge {
                declared: None,
                max: 50
            }
        ),
        "{error}"
    );
    assert!(seen.pieces.is_empty(), "{seen:?}");
}

#[test]
fn a_dropped_read_closes_the_connection() {
    let (addr, peer) = serve_one(|mut peer| {
        peer.read_head();
        peer.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf");
        peer.read_to_end()
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        connection
            .write_headers(&line("GET", "/"), &headers(&[]))
            .unwrap();
        connection.finish().unwrap();
        let mut recorder = Recorder::default();
        let read = connection.read_response(&mut recorder);
        assert!(with_timeout(Duration::from_millis(200), read)
            .await
            .is_err());
        assert!(connection.stream().closed());
        assert_eq!((recorder.seen.finished, recorder.seen.closed), (0, 0));
        assert_eq!(join(peer).await, b"");
    });
}

// ----- keep-alive -----------------------------------------------------------------

#[test]
fn two_requests_share_one_connection() {
    let (addr, peer) = serve_one(|mut peer| {
        let mut targets = Vec::new();
        for body in ["first", "second"] {
            let head = peer.read_head();
            targets.push(head.split(' ').nth(1).unwrap().to_string());
            peer.send(format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
        targets
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        for (target, body) in [("/1", "first"), ("/2", "second")] {
            assert!(connection.is_ready());
            let (outcome, seen) = get(&connection, "GET", target).await;
            assert_eq!(outcome.unwrap(), ResponseOutcome::KeepAlive);
            assert_whole(&seen, 200, body.as_bytes());
        }
        assert_eq!(join(peer).await, ["/1", "/2"]);
    });
}

#[test]
fn connection_close_makes_the_connection_not_reusable() {
    // Said by the server.
    let (addr, peer) = serve_one(|mut peer| {
        peer.read_head();
        peer.send("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
        peer.read_to_end()
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        let (outcome, seen) = get(&connection, "GET", "/").await;
        assert_eq!(outcome.unwrap(), ResponseOutcome::Closed);
        assert_whole(&seen, 200, b"ok");
        assert!(matches!(
            connection.write_headers(&line("GET", "/"), &headers(&[])),
            Err(HttpOutputError::Closed(_))
        ));
        assert_eq!(join(peer).await, b"", "the client closed");
    });

    // Said by the request, or by `no_keep_alive` (which says it for us).
    for (extra, no_keep_alive) in [(&[("Connection", "close")][..], false), (&[], true)] {
        let (addr, peer) = serve_one(|mut peer| {
            let head = peer.read_head();
            peer.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            head
        });
        run(async move {
            let params = Http1ClientParams {
                no_keep_alive,
                ..Http1ClientParams::default()
            };
            let connection = connect(addr, params).await;
            connection
                .write_headers(&line("GET", "/"), &headers(extra))
                .unwrap();
            connection.finish().unwrap();
            let mut recorder = Recorder::default();
            let outcome = connection.read_response(&mut recorder).await.unwrap();
            assert_eq!(outcome, ResponseOutcome::Closed);
            assert_whole(&recorder.seen, 200, b"ok");
            let head = join(peer).await;
            assert_eq!(head.matches("Connection: close\r\n").count(), 1, "{head}");
        });
    }
}

#[test]
fn a_response_before_the_request_was_finished_closes_the_connection() {
    let (addr, peer) = serve_one(|mut peer| {
        peer.read_head();
        peer.read_exact(5);
        peer.send("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n");
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        connection
            .write_headers(&line("POST", "/"), &headers(&[("Content-Length", "10")]))
            .unwrap();
        connection.write("hello").unwrap();
        let mut recorder = Recorder::default();
        let outcome = connection.read_response(&mut recorder).await.unwrap();
        assert_eq!(outcome, ResponseOutcome::Closed);
        assert_whole(&recorder.seen, 413, b"");
        join(peer).await;
    });
}

// ----- writing requests -----------------------------------------------------------

#[test]
fn post_without_length_is_uploaded_chunked() {
    let (addr, peer) = serve_one(|mut peer| {
        let head = peer.read_head();
        let body = peer.read_until(b"0\r\n\r\n");
        peer.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        (head, body)
    });
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        connection
            .write_headers(&line("POST", "/up"), &headers(&[]))
            .unwrap();
        connection.write("hello").unwrap();
        connection.write("").unwrap();
        connection.write(" world").unwrap();
        connection.finish().unwrap().await.unwrap();
        let mut recorder = Recorder::default();
        let outcome = connection.read_response(&mut recorder).await.unwrap();
        assert_eq!(outcome, ResponseOutcome::KeepAlive);
        let (head, body) = join(peer).await;
        assert_eq!(
            head,
            "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        assert_eq!(body, b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    });
}

#[test]
fn content_length_is_honoured_exactly() {
    // More than declared: the connection is aborted before any of it goes.
    let (addr, peer) = serve_one(|mut peer| peer.read_to_end());
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        connection
            .write_headers(&line("PUT", "/"), &headers(&[("Content-Length", "3")]))
            .unwrap();
        let error = connection.write("abcd").unwrap_err();
        assert!(
            matches!(error, HttpOutputError::Framing(BodyError::LengthExceeded)),
            "{error}"
        );
        assert!(connection.stream().closed());
        // The abort drops what was still queued; no body byte ever goes.
        let sent = String::from_utf8(join(peer).await).unwrap();
        assert!(
            sent.is_empty() || sent.ends_with("Content-Length: 3\r\n\r\n"),
            "{sent:?}"
        );
    });

    // Fewer than declared, or a body on a request that has none.
    for (method, extra, body) in [
        ("POST", &[("Content-Length", "3")][..], "ab"),
        ("GET", &[], "x"),
    ] {
        let (addr, peer) = serve_one(|mut peer| peer.read_to_end());
        run(async move {
            let connection = connect(addr, Http1ClientParams::default()).await;
            connection
                .write_headers(&line(method, "/"), &headers(extra))
                .unwrap();
            let error = match connection.write(body) {
                Ok(_) => connection.finish().unwrap_err(),
                Err(e) => e,
            };
            assert!(matches!(error, HttpOutputError::Framing(_)), "{error}");
            assert!(connection.stream().closed());
            join(peer).await;
        });
    }
}

#[test]
fn injection_is_refused_and_nothing_is_sent() {
    let (addr, peer) = serve_one(|mut peer| peer.read_to_end());
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        for (method, target) in [
            ("GET", "/a\r\nEvil: 1"),
            ("GET", "/a b"),
            ("GET", ""),
            ("GE T", "/"),
            ("GET\r\n", "/"),
        ] {
            let error = connection
                .write_headers(&line(method, target), &headers(&[]))
                .unwrap_err();
            assert!(
                matches!(error, HttpOutputError::InvalidRequestLine),
                "{method:?} {target:?}: {error}"
            );
        }
        for extra in [
            &[("Content-Length", "5"), ("Transfer-Encoding", "chunked")][..],
            &[("Transfer-Encoding", "gzip")],
        ] {
            let error = connection
                .write_headers(&line("POST", "/"), &headers(extra))
                .unwrap_err();
            assert!(
                matches!(error, HttpOutputError::InvalidFraming(_)),
                "{error}"
            );
        }
        let error = connection
            .write_headers(&line("POST", "/"), &headers(&[("Content-Length", "-1")]))
            .unwrap_err();
        assert!(
            matches!(error, HttpOutputError::InvalidContentLength),
            "{error}"
        );
        // Nothing went out and the connection is still fit for a request.
        assert!(connection.is_ready());
        connection.close();
        assert_eq!(join(peer).await, b"");
    });
}

#[test]
fn header_values_beyond_latin1_cannot_inject_lines() {
    // U+010A and U+010D cut to one byte each would be LF and CR.
    let (addr, peer) = serve_one(|mut peer| peer.read_until(b"\r\n\r\n"));
    run(async move {
        let connection = connect(addr, Http1ClientParams::default()).await;
        let request_headers = headers(&[
            ("X-Name", "caf\u{e9}"),
            ("X-Evil", "a\u{10a}Evil: 1\u{10d}"),
        ]);
        connection
            .write_headers(&line("GET", "/"), &request_headers)
            .unwrap();
        let head = join(peer).await;
        // Latin-1 where it fits, UTF-8 where it does not; never a bare CR
        // or LF inside a line.
        let want = b"GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9\r\n\
                     X-Evil: a\xc4\x8aEvil: 1\xc4\x8d\r\n\r\n";
        assert_eq!(
            String::from_utf8_lossy(&head),
            String::from_utf8_lossy(want)
        );
        assert_eq!(head, want);
    });
}

// ----- against whirl's own server -------------------------------------------------

/// A round trip: method, target, extra headers, body pieces, and the body
/// the server answers with.
type RoundTrip = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
    &'static str,
);

#[test]
fn round_trip_with_httpserver_keeps_one_connection_for_three_requests() {
    run(async {
        let server = HttpServer::from_fn(|request, connection| {
            let body = format!(
                "{} {} {}",
                request.method(),
                request.path(),
                String::from_utf8_lossy(&request.body)
            );
            let peer_port = connection.remote_addr().map_or(0, |a| a.port());
            let mut h = HttpHeaders::new();
            h.insert("Content-Length", body.len().to_string());
            h.insert("X-Peer-Port", peer_port.to_string());
            let status = ResponseStartLine {
                version: Version::Http11,
                code: 200,
                reason: String::new(),
            };
            if connection.write_headers(&status, &h).is_ok() {
                let _ = connection.write(body);
                let _ = connection.finish();
            }
        });
        let addr = server.listen(0, Some("127.0.0.1")).expect("listen")[0];
        let connection = connect(addr, Http1ClientParams::default()).await;
        let mut ports = Vec::new();
        let requests: [RoundTrip; 3] = [
            ("GET", "/one", &[], &[], "GET /one "),
            (
                "POST",
                "/two",
                &[("Content-Length", "3")],
                &["abc"],
                "POST /two abc",
            ),
            ("PUT", "/three", &[], &["x", "yz"], "PUT /three xyz"),
        ];
        for (method, target, extra, pieces, want) in requests {
            connection
                .write_headers(&line(method, target), &headers(extra))
                .unwrap();
            for piece in pieces {
                connection.write(*piece).unwrap();
            }
            connection.finish().unwrap();
            let mut recorder = Recorder::default();
            let outcome = connection.read_response(&mut recorder).await.unwrap();
            assert_eq!(outcome, ResponseOutcome::KeepAlive, "{method} {target}");
            assert_whole(&recorder.seen, 200, want.as_bytes());
            ports.push(
                recorder.seen.heads[0]
                    .1
                    .get("X-Peer-Port")
                    .unwrap()
                    .to_string(),
            );
        }
        // One client port for all three: one connection.
        assert_ne!(ports[0], "0");
        assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
        assert_eq!(server.connection_count(), 1);
    });
}
