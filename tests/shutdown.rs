//! Graceful shutdown of the built server examples (issue 9): on `SIGTERM`
//! or `SIGINT` they stop accepting, finish the requests in flight up to a
//! deadline, close idle keep-alive connections and exit 0 — and no request
//! is lost: each gets a whole response, or its connection is refused or
//! closed before any byte of one (what clients may safely retry), never a
//! truncated response. The examples must be built (`cargo test` builds
//! them; with `--test shutdown`, run `cargo build --examples` first).

mod support_process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support_process::{Client, ExampleServer, Outcome};

/// Longer than any drain in these tests, shorter than the examples'
/// 10 s `SHUTDOWN_TIMEOUT`: an exit within it was not a deadline running
/// out.
const EXIT_WAIT: Duration = Duration::from_secs(8);

#[test]
fn every_server_example_exits_0_on_a_signal_closing_idle_keep_alive_connections() {
    let examples: &[(&str, &[&str], &str)] = &[
        ("hello", &[], "TERM"),
        ("blog", &[], "TERM"),
        ("file_server", &["--root", "."], "TERM"),
        ("httpbin", &[], "TERM"),
        ("async_patterns", &[], "TERM"),
        ("whoami", &[], "INT"),
        ("hello_httpserver", &["--threads", "2"], "INT"),
    ];
    for &(name, args, signal) in examples {
        let mut server = ExampleServer::start(name, args);
        // An idle keep-alive connection, after one whole response.
        let mut client = Client::new(server.addr);
        let first = client.get("/", &[]);
        assert!(
            matches!(first, Outcome::Complete { close: false, .. }),
            "{name}: {first:?}"
        );
        server.signal(signal);
        // Waiting out the idle connection would take the 10 s deadline.
        let status = server.wait_exit(EXIT_WAIT);
        let log = server.log_text();
        assert!(
            status.is_some_and(|s| s.success()),
            "{name} after SIG{signal}: {status:?}; log:\n{log}"
        );
        assert!(
            log.contains(&format!("SIG{signal}: stopping gracefully")),
            "{name}: {log}"
        );
        assert!(
            log.contains("shutting down (0 requests in flight)"),
            "{name}: {log}"
        );
        assert!(!log.contains("still busy"), "{name}: {log}");
        // The idle connection was closed; nobody listens any more.
        assert_eq!(client.get("/", &[]), Outcome::ClosedBeforeAnyByte, "{name}");
        assert_eq!(client.get("/", &[]), Outcome::Refused, "{name}");
    }
}

/// What a load worker saw of one request.
#[derive(Debug)]
struct Record {
    /// What became of it.
    outcome: Outcome,
    /// Whether it was sent before the signal and answered after it.
    straddled: bool,
}

/// Sends `path` to `server` from `workers` keep-alive connections without
/// pause, sends `signal` after `before` of it, and returns what every
/// request got once the process exited (asserting it exited 0 in time).
fn load_through_shutdown(
    server: &mut ExampleServer,
    path: &'static str,
    workers: usize,
    before: Duration,
    signal: &str,
) -> Vec<Record> {
    // Step 1. The load.
    let done = Arc::new(AtomicBool::new(false));
    let signalled: Arc<Mutex<Option<Instant>>> = Arc::default();
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let (addr, done, signalled) = (server.addr, done.clone(), signalled.clone());
            thread::spawn(move || {
                let mut client = Client::new(addr);
                let mut records = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    let sent = Instant::now();
                    let outcome = client.get(path, &[]);
                    let straddled = signalled
                        .lock()
                        .unwrap()
                        .is_some_and(|at| sent < at && at < Instant::now());
                    if outcome == Outcome::Refused {
                        thread::sleep(Duration::from_millis(5));
                    }
                    records.push(Record { outcome, straddled });
                }
                records
            })
        })
        .collect();
    // Step 2. The signal, mid-load; then wait for the exit.
    thread::sleep(before);
    *signalled.lock().unwrap() = Some(Instant::now());
    server.signal(signal);
    let status = server.wait_exit(EXIT_WAIT);
    done.store(true, Ordering::SeqCst);
    let records: Vec<Record> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("worker"))
        .collect();
    let log = server.log_text();
    assert!(
        status.is_some_and(|s| s.success()),
        "{} after SIG{signal}: {status:?}; log:\n{log}",
        server.name
    );
    records
}

