//! The examples run and do what their headers promise. `cargo test` builds the
//! examples before the tests run; these tests start the built binaries.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Path of a built example, next to this test's own binary.
fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

/// Runs an example to completion and returns (stdout, stderr).
fn run_to_end(name: &str) -> (String, String) {
    let out = Command::new(example(name))
        .env("RUST_LOG", "info")
        .output()
        .unwrap_or_else(|e| panic!("cannot run example {name}: {e}"));
    assert!(out.status.success(), "{name} failed: {out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn timers_fire_in_deadline_order_and_timeout_cuts_slow_work() {
    let (stdout, _) = run_to_end("timers");
    let pos = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing in:\n{stdout}"))
    };
    assert!(pos("call_later(300 ms) fired") < pos("call_later(600 ms) fired"));
    assert!(stdout.contains("slow operation: Err(\"the operation timed out\")"));
    assert!(stdout.contains("fast operation: Ok(\"made it\")"));
    assert!(stdout.contains("heartbeat #3"));
    assert!(stdout.trim_end().ends_with("done"));
}

#[test]
fn blocking_detector_names_the_culprit() {
    let (stdout, stderr) = run_to_end("blocking_detector");
    let warnings: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("blocked the event loop"))
        .collect();
    assert_eq!(warnings.len(), 1, "stderr:\n{stderr}");
    assert!(
        warnings[0].contains("examples/blocking_detector.rs:"),
        "{}",
        warnings[0]
    );
    assert!(stdout.contains("a quick callback: no warning"));
}

/// Kills the child when dropped, so a failing test leaves no server behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts server example `name` with `--port 0` and returns it with the
/// address from its `listening on SCHEME://ADDR` log line.
fn start_server(name: &str, scheme: &str, extra_args: &[&str]) -> (KillOnDrop, String) {
    let (child, addr, _log) = start_server_logged(name, scheme, extra_args);
    (child, addr)
}

/// As [`start_server`], also returning the log lines that follow the
/// `listening on` one.
fn start_server_logged(
    name: &str,
    scheme: &str,
    extra_args: &[&str],
) -> (KillOnDrop, String, std::sync::mpsc::Receiver<String>) {
    let mut child = KillOnDrop(
        Command::new(example(name))
            .args(["--port", "0"])
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}")),
    );
    let stderr = child.0.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let marker = format!("listening on {scheme}://");
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{name} exited early"))
            .expect("read stderr");
        if let Some(at) = line.find(&marker) {
            break line[at + marker.len()..].trim().to_string();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe,
    // passing it on to whoever still listens.
    let (sender, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    (child, addr, log)
}

/// Waits up to 10 s for a log line containing `needle`.
fn wait_for_log(log: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no log line with {needle:?}: {e}"),
        }
    }
}

