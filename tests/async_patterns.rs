//! The `async_patterns` and `ocr_service` examples, built in-process from
//! their `app` modules and driven over loopback: each property the seed's
//! handlers exist to show — blocking versus overlapping, deadlines, a
//! streaming proxy, an upload forwarded as multipart — proven with real
//! HTTP against a local upstream and the OCR stand-in.
//!
//! Every server runs on a thread and loop of its own; times are compared
//! with wide margins, never exactly, and every wait is bounded.

mod support_async;

#[path = "../examples/async_patterns/app/mod.rs"]
mod async_patterns_app;
#[path = "../examples/ocr_service/app.rs"]
mod ocr_app;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use whirl::httpclient::{HttpRequest, Multipart};

use async_patterns_app::{Config, DEMO_API_KEY, DEMO_API_SECRET};
use support_async::upstream::{self, Probes};
use support_async::{
    all_overlap, capture_log, captured_log, closed_port, concurrent_gets, fetch, find, noise,
    raw_exchange, sha256_hex, wait_until, wall_time, Server, TempDir, EXCHANGE_TIMEOUT,
};

/// How long the slow task (or slow upstream) takes in the overlap tests.
const TASK: Duration = Duration::from_millis(500);
/// How many requests each overlap test sends at once.
const BATCH: usize = 10;

/// The settings of an app under test: `upstream`, `task`, uploads in `dir`,
/// the OCR service at `ocr_url`, the demo credentials.
fn config(upstream: &str, task: &str, dir: &Path, ocr_url: &str) -> Config {
    Config {
        upstream: upstream.to_string(),
        ocr_url: ocr_url.to_string(),
        upload_dir: dir.to_path_buf(),
        task: task.to_string(),
        api_key: DEMO_API_KEY.to_string(),
        api_secret: DEMO_API_SECRET.to_string(),
        upstream_timeout: Duration::from_secs(20),
        pool_size: 10,
        max_clients: 10,
    }
}

/// Starts `async_patterns` with `config`.
fn start_app(config: Config) -> Server {
    Server::start(move || async_patterns_app::application(config).listen(0, Some("127.0.0.1")))
}

/// Starts `async_patterns` with `task`, nothing behind it.
fn start_task_app(task: &str, dir: &TempDir) -> Server {
    let nowhere = format!("http://127.0.0.1:{}", closed_port());
    start_app(config(&nowhere, task, dir.path(), &nowhere))
}

/// Starts the OCR stand-in with the demo credentials.
fn start_ocr() -> Server {
    Server::start(|| {
        ocr_app::application(ocr_app::Credentials {
            api_key: ocr_app::DEMO_API_KEY.to_string(),
            api_secret: ocr_app::DEMO_API_SECRET.to_string(),
        })
        .listen(0, Some("127.0.0.1"))
    })
}

/// The body as JSON.
fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// Asserts a batch ran one request at a time: it took at least the batch
/// times the task, less a margin (at once it would take about one task).
///
/// Only the total is telling: the write of an answer is queued for the
/// loop's next iteration, so answers finished during one blocked stretch
/// go out together at its end.
fn assert_serialised(what: &str, spans: &[support_async::Span]) {
    let wall = wall_time(spans);
    assert!(
        wall >= TASK * BATCH as u32 * 9 / 10,
        "{what}: {BATCH} requests took {wall:?}, less than {BATCH} × {TASK:?}"
    );
}

/// Asserts a batch ran at once: every request was in flight together, and
/// the whole batch took far less than one after another would (and the
/// answers came close together).
fn assert_overlapped(what: &str, spans: &[support_async::Span]) {
    assert!(all_overlap(spans), "{what}: the requests did not overlap");
    let wall = wall_time(spans);
    assert!(
        wall < TASK * BATCH as u32 * 7 / 10,
        "{what}: {BATCH} requests took {wall:?}, close to one after another"
    );
}

// ----- the server-side patterns ---------------------------------------------

#[test]
fn async_task_and_future_response_overlap_while_sync_serialises() {
    capture_log();
    let dir = TempDir::new("overlap");
    let app = start_task_app(&format!("sleep {}", TASK.as_secs_f64()), &dir);

    let spans = concurrent_gets(&app.url("/async_task"), BATCH);
    assert_overlapped("/async_task", &spans);
    let spans = concurrent_gets(&app.url("/future_response"), BATCH);
    assert_overlapped("/future_response", &spans);
    let spans = concurrent_gets(&app.url("/sync"), BATCH);
    assert_serialised("/sync", &spans);

    // The blocking detector saw /sync hold the loop.
    assert!(
        captured_log()
            .iter()
            .any(|line| line.contains("blocked the event loop")),
        "no blocking warning in {:?}",
        captured_log()
    );
}

