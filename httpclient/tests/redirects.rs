//! Redirects: 301/302/303 turn POST into GET without a body, 307/308 keep
//! method and body, credentials stay within the origin, relative
//! locations, loops stopped by `max_redirects`, `follow_redirects(false)`,
//! and what the callbacks see of the redirects followed.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use support::{app_server, run, RawServer, TestServer, HELLO};
use whirl_httpclient::{AsyncHttpClient, ErrorKind, HttpRequest};

/// `/redirect/CODE?to=TO` on `server`.
fn redirect_url(server: &TestServer, code: u16, to: &str) -> String {
    let to: String = to
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    server.url(&format!("/redirect/{code}?to={to}"))
}

#[test]
fn post_becomes_get_without_a_body_after_301_302_303() {
    for code in [301, 302, 303] {
        let server = app_server();
        let url = redirect_url(&server, code, "/landed");
        let response = run(async move {
            let request = HttpRequest::post(url)
                .header("Content-Type", "text/plain")
                .body("a body that must not follow");
            AsyncHttpClient::new().fetch(request).await
        })
        .unwrap();
        assert_eq!(response.code, 200, "{code}");
        assert_eq!(response.text(), HELLO, "{code}");
        assert_eq!(response.effective_url, server.url("/landed"), "{code}");
        let seen = server.stats.seen();
        assert_eq!(seen.len(), 2, "{code}");
        assert_eq!(seen[0].request.method(), "POST");
        assert_eq!(seen[0].request.body, b"a body that must not follow");
        let landed = &seen[1].request;
        assert_eq!(
            (landed.method(), landed.path()),
            ("GET", "/landed"),
            "{code}"
        );
        assert!(landed.body.is_empty(), "{code}");
        for header in ["Content-Length", "Content-Type", "Transfer-Encoding"] {
            assert!(
                !landed.headers.contains(header),
                "{code}: {header} was kept"
            );
        }
    }
}

#[test]
fn put_becomes_get_after_303_only() {
    let server = app_server();
    let see_other = redirect_url(&server, 303, "/landed");
    let moved = redirect_url(&server, 301, "/landed");
    run(async move {
        let client = AsyncHttpClient::new();
        client
            .fetch(HttpRequest::put(see_other).body("p"))
            .await
            .unwrap();
        client
            .fetch(HttpRequest::put(moved).body("p"))
            .await
            .unwrap();
    });
    let seen = server.stats.seen();
    assert_eq!(seen[1].request.method(), "GET");
    assert!(seen[1].request.body.is_empty());
    assert_eq!(seen[3].request.method(), "PUT", "301 keeps a PUT");
    assert_eq!(seen[3].request.body, b"p");
}

#[test]
fn head_stays_head_after_303() {
    let server = app_server();
    let url = redirect_url(&server, 303, "/landed");
    let response = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).method("HEAD"))
            .await
    })
    .unwrap();
    assert_eq!(response.code, 200);
    assert_eq!(server.stats.last().request.method(), "HEAD");
}

#[test]
fn redirects_307_and_308_keep_method_and_body() {
    for code in [307, 308] {
        let server = app_server();
        let url = redirect_url(&server, code, "/landed");
        let response = run(async move {
            let request = HttpRequest::post(url)
                .header("Content-Type", "application/octet-stream")
                .body("kept body");
            AsyncHttpClient::new().fetch(request).await
        })
        .unwrap();
        assert_eq!(response.text(), "kept body", "{code}");
        let landed = server.stats.last().request;
        assert_eq!((landed.method(), landed.path()), ("POST", "/landed"));
        assert_eq!(landed.body, b"kept body");
        assert_eq!(landed.headers.get("Content-Length"), Some("9"));
        assert_eq!(
            landed.headers.get("Content-Type"),
            Some("application/octet-stream")
        );
    }
}

