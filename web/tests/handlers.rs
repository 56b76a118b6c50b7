//! Request handling over loopback: routing, verbs, arguments, output and
//! errors. The checklist is Tornado's `web_test.py`; each test names the
//! Tornado test(s) it mirrors.

mod support;

use std::cell::Cell;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;

use serde_json::{json, Value};
use support::{fetch, get, serve, Client, Response, TEST_TIMEOUT};
use whirl_web::{
    Application, Context, ErrorHandler, HandlerResult, HttpError, RedirectHandler, RequestHandler,
    Route, Settings,
};

// ----- helpers ---------------------------------------------------------------

/// The body parsed as JSON.
fn json_of(response: &Response) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", response.text()))
}

/// Sends `raw` on a fresh connection and reads everything until the server
/// closes it.
fn raw_until_close(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    std::io::Write::write_all(&mut stream, raw).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("no close within {TEST_TIMEOUT:?}: {e}"),
        }
    }
}

/// A `POST` of `body` with `content_type`.
fn post(path: &str, content_type: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A urlencoded form `POST`.
fn post_form(path: &str, body: &str) -> String {
    post(path, "application/x-www-form-urlencoded", body)
}

/// Tornado's default error page.
fn error_page(status: u16, reason: &str) -> String {
    format!("<html><title>{status}: {reason}</title><body>{status}: {reason}</body></html>")
}

// ----- routing -----------------------------------------------------------------

/// Echoes the path, its arguments and the request arguments as JSON
/// (Tornado's `EchoHandler`).
struct Echo;

impl RequestHandler for Echo {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let mut names: Vec<String> = cx.request().arguments.keys().cloned().collect();
        names.sort();
        let mut args = serde_json::Map::new();
        for name in names {
            args.insert(name.clone(), json!(cx.get_arguments(&name)?));
        }
        let body = json!({
            "path": cx.request().path(),
            "path_args": cx.path_args(),
            "path_kwargs": cx.path_kwargs(),
            "args": args,
        });
        cx.write(body);
        Ok(())
    }
}

/// Writes a fixed text.
struct Fixed(&'static str);

impl RequestHandler for Fixed {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write(self.0);
        Ok(())
    }
}

/// Writes the path of route `decode_arg` for its own path argument, through
/// the context (Tornado's `self.reverse_url`).
struct Reverse;

impl RequestHandler for Reverse {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let name = cx.get_argument_or("name", "decode_arg")?;
        let arg = cx.path_arg(0).unwrap_or_default().to_string();
        let url = cx.reverse_url(&name, &[&arg])?;
        cx.write(url);
        Ok(())
    }
}

/// Writes its path arguments in `prepare`, and checks them again in `get`
/// (Tornado's `PathArgsInPrepareTest`).
struct PathArgsInPrepare;

impl RequestHandler for PathArgsInPrepare {
    async fn prepare(&mut self, cx: &mut Context) -> HandlerResult {
        let body = json!({"args": cx.path_args(), "kwargs": cx.path_kwargs()});
        cx.write(body);
        Ok(())
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let path = cx
            .path_arg(0)
            .or_else(|| cx.path_kwarg("path"))
            .unwrap_or_default();
        assert_eq!(path, "foo");
        cx.finish()
    }
}

fn routing_app() -> Application {
    Application::new(vec![
        Route::new("/group/(.*)", || Echo),
        Route::new("/slashes/([^/]*)/([^/]*)", || Echo),
        Route::new("/decode_arg/(.*)", || Echo).name("decode_arg"),
        Route::new("/kw/(?P<path>.*)", || Echo),
        Route::new("/mixed/(?P<first>[a-z]+)/([0-9]+)", || Echo),
        Route::new("/optional_path/(.+)?", || Echo),
        Route::new("/reverse/(.*)", || Reverse).name("reverse"),
        Route::new("/pos/(.*)", || PathArgsInPrepare),
        Route::new("/pkw/(?P<path>.*)", || PathArgsInPrepare),
        // Order: the first matching route wins.
        Route::new("/order/special", || Fixed("special")),
        Route::new("/order/(.*)", || Fixed("general")),
        Route::new("/order/never", || Fixed("never")),
    ])
}

/// RequestEncodingTest test_group_question_mark, test_group_encoding,
/// test_slashes; WSGISafeWebTest test_decode_argument_plus.
#[test]
fn positional_groups_are_percent_decoded() {
    let server = serve(routing_app);
    let cases: &[(&str, Value)] = &[
        (
            "/group/%3F",
            json!({"path": "/group/%3F", "path_args": ["?"], "args": {}}),
        ),
        (
            "/group/%3F?%3F=%3F",
            json!({"path": "/group/%3F", "path_args": ["?"], "args": {"?": ["?"]}}),
        ),
        (
            "/group/%C3%A9?arg=%C3%A9",
            json!({"path": "/group/%C3%A9", "path_args": ["\u{e9}"], "args": {"arg": ["\u{e9}"]}}),
        ),
        (
            "/slashes/foo/bar",
            json!({"path": "/slashes/foo/bar", "path_args": ["foo", "bar"], "args": {}}),
        ),
        (
            "/slashes/a%2Fb/c%2Fd",
            json!({"path": "/slashes/a%2Fb/c%2Fd", "path_args": ["a/b", "c/d"], "args": {}}),
        ),
        // `+` is a space in a query, a plus in a path.
        (
            "/decode_arg/1%20+%201?foo=1+%2B+1",
            json!({"path": "/decode_arg/1%20+%201", "path_args": ["1 + 1"], "args": {"foo": ["1 + 1"]}}),
        ),
    ];
    for (path, want) in cases {
        let r = get(server.addr, path);
        assert_eq!(r.status, 200, "{path}");
        let mut got = json_of(&r);
        got.as_object_mut().unwrap().remove("path_kwargs");
        assert_eq!(&got, want, "{path}");
    }
}

/// NamedURLSpecGroupsTest; PathArgsInPrepareTest test_pos, test_kw;
/// test_optional_path.
#[test]
fn named_groups_win_and_optional_groups_are_null() {
    let server = serve(routing_app);
    let r = json_of(&get(server.addr, "/kw/a%20b"));
    assert_eq!(r["path_args"], json!([]));
    assert_eq!(r["path_kwargs"], json!({"path": "a b"}));
    // With a named group in the pattern, unnamed groups are dropped (as in
    // Tornado, which passes only kwargs then).
    let r = json_of(&get(server.addr, "/mixed/abc/42"));
    assert_eq!(r["path_args"], json!([]));
    assert_eq!(r["path_kwargs"], json!({"first": "abc"}));

    assert_eq!(
        json_of(&get(server.addr, "/optional_path/foo"))["path_args"],
        json!(["foo"])
    );
    assert_eq!(
        json_of(&get(server.addr, "/optional_path/"))["path_args"],
        json!([null])
    );

    let r = get(server.addr, "/pos/foo");
    assert_eq!(r.status, 200);
    assert_eq!(json_of(&r), json!({"args": ["foo"], "kwargs": {}}));
    let r = get(server.addr, "/pkw/foo");
    assert_eq!(r.status, 200);
    assert_eq!(json_of(&r), json!({"args": [], "kwargs": {"path": "foo"}}));
}

/// WSGISafeWebTest test_decode_argument_invalid_unicode; RequestEncodingTest
/// test_error.
#[test]
fn invalid_utf8_in_a_path_or_query_argument_is_400() {
    let server = serve(routing_app);
    for path in [
        "/group/invalid%FF",
        "/group/%25%e9",
        "/kw/%C3",
        "/group/x?foo=%FF",
        "/group/x?arg=%25%e9",
    ] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.text(), error_page(400, "Bad Request"), "{path}");
    }
    assert_eq!(get(server.addr, "/group/%25").status, 200, "%25 is fine");
}

