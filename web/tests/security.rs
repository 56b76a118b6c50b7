//! Cookies, signed cookies, XSRF and the login guard over loopback —
//! Tornado's `CookieTest`, `SecureCookieV2Test`/`SignedValueTest`,
//! `XSRFTest` and `AuthRedirectTest` (web_test.py, Tornado 6.6.1).

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{fetch, get, serve, Response};
use whirl_httpserver::parse_http_date;
use whirl_web::cookie::{CookieOptions, SameSite};
use whirl_web::signing::{
    decode_signed_value, get_signature_key_version, SecretKeys, SignedValueVersion,
};
use whirl_web::xsrf::decode_xsrf_token;
use whirl_web::{Application, Context, HandlerResult, RequestHandler, Route, Settings};

/// The secret the Python vectors below were signed with.
const SECRET: &str = "whirl-test-secret";

/// Signed by Tornado 6.6.1 with `SECRET` at `VECTOR_TIME`:
/// `create_signed_value("whirl-test-secret", "user", "alice", clock=lambda: 1600000000)`.
const PY_ALICE: &str = "2|1:0|10:1600000000|4:user|8:YWxpY2U=|\
                        0a5e3bd038dc080b4757edc9d25a2b4e519d291b64d0cff1be16b445dda585f1";

/// As `PY_ALICE` in the version 1 format (`version=1`).
const PY_ALICE_V1: &str = "YWxpY2U=|1600000000|0322c54e359b1c73cf99efe57c39ea9093761a68";

/// As `PY_ALICE` for the value `ünï "x";` (non-ASCII and separators).
const PY_UNICODE: &str = "2|1:0|10:1600000000|4:user|16:w7xuw68gIngiOw==|\
                          bf78a28eceae1e38d7c303a76839560a0c263dd91c2acc453043981cc93af374";

/// Signed by Tornado 6.6.1 with `{0: "old-key", 1: "new-key"}` and
/// `key_version=0` ("carol") and `key_version=1` ("dave").
const PY_CAROL_KEY0: &str = "2|1:0|10:1600000000|4:user|8:Y2Fyb2w=|\
                             fef03699e0a87c8d0e7515748d4481520e0e8da85ce8cb5f2ca184ed63d2ec99";
const PY_DAVE_KEY1: &str = "2|1:1|10:1600000000|4:user|8:ZGF2ZQ==|\
                            5585ba6d2fcd653000653b8aaa864a17c2978cc4eda9c19646989608224812d2";

/// A `max_age_days` that keeps the 2020 vectors valid for a century.
const CENTURY: &str = "36500";

// ----- handlers ------------------------------------------------------------

/// `/set/<case>`: sets cookies as Tornado's `CookieTest` handlers do.
struct SetCookies;

impl RequestHandler for SetCookies {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let case = cx.path_arg(0).unwrap_or_default().to_string();
        let d = CookieOptions::default();
        match case.as_str() {
            "basic" => {
                cx.set_cookie("str", "asdf", &d)?;
                cx.set_cookie("unicode", "qwer", &d)?;
            }
            "domain" => {
                let options = CookieOptions {
                    domain: Some("foo.com".into()),
                    path: Some("/foo".into()),
                    ..d
                };
                cx.set_cookie("unicode_args", "blah", &options)?;
            }
            "special" => {
                cx.set_cookie("equals", "a=b", &d)?;
                cx.set_cookie("semicolon", "a;b", &d)?;
                cx.set_cookie("quote", "a\"b", &d)?;
            }
            "max_age" => {
                let options = CookieOptions {
                    max_age: Some(10),
                    ..d
                };
                cx.set_cookie("foo", "bar", &options)?;
            }
            "expires_days" => {
                let options = CookieOptions {
                    expires_days: Some(10.0),
                    ..d
                };
                cx.set_cookie("foo", "bar", &options)?;
            }
            "expires" => {
                let options = CookieOptions {
                    expires: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
                    expires_days: Some(99.0),
                    ..d
                };
                cx.set_cookie("foo", "bar", &options)?;
            }
            "flags" => {
                let secure = CookieOptions {
                    secure: true,
                    ..d.clone()
                };
                let httponly = CookieOptions {
                    httponly: true,
                    ..d.clone()
                };
                cx.set_cookie("a", "1", &secure)?;
                cx.set_cookie("b", "1", &d)?;
                cx.set_cookie("c", "1", &httponly)?;
                for (name, samesite) in [
                    ("lax", SameSite::Lax),
                    ("strict", SameSite::Strict),
                    ("none", SameSite::None),
                ] {
                    let options = CookieOptions {
                        samesite: Some(samesite),
                        ..d.clone()
                    };
                    cx.set_cookie(name, "1", &options)?;
                }
            }
            "all" => {
                let options = CookieOptions {
                    domain: Some("example.com".into()),
                    expires: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
                    path: Some("/app".into()),
                    expires_days: None,
                    max_age: Some(3600),
                    httponly: true,
                    secure: true,
                    samesite: Some(SameSite::Strict),
                };
                cx.set_cookie("session", "s3cr3t", &options)?;
            }
            "no_path" => {
                let options = CookieOptions { path: None, ..d };
                cx.set_cookie("nopath", "1", &options)?;
            }
            "overwrite" => {
                let example = CookieOptions {
                    domain: Some("example.com".into()),
                    ..d.clone()
                };
                cx.set_cookie("a", "b", &example)?;
                cx.set_cookie("c", "d", &example)?;
                // A second call with the same name clobbers the first.
                cx.set_cookie("a", "e", &d)?;
            }
            "set_then_clear" => {
                cx.set_cookie("gone", "soon", &d)?;
                cx.clear_cookie("gone", &d)?;
            }
            _ => cx.send_error(404),
        }
        cx.write("set");
        Ok(())
    }
}

