//! Attacks on the web layer itself, over loopback (issue 9, "Web-layer
//! security"): static-file traversal tricks `static_files.rs` does not
//! already try, CR/LF injection from request data into headers, redirects
//! and cookies, open redirects through `//host`, signed cookies replayed
//! past `max_age_days` or tampered with in their framing, XSRF bypass
//! attempts, and oversized cookies.
//!
//! Where Tornado 6.6.1 has a protection, whirl mirrors it (the test names
//! the Tornado code); `security.rs`, `static_files.rs` and `handlers.rs`
//! hold the ordinary cases.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use support::{fetch, get, serve, Client, Response, TempDir, TestApp};
use whirl_web::cookie::CookieOptions;
use whirl_web::signing::{create_signed_value_at, create_signed_value_v1, SecretKeys};
use whirl_web::xsrf::encode_xsrf_token_with_mask;
use whirl_web::{
    Application, Context, HandlerResult, RedirectHandler, RequestHandler, Route, Settings,
    StaticFileHandler,
};

/// The cookie secret of the signed-cookie tests.
const SECRET: &str = "web-security-secret";

/// What lies outside the static root; no response may carry it.
const OUTSIDE: &str = "OUTSIDE THE ROOT";

/// A day.
const DAY: Duration = Duration::from_secs(86_400);

// ----- handlers ---------------------------------------------------------------

/// `/inject/<sink>?v=…`: puts request data into a header, a redirect or a
/// cookie, as careless handler code would.
struct Inject;

impl RequestHandler for Inject {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let sink = cx.path_arg(0).unwrap_or_default().to_string();
        let v = cx.get_argument("v")?;
        let d = CookieOptions::default();
        match sink.as_str() {
            "set_header" => cx.set_header("X-Echo", &v)?,
            "add_header" => cx.add_header("X-Echo", &v)?,
            "header_name" => cx.set_header(&v, "1")?,
            "redirect" => return cx.redirect(&v, false),
            "cookie_value" => cx.set_cookie("c", &v, &d)?,
            "cookie_name" => cx.set_cookie(&v, "1", &d)?,
            "cookie_path" => cx.set_cookie(
                "c",
                "1",
                &CookieOptions {
                    path: Some(v.clone()),
                    ..d
                },
            )?,
            "cookie_domain" => cx.set_cookie(
                "c",
                "1",
                &CookieOptions {
                    domain: Some(v.clone()),
                    ..d
                },
            )?,
            "signed_cookie" => cx.set_signed_cookie("c", &v)?,
            _ => return Err(whirl_web::HttpError::new(404)),
        }
        cx.write("set");
        Ok(())
    }
}

/// `…/relative`: a relative redirect, `target`.
struct Relative;

impl RequestHandler for Relative {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let to = cx.get_argument_or("to", "target")?;
        cx.redirect(&to, false)
    }
}

/// `/signed?max_age_days=…`: the signed cookie `user`, or `<none>`.
struct Signed;

impl RequestHandler for Signed {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let max_age = cx
            .get_argument("max_age_days")
            .ok()
            .and_then(|d| d.parse::<f64>().ok());
        let value = cx.get_signed_cookie("user", max_age)?;
        cx.write(value.unwrap_or_else(|| "<none>".into()));
        Ok(())
    }
}

/// `/protected`: needs a user from the signed cookie `user`.
struct Protected;

impl RequestHandler for Protected {
    async fn get_current_user(&mut self, cx: &mut Context) -> Option<String> {
        cx.get_signed_cookie("user", None).ok().flatten()
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let user = cx.authenticated()?;
        cx.write(format!("hello {user}"));
        Ok(())
    }
}

/// `/xsrf`: GET writes a token; POST writes `ok`.
struct Xsrf;

impl RequestHandler for Xsrf {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let token = cx.xsrf_token()?;
        cx.write(token);
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("ok");
        Ok(())
    }
}

/// `/cookie/<name>`: the request's cookie `name`, or `<none>`.
struct EchoCookie;

impl RequestHandler for EchoCookie {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let name = cx.path_arg(0).unwrap_or_default().to_string();
        let value = cx.get_cookie(&name).unwrap_or_else(|| "<none>".into());
        cx.write(format!("{}:{}", value.len(), &value[..value.len().min(16)]));
        Ok(())
    }
}

