//! HTTP proxies (Tornado's simple client ignores `proxy_host`, its issue
//! #1266): absolute-form requests with `Proxy-Authorization` for http, a
//! `CONNECT` tunnel and TLS through it for https — against a tiny proxy
//! made of threads and std sockets that records what it was asked.

mod support;

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use support::{
    app_server, run, self_signed, tls_app_server, RawConn, RawRequest, RawServer, TempDir, HELLO,
    TEST_TIMEOUT,
};
use whirl_httpclient::{AsyncHttpClient, ErrorKind, HttpRequest};

/// A forwarding proxy: the first request head of each connection is
/// recorded; then the connection is joined to the origin (absolute form)
/// or tunnelled (CONNECT), byte for byte, until either side closes.
struct TestProxy {
    /// The proxy's listener.
    server: RawServer,
    /// The first request head of each connection, in order.
    heads: Arc<Mutex<Vec<RawRequest>>>,
}

impl TestProxy {
    /// Starts a proxy; `refuse_connect` answers every CONNECT with 407.
    fn spawn(refuse_connect: bool) -> TestProxy {
        let heads: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
        let log = heads.clone();
        let server = RawServer::spawn(move |_, mut conn| {
            let Some(head) = conn.read_head() else { return };
            log.lock().unwrap().push(head.clone());
            let mut parts = head.line.split(' ');
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if method == "CONNECT" {
                if refuse_connect {
                    let _ = conn.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
                    );
                    return;
                }
                let Ok(upstream) = TcpStream::connect(target) else {
                    let _ = conn.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                    return;
                };
                let _ = conn.write(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let leftover = conn.take_buffered();
                pipe(conn, upstream, &leftover);
            } else {
                let authority = target
                    .strip_prefix("http://")
                    .and_then(|rest| rest.split('/').next())
                    .unwrap_or("");
                let Ok(upstream) = TcpStream::connect(authority) else {
                    let _ = conn.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                    return;
                };
                // Forward the head as received, then the rest.
                let mut forwarded = format!("{}\r\n", head.line);
                for header in &head.headers {
                    forwarded.push_str(header);
                    forwarded.push_str("\r\n");
                }
                forwarded.push_str("\r\n");
                let mut bytes = forwarded.into_bytes();
                bytes.extend(conn.take_buffered());
                pipe(conn, upstream, &bytes);
            }
        });
        TestProxy { server, heads }
    }

    /// The heads recorded so far.
    fn heads(&self) -> Vec<RawRequest> {
        self.heads.lock().unwrap().clone()
    }

    /// The proxy's port.
    fn port(&self) -> u16 {
        self.server.addr.port()
    }
}

/// Joins `client` and `upstream` (after sending `first` upstream) until
/// either side closes.
fn pipe(client: RawConn, mut upstream: TcpStream, first: &[u8]) {
    let client = client.stream;
    if upstream.write_all(first).is_err() {
        return;
    }
    let _ = upstream.set_read_timeout(Some(TEST_TIMEOUT));
    let (mut client_read, mut upstream_write) = match (client.try_clone(), upstream.try_clone()) {
        (Ok(c), Ok(u)) => (c, u),
        _ => return,
    };
    let up = thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(Shutdown::Write);
    });
    let mut client_write = client;
    let _ = io::copy(&mut upstream, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Both);
    let _ = up.join();
}

#[test]
fn http_goes_to_the_proxy_in_absolute_form_with_proxy_authorization() {
    let origin = app_server();
    let proxy = TestProxy::spawn(false);
    let url = origin.url("/through?q=1");
    let port = proxy.port();
    let response = run(async move {
        let request = HttpRequest::get(url)
            .proxy("127.0.0.1", port)
            .proxy_auth("user", "pass");
        AsyncHttpClient::new().fetch(request).await
    })
    .unwrap();
    assert_eq!(response.text(), HELLO);
    let heads = proxy.heads();
    assert_eq!(heads.len(), 1);
    assert_eq!(
        heads[0].line,
        format!("GET http://{}/through?q=1 HTTP/1.1", origin.addr)
    );
    assert_eq!(
        heads[0].header("Proxy-Authorization").as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
    assert_eq!(heads[0].header("Host"), Some(origin.addr.to_string()));
    let seen = origin.stats.last().request;
    assert_eq!(seen.path(), "/through");
    assert_eq!(seen.query(), "q=1");
}

#[test]
fn without_proxy_credentials_no_proxy_authorization_is_sent() {
    let origin = app_server();
    let proxy = TestProxy::spawn(false);
    let url = origin.url("/");
    let port = proxy.port();
    run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).proxy("127.0.0.1", port))
            .await
    })
    .unwrap();
    assert_eq!(proxy.heads()[0].header("Proxy-Authorization"), None);
}