/// WSGISafeWebTest test_reverse_url (on the application and through the
/// handler's context).
#[test]
fn reverse_url_fills_and_escapes_groups() {
    // On the application itself (built here: reversing needs no loop).
    let app = routing_app();
    assert_eq!(
        app.reverse_url("decode_arg", &["foo"]).unwrap(),
        "/decode_arg/foo"
    );
    assert_eq!(
        app.reverse_url("decode_arg", &["42"]).unwrap(),
        "/decode_arg/42"
    );
    assert_eq!(
        app.reverse_url("decode_arg", &["\u{e9}"]).unwrap(),
        "/decode_arg/%C3%A9"
    );
    assert_eq!(
        app.reverse_url("decode_arg", &["1 + 1"]).unwrap(),
        "/decode_arg/1%20%2B%201"
    );
    assert!(app.reverse_url("nope", &[]).is_err());
    assert!(app.reverse_url("decode_arg", &[]).is_err());

    // Through the context, and round-tripped through routing.
    let server = serve(routing_app);
    let r = get(server.addr, "/reverse/1%20%2B%201");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "/decode_arg/1%20%2B%201")
    );
    let r = get(server.addr, "/reverse/x?name=reverse");
    assert_eq!(r.text(), "/reverse/x");
    let echoed = json_of(&get(server.addr, "/decode_arg/1%20%2B%201"));
    assert_eq!(echoed["path_args"], json!(["1 + 1"]));
    // An unknown name is a mistake in the program: 500.
    assert_eq!(get(server.addr, "/reverse/x?name=nope").status, 500);
}

#[test]
fn routes_are_tried_in_order() {
    let server = serve(routing_app);
    assert_eq!(get(server.addr, "/order/special").text(), "special");
    assert_eq!(get(server.addr, "/order/other").text(), "general");
    assert_eq!(
        get(server.addr, "/order/never").text(),
        "general",
        "an earlier route shadows a later one"
    );
}

/// Default404Test.
#[test]
fn an_unmatched_path_gets_the_default_404_page() {
    let server = serve(|| Application::new(vec![Route::new("/foo", || Fixed("foo"))]));
    for path in ["/", "/foo/", "/foox", "/bar?x=1"] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.reason, "Not Found");
        assert_eq!(r.text(), error_page(404, "Not Found"));
        assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    }
}

/// A handler for unmatched paths (Tornado's `Custom404Handler`).
struct Custom404;

impl RequestHandler for Custom404 {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_status(404);
        cx.write("custom 404 response");
        Ok(())
    }
}

/// Custom404Test; DefaultHandlerArgumentsTest.
#[test]
fn default_handler_serves_unmatched_paths() {
    let server = serve(|| {
        Application::new(vec![Route::new("/foo", || Fixed("foo"))]).default_handler(|| Custom404)
    });
    let r = get(server.addr, "/");
    assert_eq!((r.status, r.text().as_str()), (404, "custom 404 response"));
    assert_eq!(get(server.addr, "/foo").text(), "foo", "routes still win");

    let server = serve(|| {
        Application::new(vec![Route::new("/foo", || Fixed("foo"))])
            .default_handler(|| ErrorHandler::new(403))
    });
    let r = get(server.addr, "/anything");
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), error_page(403, "Forbidden"));
}

// ----- verbs -------------------------------------------------------------------

/// Implements no verb (Tornado's bare `RequestHandler`).
struct NoVerbs;

impl RequestHandler for NoVerbs {}

/// Writes the method name from every verb but `head` (Tornado's
/// `AllHTTPMethodsTest` handler, plus PATCH).
struct AllMethods;

impl AllMethods {
    fn method(cx: &mut Context) -> HandlerResult {
        let method = cx.request().method().to_string();
        cx.write(method);
        Ok(())
    }
}

impl RequestHandler for AllMethods {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        Self::method(cx)
    }
    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        Self::method(cx)
    }
    async fn put(&mut self, cx: &mut Context) -> HandlerResult {
        Self::method(cx)
    }
    async fn patch(&mut self, cx: &mut Context) -> HandlerResult {
        Self::method(cx)
    }
    async fn delete(&mut self, cx: &mut Context) -> HandlerResult {
        Self::method(cx)
    }
    async fn options(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_header("Allow", "GET, POST, PUT, PATCH, DELETE, OPTIONS")?;
        Self::method(cx)
    }
}

/// Declares GET and HEAD only; HEAD runs `get` (its body is dropped on the
/// wire).
struct GetAndHead;

impl RequestHandler for GetAndHead {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET", "HEAD"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_header("X-Method", cx.request().method().to_string())?;
        cx.write("hello head world");
        Ok(())
    }

    async fn head(&mut self, cx: &mut Context) -> HandlerResult {
        self.get(cx).await
    }
}

fn verbs_app() -> Application {
    Application::new(vec![
        Route::new("/none", || NoVerbs),
        Route::new("/all", || AllMethods),
        Route::new("/gethead", || GetAndHead),
    ])
}

/// A request with `method` and an empty body where one is expected.
fn request_line(method: &str, path: &str) -> String {
    let body = if matches!(method, "POST" | "PUT" | "PATCH") {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{body}\r\n")
}

/// UnimplementedHTTPMethodsTest, UnimplementedNonStandardMethodsTest
/// test_unimplemented_patch.
#[test]
fn a_verb_the_handler_does_not_implement_is_405() {
    let server = serve(verbs_app);
    let mut client = Client::connect(server.addr);
    for method in ["HEAD", "GET", "DELETE", "OPTIONS", "POST", "PUT", "PATCH"] {
        let r = client.request(&request_line(method, "/none"));
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.reason, "Method Not Allowed");
        let allow = r.header("allow").expect("405 carries Allow");
        assert!(!allow.split(", ").any(|m| m == method), "{method}: {allow}");
    }
}

/// Tornado answers an unknown method 405; RFC 9110 asks for 501 (see
/// TORNADO_BEHAVIOURS.md); a known method the handler does not list is
/// 405 with `Allow` naming exactly what it lists.
#[test]
fn unknown_method_is_501_known_but_unsupported_is_405_with_allow() {
    let server = serve(verbs_app);
    for method in ["PROPFIND", "FOO", "OTHER"] {
        let r = fetch(server.addr, &request_line(method, "/gethead"));
        assert_eq!(r.status, 501, "{method}");
        assert_eq!(r.text(), error_page(501, "Not Implemented"));
    }
    let mut client = Client::connect(server.addr);
    for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"] {
        let r = client.request(&request_line(method, "/gethead"));
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
    }
    // The connection is still in step: a GET after all those errors.
    assert_eq!(
        client.request(&request_line("GET", "/gethead")).text(),
        "hello head world"
    );
}

/// AllHTTPMethodsTest test_standard_methods, PatchMethodTest test_patch.
#[test]
fn each_verb_reaches_its_method_and_options_works() {
    let server = serve(verbs_app);
    let mut client = Client::connect(server.addr);
    for method in ["GET", "DELETE", "OPTIONS", "POST", "PUT", "PATCH"] {
        let r = client.request(&request_line(method, "/all"));
        assert_eq!((r.status, r.text().as_str()), (200, method));
    }
    let r = client.request(&request_line("OPTIONS", "/all"));
    assert_eq!(
        r.header("allow"),
        Some("GET, POST, PUT, PATCH, DELETE, OPTIONS")
    );
    // `head` is not implemented there: 405, and no body on the wire.
    let r = client.request(&request_line("HEAD", "/all"));
    assert_eq!(r.status, 405);
    assert_eq!(client.request(&request_line("GET", "/all")).text(), "GET");
}