#[test]
fn async_future_and_client_async_answer_before_the_work_is_done() {
    let dir = TempDir::new("at-once");
    let up = upstream::start(Probes::default());
    let app = start_app(config(
        &up.url("/slow?delay=3"),
        "sleep 3",
        dir.path(),
        &up.url("/"),
    ));
    for path in ["/async", "/future", "/client/async"] {
        let started = Instant::now();
        let response = fetch(app.url(path));
        let took = started.elapsed();
        assert_eq!((response.code, response.text().as_str()), (200, "It works"));
        assert!(
            took < Duration::from_secs(2),
            "{path} took {took:?}: it waited for the 3 s work"
        );
    }
}

#[test]
fn async_task_answers_with_exit_status_and_output() {
    let dir = TempDir::new("exit");
    let app = start_task_app("echo out; echo err >&2; exit 3", &dir);
    let response = fetch(app.url("/async_task"));
    assert_eq!(response.code, 200);
    let answer = json(&response.body);
    assert_eq!(answer["exit_code"], 3);
    assert_eq!(answer["success"], false);
    let output = answer["output"].as_str().expect("output");
    assert!(
        output.contains("out\n") && output.contains("err\n"),
        "{output:?}"
    );

    // The seed's own task, where ping exists and may run here.
    let ping_works = std::process::Command::new("ping")
        .args(["-c", "1", "127.0.0.1"])
        .output()
        .is_ok_and(|out| out.status.success());
    if ping_works {
        let app = start_task_app("ping -c 2 127.0.0.1", &dir);
        let answer = json(&fetch(app.url("/async_task")).body);
        assert_eq!(answer["exit_code"], 0, "{answer}");
        assert!(answer["output"].as_str().unwrap().contains("127.0.0.1"));
    } else {
        eprintln!("ping cannot run here: the ping task is not tried");
    }
}

#[test]
fn future_response_answers_504_when_the_pool_is_too_slow() {
    let dir = TempDir::new("timeout");
    let app = start_task_app("sleep 1; echo late", &dir);
    let started = Instant::now();
    let response = fetch(app.url("/future_response?timeout=0.1"));
    assert_eq!(response.code, 504, "{}", response.text());
    assert!(started.elapsed() < Duration::from_millis(900));

    let response = fetch(app.url("/future_response?timeout=10"));
    assert_eq!(response.code, 200);
    assert_eq!(json(&response.body)["output"], "late\n");

    for bad in ["abc", "-1", "NaN", "1e9"] {
        let response = fetch(app.url(&format!("/future_response?timeout={bad}")));
        assert_eq!(response.code, 400, "timeout={bad}");
    }
}

// ----- the client-side patterns ---------------------------------------------

#[test]
fn client_response_overlaps_while_client_sync_serialises() {
    let dir = TempDir::new("client");
    let up = upstream::start(Probes::default());
    let slow = up.url(&format!("/slow?delay={}", TASK.as_secs_f64()));
    let app = start_app(config(&slow, "true", dir.path(), &up.url("/")));

    let spans = concurrent_gets(&app.url("/client/response"), BATCH);
    assert_overlapped("/client/response", &spans);
    let response = fetch(app.url("/client/response"));
    assert_eq!((response.code, response.text().as_str()), (200, "slow ok"));

    let spans = concurrent_gets(&app.url("/client/sync"), BATCH);
    assert_serialised("/client/sync", &spans);
}

#[test]
fn client_response_relays_the_upstream_status() {
    let dir = TempDir::new("client-status");
    let up = upstream::start(Probes::default());
    let app = start_app(config(&up.url("/status/418"), "true", dir.path(), "/"));
    let response = fetch(app.url("/client/response"));
    assert_eq!(
        (response.code, response.text().as_str()),
        (418, "status 418")
    );

    let down = start_task_app("true", &dir);
    assert_eq!(fetch(down.url("/client/response")).code, 502);
    assert_eq!(fetch(down.url("/client/sync")).code, 502);
}

// ----- the forwarding proxy ---------------------------------------------------

/// An app whose upstream is the test upstream (returned too).
fn proxy_setup(probes: Probes, dir: &TempDir) -> (Server, Server) {
    let up = upstream::start(probes);
    let app = start_app(config(&up.url(""), "true", dir.path(), &up.url("/")));
    (up, app)
}

