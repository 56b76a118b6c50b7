//! Hostile and malformed requests, as raw bytes, against a whirl web
//! `Application` (routes with path arguments, a form and multipart handler,
//! a streaming upload): request smuggling per RFC 9112 §6.1 and §6.3,
//! request-target forms, `Host`, head limits, percent-encoding, UTF-8 and
//! multipart abuse.
//!
//! Each row of the table asserts the status (or that nothing was sent),
//! whether the connection was closed — an open one must then answer a
//! follow-up request on the same socket with `200`, so its framing of the
//! hostile bytes was right — and that a fresh connection still gets `200`.
//! `httpserver/tests/bad_input.rs` covers the raw `HttpServer`; these rows
//! go through the web layer too (routing, argument decoding, body parsing,
//! streamed bodies, its 404/405/501 answers).

mod support_hardening;

use std::thread;

use support_hardening::{assert_serves, serves, Conn, ReadError, Served};
use whirl::httpserver::Http1ConnectionParams;
use whirl::web::{Application, Context, HandlerResult, RequestHandler, Route, Settings};

/// The table's body limit: 2 MiB, enough for 10,000 small parts.
const MAX_BODY: u64 = 2 * 1024 * 1024;

// ----- the application ------------------------------------------------------

/// `GET /`: `ok`.
struct Root;

impl RequestHandler for Root {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("ok");
        Ok(())
    }
}

/// `/item/<x>`: the decoded path argument.
struct Item;

impl RequestHandler for Item {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let arg = cx.path_arg(0).unwrap_or_default().to_string();
        cx.write(format!("item:{arg}"));
        Ok(())
    }
}

/// `/user/<name>/<id>`: the named path arguments.
struct User;

impl RequestHandler for User {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let name = cx.path_kwarg("name").unwrap_or_default().to_string();
        let id = cx.path_kwarg("id").unwrap_or_default().to_string();
        cx.write(format!("user:{name}:{id}"));
        Ok(())
    }
}

/// `/args`: argument `a` (query or body), or `-`.
struct Args;

impl RequestHandler for Args {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let a = cx.get_argument_or("a", "-")?;
        cx.write(format!("a:{a}"));
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        self.get(cx).await
    }
}

/// `/host`: the request's host.
struct Host;

impl RequestHandler for Host {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let host = cx.request().host().to_string();
        cx.write(format!("host:{host}"));
        Ok(())
    }

    async fn options(&mut self, cx: &mut Context) -> HandlerResult {
        self.get(cx).await
    }
}

/// `POST /form`: how many body arguments (values) and files arrived, and
/// the body's length.
struct Form;

impl RequestHandler for Form {
    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        let request = cx.request();
        let fields: usize = request.body_arguments.values().map(Vec::len).sum();
        let files: usize = request.files.values().map(Vec::len).sum();
        let len = request.body.len();
        cx.write(format!("fields={fields} files={files} len={len}"));
        Ok(())
    }
}

/// `POST|PUT /upload`: a streamed body, counted as it arrives.
#[derive(Default)]
struct Upload {
    /// Bytes received so far.
    received: usize,
}

impl RequestHandler for Upload {
    const STREAM_REQUEST_BODY: bool = true;

    async fn data_received(&mut self, _cx: &mut Context, chunk: Vec<u8>) -> HandlerResult {
        self.received += chunk.len();
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write(format!("received={}", self.received));
        Ok(())
    }

    async fn put(&mut self, cx: &mut Context) -> HandlerResult {
        self.post(cx).await
    }
}

/// `POST /closed`: a streamed upload refused in `prepare`, before its body
/// is read.
struct Closed;

impl RequestHandler for Closed {
    const STREAM_REQUEST_BODY: bool = true;

    async fn prepare(&mut self, _cx: &mut Context) -> HandlerResult {
        Err(whirl::web::HttpError::new(403))
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("not reached");
        Ok(())
    }
}

