//! TcpClient and Resolver over loopback: connecting by address and by name,
//! errors that name each address, the override resolver, happy eyeballs
//! falling back from a dead address, the connect timeout, source addresses
//! and TLS.
//!
//! A "silent" address — one that never answers a SYN, so a connect to it
//! hangs — is made on loopback, offline and without privileges, by a
//! listener whose accept queue is full: `listen(0)` and one connection that
//! is never accepted. The kernel (Linux, and the BSDs) then drops further
//! SYNs instead of refusing them, and the connect waits for a SYN-ACK that
//! never comes. A closed port, by contrast, refuses at once. The queue is
//! filled by probing until a probe times out, so the test does not depend on
//! how a kernel rounds the backlog; where it never fills, the test is
//! skipped with a message.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use whirl_ioloop::{sleep, IoLoop};
use whirl_iostream::{
    ConnectError, ConnectOptions, IoStream, OverrideKey, OverrideTarget, Resolver, TcpClient,
    TcpServer, TlsClientConfig, TlsServerConfig,
};

/// Every test ends by itself: a stuck one fails after this long (never an
/// upper bound on how fast anything should be).
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a probe of a silent listener waits before calling it silent.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

const LOCAL_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOCAL_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Runs `future` on a fresh loop; panics if it does not finish in time.
fn run<F: Future>(future: F) -> F::Output {
    let _ = env_logger::builder().is_test(true).try_init();
    IoLoop::new()
        .run_sync_timeout(future, TEST_TIMEOUT)
        .expect("the test did not finish in time")
}

/// Whether `::1` can be listened on and connected to here.
fn ipv6_loopback() -> bool {
    let usable = TcpListener::bind((LOCAL_V6, 0))
        .and_then(|l| l.local_addr())
        .and_then(TcpStream::connect)
        .is_ok();
    if !usable {
        eprintln!("skipping the IPv6 part: ::1 is not usable here");
    }
    usable
}

/// A port on `ip` that nothing listens on (connects are refused).
fn closed_port(ip: IpAddr) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).expect("bind");
    listener.local_addr().expect("local_addr")
}

/// Accepts one connection within [`TEST_TIMEOUT`], echoes 5 bytes back and
/// returns the peer's address — in a thread.
fn echo_once(listener: TcpListener) -> thread::JoinHandle<io::Result<SocketAddr>> {
    thread::spawn(move || {
        listener.set_nonblocking(true)?;
        let deadline = Instant::now() + TEST_TIMEOUT;
        let (mut peer, peer_addr) = loop {
            match listener.accept() {
                Ok(accepted) => break accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        };
        peer.set_nonblocking(false)?;
        peer.set_read_timeout(Some(TEST_TIMEOUT))?;
        let mut buf = [0; 5];
        peer.read_exact(&mut buf)?;
        peer.write_all(&buf)?;
        Ok(peer_addr)
    })
}

/// A listener on `ip` and its echo thread.
fn echo_server(ip: IpAddr) -> (SocketAddr, thread::JoinHandle<io::Result<SocketAddr>>) {
    let listener = TcpListener::bind((ip, 0)).expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    (addr, echo_once(listener))
}

/// Sends 5 bytes and checks they come back.
async fn exchange(stream: &IoStream) {
    stream.write("hello").await.expect("write");
    assert_eq!(stream.read_bytes(5, false).await.expect("read"), b"hello");
}

/// A listener whose accept queue is full: connects to it hang (see the
/// module docs). Holds the sockets that fill the queue.
struct Silent {
    /// Where connects hang.
    addr: SocketAddr,
    /// The listener (never accepts) and the connections in its queue.
    _sockets: (Socket, Vec<TcpStream>),
}

/// A silent listener on `ip`, or `None` (with a message) if this OS keeps
/// answering.
fn silent_listener(ip: IpAddr) -> Option<Silent> {
    let listener = Socket::new(
        Domain::for_address(SocketAddr::new(ip, 0)),
        Type::STREAM,
        None,
    )
    .expect("socket");
    listener.bind(&SocketAddr::new(ip, 0).into()).expect("bind");
    listener.listen(0).expect("listen");
    let addr = listener
        .local_addr()
        .expect("local_addr")
        .as_socket()
        .expect("an IP address");
    let mut queued = Vec::new();
    for _ in 0..64 {
        match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
            Ok(socket) => queued.push(socket),
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock =>
            {
                return Some(Silent {
                    addr,
                    _sockets: (listener, queued),
                });
            }
            Err(e) => panic!("probing the silent listener: {e}"),
        }
    }
    eprintln!("skipping: a full accept queue still answers SYNs on this OS");
    None
}

