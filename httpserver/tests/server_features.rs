//! HttpServer's optional features over loopback: proxy headers (`xheaders`,
//! `trusted_downstream`), `decompress_request`, `max_connections`, the
//! multi-core `serve_threads`, and the `Date` header.
//!
//! Servers run in threads of their own through `serve_threads` (one thread
//! unless the test is about threads); the client is plain `std::net` with
//! raw bytes.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use flate2::write::GzEncoder;
use flate2::Compression;
use whirl_httpserver::{
    parse_http_date, serve_threads, Flow, Http1Connection, Http1ConnectionParams, HttpHeaders,
    HttpMessageDelegate, HttpServer, HttpServerConnectionDelegate, HttpServerRequest, RequestHead,
    ResponseStartLine, ServerThreads, StartLine, Version,
};
use whirl_ioloop::{sleep, IoLoop};

/// Every read gives up after this long, so a broken server fails the test
/// instead of hanging it. Not a bound on speed.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

// ----- servers -----------------------------------------------------------------

/// Runs the server `make` builds on one thread of its own.
fn serve(make: impl Fn() -> HttpServer + Send + Sync + 'static) -> (ServerThreads, SocketAddr) {
    let servers = serve_threads(1, 0, Some("127.0.0.1"), make).expect("serve_threads");
    let addr = SocketAddr::from(([127, 0, 0, 1], servers.port()));
    (servers, addr)
}

/// A status line; the connection fills in the reason.
fn status(code: u16) -> ResponseStartLine {
    ResponseStartLine {
        version: Version::Http11,
        code,
        reason: String::new(),
    }
}

/// Answers 200 with `headers` plus a `Content-Length`, and `body`.
fn respond(connection: &Http1Connection, mut headers: HttpHeaders, body: Vec<u8>) {
    headers.insert("Content-Length", body.len().to_string());
    if connection.write_headers(&status(200), &headers).is_ok() {
        let _ = connection.write(body);
        let _ = connection.finish();
    }
}

/// A closure server that reports what it saw of each request in headers —
/// `X-Remote-Ip`, `X-Protocol`, `X-Saw-<name>` for the headers that
/// `decompress_request` adjusts, `X-Foo` for the `foo` argument — and
/// echoes the body.
fn echo_app() -> HttpServer {
    HttpServer::from_fn(|request: HttpServerRequest, connection| {
        let mut headers = HttpHeaders::new();
        let ip = request
            .remote_ip
            .map_or("-".to_string(), |ip| ip.to_string());
        headers.insert("X-Remote-Ip", ip);
        headers.insert("X-Protocol", request.protocol.clone());
        for name in [
            "Content-Encoding",
            "X-Consumed-Content-Encoding",
            "Content-Length",
        ] {
            let seen = request.headers.get(name).unwrap_or("-").to_string();
            headers.insert(format!("X-Saw-{name}"), seen);
        }
        if let Some(values) = request.body_arguments.get("foo") {
            let values: Vec<String> = values
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            headers.insert("X-Foo", values.join(","));
        }
        respond(connection, headers, request.body.clone());
    })
}

// ----- the raw client -----------------------------------------------------------

/// One parsed response.
#[derive(Debug)]
struct Response {
    /// The status code.
    code: u16,
    /// Every header, in order.
    headers: Vec<(String, String)>,
    /// The body (by Content-Length, else up to the close).
    body: Vec<u8>,
}

impl Response {
    /// The first value of `name`.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// How many times `name` appears.
    fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

/// Connects with [`TEST_TIMEOUT`] on reads and writes.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TEST_TIMEOUT)).unwrap();
    stream
}