/// `/bad/<case>`: tries one cookie Tornado refuses; the error is returned.
struct BadCookie;

impl RequestHandler for BadCookie {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let case = cx.path_arg(0).unwrap_or_default().to_string();
        let d = CookieOptions::default();
        let with = |f: fn(&mut CookieOptions)| {
            let mut o = CookieOptions::default();
            f(&mut o);
            o
        };
        match case.as_str() {
            "name_semicolon" => cx.set_cookie("foo;", "bar", &d)?,
            "name_space" => cx.set_cookie("foo bar", "bar", &d)?,
            "name_control" => cx.set_cookie("foo\x01", "bar", &d)?,
            "name_del" => cx.set_cookie("foo\x7f", "bar", &d)?,
            "name_reserved" => cx.set_cookie("Path", "bar", &d)?,
            "name_empty" => cx.set_cookie("", "bar", &d)?,
            "value_space" => cx.set_cookie("foo", "a b", &d)?,
            "value_crlf" => cx.set_cookie("foo", "a\r\nX-Injected: 1", &d)?,
            "value_wide" => cx.set_cookie("foo", "snow\u{2603}", &d)?,
            "domain_semicolon" => cx.set_cookie(
                "foo",
                "bar",
                &with(|o| o.domain = Some("example;.com".into())),
            )?,
            "domain_crlf" => cx.set_cookie(
                "foo",
                "bar",
                &with(|o| o.domain = Some("example\r\n.com".into())),
            )?,
            "path_control" => {
                cx.set_cookie("foo", "bar", &with(|o| o.path = Some("/\x05".into())))?
            }
            "path_semicolon" => {
                cx.set_cookie("foo", "bar", &with(|o| o.path = Some("/; Secure".into())))?
            }
            "clear_bad_name" => cx.clear_cookie("foo;", &d)?,
            _ => cx.send_error(404),
        }
        cx.write("should not get here");
        Ok(())
    }
}

/// `/get`: the request's cookie `foo`, or `default`.
struct GetCookie;

impl RequestHandler for GetCookie {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let value = cx.get_cookie("foo").unwrap_or_else(|| "default".into());
        cx.write(value);
        Ok(())
    }
}

/// `/clear`: clears cookie `foo` (with `?path=&domain=` if given).
struct ClearCookie;

impl RequestHandler for ClearCookie {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let path = cx.get_argument_or("path", "/")?;
        let domain = cx.get_argument_or("domain", "")?;
        let options = CookieOptions {
            path: Some(path),
            domain: Some(domain).filter(|d| !d.is_empty()),
            ..CookieOptions::default()
        };
        cx.clear_cookie("foo", &options)?;
        Ok(())
    }
}

/// `/signed/set?value=…&name=…`: sets a signed cookie (30 days, as
/// Tornado's default `expires_days`).
struct SetSigned;

impl RequestHandler for SetSigned {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let name = cx.get_argument_or("name", "user")?;
        let value = cx.get_argument("value")?;
        cx.set_signed_cookie(&name, &value)?;
        cx.write("signed");
        Ok(())
    }
}

/// `/signed/get?name=…&max_age_days=…`: the signed cookie's value, or
/// `<none>`.
struct GetSigned;

impl RequestHandler for GetSigned {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let name = cx.get_argument_or("name", "user")?;
        let max_age = cx
            .get_argument("max_age_days")
            .ok()
            .and_then(|d| d.parse::<f64>().ok());
        let value = cx.get_signed_cookie(&name, max_age)?;
        cx.write(value.unwrap_or_else(|| "<none>".into()));
        Ok(())
    }
}

/// `/xsrf`: GET writes the token; every other verb writes `ok`.
struct Xsrf;

impl RequestHandler for Xsrf {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let token = cx.xsrf_token()?;
        cx.write(token);
        Ok(())
    }

    async fn head(&mut self, _cx: &mut Context) -> HandlerResult {
        Ok(())
    }

    async fn options(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("ok");
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("ok");
        Ok(())
    }

    async fn put(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("ok");
        Ok(())
    }

    async fn delete(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("ok");
        Ok(())
    }

    async fn patch(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("ok");
        Ok(())
    }
}