/// test_static_head's shape for any handler (checklist 41): HEAD has GET's
/// headers, `Content-Length` included, and no body — repeated HEADs on one
/// connection leave no stray bytes.
#[test]
fn head_on_a_get_handler_has_its_length_and_no_body() {
    let server = serve(verbs_app);
    let mut client = Client::connect(server.addr);
    let got = client.request("GET /gethead HTTP/1.1\r\nHost: t\r\n\r\n");
    for _ in 0..3 {
        let r = client.request("HEAD /gethead HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("16"));
        assert_eq!(r.header("etag"), got.header("etag"));
        assert_eq!(r.header("content-type"), got.header("content-type"));
        assert_eq!(r.header("x-method"), Some("HEAD"));
        assert!(r.header("transfer-encoding").is_none());
    }
    let r = client.request("GET /gethead HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.text(), "hello head world", "no HEAD body was sent");
}

// ----- arguments ---------------------------------------------------------------

/// Finishes in `prepare` with argument `foo` read from `source` (Tornado's
/// `GetArgumentHandler`).
struct GetArgument;

impl RequestHandler for GetArgument {
    async fn prepare(&mut self, cx: &mut Context) -> HandlerResult {
        let source = cx.get_argument_or("source", "")?;
        let value = match source.as_str() {
            "query" => cx.get_query_argument_or("foo", "default")?,
            "body" => cx.get_body_argument_or("foo", "default")?,
            "required" => cx.get_argument("foo")?,
            "required_query" => cx.get_query_argument("foo")?,
            "required_body" => cx.get_body_argument("foo")?,
            _ => cx.get_argument_or("foo", "default")?,
        };
        cx.write(value);
        cx.finish()
    }

    async fn get(&mut self, _cx: &mut Context) -> HandlerResult {
        panic!("prepare finished the response: get must not run");
    }

    async fn post(&mut self, _cx: &mut Context) -> HandlerResult {
        panic!("prepare finished the response: post must not run");
    }
}

/// Writes every value of `foo` by source (Tornado's `GetArgumentsHandler`).
struct GetArguments;

impl RequestHandler for GetArguments {
    async fn prepare(&mut self, cx: &mut Context) -> HandlerResult {
        let body = json!({
            "default": cx.get_arguments("foo")?,
            "query": cx.get_query_arguments("foo")?,
            "body": cx.get_body_arguments("foo")?,
        });
        cx.write(body);
        cx.finish()
    }
}

/// Describes the uploaded files and fields.
struct Upload;

impl RequestHandler for Upload {
    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        let mut files = serde_json::Map::new();
        for (name, list) in &cx.request().files {
            let list: Vec<Value> = list
                .iter()
                .map(|f| {
                    json!({
                        "filename": f.filename,
                        "content_type": f.content_type,
                        "body": f.body,
                    })
                })
                .collect();
            files.insert(name.clone(), json!(list));
        }
        let body = json!({
            "files": files,
            "title": cx.get_body_arguments("title")?,
            "query": cx.get_query_arguments("q")?,
        });
        cx.write(body);
        Ok(())
    }
}

fn arguments_app() -> Application {
    Application::new(vec![
        Route::new("/get_argument", || GetArgument),
        Route::new("/get_arguments", || GetArguments),
        Route::new("/upload", || Upload),
    ])
}

/// WSGISafeWebTest test_get_argument.
#[test]
fn get_argument_with_defaults_and_body_precedence() {
    let server = serve(arguments_app);
    let text = |path: &str| get(server.addr, path).text();
    assert_eq!(text("/get_argument?foo=bar"), "bar");
    assert_eq!(text("/get_argument?foo="), "");
    assert_eq!(text("/get_argument"), "default");
    assert_eq!(text("/get_argument?foo=a&foo=b"), "b", "the last value");

    // Singular: the body wins over the query. Plural: both, query first.
    let r = fetch(
        server.addr,
        &post_form("/get_argument?foo=bar", "foo=hello"),
    );
    assert_eq!(r.text(), "hello");
    let r = fetch(
        server.addr,
        &post_form("/get_arguments?foo=bar", "foo=hello"),
    );
    assert_eq!(
        json_of(&r),
        json!({"default": ["bar", "hello"], "query": ["bar"], "body": ["hello"]})
    );
}

/// WSGISafeWebTest test_get_query_arguments, test_get_body_arguments.
#[test]
fn query_and_body_arguments_are_kept_apart() {
    let server = serve(arguments_app);
    let post_text = |path: &str, body: &str| fetch(server.addr, &post_form(path, body)).text();
    assert_eq!(
        post_text("/get_argument?source=query&foo=bar", "foo=hello"),
        "bar"
    );
    assert_eq!(
        post_text("/get_argument?source=query&foo=", "foo=hello"),
        ""
    );
    assert_eq!(
        post_text("/get_argument?source=query", "foo=hello"),
        "default"
    );
    assert_eq!(
        post_text("/get_argument?source=body&foo=hello", "foo=bar"),
        "bar"
    );
    assert_eq!(post_text("/get_argument?source=body&foo=hello", "foo="), "");
    assert_eq!(
        post_text("/get_argument?source=body&foo=hello", ""),
        "default"
    );
    // A body that is not a form (no form Content-Type) gives no arguments.
    let r = fetch(
        server.addr,
        &post("/get_argument?source=body", "text/plain", "foo=bar"),
    );
    assert_eq!(r.text(), "default");
}

/// Tornado's `decode_argument` + `_remove_control_chars_regex` + strip.
#[test]
fn arguments_are_stripped_and_control_characters_removed() {
    let server = serve(arguments_app);
    // "  a\x01b\tc\x1f \n" → "ab\tc": C0 controls but \t\n\v\f\r go, then
    // surrounding whitespace.
    let r = get(server.addr, "/get_argument?foo=%20%20a%01b%09c%1F%20%0A");
    assert_eq!(r.text(), "ab\tc");
    let r = get(server.addr, "/get_arguments?foo=%20x%20&foo=%00y%0D");
    assert_eq!(json_of(&r)["default"], json!(["x", "y"]));
    let r = fetch(
        server.addr,
        &post_form("/get_argument?source=body", "foo=+spaced+out+"),
    );
    assert_eq!(r.text(), "spaced out");
}

/// MissingArgumentError → 400; test_decode_argument_invalid_unicode.
#[test]
fn a_missing_required_or_undecodable_argument_is_400() {
    let server = serve(arguments_app);
    for path in [
        "/get_argument?source=required",
        "/get_argument?source=required_query",
        "/get_argument?source=required&fo=1",
        "/get_argument?foo=%FF",
        "/get_argument?source=query&foo=%C3",
        "/get_arguments?foo=ok&foo=%FF",
    ] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.text(), error_page(400, "Bad Request"), "{path}");
        assert!(
            !r.text().contains("Missing"),
            "the log message stays in the log"
        );
    }
    let r = fetch(
        server.addr,
        &post_form("/get_argument?source=required_body&foo=q", ""),
    );
    assert_eq!(r.status, 400, "a query value does not satisfy a body one");
    let r = fetch(
        server.addr,
        &post_form("/get_argument?source=body", "foo=%FF"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        get(server.addr, "/get_argument?source=required&foo=x").text(),
        "x"
    );
}

/// A multipart body: fields, several files under one name, file metadata.
fn multipart_body() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nA title\r\n\
          --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
          Content-Type: text/plain\r\n\r\nfile one\r\n\
          --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.bin\"\r\n\r\n",
    );
    body.extend_from_slice(&[0, 1, 2, 0xff, b'\r', b'\n', b'-']);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    body
}