/// The application of every test but the static ones.
fn app() -> Application {
    Application::with_settings(
        vec![
            Route::new(r"/inject/(\w+)", || Inject),
            Route::new("/go/(.*)", || RedirectHandler::new("/{0}")),
            Route::new("/ext/(.*)", || {
                RedirectHandler::new("https://example.com/{0}")
            }),
            Route::new("/host/(.*)", || {
                RedirectHandler::new("https://example.com{0}")
            }),
            Route::new("/any/(.*)", || RedirectHandler::new("{0}")),
            Route::new(".*/relative", || Relative),
            Route::new("/signed", || Signed),
            Route::new(".*/protected", || Protected),
            Route::new("/xsrf", || Xsrf),
            Route::new("/cookie/(.*)", || EchoCookie),
        ],
        Settings {
            cookie_secret: Some(SecretKeys::single(SECRET)),
            login_url: Some("/login".into()),
            xsrf_cookies: true,
            ..Settings::default()
        },
    )
}

/// `GET path` with extra header lines (each ending in CRLF).
fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Response {
    fetch(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n"),
    )
}

/// Asserts `r` carries no header, cookie or body smuggled in by an
/// injection (the text `X-Injected` may appear inside a value, encoded).
fn assert_not_injected(what: &str, r: &Response) {
    for (name, value) in &r.headers {
        assert!(!name.contains("injected"), "{what}: injected header {name}");
        if name == "set-cookie" {
            assert!(!value.starts_with("injected"), "{what}: {value}");
        }
    }
    assert!(!r.text().contains("<script>"), "{what}: {}", r.text());
}

// ----- static files --------------------------------------------------------------

/// A static root with `robots.txt`, `dir/index.html`, a directory named
/// `evil.com`, `sub/` and (on Unix) symlinks: a chain out of the root, an
/// absolute one to the secret, a loop, a dangling one, a directory link
/// out, and a `default_filename` that links out; plus `outside/secret.txt`.
/// Returns the root.
fn static_tree(tmp: &TempDir) -> PathBuf {
    let root = tmp.mkdir("root");
    tmp.write("root/robots.txt", "User-agent: *\n");
    tmp.write("root/dir/index.html", "index");
    tmp.write("root/evil.com/index.html", "not a host");
    tmp.write("root/sub/file.txt", "sub file");
    tmp.mkdir("root/leaky");
    let secret = tmp.write("outside/secret.txt", OUTSIDE);
    tmp.write("outside/index.html", OUTSIDE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(&secret, root.join("hop2")).unwrap();
        symlink(root.join("hop2"), root.join("hop1")).unwrap();
        symlink(&secret, root.join("abs.txt")).unwrap();
        symlink(root.join("loop-b"), root.join("loop-a")).unwrap();
        symlink(root.join("loop-a"), root.join("loop-b")).unwrap();
        symlink(root.join("nowhere"), root.join("dangling")).unwrap();
        symlink(tmp.path().join("outside"), root.join("outdir")).unwrap();
        symlink(&secret, root.join("leaky/index.html")).unwrap();
        symlink("/etc/passwd", root.join("passwd")).unwrap();
    }
    root
}

/// Serves `root` under `/static/` (the setting) and at `/` with
/// `index.html` as default file.
fn static_app(root: PathBuf) -> TestApp {
    serve(move || {
        let served = root.clone();
        Application::with_settings(
            vec![Route::new("/(.*)", move || {
                StaticFileHandler::new(served.clone()).default_filename("index.html")
            })],
            Settings {
                static_path: Some(root),
                ..Settings::default()
            },
        )
    })
}