/// The application every row is sent to.
fn application() -> Application {
    Application::with_settings(
        vec![
            Route::new("/", || Root),
            Route::new("/item/([^/]+)", || Item),
            Route::new(r"/user/(?P<name>[^/]+)/(?P<id>\d+)", || User),
            Route::new("/args", || Args),
            Route::new("/host", || Host),
            Route::new("/form", || Form),
            Route::new("/upload", Upload::default),
            Route::new("/closed", || Closed),
        ],
        Settings {
            http: Http1ConnectionParams {
                max_body_size: MAX_BODY,
                ..Http1ConnectionParams::default()
            },
            ..Settings::default()
        },
    )
}

// ----- the table ------------------------------------------------------------

/// What a row expects back.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// A response with this status.
    Status(u16),
    /// `200` with exactly this body.
    Body(&'static str),
}

/// One row.
#[derive(Debug)]
struct Row {
    /// What the row checks.
    name: &'static str,
    /// The raw request bytes.
    request: Vec<u8>,
    /// The expected answer.
    want: Want,
    /// Whether the server must close the connection afterwards.
    closes: bool,
}

/// A row.
fn row(name: &'static str, request: impl Into<Vec<u8>>, want: Want, closes: bool) -> Row {
    Row {
        name,
        request: request.into(),
        want,
        closes,
    }
}

/// A 400 and a closed connection (the framing cannot be trusted).
fn refused(name: &'static str, request: impl Into<Vec<u8>>) -> Row {
    row(name, request, Want::Status(400), true)
}

/// A 400 from the web layer on a connection that stays usable (the
/// message was framed correctly; its content was bad).
fn rejected(name: &'static str, request: impl Into<Vec<u8>>) -> Row {
    row(name, request, Want::Status(400), false)
}

/// `200` with `body`, the connection kept.
fn served(name: &'static str, request: impl Into<Vec<u8>>, body: &'static str) -> Row {
    row(name, request, Want::Body(body), false)
}

/// A GET of `target` with `headers` (each ending in CRLF) after `Host: x`.
fn get(target: &str, headers: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").into_bytes()
}

/// A POST to `target` with `headers` after `Host: x`, then `body`.
fn post(target: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("POST {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").into_bytes();
    out.extend_from_slice(body);
    out
}

/// A chunked POST to `target` whose body framing is `body`, with extra
/// `headers`.
fn chunked(target: &str, headers: &str, body: &str) -> Vec<u8> {
    post(
        target,
        &format!("Transfer-Encoding: chunked\r\n{headers}"),
        body.as_bytes(),
    )
}

/// A form POST to `/form` with `content_type` and `body` (framed by
/// Content-Length).
fn form(content_type: &str, body: &[u8]) -> Vec<u8> {
    post(
        "/form",
        &format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ),
        body,
    )
}

/// A multipart body of `parts` (name, filename, content) with `boundary`,
/// closed by the final delimiter when `close` is set.
fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &str)], close: bool) -> Vec<u8> {
    let mut body = String::new();
    for (name, filename, content) in parts {
        body.push_str(&format!("--{boundary}\r\n"));
        match filename {
            Some(f) => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                 Content-Type: text/plain\r\n"
            )),
            None => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"\r\n"
            )),
        }
        body.push_str(&format!("\r\n{content}\r\n"));
    }
    if close {
        body.push_str(&format!("--{boundary}--\r\n"));
    }
    body.into_bytes()
}