/// Sends a multipart POST with `content_type` and `body` to `/upload`.
fn post_multipart(addr: SocketAddr, content_type: &str, body: &[u8]) -> Response {
    let mut raw = format!(
        "POST /upload?q=1 HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    let mut client = Client::connect(addr);
    client.send(&raw);
    client.read_response("POST")
}

/// `request.files`, body arguments from multipart (httputil_test
/// parse_multipart_form_data, over the wire).
#[test]
fn multipart_bodies_give_fields_and_files() {
    let server = serve(arguments_app);
    let r = post_multipart(
        server.addr,
        "multipart/form-data; boundary=XyZ",
        &multipart_body(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        json_of(&r),
        json!({
            "title": ["A title"],
            "query": ["1"],
            "files": {"file": [
                {"filename": "a.txt", "content_type": "text/plain", "body": b"file one".to_vec()},
                {"filename": "b.bin", "content_type": "application/unknown",
                 "body": [0, 1, 2, 0xff, 13, 10, 45]},
            ]},
        })
    );
    // A quoted boundary works too.
    let r = post_multipart(
        server.addr,
        "multipart/form-data; boundary=\"XyZ\"",
        &multipart_body(),
    );
    assert_eq!(r.status, 200);
}

/// Checklist 29: malformed multipart → 400.
#[test]
fn a_malformed_multipart_body_is_400() {
    let server = serve(arguments_app);
    let whole = multipart_body();
    let no_final = &whole[..whole.len() - b"--XyZ--\r\n".len()];
    let cases: &[(&str, &[u8])] = &[
        ("multipart/form-data", &whole),
        ("multipart/form-data; boundary=XyZ", no_final),
        (
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n--XyZ--\r\n",
        ),
        (
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nno blank line--XyZ--\r\n",
        ),
    ];
    for (content_type, body) in cases {
        let r = post_multipart(server.addr, content_type, body);
        assert_eq!(
            r.status,
            400,
            "{content_type} {:?}",
            String::from_utf8_lossy(body)
        );
    }
    // The server is fine afterwards.
    let r = post_multipart(
        server.addr,
        "multipart/form-data; boundary=XyZ",
        &multipart_body(),
    );
    assert_eq!(r.status, 200);
}

// ----- output ------------------------------------------------------------------

/// Answers with the status and reason from the query, raised as an
/// `HttpError` (Tornado's `StatusReasonTest` handler) or set with
/// `set_status_reason` (`?set=1`).
struct StatusReason;

impl RequestHandler for StatusReason {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let code: u16 = cx
            .get_argument("code")?
            .parse()
            .map_err(|_| HttpError::new(400))?;
        let reason = cx
            .request()
            .arguments
            .get("reason")
            .map(|r| String::from_utf8_lossy(&r[0]).into_owned());
        if cx.get_argument_or("set", "")? == "1" {
            match reason {
                Some(reason) => cx.set_status_reason(code, reason),
                None => cx.set_status(code),
            }
            cx.write("set");
            return Ok(());
        }
        let mut error = HttpError::new(code);
        if let Some(reason) = reason {
            error = error.reason_phrase(reason);
        }
        Err(error)
    }
}

/// Tornado's `MultiHeaderHandler` and `ClearHeaderTest` handler.
struct Headers;

impl RequestHandler for Headers {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_header("x-overwrite", "1")?;
        cx.set_header("X-Overwrite", 2)?;
        cx.add_header("x-multi", 3)?;
        cx.add_header("X-Multi", "4")?;
        cx.set_header("h1", "foo")?;
        cx.set_header("h2", "bar")?;
        cx.clear_header("h1");
        cx.clear_header("nonexistent");
        cx.add_header("Set-Cookie", "a=b")?;
        cx.add_header("Set-Cookie", "c=d")?;
        cx.clear_header("Set-Cookie");
        cx.set_header("Content-Type", "text/plain")?;
        cx.write("headers");
        Ok(())
    }
}

/// Tornado's `HeaderInjectionHandler`: the refused header is an error the
/// handler returns with `?` (→ 500).
struct HeaderInjection;

impl RequestHandler for HeaderInjection {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_header("X-Early", "kept only until the error")?;
        match cx.get_argument_or("how", "set")?.as_str() {
            "add" => cx.add_header("X-Foo", "foo\r\nX-Bar: baz")?,
            "lf" => cx.set_header("X-Foo", "foo\nX-Bar: baz")?,
            _ => cx.set_header("X-Foo", "foo\r\nX-Bar: baz")?,
        }
        cx.write("not reached");
        Ok(())
    }
}

/// Tornado's `SetHeaderHandler`: every control character but TAB (and
/// DEL) is refused; an empty value is fine.
struct SetHeader;

impl RequestHandler for SetHeader {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        for byte in (0u8..0x20).chain([0x7f]).filter(|&b| b != b'\t') {
            let value = format!("foo{}bar", byte as char);
            assert!(cx.set_header("X-Foo", &value).is_err(), "{byte:#x}");
            assert!(cx.add_header("X-Foo", &value).is_err(), "{byte:#x}");
        }
        assert!(cx.set_header("X Foo", "name with a space").is_err());
        assert!(cx.set_header("X-Foo:", "colon in the name").is_err());
        cx.set_header("X-Foo", "")?;
        cx.set_header("X-Tab", "a\tb")?;
        cx.write("ok");
        Ok(())
    }
}

/// A struct for `write_json`.
#[derive(serde::Serialize)]
struct Story {
    id: u32,
    title: &'static str,
}

/// Writes text, bytes or JSON per its path argument.
struct Write;

impl RequestHandler for Write {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        match cx.path_arg(0).unwrap_or_default() {
            "str" => {
                cx.write("one ");
                cx.write(String::from("two "));
                #[allow(clippy::needless_borrows_for_generic_args)] // the `&String` impl
                cx.write(&String::from("three"));
            }
            "bytes" => {
                cx.set_header("Content-Type", "application/octet-stream")?;
                cx.write(vec![0u8, 0xff, b'\r', b'\n']);
                cx.write(&b"tail"[..]);
            }
            "value" => cx.write(json!({"a": "</script>", "n": [1, 2]})),
            "json" => cx.write_json(&Story {
                id: 7,
                title: "</b> & co",
            })?,
            "bad_json" => {
                let map: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
                cx.write_json(&map)?;
            }
            _ => return Err(HttpError::new(404)),
        }
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("posted");
        Ok(())
    }
}

/// Sets `Content-Language` and writes (Tornado's `Header304Test` handler),
/// or sets its own `Etag`.
struct Cacheable;

impl RequestHandler for Cacheable {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_header("Content-Language", "en_US")?;
        if let Some(tag) = cx.path_arg(0) {
            cx.set_header("Etag", format!("\"{tag}\""))?;
        }
        cx.write("hello");
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("hello");
        Ok(())
    }
}

/// 204 by `set_status`, by `HttpError`, or with a body that must be
/// dropped (Tornado's `Header204Test`, `Header204viaHTTPErrorTest`).
struct NoContent;

impl RequestHandler for NoContent {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        match cx.path_arg(0).unwrap_or_default() {
            "error" => Err(HttpError::new(204)),
            "body" => {
                cx.set_status(204);
                cx.write("dropped");
                Ok(())
            }
            _ => {
                cx.set_status(204);
                cx.finish()
            }
        }
    }
}

/// Tornado's `RedirectHandler` test handler, plus a relative redirect.
struct Redirect;

impl RequestHandler for Redirect {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        if let Ok(permanent) = cx.get_argument("permanent") {
            return cx.redirect("/", permanent == "1");
        }
        if let Ok(status) = cx.get_argument("status") {
            let status = status.parse().map_err(|_| HttpError::new(400))?;
            return cx.redirect_with_status("/", status);
        }
        if let Ok(to) = cx.get_argument("to") {
            return cx.redirect(&to, false);
        }
        Err(HttpError::new(400).log_message("no permanent, status or to argument"))
    }
}