/// Asserts `raw` (sent as is) is refused with one of `allowed`, without
/// the secret, `/etc/passwd` or a redirect.
fn assert_refused(addr: SocketAddr, raw: &str, allowed: &[u16]) {
    let mut client = Client::connect(addr);
    client
        .send(format!("GET {raw} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes());
    let r = client.read_response("GET");
    assert!(
        allowed.contains(&r.status),
        "{raw}: {} not in {allowed:?}",
        r.status
    );
    assert!(!r.text().contains(OUTSIDE), "{raw} leaked the secret");
    assert!(!r.text().contains("root:"), "{raw} leaked /etc/passwd");
    assert!(r.header("location").is_none(), "{raw} redirected");
}

#[test]
fn static_traversal_tricks() {
    let tmp = TempDir::new("websec-static");
    let root = static_tree(&tmp);
    let server = static_app(root);
    for prefix in ["/static/", "/"] {
        for path in [
            // Double and triple encoding: decoded once, these are names.
            "%252e%252e%252foutside%252fsecret.txt",
            "%25252e%25252e/outside/secret.txt",
            "..%252foutside%252fsecret.txt",
            // Overlong UTF-8 for `.` and `/` (the old IIS trick): not
            // UTF-8, so not a path at all.
            "%c0%ae%c0%ae/outside/secret.txt",
            "%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt",
            "%e0%80%ae%e0%80%ae/outside/secret.txt",
            // Dots that are not `..`.
            "....//outside/secret.txt",
            "..../outside/secret.txt",
            "..;/outside/secret.txt",
            ".%2e/outside/secret.txt",
            "%2e./outside/secret.txt",
            "sub/.%2E/.%2e/outside/secret.txt",
            "%ef%bc%8e%ef%bc%8e/outside/secret.txt",
            // Backslashes, encoded and mixed.
            "sub%5c..%5c..%5coutside%5csecret.txt",
            "sub/..%5c../outside/secret.txt",
            "%5c%5cserver%5cshare%5csecret.txt",
            // Absolute paths in other spellings.
            "%2f%2fetc/passwd",
            "file:///etc/passwd",
            "C:%5cWindows%5cwin.ini",
            "C:/Windows/win.ini",
            // Through a symlink and back out.
            "outdir/../outside/secret.txt",
            "sub/../outdir/secret.txt",
        ] {
            assert_refused(server.addr, &format!("{prefix}{path}"), &[400, 403, 404]);
        }
    }
    // What is inside still is served.
    let r = get(server.addr, "/static/sub/file.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "sub file"));
}

#[cfg(unix)]
#[test]
fn static_symlink_tricks() {
    let tmp = TempDir::new("websec-symlink");
    let root = static_tree(&tmp);
    let server = static_app(root);
    for prefix in ["/static/", "/"] {
        for (path, allowed) in [
            // A chain of links whose end is outside.
            ("hop1", &[403][..]),
            ("hop2", &[403]),
            // An absolute link, and one to /etc/passwd.
            ("abs.txt", &[403]),
            ("passwd", &[403]),
            // A loop and a dangling link: refused, no hang.
            ("loop-a", &[403, 404]),
            ("dangling", &[404]),
            // A directory link out, with and without a file under it.
            ("outdir/", &[403]),
            ("outdir/index.html", &[403]),
            ("outdir/secret.txt", &[403]),
        ] {
            assert_refused(server.addr, &format!("{prefix}{path}"), allowed);
        }
    }
    // A default file that links out of the root.
    assert_refused(server.addr, "/leaky/", &[403]);
}

#[test]
fn static_directory_redirects_never_leave_the_host() {
    // Tornado's StaticFileHandler `_is_protocol_relative` check: with the
    // handler at the root, `//evil.com` names the directory `evil.com`,
    // and its slash-adding redirect must not be `//evil.com/`.
    let tmp = TempDir::new("websec-redirect");
    let root = static_tree(&tmp);
    let server = static_app(root);
    for raw in [
        "//evil.com",
        "///evil.com",
        "/%2fevil.com",
        "/%5cevil.com",
        "/%09/evil.com",
        "/.%2f/evil.com/..",
    ] {
        let r = get(server.addr, raw);
        let location = r.header("location").unwrap_or("");
        assert!(
            !protocol_relative(location),
            "{raw}: redirected to {location:?}"
        );
    }
    // The directory itself is redirected, on this host.
    let r = get(server.addr, "/evil.com");
    assert_eq!((r.status, r.header("location")), (301, Some("/evil.com/")));
}

/// Whether a browser would read `location` as `//host…` (Tornado's
/// `_is_protocol_relative`: leading and trailing C0 and spaces stripped,
/// tabs and newlines removed, backslashes read as slashes).
fn protocol_relative(location: &str) -> bool {
    let trimmed = location.trim_matches(|c: char| c <= ' ');
    let seen: String = trimmed
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect();
    seen.starts_with("//")
}

// ----- CR/LF injection ---------------------------------------------------------------

#[test]
fn crlf_from_request_data_never_reaches_the_wire() {
    let server = serve(app);
    let payloads = [
        "a%0d%0aX-Injected:%201",
        "a%0aX-Injected:%201",
        "a%0dX-Injected:%201",
        "a%0d%0a%0d%0a<script>alert(1)</script>",
        "a%0d%0aSet-Cookie:%20injected=1",
        "a%0bb",
        "a%0cb",
        "a%7fb",
    ];
    for sink in [
        "set_header",
        "add_header",
        "header_name",
        "redirect",
        "cookie_value",
        "cookie_name",
        "cookie_path",
        "cookie_domain",
    ] {
        for payload in payloads {
            let what = format!("{sink} {payload}");
            let mut client = Client::connect(server.addr);
            let r = client.request(&format!(
                "GET /inject/{sink}?v={payload} HTTP/1.1\r\nHost: test\r\n\r\n"
            ));
            assert_not_injected(&what, &r);
            if sink == "cookie_value" && payload == "a%7fb" {
                // As in Tornado (SimpleCookie), DEL in a value is quoted
                // as an octal escape: nothing raw reaches the wire.
                assert_eq!(r.header("set-cookie"), Some("c=\"a\\177b\"; Path=/"));
            } else {
                assert_eq!(r.status, 500, "{what}: {r:?}");
                assert!(r.header("set-cookie").is_none(), "{what}");
                assert!(r.header("location").is_none(), "{what}");
            }
            // One response, well framed: the connection goes on.
            let next = client.request("GET /cookie/x HTTP/1.1\r\nHost: test\r\n\r\n");
            assert_eq!(
                (next.status, next.text().as_str()),
                (200, "6:<none>"),
                "{what}"
            );
        }
    }
    // A signed cookie holds any value: base64 keeps it off the wire.
    for payload in payloads {
        let r = get(server.addr, &format!("/inject/signed_cookie?v={payload}"));
        assert_eq!(r.status, 200, "signed {payload}");
        assert_not_injected(payload, &r);
        assert_eq!(r.headers_named("set-cookie").len(), 1);
    }
    // Non-ASCII that a careless encoder would cut to CR and LF
    // (U+560A U+560D end in 0x0A and 0x0D).
    for sink in ["set_header", "redirect", "cookie_value"] {
        let r = get(
            server.addr,
            &format!("/inject/{sink}?v=a%E5%98%8A%E5%98%8DX-Injected:%201"),
        );
        assert_not_injected(sink, &r);
    }
}

#[test]
fn crlf_through_a_redirect_handler_is_a_400() {
    // Tornado 6.6 RedirectHandler: "Redirect URL contains invalid
    // characters" is a 400, not a 500 from set_header.
    let server = serve(app);
    for path in [
        "/go/a%0d%0aX-Injected:%201",
        "/go/a%0aX-Injected:%201",
        "/go/a%00b",
        "/ext/a%0d%0aX-Injected:%201",
    ] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 400, "{path}");
        assert_not_injected(path, &r);
        assert!(r.header("location").is_none(), "{path}");
    }
}

#[test]
fn authenticated_next_is_encoded() {
    let server = serve(app);
    let r = get(server.addr, "/a%0d%0aX-Injected:%201/protected");
    assert_eq!(r.status, 302);
    assert_not_injected("next", &r);
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fa%250d%250aX-Injected%3A%25201%2Fprotected")
    );
}

