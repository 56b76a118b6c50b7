//! `AsyncHttpClient::fetch` against whirl's own server: methods, headers,
//! basic auth, the user agent, error statuses (raised or attached), the
//! callback form, request validation and the response's timings.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use support::{app_server, run, wait_until, HELLO};
use whirl_httpclient::{
    AsyncHttpClient, ErrorKind, HttpClientError, HttpRequest, HttpResponse, DEFAULT_USER_AGENT,
};

#[test]
fn get_returns_status_headers_and_body() {
    let server = app_server();
    let url = server.url("/hello?x=1");
    let response = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    assert_eq!(response.code, 200);
    assert_eq!(response.reason, "OK");
    assert_eq!(response.text(), HELLO);
    assert_eq!(response.headers.get("X-Method"), Some("GET"));
    assert_eq!(response.headers.get("X-Uri"), Some("/hello?x=1"));
    assert!(response.error.is_none());
    assert!(response.rethrow().is_ok());
    let seen = server.stats.last().request;
    assert_eq!((seen.method(), seen.uri()), ("GET", "/hello?x=1"));
    assert_eq!(seen.host(), server.addr.to_string());
}

#[test]
fn post_put_delete_send_their_method_and_body() {
    let server = app_server();
    let url = server.url("/echo");
    let responses = run(async move {
        let client = AsyncHttpClient::new();
        let post = client.fetch(HttpRequest::post(&url).body("posted")).await;
        let put = client
            .fetch(HttpRequest::put(&url).body(b"put \x00 bytes".to_vec()))
            .await;
        let delete = client.fetch(HttpRequest::delete(&url)).await;
        let patch = client
            .fetch(HttpRequest::new(&url).method("PATCH").body("patched"))
            .await;
        [post, put, delete, patch].map(Result::unwrap)
    });
    assert_eq!(responses[0].body, b"posted");
    assert_eq!(responses[1].body, b"put \x00 bytes");
    assert_eq!(responses[2].text(), HELLO);
    assert_eq!(responses[3].body, b"patched");
    let seen = server.stats.seen();
    let methods: Vec<&str> = seen.iter().map(|s| s.request.method()).collect();
    assert_eq!(methods, ["POST", "PUT", "DELETE", "PATCH"]);
    assert_eq!(seen[0].request.headers.get("Content-Length"), Some("6"));
    assert_eq!(seen[1].request.body, b"put \x00 bytes");
    assert!(seen[2].request.body.is_empty());
    assert!(!seen[2].request.headers.contains("Content-Length"));
}