#[test]
fn fd_handler_echoes_a_large_payload() {
    let (_child, addr) = start_server("fd_handler", "tcp", &[]);
    let stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let payload: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = stream.try_clone().unwrap();
    let to_send = payload.clone();
    let sender = std::thread::spawn(move || {
        writer.write_all(&to_send).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut echoed = Vec::new();
    (&stream).read_to_end(&mut echoed).expect("read echo");
    sender.join().unwrap();
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "echo differs");
}

#[test]
fn echo_server_echoes_lines_and_drops_an_overlong_one() {
    let (_child, addr) = start_server("echo_server", "tcp", &[]);
    let stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;

    // One line at a time, then a burst of lines in one write, then a line
    // split across several writes.
    let mut echoed = String::new();
    for line in ["hello\n", "\n", "tornado in rust\n"] {
        writer.write_all(line.as_bytes()).unwrap();
        echoed.clear();
        reader.read_line(&mut echoed).expect("read echo");
        assert_eq!(echoed, line);
    }
    let burst: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    writer.write_all(burst.as_bytes()).unwrap();
    for i in 0..1000 {
        echoed.clear();
        reader.read_line(&mut echoed).expect("read echo");
        assert_eq!(echoed, format!("line {i}\n"));
    }
    for piece in ["spl", "it ac", "ross writes\n"] {
        writer.write_all(piece.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    echoed.clear();
    reader.read_line(&mut echoed).expect("read echo");
    assert_eq!(echoed, "split across writes\n");

    // A line past --max-line (64 KiB) closes this connection only.
    let _ = writer.write_all(&vec![b'x'; 100 * 1024]); // may meet the reset
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest); // EOF, or a reset for unread bytes
    assert!(rest.is_empty(), "nothing is echoed from an overlong line");
    let again = TcpStream::connect(&addr).expect("reconnect");
    again
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut again = BufReader::new(again);
    again.get_mut().write_all(b"still here\n").unwrap();
    echoed.clear();
    again.read_line(&mut echoed).expect("read echo");
    assert_eq!(echoed, "still here\n");
}

#[test]
fn tls_echo_serves_lines_over_tls_with_its_own_certificate() {
    use whirl::ioloop::IoLoop;
    use whirl::iostream::{IoStream, TlsClientConfig};

    let cert_path = std::env::temp_dir().join(format!("whirl-tls-echo-{}.pem", std::process::id()));
    let cert_arg = cert_path.to_str().expect("utf-8 temp path").to_string();
    let (_server, addr) = start_server("tls_echo", "tls", &["--cert-out", &cert_arg]);
    let pem = std::fs::read(&cert_path).expect("the example saved its certificate");
    std::fs::remove_file(&cert_path).ok();
    let client = TlsClientConfig::builder()
        .ca_certs_pem(&pem)
        .build()
        .expect("client config");
    let addr: std::net::SocketAddr = addr.parse().expect("address");
    let echoed = IoLoop::new()
        .run_sync_timeout(
            async move {
                let stream = IoStream::connect(addr).await.expect("connect");
                stream
                    .start_tls_client(&client, "localhost")
                    .await
                    .expect("handshake");
                stream.write("over tls\n");
                stream.read_until(b"\n", 1024).await.expect("echo")
            },
            Duration::from_secs(30),
        )
        .expect("timed out");
    assert_eq!(echoed, b"over tls\n");
}

#[test]
fn hello_httpserver_answers_every_request_and_refuses_garbage() {
    let (_server, addr) = start_server("hello_httpserver", "http", &[]);
    let exchange = |request: &[u8]| {
        let mut stream = TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        // Each 200 carries a Date (a bare 400 has no headers): check it is
        // there, then compare the rest exactly.
        let reply = String::from_utf8_lossy(&reply).into_owned();
        let dates = reply.matches("\r\nDate: ").count();
        assert_eq!(dates, reply.matches("HTTP/1.1 200 ").count(), "{reply}");
        strip_dates(&reply)
    };
    let ok =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nHello, world";
    // Any method, any path, any body; pipelined requests in order.
    let two = exchange(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(two, format!("{ok}{ok}"));
    // HEAD: the same head, no body.
    let head = exchange(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head, ok.trim_end_matches("Hello, world"));
    // Garbage: a bare 400 and the connection closes.
    assert_eq!(
        exchange(b"asdf\r\n\r\n"),
        "HTTP/1.1 400 Bad Request\r\n\r\n"
    );
}

/// `reply` without its `Date: …` header lines (IMF-fixdates are 29 bytes).
fn strip_dates(reply: &str) -> String {
    let mut rest = reply;
    let mut out = String::new();
    while let Some(at) = rest.find("\r\nDate: ") {
        out.push_str(&rest[..at]);
        let line_end = rest[at + 2..]
            .find("\r\n")
            .map_or(rest.len(), |e| at + 2 + e);
        assert_eq!(line_end - (at + 8), 29, "not an IMF-fixdate: {reply}");
        rest = &rest[line_end..];
    }
    out.push_str(rest);
    out
}

/// A response read off a raw socket: status, head lines, body.
#[derive(Debug)]
struct Reply {
    /// The status code.
    status: u16,
    /// The header lines, as `(name, value)`.
    headers: Vec<(String, String)>,
    /// The body (de-chunked).
    body: String,
}

impl Reply {
    /// The first value of header `name`.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    fn headers(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Sends `method path` with `headers` and `body` on a fresh connection
/// (`Connection: close`) and reads the whole reply.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read reply");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {raw:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {raw:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: body.to_string(),
    };
    if reply.header("Transfer-Encoding") == Some("chunked") {
        reply.body = dechunk(&reply.body);
    }
    reply
}

/// The payload of a chunked body.
fn dechunk(mut chunked: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = chunked.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        chunked = &rest[size + 2..];
    }
    out
}

/// A `GET` with no extra headers.
fn get(addr: &str, path: &str) -> Reply {
    http(addr, "GET", path, &[], "")
}

#[test]
fn hello_says_hello_world_and_logs_the_request() {
    let (_server, addr, log) = start_server_logged("hello", "http", &[]);
    let reply = get(&addr, "/");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, "Hello, world");
    wait_for_log(&log, "200 GET / (127.0.0.1)");
    assert_eq!(get(&addr, "/elsewhere").status, 404);
    assert_eq!(http(&addr, "POST", "/", &[], "").status, 405);
}

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    /// `whirl-<name>-<pid>`, empty.
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("whirl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn file_server_serves_files_lists_directories_and_stays_in_its_root() {
    // root/ holds the files served; secret.txt sits beside it, out of reach.
    let dir = TempDir::new("file-server");
    let root = dir.0.join("root");
    std::fs::create_dir_all(root.join("sub dir")).unwrap();
    std::fs::write(root.join("hello.txt"), "hello from disk\n").unwrap();
    std::fs::write(root.join("sub dir").join("a&b.txt"), "inner").unwrap();
    std::fs::write(dir.0.join("secret.txt"), "do not serve me").unwrap();
    let root_arg = root.to_str().expect("utf-8 temp path");
    let (_server, addr) = start_server("file_server", "http", &["--root", root_arg]);

    // A file, with its validators; a range of it; a 304 for its Etag.
    let file = get(&addr, "/hello.txt");
    assert_eq!(file.status, 200, "{file:?}");
    assert_eq!(file.body, "hello from disk\n");
    assert_eq!(file.header("Content-Type"), Some("text/plain"));
    let etag = file.header("Etag").expect("Etag").to_string();
    let range = http(&addr, "GET", "/hello.txt", &[("Range", "bytes=0-4")], "");
    assert_eq!((range.status, range.body.as_str()), (206, "hello"));
    let cached = http(&addr, "GET", "/hello.txt", &[("If-None-Match", &etag)], "");
    assert_eq!(cached.status, 304);
    let head = http(&addr, "HEAD", "/hello.txt", &[], "");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(head.header("Content-Length"), Some("16"));

    // The index of the root links every entry, directories first.
    let index = get(&addr, "/");
    assert_eq!(index.status, 200, "{index:?}");
    let sub = index.body.find(r#"href="sub%20dir"#).expect("sub dir link");
    let hello = index.body.find(r#"href="hello.txt""#).expect("file link");
    assert!(sub < hello, "{}", index.body);
    assert!(index.body.contains("16 B<"), "{}", index.body);

    // A directory URL without its slash redirects; with it, it is listed
    // (names escaped in the page, percent-encoded in the links).
    let bare = get(&addr, "/sub%20dir");
    assert_eq!(bare.status, 301);
    assert_eq!(bare.header("Location"), Some("/sub%20dir/"));
    let listing = get(&addr, "/sub%20dir/");
    assert_eq!(listing.status, 200);
    assert!(
        listing.body.contains(r#"href="a%26b.txt">a&amp;b.txt</a>"#),
        "{}",
        listing.body
    );
    assert_eq!(get(&addr, "/sub%20dir/a%26b.txt").body, "inner");
    assert_eq!(get(&addr, "/missing.txt").status, 404);

    // Nothing outside the root, however the path is spelled.
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub%20dir/../../secret.txt",
        "/..%2fsecret.txt",
        "//etc/passwd",
        "/../",
    ] {
        let reply = get(&addr, path);
        assert_eq!(reply.status, 403, "{path}: {reply:?}");
        assert!(!reply.body.contains("do not serve me"), "{path}");
    }
}

/// A client that keeps cookies, as a browser would: what `Set-Cookie`
/// sets is sent back in `Cookie`, exactly as received (quotes included).
struct Browser {
    /// The server.
    addr: String,
    /// Cookies by name, values as set.
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    /// A browser with no cookies.
    fn new(addr: &str) -> Browser {
        Browser {
            addr: addr.to_string(),
            cookies: Default::default(),
        }
    }

    /// `GET path`.
    fn get(&mut self, path: &str) -> Reply {
        self.request("GET", path, "")
    }

    /// `POST path` with `fields` as a urlencoded form.
    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("{}={}", form_escape(name), form_escape(value)))
            .collect();
        self.request("POST", path, &body.join("&"))
    }

    /// Sends a request with the cookies and keeps the ones it sets (a
    /// cleared cookie, `name=""`, is dropped).
    fn request(&mut self, method: &str, path: &str, body: &str) -> Reply {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        let cookie = cookie.join("; ");
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if !cookie.is_empty() {
            headers.push(("Cookie", &cookie));
        }
        let reply = http(&self.addr, method, path, &headers, body);
        for set in reply.headers("Set-Cookie") {
            let pair = set.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || value == "\"\"" {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        reply
    }
}

/// `value` percent-encoded for a form body.
fn form_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the hidden `_xsrf` field in a page.
fn xsrf_field(page: &str) -> String {
    let marker = r#"name="_xsrf" value=""#;
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("no _xsrf field in {page}"))
        + marker.len();
    page[at..].split('"').next().unwrap_or_default().to_string()
}

#[test]
fn blog_pages_extend_the_base_template_and_link_versioned_css() {
    let (_server, addr) = start_server("blog", "http", &[]);
    let home = get(&addr, "/");
    assert_eq!(home.status, 200, "{home:?}");
    let page = home.body.clone();
    // base.html around home.html around modules/entry.html.
    assert!(page.contains("<title>whirl blog</title>"), "{page}");
    assert!(
        page.contains(r#"<a href="/entry/hello-from-whirl">Hello from whirl</a>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<a href="/auth/login">Log in</a>"#),
        "{page}"
    );

    // static_url: a content hash, and such URLs may be cached for years.
    let start = page.find("/static/blog.css?v=").expect("static_url link");
    let css_url = page[start..].split('"').next().unwrap().to_string();
    let css = get(&addr, &css_url);
    assert_eq!(css.status, 200, "{css:?}");
    assert_eq!(css.header("Content-Type"), Some("text/css"));
    assert!(css.body.contains("font-family"));
    assert!(css
        .header("Cache-Control")
        .is_some_and(|c| c.starts_with("max-age=")));

    let entry = get(&addr, "/entry/hello-from-whirl");
    assert_eq!(entry.status, 200);
    assert!(entry
        .body
        .contains("<title>Hello from whirl · whirl blog</title>"));
    assert!(entry
        .body
        .contains("<p>This blog runs on one thread and one event loop.</p>"));
    assert_eq!(get(&addr, "/entry/no-such-entry").status, 404);
}

#[test]
fn blog_login_with_signed_cookie_then_compose_with_xsrf_tokens() {
    let (_server, addr) = start_server("blog", "http", &["--user", "ann", "--password", "s3cret"]);
    let mut browser = Browser::new(&addr);

    // Logged out, compose sends us to the login form (GET) or refuses (POST).
    let compose = browser.get("/compose");
    assert_eq!(compose.status, 302);
    assert_eq!(
        compose.header("Location"),
        Some("/auth/login?next=%2Fcompose")
    );

    // The login form sets the _xsrf cookie and carries the token.
    let form = browser.get("/auth/login?next=%2Fcompose");
    assert_eq!(form.status, 200);
    assert!(browser.cookies.contains_key("_xsrf"), "{form:?}");
    let token = xsrf_field(&form.body);
    let login = [
        ("name", "ann"),
        ("password", "s3cret"),
        ("next", "/compose"),
    ];

    // No token, or a forged one: 403, and no login cookie.
    assert_eq!(browser.post("/auth/login", &login).status, 403);
    let forged = [
        ("_xsrf", "2|00000000|deadbeef|1"),
        login[0],
        login[1],
        login[2],
    ];
    assert_eq!(browser.post("/auth/login", &forged).status, 403);
    // The right token with the wrong password: 403 and the form again.
    let wrong = browser.post(
        "/auth/login",
        &[("_xsrf", &token), ("name", "ann"), ("password", "nope")],
    );
    assert_eq!(wrong.status, 403);
    assert!(wrong.body.contains("Wrong name or password."));
    assert!(!browser.cookies.contains_key("blog_user"));

    // The right password: a signed cookie, and back to where we were going.
    let ok = browser.post(
        "/auth/login",
        &[("_xsrf", &token), login[0], login[1], login[2]],
    );
    assert_eq!(ok.status, 302, "{ok:?}");
    assert_eq!(ok.header("Location"), Some("/compose"));
    let signed = browser
        .cookies
        .get("blog_user")
        .expect("login cookie")
        .clone();
    assert!(
        signed.contains("|9:blog_user|"),
        "Tornado's v2 format: {signed}"
    );
    // `next` may only lead to a path on this site — also as a browser
    // reads it, dropping tabs and newlines and taking `\` for `/`.
    for next in [
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "https://evil.example/",
    ] {
        let away = [
            ("_xsrf", token.as_str()),
            login[0],
            login[1],
            ("next", next),
        ];
        assert_eq!(
            browser.post("/auth/login", &away).header("Location"),
            Some("/"),
            "{next:?}"
        );
    }

    // The compose form, now that we are someone.
    let compose = browser.get("/compose");
    assert_eq!(compose.status, 200, "{compose:?}");
    assert!(compose.body.contains("Log out ann"));
    let token = xsrf_field(&compose.body);

    // Publishing without the token is refused, even logged in.
    let entry = [
        ("title", "Rust & Tornado"),
        ("body", "One loop.\r\n\r\nNo <script>."),
    ];
    assert_eq!(browser.post("/compose", &entry).status, 403);
    assert!(!get(&addr, "/").body.contains("Rust &amp; Tornado"));

    // With it, the entry is published and shown, escaped, on the home page.
    let published = browser.post("/compose", &[("_xsrf", &token), entry[0], entry[1]]);
    assert_eq!(published.status, 302, "{published:?}");
    assert_eq!(published.header("Location"), Some("/entry/rust-tornado"));
    let home = get(&addr, "/").body;
    let new = home.find(r#"<a href="/entry/rust-tornado">Rust &amp; Tornado</a>"#);
    let old = home.find("Hello from whirl");
    assert!(new.is_some() && new < old, "newest first: {home}");
    let page = get(&addr, "/entry/rust-tornado").body;
    assert!(
        page.contains("<p>One loop.</p>") && page.contains("<p>No &lt;script&gt;.</p>"),
        "{page}"
    );

    // A tampered cookie is no login at all.
    let mut tampered = signed.clone();
    tampered.insert(tampered.len() - 2, '0');
    browser.cookies.insert("blog_user".to_string(), tampered);
    assert_eq!(browser.get("/compose").status, 302);
    browser.cookies.insert("blog_user".to_string(), signed);

    // Logging out clears the cookie; compose is closed again.
    assert_eq!(
        browser.post("/auth/logout", &[("_xsrf", &token)]).status,
        302
    );
    assert!(!browser.cookies.contains_key("blog_user"));
    assert_eq!(browser.get("/compose").status, 302);
    assert_eq!(
        browser
            .post("/compose", &[("_xsrf", &token), entry[0], entry[1]])
            .status,
        403
    );
}

/// Runs the `fetch` example with `args`; returns its exit code, stdout and
/// stderr.
fn run_fetch(args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let out = Command::new(example("fetch"))
        .args(args)
        .output()
        .expect("run fetch");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), out.stdout, stderr)
}

#[test]
fn fetch_prints_the_head_to_stderr_and_the_body_to_stdout() {
    let (_server, addr) = start_server("hello", "http", &[]);
    let (code, stdout, stderr) = run_fetch(&[&format!("http://{addr}/")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, b"Hello, world");
    assert!(stderr.starts_with("HTTP/1.1 200 OK\n"), "{stderr}");
    assert!(stderr.contains("\nContent-Length: 12\n"), "{stderr}");

    // A 404: its body still comes out, then the error and status 1.
    let (code, stdout, stderr) = run_fetch(&[&format!("http://{addr}/missing")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(String::from_utf8_lossy(&stdout).contains("404"));
    assert!(stderr.contains("fetch: HTTP 404: Not Found"), "{stderr}");

    // No server: a 599 and status 1; a malformed -H: status 2.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port() // closed at the end of this block
    };
    let (code, _, stderr) = run_fetch(&[&format!("http://127.0.0.1:{port}/")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("fetch: HTTP 599: "), "{stderr}");
    let (code, _, stderr) = run_fetch(&["-H", "no colon", &format!("http://{addr}/")]);
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn fetch_streams_a_download_to_the_output_file() {
    let dir = TempDir::new("fetch-download");
    let root = dir.0.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let payload: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &payload).unwrap();
    let root_arg = root.to_str().expect("utf-8 temp path");
    let (_server, addr) = start_server("file_server", "http", &["--root", root_arg]);

    let out = dir.0.join("out.bin");
    let out_arg = out.to_str().expect("utf-8 temp path");
    let (code, stdout, stderr) = run_fetch(&["-o", out_arg, &format!("http://{addr}/big.bin")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.is_empty(), "the body went to the file");
    assert!(stderr.contains("Content-Length: 5000000"), "{stderr}");
    assert!(std::fs::read(&out).unwrap() == payload, "the file differs");
}

/// Listens on a free port, reads one request (head and `Content-Length`
/// body), answers `200 ok`, and hands the request back as text.
fn capture_one_request() -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
            request.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        request.push_str(&String::from_utf8_lossy(&body));
        let mut writer = stream;
        writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        request
    });
    (addr, thread)
}

#[test]
fn fetch_sends_method_headers_data_and_multipart_forms() {
    // -X, -H and -d.
    let (addr, request) = capture_one_request();
    let url = format!("http://{addr}/put");
    let (code, stdout, stderr) = run_fetch(&["-X", "PUT", "-H", "X-Token: t1", "-d", "a=b", &url]);
    assert_eq!((code, stdout.as_slice()), (Some(0), &b"ok"[..]), "{stderr}");
    let request = request.join().unwrap();
    assert!(request.starts_with("PUT /put HTTP/1.1\r\n"), "{request}");
    assert!(request.contains("\r\nX-Token: t1\r\n"), "{request}");
    assert!(
        request.contains("\r\nContent-Type: application/x-www-form-urlencoded\r\n"),
        "{request}"
    );
    assert!(request.ends_with("\r\n\r\na=b"), "{request}");

    // -F: a field and a file, POSTed as multipart/form-data.
    let dir = TempDir::new("fetch-form");
    let file = dir.0.join("notes.txt");
    std::fs::write(&file, "file contents\n").unwrap();
    let file_arg = format!("doc=@{}", file.to_str().expect("utf-8 temp path"));
    let (addr, request) = capture_one_request();
    let url = format!("http://{addr}/upload");
    let (code, _, stderr) = run_fetch(&["-F", "api_key=k1", "-F", &file_arg, &url]);
    assert_eq!(code, Some(0), "{stderr}");
    let request = request.join().unwrap();
    assert!(
        request.starts_with("POST /upload HTTP/1.1\r\n"),
        "{request}"
    );
    let boundary = request
        .split("boundary=")
        .nth(1)
        .and_then(|rest| rest.split("\r\n").next())
        .unwrap_or_else(|| panic!("no boundary in {request}"));
    let field = "Content-Disposition: form-data; name=\"api_key\"\r\n\r\nk1\r\n";
    assert!(request.contains(field), "{request}");
    let file_part = "Content-Disposition: form-data; name=\"doc\"; filename=\"notes.txt\"\r\n\
                     Content-Type: text/plain\r\n\r\nfile contents\n\r\n";
    assert!(request.contains(file_part), "{request}");
    assert!(
        request.ends_with(&format!("--{boundary}--\r\n")),
        "{request}"
    );
}

#[test]
fn fetch_uploads_a_multipart_form_to_httpbin() {
    let dir = TempDir::new("fetch-httpbin");
    let file = dir.0.join("scan.txt");
    std::fs::write(&file, "scanned text\n").unwrap();
    let file_arg = format!("image=@{}", file.to_str().expect("utf-8 temp path"));
    let (_server, addr) = start_server("httpbin", "http", &[]);
    let url = format!("http://{addr}/post");
    let (code, stdout, stderr) = run_fetch(&["-F", "api_key=k1", "-F", &file_arg, &url]);
    assert_eq!(code, Some(0), "{stderr}");
    // httpbin echoes what it parsed: the field under "form", the file's
    // content under "files".
    let echoed = String::from_utf8_lossy(&stdout);
    let compact: String = echoed.split_whitespace().collect();
    assert!(compact.contains(r#""form":{"api_key":"k1"}"#), "{echoed}");
    assert!(
        compact.contains(r#""files":{"image":"scannedtext\n"}"#),
        "{echoed}"
    );
    assert!(
        echoed.contains("multipart/form-data; boundary="),
        "{echoed}"
    );
}