// ----- open redirects --------------------------------------------------------------------

#[test]
fn redirect_handler_substitutions_cannot_change_the_host() {
    // Tornado 6.6 RedirectHandler: a substitution may not change the
    // scheme or netloc of the URL (400).
    let server = serve(app);
    for path in [
        "/go//evil.com",
        "/go//evil.com/x",
        "/go/%2fevil.com",
        "/go/%2f%2fevil.com",
        "/go/%5cevil.com",
        "/go/%5c%5cevil.com",
        "/go/%09/evil.com",
        "/go/%0a/evil.com",
        "/host/.evil.com",
        "/host/@evil.com",
        "/host/:8080/",
        "/any/http:%2f%2fevil.com",
        "/any/https:evil.com",
        "/any///evil.com",
        "/any/%5c%5cevil.com",
        "/any/javascript:alert(1)",
    ] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 400, "{path}: {:?}", r.header("location"));
        assert!(r.header("location").is_none(), "{path}");
    }
    // What stays on the host is redirected.
    for (path, location) in [
        ("/go/a/b", "/a/b"),
        ("/go/a?next=//evil.com", "/a?next=//evil.com"),
        ("/go/", "/"),
        ("/ext/@evil.com", "https://example.com/@evil.com"),
        ("/ext//evil.com", "https://example.com//evil.com"),
        ("/host//path", "https://example.com/path"),
        // Relative, resolved beside the request path.
        ("/any/local/path", "/any/local/local/path"),
    ] {
        let r = get(server.addr, path);
        assert_eq!(
            (r.status, r.header("location")),
            (301, Some(location)),
            "{path}"
        );
    }
}