#[test]
fn connections_to_a_proxy_are_pooled() {
    let origin = app_server();
    let proxy = TestProxy::spawn(false);
    let url = origin.url("/");
    let port = proxy.port();
    run(async move {
        let client = AsyncHttpClient::new();
        for _ in 0..3 {
            let request = HttpRequest::get(&url).proxy("127.0.0.1", port);
            assert_eq!(client.fetch(request).await.unwrap().text(), HELLO);
        }
        // The same URL without the proxy is another destination.
        client.fetch(url.as_str()).await.unwrap();
    });
    assert_eq!(proxy.server.accepts(), 1);
    assert_eq!(origin.stats.seen().len(), 4);
    assert_eq!(origin.stats.connections(), 2);
}

#[test]
fn https_goes_through_a_connect_tunnel_then_tls() {
    let (cert, key) = self_signed();
    let dir = TempDir::new("proxy-ca");
    let ca = dir.write("ca.pem", &cert);
    let origin = tls_app_server(&cert, &key);
    let proxy = TestProxy::spawn(false);
    let url = origin.https_url("/secure?x=y");
    let port = proxy.port();
    let response = run(async move {
        let request = HttpRequest::post(url)
            .body("tunnelled")
            .proxy("127.0.0.1", port)
            .proxy_auth("user", "pass")
            .ca_certs(&ca);
        let client = AsyncHttpClient::new();
        let first = client.fetch(request.clone()).await.unwrap();
        // The tunnel is pooled too.
        client.fetch(request).await.unwrap();
        first
    });
    assert_eq!(response.text(), "tunnelled");
    let heads = proxy.heads();
    assert_eq!(heads.len(), 1, "one tunnel for both requests");
    assert_eq!(heads[0].line, format!("CONNECT {} HTTP/1.1", origin.addr));
    assert_eq!(heads[0].header("Host"), Some(origin.addr.to_string()));
    assert_eq!(
        heads[0].header("Proxy-Authorization").as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
    // Inside the tunnel: an origin-form request, and no proxy credentials.
    let seen = origin.stats.last().request;
    assert_eq!(seen.uri(), "/secure?x=y");
    assert_eq!(seen.protocol, "https");
    assert!(!seen.headers.contains("Proxy-Authorization"));
    assert_eq!(seen.body, b"tunnelled");
    assert_eq!(origin.stats.connections(), 1);
}

#[test]
fn https_through_a_tunnel_still_validates_the_certificate() {
    let (cert, key) = self_signed();
    let origin = tls_app_server(&cert, &key);
    let proxy = TestProxy::spawn(false);
    let url = origin.https_url("/");
    let port = proxy.port();
    let e = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).proxy("127.0.0.1", port))
            .await
    })
    .unwrap_err();
    assert_eq!((e.code(), e.kind()), (599, ErrorKind::Tls), "{e}");
    assert!(origin.stats.seen().is_empty());
}

#[test]
fn a_refused_connect_is_a_proxy_error() {
    let (cert, key) = self_signed();
    let origin = tls_app_server(&cert, &key);
    let proxy = TestProxy::spawn(true);
    let url = origin.https_url("/");
    let port = proxy.port();
    let e = run(async move {
        AsyncHttpClient::new()
            .fetch(
                HttpRequest::get(url)
                    .proxy("127.0.0.1", port)
                    .validate_cert(false),
            )
            .await
    })
    .unwrap_err();
    assert_eq!((e.code(), e.kind()), (599, ErrorKind::Proxy), "{e}");
    assert!(e.message().contains("407"), "{e}");
    assert!(origin.stats.seen().is_empty());
}

#[test]
fn an_unreachable_proxy_is_a_connect_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let origin = app_server();
    let url = origin.url("/");
    let e = run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).proxy("127.0.0.1", port))
            .await
    })
    .unwrap_err();
    assert_eq!((e.code(), e.kind()), (599, ErrorKind::Connect), "{e}");
    assert!(origin.stats.seen().is_empty());
}

#[test]
fn credentials_in_the_url_never_reach_the_proxy_in_the_request_line() {
    let origin = app_server();
    let proxy = TestProxy::spawn(false);
    let url = format!("http://user:pass@{}/private#frag", origin.addr);
    let port = proxy.port();
    run(async move {
        AsyncHttpClient::new()
            .fetch(HttpRequest::get(url).proxy("127.0.0.1", port))
            .await
    })
    .unwrap();
    let heads = proxy.heads();
    assert_eq!(
        heads[0].line,
        format!("GET http://{}/private HTTP/1.1", origin.addr)
    );
    // They travel as the origin's Authorization instead.
    assert_eq!(
        heads[0].header("Authorization").as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
}