/// `/xsrf/form`: the token twice and the form field, in one request.
struct XsrfForm;

impl RequestHandler for XsrfForm {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let first = cx.xsrf_token()?;
        let second = cx.xsrf_token()?;
        let form = cx.xsrf_form_html()?;
        cx.write(format!("{first}\n{second}\n{form}"));
        Ok(())
    }
}

/// Reads the user from the signed cookie `user`.
async fn user_from_cookie(cx: &mut Context) -> Option<String> {
    cx.get_signed_cookie("user", None).ok().flatten()
}

/// `/protected…`: needs a logged-in user (`cx.authenticated()?`).
struct Protected;

impl RequestHandler for Protected {
    async fn get_current_user(&mut self, cx: &mut Context) -> Option<String> {
        user_from_cookie(cx).await
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let user = cx.authenticated()?;
        cx.write(format!("hello {user}"));
        Ok(())
    }

    async fn head(&mut self, cx: &mut Context) -> HandlerResult {
        cx.authenticated()?;
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        let user = cx.authenticated()?;
        cx.write(format!("posted by {user}"));
        Ok(())
    }
}

/// `/whoami`: the current user without the guard.
struct WhoAmI;

impl RequestHandler for WhoAmI {
    async fn get_current_user(&mut self, cx: &mut Context) -> Option<String> {
        user_from_cookie(cx).await
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let user = cx.current_user().unwrap_or("anonymous").to_string();
        cx.write(user);
        Ok(())
    }
}

// ----- applications and helpers ----------------------------------------------

fn routes() -> Vec<Route> {
    vec![
        Route::new(r"/set/(\w+)", || SetCookies),
        Route::new(r"/bad/(\w+)", || BadCookie),
        Route::new("/get", || GetCookie),
        Route::new("/clear", || ClearCookie),
        Route::new("/signed/set", || SetSigned),
        Route::new("/signed/get", || GetSigned),
        Route::new("/xsrf", || Xsrf),
        Route::new("/xsrf/form", || XsrfForm),
        Route::new("/protected(?:/.*)?", || Protected),
        Route::new("/whoami", || WhoAmI),
    ]
}

/// An application with `settings` and every route above.
fn app_with(settings: Settings) -> Application {
    Application::with_settings(routes(), settings)
}

/// The default secure application: one secret, a login URL, no XSRF.
fn app() -> Application {
    app_with(Settings {
        cookie_secret: Some(SecretKeys::single(SECRET)),
        login_url: Some("/login".into()),
        ..Settings::default()
    })
}

/// `GET path` with a `Cookie` header.
fn get_with_cookie(addr: std::net::SocketAddr, path: &str, cookie: &str) -> Response {
    fetch(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nCookie: {cookie}\r\n\r\n"),
    )
}

