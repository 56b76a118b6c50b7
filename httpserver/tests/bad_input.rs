//! Hostile and malformed requests over loopback, as raw bytes: each row gets
//! a clear status (or a silent close), the connection is closed where the
//! protocol requires, and a fresh connection is still served afterwards.
//!
//! The server is the raw closure server (no web layer), so an unknown but
//! well-formed method is answered 200 here; 501/405 are the web layer's.
//! Where RFC 9112 and Tornado disagree the RFC wins, and the row says so.

mod support;

use std::io::Write;
use std::net::Shutdown;
use std::thread;

use support::{assert_serves, exchange, hello_server, status_line, TestServer};
use whirl_httpserver::Http1ConnectionParams;

/// The body limit of the table's server (small, so 413 rows are cheap).
const MAX_BODY: u64 = 1024;

/// What a row expects back.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Exactly `HTTP/1.1 CODE Reason\r\n\r\n`: a bare refusal from the
    /// connection, nothing else.
    Bare(&'static str),
    /// A response with this status line (from the request layer, which adds
    /// a small HTML page).
    Status(&'static str),
    /// 200 with this body.
    Ok(&'static [u8]),
}

/// One row of the table.
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

/// A bare 400 and close.
fn bad(name: &'static str, request: impl Into<Vec<u8>>) -> Row {
    row(name, request, E400, true)
}

/// A chunked POST whose body framing is `body`.
fn chunked(body: &str) -> String {
    format!("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
}

/// A GET with `headers` (each ending in CRLF) after `Host: x`.
fn get_with(headers: &str) -> String {
    format!("GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n")
}

/// A POST with `headers` after `Host: x`, then `body`.
fn post_with(headers: &str, body: &str) -> String {
    format!("POST /p HTTP/1.1\r\nHost: x\r\n{headers}\r\n{body}")
}

const HELLO: &[u8] = b"Hello, world";
const E400: Want = Want::Bare("HTTP/1.1 400 Bad Request");
const E413: Want = Want::Bare("HTTP/1.1 413 Content Too Large");
const E414: Want = Want::Bare("HTTP/1.1 414 URI Too Long");
const E431: Want = Want::Bare("HTTP/1.1 431 Request Header Fields Too Large");
const E501: Want = Want::Bare("HTTP/1.1 501 Not Implemented");
const E505: Want = Want::Bare("HTTP/1.1 505 HTTP Version Not Supported");

/// The table.
fn rows() -> Vec<Row> {
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9 * 1024));
    let long_unfinished_line = format!("GET /{}", "a".repeat(9 * 1024));
    let headers_100: String = (1..100).map(|i| format!("X-{i}: v\r\n")).collect();
    let headers_101: String = (1..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let big_block: String = (0..80)
        .map(|i| format!("X-Pad-{i}: {}\r\n", "a".repeat(900)))
        .collect();
    let huge_value = format!("X-Huge: {}\r\n", "a".repeat(70 * 1024));
    let query = |n: usize| {
        (0..n)
            .map(|i| format!("a={i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let (query_1001, query_1000) = (query(1001), query(1000));
    vec![
        // --- the request line (Tornado checklist 1–3) ---
        bad("malformed request line", "asdf\r\n\r\n"),
        bad("method only", "GET\r\n\r\n"),
        bad("HTTP/0.9-style line without a version", "GET /\r\n\r\n"),
        bad("extra token after the version", "GET / HTTP/1.1 x\r\nHost: x\r\n\r\n"),
        bad("two spaces between parts", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n"),
        bad("tabs as separators", "GET\t/\tHTTP/1.1\r\nHost: x\r\n\r\n"),
        bad(
            "regression: a space inside the target is 400, not 505",
            "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        bad("control character in the target", "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n"),
        bad("invalid method token FOO,BAR", "FOO,BAR / HTTP/1.1\r\nHost: x\r\n\r\n"),
        bad("invalid method token with (", "GE(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
        bad("lowercase http/1.1", "GET / http/1.1\r\nHost: x\r\n\r\n"),
        bad("version with trailing junk", "GET / HTTP/1.1x\r\nHost: x\r\n\r\n"),
        bad(
            "TLS ClientHello on the plain port",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n".to_vec(),
        ),
        row(
            "unknown but valid method is not an error at this layer",
            "FOO / HTTP/1.1\r\nHost: x\r\n\r\n",
            Want::Ok(HELLO),
            false,
        ),
        row("HTTP/2.0 → 505", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", E505, true),
        row("HTTP/1.2 → 505", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", E505, true),
        row("HTTP/3.0 → 505", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", E505, true),
        row(
            "HTTP/2 connection preface → 505",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            E505,
            true,
        ),
        row("request line over 8 KiB → 414", long_target, E414, true),
        row(
            "unfinished request line over 8 KiB → 414 at once",
            long_unfinished_line,
            E414,
            true,
        ),
        row(
            "absolute-form target is served",
            "GET http://x/p HTTP/1.1\r\nHost: x\r\n\r\n",
            Want::Ok(HELLO),
            false,
        ),
        // --- line endings (7, 8) ---
        row(
            "bare LF line endings on 1.0",
            "GET / HTTP/1.0\n\n",
            Want::Ok(HELLO),
            true,
        ),
        row(
            "bare LF line endings on 1.1",
            "GET / HTTP/1.1\nHost: x\n\n",
            Want::Ok(HELLO),
            false,
        ),
        row(
            "one leading CRLF is ignored",
            "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            Want::Ok(HELLO),
            false,
        ),
        row(
            "rfc: several leading empty lines are ignored too (Tornado: 400)",
            "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            Want::Ok(HELLO),
            false,
        ),
        bad("CR without LF ends a line", "GET / HTTP/1.1\rHost: x\r\n\r\n"),
        // --- header lines (4–6) ---
        bad("header without a colon", get_with("NoColon\r\n")),
        bad("space before the colon", get_with("X-A : 1\r\n")),
        bad("tab before the colon", get_with("X-A\t: 1\r\n")),
        bad("empty header name", get_with(": 1\r\n")),
        bad("invalid character in a header name", get_with("X(A): 1\r\n")),
        bad("NUL in a header value", get_with("X-A: a\x00b\r\n")),
        bad("CR inside a header value", get_with("X-A: a\rb\r\n")),
        bad("DEL in a header value", get_with("X-A: a\x7fb\r\n")),
        bad("control character in a header value", get_with("X-A: a\x01b\r\n")),
        bad("bare LF inside a header value", get_with("X-A: a\nb\r\n")),
        bad("obs-fold continuation line", get_with("X-A: 1\r\n 2\r\n")),
        bad(
            "first header line starts with whitespace",
            "GET / HTTP/1.1\r\n Host: x\r\n\r\n",
        ),
        row(
            "obs-text (Latin-1) in a value is allowed",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\xe9\r\n\r\n".to_vec(),
            Want::Ok(HELLO),
            false,
        ),
        // --- Host (9, 10) ---
        bad("HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n"),
        row(
            "HTTP/1.0 without Host is fine",
            "GET / HTTP/1.0\r\n\r\n",
            Want::Ok(HELLO),
            true,
        ),
        bad("two Host headers", get_with("Host: y\r\n")),
        bad(
            "Host containing whitespace",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        ),
        bad(
            "Host holding a list",
            "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n",
        ),
        // --- head limits (22: RFC, 431 instead of a silent close) ---
        row(
            "exactly 100 header fields is fine",
            get_with(&headers_100),
            Want::Ok(HELLO),
            false,
        ),
        row(
            "101 header fields → 431",
            get_with(&headers_101),
            E431,
            true,
        ),
        row(
            "rfc: header block over 64 KiB → 431",
            get_with(&big_block),
            E431,
            true,
        ),
        row(
            "rfc: one header value over 64 KiB → 431",
            get_with(&huge_value),
            E431,
            true,
        ),
        // --- Content-Length (19, 20, 23) ---
        bad("Content-Length foo", post_with("Content-Length: foo\r\n", "")),
        bad("Content-Length +10", post_with("Content-Length: +10\r\n", "")),
        bad("Content-Length -1", post_with("Content-Length: -1\r\n", "")),
        bad("Content-Length 1_0", post_with("Content-Length: 1_0\r\n", "")),
        bad("Content-Length 0x10", post_with("Content-Length: 0x10\r\n", "")),
        bad("empty Content-Length", post_with("Content-Length:\r\n", "")),
        bad(
            "rfc: Content-Length 5, 5 (Tornado merges equal values)",
            post_with("Content-Length: 5, 5\r\n", "hello"),
        ),
        bad(
            "Content-Length 4, 5",
            post_with("Content-Length: 4, 5\r\n", "hello"),
        ),
        bad(
            "two Content-Length headers",
            post_with("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
        ),
        bad(
            "Content-Length that overflows u64",
            post_with("Content-Length: 99999999999999999999999\r\n", ""),
        ),
        row(
            "whitespace around a Content-Length value is allowed",
            post_with("Content-Length:  5 \r\n", "hello"),
            Want::Ok(b"hello"),
            false,
        ),
        row(
            "rfc: Content-Length over max_body_size → 413 before the body",
            post_with("Content-Length: 2048\r\n", "only the start of it"),
            E413,
            true,
        ),
        row(
            "Expect: 100-continue with an oversized body → 413, no 100",
            post_with("Content-Length: 2048\r\nExpect: 100-continue\r\n", ""),
            E413,
            true,
        ),
        // --- Transfer-Encoding (11, 16–18, 21) ---
        bad(
            "Transfer-Encoding with Content-Length",
            post_with(
                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                "0\r\n\r\n",
            ),
        ),
        bad(
            "chunked not last: chunked, identity",
            post_with("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"),
        ),
        bad(
            "chunked repeated in one header",
            post_with("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"),
        ),
        bad(
            "chunked repeated in two headers",
            post_with(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
        ),
        bad(
            "space before the colon of Transfer-Encoding",
            post_with("Transfer-Encoding : chunked\r\n", "0\r\n\r\n"),
        ),
        row(
            "final coding gzip → 501",
            post_with("Transfer-Encoding: gzip\r\n", ""),
            E501,
            true,
        ),
        row(
            "gzip, chunked → 501",
            post_with("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
            E501,
            true,
        ),
        row(
            "chunked body is decoded",
            chunked("4\r\nfoo=\r\n3\r\nbar\r\n0\r\n\r\n"),
            Want::Ok(b"foo=bar"),
            false,
        ),
        row(
            "Transfer-Encoding: Chunked is case-insensitive",
            "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            Want::Ok(b"abc"),
            false,
        ),
        row(
            "chunked on HTTP/1.0 is accepted",
            "POST /c HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            Want::Ok(b"abc"),
            true,
        ),
        row(
            "chunked framing with bare LF",
            chunked("3\nabc\n0\n\n"),
            Want::Ok(b"abc"),
            false,
        ),
        // --- chunks (12–15, 24) ---
        bad("chunk size 1_a", chunked("1_a\r\nabcdefghij\r\n0\r\n\r\n")),
        bad("chunk size zz", chunked("zz\r\nab\r\n0\r\n\r\n")),
        bad("negative chunk size", chunked("-1\r\nab\r\n0\r\n\r\n")),
        bad("empty chunk size", chunked("\r\nab\r\n0\r\n\r\n")),
        bad(
            "missing CRLF after chunk data",
            chunked("3\r\nabcX0\r\n\r\n"),
        ),
        bad(
            "chunk size that overflows u64 → 400",
            chunked("fffffffffffffffffff\r\nab\r\n0\r\n\r\n"),
        ),
        row(
            "huge chunk size → 413 before any allocation",
            chunked("fffffffffffffff\r\nab\r\n0\r\n\r\n"),
            E413,
            true,
        ),
        row(
            "chunked total over max_body_size → 413",
            chunked(&format!(
                "300\r\n{a}\r\n300\r\n{a}\r\n0\r\n\r\n",
                a = "a".repeat(0x300)
            )),
            E413,
            true,
        ),
        row(
            "rfc: chunk extensions are accepted and ignored",
            chunked("4;ext=1\r\nabcd\r\n0;last\r\n\r\n"),
            Want::Ok(b"abcd"),
            false,
        ),
        row(
            "rfc: quoted chunk extension",
            chunked("4;name=\"v a;l\"\r\nabcd\r\n0\r\n\r\n"),
            Want::Ok(b"abcd"),
            false,
        ),
        bad(
            "control character in a chunk extension",
            chunked("4;e\x01x\r\nabcd\r\n0\r\n\r\n"),
        ),
        row(
            "rfc: trailers are accepted",
            chunked("4\r\nabcd\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n"),
            Want::Ok(b"abcd"),
            false,
        ),
        bad(
            "malformed trailer line",
            chunked("4\r\nabcd\r\n0\r\nno colon here\r\n\r\n"),
        ),
        // --- the request layer (28) ---
        row(
            "query with 1001 arguments → 400",
            format!("GET /?{query_1001} HTTP/1.1\r\nHost: x\r\n\r\n"),
            Want::Status("HTTP/1.1 400 Bad Request"),
            true,
        ),
        row(
            "query with 1000 arguments is fine",
            format!("GET /?{query_1000} HTTP/1.1\r\nHost: x\r\n\r\n"),
            Want::Ok(HELLO),
            false,
        ),
    ]
}

/// Checks one row against `server`; returns what went wrong, if anything.
fn check(server: &TestServer, row: &Row) -> Result<(), String> {
    let (reply, closed) = exchange(server.addr, &row.request);
    let text = String::from_utf8_lossy(&reply);
    match row.want {
        Want::Bare(line) => {
            let expected = format!("{line}\r\n\r\n");
            if reply != expected.as_bytes() {
                return Err(format!("expected {expected:?}, got {text:?}"));
            }
        }
        Want::Status(line) => {
            if status_line(&reply) != line {
                return Err(format!("expected {line:?}, got {text:?}"));
            }
        }
        Want::Ok(body) => {
            if status_line(&reply) != "HTTP/1.1 200 OK" || !reply.ends_with(body) {
                return Err(format!(
                    "expected 200 with body {:?}, got {text:?}",
                    String::from_utf8_lossy(body)
                ));
            }
        }
    }
    if closed != row.closes {
        return Err(format!(
            "expected the connection {}, got {text:?}",
            if row.closes { "closed" } else { "kept open" }
        ));
    }
    // Nothing else is hurt: a fresh connection is served.
    support::serves(server.addr)
}

#[test]
fn bad_input_table() {
    let table = rows();
    assert!(table.len() >= 40);
    let server = hello_server(Http1ConnectionParams {
        max_body_size: MAX_BODY,
        ..Http1ConnectionParams::default()
    });
    // Rows are independent connections; run them side by side so the
    // rows that stay open (and are waited on) cost one quiet period, not one
    // each.
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = table
            .iter()
            .map(|row| {
                let server = &server;
                scope.spawn(move || {
                    check(server, row)
                        .err()
                        .map(|e| format!("{}: {e}", row.name))
                })
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
}

#[test]
fn client_that_hangs_up_early_gets_nothing_and_breaks_nothing() {
    let server = hello_server(Http1ConnectionParams::default());
    let partial: [&[u8]; 3] = [
        b"",
        b"GET / HTT",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
    ];
    for request in partial {
        let mut stream = support::connect(server.addr);
        stream.write_all(request).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let reply = support::read_to_close(&mut stream);
        assert!(reply.is_empty(), "{:?}", String::from_utf8_lossy(&reply));
    }
    assert_serves(server.addr);
}