fn output_app() -> Application {
    Application::new(vec![
        Route::new("/status", || StatusReason),
        Route::new("/headers", || Headers),
        Route::new("/header_injection", || HeaderInjection),
        Route::new("/set_header", || SetHeader),
        Route::new("/write/(.*)", || Write),
        Route::new("/cache", || Cacheable),
        Route::new("/cache/(.+)", || Cacheable),
        Route::new("/no_content", || NoContent),
        Route::new("/no_content/(.+)", || NoContent),
        Route::new("/redirect", || Redirect),
        Route::new("/dir/redirect", || Redirect),
        Route::new("/web_redirect_permanent", || {
            RedirectHandler::new("/web_redirect_newpath")
        }),
        Route::new("/web_redirect", || {
            RedirectHandler::new("/web_redirect_newpath").temporary()
        }),
        Route::new("/pictures/(.*)", || RedirectHandler::new("/photos/{0}")),
    ])
}

/// StatusReasonTest test_status; RaiseWithReasonTest; ErrorResponseTest
/// test_default (435 → Unknown).
#[test]
fn status_and_custom_reason() {
    let server = serve(output_app);
    let status = |path: &str| {
        let r = get(server.addr, path);
        (r.status, r.reason.clone(), r)
    };
    let (code, reason, r) = status("/status?code=201&set=1");
    assert_eq!(
        (code, reason.as_str(), r.text().as_str()),
        (201, "Created", "set")
    );
    let (code, reason, _) = status("/status?code=201&set=1&reason=Made%20It");
    assert_eq!((code, reason.as_str()), (201, "Made It"));
    let (code, reason, _) = status("/status?code=304");
    assert_eq!((code, reason.as_str()), (304, "Not Modified"));
    let (code, reason, _) = status("/status?code=304&reason=Foo");
    assert_eq!((code, reason.as_str()), (304, "Foo"));
    let (code, reason, r) = status("/status?code=682&reason=Bar");
    assert_eq!((code, reason.as_str()), (682, "Bar"));
    assert_eq!(r.text(), error_page(682, "Bar"));
    let (code, reason, r) = status("/status?code=682");
    assert_eq!((code, reason.as_str()), (682, "Unknown"));
    assert_eq!(r.text(), error_page(682, "Unknown"));
    let (code, _, r) = status("/status?code=435");
    assert_eq!(code, 435);
    assert!(r.text().contains("435: Unknown"));
    let (code, _, r) = status("/status?code=503");
    assert_eq!(code, 503);
    assert!(r.text().contains("503: Service Unavailable"));
}

/// StatusReasonTest test_header_injection, test_reason_xss.
#[test]
fn a_reason_with_crlf_or_markup_becomes_unknown() {
    let server = serve(output_app);
    for set in ["", "&set=1"] {
        let r = get(
            server.addr,
            &format!("/status?code=200&reason=OK%0D%0AX-Injection:injected{set}"),
        );
        assert_eq!((r.status, r.reason.as_str()), (200, "Unknown"), "{set}");
        assert!(r.header("x-injection").is_none(), "{set}");
        let r = get(
            server.addr,
            &format!("/status?code=400&reason=%3Cscript%3Ealert(1)%3C%2Fscript%3E{set}"),
        );
        assert_eq!((r.status, r.reason.as_str()), (400, "Unknown"), "{set}");
        assert!(!r.text().contains("script"), "{set}: {}", r.text());
    }
    let r = get(
        server.addr,
        "/status?code=400&reason=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    );
    assert!(r.text().contains("Unknown"));
}

/// WSGISafeWebTest test_multi_header; ClearHeaderTest.
#[test]
fn set_add_and_clear_header() {
    let server = serve(output_app);
    let r = get(server.addr, "/headers");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers_named("x-overwrite"), vec!["2"]);
    assert_eq!(r.headers_named("x-multi"), vec!["3", "4"]);
    assert!(r.header("h1").is_none());
    assert_eq!(r.header("h2"), Some("bar"));
    assert!(r.header("set-cookie").is_none());
    assert_eq!(r.headers_named("content-type"), vec!["text/plain"]);
    // The defaults: Server and Date.
    assert!(r.header("server").is_some_and(|s| s.starts_with("whirl/")));
    assert!(r.header("date").is_some());
}

/// WSGISafeWebTest test_header_injection, test_set_header: a value with CR
/// or LF is refused (the handler's `?` makes it a 500) and nothing of it
/// reaches the wire.
#[test]
fn a_header_value_with_cr_or_lf_is_refused() {
    let server = serve(output_app);
    for how in ["set", "add", "lf"] {
        let mut client = Client::connect(server.addr);
        let r = client.request(&format!(
            "GET /header_injection?how={how} HTTP/1.1\r\nHost: t\r\n\r\n"
        ));
        assert_eq!(r.status, 500, "{how}");
        assert_eq!(r.text(), error_page(500, "Internal Server Error"));
        assert!(r.header("x-bar").is_none(), "{how}: injected");
        assert!(r.header("x-foo").is_none(), "{how}");
        assert!(
            r.header("x-early").is_none(),
            "an error page starts from clear headers"
        );
        let r = client.request("GET /set_header HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        assert_eq!(r.header("x-foo"), Some(""));
        assert_eq!(r.header("x-tab"), Some("a\tb"));
    }
}

/// `write` of text, bytes and `serde_json::Value`; `write_json`.
#[test]
fn write_text_bytes_and_json() {
    let server = serve(output_app);
    let r = get(server.addr, "/write/str");
    assert_eq!(r.text(), "one two three");
    assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    assert_eq!(r.header("content-length"), Some("13"));

    let r = get(server.addr, "/write/bytes");
    assert_eq!(r.body, b"\0\xff\r\ntail");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));

    let r = get(server.addr, "/write/value");
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    assert!(r.text().contains(r"<\/script>"), "{}", r.text());
    assert!(!r.text().contains("</"), "`</` is escaped: {}", r.text());
    assert_eq!(json_of(&r), json!({"a": "</script>", "n": [1, 2]}));

    let r = get(server.addr, "/write/json");
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    assert!(!r.text().contains("</"), "{}", r.text());
    assert_eq!(json_of(&r), json!({"id": 7, "title": "</b> & co"}));

    let r = get(server.addr, "/write/bad_json");
    assert_eq!(r.status, 500, "a value JSON cannot hold is a 500");
}

/// Header304Test; CacheTest (strong, weak, lists, `*`); checklist 43.
#[test]
fn etag_on_get_and_304_on_a_matching_if_none_match() {
    let server = serve(output_app);
    let first = get(server.addr, "/cache");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-length"), Some("5"));
    assert_eq!(first.header("content-language"), Some("en_US"));
    let etag = first
        .header("etag")
        .expect("a GET 200 has an Etag")
        .to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 42);
    assert_eq!(
        get(server.addr, "/cache").header("etag"),
        Some(etag.as_str())
    );

    let inner = etag.trim_matches('"');
    let matching = [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"nope\", {etag}"),
        format!("\"nope\",W/\"{inner}\""),
        "*".to_string(),
    ];
    let mut client = Client::connect(server.addr);
    for header in &matching {
        let r = client.request(&format!(
            "GET /cache HTTP/1.1\r\nHost: t\r\nIf-None-Match: {header}\r\n\r\n"
        ));
        assert_eq!(r.status, 304, "{header}");
        assert_eq!(r.header("etag"), Some(etag.as_str()), "{header}");
        for absent in [
            "content-length",
            "content-language",
            "content-type",
            "transfer-encoding",
        ] {
            assert!(r.header(absent).is_none(), "{header}: {absent}");
        }
    }
    // No body was sent with the 304s: the next response parses.
    for header in ["\"nope\"", "W/\"nope\""] {
        let r = client.request(&format!(
            "GET /cache HTTP/1.1\r\nHost: t\r\nIf-None-Match: {header}\r\n\r\n"
        ));
        assert_eq!((r.status, r.text().as_str()), (200, "hello"), "{header}");
    }
    // A handler's own Etag is kept and compared.
    let r = client.request("GET /cache/v1 HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"v1\"\r\n\r\n");
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some("\"v1\""));
    // Only GET (and HEAD) get an Etag; a POST is never a 304.
    let r = client.request(&format!(
        "POST /cache HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nIf-None-Match: {etag}\r\n\r\n"
    ));
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    assert!(r.header("etag").is_none());
}