/// A request with `method`, extra header lines (each ending in CRLF) and
/// a form body.
fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> Response {
    fetch(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Percent-encodes a form value (the XSRF tokens hold `|`).
fn form_escape(value: &str) -> String {
    whirl_web::escape::url_escape(value, true)
}

/// The `Set-Cookie` lines of a response, sorted.
fn set_cookies(r: &Response) -> Vec<String> {
    let mut lines: Vec<String> = r
        .headers_named("set-cookie")
        .into_iter()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

/// The date in an `expires=` attribute.
fn expires_of(set_cookie: &str) -> SystemTime {
    let expires = set_cookie
        .split("; ")
        .find_map(|a| a.strip_prefix("expires="))
        .unwrap_or_else(|| panic!("no expires in {set_cookie:?}"));
    parse_http_date(expires).unwrap_or_else(|| panic!("bad date {expires:?}"))
}

/// Whether `t` is within a day of `expected` (the test's clock and the
/// server's are the same; the slack only keeps a slow machine from
/// mattering).
fn about(t: SystemTime, expected: SystemTime) -> bool {
    let diff = match t.duration_since(expected) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    diff < Duration::from_secs(86_400)
}

// ----- plain cookies ----------------------------------------------------------

#[test]
fn set_cookie_writes_tornados_header() {
    let server = serve(app);
    let r = get(server.addr, "/set/basic");
    assert_eq!(r.status, 200);
    assert_eq!(
        set_cookies(&r),
        ["str=asdf; Path=/", "unicode=qwer; Path=/"]
    );

    let r = get(server.addr, "/set/domain");
    assert_eq!(
        set_cookies(&r),
        ["unicode_args=blah; Domain=foo.com; Path=/foo"]
    );

    let r = get(server.addr, "/set/max_age");
    assert_eq!(set_cookies(&r), ["foo=bar; Max-Age=10; Path=/"]);

    let r = get(server.addr, "/set/no_path");
    assert_eq!(set_cookies(&r), ["nopath=1"]);
}

#[test]
fn set_cookie_quotes_special_values() {
    let server = serve(app);
    let r = get(server.addr, "/set/special");
    assert_eq!(
        set_cookies(&r),
        [
            r#"equals="a=b"; Path=/"#,
            r#"quote="a\"b"; Path=/"#,
            r#"semicolon="a\073b"; Path=/"#,
        ]
    );
    // And a browser sending them back gets the original values.
    for (header, expected) in [
        ("foo=a=b", "a=b"),
        (r#"foo="a=b""#, "a=b"),
        (r#"foo="a;b""#, "\"a"),
        (r"foo=a\073b", r"a\073b"),
        (r#"foo="a\073b""#, "a;b"),
        (r#"foo="a\"b""#, "a\"b"),
    ] {
        let r = get_with_cookie(server.addr, "/get", header);
        assert_eq!(r.text(), expected, "Cookie: {header}");
    }
}

#[test]
fn set_cookie_expiry_attributes() {
    let server = serve(app);
    let r = get(server.addr, "/set/expires_days");
    let lines = set_cookies(&r);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("foo=bar; expires=") && lines[0].ends_with(" GMT; Path=/"),
        "{lines:?}"
    );
    let ten_days = SystemTime::now() + Duration::from_secs(10 * 86_400);
    assert!(about(expires_of(&lines[0]), ten_days), "{lines:?}");

    // An explicit `expires` wins over `expires_days`.
    let r = get(server.addr, "/set/expires");
    assert_eq!(
        set_cookies(&r),
        ["foo=bar; expires=Tue, 14 Nov 2023 22:13:20 GMT; Path=/"]
    );
}

#[test]
fn set_cookie_flags_and_samesite() {
    let server = serve(app);
    let r = get(server.addr, "/set/flags");
    assert_eq!(
        set_cookies(&r),
        [
            "a=1; Path=/; Secure",
            "b=1; Path=/",
            "c=1; HttpOnly; Path=/",
            "lax=1; Path=/; SameSite=Lax",
            "none=1; Path=/; SameSite=None",
            "strict=1; Path=/; SameSite=Strict",
        ]
    );
    let r = get(server.addr, "/set/all");
    assert_eq!(
        set_cookies(&r),
        [
            "session=s3cr3t; Domain=example.com; expires=Tue, 14 Nov 2023 22:13:20 GMT; \
          HttpOnly; Max-Age=3600; Path=/app; SameSite=Strict; Secure"
        ]
    );
}

#[test]
fn set_cookie_twice_keeps_the_last() {
    // Tornado's test_set_cookie_overwrite: one Set-Cookie per name, the
    // attributes of the first call not carried over.
    let server = serve(app);
    let r = get(server.addr, "/set/overwrite");
    assert_eq!(
        set_cookies(&r),
        ["a=e; Path=/", "c=d; Domain=example.com; Path=/"]
    );
    let r = get(server.addr, "/set/set_then_clear");
    let lines = set_cookies(&r);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("gone=\"\"; expires="), "{lines:?}");
}

#[test]
fn invalid_cookies_are_a_500_without_set_cookie() {
    let server = serve(app);
    for case in [
        "name_semicolon",
        "name_space",
        "name_control",
        "name_del",
        "name_reserved",
        "name_empty",
        "value_space",
        "value_crlf",
        "value_wide",
        "domain_semicolon",
        "domain_crlf",
        "path_control",
        "path_semicolon",
        "clear_bad_name",
    ] {
        let r = get(server.addr, &format!("/bad/{case}"));
        assert_eq!(r.status, 500, "{case}");
        assert!(r.headers_named("set-cookie").is_empty(), "{case}: {r:?}");
        assert!(r.header("x-injected").is_none(), "{case}");
        assert!(!r.text().contains("should not get here"), "{case}");
    }
}

#[test]
fn get_cookie_reads_the_request() {
    let server = serve(app);
    assert_eq!(get(server.addr, "/get").text(), "default");
    assert_eq!(
        get_with_cookie(server.addr, "/get", "foo=bar").text(),
        "bar"
    );
    assert_eq!(
        get_with_cookie(server.addr, "/get", "foo=\"bar\"").text(),
        "bar"
    );
    assert_eq!(
        get_with_cookie(server.addr, "/get", "a=1; foo=baz; b=2").text(),
        "baz"
    );
    // An illegal name is dropped, as Python's SimpleCookie does.
    assert_eq!(
        get_with_cookie(server.addr, "/get", "/=exception;").text(),
        "default"
    );
}

#[test]
fn clear_cookie_expires_it_in_the_past() {
    let server = serve(app);
    let r = get_with_cookie(server.addr, "/clear", "foo=bar");
    let lines = set_cookies(&r);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("foo=\"\"; expires="), "{lines:?}");
    assert!(lines[0].ends_with("; Path=/"), "{lines:?}");
    let a_year_ago = SystemTime::now() - Duration::from_secs(365 * 86_400);
    assert!(about(expires_of(&lines[0]), a_year_ago), "{lines:?}");

    let r = get(server.addr, "/clear?path=/app&domain=example.com");
    let lines = set_cookies(&r);
    assert!(
        lines[0].starts_with("foo=\"\"; Domain=example.com; expires=")
            && lines[0].ends_with("; Path=/app"),
        "{lines:?}"
    );
}

// ----- signed cookies ----------------------------------------------------------

/// The signed cookie a response sets, unquoted.
fn signed_cookie(r: &Response, name: &str) -> String {
    r.cookies()
        .remove(name)
        .unwrap_or_else(|| panic!("no {name} cookie in {r:?}"))
        .replace("\\\"", "\"")
}

#[test]
fn signed_cookie_round_trip_over_two_requests() {
    let server = serve(app);
    let r = get(server.addr, "/signed/set?value=alice");
    assert_eq!(r.status, 200);
    let line = r.header("set-cookie").unwrap().to_string();
    // Tornado's v2 format, quoted because of the base64 `=`.
    assert!(line.starts_with("user=\"2|1:0|10:"), "{line}");
    let thirty_days = SystemTime::now() + Duration::from_secs(30 * 86_400);
    assert!(about(expires_of(&line), thirty_days), "{line}");
    let value = signed_cookie(&r, "user");
    assert_eq!(
        decode_signed_value(
            &SecretKeys::single(SECRET),
            "user",
            &value,
            31.0,
            SignedValueVersion::V2
        )
        .as_deref(),
        Some(&b"alice"[..])
    );

    // The browser sends it back as it got it (quoted) or bare.
    let quoted = line.split(';').next().unwrap();
    let r = get_with_cookie(server.addr, "/signed/get", quoted);
    assert_eq!(r.text(), "alice");
    let r = get_with_cookie(server.addr, "/signed/get", &format!("user={value}"));
    assert_eq!(r.text(), "alice");
    // Missing → absent.
    assert_eq!(get(server.addr, "/signed/get").text(), "<none>");
}

#[test]
fn signed_cookie_with_separators_and_unicode_round_trips() {
    let server = serve(app);
    // `ünï "x";` percent-encoded in the query.
    let r = get(server.addr, "/signed/set?value=%C3%BCn%C3%AF%20%22x%22%3B");
    let value = signed_cookie(&r, "user");
    let r = get_with_cookie(server.addr, "/signed/get", &format!("user={value}"));
    assert_eq!(r.text(), "ünï \"x\";");
}

#[test]
fn cookie_signed_by_python_tornado_is_accepted() {
    let server = serve(app);
    let path = format!("/signed/get?max_age_days={CENTURY}");
    for (cookie, expected) in [
        (format!("user={PY_ALICE}"), "alice"),
        (format!("user=\"{PY_ALICE}\""), "alice"),
        (format!("user={PY_ALICE_V1}"), "alice"),
        (format!("user={PY_UNICODE}"), "ünï \"x\";"),
    ] {
        let r = get_with_cookie(server.addr, &path, &cookie);
        assert_eq!(r.text(), expected, "{cookie}");
    }
    // And as the current user behind `authenticated`.
    let r = get_with_cookie(
        server.addr,
        "/whoami",
        &format!("user={}", whirl_signed_now("alice")),
    );
    assert_eq!(r.text(), "alice");
}

/// A cookie value signed now by whirl (with `SECRET`).
fn whirl_signed_now(value: &str) -> String {
    whirl_web::signing::create_signed_value(&SecretKeys::single(SECRET), "user", value.as_bytes())
}

#[test]
fn expired_signed_cookie_is_absent() {
    let server = serve(app);
    // The 2020 vector is past the default 31 days, and past 30 days.
    let cookie = format!("user={PY_ALICE}");
    assert_eq!(
        get_with_cookie(server.addr, "/signed/get", &cookie).text(),
        "<none>"
    );
    assert_eq!(
        get_with_cookie(server.addr, "/signed/get?max_age_days=30", &cookie).text(),
        "<none>"
    );
    assert_eq!(
        get_with_cookie(server.addr, "/signed/get?max_age_days=30", &cookie).status,
        200
    );
}

#[test]
fn tampered_or_misnamed_signed_cookie_is_absent() {
    let server = serve(app);
    let path = format!("/signed/get?max_age_days={CENTURY}");
    // One hex digit of the signature changed.
    let mut bad_sig = PY_ALICE.to_string();
    let last = bad_sig.pop().unwrap();
    bad_sig.push(if last == '0' { '1' } else { '0' });
    // The value changed (bob's base64, alice's signature).
    let bad_value = PY_ALICE.replace("8:YWxpY2U=", "4:Ym9i");
    // The timestamp moved.
    let bad_time = PY_ALICE.replace("1600000000", "1600000001");
    for cookie in [bad_sig, bad_value, bad_time, "garbage".into(), "2|".into()] {
        let r = get_with_cookie(server.addr, &path, &format!("user={cookie}"));
        assert_eq!((r.status, r.text().as_str()), (200, "<none>"), "{cookie}");
    }
    // Signed for `user`, presented as `admin`.
    let r = get_with_cookie(
        server.addr,
        &format!("{path}&name=admin"),
        &format!("admin={PY_ALICE}"),
    );
    assert_eq!(r.text(), "<none>");
}

#[test]
fn signed_cookie_with_another_secret_is_absent() {
    let server = serve(|| {
        app_with(Settings {
            cookie_secret: Some(SecretKeys::single("another secret")),
            ..Settings::default()
        })
    });
    let path = format!("/signed/get?max_age_days={CENTURY}");
    let r = get_with_cookie(server.addr, &path, &format!("user={PY_ALICE}"));
    assert_eq!(r.text(), "<none>");
    let r = get_with_cookie(
        server.addr,
        "/signed/get",
        &format!("user={}", whirl_signed_now("alice")),
    );
    assert_eq!(r.text(), "<none>");
}

#[test]
fn signed_cookies_without_a_secret_are_a_500() {
    let server = serve(|| app_with(Settings::default()));
    assert_eq!(get(server.addr, "/signed/set?value=x").status, 500);
    let r = get_with_cookie(server.addr, "/signed/get", &format!("user={PY_ALICE}"));
    assert_eq!(r.status, 500);
    assert!(r.headers_named("set-cookie").is_empty());
}

#[test]
fn key_versions_rotate() {
    let rotated =
        || SecretKeys::versioned([(0, "old-key"), (1, "new-key")], 1).expect("key 1 is present");
    let server = serve(move || {
        app_with(Settings {
            cookie_secret: Some(rotated()),
            ..Settings::default()
        })
    });
    let path = format!("/signed/get?max_age_days={CENTURY}");
    // Values signed by Python with either key version are read.
    let r = get_with_cookie(server.addr, &path, &format!("user={PY_CAROL_KEY0}"));
    assert_eq!(r.text(), "carol");
    let r = get_with_cookie(server.addr, &path, &format!("user={PY_DAVE_KEY1}"));
    assert_eq!(r.text(), "dave");
    // New values are signed with the current version, 1.
    let r = get(server.addr, "/signed/set?value=erin");
    let value = signed_cookie(&r, "user");
    assert!(value.starts_with("2|1:1|"), "{value}");
    assert_eq!(get_signature_key_version(&value), Some(1));
    let r = get_with_cookie(server.addr, "/signed/get", &format!("user={value}"));
    assert_eq!(r.text(), "erin");
    drop(server);

    // Once version 0 is retired, its values are absent.
    let server = serve(|| {
        app_with(Settings {
            cookie_secret: Some(SecretKeys::versioned([(1, "new-key")], 1).unwrap()),
            ..Settings::default()
        })
    });
    let r = get_with_cookie(server.addr, &path, &format!("user={PY_CAROL_KEY0}"));
    assert_eq!(r.text(), "<none>");
    let r = get_with_cookie(server.addr, &path, &format!("user={PY_DAVE_KEY1}"));
    assert_eq!(r.text(), "dave");
    let r = get_with_cookie(server.addr, "/signed/get", &format!("user={value}"));
    assert_eq!(r.text(), "erin");
    drop(server);

    // A single secret verifies whatever version a value names, as in
    // Tornado, but only with its own key.
    let server = serve(|| {
        app_with(Settings {
            cookie_secret: Some(SecretKeys::single("old-key")),
            ..Settings::default()
        })
    });
    let r = get_with_cookie(server.addr, &path, &format!("user={PY_CAROL_KEY0}"));
    assert_eq!(r.text(), "carol");
    let r = get_with_cookie(server.addr, &path, &format!("user={PY_DAVE_KEY1}"));
    assert_eq!(r.text(), "<none>");
}

// ----- XSRF -----------------------------------------------------------------

fn xsrf_app() -> Application {
    app_with(Settings {
        xsrf_cookies: true,
        cookie_secret: Some(SecretKeys::single(SECRET)),
        login_url: Some("/login".into()),
        ..Settings::default()
    })
}

/// A fresh token from `GET /xsrf` (the cookie it sets and the body agree).
fn new_token(addr: std::net::SocketAddr) -> String {
    let r = get(addr, "/xsrf");
    assert_eq!(r.status, 200);
    r.text()
}

/// A `POST /xsrf` with the cookie and the form field given.
fn post_xsrf(addr: std::net::SocketAddr, cookie: Option<&str>, field: Option<&str>) -> u16 {
    let headers = cookie.map_or(String::new(), |c| format!("Cookie: _xsrf={c}\r\n"));
    let body = field.map_or(String::new(), |f| format!("_xsrf={}", form_escape(f)));
    request(addr, "POST", "/xsrf", &headers, &body).status
}

#[test]
fn xsrf_get_sets_the_cookie_once() {
    let server = serve(xsrf_app);
    let r = get(server.addr, "/xsrf");
    let lines = r.headers_named("set-cookie");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let token = r.text();
    assert_eq!(lines[0], format!("_xsrf={token}; Path=/"));
    let decoded = decode_xsrf_token(&token).expect("a v2 token");
    assert_eq!(decoded.version, Some(2));
    assert_eq!(decoded.token.len(), 16);

    // With the cookie, no new cookie; a differently masked, equal token.
    let r = get_with_cookie(server.addr, "/xsrf", &format!("_xsrf={token}"));
    assert!(r.headers_named("set-cookie").is_empty(), "{r:?}");
    let again = r.text();
    assert_ne!(again, token);
    assert_eq!(decode_xsrf_token(&again).unwrap().token, decoded.token);

    // Several calls in one request: one cookie, one token.
    let r = get(server.addr, "/xsrf/form");
    assert_eq!(r.headers_named("set-cookie").len(), 1);
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], lines[1]);
    assert_eq!(r.cookies()["_xsrf"], lines[0]);
}

#[test]
fn xsrf_tokens_are_distinct_and_each_valid() {
    let server = serve(xsrf_app);
    let tokens: Vec<String> = (0..10).map(|_| new_token(server.addr)).collect();
    let mut unique = tokens.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    for token in &tokens {
        assert_eq!(post_xsrf(server.addr, Some(token), Some(token)), 200);
    }
    // A token refreshed from the same cookie still matches it.
    let cookie = &tokens[0];
    let r = get_with_cookie(server.addr, "/xsrf", &format!("_xsrf={cookie}"));
    let refreshed = r.text();
    assert_ne!(&refreshed, cookie);
    assert_eq!(post_xsrf(server.addr, Some(cookie), Some(&refreshed)), 200);
    assert_eq!(post_xsrf(server.addr, Some(&refreshed), Some(cookie)), 200);
}

#[test]
fn xsrf_post_is_checked() {
    let server = serve(xsrf_app);
    let token = new_token(server.addr);
    let other = new_token(server.addr);
    // No token at all, or a cookie but no field.
    assert_eq!(post_xsrf(server.addr, None, None), 403);
    assert_eq!(post_xsrf(server.addr, Some(&token), None), 403);
    assert_eq!(post_xsrf(server.addr, Some(&token), Some("")), 403);
    // A token but no cookie.
    assert_eq!(post_xsrf(server.addr, None, Some(&token)), 403);
    // Another user's token.
    assert_eq!(post_xsrf(server.addr, Some(&token), Some(&other)), 403);
    assert_eq!(post_xsrf(server.addr, Some(&other), Some(&token)), 403);
    // Malformed tokens in the field or the cookie.
    assert_eq!(post_xsrf(server.addr, Some(&token), Some("3|")), 403);
    assert_eq!(post_xsrf(server.addr, Some("3|"), Some(&token)), 403);
    assert_eq!(post_xsrf(server.addr, Some(&token), Some("2|zz|00|1")), 403);
    // The right one.
    assert_eq!(post_xsrf(server.addr, Some(&token), Some(&token)), 200);
    // Old raw tokens (Tornado before 3.2.2) still work.
    assert_eq!(
        post_xsrf(server.addr, Some("deadbeef"), Some("deadbeef")),
        200
    );
    assert_eq!(post_xsrf(server.addr, Some("xoxo"), Some("xoxo")), 200);
}

#[test]
fn xsrf_token_in_query_or_header() {
    let server = serve(xsrf_app);
    let token = new_token(server.addr);
    let cookie = format!("Cookie: _xsrf={token}\r\n");
    let query = format!("/xsrf?_xsrf={}", form_escape(&token));
    assert_eq!(
        request(server.addr, "POST", &query, &cookie, "").status,
        200
    );
    for name in ["X-XSRFToken", "X-Xsrftoken", "x-xsrftoken", "X-CSRFToken"] {
        let headers = format!("{cookie}{name}: {token}\r\n");
        let r = request(server.addr, "POST", "/xsrf", &headers, "");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{name}");
    }
    // A wrong header is refused, and a header without a cookie.
    let other = new_token(server.addr);
    let headers = format!("{cookie}X-XSRFToken: {other}\r\n");
    assert_eq!(
        request(server.addr, "POST", "/xsrf", &headers, "").status,
        403
    );
    let headers = format!("X-XSRFToken: {token}\r\n");
    assert_eq!(
        request(server.addr, "POST", "/xsrf", &headers, "").status,
        403
    );
}

#[test]
fn xsrf_checks_unsafe_methods_only() {
    let server = serve(xsrf_app);
    for method in ["PUT", "DELETE", "PATCH"] {
        let r = request(server.addr, method, "/xsrf", "", "");
        assert_eq!(r.status, 403, "{method}");
    }
    let token = new_token(server.addr);
    let headers = format!("Cookie: _xsrf={token}\r\nX-XSRFToken: {token}\r\n");
    for method in ["PUT", "DELETE", "PATCH"] {
        let r = request(server.addr, method, "/xsrf", &headers, "");
        assert_eq!(r.status, 200, "{method}");
    }
    // GET, HEAD and OPTIONS are never checked.
    assert_eq!(get(server.addr, "/xsrf").status, 200);
    let r = fetch(server.addr, "HEAD /xsrf HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(r.status, 200);
    let r = fetch(server.addr, "OPTIONS /xsrf HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

#[test]
fn xsrf_form_html_carries_a_valid_token() {
    let server = serve(xsrf_app);
    let r = get(server.addr, "/xsrf/form");
    let text = r.text();
    let form = text.lines().nth(2).unwrap();
    let token = text.lines().next().unwrap();
    assert_eq!(
        form,
        format!(r#"<input type="hidden" name="_xsrf" value="{token}"/>"#)
    );
    let cookie = r.cookies()["_xsrf"].clone();
    assert_eq!(post_xsrf(server.addr, Some(&cookie), Some(token)), 200);
}

#[test]
fn xsrf_is_off_by_default() {
    let server = serve(app);
    assert_eq!(post_xsrf(server.addr, None, None), 200);
}

// ----- current_user and authenticated ------------------------------------------

#[test]
fn authenticated_get_redirects_to_login_with_next() {
    let server = serve(app);
    let r = get(server.addr, "/protected");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/login?next=%2Fprotected"));
    assert!(!r.text().contains("hello"));

    // The whole URI goes in `next`, encoded as Python's urlencode does.
    let r = get(server.addr, "/protected?a=b&c=%20d");
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fprotected%3Fa%3Db%26c%3D%2520d")
    );
    let r = get(server.addr, "/protected/caf%C3%A9%20x~y");
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fprotected%2Fcaf%25C3%25A9%2520x~y")
    );

    let r = fetch(
        server.addr,
        "HEAD /protected HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/login?next=%2Fprotected"));
}

#[test]
fn authenticated_post_is_forbidden() {
    let server = serve(app);
    let r = request(server.addr, "POST", "/protected", "", "");
    assert_eq!(r.status, 403);
    assert!(r.header("location").is_none());
}

#[test]
fn authenticated_without_login_url_is_forbidden() {
    let server = serve(|| {
        app_with(Settings {
            cookie_secret: Some(SecretKeys::single(SECRET)),
            ..Settings::default()
        })
    });
    let r = get(server.addr, "/protected");
    assert_eq!(r.status, 403);
    assert!(r.header("location").is_none());
}

#[test]
fn authenticated_with_absolute_or_query_login_url() {
    let server = serve(|| {
        app_with(Settings {
            cookie_secret: Some(SecretKeys::single(SECRET)),
            login_url: Some("http://example.com/login".into()),
            ..Settings::default()
        })
    });
    // An absolute login URL gets an absolute `next`.
    let r = get(server.addr, "/protected");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("http://example.com/login?next=http%3A%2F%2Ftest%2Fprotected")
    );
    drop(server);

    // A login URL with its own query is used as it is.
    let server = serve(|| {
        app_with(Settings {
            cookie_secret: Some(SecretKeys::single(SECRET)),
            login_url: Some("/login?from=app".into()),
            ..Settings::default()
        })
    });
    let r = get(server.addr, "/protected");
    assert_eq!(r.header("location"), Some("/login?from=app"));
}

#[test]
fn logged_in_user_passes_the_guard() {
    let server = serve(app);
    let cookie = format!("user={}", whirl_signed_now("alice"));
    let r = get_with_cookie(server.addr, "/protected", &cookie);
    assert_eq!((r.status, r.text().as_str()), (200, "hello alice"));
    let r = request(
        server.addr,
        "POST",
        "/protected",
        &format!("Cookie: {cookie}\r\n"),
        "",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "posted by alice"));
    assert_eq!(
        get_with_cookie(server.addr, "/whoami", &cookie).text(),
        "alice"
    );
    assert_eq!(get(server.addr, "/whoami").text(), "anonymous");

    // A tampered or foreign cookie is no login.
    let forged = cookie.replace("YWxpY2U=", "Ym9i");
    let r = get_with_cookie(server.addr, "/protected", &forged);
    assert_eq!(r.status, 302);
    let r = get_with_cookie(server.addr, "/protected", &format!("user={PY_ALICE}"));
    assert_eq!(r.status, 302, "expired (2020) cookie");
}

#[test]
fn xsrf_runs_before_the_login_guard() {
    let server = serve(xsrf_app);
    let cookie = format!("user={}", whirl_signed_now("alice"));
    let r = request(
        server.addr,
        "POST",
        "/protected",
        &format!("Cookie: {cookie}\r\n"),
        "",
    );
    assert_eq!(r.status, 403);
    let token = new_token(server.addr);
    let headers = format!("Cookie: {cookie}; _xsrf={token}\r\nX-XSRFToken: {token}\r\n");
    let r = request(server.addr, "POST", "/protected", &headers, "");
    assert_eq!((r.status, r.text().as_str()), (200, "posted by alice"));
}

#[test]
fn xsrf_does_not_hide_a_404() {
    // Tornado's ErrorHandlerXSRFTest: an unmatched path is 404, not 403.
    let server = serve(xsrf_app);
    let r = request(server.addr, "POST", "/nowhere", "", "");
    assert_eq!(r.status, 404);
}