/// The header values of `name` in an echo answer.
fn echoed_header(answer: &Value, name: &str) -> Vec<String> {
    answer["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|pair| pair[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|pair| pair[1].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn proxy_forwards_method_headers_query_and_body() {
    let dir = TempDir::new("proxy");
    let (up, app) = proxy_setup(Probes::default(), &dir);

    // GET: path, query and headers; hop-by-hop ones stay behind.
    let response = fetch(
        HttpRequest::get(app.url("/proxy/echo/a%20b?x=1&y=2&validate_cert=1"))
            .header("X-Custom", "hello")
            .header("X-Forwarded-For", "10.0.0.1")
            .header("Connection", "X-Hop")
            .header("X-Hop", "secret")
            .header("Keep-Alive", "timeout=5")
            .header("TE", "trailers"),
    );
    assert_eq!(response.code, 200);
    let answer = json(&response.body);
    assert_eq!(answer["method"], "GET");
    assert_eq!(answer["path"], "/echo/a%20b");
    assert_eq!(answer["query"], "x=1&y=2");
    assert_eq!(echoed_header(&answer, "X-Custom"), ["hello"]);
    assert_eq!(
        echoed_header(&answer, "X-Forwarded-For"),
        ["10.0.0.1, 127.0.0.1"]
    );
    assert_eq!(echoed_header(&answer, "Host"), [up.addr.to_string()]);
    for hop in ["X-Hop", "Keep-Alive", "TE", "Connection"] {
        assert!(
            echoed_header(&answer, hop).is_empty(),
            "{hop} was forwarded"
        );
    }
    // The answer's headers come back, bar the hop-by-hop ones.
    assert_eq!(response.headers.get("X-Upstream"), Some("echo"));
    let cookies: Vec<&str> = response.headers.get_all("Set-Cookie").collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; Path=/"]);
    assert!(!response.headers.contains("Proxy-Authenticate"));
    assert!(response
        .headers
        .get("Content-Type")
        .unwrap()
        .starts_with("application/json"));

    // POST a form.
    let response = fetch(
        HttpRequest::post(app.url("/proxy/echo"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("name=whirl&tags=a&tags=b"),
    );
    let answer = json(&response.body);
    assert_eq!(answer["method"], "POST");
    assert_eq!(answer["form"]["name"], serde_json::json!(["whirl"]));
    assert_eq!(answer["form"]["tags"], serde_json::json!(["a", "b"]));

    // PUT, PATCH and DELETE.
    for method in ["PUT", "PATCH"] {
        let response = fetch(
            HttpRequest::new(app.url("/proxy/echo/item/7"))
                .method(method)
                .header("Content-Type", "application/json")
                .body(r#"{"k": 1}"#),
        );
        let answer = json(&response.body);
        assert_eq!(answer["method"], method);
        assert_eq!(answer["path"], "/echo/item/7");
        assert_eq!(answer["body"], r#"{"k": 1}"#);
    }
    let answer = json(&fetch(HttpRequest::delete(app.url("/proxy/echo/item/7"))).body);
    assert_eq!(answer["method"], "DELETE");

    // HEAD: the upstream's length, no body.
    let response = fetch(HttpRequest::new(app.url("/proxy/echo")).method("HEAD"));
    assert_eq!(response.code, 200);
    assert_eq!(response.headers.get("X-Echo-Method"), Some("HEAD"));
    assert_eq!(response.headers.get("Content-Length"), Some("1234"));
    assert!(response.body.is_empty());
}

#[test]
fn proxy_relays_status_codes_and_redirects() {
    let dir = TempDir::new("proxy-status");
    let (_up, app) = proxy_setup(Probes::default(), &dir);
    for code in [201u16, 404, 418, 500, 503] {
        let response = fetch(app.url(&format!("/proxy/status/{code}")));
        assert_eq!(response.code, code);
        assert_eq!(response.text(), format!("status {code}"));
    }
    let response = fetch(app.url("/proxy/status/204"));
    assert_eq!((response.code, response.body.len()), (204, 0));
    // A redirect is relayed, not followed.
    let response = fetch(app.url("/proxy/status/302"));
    assert_eq!(response.code, 302);
    assert_eq!(response.headers.get("Location"), Some("/echo/redirected"));
}

#[test]
fn proxy_carries_5_mib_bodies_byte_exact() {
    let dir = TempDir::new("proxy-big");
    let (_up, app) = proxy_setup(Probes::default(), &dir);
    let body = noise(5 * 1024 * 1024, 7);
    let response = fetch(
        HttpRequest::post(app.url("/proxy/echo/raw"))
            .header("Content-Type", "application/octet-stream")
            .body(body.clone()),
    );
    assert_eq!(response.code, 200);
    assert_eq!(
        response.headers.get("X-Body-Sha256"),
        Some(sha256_hex(&body).as_str())
    );
    assert_eq!(response.body.len(), body.len());
    assert!(response.body == body, "the body came back changed");

    // A chunked upload (no length) arrives whole too.
    let body = noise(1024 * 1024 + 17, 9);
    let mut request = format!(
        "PUT /proxy/echo/raw HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    )
    .into_bytes();
    for piece in body.chunks(100_000) {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (status, _head, echoed) = raw_exchange(app.addr, &request);
    assert_eq!(status, 200);
    assert!(echoed == body, "the chunked body came back changed");
}

#[test]
fn proxy_streams_the_response_as_it_arrives() {
    let dir = TempDir::new("proxy-drip");
    let probes = Probes::default();
    let (_up, app) = proxy_setup(probes.clone(), &dir);
    let mut stream = TcpStream::connect(app.addr).expect("connect");
    stream.set_read_timeout(Some(EXCHANGE_TIMEOUT)).unwrap();
    let request = format!(
        "GET /proxy/drip HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(request.as_bytes()).unwrap();
    // The first part arrives while the upstream still holds the second.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while find(&seen, b"first|").is_none() {
        let n = stream
            .read(&mut buf)
            .expect("the first part, before the gate opens");
        assert!(n > 0, "closed before the first part: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
    probes.drip_gate.store(true, Ordering::SeqCst);
    stream.read_to_end(&mut seen).expect("the rest");
    let (status, _head, body) = support_async::parse_response(&seen);
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8_lossy(&body), "first|second");
}

#[test]
fn proxy_streams_the_request_body_as_it_arrives() {
    let dir = TempDir::new("proxy-sink");
    let probes = Probes::default();
    let (_up, app) = proxy_setup(probes.clone(), &dir);
    let total = 2 * 1024 * 1024;
    let body = noise(total, 3);
    let mut stream = TcpStream::connect(app.addr).expect("connect");
    stream.set_read_timeout(Some(EXCHANGE_TIMEOUT)).unwrap();
    let head = format!(
        "POST /proxy/sink HTTP/1.1\r\nHost: {}\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..total / 2]).unwrap();
    // Half the body is out: the upstream has most of it already.
    let forwarded = wait_until(Duration::from_secs(10), || {
        probes.sink_bytes.load(Ordering::SeqCst) >= total / 4
    });
    assert!(
        forwarded,
        "the upstream got only {} bytes of the first {}",
        probes.sink_bytes.load(Ordering::SeqCst),
        total / 2
    );
    stream.write_all(&body[total / 2..]).unwrap();
    let (status, _head, answer) = support_async::read_response(&mut stream);
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8_lossy(&answer), format!("got {total}"));
}

#[test]
fn proxy_cuts_the_upstream_request_when_the_client_leaves_mid_body() {
    let dir = TempDir::new("proxy-cut");
    let probes = Probes::default();
    let (_up, app) = proxy_setup(probes.clone(), &dir);
    let total = 2 * 1024 * 1024;
    let mut stream = TcpStream::connect(app.addr).expect("connect");
    let head = format!(
        "POST /proxy/sink HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    let piece = noise(total / 2, 5);
    stream
        .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
        .unwrap();
    stream.write_all(&piece).unwrap();
    stream.write_all(b"\r\n").unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        probes.sink_bytes.load(Ordering::SeqCst) >= total / 4
    }));
    // The client goes away without the last chunk: the upstream must see a
    // cut request, never a complete (and shorter) body.
    drop(stream);
    assert!(
        wait_until(Duration::from_secs(10), || probes
            .sink_cut
            .load(Ordering::SeqCst)),
        "the upstream request was not cut"
    );
}

#[test]
fn proxy_answers_502_for_a_dead_upstream_504_for_a_slow_one() {
    let dir = TempDir::new("proxy-errors");
    let down = start_task_app("true", &dir);
    assert_eq!(fetch(down.url("/proxy/echo")).code, 502);
    let response = fetch(HttpRequest::post(down.url("/proxy/echo")).body(vec![7u8; 300_000]));
    assert_eq!(response.code, 502);

    let up = upstream::start(Probes::default());
    let mut slow = config(&up.url(""), "true", dir.path(), "/");
    slow.upstream_timeout = Duration::from_millis(500);
    let app = start_app(slow);
    let started = Instant::now();
    assert_eq!(fetch(app.url("/proxy/slow?delay=5")).code, 504);
    assert!(started.elapsed() < Duration::from_secs(4));

    // A dot segment would climb out of the upstream's base path.
    let request = format!(
        "GET /proxy/%2e%2e/secret HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    assert_eq!(raw_exchange(app.addr, request.as_bytes()).0, 400);
}

#[test]
fn proxy_validate_cert_0_reaches_a_self_signed_upstream() {
    let dir = TempDir::new("proxy-tls");
    let up = upstream::start_tls();
    let base = format!("https://127.0.0.1:{}", up.addr.port());
    let app = start_app(config(&base, "true", dir.path(), "/"));
    assert_eq!(fetch(app.url("/proxy/echo?a=1")).code, 502);
    let response = fetch(app.url("/proxy/echo?a=1&validate_cert=0"));
    assert_eq!(response.code, 200, "{}", response.text());
    assert_eq!(json(&response.body)["query"], "a=1");
}

// ----- the upload ---------------------------------------------------------------

/// An app that forwards uploads to a fresh OCR stand-in (returned too).
fn upload_setup(dir: &TempDir, api_key: &str) -> (Server, Server) {
    let ocr = start_ocr();
    let mut settings = config("http://127.0.0.1:1", "true", dir.path(), &ocr.url("/"));
    settings.api_key = api_key.to_string();
    (ocr, start_app(settings))
}

/// Uploads `bytes` as `filename` in field `file`.
fn upload(app: &Server, filename: &str, bytes: Vec<u8>) -> whirl::httpclient::HttpResponse {
    let form = Multipart::new()
        .field("type", "id")
        .file("file", filename, bytes);
    fetch(HttpRequest::post(app.url("/upload")).multipart(form))
}

#[test]
fn upload_delivers_3_mib_to_the_ocr_service_and_saves_it() {
    let dir = TempDir::new("upload");
    let (_ocr, app) = upload_setup(&dir, DEMO_API_KEY);
    let image = noise(3 * 1024 * 1024, 11);
    let response = upload(&app, "photo.png", image.clone());
    assert_eq!(response.code, 200, "{}", response.text());
    let answer = json(&response.body);
    assert_eq!(answer["bytes"], image.len());
    assert_eq!(answer["sha256"], sha256_hex(&image));
    assert_eq!(answer["content_type"], "image/png");

    // Saved under a name of the server's, byte for byte.
    let saved = response.headers.get("X-Saved-As").expect("X-Saved-As");
    assert_eq!(dir.file_names(), [saved]);
    assert!(
        saved.starts_with("upload-") && saved.ends_with(".png"),
        "{saved}"
    );
    let on_disk = std::fs::read(dir.path().join(saved)).expect("the saved file");
    assert!(on_disk == image, "the saved file differs");
}

#[test]
fn upload_refuses_path_traversal_and_a_missing_file() {
    let dir = TempDir::new("upload-evil");
    let (_ocr, app) = upload_setup(&dir, DEMO_API_KEY);
    for name in [
        "../../evil.png",
        "../evil.png",
        "a/b.png",
        "..\\evil.png",
        "..",
    ] {
        let response = upload(&app, name, b"x".to_vec());
        assert_eq!(response.code, 400, "{name:?} was accepted");
    }
    assert!(dir.file_names().is_empty(), "{:?}", dir.file_names());
    let parent = dir.path().parent().expect("a parent");
    assert!(!parent.join("evil.png").exists());

    let form = Multipart::new().field("type", "id");
    let response = fetch(HttpRequest::post(app.url("/upload")).multipart(form));
    assert_eq!(response.code, 400);
}

#[test]
fn upload_answers_502_when_the_ocr_service_refuses_the_key() {
    let dir = TempDir::new("upload-key");
    let (ocr, app) = upload_setup(&dir, "not-the-key");
    assert_eq!(upload(&app, "photo.jpg", b"jpeg".to_vec()).code, 502);

    // The stand-in itself: 401 for a wrong secret, 400 without an image.
    let wrong = Multipart::new()
        .field("api_key", DEMO_API_KEY)
        .field("api_secret", "guess")
        .file("image", "a.png", b"png".to_vec());
    assert_eq!(
        fetch(HttpRequest::post(ocr.url("/")).multipart(wrong)).code,
        401
    );
    let no_image = Multipart::new()
        .field("api_key", DEMO_API_KEY)
        .field("api_secret", DEMO_API_SECRET);
    assert_eq!(
        fetch(HttpRequest::post(ocr.url("/")).multipart(no_image)).code,
        400
    );
}