#[test]
fn a_relative_redirect_is_never_joined_into_another_host() {
    // Tornado sends a relative URL as it is; whirl joins it to the request
    // path, which must not make `//evil.com/relative` + `target` into
    // `//evil.com/target`, nor `/` + `\evil.com` into `/\evil.com`.
    let server = serve(app);
    for (path, to) in [
        ("//evil.com/relative", "target"),
        ("//evil.com/x/relative", "target"),
        ("/relative", "%5cevil.com"),
        ("/relative", "%5c%5cevil.com"),
        ("/x/relative", "%09/evil.com"),
    ] {
        let r = get(server.addr, &format!("{path}?to={to}"));
        assert_eq!(r.status, 302, "{path} {to}");
        let location = r.header("location").unwrap_or("");
        let joined_away = protocol_relative(location)
            && !protocol_relative(&to.replace("%5c", "\\").replace("%09", "\t"));
        assert!(!joined_away, "{path} + {to} became {location:?}");
    }
    // Ordinary relative redirects are still resolved beside the path.
    let r = get(server.addr, "/a/b/relative?to=c");
    assert_eq!(r.header("location"), Some("/a/b/c"));
}

#[test]
fn the_login_redirect_never_points_away() {
    // `authenticated` puts the request URI in `next`, encoded: even a path
    // that starts with `//` is a query value, not a host.
    let server = serve(app);
    for path in ["//evil.com/protected", "/%2f%2fevil.com/protected"] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 302, "{path}");
        let location = r.header("location").unwrap();
        assert!(location.starts_with("/login?next="), "{path}: {location}");
        assert!(!protocol_relative(location), "{path}: {location}");
    }
}

// ----- signed cookies ------------------------------------------------------------------

/// `user=<value signed at `when`>`.
fn signed_at(value: &str, when: SystemTime) -> String {
    format!(
        "user={}",
        create_signed_value_at(&SecretKeys::single(SECRET), "user", value.as_bytes(), when)
    )
}

#[test]
fn signed_cookies_replayed_past_max_age_are_absent() {
    let server = serve(app);
    let now = SystemTime::now();
    let read = |cookie: &str, query: &str| {
        get_with(
            server.addr,
            &format!("/signed{query}"),
            &format!("Cookie: {cookie}\r\n"),
        )
        .text()
    };
    // Fresh: read.
    assert_eq!(read(&signed_at("alice", now), ""), "alice");
    // 32 days old: past the default 31 days, but within 33.
    let old = signed_at("alice", now - 32 * DAY);
    assert_eq!(read(&old, ""), "<none>");
    assert_eq!(read(&old, "?max_age_days=33"), "alice");
    // 10 days old against a 7-day limit.
    let week_old = signed_at("alice", now - 10 * DAY);
    assert_eq!(read(&week_old, "?max_age_days=7"), "<none>");
    assert_eq!(read(&week_old, ""), "alice");
    // A replayed login past its age is no login.
    let r = get_with(server.addr, "/protected", &format!("Cookie: {old}\r\n"));
    assert_eq!(r.status, 302);
    // The old version 1 format, replayed late or dated in the future.
    let v1 = |when| {
        format!(
            "user={}",
            create_signed_value_v1(SECRET.as_bytes(), "user", b"alice", when)
        )
    };
    assert_eq!(read(&v1(now), ""), "alice");
    assert_eq!(read(&v1(now - 32 * DAY), ""), "<none>");
    assert_eq!(read(&v1(now + 40 * DAY), ""), "<none>");
}