/// Reads one response from `stream`; `None` if the server closed (EOF or
/// reset) before sending a byte.
fn read_response(stream: &mut TcpStream) -> Option<Response> {
    let mut buf = Vec::new();
    let mut piece = [0u8; 16 * 1024];
    // Step 1. The head.
    let (code, headers, head_len) = loop {
        let mut parsed_headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut parsed_headers);
        if let httparse::Status::Complete(len) = parsed.parse(&buf).expect("a valid response") {
            let headers = parsed
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value).into_owned();
                    (h.name.to_string(), value)
                })
                .collect();
            break (parsed.code.unwrap(), headers, len);
        }
        match stream.read(&mut piece) {
            Ok(0) => {
                assert!(buf.is_empty(), "cut short: {buf:?}");
                return None;
            }
            Ok(n) => buf.extend_from_slice(&piece[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset && buf.is_empty() => return None,
            Err(e) => panic!("reading a response: {e}"),
        }
    };
    let mut response = Response {
        code,
        headers,
        body: buf.split_off(head_len),
    };
    // Step 2. The body: by Content-Length, else until the close.
    let length: Option<usize> = response
        .header("Content-Length")
        .map(|v| v.parse().unwrap());
    loop {
        if length.is_some_and(|len| response.body.len() >= len) {
            break;
        }
        match stream.read(&mut piece) {
            Ok(0) => break,
            Ok(n) => response.body.extend_from_slice(&piece[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset && length.is_none() => break,
            Err(e) => panic!("reading a body: {e}"),
        }
    }
    assert_eq!(
        Some(response.body.len()),
        length.or(Some(response.body.len()))
    );
    Some(response)
}

/// Sends `raw` on a fresh connection and reads one response.
fn fetch(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut stream = connect(addr);
    stream.write_all(raw).expect("write");
    read_response(&mut stream).expect("a response")
}

/// Whether the server closes `stream` (EOF or reset) without sending
/// anything more.
fn closed_silently(stream: &mut TcpStream) -> bool {
    let mut piece = [0u8; 1024];
    loop {
        match stream.read(&mut piece) {
            Ok(0) => return true,
            Ok(n) => panic!(
                "unexpected bytes: {:?}",
                String::from_utf8_lossy(&piece[..n])
            ),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A GET with `extra` header lines.
fn get(extra: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: example.com\r\n{extra}\r\n").into_bytes()
}

/// A POST of `body` with `extra` header lines and its Content-Length.
fn post(extra: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// `data` gzipped.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

// ----- xheaders -----------------------------------------------------------------

#[test]
fn xheaders_set_remote_ip_and_protocol_as_tornado_does() {
    let (_servers, addr) = serve(|| {
        echo_app()
            .xheaders(true)
            .trusted_downstream(vec!["10.0.0.2".parse().unwrap()])
    });
    let cases = [
        ("", "127.0.0.1", "http"),
        ("X-Real-IP: 4.4.4.4\r\n", "4.4.4.4", "http"),
        (
            "X-Real-IP: 2620:0:1cfe:face:b00c::3\r\n",
            "2620:0:1cfe:face:b00c::3",
            "http",
        ),
        ("X-Forwarded-For: 4.4.4.4\r\n", "4.4.4.4", "http"),
        ("X-Forwarded-For: 1.1.1.1, 4.4.4.4\r\n", "4.4.4.4", "http"),
        (
            "X-Forwarded-For: 5.5.5.5, 4.4.4.4, 10.0.0.2\r\n",
            "4.4.4.4",
            "http",
        ),
        ("X-Real-IP: evil.com\r\n", "127.0.0.1", "http"),
        ("X-Real-IP: 4.4.4.4<script>\r\n", "127.0.0.1", "http"),
        (
            "X-Forwarded-For: 1.1.1.1, evil.com\r\n",
            "127.0.0.1",
            "http",
        ),
        ("X-Scheme: https\r\n", "127.0.0.1", "https"),
        ("X-Forwarded-Proto: https\r\n", "127.0.0.1", "https"),
        ("X-Forwarded-Proto: https , http\r\n", "127.0.0.1", "http"),
        ("X-Forwarded-Proto: unknown\r\n", "127.0.0.1", "http"),
    ];
    for (extra, ip, protocol) in cases {
        let response = fetch(addr, &get(extra));
        assert_eq!(response.code, 200, "{extra}");
        assert_eq!(response.header("X-Remote-Ip"), Some(ip), "{extra}");
        assert_eq!(response.header("X-Protocol"), Some(protocol), "{extra}");
    }
}

#[test]
fn without_xheaders_proxy_headers_are_ignored() {
    let (_servers, addr) = serve(echo_app);
    let response = fetch(
        addr,
        &get("X-Real-IP: 4.4.4.4\r\nX-Forwarded-Proto: https\r\n"),
    );
    assert_eq!(response.header("X-Remote-Ip"), Some("127.0.0.1"));
    assert_eq!(response.header("X-Protocol"), Some("http"));
}

#[test]
fn xheaders_do_not_carry_over_to_the_next_request_on_a_connection() {
    let (_servers, addr) = serve(|| echo_app().xheaders(true));
    let mut stream = connect(addr);
    stream
        .write_all(&get("X-Real-IP: 4.4.4.4\r\nX-Scheme: https\r\n"))
        .unwrap();
    let first = read_response(&mut stream).unwrap();
    stream.write_all(&get("")).unwrap();
    let second = read_response(&mut stream).unwrap();
    assert_eq!(first.header("X-Remote-Ip"), Some("4.4.4.4"));
    assert_eq!(first.header("X-Protocol"), Some("https"));
    assert_eq!(second.header("X-Remote-Ip"), Some("127.0.0.1"));
    assert_eq!(second.header("X-Protocol"), Some("http"));
}

/// A streaming delegate that answers with what `Http1Connection::context`
/// says when the head arrives.
struct ContextReporter;

/// One request of [`ContextReporter`].
struct ContextRequest {
    /// Where to answer.
    connection: Http1Connection,
    /// The context seen in `headers_received`.
    seen: String,
}

impl HttpServerConnectionDelegate for ContextReporter {
    fn start_request(&self, connection: &Http1Connection) -> Box<dyn HttpMessageDelegate> {
        Box::new(ContextRequest {
            connection: connection.clone(),
            seen: String::new(),
        })
    }
}

impl HttpMessageDelegate for ContextRequest {
    fn headers_received(&mut self, _start_line: StartLine, _headers: HttpHeaders) -> Flow {
        let context = self.connection.context();
        self.seen = format!("{:?} {}", context.remote_ip, context.protocol);
        None
    }

    fn data_received(&mut self, _chunk: Vec<u8>) -> Flow {
        None
    }

    fn finish(&mut self) {
        let mut headers = HttpHeaders::new();
        headers.insert("X-Context", self.seen.clone());
        respond(&self.connection, headers, Vec::new());
    }

    fn on_connection_close(&mut self) {}
}

#[test]
fn a_streaming_delegate_reads_the_proxied_address_from_the_connection_context() {
    let (_servers, addr) = serve(|| HttpServer::new(ContextReporter).xheaders(true));
    let response = fetch(
        addr,
        &get("X-Forwarded-For: 8.8.8.8\r\nX-Forwarded-Proto: https\r\n"),
    );
    assert_eq!(response.header("X-Context"), Some("Some(8.8.8.8) https"));
}

// ----- whole requests -------------------------------------------------------------

/// A delegate that takes bodiless requests whole — except `/decline`, whose
/// head it gives back — and answers with `X-Way` saying which way each
/// came (`whole` or `message`) and `X-Target` its request target.
struct WholeTaker;

/// One request of [`WholeTaker`] that came the usual way.
struct MessageRequest {
    /// Where to answer.
    connection: Http1Connection,
    /// The request target, from `headers_received`.
    target: String,
    /// Body bytes received.
    body: usize,
}

/// Answers with the way a request came, its target and its body size.
fn answer_way(connection: &Http1Connection, way: &str, target: &str, body: usize) {
    let mut headers = HttpHeaders::new();
    headers.insert("X-Way", way);
    headers.insert("X-Target", target);
    headers.insert("X-Body", body.to_string());
    respond(connection, headers, Vec::new());
}

impl HttpServerConnectionDelegate for WholeTaker {
    fn start_request(&self, connection: &Http1Connection) -> Box<dyn HttpMessageDelegate> {
        Box::new(MessageRequest {
            connection: connection.clone(),
            target: String::new(),
            body: 0,
        })
    }

    fn whole_request(
        &self,
        connection: &Http1Connection,
        head: RequestHead,
    ) -> Result<Flow, RequestHead> {
        if head.start_line.target == "/decline" {
            return Err(head);
        }
        let connection = connection.clone();
        // Answered from a flow a loop turn later: the connection waits for it.
        Ok(Some(Box::pin(async move {
            sleep(Duration::from_millis(1)).await;
            answer_way(&connection, "whole", &head.start_line.target, 0);
        })))
    }
}

impl HttpMessageDelegate for MessageRequest {
    fn headers_received(&mut self, start_line: StartLine, _headers: HttpHeaders) -> Flow {
        if let StartLine::Request(line) = start_line {
            self.target = line.target;
        }
        None
    }

    fn data_received(&mut self, chunk: Vec<u8>) -> Flow {
        self.body += chunk.len();
        None
    }

    fn finish(&mut self) {
        answer_way(&self.connection, "message", &self.target, self.body);
    }

    fn on_connection_close(&mut self) {}
}

/// Sends each of `requests` in turn on one connection; the answers' way,
/// target and body size.
fn ways(addr: SocketAddr, requests: &[Vec<u8>]) -> Vec<(String, String, String)> {
    let mut stream = connect(addr);
    requests
        .iter()
        .map(|raw| {
            stream.write_all(raw).expect("write");
            let response = read_response(&mut stream).expect("a response");
            let header = |name| response.header(name).unwrap_or_default().to_string();
            (header("X-Way"), header("X-Target"), header("X-Body"))
        })
        .collect()
}

#[test]
fn a_bodiless_request_is_taken_whole_and_one_with_a_body_as_a_message() {
    let (_servers, addr) = serve(|| HttpServer::new(WholeTaker));
    let declined = b"GET /decline HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec();
    let got = ways(addr, &[get(""), post("", b"abc"), declined, get("")]);
    let way = |w: &str, t: &str, b: &str| (w.to_string(), t.to_string(), b.to_string());
    assert_eq!(
        got,
        [
            way("whole", "/", "0"),
            way("message", "/", "3"),
            way("message", "/decline", "0"), // given back: the usual way
            way("whole", "/", "0"),
        ]
    );
}

#[test]
fn with_a_wrapper_in_front_a_bodiless_request_comes_as_a_message() {
    // xheaders and decompress_request wrap the message delegate, so a whole
    // request would pass them by: it takes the usual way.
    for make in [
        || HttpServer::new(WholeTaker).xheaders(true),
        || HttpServer::new(WholeTaker).decompress_request(true),
    ] {
        let (_servers, addr) = serve(make);
        let got = ways(addr, &[get("")]);
        assert_eq!(got[0].0, "message");
    }
}

// ----- decompress_request -------------------------------------------------------

/// The form `foo=bar` gzipped, as Tornado's GzipTest posts it.
fn gzip_form_request(encoding: &str) -> Vec<u8> {
    post(
        &format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Encoding: {encoding}\r\n"
        ),
        &gzip(b"foo=bar"),
    )
}

#[test]
fn decompress_request_gunzips_a_form_body_and_adjusts_the_headers() {
    let (_servers, addr) = serve(|| echo_app().decompress_request(true));
    for encoding in ["gzip", "GZIP", "Gzip"] {
        let response = fetch(addr, &gzip_form_request(encoding));
        assert_eq!(response.code, 200, "{encoding}");
        assert_eq!(response.header("X-Foo"), Some("bar"));
        assert_eq!(response.body, b"foo=bar");
        assert_eq!(response.header("X-Saw-Content-Encoding"), Some("-"));
        assert_eq!(response.header("X-Saw-Content-Length"), Some("-"));
        assert_eq!(
            response.header("X-Saw-X-Consumed-Content-Encoding"),
            Some(encoding)
        );
    }
}

#[test]
fn decompress_request_gunzips_a_chunked_body() {
    let (_servers, addr) = serve(|| echo_app().decompress_request(true));
    let text: Vec<u8> = (0..20_000u32)
        .flat_map(|i| i.to_string().into_bytes())
        .collect();
    let gz = gzip(&text);
    let mut raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n\
        Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for piece in gz.chunks(1000) {
        raw.extend(format!("{:x}\r\n", piece.len()).into_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let response = fetch(addr, &raw);
    assert_eq!(response.code, 200);
    assert_eq!(response.body, text);
}

#[test]
fn other_encodings_and_plain_bodies_pass_through_untouched() {
    let (_servers, addr) = serve(|| echo_app().decompress_request(true));
    let response = fetch(addr, &post("Content-Type: text/plain\r\n", b"plain"));
    assert_eq!(response.body, b"plain");
    assert_eq!(response.header("X-Saw-Content-Length"), Some("5"));
    let response = fetch(addr, &post("Content-Encoding: br\r\n", b"\x0b\x02\x80"));
    assert_eq!(response.body, b"\x0b\x02\x80");
    assert_eq!(response.header("X-Saw-Content-Encoding"), Some("br"));
}

#[test]
fn without_decompress_request_a_gzip_body_arrives_as_sent() {
    let (_servers, addr) = serve(echo_app);
    // A form body nothing decoded is refused, as in Tornado's
    // GzipUnsupportedTest.
    let response = fetch(addr, &gzip_form_request("gzip"));
    assert_eq!(response.code, 400);
    // Any other body reaches the handler compressed, headers untouched.
    let gz = gzip(b"payload");
    let response = fetch(
        addr,
        &post(
            "Content-Type: application/octet-stream\r\nContent-Encoding: gzip\r\n",
            &gz,
        ),
    );
    assert_eq!(response.code, 200);
    assert_eq!(response.body, gz);
    assert_eq!(response.header("X-Saw-Content-Encoding"), Some("gzip"));
}

/// Sends `raw` (ignoring a write cut short by the server's close) and
/// returns the one response, checking that the connection is then closed.
fn refused(addr: SocketAddr, raw: Vec<u8>) -> Response {
    let mut stream = connect(addr);
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let _ = writer.write_all(&raw);
    });
    let response = read_response(&mut stream).expect("a response");
    assert!(closed_silently(&mut stream), "the connection stayed open");
    sender.join().unwrap();
    response
}

#[test]
fn a_decompressed_body_over_max_body_size_is_refused_with_413() {
    let params = Http1ConnectionParams {
        max_body_size: 1 << 20,
        ..Http1ConnectionParams::default()
    };
    let (_servers, addr) = serve(move || echo_app().with_params(params).decompress_request(true));

    // Exactly the limit passes.
    let exact = fetch(
        addr,
        &post("Content-Encoding: gzip\r\n", &gzip(&vec![b'a'; 1 << 20])),
    );
    assert_eq!((exact.code, exact.body.len()), (200, 1 << 20));

    // A bomb: 256 MiB of zeros in about 256 KiB, refused at 1 MiB.
    let bomb = gzip(&vec![0u8; 1 << 20]).repeat(256);
    let response = refused(addr, post("Content-Encoding: gzip\r\n", &bomb));
    assert_eq!(response.code, 413);
    assert_eq!(response.header("Connection"), Some("close"));

    // The server goes on.
    assert_eq!(fetch(addr, &get("")).code, 200);
}

#[test]
fn malformed_gzip_is_refused_with_400() {
    let (_servers, addr) = serve(|| echo_app().decompress_request(true));
    let gz = gzip(b"a body that is long enough to be cut short");
    let mut bad_checksum = gz.clone();
    let at = bad_checksum.len() - 8;
    bad_checksum[at] ^= 0xff;
    let cases = [
        (b"not gzip at all".to_vec(), "not gzip"),
        ([&gz[..10], &[0xff; 32][..]].concat(), "corrupt deflate"),
        (gz[..gz.len() - 4].to_vec(), "truncated"),
        (bad_checksum, "bad checksum"),
    ];
    for (body, what) in cases {
        let response = refused(addr, post("Content-Encoding: gzip\r\n", &body));
        assert_eq!(response.code, 400, "{what}");
    }
    assert_eq!(fetch(addr, &get("")).code, 200);
}

/// A streaming delegate that records the size of each body piece and
/// slows the sender down (a flow future per piece), then answers with the
/// sizes in `X-Pieces` and the body.
struct PieceRecorder;

/// One request of [`PieceRecorder`].
struct PieceRequest {
    /// Where to answer.
    connection: Http1Connection,
    /// The body so far.
    body: Vec<u8>,
    /// The size of each piece.
    sizes: Vec<usize>,
}

impl HttpServerConnectionDelegate for PieceRecorder {
    fn start_request(&self, connection: &Http1Connection) -> Box<dyn HttpMessageDelegate> {
        Box::new(PieceRequest {
            connection: connection.clone(),
            body: Vec::new(),
            sizes: Vec::new(),
        })
    }
}

impl HttpMessageDelegate for PieceRequest {
    fn headers_received(&mut self, _start_line: StartLine, _headers: HttpHeaders) -> Flow {
        None
    }

    fn data_received(&mut self, chunk: Vec<u8>) -> Flow {
        self.sizes.push(chunk.len());
        self.body.extend(chunk);
        Some(Box::pin(sleep(Duration::from_millis(1))))
    }

    fn finish(&mut self) {
        let mut headers = HttpHeaders::new();
        let sizes: Vec<String> = self.sizes.iter().map(usize::to_string).collect();
        headers.insert("X-Pieces", sizes.join(","));
        respond(&self.connection, headers, std::mem::take(&mut self.body));
    }

    fn on_connection_close(&mut self) {}
}

#[test]
fn decompressed_pieces_respect_chunk_size_and_flow_control() {
    let params = Http1ConnectionParams {
        chunk_size: 16,
        ..Http1ConnectionParams::default()
    };
    let (_servers, addr) = serve(move || {
        HttpServer::new(PieceRecorder)
            .with_params(params)
            .decompress_request(true)
    });
    let text = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN".repeat(3);
    let response = fetch(addr, &post("Content-Encoding: gzip\r\n", &gzip(&text)));
    assert_eq!(response.code, 200);
    assert_eq!(response.body, text);
    let sizes: Vec<usize> = response
        .header("X-Pieces")
        .unwrap()
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(sizes.iter().all(|&s| (1..=16).contains(&s)), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), text.len());
}

// ----- max_connections ----------------------------------------------------------

#[test]
fn connections_past_max_connections_are_closed_at_once() {
    let (_servers, addr) = serve(|| echo_app().max_connections(2));
    // Two kept-alive connections, each known to be served.
    let mut first = connect(addr);
    let mut second = connect(addr);
    for stream in [&mut first, &mut second] {
        stream.write_all(&get("")).unwrap();
        assert_eq!(read_response(stream).unwrap().code, 200);
    }
    // A third is closed without a response, however often it tries.
    for _ in 0..3 {
        let mut third = connect(addr);
        let _ = third.write_all(&get(""));
        assert!(closed_silently(&mut third), "the third connection was kept");
    }
    // The two open ones are still served.
    second.write_all(&get("")).unwrap();
    assert_eq!(read_response(&mut second).unwrap().code, 200);
    // Once one ends, a new connection is served again.
    drop(first);
    let deadline = Instant::now() + TEST_TIMEOUT;
    loop {
        let mut stream = connect(addr);
        let _ = stream.write_all(&get(""));
        if let Some(response) = read_response(&mut stream) {
            assert_eq!(response.code, 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection was accepted again"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

// ----- serve_threads ------------------------------------------------------------

#[test]
fn serve_threads_answers_every_request_from_several_loops() {
    const REQUESTS: usize = 200;
    const CLIENTS: usize = 4;
    let servers = serve_threads(2, 0, Some("127.0.0.1"), || {
        HttpServer::from_fn(|_request, connection| {
            let mut headers = HttpHeaders::new();
            let name = thread::current().name().unwrap_or("?").to_string();
            headers.insert("X-Thread", name);
            respond(connection, headers, b"ok".to_vec());
        })
    })
    .unwrap();
    assert_eq!(servers.threads(), 2);
    let addr = SocketAddr::from(([127, 0, 0, 1], servers.port()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let seen = seen.clone();
            thread::spawn(move || {
                for _ in 0..REQUESTS / CLIENTS {
                    let response = fetch(addr, &get("Connection: close\r\n"));
                    assert_eq!((response.code, response.body.as_slice()), (200, &b"ok"[..]));
                    let name = response.header("X-Thread").unwrap().to_string();
                    seen.lock().unwrap().push(name);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), REQUESTS);
    assert!(
        seen.iter().all(|n| n.starts_with("whirl-http-")),
        "{seen:?}"
    );
    // Linux spreads SO_REUSEPORT connections by a hash of the client's
    // port: with 200 connections both loops get some (the chance that one
    // gets none is 2^-199). Other systems may give all to one socket.
    if cfg!(target_os = "linux") {
        for name in ["whirl-http-0", "whirl-http-1"] {
            assert!(seen.iter().any(|n| n == name), "{name} served nothing");
        }
    }
    servers.stop();
    servers.join().unwrap();
}

#[test]
fn serve_threads_stop_lets_the_response_in_flight_finish() {
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let servers = serve_threads(1, 0, Some("127.0.0.1"), move || {
        let started = started_tx.lock().unwrap().clone();
        HttpServer::from_fn(move |_request, connection| {
            let _ = started.send(());
            let connection = connection.clone();
            IoLoop::current().call_later(Duration::from_millis(200), move || {
                respond(&connection, HttpHeaders::new(), b"late".to_vec());
            });
        })
    })
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], servers.port()));
    let mut stream = connect(addr);
    stream.write_all(&get("")).unwrap();
    started_rx.recv_timeout(TEST_TIMEOUT).unwrap();
    servers.stop();
    let response = read_response(&mut stream).expect("the response in flight");
    assert_eq!(response.body, b"late");
    assert!(closed_silently(&mut stream));
    servers.join().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "still listening");
}

#[test]
fn serve_threads_reports_a_port_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = serve_threads(2, port, Some("127.0.0.1"), echo_app).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
}

// ----- Date ---------------------------------------------------------------------

#[test]
fn responses_carry_a_current_date() {
    let (_servers, addr) = serve(echo_app);
    let response = fetch(addr, &get(""));
    assert_eq!(response.count("Date"), 1);
    let value = response.header("Date").unwrap();
    assert_eq!(value.len(), 29, "{value}");
    assert!(value.ends_with(" GMT"), "{value}");
    let date = parse_http_date(value).expect("an IMF-fixdate");
    let now = SystemTime::now();
    let skew = now.duration_since(date).unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(5), "{value} is not now");
}

#[test]
fn a_date_set_by_the_handler_is_kept() {
    const DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    let (_servers, addr) = serve(|| {
        HttpServer::from_fn(|_request, connection| {
            let mut headers = HttpHeaders::new();
            headers.insert("date", DATE);
            respond(connection, headers, Vec::new());
        })
    });
    let response = fetch(addr, &get(""));
    assert_eq!(response.count("Date"), 1);
    assert_eq!(response.header("Date"), Some(DATE));
}