#[test]
fn custom_headers_arrive() {
    let server = app_server();
    let url = server.url("/");
    run(async move {
        let request = HttpRequest::get(url)
            .header("X-Custom", "one")
            .header("X-Custom", "two")
            .header("Accept", "application/json");
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    let seen = server.stats.last().request;
    let custom: Vec<&str> = seen.headers.get_all("X-Custom").collect();
    assert_eq!(custom, ["one", "two"]);
    assert_eq!(seen.headers.get("Accept"), Some("application/json"));
    assert_eq!(seen.headers.get("Accept-Encoding"), Some("gzip"));
}

#[test]
fn a_host_header_given_is_sent_instead_of_the_urls() {
    let server = app_server();
    let url = server.url("/");
    run(async move {
        let request = HttpRequest::get(url).header("Host", "example.test");
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    let seen = server.stats.last().request;
    let hosts: Vec<&str> = seen.headers.get_all("Host").collect();
    assert_eq!(hosts, ["example.test"]);
}

#[test]
fn basic_auth_sends_an_authorization_header() {
    let server = app_server();
    let url = server.url("/");
    run(async move {
        let request = HttpRequest::get(url).basic_auth("Aladdin", "open sesame");
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    let seen = server.stats.last().request;
    assert_eq!(
        seen.headers.get("Authorization"),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );
}

#[test]
fn user_agent_default_and_custom() {
    let server = app_server();
    let url = server.url("/");
    run(async move {
        let client = AsyncHttpClient::new();
        client.fetch(url.as_str()).await.unwrap();
        let custom = HttpRequest::get(&url).user_agent("whirl-tests/1.0");
        client.fetch(custom).await.unwrap();
    });
    let seen = server.stats.seen();
    assert!(DEFAULT_USER_AGENT.starts_with("whirl/"));
    assert_eq!(
        seen[0].request.headers.get("User-Agent"),
        Some(DEFAULT_USER_AGENT)
    );
    assert_eq!(
        seen[1].request.headers.get("User-Agent"),
        Some("whirl-tests/1.0")
    );
}

#[test]
fn a_non_2xx_status_is_an_error_carrying_the_response() {
    let server = app_server();
    let url = server.url("/status/404");
    let error = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap_err();
    assert_eq!(error.code(), 404);
    assert_eq!(error.kind(), ErrorKind::Status);
    assert!(!error.is_timeout());
    assert_eq!(error.to_string(), "HTTP 404: Not Found");
    let response = error.response().expect("the response is attached");
    assert_eq!(response.code, 404);
    assert_eq!(response.text(), "status 404");
    assert_eq!(response.headers.get("X-Method"), Some("GET"));
    let response = error.into_response().unwrap();
    assert_eq!(response.body, b"status 404");
}

#[test]
fn a_server_error_status_is_an_error_too() {
    let server = app_server();
    let url = server.url("/status/503");
    let error = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap_err();
    assert_eq!((error.code(), error.kind()), (503, ErrorKind::Status));
    assert_eq!(error.response().unwrap().text(), "status 503");
}

#[test]
fn raise_error_false_returns_the_response_with_its_error_set() {
    let server = app_server();
    let url = server.url("/status/500");
    let response = run(async move {
        let request = HttpRequest::get(url).raise_error(false);
        AsyncHttpClient::new().fetch(request).await
    })
    .expect("raise_error(false) returns the response");
    assert_eq!(response.code, 500);
    assert_eq!(response.text(), "status 500");
    let error = response.error.as_deref().expect("error is set");
    assert_eq!((error.code(), error.kind()), (500, ErrorKind::Status));
    let rethrown = response.rethrow().unwrap_err();
    assert_eq!(rethrown.code(), 500);
}

#[test]
fn raise_error_false_leaves_2xx_responses_without_error() {
    let server = app_server();
    let url = server.url("/status/201");
    let response = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).raise_error(false))
            .await
    })
    .unwrap();
    assert_eq!(response.code, 201);
    assert!(response.error.is_none());
}

#[test]
fn fetch_with_callback_calls_back_with_the_result() {
    let server = app_server();
    let ok_url = server.url("/called-back");
    let bad_url = server.url("/status/418");
    type Slot = Rc<RefCell<Option<Result<HttpResponse, HttpClientError>>>>;
    let (ok, bad) = run(async move {
        let client = AsyncHttpClient::new();
        let ok: Slot = Rc::default();
        let bad: Slot = Rc::default();
        let (ok2, bad2) = (ok.clone(), bad.clone());
        client.fetch_with_callback(ok_url, move |result| *ok2.borrow_mut() = Some(result));
        client.fetch_with_callback(HttpRequest::get(bad_url), move |result| {
            *bad2.borrow_mut() = Some(result)
        });
        // fetch_with_callback returns at once; the callbacks come later.
        wait_until("both callbacks ran", || {
            ok.borrow().is_some() && bad.borrow().is_some()
        })
        .await;
        let ok = ok.borrow_mut().take().unwrap();
        let bad = bad.borrow_mut().take().unwrap();
        (ok, bad)
    });
    assert_eq!(ok.unwrap().text(), HELLO);
    let bad = bad.unwrap_err();
    assert_eq!((bad.code(), bad.kind()), (418, ErrorKind::Status));
}

#[test]
fn the_shared_client_is_one_per_thread() {
    let server = app_server();
    let url = server.url("/");
    run(async move {
        let a = AsyncHttpClient::current();
        let b = AsyncHttpClient::current();
        a.fetch(url.as_str()).await.unwrap();
        // The connection a pooled is the one b sees: they share the pool.
        assert_eq!(b.idle_connections(), 1);
        b.fetch(url.as_str()).await.unwrap();
        a.close();
        assert_eq!(b.idle_connections(), 0);
    });
    assert_eq!(server.stats.connections(), 1);
}

#[test]
fn nonstandard_methods_need_allow_nonstandard_methods() {
    let server = app_server();
    let url = server.url("/");
    let (refused, allowed) = run(async move {
        let client = AsyncHttpClient::new();
        let refused = client
            .fetch(HttpRequest::get(&url).method("PROPFIND"))
            .await;
        let allowed = client
            .fetch(
                HttpRequest::get(&url)
                    .method("PROPFIND")
                    .allow_nonstandard_methods(true),
            )
            .await;
        (refused, allowed)
    });
    let refused = refused.unwrap_err();
    assert_eq!(
        (refused.code(), refused.kind()),
        (599, ErrorKind::InvalidRequest)
    );
    assert!(refused.message().contains("PROPFIND"), "{refused}");
    assert_eq!(allowed.unwrap().code, 200);
    let seen = server.stats.seen();
    assert_eq!(seen.len(), 1, "the refused request was never sent");
    assert_eq!(seen[0].request.method(), "PROPFIND");
}

#[test]
fn bodies_are_checked_against_the_method() {
    let server = app_server();
    let url = server.url("/");
    let errors = run(async move {
        let client = AsyncHttpClient::new();
        let get_with_body = client.fetch(HttpRequest::get(&url).body("x")).await;
        let post_without = client.fetch(HttpRequest::post(&url)).await;
        let allowed = client
            .fetch(
                HttpRequest::get(&url)
                    .body("x")
                    .allow_nonstandard_methods(true),
            )
            .await;
        assert_eq!(allowed.unwrap().body, b"x");
        [get_with_body, post_without].map(Result::unwrap_err)
    });
    for e in errors {
        assert_eq!(
            (e.code(), e.kind()),
            (599, ErrorKind::InvalidRequest),
            "{e}"
        );
    }
    assert_eq!(server.stats.seen().len(), 1);
}

#[test]
fn invalid_urls_and_headers_are_refused_before_sending() {
    let server = app_server();
    let url = server.url("/");
    let errors = run(async move {
        let client = AsyncHttpClient::new();
        let mut errors = Vec::new();
        for bad in ["ftp://127.0.0.1/", "not a url", "http://", "http://:80/"] {
            errors.push(client.fetch(bad).await.unwrap_err());
        }
        let injected = HttpRequest::get(&url).header("X-Evil", "a\r\nX-Injected: 1");
        errors.push(client.fetch(injected).await.unwrap_err());
        errors
    });
    for e in errors {
        assert_eq!(
            (e.code(), e.kind()),
            (599, ErrorKind::InvalidRequest),
            "{e}"
        );
    }
    assert!(server.stats.seen().is_empty());
}

#[test]
fn time_info_is_monotonic_and_request_time_covers_it() {
    let server = app_server();
    let url = server.url("/slow/20");
    let response = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    let t = response.time_info;
    assert!(t.queue <= t.connect, "{t:?}");
    assert!(t.connect <= t.pretransfer, "{t:?}");
    assert!(t.pretransfer <= t.starttransfer, "{t:?}");
    assert!(t.starttransfer <= t.total, "{t:?}");
    assert!(t.total <= response.request_time, "{t:?}");
    assert!(
        !t.connect.is_zero(),
        "a new connection took some time: {t:?}"
    );
    assert!(t.redirect.is_zero(), "{t:?}");
    assert_eq!(response.effective_url, server.url("/slow/20"));
}

#[test]
fn a_reused_connection_reports_no_connect_time() {
    let server = app_server();
    let url = server.url("/");
    let second = run(async move {
        let client = AsyncHttpClient::new();
        client.fetch(url.as_str()).await.unwrap();
        client.fetch(url.as_str()).await.unwrap()
    });
    let t = second.time_info;
    assert!(t.connect.is_zero(), "{t:?}");
    assert!(
        t.pretransfer <= t.starttransfer && t.starttransfer <= t.total,
        "{t:?}"
    );
    assert_eq!(server.stats.connections(), 1);
}

#[test]
fn credentials_in_the_url_become_basic_auth() {
    // Tornado: the URL's user and password are used when auth_username is
    // not set.
    let server = app_server();
    let url = format!("http://user:p%40ss@{}/private", server.addr);
    run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    let seen = server.stats.last().request;
    assert_eq!(seen.uri(), "/private");
    assert_eq!(
        seen.headers.get("Authorization"),
        Some("Basic dXNlcjpwQHNz")
    );
}

#[test]
fn connection_close_from_the_caller_is_honoured() {
    let server = app_server();
    let url = server.url("/");
    run(async move {
        let client = AsyncHttpClient::new();
        for _ in 0..2 {
            let request = HttpRequest::get(&url).header("Connection", "close");
            client.fetch(request).await.unwrap();
            assert_eq!(client.idle_connections(), 0);
        }
    });
    assert_eq!(server.stats.connections(), 2);
}

#[test]
fn a_fragment_is_never_sent() {
    let server = app_server();
    let url = server.url("/page?a=1#section");
    let response = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    assert_eq!(server.stats.last().request.uri(), "/page?a=1");
    assert_eq!(response.code, 200);
}

#[test]
fn an_ipv6_literal_url_is_bracketed_in_host() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback on this system");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            let mut conn = support::RawConn::new(stream);
            if let Some(request) = conn.read_request() {
                let _ = tx.send(request);
                let _ = conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6");
            }
        }
    });
    let url = format!("http://[::1]:{port}/six");
    let response = run(async move { AsyncHttpClient::new().fetch(url).await }).unwrap();
    assert_eq!(response.body, b"v6");
    let request = rx.recv_timeout(support::TEST_TIMEOUT).unwrap();
    assert_eq!(request.line, "GET /six HTTP/1.1");
    assert_eq!(request.header("Host"), Some(format!("[::1]:{port}")));
}