/// Header204Test, Header204viaHTTPErrorTest; checklist 42.
#[test]
fn a_204_has_no_body_length_or_content_type() {
    let server = serve(output_app);
    let mut client = Client::connect(server.addr);
    for path in ["/no_content", "/no_content/error", "/no_content/body"] {
        let r = client.request(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_eq!(r.status, 204, "{path}");
        for absent in ["content-length", "transfer-encoding", "content-type"] {
            assert!(r.header(absent).is_none(), "{path}: {absent}");
        }
    }
    // Nothing stray was sent: the connection is still in step.
    let r = client.request("GET /write/str HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.text(), "one two three");
}

/// WSGISafeWebTest test_redirect, test_web_redirect; RedirectHandler with
/// path arguments and the query kept.
#[test]
fn redirects() {
    let server = serve(output_app);
    let cases = [
        ("/redirect?permanent=1", 301, "/"),
        ("/redirect?permanent=0", 302, "/"),
        ("/redirect?status=307", 307, "/"),
        ("/redirect?status=303", 303, "/"),
        (
            "/redirect?to=https://example.com/x",
            302,
            "https://example.com/x",
        ),
        ("/dir/redirect?to=other", 302, "/dir/other"),
        ("/dir/redirect?to=other%3Fa%3D1", 302, "/dir/other?a=1"),
        ("/dir/redirect?to=/abs", 302, "/abs"),
        ("/web_redirect_permanent", 301, "/web_redirect_newpath"),
        ("/web_redirect", 302, "/web_redirect_newpath"),
        ("/pictures/cat.jpg?size=2", 301, "/photos/cat.jpg?size=2"),
    ];
    for (path, status, location) in cases {
        let r = get(server.addr, path);
        assert_eq!(r.status, status, "{path}");
        assert_eq!(r.header("location"), Some(location), "{path}");
        assert_eq!(r.header("content-length"), Some("0"), "{path}");
    }
    let r = get(server.addr, "/redirect?to=bad%0D%0AX-Evil:%201");
    assert_eq!(r.status, 500, "a Location with CR/LF is refused");
    assert!(r.header("x-evil").is_none());
}

// ----- errors ------------------------------------------------------------------

/// Tornado's `ErrorResponseTest` `DefaultHandler`.
struct DefaultErrors;

impl RequestHandler for DefaultErrors {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        if let Ok(status) = cx.get_argument("status") {
            let status = status.parse().map_err(|_| HttpError::new(400))?;
            return Err(HttpError::new(status).log_message("the <secret> detail"));
        }
        if cx.get_argument_or("io", "")? == "1" {
            std::fs::read("/definitely/not/here/whirl")?;
        }
        panic!("boom <secret>");
    }
}

/// Tornado's `WriteErrorHandler` and `ExceptionHandlerTest` handler:
/// `write_error` renders plain text, and turns one error into a 403.
struct CustomWriteError;

impl RequestHandler for CustomWriteError {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        match cx.get_argument_or("how", "")?.as_str() {
            "send_error" => {
                cx.write("discarded");
                cx.send_error(503);
                Ok(())
            }
            "permission" => Err(HttpError::new(500).log_message("permission")),
            "http" => Err(HttpError::new(410).log_message("no longer here")),
            _ => panic!("zero division"),
        }
    }

    fn write_error(&mut self, cx: &mut Context, status: u16, error: Option<&HttpError>) {
        if error.and_then(|e| e.message()) == Some("permission") {
            cx.set_status(403);
            cx.write("PermissionError");
            return;
        }
        cx.set_header("Content-Type", "text/plain").unwrap();
        match error {
            Some(e) => cx.write(format!("Error: {}", e.status())),
            None => cx.write(format!("Status: {status}")),
        }
    }
}

/// Tornado's `FailedWriteErrorHandler`.
struct FailedWriteError;

impl RequestHandler for FailedWriteError {
    async fn get(&mut self, _cx: &mut Context) -> HandlerResult {
        Err(HttpError::new(500))
    }

    fn write_error(&mut self, _cx: &mut Context, _status: u16, _error: Option<&HttpError>) {
        panic!("exception in write_error");
    }
}

/// Panics in `prepare`; `get` would answer 200.
struct PanicInPrepare;

impl RequestHandler for PanicInPrepare {
    async fn prepare(&mut self, _cx: &mut Context) -> HandlerResult {
        panic!("prepare failed");
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("get ran");
        Ok(())
    }
}

/// Panics in `get_current_user`; `get` would answer 200.
struct PanicInCurrentUser;

impl RequestHandler for PanicInCurrentUser {
    async fn get_current_user(&mut self, _cx: &mut Context) -> Option<String> {
        panic!("get_current_user failed");
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("get ran");
        Ok(())
    }
}

/// Tornado's `FinishInPrepareTest` handler.
struct FinishInPrepare;

impl RequestHandler for FinishInPrepare {
    async fn prepare(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("done");
        cx.finish()
    }

    async fn get(&mut self, _cx: &mut Context) -> HandlerResult {
        panic!("should not reach this method");
    }
}

/// Sends part of a response, then fails (`?how=error|panic`).
struct FailAfterFlush;

impl RequestHandler for FailAfterFlush {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("partial");
        cx.flush().await?;
        if cx.get_argument_or("how", "error")? == "panic" {
            panic!("after flush");
        }
        Err(HttpError::new(500).log_message("failed after flush"))
    }
}

fn errors_app(settings: Settings) -> Application {
    Application::with_settings(
        vec![
            Route::new("/default", || DefaultErrors),
            Route::new("/write_error", || CustomWriteError),
            Route::new("/failed_write_error", || FailedWriteError),
            Route::new("/panic_in_prepare", || PanicInPrepare),
            Route::new("/panic_in_current_user", || PanicInCurrentUser),
            Route::new("/finish_in_prepare", || FinishInPrepare),
            Route::new("/fail_after_flush", || FailAfterFlush),
            Route::new("/ok", || Fixed("ok")),
        ],
        settings,
    )
}

/// ErrorResponseTest test_default; ExceptionHandlerTest test_http_error.
#[test]
fn errors_render_the_default_page_without_their_message() {
    let server = serve(|| errors_app(Settings::default()));
    let r = get(server.addr, "/default");
    assert_eq!(r.status, 500);
    assert_eq!(r.text(), error_page(500, "Internal Server Error"));
    let r = get(server.addr, "/default?status=503");
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), error_page(503, "Service Unavailable"));
    let r = get(server.addr, "/default?status=410");
    assert_eq!((r.status, r.reason.as_str()), (410, "Gone"));
    assert!(!r.text().contains("secret"), "{}", r.text());
    let r = get(server.addr, "/default?io=1");
    assert_eq!(r.status, 500, "any std error with `?` is a 500");
    assert!(!r.text().contains("not/here"));
}