/// The checks every load-through-shutdown run must pass: nothing
/// truncated, every whole response a `200` with `expect` in it; with
/// `slow` requests, at least one in flight at the signal and answered
/// after it.
fn assert_nothing_lost(server: &ExampleServer, records: &[Record], expect: &str, slow: bool) {
    let log = server.log_text();
    for record in records {
        match &record.outcome {
            Outcome::Complete { status, body, .. } => {
                let body = String::from_utf8_lossy(body);
                assert!(*status == 200 && body.contains(expect), "{status} {body}");
            }
            Outcome::Refused | Outcome::ClosedBeforeAnyByte => {}
            Outcome::Truncated(why) => panic!("{}: a truncated response: {why}", server.name),
        }
    }
    let complete = records.iter().filter(|r| r.outcome.is_ok()).count();
    let straddled = records
        .iter()
        .filter(|r| r.straddled && r.outcome.is_ok())
        .count();
    let in_flight: usize = server.in_flight_at_shutdown().iter().sum();
    eprintln!(
        "{}: {} requests, {complete} answered, {straddled} across the signal, \
         {in_flight} in flight at shutdown",
        server.name,
        records.len()
    );
    assert!(complete >= 8, "{}: {records:?}", server.name);
    assert!(!log.contains("still busy"), "{}: {log}", server.name);
    if slow {
        assert!(in_flight >= 1, "{}: log:\n{log}", server.name);
        assert!(straddled >= 1, "{}: {records:?}\nlog:\n{log}", server.name);
    }
}

#[test]
fn requests_during_shutdown_are_answered_whole_or_refused_on_one_loop() {
    // The web layer on one loop: httpbin's /delay on a timer.
    let mut server = ExampleServer::start("httpbin", &[]);
    let records = load_through_shutdown(
        &mut server,
        "/delay/0.2",
        6,
        Duration::from_millis(700),
        "TERM",
    );
    assert_nothing_lost(&server, &records, "\"url\"", true);
}

#[test]
fn requests_during_shutdown_are_answered_whole_or_refused_on_server_threads() {
    // serve_threads: three loops on one SO_REUSEPORT port.
    let mut server =
        ExampleServer::start("hello_httpserver", &["--threads", "3", "--delay-ms", "200"]);
    let records = load_through_shutdown(&mut server, "/", 8, Duration::from_millis(700), "TERM");
    assert_nothing_lost(&server, &records, "Hello, world", true);
    assert_eq!(
        server.in_flight_at_shutdown().len(),
        3,
        "one line per thread"
    );
}

#[test]
fn fast_keep_alive_requests_during_shutdown_are_never_cut() {
    // Answers in microseconds: the signal mostly finds connections idle
    // between requests, or a request on its way in as the idle connection
    // closes — which must end before any byte, never in the middle.
    let mut server = ExampleServer::start("hello_httpserver", &["--threads", "2"]);
    let records = load_through_shutdown(&mut server, "/", 8, Duration::from_millis(300), "TERM");
    assert_nothing_lost(&server, &records, "Hello, world", false);
}

#[test]
fn the_drain_deadline_cuts_a_request_that_outlasts_it_and_still_exits_0() {
    let mut server = ExampleServer::start(
        "hello_httpserver",
        &["--delay-ms", "60000", "--drain-timeout", "0.5"],
    );
    let addr = server.addr;
    let slow = thread::spawn(move || Client::new(addr).get("/", &[]));
    thread::sleep(Duration::from_millis(500)); // the request is read
    server.signal("TERM");
    let status = server.wait_exit(EXIT_WAIT);
    let log = server.log_text();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}; log:\n{log}"
    );
    assert!(
        log.contains("shutting down (1 requests in flight)"),
        "{log}"
    );
    assert!(
        log.contains("1 connections still busy after 500ms"),
        "{log}"
    );
    // Cut before its response began: never half a response.
    assert_eq!(slow.join().unwrap(), Outcome::ClosedBeforeAnyByte);
}

#[test]
fn a_second_signal_ends_the_process_without_waiting() {
    let mut server = ExampleServer::start(
        "hello_httpserver",
        &["--delay-ms", "60000", "--drain-timeout", "60"],
    );
    let addr = server.addr;
    let slow = thread::spawn(move || Client::new(addr).get("/", &[]));
    thread::sleep(Duration::from_millis(500));
    server.signal("INT");
    server.wait_for_log("shutting down (1 requests in flight)", EXIT_WAIT);
    server.signal("INT");
    let status = server.wait_exit(EXIT_WAIT);
    let log = server.log_text();
    // Ended as SIGINT's default action would (a shell shows 130).
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.and_then(|s| s.signal()),
        Some(2),
        "{status:?}; log:\n{log}"
    );
    assert!(log.contains("SIGINT again: ending now"), "{log}");
    assert_eq!(slow.join().unwrap(), Outcome::ClosedBeforeAnyByte);
}