#[test]
fn a_307_replays_a_body_producer() {
    let server = app_server();
    let url = redirect_url(&server, 307, "/landed");
    let calls = Rc::new(RefCell::new(0));
    let counter = calls.clone();
    let response = run(async move {
        let request = HttpRequest::post(url).body_producer(move |writer| {
            *counter.borrow_mut() += 1;
            Box::pin(async move {
                writer.write("produced ").await?;
                writer.write("twice").await
            })
        });
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert_eq!(response.code, 200);
    assert_eq!(response.text(), "produced twice");
    assert_eq!(*calls.borrow(), 2, "the producer ran once per request");
    let landed = server.stats.last().request;
    assert_eq!((landed.method(), landed.path()), ("POST", "/landed"));
    assert_eq!(landed.body, b"produced twice");
}

#[test]
fn credentials_are_dropped_when_the_redirect_leaves_the_origin() {
    let origin = app_server();
    let elsewhere = app_server();
    let url = redirect_url(&origin, 302, &elsewhere.url("/landed"));
    let response = run(async move {
        let request = HttpRequest::get(url)
            .basic_auth("user", "secret")
            .header("Cookie", "session=abc")
            .header("X-Other", "kept");
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert_eq!(response.effective_url, elsewhere.url("/landed"));
    let first = origin.stats.last().request;
    assert!(first.headers.contains("Authorization"));
    assert_eq!(first.headers.get("Cookie"), Some("session=abc"));
    let landed = elsewhere.stats.last().request;
    assert!(!landed.headers.contains("Authorization"));
    assert!(!landed.headers.contains("Cookie"));
    assert_eq!(landed.headers.get("X-Other"), Some("kept"));
    assert_eq!(
        landed.host(),
        elsewhere.addr.to_string(),
        "Host follows the URL"
    );
}

#[test]
fn an_explicit_authorization_header_is_dropped_across_origins_too() {
    let origin = app_server();
    let elsewhere = app_server();
    let url = redirect_url(&origin, 307, &elsewhere.url("/landed"));
    run(async move {
        let request = HttpRequest::get(url).header("Authorization", "Bearer t0ken");
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert!(!elsewhere
        .stats
        .last()
        .request
        .headers
        .contains("Authorization"));
}

#[test]
fn credentials_are_kept_within_the_origin() {
    let server = app_server();
    let url = redirect_url(&server, 302, &server.url("/landed"));
    run(async move {
        let request = HttpRequest::get(url)
            .basic_auth("user", "secret")
            .header("Cookie", "session=abc");
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    let landed = server.stats.last().request;
    assert_eq!(landed.path(), "/landed");
    assert_eq!(
        landed.headers.get("Authorization"),
        Some("Basic dXNlcjpzZWNyZXQ=")
    );
    assert_eq!(landed.headers.get("Cookie"), Some("session=abc"));
}

#[test]
fn relative_locations_are_resolved_against_the_current_url() {
    let server = app_server();
    let url = redirect_url(&server, 302, "../elsewhere/landed?q=1");
    let response = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    assert_eq!(response.effective_url, server.url("/elsewhere/landed?q=1"));
    assert_eq!(server.stats.last().request.uri(), "/elsewhere/landed?q=1");
}

#[test]
fn a_chain_of_redirects_is_followed_to_the_end() {
    let server = app_server();
    let last = redirect_url(&server, 301, "/landed");
    let middle = redirect_url(&server, 307, &last);
    let first = redirect_url(&server, 302, &middle);
    let response = run(async move { AsyncHttpClient::new().fetch(first).await }).unwrap();
    assert_eq!(response.code, 200);
    assert_eq!(response.effective_url, server.url("/landed"));
    assert_eq!(server.stats.seen().len(), 4);
    let t = response.time_info;
    assert!(t.redirect <= response.request_time, "{t:?}");
    assert!(t.total <= response.request_time, "{t:?}");
    assert_eq!(
        server.stats.connections(),
        1,
        "redirects reuse the connection"
    );
}

#[test]
fn a_redirect_loop_fails_after_max_redirects() {
    let server = app_server();
    let url = server.url("/loop");
    let e = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).max_redirects(3))
            .await
    })
    .unwrap_err();
    assert_eq!(e.code(), 302, "{e}");
    assert_eq!(e.kind(), ErrorKind::TooManyRedirects, "{e}");
    assert!(e.message().contains('3'), "{e}");
    let response = e.response().expect("the last redirect is attached");
    assert_eq!(response.code, 302);
    assert_eq!(response.headers.get("Location"), Some("/loop"));
    assert_eq!(server.stats.seen().len(), 4, "the request and 3 redirects");
}

#[test]
fn the_default_max_redirects_is_five() {
    let server = app_server();
    let url = server.url("/loop");
    let e = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooManyRedirects);
    assert_eq!(server.stats.seen().len(), 6);
}

#[test]
fn a_redirect_loop_with_raise_error_false_returns_the_last_redirect() {
    let server = app_server();
    let url = server.url("/loop");
    let response = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).max_redirects(2).raise_error(false))
            .await
    })
    .unwrap();
    assert_eq!(response.code, 302);
    assert_eq!(response.text(), "again");
    let error = response.error.as_deref().unwrap();
    assert_eq!(error.kind(), ErrorKind::TooManyRedirects);
    assert_eq!(server.stats.seen().len(), 3);
}