#[test]
fn connects_to_an_ip_literal_and_exchanges_bytes() {
    let (addr, server) = echo_server(LOCAL_V4);
    run(async {
        let stream = TcpClient::new()
            .connect("127.0.0.1", addr.port())
            .await
            .unwrap();
        exchange(&stream).await;
    });
    server.join().unwrap().unwrap();
}

#[test]
fn connects_to_ipv6_loopback() {
    if !ipv6_loopback() {
        return;
    }
    let (addr, server) = echo_server(LOCAL_V6);
    run(async {
        let stream = TcpClient::new().connect("::1", addr.port()).await.unwrap();
        exchange(&stream).await;
    });
    assert!(server.join().unwrap().unwrap().is_ipv6());
}

#[test]
fn connects_by_name_through_the_system_resolver() {
    let (addr, server) = echo_server(LOCAL_V4);
    run(async {
        // `localhost` may also resolve to ::1, where nothing listens on this
        // port: that attempt is refused and 127.0.0.1 is tried.
        let addrs = Resolver::new()
            .resolve("localhost", addr.port())
            .await
            .unwrap();
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == addr.port()),
            "{addrs:?}"
        );
        let stream = TcpClient::new()
            .connect("localhost", addr.port())
            .await
            .unwrap();
        exchange(&stream).await;
    });
    server.join().unwrap().unwrap();
}

