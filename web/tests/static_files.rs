//! Static files over loopback: the application's `static_path` route and a
//! `StaticFileHandler` route of its own — Tornado's `StaticFileTest`,
//! `StaticFileSymlinkTest`, `StaticDefaultFilenameTest` and
//! `StaticDefaultFilenameRootTest` (web_test.py, Tornado 6.6.1).

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha512};
use support::{fetch, get, serve, Client, Response, TempDir, TestApp};
use whirl_httpserver::{format_timestamp, parse_http_date};
use whirl_web::{
    Application, Context, HandlerResult, RequestHandler, Route, Settings, StaticFileHandler,
};

/// Tornado's test `robots.txt`: 26 bytes.
const ROBOTS: &[u8] = b"User-agent: *\nDisallow: /\n";

/// What lies outside the root; no response may ever carry it.
const SECRET: &str = "TOP SECRET outside the root";

/// Size of the big file: 8 MiB.
const BIG_LEN: usize = 8 * 1024 * 1024;

/// `/static_url/<path>`: what `cx.static_url(path)` gives.
struct StaticUrl;

impl RequestHandler for StaticUrl {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let path = cx.path_arg(0).unwrap_or_default().to_string();
        let url = cx.static_url(&path)?;
        cx.write(url);
        Ok(())
    }
}

/// A served tree in a temp dir and the server serving it (dropped first).
struct Fixture {
    /// The server.
    server: TestApp,
    /// The static root.
    root: PathBuf,
    /// The big file's bytes.
    big: Vec<u8>,
    /// The temp dir holding `static/` and `outside/`.
    _tmp: TempDir,
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Builds the tree:
///
/// ```text
/// static/robots.txt, style.css, page.html, sample.xml(.gz/.bz2), README,
///        a b.txt, empty.txt, big.bin, index.html ("root index"),
///        dir/index.html, sub/file.txt, emptydir/,
///        link.txt -> ../outside/secret.txt, linkdir -> ../outside,
///        internal.txt -> robots.txt
/// outside/secret.txt
/// ```
fn tree(tmp: &TempDir) -> (PathBuf, Vec<u8>) {
    let root = tmp.mkdir("static");
    tmp.write("static/robots.txt", ROBOTS);
    tmp.write("static/style.css", "body { color: red }\n");
    tmp.write("static/page.html", "<p>page</p>\n");
    tmp.write("static/sample.xml", "<a/>\n");
    tmp.write("static/sample.xml.gz", "not really gzip");
    tmp.write("static/sample.xml.bz2", "not really bzip2");
    tmp.write("static/README", "readme");
    tmp.write("static/a b.txt", "spaced");
    tmp.write("static/empty.txt", "");
    tmp.write("static/index.html", "root index");
    tmp.write("static/dir/index.html", "this is the index\n");
    tmp.write("static/sub/file.txt", "sub file");
    tmp.mkdir("static/emptydir");
    let big = noise(BIG_LEN);
    tmp.write("static/big.bin", &big);
    let secret = tmp.write("outside/secret.txt", SECRET);
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(&secret, root.join("link.txt")).unwrap();
        symlink(tmp.path().join("outside"), root.join("linkdir")).unwrap();
        symlink(root.join("robots.txt"), root.join("internal.txt")).unwrap();
    }
    let _ = secret;
    (root, big)
}

/// The fixture with `settings` (its `static_path` set to the root) and the
/// routes `/files/(.*)` (with `index.html` as default file) and
/// `/static_url/(.*)`.
fn fixture_with(settings: Settings) -> Fixture {
    let tmp = TempDir::new("static");
    let (root, big) = tree(&tmp);
    let served = root.clone();
    let server = serve(move || {
        let files = served.clone();
        Application::with_settings(
            vec![
                Route::new(r"/files/(.*)", move || {
                    StaticFileHandler::new(files.clone()).default_filename("index.html")
                }),
                Route::new(r"/static_url/(.*)", || StaticUrl),
            ],
            Settings {
                static_path: Some(served),
                ..settings
            },
        )
    });
    Fixture {
        server,
        root,
        big,
        _tmp: tmp,
    }
}