#[test]
fn max_redirects_zero_follows_none() {
    let server = app_server();
    let url = redirect_url(&server, 302, "/landed");
    let e = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).max_redirects(0))
            .await
    })
    .unwrap_err();
    assert_eq!((e.code(), e.kind()), (302, ErrorKind::TooManyRedirects));
    assert_eq!(server.stats.seen().len(), 1);
}

#[test]
fn follow_redirects_false_returns_the_3xx() {
    let server = app_server();
    let url = redirect_url(&server, 302, "/landed");
    let (raised, returned) = run(async move {
        let client = AsyncHttpClient::new();
        let raised = client
            .fetch(HttpRequest::get(&url).follow_redirects(false))
            .await;
        let returned = client
            .fetch(
                HttpRequest::get(&url)
                    .follow_redirects(false)
                    .raise_error(false),
            )
            .await;
        (raised, returned)
    });
    let raised = raised.unwrap_err();
    assert_eq!((raised.code(), raised.kind()), (302, ErrorKind::Status));
    assert_eq!(
        raised.response().unwrap().headers.get("Location"),
        Some("/landed")
    );
    let returned = returned.unwrap();
    assert_eq!(returned.code, 302);
    assert_eq!(returned.headers.get("Location"), Some("/landed"));
    assert_eq!(
        returned.effective_url,
        redirect_url(&server, 302, "/landed")
    );
    assert_eq!(server.stats.seen().len(), 2, "nothing was followed");
}

#[test]
fn a_3xx_without_location_is_returned_as_is() {
    let server = RawServer::answering_once(b"HTTP/1.1 302 Found\r\nContent-Length: 4\r\n\r\nnope");
    let url = server.url("/");
    let e = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap_err();
    assert_eq!((e.code(), e.kind()), (302, ErrorKind::Status));
    assert_eq!(e.response().unwrap().body, b"nope");
}

#[test]
fn streaming_callback_gets_only_the_final_body() {
    let server = app_server();
    let url = redirect_url(&server, 302, "/landed");
    let body: Rc<RefCell<Vec<u8>>> = Rc::default();
    let sink = body.clone();
    let response = run(async move {
        let request = HttpRequest::get(url)
            .streaming_callback(move |piece| sink.borrow_mut().extend_from_slice(&piece));
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert!(response.body.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&body.borrow()),
        HELLO,
        "the redirect's own body is not part of the download"
    );
}

#[test]
fn header_callback_sees_only_the_final_head() {
    let server = app_server();
    let url = redirect_url(&server, 302, "/landed");
    let lines: Rc<RefCell<Vec<String>>> = Rc::default();
    let sink = lines.clone();
    run(async move {
        let request = HttpRequest::get(url)
            .header_callback(move |line| sink.borrow_mut().push(line.to_string()));
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    let lines = lines.borrow();
    let status_lines: Vec<&String> = lines.iter().filter(|l| l.starts_with("HTTP/")).collect();
    assert_eq!(status_lines, ["HTTP/1.1 200 OK\r\n"], "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("Location:")),
        "{lines:?}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("\r\n"));
}

#[test]
fn the_last_redirect_of_a_loop_reaches_the_callbacks() {
    // Not followed (max_redirects reached), the last 3xx is the response:
    // its head and body go to the callbacks.
    let server = app_server();
    let url = server.url("/loop");
    let lines: Rc<RefCell<Vec<String>>> = Rc::default();
    let body: Rc<RefCell<Vec<u8>>> = Rc::default();
    let (line_sink, body_sink) = (lines.clone(), body.clone());
    let response = run(async move {
        let request = HttpRequest::get(url)
            .max_redirects(1)
            .raise_error(false)
            .header_callback(move |line| line_sink.borrow_mut().push(line.to_string()))
            .streaming_callback(move |piece| body_sink.borrow_mut().extend_from_slice(&piece));
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert_eq!(response.code, 302);
    let lines = lines.borrow();
    let status_lines = lines.iter().filter(|l| l.starts_with("HTTP/")).count();
    assert_eq!(status_lines, 1, "{lines:?}");
    assert_eq!(body.borrow().as_slice(), b"again");
}