/// `n` small text parts.
fn many_parts(boundary: &str, n: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(n * 48);
    for _ in 0..n {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// The multipart content type with `boundary`.
const MP: &str = "multipart/form-data; boundary=B0UND";

/// Every row.
fn rows() -> Vec<Row> {
    let long_target = format!("/item/{}", "a".repeat(9 * 1024));
    let long_name = format!("X-{}: v\r\n", "n".repeat(70 * 1024));
    let headers_101: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let headers_99: String = (0..99).map(|i| format!("X-H{i}: v\r\n")).collect();
    let big_cookie = format!("Cookie: c={}\r\n", "v".repeat(65 * 1024));
    let args_1001: String = (0..1001)
        .map(|i| format!("x{i}=1"))
        .collect::<Vec<_>>()
        .join("&");
    let two_files = multipart(
        "B0UND",
        &[
            ("note", None, "hello"),
            ("f", Some("a.txt"), "file one"),
            ("f", Some("b.txt"), "file two"),
        ],
        true,
    );
    let unterminated = multipart("B0UND", &[("a", None, "no end in sight")], false);
    let upload_over_limit = format!("Content-Length: {}\r\n", MAX_BODY + 1);
    vec![
        // --- smuggling: Transfer-Encoding with Content-Length (RFC 9112 §6.1, §6.3) ---
        refused(
            "TE chunked with Content-Length",
            chunked("/form", "Content-Length: 5\r\n", "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
        ),
        refused(
            "Content-Length before TE chunked",
            post(
                "/form",
                "Content-Length: 44\r\nTransfer-Encoding: chunked\r\n",
                b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
            ),
        ),
        refused(
            "TE chunked with Content-Length 0 on the streaming route",
            chunked("/upload", "Content-Length: 0\r\n", "5\r\nhello\r\n0\r\n\r\n"),
        ),
        // --- smuggling: obfuscated Transfer-Encoding ---
        refused(
            "Transfer-Encoding: chunked, identity (chunked not last)",
            post("/form", "Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n"),
        ),
        refused(
            "chunked then identity in two headers",
            post(
                "/form",
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
                b"0\r\n\r\n",
            ),
        ),
        refused(
            "Transfer-Encoding : chunked (space before the colon)",
            post("/form", "Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"),
        ),
        refused(
            "Transfer-Encoding<TAB>: chunked",
            post("/form", "Transfer-Encoding\t: chunked\r\n", b"0\r\n\r\n"),
        ),
        refused(
            "vertical tab before the value",
            post("/form", "Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n"),
        ),
        refused(
            "vertical tab after the value",
            post("/form", "Transfer-Encoding: chunked\x0b\r\n", b"0\r\n\r\n"),
        ),
        refused(
            "form feed in the value",
            post("/form", "Transfer-Encoding: \x0cchunked\r\n", b"0\r\n\r\n"),
        ),
        refused(
            "Transfer-Encoding folded onto a continuation line",
            post(
                "/form",
                "X-Pad: a\r\n\tTransfer-Encoding: chunked\r\n",
                b"0\r\n\r\n",
            ),
        ),
        refused(
            "Transfer-Encoding value on an obs-fold line",
            post("/form", "Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n"),
        ),
        refused(
            "Transfer-Encoding header starting with a space",
            "POST /form HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\n\r\n0\r\n\r\n",
        ),
        refused(
            "chunked repeated (chunked, chunked)",
            post("/form", "Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"),
        ),
        row(
            "unknown coding xchunked → 501",
            post("/form", "Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"),
            Want::Status(501),
            true,
        ),
        row(
            "quoted \"chunked\" is not chunked → 501",
            post("/form", "Transfer-Encoding: \"chunked\"\r\n", b"0\r\n\r\n"),
            Want::Status(501),
            true,
        ),
        served(
            "a tab as the whitespace around a TE value is fine",
            post(
                "/form",
                "Transfer-Encoding:\tchunked\t\r\nContent-Type: application/x-www-form-urlencoded\r\n",
                b"3\r\na=1\r\n0\r\n\r\n",
            ),
            "fields=1 files=0 len=3",
        ),
        served(
            "Transfer-Encoding: CHUNKED is chunked",
            post(
                "/form",
                "Transfer-Encoding: CHUNKED\r\nContent-Type: application/x-www-form-urlencoded\r\n",
                b"3\r\na=1\r\n0\r\n\r\n",
            ),
            "fields=1 files=0 len=3",
        ),
        // --- smuggling: CR, NUL ---
        refused(
            "CR without LF inside a header line",
            post("/form", "Transfer-Encoding: chunked\rX-A: b\r\n", b"0\r\n\r\n"),
        ),
        refused(
            "CR without LF ends the request line",
            "GET / HTTP/1.1\rHost: x\r\n\r\n",
        ),
        refused(
            "CR without LF after a chunk size",
            chunked("/form", "", "3\ra=1\r\n0\r\n\r\n"),
        ),
        refused("NUL in the method", "G\0ET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("NUL in the target", "GET /item/a\0b HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("NUL in a header name", get("/", "X-A\0B: 1\r\n")),
        refused("NUL in a header value", get("/", "X-A: 1\0\r\n")),
        refused("NUL in the Host value", "GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n"),
        refused(
            "NUL in a chunk size",
            chunked("/form", "", "3\0\r\na=1\r\n0\r\n\r\n"),
        ),
        served(
            "NUL bytes inside a body are data",
            post("/upload", "Content-Length: 4\r\n", b"\0\0\0\0"),
            "received=4",
        ),
        // --- smuggling: Content-Length ---
        refused(
            "two different Content-Length headers",
            post("/form", "Content-Length: 3\r\nContent-Length: 4\r\n", b"a=12"),
        ),
        refused(
            "Content-Length list 3, 4",
            post("/form", "Content-Length: 3, 4\r\n", b"a=12"),
        ),
        refused(
            "negative Content-Length",
            post("/form", "Content-Length: -3\r\n", b"a=1"),
        ),
        refused(
            "hex Content-Length 0x3",
            post("/form", "Content-Length: 0x3\r\n", b"a=1"),
        ),
        refused(
            "Content-Length 3.0",
            post("/form", "Content-Length: 3.0\r\n", b"a=1"),
        ),
        refused(
            "Content-Length with a sign",
            post("/form", "Content-Length: +3\r\n", b"a=1"),
        ),
        refused(
            "Content-Length that overflows u64",
            post(
                "/form",
                "Content-Length: 18446744073709551616\r\n",
                b"a=1",
            ),
        ),
        served(
            "Content-Length with leading zeros is a number",
            post(
                "/form",
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 003\r\n",
                b"a=1",
            ),
            "fields=1 files=0 len=3",
        ),
        row(
            "Content-Length over max_body_size → 413 before the body",
            post("/form", "Content-Length: 99999999\r\n", b"a=1"),
            Want::Status(413),
            true,
        ),
        row(
            "streamed upload over max_body_size → 413",
            post("/upload", &upload_over_limit, b"a"),
            Want::Status(413),
            true,
        ),
        // --- smuggling: chunk sizes ---
        refused(
            "chunk size that overflows u64",
            chunked("/upload", "", "10000000000000000\r\nab\r\n0\r\n\r\n"),
        ),
        refused(
            "chunk size of 40 hex digits",
            chunked(
                "/upload",
                "",
                "ffffffffffffffffffffffffffffffffffffffff\r\nab\r\n0\r\n\r\n",
            ),
        ),
        row(
            "chunk size u64::MAX → 413, nothing allocated",
            chunked("/upload", "", "ffffffffffffffff\r\nab\r\n0\r\n\r\n"),
            Want::Status(413),
            true,
        ),
        refused(
            "negative chunk size",
            chunked("/upload", "", "-5\r\nhello\r\n0\r\n\r\n"),
        ),
        refused(
            "chunk size with 0x",
            chunked("/upload", "", "0x5\r\nhello\r\n0\r\n\r\n"),
        ),
        refused(
            "chunk longer than its size",
            chunked("/upload", "", "3\r\nhello\r\n0\r\n\r\n"),
        ),
        served(
            "chunked upload with extensions and trailers",
            chunked(
                "/upload",
                "",
                "5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
            ),
            "received=11",
        ),
        row(
            "Transfer-Encoding: identity (no longer a coding) → 501",
            post("/upload", "Transfer-Encoding: identity\r\n", b"hello"),
            Want::Status(501),
            true,
        ),
        served(
            "whitespace after a chunk size is tolerated, as by Tornado and hyper",
            chunked("/upload", "", "5 \r\nhello\r\n0\r\n\r\n"),
            "received=5",
        ),
        served(
            "a chunk size with leading zeros",
            chunked("/upload", "", "0005\r\nhello\r\n0\r\n\r\n"),
            "received=5",
        ),
        row(
            "regression: HTTP/1.0 keep-alive with Transfer-Encoding closes after it (RFC 9112 §6.1)",
            "POST /upload HTTP/1.0\r\nConnection: keep-alive\r\n\
             Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            Want::Body("received=5"),
            true,
        ),
        row(
            "a streamed upload refused in prepare: its body is read and dropped",
            post("/closed", "Content-Length: 5\r\n", b"hello"),
            Want::Status(403),
            false,
        ),
        row(
            "a chunked upload refused in prepare: its body is read and dropped",
            chunked("/closed", "", "5\r\nhello\r\n0\r\n\r\n"),
            Want::Status(403),
            false,
        ),
        row(
            "regression: refused before 100 Continue, the body never sent → 403 and close",
            post(
                "/closed",
                "Content-Length: 5\r\nExpect: 100-continue\r\n",
                b"",
            ),
            Want::Status(403),
            true,
        ),
        served(
            "a GET with a body: the body is read, the connection in step",
            [get("/", "Content-Length: 5\r\n"), b"hello".to_vec()].concat(),
            "ok",
        ),
        // --- request-target forms (RFC 9112 §3.2) ---
        served(
            "absolute-form is routed on its path",
            "GET http://x/item/abs HTTP/1.1\r\nHost: x\r\n\r\n",
            "item:abs",
        ),
        served(
            "absolute-form authority wins over Host (RFC 9112 §3.2.2)",
            "GET http://target.example/host HTTP/1.1\r\nHost: header.example\r\n\r\n",
            "host:target.example",
        ),
        served(
            "absolute-form without a path is /",
            "GET http://x HTTP/1.1\r\nHost: x\r\n\r\n",
            "ok",
        ),
        row(
            "asterisk-form OPTIONS * → 404 (no route is *)",
            "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            Want::Status(404),
            false,
        ),
        // Tornado routes whatever target it is given; none of these can
        // reach a route meant for another path.
        row(
            "asterisk-form with GET → 404, as in Tornado",
            "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
            Want::Status(404),
            false,
        ),
        row(
            "a target without its leading slash → 404, as in Tornado",
            "GET item/a HTTP/1.1\r\nHost: x\r\n\r\n",
            Want::Status(404),
            false,
        ),
        served(
            "a fragment in the target is part of the path, as in Tornado",
            "GET /item/a#frag HTTP/1.1\r\nHost: x\r\n\r\n",
            "item:a#frag",
        ),
        // --- Host ---
        refused("HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n"),
        refused("two Host headers", get("/", "Host: y\r\n")),
        refused("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
        refused("Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
        refused(
            "Host with user info",
            "GET / HTTP/1.1\r\nHost: user@evil.example\r\n\r\n",
        ),
        served(
            "Host with letters after a colon passes Tornado's host ABNF",
            "GET /host HTTP/1.1\r\nHost: x:abc\r\n\r\n",
            "host:x:abc",
        ),
        refused(
            "Host with a backslash",
            "GET / HTTP/1.1\r\nHost: evil.example\\x\r\n\r\n",
        ),
        // --- head limits ---
        row(
            "request line over 8 KiB → 414",
            get(&long_target, ""),
            Want::Status(414),
            true,
        ),
        row(
            "a header name over 64 KiB → 431",
            get("/", &long_name),
            Want::Status(431),
            true,
        ),
        row(
            "101 header fields → 431",
            get("/", &headers_101),
            Want::Status(431),
            true,
        ),
        served("100 header fields are fine", get("/", &headers_99), "ok"),
        row(
            "a Cookie header over 64 KiB → 431",
            get("/", &big_cookie),
            Want::Status(431),
            true,
        ),
        rejected(
            "1,001 query arguments",
            get(&format!("/args?{args_1001}"), ""),
        ),
        // --- percent-encoding and UTF-8 in paths and arguments ---
        served(
            "invalid percent-encoding %zz is kept as text (Tornado's unquote)",
            get("/item/%zz", ""),
            "item:%zz",
        ),
        served(
            "a lone % is kept as text",
            get("/item/100%", ""),
            "item:100%",
        ),
        served(
            "a truncated escape %4 is kept as text",
            get("/item/a%4", ""),
            "item:a%4",
        ),
        served(
            "valid percent-encoded UTF-8 is decoded",
            get("/item/caf%C3%A9", ""),
            "item:café",
        ),
        rejected("%FF in a path argument", get("/item/%FF", "")),
        rejected(
            "an overlong UTF-8 encoding of / in a path argument",
            get("/item/%C0%AF", ""),
        ),
        rejected(
            "a UTF-16 surrogate in a path argument",
            get("/item/%ED%A0%80", ""),
        ),
        rejected(
            "invalid UTF-8 in a named path argument",
            get("/user/%FE%FF/7", ""),
        ),
        served(
            "raw UTF-8 in the target is allowed, as in Tornado (WHATWG URLs)",
            b"GET /item/caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "item:café",
        ),
        refused(
            "raw invalid UTF-8 in the target (the request line is not text: 400 and close)",
            b"GET /item/caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        refused(
            "raw invalid UTF-8 in the query (the request line is not text: 400 and close)",
            b"GET /args?a=\xff HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        served(
            "an encoded slash stays inside its path argument",
            get("/item/a%2Fb", ""),
            "item:a/b",
        ),
        rejected("%FF in a query argument value", get("/args?a=%FF", "")),
        rejected("%FF in a query argument name", get("/args?%FF=1", "")),
        served(
            "invalid percent-encoding in a query value is kept",
            get("/args?a=%zz", ""),
            "a:%zz",
        ),
        served(
            "control characters are removed from arguments",
            get("/args?a=x%00%01y", ""),
            "a:xy",
        ),
        rejected(
            "%FF in a form body value",
            post(
                "/args",
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n",
                b"a=%FF",
            ),
        ),
        // --- multipart ---
        served(
            "a well-formed multipart body",
            form(MP, &two_files),
            "fields=1 files=2 len=288",
        ),
        rejected(
            "multipart without a boundary parameter",
            form("multipart/form-data", &two_files),
        ),
        rejected(
            "multipart with an empty boundary",
            form("multipart/form-data; boundary=", &two_files),
        ),
        rejected(
            "multipart with two boundary parameters",
            form(
                "multipart/form-data; boundary=OTHER; boundary=B0UND",
                &two_files,
            ),
        ),
        rejected(
            "multipart body using another boundary",
            form("multipart/form-data; boundary=NOPE", &two_files),
        ),
        rejected(
            "multipart with no final boundary (unterminated part)",
            form(MP, &unterminated),
        ),
        rejected(
            "multipart cut inside a part's headers",
            form(
                MP,
                b"--B0UND\r\nContent-Disposition: form-data; name=\"a\"\r\n--B0UND--\r\n",
            ),
        ),
        rejected(
            "multipart part without Content-Disposition",
            form(MP, b"--B0UND\r\nX-A: 1\r\n\r\nv\r\n--B0UND--\r\n"),
        ),
        rejected(
            "multipart part without a name",
            form(
                MP,
                b"--B0UND\r\nContent-Disposition: form-data\r\n\r\nv\r\n--B0UND--\r\n",
            ),
        ),
        rejected(
            "multipart with 10,000 parts",
            form(MP, &many_parts("B0UND", 10_000)),
        ),
        served(
            "multipart with 100 parts is fine",
            form(MP, &many_parts("B0UND", 100)),
            "fields=100 files=0 len=5611",
        ),
        served(
            "multipart with a duplicated delimiter line (an empty part)",
            form(
                MP,
                b"--B0UND\r\n--B0UND\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--B0UND--\r\n",
            ),
            "fields=1 files=0 len=76",
        ),
        rejected(
            "multipart part header over 10 KiB",
            form(
                MP,
                format!(
                    "--B0UND\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: {}\r\n\r\nv\r\n--B0UND--\r\n",
                    "p".repeat(11 * 1024)
                )
                .as_bytes(),
            ),
        ),
        rejected(
            "Content-Type multipart/form-dataxyz",
            form("multipart/form-dataxyz; boundary=B0UND", &two_files),
        ),
        // --- methods and versions through the web layer ---
        row(
            "unknown method → 501",
            "BREW /item/a HTTP/1.1\r\nHost: x\r\n\r\n",
            Want::Status(501),
            false,
        ),
        row(
            "lowercase method is another method → 501",
            "get / HTTP/1.1\r\nHost: x\r\n\r\n",
            Want::Status(501),
            false,
        ),
        row(
            "known method the route lacks → 405",
            "DELETE /item/a HTTP/1.1\r\nHost: x\r\n\r\n",
            Want::Status(405),
            false,
        ),
        refused(
            "invalid method token",
            "GE(T / HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        row(
            "HTTP/2.0 → 505",
            "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
            Want::Status(505),
            true,
        ),
        row(
            "unrouted path → 404 and the connection kept",
            get("/nowhere", ""),
            Want::Status(404),
            false,
        ),
    ]
}

/// Checks one row; returns what went wrong, if anything.
fn check(addr: std::net::SocketAddr, row: &Row) -> Result<(), String> {
    let mut conn = Conn::connect(addr);
    conn.send(&row.request);
    let method = String::from_utf8_lossy(&row.request)
        .split(' ')
        .next()
        .unwrap_or("GET")
        .to_string();
    let response = match conn.read_response(&method) {
        Ok(response) => response,
        Err(ReadError::Closed(got)) => {
            return Err(format!(
                "no response, closed after {:?}",
                String::from_utf8_lossy(&got)
            ))
        }
        Err(e) => return Err(format!("{e:?}")),
    };
    match row.want {
        Want::Status(status) if response.status != status => {
            return Err(format!(
                "expected {status}, got {:?} {:?}",
                response.status_line,
                response.text()
            ));
        }
        Want::Body(body) if response.status != 200 || response.body != body.as_bytes() => {
            return Err(format!(
                "expected 200 {body:?}, got {:?} {:?}",
                response.status_line,
                response.text()
            ));
        }
        _ => {}
    }
    let closed = if response.close_delimited {
        true
    } else {
        conn.probe_closed()?
    };
    if closed != row.closes {
        return Err(format!(
            "expected the connection {} after {:?}",
            if row.closes { "closed" } else { "kept open" },
            response.status_line
        ));
    }
    // Nothing else is hurt: a fresh connection is served.
    serves(addr)
}

#[test]
fn hostile_requests_through_the_web_layer() {
    let table = rows();
    assert!(table.len() >= 60, "only {} rows", table.len());
    let server = Served::start(|| application().listen(0, Some("127.0.0.1")));
    // Rows are independent connections: run them side by side.
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = table
            .iter()
            .map(|row| {
                let addr = server.addr;
                scope.spawn(move || check(addr, row).err().map(|e| format!("{}: {e}", row.name)))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().expect("a row panicked"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
    assert_serves(server.addr);
    // And no connection is left behind.
    assert!(server.drains(), "connections left open after the table");
}