/// The `serve_traceback` setting (and `debug`, which implies it) show the
/// error's message, escaped.
#[test]
fn serve_traceback_or_debug_shows_the_message() {
    let settings = [
        Settings {
            serve_traceback: Some(true),
            ..Settings::default()
        },
        Settings {
            debug: true,
            ..Settings::default()
        },
    ];
    for settings in settings {
        let server = serve(move || errors_app(settings));
        let r = get(server.addr, "/default?status=410");
        assert_eq!(r.status, 410);
        assert!(
            r.text().contains("the &lt;secret&gt; detail"),
            "{}",
            r.text()
        );
        let r = get(server.addr, "/default");
        assert_eq!(r.status, 500);
        assert!(r.text().contains("boom &lt;secret&gt;"), "{}", r.text());
    }
    let server = serve(|| {
        errors_app(Settings {
            debug: true,
            serve_traceback: Some(false),
            ..Settings::default()
        })
    });
    assert!(!get(server.addr, "/default?status=410")
        .text()
        .contains("secret"));
}

/// ErrorResponseTest test_write_error, test_failed_write_error;
/// ExceptionHandlerTest test_known_error.
#[test]
fn send_error_and_a_custom_write_error() {
    let server = serve(|| errors_app(Settings::default()));
    let r = get(server.addr, "/write_error");
    assert_eq!((r.status, r.text().as_str()), (500, "Error: 500"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let r = get(server.addr, "/write_error?how=send_error");
    assert_eq!((r.status, r.text().as_str()), (503, "Status: 503"));
    let r = get(server.addr, "/write_error?how=http");
    assert_eq!((r.status, r.text().as_str()), (410, "Error: 410"));
    let r = get(server.addr, "/write_error?how=permission");
    assert_eq!((r.status, r.text().as_str()), (403, "PermissionError"));

    let mut client = Client::connect(server.addr);
    let r = client.request("GET /failed_write_error HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("exception in write_error"));
    let r = client.request("GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

/// A panic in a handler, in `prepare` or in `get_current_user` is a 500;
/// the loop goes on and other connections are served.
#[test]
fn a_panic_is_a_500_and_other_connections_go_on() {
    let server = serve(|| errors_app(Settings::default()));
    let mut held = Client::connect(server.addr);
    for path in ["/default", "/panic_in_prepare", "/panic_in_current_user"] {
        let r = get(server.addr, path);
        assert_eq!(r.status, 500, "{path}");
        assert_eq!(r.text(), error_page(500, "Internal Server Error"));
        assert!(!r.text().contains("get ran"));
        let r = get(server.addr, "/ok");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "after {path}");
    }
    // A connection opened before the panics is served too.
    let r = held.request("GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
}

/// FinishInPrepareTest.
#[test]
fn prepare_finishing_the_response_skips_the_verb() {
    let server = serve(|| errors_app(Settings::default()));
    let mut client = Client::connect(server.addr);
    for _ in 0..2 {
        let r = client.request("GET /finish_in_prepare HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "done"));
    }
}

/// IncorrectContentLengthTest's spirit, checklist 47: once the headers are
/// out an error page cannot be sent, so the connection is closed and the
/// client sees a cut response (no last chunk).
#[test]
fn an_error_after_flush_closes_the_connection() {
    let server = serve(|| errors_app(Settings::default()));
    for how in ["error", "panic"] {
        let raw = raw_until_close(
            server.addr,
            format!("GET /fail_after_flush?how={how} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{how}: {text}");
        assert!(text.contains("Transfer-Encoding: chunked"), "{how}");
        assert!(text.contains("\r\n7\r\npartial\r\n"), "{how}: {text}");
        assert!(
            !text.ends_with("0\r\n\r\n"),
            "{how}: the body is cut: {text}"
        );
        assert!(!text.contains("500"), "{how}: no error page after the head");
    }
    assert_eq!(get(server.addr, "/ok").status, 200);
}

/// Declares a `Content-Length` its body does not have (Tornado's
/// `IncorrectContentLengthTest` handlers), or closes its own connection
/// before writing (`ClientCloseTest`).
struct WrongLength;

impl RequestHandler for WrongLength {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        match cx.path_arg(0).unwrap_or_default() {
            "high" => {
                cx.set_header("Content-Length", 42)?;
                cx.write("ok");
            }
            "low" => {
                cx.set_header("Content-Length", 2)?;
                cx.write("hello");
            }
            _ => {
                cx.connection().stream().close();
                cx.write("hello");
            }
        }
        Ok(())
    }
}

/// IncorrectContentLengthTest (checklist 47): a body shorter or longer
/// than the declared length is never sent mis-framed — the connection is
/// closed instead; ClientCloseTest: a handler whose connection is gone
/// ends quietly. The server goes on either way.
#[test]
fn a_wrong_content_length_aborts_the_connection() {
    let server = serve(|| {
        Application::new(vec![
            Route::new("/wrong/(.*)", || WrongLength),
            Route::new("/ok", || Fixed("ok")),
        ])
    });
    // Either nothing at all, or the head and less than it promised.
    let raw = raw_until_close(server.addr, b"GET /wrong/high HTTP/1.1\r\nHost: t\r\n\r\n");
    let text = String::from_utf8_lossy(&raw);
    if let Some((head, body)) = text.split_once("\r\n\r\n") {
        assert!(head.contains("Content-Length: 42"), "{head}");
        assert!(body.len() < 42, "cut short: {body:?}");
    }

    let raw = raw_until_close(server.addr, b"GET /wrong/low HTTP/1.1\r\nHost: t\r\n\r\n");
    let text = String::from_utf8_lossy(&raw);
    assert!(
        !text.contains("hello"),
        "never more than declared: {text:?}"
    );
    if let Some((_, body)) = text.split_once("\r\n\r\n") {
        assert!(body.len() <= 2, "{body:?}");
    }

    let raw = raw_until_close(server.addr, b"GET /wrong/close HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(raw.is_empty(), "{:?}", String::from_utf8_lossy(&raw));

    let mut client = Client::connect(server.addr);
    for _ in 0..2 {
        let r = client.request("GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    }
}

/// Counts its `on_finish` calls into a shared cell; fails per its path.
struct FinishCounter {
    count: Rc<Cell<u32>>,
}

impl RequestHandler for FinishCounter {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET", "POST"];

    async fn prepare(&mut self, cx: &mut Context) -> HandlerResult {
        match cx.path_arg(0).unwrap_or_default() {
            "prepare_finish" => {
                cx.write("early");
                cx.finish()
            }
            "prepare_error" => Err(HttpError::new(403)),
            _ => Ok(()),
        }
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        match cx.path_arg(0).unwrap_or_default() {
            "error" => Err(HttpError::new(400)),
            "send_error" => {
                cx.send_error(409);
                Ok(())
            }
            "panic" => panic!("counted"),
            "finish" => {
                cx.write("finished");
                cx.finish()?;
                assert!(cx.finish().is_err(), "finish twice is an error");
                cx.write("late");
                assert!(cx.flush().await.is_err(), "flush after finish is an error");
                Ok(())
            }
            "flush" => {
                cx.write("a");
                cx.flush().await?;
                cx.write("b");
                Ok(())
            }
            _ => {
                cx.write("ok");
                Ok(())
            }
        }
    }

    fn on_finish(&mut self, _cx: &mut Context) {
        self.count.set(self.count.get() + 1);
    }
}

/// Writes the shared count.
struct ReadCount {
    count: Rc<Cell<u32>>,
}

impl RequestHandler for ReadCount {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write(self.count.get().to_string());
        Ok(())
    }
}

/// `on_finish` runs exactly once per request, however it ends. (Each
/// request's `on_finish` runs before the connection reads the next request,
/// so the count read on the same connection is exact.)
#[test]
fn on_finish_is_called_once_however_the_request_ends() {
    let server = serve(|| {
        let count = Rc::new(Cell::new(0));
        let (a, b) = (count.clone(), count);
        Application::new(vec![
            Route::new("/count", move || ReadCount { count: b.clone() }),
            Route::new("/f/(.*)", move || FinishCounter { count: a.clone() }),
        ])
    });
    let mut client = Client::connect(server.addr);
    let cases = [
        ("GET", "ok", 200),
        ("GET", "error", 400),
        ("GET", "send_error", 409),
        ("GET", "panic", 500),
        ("GET", "finish", 200),
        ("GET", "flush", 200),
        ("GET", "prepare_finish", 200),
        ("GET", "prepare_error", 403),
        ("DELETE", "ok", 405),
        ("POST", "ok", 405),
    ];
    for (i, (method, path, status)) in cases.into_iter().enumerate() {
        let r = client.request(&request_line(method, &format!("/f/{path}")));
        assert_eq!(r.status, status, "{method} {path}");
        if path == "finish" {
            assert_eq!(r.text(), "finished", "a write after finish is dropped");
        }
        let r = client.request("GET /count HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(r.text(), (i + 1).to_string(), "after {method} {path}");
    }
}

// ----- compression ---------------------------------------------------------------

/// Writes a body of `?size=` bytes (default 1035, over the gzip minimum)
/// with `?type=` and `?vary=` headers (Tornado's `GzipTestCase` handler).
struct Gzip;

impl RequestHandler for Gzip {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        for vary in cx.get_arguments("vary")? {
            cx.add_header("Vary", vary)?;
        }
        if let Ok(content_type) = cx.get_argument("type") {
            cx.set_header("Content-Type", content_type)?;
        }
        let size: usize = cx
            .get_argument_or("size", "1035")?
            .parse()
            .map_err(|_| HttpError::new(400))?;
        let mut body = String::from("hello world");
        while body.len() < size {
            body.push('!');
        }
        body.truncate(size);
        cx.write(body);
        Ok(())
    }
}

fn gzip_app() -> Application {
    Application::with_settings(
        vec![Route::new("/", || Gzip)],
        Settings {
            compress_response: true,
            ..Settings::default()
        },
    )
}

/// The expected body of `Gzip` for `size`.
fn gzip_body(size: usize) -> Vec<u8> {
    let mut body = b"hello world".to_vec();
    body.resize(size.max(11), b'!');
    body.truncate(size);
    body
}

/// Decompresses a gzip body.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a valid gzip stream");
    out
}

/// `GET path` with `Accept-Encoding: gzip`.
fn get_gzip(addr: SocketAddr, path: &str, accept: &str) -> Response {
    fetch(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept-Encoding: {accept}\r\n\r\n"),
    )
}

/// All `Vary` values, split and trimmed.
fn vary(r: &Response) -> Vec<String> {
    r.headers_named("vary")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .collect()
}

/// GzipTestCase test_gzip, test_gzip_not_requested; checklist 48.
#[test]
fn compress_response_gzips_big_compressible_bodies() {
    let server = serve(gzip_app);
    for accept in ["gzip", "deflate, gzip", "gzip;q=1.0, identity", "GZIP"] {
        let r = get_gzip(server.addr, "/", accept);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{accept}");
        assert_eq!(vary(&r), ["Accept-Encoding"]);
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
        assert!(r.body.len() < 1035);
        assert_eq!(gunzip(&r.body), gzip_body(1035), "{accept}");
    }
    let r = get(server.addr, "/");
    assert!(r.header("content-encoding").is_none());
    assert_eq!(vary(&r), ["Accept-Encoding"], "Vary even when not gzipped");
    assert_eq!(r.body, gzip_body(1035));
}

/// Not gzipped: a refused coding, a small body, an incompressible type.
#[test]
fn compress_response_leaves_small_or_incompressible_bodies_alone() {
    let server = serve(gzip_app);
    let cases = [
        ("/", "gzip;q=0"),
        ("/", "identity"),
        ("/", "deflate"),
        ("/?size=1023", "gzip"),
        ("/?size=0", "gzip"),
        ("/?type=image/png", "gzip"),
        ("/?type=application/octet-stream", "gzip"),
    ];
    for (path, accept) in cases {
        let r = get_gzip(server.addr, path, accept);
        assert_eq!(r.status, 200, "{path} {accept}");
        assert!(
            r.header("content-encoding").is_none(),
            "{path} {accept}: {:?}",
            r.header("content-encoding")
        );
        assert_eq!(vary(&r), ["Accept-Encoding"], "{path} {accept}");
        let size = if path.contains("size=") {
            path.rsplit('=').next().unwrap().parse().unwrap()
        } else {
            1035
        };
        assert_eq!(r.body, gzip_body(size), "{path} {accept}");
    }
    // Exactly the minimum is compressed; JSON and SVG are compressible.
    for path in [
        "/?size=1024",
        "/?type=application/json",
        "/?type=image/svg%2Bxml",
    ] {
        let r = get_gzip(server.addr, path, "gzip");
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{path}");
    }
}

/// GzipTestCase test_vary_already_present, test_vary_already_present_multiple.
#[test]
fn compress_response_appends_to_an_existing_vary() {
    let server = serve(gzip_app);
    let r = get_gzip(server.addr, "/?vary=Accept-Language", "gzip");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(vary(&r), ["Accept-Language", "Accept-Encoding"]);
    let r = get_gzip(server.addr, "/?vary=Accept-Language&vary=Cookie", "gzip");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(vary(&r), ["Accept-Language", "Cookie", "Accept-Encoding"]);
    let r = get_gzip(server.addr, "/?vary=accept-encoding", "gzip");
    assert_eq!(vary(&r), ["accept-encoding"], "not added twice");
}

/// WSGISafeWebTest test_no_gzip: without the setting, no Vary and no gzip.
#[test]
fn without_compress_response_nothing_is_gzipped() {
    let server = serve(|| Application::new(vec![Route::new("/", || Gzip)]));
    let r = get_gzip(server.addr, "/", "gzip");
    assert!(r.header("content-encoding").is_none());
    assert!(r.header("vary").is_none());
    assert_eq!(r.body, gzip_body(1035));
}

// ----- connections ---------------------------------------------------------------

/// KeepAliveTest test_two_requests (and more), checklist 31 and 34.
#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = serve(routing_app);
    let mut client = Client::connect(server.addr);
    for i in 0..10 {
        let r = client.request(&format!("GET /group/{i} HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_eq!(r.status, 200);
        assert_eq!(json_of(&r)["path_args"], json!([i.to_string()]));
        assert!(r.header("connection").is_none());
    }
    let r = client.request("GET /order/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(client.is_closed());

    // HTTP/1.0 asks for keep-alive explicitly.
    let mut client = Client::connect(server.addr);
    for _ in 0..3 {
        let r = client.request("GET /order/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(r.text(), "general");
        assert_eq!(r.header("connection"), Some("Keep-Alive"));
    }
    let r = client.request("GET /order/x HTTP/1.0\r\n\r\n");
    assert_eq!(r.text(), "general");
    assert!(client.is_closed());
}

/// KeepAliveTest test_pipelined_requests, checklist 32.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = serve(arguments_app);
    let mut client = Client::connect(server.addr);
    let mut batch = String::new();
    batch.push_str("GET /get_argument?foo=one HTTP/1.1\r\nHost: t\r\n\r\n");
    batch.push_str(&post_form("/get_argument", "foo=two"));
    batch.push_str("GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n");
    batch.push_str("GET /get_argument?source=required HTTP/1.1\r\nHost: t\r\n\r\n");
    batch.push_str("GET /get_argument?foo=five HTTP/1.1\r\nHost: t\r\n\r\n");
    client.send(batch.as_bytes());
    let got: Vec<(u16, String)> = ["GET", "POST", "GET", "GET", "GET"]
        .iter()
        .map(|m| {
            let r = client.read_response(m);
            (r.status, r.text())
        })
        .collect();
    assert_eq!(got[0], (200, "one".to_string()));
    assert_eq!(got[1], (200, "two".to_string()));
    assert_eq!(got[2].0, 404);
    assert_eq!(got[3].0, 400);
    assert_eq!(got[4], (200, "five".to_string()));
}