#[test]
fn connection_refused_names_the_address() {
    let closed = closed_port(LOCAL_V4);
    let error = run(TcpClient::new().connect("127.0.0.1", closed.port())).unwrap_err();
    match &error {
        ConnectError::Connect {
            host,
            port,
            attempts,
        } => {
            assert_eq!((host.as_str(), *port), ("127.0.0.1", closed.port()));
            assert_eq!(attempts.len(), 1);
            assert_eq!(attempts[0].0, closed);
            assert_eq!(attempts[0].1.kind(), io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.starts_with("cannot connect to 127.0.0.1:"),
        "{message}"
    );
    assert!(message.contains(&closed.to_string()), "{message}");
    assert!(std::error::Error::source(&error).is_some());
    assert_eq!(
        io::Error::from(error).kind(),
        io::ErrorKind::ConnectionRefused
    );
}

#[test]
fn the_override_resolver_maps_a_fake_name_to_loopback() {
    let (addr, server) = echo_server(LOCAL_V4);
    let resolver = Resolver::with_overrides(HashMap::from([(
        OverrideKey::from("service.whirl.test"),
        OverrideTarget::from(addr),
    )]));
    run(async move {
        // The override gives the port too: the one asked for is ignored.
        let stream = TcpClient::with_resolver(resolver)
            .connect("service.whirl.test", 1)
            .await
            .unwrap();
        exchange(&stream).await;
    });
    server.join().unwrap().unwrap();
}

#[test]
fn every_address_is_tried_in_order() {
    let closed = closed_port(LOCAL_V4);
    let (addr, server) = echo_server(LOCAL_V4);
    let mut resolver = Resolver::new();
    resolver.add_override("two.whirl.test", vec![closed, addr]);
    run(async move {
        let stream = TcpClient::with_resolver(resolver)
            .connect("two.whirl.test", 80)
            .await
            .unwrap();
        exchange(&stream).await;
    });
    server.join().unwrap().unwrap();
}

#[test]
fn every_failed_address_is_listed() {
    let closed_a = closed_port(LOCAL_V4);
    let closed_b = closed_port(LOCAL_V4);
    let mut resolver = Resolver::new();
    resolver.add_override("none.whirl.test", vec![closed_a, closed_b]);
    let error = run(TcpClient::with_resolver(resolver).connect("none.whirl.test", 80)).unwrap_err();
    let ConnectError::Connect { attempts, .. } = &error else {
        panic!("expected a connect error, got {error:?}");
    };
    let tried: Vec<SocketAddr> = attempts.iter().map(|(a, _)| *a).collect();
    assert_eq!(tried, [closed_a, closed_b]);
    let message = error.to_string();
    assert!(
        message.contains(&closed_a.to_string()) && message.contains(&closed_b.to_string()),
        "{message}"
    );
}

#[test]
fn happy_eyeballs_falls_back_from_a_silent_primary() {
    if !ipv6_loopback() {
        return;
    }
    let Some(silent) = silent_listener(LOCAL_V6) else {
        return;
    };
    let (good, server) = echo_server(LOCAL_V4);
    let mut resolver = Resolver::new();
    // IPv6 first: its only address never answers; after the head start the
    // IPv4 address is tried in parallel and wins.
    resolver.add_override("dual.whirl.test", vec![silent.addr, good]);
    run(async move {
        let stream = TcpClient::with_resolver(resolver)
            .connect("dual.whirl.test", 80)
            .await
            .unwrap();
        exchange(&stream).await;
    });
    assert!(server.join().unwrap().unwrap().is_ipv4());
}

#[test]
fn happy_eyeballs_falls_back_from_a_refused_primary_without_waiting() {
    if !ipv6_loopback() {
        return;
    }
    let (good, server) = echo_server(LOCAL_V6);
    let mut resolver = Resolver::new();
    resolver.add_override("dual.whirl.test", vec![closed_port(LOCAL_V4), good]);
    // The head start outlasts the deadline: only the refusal can start the
    // IPv6 attempt in time (Tornado: a failure ends the head start).
    let options = ConnectOptions::new()
        .happy_eyeballs_delay(Duration::from_secs(3600))
        .timeout(TEST_TIMEOUT / 2);
    run(async move {
        let client = TcpClient::with_resolver(resolver);
        let stream = client
            .connect_with("dual.whirl.test", 80, &options)
            .await
            .unwrap();
        exchange(&stream).await;
    });
    assert!(server.join().unwrap().unwrap().is_ipv6());
}

#[test]
fn the_secondary_family_waits_out_the_head_start() {
    if !ipv6_loopback() {
        return;
    }
    let Some(silent) = silent_listener(LOCAL_V6) else {
        return;
    };
    let good = TcpListener::bind((LOCAL_V4, 0)).unwrap();
    good.set_nonblocking(true).unwrap();
    let mut resolver = Resolver::new();
    resolver.add_override(
        "dual.whirl.test",
        vec![silent.addr, good.local_addr().unwrap()],
    );
    // The timeout ends the race before the (long) head start does.
    let options = ConnectOptions::new()
        .happy_eyeballs_delay(Duration::from_secs(3600))
        .timeout(Duration::from_millis(200));
    let error = run(async move {
        let client = TcpClient::with_resolver(resolver);
        client
            .connect_with("dual.whirl.test", 80, &options)
            .await
            .unwrap_err()
    });
    assert!(matches!(error, ConnectError::Timeout { .. }), "{error:?}");
    assert_eq!(
        good.accept().map_err(|e| e.kind()).err(),
        Some(io::ErrorKind::WouldBlock),
        "IPv4 was tried before its head start ended"
    );
}

#[test]
fn the_connect_timeout_fires() {
    let Some(silent) = silent_listener(LOCAL_V4) else {
        return;
    };
    let timeout = Duration::from_millis(200);
    let options = ConnectOptions::new().timeout(timeout);
    let error = run(async {
        let port = silent.addr.port();
        TcpClient::new()
            .connect_with("127.0.0.1", port, &options)
            .await
            .unwrap_err()
    });
    match &error {
        ConnectError::Timeout {
            timeout: t, port, ..
        } => assert_eq!((*t, *port), (timeout, silent.addr.port())),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        error.to_string().contains("timed out after 200ms"),
        "{error}"
    );
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::TimedOut);
}

#[test]
fn dropping_a_connect_abandons_it() {
    let Some(silent) = silent_listener(LOCAL_V4) else {
        return;
    };
    run(async {
        let io_loop = IoLoop::current();
        // Let the test's own deadline arm before counting timers.
        sleep(Duration::from_millis(1)).await;
        let timers_before = io_loop.pending_timeouts();
        let client = TcpClient::new();
        let connect = client.connect("127.0.0.1", silent.addr.port());
        // A deadline of the caller's own, shorter than the client's 20 s.
        let outcome = whirl_ioloop::with_timeout(Duration::from_millis(50), connect).await;
        assert!(outcome.is_err());
        // The client's deadline went with the dropped future.
        assert_eq!(io_loop.pending_timeouts(), timers_before);
        sleep(Duration::from_millis(10)).await;
    });
}

#[test]
fn source_ip_and_port_are_used() {
    let (addr, server) = echo_server(LOCAL_V4);
    let source_port = closed_port(LOCAL_V4).port();
    let options = ConnectOptions::new()
        .source_ip(LOCAL_V4)
        .source_port(source_port);
    run(async {
        let stream = TcpClient::new()
            .connect_with("127.0.0.1", addr.port(), &options)
            .await
            .unwrap();
        exchange(&stream).await;
    });
    assert_eq!(
        server.join().unwrap().unwrap(),
        SocketAddr::new(LOCAL_V4, source_port)
    );
}

#[test]
fn source_port_alone_binds_the_unspecified_address() {
    let (addr, server) = echo_server(LOCAL_V4);
    let source_port = closed_port(LOCAL_V4).port();
    let options = ConnectOptions::new().source_port(source_port);
    run(async {
        let stream = TcpClient::new()
            .connect_with("127.0.0.1", addr.port(), &options)
            .await
            .unwrap();
        exchange(&stream).await;
    });
    assert_eq!(server.join().unwrap().unwrap().port(), source_port);
}

#[test]
fn a_source_ip_of_the_other_family_fails_each_attempt() {
    let closed = closed_port(LOCAL_V4);
    let options = ConnectOptions::new().source_ip(LOCAL_V6);
    let error = run(async {
        TcpClient::new()
            .connect_with("127.0.0.1", closed.port(), &options)
            .await
            .unwrap_err()
    });
    let ConnectError::Connect { attempts, .. } = &error else {
        panic!("expected a connect error, got {error:?}");
    };
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].1.kind(), io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("address family"), "{error}");
}