#[test]
fn signed_cookie_framing_tricks_are_absent_never_an_error() {
    let server = serve(app);
    let good = create_signed_value_at(
        &SecretKeys::single(SECRET),
        "user",
        b"alice",
        SystemTime::now(),
    );
    let fields: Vec<&str> = good.split('|').collect();
    let signature = fields[5];
    let cases = vec![
        // Length prefixes that lie.
        good.replacen("4:user", "5:user|", 1),
        good.replacen("8:YWxpY2U=", "9:YWxpY2U=", 1),
        good.replacen("8:YWxpY2U=", "99999999999999999999999:YWxpY2U=", 1),
        good.replacen("8:YWxpY2U=", "-8:YWxpY2U=", 1),
        good.replacen("8:YWxpY2U=", "+8:YWxpY2U=", 1),
        good.replacen("8:YWxpY2U=", "8 :YWxpY2U=", 1),
        // Fields moved or added, signature kept.
        format!(
            "2|1:0|{}|4:user|8:YWxpY2U=|8:YWxpY2U=|{signature}",
            fields[2]
        ),
        format!("{good}|"),
        format!("{good}0"),
        good.replacen("2|", "3|", 1),
        good.replacen("2|1:0|", "2|2:00|", 1),
        good.replacen("2|1:0|", "2|2:-0|", 1),
        // Values that are not base64, or huge.
        format!("2|1:0|{}|4:user|3:!!!|{signature}", fields[2]),
        format!("2|1:0|{}|4:user|{}", fields[2], "9".repeat(30_000)),
        "2".repeat(40_000),
        "|".repeat(10_000),
        "2|1:0|10:1600000000|4:user|".to_string(),
        "\"2|1:0\"".to_string(),
    ];
    for value in cases {
        let r = get_with(server.addr, "/signed", &format!("Cookie: user={value}\r\n"));
        let short = &value[..value.len().min(60)];
        assert_eq!((r.status, r.text().as_str()), (200, "<none>"), "{short}");
    }
}

// ----- XSRF ------------------------------------------------------------------------------

/// A fresh (cookie, token) pair from `GET /xsrf`.
fn xsrf_pair(addr: SocketAddr) -> (String, String) {
    let r = get(addr, "/xsrf");
    (r.cookies()["_xsrf"].clone(), r.text())
}