fn fixture() -> Fixture {
    fixture_with(Settings::default())
}

/// A GET with extra header lines (each ending in CRLF).
fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Response {
    fetch(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n"),
    )
}

/// Tornado's `get_and_head`: a HEAD and a GET with the same headers; every
/// `Content-*` header (and the status) must agree. Returns the GET.
fn get_and_head(addr: SocketAddr, path: &str, headers: &str) -> Response {
    let head = fetch(
        addr,
        &format!("HEAD {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n"),
    );
    let get = get_with(addr, path, headers);
    assert_eq!(head.status, get.status, "HEAD and GET {path} [{headers}]");
    assert!(head.body.is_empty());
    let names: Vec<&String> = head
        .headers
        .iter()
        .chain(get.headers.iter())
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("content-") || *n == "etag" || *n == "last-modified")
        .collect();
    for name in names {
        assert_eq!(
            head.header(name),
            get.header(name),
            "{name} differs between HEAD and GET {path} [{headers}]"
        );
    }
    get
}

/// The hex SHA-512 of `bytes` (the static version).
fn sha512_hex(bytes: &[u8]) -> String {
    Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The file's mtime in whole seconds.
fn mtime(path: &std::path::Path) -> SystemTime {
    let modified = std::fs::metadata(path).unwrap().modified().unwrap();
    let secs = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

// ----- serving -----------------------------------------------------------------

#[test]
fn serves_a_file_with_validators() {
    let f = fixture();
    let r = get(f.addr(), "/static/robots.txt");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, ROBOTS);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some("26"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let etag = format!("\"{}\"", sha512_hex(ROBOTS));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let modified = format_timestamp(mtime(&f.root.join("robots.txt")));
    assert_eq!(r.header("last-modified"), Some(modified.as_str()));
    // Only a versioned URL may be cached.
    assert!(r.header("cache-control").is_none());
    assert!(r.header("expires").is_none());
}

#[test]
fn content_type_comes_from_the_extension() {
    let f = fixture();
    for (path, expected) in [
        ("style.css", "text/css"),
        ("page.html", "text/html"),
        ("sample.xml.gz", "application/gzip"),
        ("sample.xml.bz2", "application/octet-stream"),
        ("README", "application/octet-stream"),
        ("big.bin", "application/octet-stream"),
    ] {
        let r = get(f.addr(), &format!("/static/{path}"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(expected), "{path}");
    }
    let r = get(f.addr(), "/static/sample.xml");
    let xml = r.header("content-type").unwrap();
    assert!(xml == "text/xml" || xml == "application/xml", "{xml}");
}

#[test]
fn head_has_the_headers_and_no_body() {
    let f = fixture();
    let mut client = Client::connect(f.addr());
    let r = client.request("HEAD /static/robots.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("26"));
    let etag = format!("\"{}\"", sha512_hex(ROBOTS));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    // Nothing stray follows on the connection: the next GET parses.
    let r = client.request("HEAD /static/robots.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(r.status, 200);
    let r = client.request("GET /static/robots.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!((r.status, r.body.as_slice()), (200, ROBOTS));
    // HEAD with a range: 206 and the range's length.
    let r = client
        .request("HEAD /static/robots.txt HTTP/1.1\r\nHost: test\r\nRange: bytes=1-4\r\n\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-length"), Some("4"));
    assert_eq!(r.header("content-range"), Some("bytes 1-4/26"));
}

#[test]
fn the_same_for_a_custom_route_and_default_filename() {
    let f = fixture();
    let r = get(f.addr(), "/files/robots.txt");
    assert_eq!((r.status, r.body.as_slice()), (200, ROBOTS));
    let r = get(f.addr(), "/files/sub/file.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "sub file"));
    let r = get(f.addr(), "/files/dir/");
    assert_eq!((r.status, r.text().as_str()), (200, "this is the index\n"));
    assert_eq!(r.header("content-type"), Some("text/html"));
    let r = get(f.addr(), "/files/");
    assert_eq!((r.status, r.text().as_str()), (200, "root index"));
    // A directory without an index file.
    assert_eq!(get(f.addr(), "/files/emptydir/").status, 404);
}

#[test]
fn a_directory_without_its_slash_redirects() {
    let f = fixture();
    let r = get(f.addr(), "/files/dir");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/files/dir/"));
    let r = get(f.addr(), "/files/emptydir");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/files/emptydir/"));
    // Without a default_filename a directory is not servable at all
    // (Tornado's test_static_directory_without_default_filename).
    let r = get_and_head(f.addr(), "/static/dir/", "");
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("this is the index"));
}

#[test]
fn a_directory_without_default_filename_redirects_then_is_forbidden() {
    // whirl redirects `dir` to `dir/` even without a default file (the
    // file_server example lists directories there); Tornado answers 403 at
    // once. Either way the directory itself is never served.
    let f = fixture();
    let r = get(f.addr(), "/static/dir");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/static/dir/"));
    assert_eq!(get(f.addr(), "/static/dir/").status, 403);
}

#[test]
fn missing_files_are_404() {
    let f = fixture();
    for path in [
        "/static/nope.txt",
        "/static/sub/nope",
        "/static/nodir/file.txt",
        "/static/robots.txt/x",
        "/files/nope.txt",
    ] {
        let r = get_and_head(f.addr(), path, "");
        assert_eq!(r.status, 404, "{path}");
    }
}

#[test]
fn only_get_and_head_are_allowed() {
    let f = fixture();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = fetch(
            f.addr(),
            &format!(
                "{method} /static/robots.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n"
            ),
        );
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
        assert!(!r.body.starts_with(b"User-agent"));
    }
}

#[test]
fn an_empty_file() {
    let f = fixture();
    let r = get_and_head(f.addr(), "/static/empty.txt", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.body.is_empty());
    let r = get_and_head(f.addr(), "/static/empty.txt", "Range: bytes=0-0\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */0"));
}

// ----- conditional requests ------------------------------------------------------

#[test]
fn if_none_match_gives_304() {
    let f = fixture();
    let first = get_and_head(f.addr(), "/static/robots.txt", "");
    let etag = first.header("etag").unwrap().to_string();
    for header in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_string(),
    ] {
        let r = get_and_head(
            f.addr(),
            "/static/robots.txt",
            &format!("If-None-Match: {header}\r\n"),
        );
        assert_eq!(r.status, 304, "If-None-Match: {header}");
        assert!(r.body.is_empty());
        assert!(r.header("content-length").is_none(), "{r:?}");
        assert!(r.header("content-type").is_none(), "{r:?}");
        assert_eq!(r.header("etag"), Some(etag.as_str()));
    }
    let r = get_and_head(
        f.addr(),
        "/static/robots.txt",
        "If-None-Match: \"MISMATCH\"\r\n",
    );
    assert_eq!((r.status, r.body.as_slice()), (200, ROBOTS));
}

#[test]
fn if_modified_since_gives_304() {
    let f = fixture();
    let first = get_and_head(f.addr(), "/static/robots.txt", "");
    let modified = first.header("last-modified").unwrap().to_string();
    let r = get_and_head(
        f.addr(),
        "/static/robots.txt",
        &format!("If-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(r.status, 304);
    assert!(r.header("content-length").is_none());

    // Just before and just after the file's mtime.
    let mtime = mtime(&f.root.join("robots.txt"));
    let before = format_timestamp(mtime - Duration::from_secs(1));
    let after = format_timestamp(mtime + Duration::from_secs(1));
    let r = get_and_head(
        f.addr(),
        "/static/robots.txt",
        &format!("If-Modified-Since: {before}\r\n"),
    );
    assert_eq!(r.status, 200);
    let r = get_and_head(
        f.addr(),
        "/static/robots.txt",
        &format!("If-Modified-Since: {after}\r\n"),
    );
    assert_eq!(r.status, 304);

    // Invalid and pre-epoch dates are ignored.
    for date in ["!nv@l!d", "Fri, 01 Jan 1960 00:00:00 GMT"] {
        let r = get_and_head(
            f.addr(),
            "/static/robots.txt",
            &format!("If-Modified-Since: {date}\r\n"),
        );
        assert_eq!((r.status, r.body.as_slice()), (200, ROBOTS), "{date}");
    }
}

#[test]
fn if_none_match_wins_over_if_modified_since() {
    let f = fixture();
    let first = get(f.addr(), "/static/robots.txt");
    let modified = first.header("last-modified").unwrap();
    let r = get_and_head(
        f.addr(),
        "/static/robots.txt",
        &format!("If-None-Match: \"MISMATCH\"\r\nIf-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_range_with_a_matching_etag_is_304() {
    let f = fixture();
    let etag = format!("\"{}\"", sha512_hex(ROBOTS));
    let r = get_and_head(
        f.addr(),
        "/static/robots.txt",
        &format!("Range: bytes=1-4\r\nIf-None-Match: {etag}\r\n"),
    );
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert!(r.header("content-length").is_none());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
}

// ----- ranges --------------------------------------------------------------------

#[test]
fn a_single_range_is_206() {
    let f = fixture();
    let etag = format!("\"{}\"", sha512_hex(ROBOTS));
    for (range, status, body, content_range) in [
        ("bytes=0-9", 206, &b"User-agent"[..], Some("bytes 0-9/26")),
        ("bytes=1-10000000", 206, &ROBOTS[1..], Some("bytes 1-25/26")),
        ("bytes=22-", 206, &b": /\n"[..], Some("bytes 22-25/26")),
        ("bytes=-4", 206, &b": /\n"[..], Some("bytes 22-25/26")),
        ("bytes=5-5", 206, &b"a"[..], Some("bytes 5-5/26")),
        // Ranges covering the whole file are a plain 200.
        ("bytes=0-", 200, ROBOTS, None),
        ("bytes=0-10000000", 200, ROBOTS, None),
        ("bytes=-1000000", 200, ROBOTS, None),
        // Not a byte range, or several: the whole file.
        ("asdf", 200, ROBOTS, None),
        ("items=0-1", 200, ROBOTS, None),
        ("bytes=0-1,3-4", 200, ROBOTS, None),
        ("bytes=0-1, 5-", 200, ROBOTS, None),
    ] {
        let r = get_and_head(
            f.addr(),
            "/static/robots.txt",
            &format!("Range: {range}\r\n"),
        );
        assert_eq!(r.status, status, "{range}");
        assert_eq!(r.body, body, "{range}");
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str()),
            "{range}"
        );
        assert_eq!(r.header("content-range"), content_range, "{range}");
        assert_eq!(r.header("etag"), Some(etag.as_str()), "{range}");
    }
}

#[test]
fn an_unsatisfiable_range_is_416() {
    let f = fixture();
    for range in [
        "bytes=-0",
        "bytes=10-3",
        "bytes=26-",
        "bytes=26-30",
        "bytes=1000-",
    ] {
        let r = get_and_head(
            f.addr(),
            "/static/robots.txt",
            &format!("Range: {range}\r\n"),
        );
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */26"), "{range}");
        assert!(!r.body.starts_with(b"User"), "{range}");
    }
}

#[test]
fn a_range_without_a_dash_is_ignored_per_rfc_9110() {
    // RFC 9110 §14.2: an invalid range-spec is ignored (the whole file);
    // Tornado reads `bytes=26` as `bytes=26-` and answers 416.
    let f = fixture();
    let r = get_and_head(f.addr(), "/static/robots.txt", "Range: bytes=26\r\n");
    assert_eq!((r.status, r.body.as_slice()), (200, ROBOTS));
}

// ----- traversal -----------------------------------------------------------------

/// Asserts `raw_path` is refused (403 or 404, or 400 from the parser) and
/// never answered with what lies outside the root.
fn assert_refused(addr: SocketAddr, raw_path: &str, allowed: &[u16]) {
    let mut client = Client::connect(addr);
    client.send(
        format!("GET {raw_path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let r = client.read_response("GET");
    assert!(
        allowed.contains(&r.status),
        "{raw_path}: {} not in {allowed:?}",
        r.status
    );
    assert!(!r.text().contains(SECRET), "{raw_path} leaked the secret");
    assert!(!r.text().contains("root:"), "{raw_path} leaked /etc/passwd");
    assert!(r.header("location").is_none(), "{raw_path} redirected");
}

#[test]
fn traversal_is_refused() {
    let f = fixture();
    let outside = f.root.parent().unwrap().join("outside/secret.txt");
    let absolute = outside.to_str().unwrap().to_string();
    for prefix in ["/static/", "/files/"] {
        for path in [
            "../outside/secret.txt",
            "%2e%2e/outside/secret.txt",
            "%2E%2E/outside/secret.txt",
            "..%2Foutside%2Fsecret.txt",
            "%2F..%2Foutside%2Fsecret.txt",
            "sub/../../outside/secret.txt",
            "sub/..%2F..%2Foutside/secret.txt",
            "sub/%2e%2e/%2e%2e/outside/secret.txt",
            "..%5Coutside%5Csecret.txt",
            "sub%5C..%5C..%5Coutside%5Csecret.txt",
            "/etc/passwd",
            "%2Fetc%2Fpasswd",
            "robots.txt%00.html",
        ] {
            assert_refused(f.addr(), &format!("{prefix}{path}"), &[403, 404]);
        }
        // The absolute path of the secret, as is and encoded.
        assert_refused(f.addr(), &format!("{prefix}{absolute}"), &[403, 404]);
        let encoded = absolute.replace('/', "%2F");
        assert_refused(f.addr(), &format!("{prefix}{encoded}"), &[403, 404]);
        // A raw backslash may be refused by the request parser itself.
        assert_refused(
            f.addr(),
            &format!("{prefix}..\\outside\\secret.txt"),
            &[400, 403, 404],
        );
    }
    // Tornado's exact answer for `..`: 403.
    assert_eq!(get(f.addr(), "/static/../outside/secret.txt").status, 403);
    assert_eq!(
        get(f.addr(), "/static/%2e%2e/outside/secret.txt").status,
        403
    );
    // And the files inside still work.
    assert_eq!(get(f.addr(), "/static/sub/file.txt").status, 200);
}

#[test]
fn two_leading_slashes_never_redirect() {
    // Tornado's test_no_open_redirect: with the handler at the root, a
    // path starting with `//` must not produce a `Location: //evil.com/…`.
    let tmp = TempDir::new("static-root");
    let (root, _) = tree(&tmp);
    let server = serve(move || {
        Application::new(vec![Route::new(r"/(.*)", move || {
            StaticFileHandler::new(root.clone()).default_filename("index.html")
        })])
    });
    assert_refused(server.addr, "//evil.com/../dir", &[403, 404]);
    assert_refused(server.addr, "//dir", &[403, 404]);
    assert_refused(server.addr, "/\\evil.com/../dir", &[400, 403, 404]);
    assert_eq!(get(server.addr, "/dir").status, 301);
    assert_eq!(get(server.addr, "/dir/").status, 200);
    drop(server);
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_root_are_refused() {
    let f = fixture();
    for path in [
        "/static/link.txt",
        "/static/linkdir/secret.txt",
        "/files/link.txt",
    ] {
        let r = get_and_head(f.addr(), path, "");
        assert_eq!(r.status, 403, "{path}");
        assert!(!r.text().contains(SECRET), "{path}");
    }
    // A symlink out of the root is refused the same way as a directory
    // (no redirect that would tell the target exists).
    let r = get(f.addr(), "/files/linkdir");
    assert_eq!(r.status, 403);
    assert!(r.header("location").is_none());
    // One that stays inside is served.
    let r = get(f.addr(), "/static/internal.txt");
    assert_eq!((r.status, r.body.as_slice()), (200, ROBOTS));
}

// ----- static_url and caching ------------------------------------------------------

#[test]
fn static_url_is_versioned_and_cached_for_years() {
    let f = fixture();
    let version = &sha512_hex(ROBOTS)[..32];
    let url = get(f.addr(), "/static_url/robots.txt").text();
    assert_eq!(url, format!("/static/robots.txt?v={version}"));

    let r = get_and_head(f.addr(), &url, "");
    assert_eq!((r.status, r.body.as_slice()), (200, ROBOTS));
    assert_eq!(r.header("cache-control"), Some("max-age=315360000"));
    let expires = parse_http_date(r.header("expires").expect("Expires")).unwrap();
    let nine_years = SystemTime::now() + Duration::from_secs(9 * 365 * 86_400);
    assert!(expires > nine_years);
    // Any `v` marks a versioned URL, as in Tornado.
    let r = get(f.addr(), "/static/robots.txt?v=12345");
    assert_eq!(r.header("cache-control"), Some("max-age=315360000"));
    let r = get(f.addr(), "/static/robots.txt?version=1");
    assert!(r.header("cache-control").is_none());
}

#[test]
fn static_url_encodes_names_and_skips_missing_files() {
    let f = fixture();
    let url = get(f.addr(), "/static_url/a%20b.txt").text();
    let version = &sha512_hex(b"spaced")[..32];
    assert_eq!(url, format!("/static/a%20b.txt?v={version}"));
    let r = get(f.addr(), &url);
    assert_eq!((r.status, r.text().as_str()), (200, "spaced"));

    let url = get(f.addr(), "/static_url/sub/file.txt").text();
    assert!(url.starts_with("/static/sub/file.txt?v="), "{url}");
    assert_eq!(get(f.addr(), &url).text(), "sub file");

    // No file, no version (Tornado logs and leaves it out).
    assert_eq!(
        get(f.addr(), "/static_url/nope.css").text(),
        "/static/nope.css"
    );
}

#[test]
fn static_url_follows_a_changed_file() {
    let f = fixture();
    let before = get(f.addr(), "/static_url/style.css").text();
    std::fs::write(
        f.root.join("style.css"),
        "body { color: blue; margin: 0 }\n",
    )
    .unwrap();
    let after = get(f.addr(), "/static_url/style.css").text();
    assert_ne!(before, after);
    let version = &sha512_hex(b"body { color: blue; margin: 0 }\n")[..32];
    assert_eq!(after, format!("/static/style.css?v={version}"));
    let r = get(f.addr(), &after);
    assert_eq!(r.text(), "body { color: blue; margin: 0 }\n");
}

#[test]
fn static_url_prefix_setting() {
    let f = fixture_with(Settings {
        static_url_prefix: Some("/assets/".into()),
        ..Settings::default()
    });
    let url = get(f.addr(), "/static_url/robots.txt").text();
    assert!(url.starts_with("/assets/robots.txt?v="), "{url}");
    assert_eq!(get(f.addr(), &url).body, ROBOTS);
    assert_eq!(get(f.addr(), "/static/robots.txt").status, 404);
}

#[test]
fn static_url_without_static_path_is_a_500() {
    let server = serve(|| Application::new(vec![Route::new(r"/static_url/(.*)", || StaticUrl)]));
    assert_eq!(get(server.addr, "/static_url/robots.txt").status, 500);
}

// ----- big files -------------------------------------------------------------------

#[test]
fn a_big_file_arrives_whole() {
    let f = fixture();
    let r = get(f.addr(), "/static/big.bin");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(BIG_LEN.to_string().as_str())
    );
    assert_eq!(r.body.len(), BIG_LEN);
    assert!(r.body == f.big, "the 8 MiB body differs from the file");
    let etag = format!("\"{}\"", sha512_hex(&f.big));
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    // A range across chunk boundaries, on the same kind of connection.
    let (start, end) = (1_000_000usize, 3_000_123usize);
    let r = get_with(
        f.addr(),
        "/static/big.bin",
        &format!("Range: bytes={start}-{end}\r\n"),
    );
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {start}-{end}/{BIG_LEN}").as_str())
    );
    assert!(
        r.body == f.big[start..=end],
        "the range differs from the file"
    );
}

#[test]
fn a_big_file_then_another_request_on_the_same_connection() {
    let f = fixture();
    let mut client = Client::connect(f.addr());
    let r = client.request("GET /static/big.bin HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(r.body.len(), BIG_LEN);
    assert!(r.body == f.big);
    let r = client.request("GET /static/robots.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!((r.status, r.body.as_slice()), (200, ROBOTS));
}

#[test]
fn a_path_is_decoded_exactly_once() {
    let f = fixture();
    // `%252e%252e` is the literal name `%2e%2e`, which does not exist.
    let r = get(f.addr(), "/static/%252e%252e/outside/secret.txt");
    assert_eq!(r.status, 404);
    assert!(!r.text().contains(SECRET));
}

#[test]
fn a_client_leaving_mid_download_does_not_stop_the_server() {
    let f = fixture();
    {
        let mut client = Client::connect(f.addr());
        client.send(b"GET /static/big.bin HTTP/1.1\r\nHost: test\r\n\r\n");
        // Dropped with the response still coming.
    }
    let r = get(f.addr(), "/static/robots.txt");
    assert_eq!((r.status, r.body.as_slice()), (200, ROBOTS));
    let r = get(f.addr(), "/static/big.bin");
    assert!(r.body == f.big);
}

#[test]
fn compressed_static_files() {
    use std::io::Read;
    let f = fixture_with(Settings {
        compress_response: true,
        ..Settings::default()
    });
    let r = get_with(f.addr(), "/static/robots.txt", "Accept-Encoding: gzip\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(r.body.as_slice())
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, ROBOTS);
    // Never on a 206: the range's bytes as they are.
    let r = get_with(
        f.addr(),
        "/static/robots.txt",
        "Accept-Encoding: gzip\r\nRange: bytes=0-9\r\n",
    );
    assert_eq!(r.status, 206);
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body, b"User-agent");
    assert_eq!(r.header("content-length"), Some("10"));
    // Without Accept-Encoding, the plain file.
    let r = get(f.addr(), "/static/robots.txt");
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body, ROBOTS);
    // The big file, gzipped piece by piece, decodes to the file.
    let r = get_with(f.addr(), "/static/big.bin", "Accept-Encoding: gzip\r\n");
    assert_eq!(r.status, 200);
    let mut plain = Vec::new();
    if r.header("content-encoding") == Some("gzip") {
        flate2::read::GzDecoder::new(r.body.as_slice())
            .read_to_end(&mut plain)
            .unwrap();
    } else {
        plain = r.body.clone();
    }
    assert!(plain == f.big, "the gzipped big file decodes to the file");
}

#[test]
fn unicode_names_and_invalid_encodings() {
    let f = fixture();
    std::fs::write(f.root.join("café.txt"), "crème").unwrap();
    let url = get(f.addr(), "/static_url/caf%C3%A9.txt").text();
    assert!(url.starts_with("/static/caf%C3%A9.txt?v="), "{url}");
    let r = get(f.addr(), &url);
    assert_eq!((r.status, r.text().as_str()), (200, "crème"));
    // Not UTF-8 once decoded: refused, and the server goes on.
    let r = get(f.addr(), "/static/%FF.txt");
    assert_eq!(r.status, 400);
    assert_eq!(get(f.addr(), "/static/robots.txt").status, 200);
}