#[test]
fn an_unresolvable_name_is_a_resolve_error() {
    // A NUL byte cannot be in a name: getaddrinfo is never asked, so this
    // fails the same way offline and on any resolver.
    let error = run(TcpClient::new().connect("bad\0name", 80)).unwrap_err();
    assert!(matches!(error, ConnectError::Resolve { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with("cannot resolve bad"),
        "{error}"
    );
    assert!(std::error::Error::source(&error).is_some());
}

/// A self-signed certificate for `localhost`: (cert PEM, key PEM).
fn self_signed() -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

/// A TLS server on 127.0.0.1 (on the current loop) that echoes 5 bytes.
fn tls_echo_server(cert: &str, key: &str) -> (TcpServer, u16) {
    let config = TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).expect("server config");
    let server = TcpServer::new(|stream: IoStream, _| async move {
        if let Ok(bytes) = stream.read_bytes(5, false).await {
            let _ = stream.write(bytes).await;
        }
    })
    .with_tls(config);
    let port = server.listen(0, Some("127.0.0.1")).expect("listen")[0].port();
    (server, port)
}

#[test]
fn tls_connects_with_the_host_as_server_name() {
    let (cert, key) = self_signed();
    run(async {
        let (_server, port) = tls_echo_server(&cert, &key);
        let tls = TlsClientConfig::builder()
            .ca_certs_pem(cert.as_bytes())
            .build()
            .unwrap();
        // Connecting to "localhost" checks the certificate against that name.
        let options = ConnectOptions::new().tls(tls);
        let stream = TcpClient::new()
            .connect_with("localhost", port, &options)
            .await
            .unwrap();
        exchange(&stream).await;
    });
}

#[test]
fn tls_failure_is_a_tls_error() {
    let (cert, key) = self_signed();
    run(async {
        let (_server, port) = tls_echo_server(&cert, &key);
        let tls = TlsClientConfig::builder()
            .ca_certs_pem(cert.as_bytes())
            .build()
            .unwrap();
        // The certificate is for "localhost", not for the name checked.
        let options = ConnectOptions::new()
            .tls(tls)
            .server_hostname("other.whirl.test");
        let error = TcpClient::new()
            .connect_with("127.0.0.1", port, &options)
            .await
            .unwrap_err();
        assert!(matches!(error, ConnectError::Tls { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("the TLS handshake with 127.0.0.1:"),
            "{error}"
        );
    });
}