/// A `POST /xsrf` with extra `headers` and a form `body`: the status.
fn post(addr: SocketAddr, headers: &str, body: &str) -> u16 {
    fetch(
        addr,
        &format!(
            "POST /xsrf HTTP/1.1\r\nHost: test\r\n{headers}\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .status
}

/// Form-encodes a token.
fn enc(token: &str) -> String {
    whirl_web::escape::url_escape(token, true)
}

#[test]
fn xsrf_bypass_attempts() {
    let server = serve(app);
    let addr = server.addr;
    let (cookie_a, token_a) = xsrf_pair(addr);
    let (cookie_b, token_b) = xsrf_pair(addr);
    // The genuine pair passes.
    assert_eq!(
        post(
            addr,
            &format!("Cookie: _xsrf={cookie_a}\r\n"),
            &format!("_xsrf={}", enc(&token_a))
        ),
        200
    );
    // Missing cookie, with the token in the field or the header.
    assert_eq!(post(addr, "", &format!("_xsrf={}", enc(&token_a))), 403);
    assert_eq!(post(addr, &format!("X-XSRFToken: {token_a}\r\n"), ""), 403);
    // Both empty.
    assert_eq!(post(addr, "Cookie: _xsrf=\r\n", "_xsrf="), 403);
    // A token minted for another session's cookie.
    assert_eq!(
        post(
            addr,
            &format!("Cookie: _xsrf={cookie_a}\r\n"),
            &format!("_xsrf={}", enc(&token_b))
        ),
        403
    );
    assert_eq!(
        post(
            addr,
            &format!("Cookie: _xsrf={cookie_b}\r\nX-XSRFToken: {token_a}\r\n"),
            ""
        ),
        403
    );
    // The wrong token in the form field is not rescued by a right header.
    assert_eq!(
        post(
            addr,
            &format!("Cookie: _xsrf={cookie_a}\r\nX-XSRFToken: {token_a}\r\n"),
            &format!("_xsrf={}", enc(&token_b))
        ),
        403
    );
    // A method override header changes nothing.
    assert_eq!(
        post(
            addr,
            &format!("Cookie: _xsrf={cookie_a}\r\nX-HTTP-Method-Override: GET\r\n"),
            ""
        ),
        403
    );
    // The cookie's own mask changed but not its token: still its token
    // (masking is only against compression attacks), so this passes...
    let raw = whirl_web::xsrf::decode_xsrf_token(&cookie_a).unwrap();
    let remasked = encode_xsrf_token_with_mask(&raw.token, [1, 2, 3, 4], 0);
    assert_eq!(
        post(
            addr,
            &format!("Cookie: _xsrf={cookie_a}\r\n"),
            &format!("_xsrf={}", enc(&remasked))
        ),
        200
    );
    // ...while one flipped bit of the token fails.
    let mut flipped = raw.token.clone();
    flipped[0] ^= 1;
    let forged = encode_xsrf_token_with_mask(&flipped, [1, 2, 3, 4], 0);
    assert_eq!(
        post(
            addr,
            &format!("Cookie: _xsrf={cookie_a}\r\n"),
            &format!("_xsrf={}", enc(&forged))
        ),
        403
    );
    // Malformed tokens in the field or the cookie: 403, never a 500.
    let long_hex = "0".repeat(40_000);
    for bad in [
        "2|",
        "2|||",
        "2|zzzzzzzz|00|1",
        "2|0000000|00|1",
        "2|00000000|0|1",
        "2|00000000||1",
        "2|00000000|00|x",
        "2|00000000|00|99999999999999999999999",
        "2|00000000|00|1|extra",
        "2|é|é|1",
        "3|00000000|00|1",
        " ",
        &format!("2|00000000|{long_hex}|1"),
    ] {
        assert_eq!(
            post(
                addr,
                &format!("Cookie: _xsrf={cookie_a}\r\n"),
                &format!("_xsrf={}", enc(bad))
            ),
            403,
            "field {:?}",
            &bad[..bad.len().min(30)]
        );
        assert_eq!(
            post(
                addr,
                &format!("Cookie: _xsrf={}\r\n", enc(bad)),
                &format!("_xsrf={}", enc(bad))
            ),
            403,
            "cookie and field {:?}",
            &bad[..bad.len().min(30)]
        );
    }
}

// ----- oversized cookies ---------------------------------------------------------------

#[test]
fn oversized_cookies_are_a_431_not_a_crash() {
    let server = serve(app);
    let addr = server.addr;
    // Near the 64 KiB head limit: served, and read.
    let near = format!("Cookie: big={}\r\n", "v".repeat(60 * 1024));
    let r = get_with(addr, "/cookie/big", &near);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "61440:vvvvvvvvvvvvvvvv")
    );
    // Thousands of small cookies near the limit; the last one wins.
    let many: String = (0..6000).map(|i| format!("k{}=v{i}; ", i % 7)).collect();
    let r = get_with(addr, "/cookie/k0", &format!("Cookie: {many}k0=last\r\n"));
    assert_eq!((r.status, r.text().as_str()), (200, "4:last"));
    // Separators with nothing between them.
    let empty = format!("Cookie: {}a=1\r\n", ";".repeat(50_000));
    let r = get_with(addr, "/cookie/a", &empty);
    assert_eq!((r.status, r.text().as_str()), (200, "1:1"));
    // A huge signed cookie or XSRF cookie is simply not valid.
    let huge = format!("Cookie: user=2|{}\r\n", "1".repeat(60 * 1024));
    assert_eq!(get_with(addr, "/signed", &huge).text(), "<none>");
    let huge_xsrf = format!("Cookie: _xsrf=2|{}\r\n", "a".repeat(60 * 1024));
    assert_eq!(post(addr, &huge_xsrf, "_xsrf=x"), 403);
    // Over the limit: 431 and the connection closed; in one header or two.
    for headers in [
        format!("Cookie: big={}\r\n", "v".repeat(65 * 1024)),
        format!(
            "Cookie: a={}\r\nCookie: b={}\r\n",
            "v".repeat(33 * 1024),
            "v".repeat(33 * 1024)
        ),
    ] {
        let mut client = Client::connect(addr);
        client.send(format!("GET /cookie/big HTTP/1.1\r\nHost: test\r\n{headers}\r\n").as_bytes());
        let r = client.read_response("GET");
        assert_eq!(r.status, 431);
        assert!(client.is_closed());
    }
    // And the server goes on.
    let r = get(addr, "/cookie/none");
    assert_eq!((r.status, r.text().as_str()), (200, "6:<none>"));
}
