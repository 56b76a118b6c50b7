//! The access log: one line per finished request, in Tornado's format
//! `200 GET /path (127.0.0.1) 0.42ms`, at `info` for success, `warn` for 4xx
//! and `error` for 5xx. A process has one logger, so this test has its own
//! file (its own test binary).

mod support;

use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use support::{block_until, connect, read_response, respond, spawn_server};
use whirl_httpserver::HttpServer;

/// Records every `whirl::access` line.
struct Capture {
    /// Level and message of each line, in order.
    lines: Mutex<Vec<(Level, String)>>,
}

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "whirl::access"
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            self.lines
                .lock()
                .unwrap()
                .push((record.level(), record.args().to_string()));
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture {
    lines: Mutex::new(Vec::new()),
};

/// Checks `line` against `CODE METHOD TARGET (IP) N.NNms` for the expected
/// first parts; returns the duration in milliseconds.
fn parse_line(line: &str, expected_prefix: &str) -> f64 {
    let rest = line
        .strip_prefix(expected_prefix)
        .unwrap_or_else(|| panic!("{line:?} does not start with {expected_prefix:?}"));
    let ms = rest
        .strip_prefix(' ')
        .and_then(|r| r.strip_suffix("ms"))
        .unwrap_or_else(|| panic!("{line:?}: no ' N.NNms' at the end"));
    let (whole, fraction) = ms
        .split_once('.')
        .unwrap_or_else(|| panic!("{line:?}: no decimal point"));
    assert!(
        !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()),
        "{line:?}"
    );
    assert!(
        fraction.len() == 2 && fraction.bytes().all(|b| b.is_ascii_digit()),
        "{line:?}: two decimals expected"
    );
    ms.parse().expect("a number")
}

#[test]
fn access_log_lines_follow_tornado_format_and_levels() {
    log::set_logger(&CAPTURE).expect("the only logger in this binary");
    log::set_max_level(LevelFilter::Trace);
    let server = spawn_server(|| {
        HttpServer::from_fn(|request, connection| {
            let code = match request.path() {
                "/missing" => 404,
                "/boom" => 500,
                _ => 200,
            };
            respond(connection, &request, code, b"body".to_vec());
        })
    });
    let mut stream = connect(server.addr);
    for (method, target) in [
        ("GET", "/path"),
        ("POST", "/form?a=1&b=2"),
        ("GET", "/missing"),
        ("DELETE", "/boom"),
    ] {
        std::io::Write::write_all(
            &mut stream,
            format!("{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .unwrap();
        read_response(&mut stream, false).unwrap();
    }
    // A line is logged as the response finishes, which may be just after
    // the client has read it.
    block_until("four access log lines", || {
        CAPTURE.lines.lock().unwrap().len() >= 4
    });
    let lines = CAPTURE.lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let expected = [
        (Level::Info, "200 GET /path (127.0.0.1)"),
        (Level::Info, "200 POST /form?a=1&b=2 (127.0.0.1)"),
        (Level::Warn, "404 GET /missing (127.0.0.1)"),
        (Level::Error, "500 DELETE /boom (127.0.0.1)"),
    ];
    for ((level, line), (want_level, prefix)) in lines.iter().zip(expected) {
        assert_eq!(*level, want_level, "{line}");
        let ms = parse_line(line, prefix);
        assert!(ms >= 0.0);
    }
}
