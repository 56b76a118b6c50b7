//! TLS: round trips, certificate validation, plain text on a TLS port, STARTTLS.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use whirl_ioloop::IoLoop;
use whirl_iostream::{
    CloseReason, IoStream, StreamError, TcpServer, TlsClientConfig, TlsServerConfig,
};

/// A self-signed certificate for `localhost` / 127.0.0.1: (cert PEM, key PEM).
fn self_signed() -> (String, String) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = rcgen::generate_simple_self_signed(names).expect("rcgen");
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

/// A TLS line-echo server on 127.0.0.1; returns its address.
fn tls_echo_server(config: TlsServerConfig) -> (TcpServer, SocketAddr) {
    let server = TcpServer::new(|stream: IoStream, _| async move {
        while let Ok(line) = stream.read_until(b"\n", 1 << 20).await {
            if stream.write(line).await.is_err() {
                break;
            }
        }
    })
    .with_tls(config);
    let addr = server.listen(0, Some("127.0.0.1")).expect("listen")[0];
    (server, addr)
}

/// Connects and starts TLS as a client.
async fn tls_connect(
    addr: SocketAddr,
    config: &TlsClientConfig,
    name: &str,
) -> Result<IoStream, StreamError> {
    let stream = IoStream::connect(addr).await.expect("tcp connect");
    stream.start_tls_client(config, name).await?;
    Ok(stream)
}

#[test]
fn round_trip_with_a_trusted_ca() {
    let io_loop = IoLoop::new();
    let (cert, key) = self_signed();
    let (_server, addr) =
        tls_echo_server(TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    let client = TlsClientConfig::builder()
        .ca_certs_pem(cert.as_bytes())
        .build()
        .unwrap();
    let out = io_loop
        .run_sync_timeout(
            async move {
                let stream = tls_connect(addr, &client, "localhost").await.unwrap();
                // Several writes, one large, to cross many TLS records.
                let big = vec![b'x'; 300_000];
                stream.write("hello\n");
                stream.write([big.as_slice(), b"\n"].concat());
                let first = stream.read_until(b"\n", 1 << 20).await.unwrap();
                let second = stream.read_until(b"\n", 1 << 20).await.unwrap();
                (first, second.len())
            },
            Duration::from_secs(20),
        )
        .expect("timed out");
    assert_eq!(out, (b"hello\n".to_vec(), 300_001));
}

#[test]
fn untrusted_certificate_is_rejected() {
    let io_loop = IoLoop::new();
    let (cert, key) = self_signed();
    let (other_ca, _) = self_signed();
    let (_server, addr) =
        tls_echo_server(TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    let client = TlsClientConfig::builder()
        .ca_certs_pem(other_ca.as_bytes())
        .build()
        .unwrap();
    let err = io_loop
        .run_sync_timeout(
            tls_connect(addr, &client, "localhost"),
            Duration::from_secs(20),
        )
        .expect("timed out")
        .expect_err("an untrusted certificate must fail the handshake");
    let closed = err.as_closed().expect("closed");
    assert!(
        matches!(closed.reason(), CloseReason::Tls(msg) if msg.contains("certificate")),
        "{err}"
    );
}

#[test]
fn wrong_name_is_rejected() {
    let io_loop = IoLoop::new();
    let (cert, key) = self_signed();
    let (_server, addr) =
        tls_echo_server(TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    let client = TlsClientConfig::builder()
        .ca_certs_pem(cert.as_bytes())
        .build()
        .unwrap();
    let result = io_loop
        .run_sync_timeout(
            tls_connect(addr, &client, "example.com"),
            Duration::from_secs(20),
        )
        .expect("timed out");
    assert!(
        result.is_err(),
        "a certificate for another name must be rejected"
    );
}

#[test]
fn validate_cert_false_accepts_any_certificate() {
    let io_loop = IoLoop::new();
    let (cert, key) = self_signed();
    let (_server, addr) =
        tls_echo_server(TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    let client = TlsClientConfig::builder()
        .validate_cert(false)
        .build()
        .unwrap();
    let echoed = io_loop
        .run_sync_timeout(
            async move {
                let stream = tls_connect(addr, &client, "example.com").await.unwrap();
                stream.write("ok\n");
                stream.read_until(b"\n", 64).await.unwrap()
            },
            Duration::from_secs(20),
        )
        .expect("timed out");
    assert_eq!(echoed, b"ok\n");
}

#[test]
fn plain_text_on_a_tls_port_closes_only_that_connection() {
    let io_loop = IoLoop::new();
    let (cert, key) = self_signed();
    let (_server, addr) =
        tls_echo_server(TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    // A plain HTTP client on a std thread: the server must close on it.
    let plain = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        // Either EOF (after a TLS alert) or a reset: the server hung up.
        let _ = s.read_to_end(&mut buf);
        buf
    });
    let client = TlsClientConfig::builder()
        .ca_certs_pem(cert.as_bytes())
        .build()
        .unwrap();
    let echoed = io_loop
        .run_sync_timeout(
            async move {
                // Keep serving until the plain client saw its connection end.
                while !plain.is_finished() {
                    whirl_ioloop::sleep(Duration::from_millis(10)).await;
                }
                let answer = plain.join().unwrap();
                assert!(!answer.starts_with(b"HTTP"), "no plain-text answer");
                let stream = tls_connect(addr, &client, "localhost").await.unwrap();
                stream.write("still up\n");
                stream.read_until(b"\n", 64).await.unwrap()
            },
            Duration::from_secs(20),
        )
        .expect("timed out");
    assert_eq!(echoed, b"still up\n");
}

#[test]
fn start_tls_upgrades_a_plain_connection() {
    let io_loop = IoLoop::new();
    let (cert, key) = self_signed();
    let server_config = TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    // A STARTTLS-style server: one plain line, then TLS.
    let server = TcpServer::new(move |stream: IoStream, _| {
        let config = server_config.clone();
        async move {
            let line = stream.read_until(b"\n", 64).await.unwrap();
            assert_eq!(line, b"STARTTLS\n");
            stream.write("GO\n").await.unwrap();
            stream.start_tls_server(&config).await.unwrap();
            let secret = stream.read_until(b"\n", 64).await.unwrap();
            stream
                .write([b"got ".as_slice(), &secret].concat())
                .await
                .unwrap();
        }
    });
    let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];
    let client = TlsClientConfig::builder()
        .ca_certs_pem(cert.as_bytes())
        .alpn(&[b"whirl-test"])
        .build()
        .unwrap();
    let answer = io_loop
        .run_sync_timeout(
            async move {
                let stream = IoStream::connect(addr).await.unwrap();
                stream.write("STARTTLS\n");
                assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"GO\n");
                stream.start_tls_client(&client, "localhost").await.unwrap();
                stream.write("secret\n");
                stream.read_until(b"\n", 64).await.unwrap()
            },
            Duration::from_secs(20),
        )
        .expect("timed out");
    assert_eq!(answer, b"got secret\n");
}

#[test]
fn start_tls_refuses_with_unread_plain_bytes() {
    let io_loop = IoLoop::new();
    let (cert, _) = self_signed();
    let client = TlsClientConfig::builder()
        .ca_certs_pem(cert.as_bytes())
        .build()
        .unwrap();
    io_loop.run_sync(async move {
        let (a, b) = mio::net::UnixStream::pair().unwrap();
        let (a, b) = (IoStream::new(a).unwrap(), IoStream::new(b).unwrap());
        a.write("one\ntwo\n").await.unwrap();
        b.read_until(b"\n", 64).await.unwrap(); // "two\n" stays buffered
        let err = b.start_tls_client(&client, "localhost").await.unwrap_err();
        assert!(matches!(err, StreamError::NotIdle), "{err:?}");
    });
}

#[test]
fn alpn_is_negotiated() {
    let io_loop = IoLoop::new();
    let (cert, key) = self_signed();
    let server_config = TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes())
        .unwrap()
        .alpn(&[b"h2", b"http/1.1"]);
    let server = TcpServer::new(|stream: IoStream, _| async move {
        let proto = stream.alpn_protocol().unwrap_or_default();
        let _ = stream.write([proto.as_slice(), b"\n"].concat()).await;
    })
    .with_tls(server_config);
    let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];
    let client = TlsClientConfig::builder()
        .ca_certs_pem(cert.as_bytes())
        .alpn(&[b"http/1.1"])
        .build()
        .unwrap();
    let proto = io_loop
        .run_sync_timeout(
            async move {
                let stream = tls_connect(addr, &client, "localhost").await.unwrap();
                assert_eq!(
                    stream.alpn_protocol().as_deref(),
                    Some(b"http/1.1".as_slice())
                );
                stream.read_until(b"\n", 64).await.unwrap()
            },
            Duration::from_secs(20),
        )
        .expect("timed out");
    assert_eq!(proto, b"http/1.1\n");
}

// ----- regressions: writes, close_notify and ragged end of file ----------------------------

/// A connected loopback pair of blocking `std` sockets: (ours, the peer's).
fn loopback_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (theirs, _) = listener.accept().expect("accept");
    (ours, theirs)
}

/// Turns a `std` socket into an `IoStream` on the current loop.
fn into_stream(socket: std::net::TcpStream) -> IoStream {
    socket.set_nonblocking(true).expect("set_nonblocking");
    IoStream::new(mio::net::TcpStream::from_std(socket)).expect("register")
}

/// A blocking `rustls` client over `socket`, trusting `cert_pem`, for
/// `localhost` (its handshake runs on first use).
fn blocking_tls_client(
    socket: std::net::TcpStream,
    cert_pem: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let config = TlsClientConfig::builder()
        .ca_certs_pem(cert_pem.as_bytes())
        .build()
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.rustls_config().clone(), name).unwrap();
    rustls::StreamOwned::new(conn, socket)
}

/// Waits, without blocking the loop, for a thread; re-raises its panic.
async fn join<T>(handle: std::thread::JoinHandle<T>) -> T {
    while !handle.is_finished() {
        whirl_ioloop::sleep(Duration::from_millis(5)).await;
    }
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[test]
fn tls_write_does_not_resolve_before_its_records_reach_the_kernel() {
    // Regression: over TLS a write resolved, and writing() turned false, as
    // soon as rustls took the plaintext; `write(8 MiB).await; close()` then
    // cut the data short.
    const TOTAL: usize = 8 << 20;
    let io_loop = IoLoop::new();
    let (cert, key) = self_signed();
    let server_config = TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    // No session tickets: the writer never reads, and bytes left unread
    // would turn its close into a reset.
    let mut rustls_config = (**server_config.rustls_config()).clone();
    rustls_config.send_tls13_tickets = 0;
    let server_config = TlsServerConfig::from_rustls(std::sync::Arc::new(rustls_config));
    let client_config = TlsClientConfig::builder()
        .ca_certs_pem(cert.as_bytes())
        .build()
        .unwrap();
    let out = io_loop
        .run_sync_timeout(
            async move {
                let (ours, theirs) = loopback_pair();
                // Small kernel buffers: a few hundred KiB fill them.
                socket2::SockRef::from(&ours)
                    .set_send_buffer_size(64 * 1024)
                    .unwrap();
                socket2::SockRef::from(&theirs)
                    .set_recv_buffer_size(64 * 1024)
                    .unwrap();
                let (client, server) = (into_stream(ours), into_stream(theirs));
                let go = Rc::new(Cell::new(false));
                let reader = {
                    let go = go.clone();
                    whirl_ioloop::spawn(async move {
                        server.start_tls_server(&server_config).await.unwrap();
                        while !go.get() {
                            whirl_ioloop::sleep(Duration::from_millis(5)).await;
                        }
                        let data = server.read_until_close().await.map_err(|e| e.to_string())?;
                        Ok::<_, String>((data.len(), data.iter().all(|&b| b == 5)))
                    })
                };
                client
                    .start_tls_client(&client_config, "localhost")
                    .await
                    .unwrap();
                let write = client.write(vec![5u8; TOTAL]);
                whirl_ioloop::sleep(Duration::from_millis(50)).await;
                let before = (client.writing(), client.write_buffer_size() > 0);
                go.set(true);
                write.await.unwrap();
                let after = (client.writing(), client.write_buffer_size());
                client.close();
                (before, after, reader.await.unwrap())
            },
            Duration::from_secs(60),
        )
        .expect("timed out");
    assert_eq!(out, ((true, true), (false, 0), Ok((TOTAL, true))));
}

#[test]
fn tls_close_sends_close_notify() {
    // Regression: close() dropped the TLS session without close_notify, so
    // a strict peer saw a truncated stream.
    let io_loop = IoLoop::new();
    let (cert, key) = self_signed();
    let server_config = TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    let (ours, theirs) = loopback_pair();
    let peer = std::thread::spawn(move || {
        let mut tls = blocking_tls_client(theirs, &cert);
        let mut got = Vec::new();
        // rustls fails with UnexpectedEof when the end has no close_notify.
        let end = tls.read_to_end(&mut got).map_err(|e| e.kind());
        (got, end)
    });
    let got = io_loop
        .run_sync_timeout(
            async move {
                let stream = into_stream(ours);
                stream.start_tls_server(&server_config).await.unwrap();
                stream.write("bye").await.unwrap();
                stream.close();
                join(peer).await
            },
            Duration::from_secs(20),
        )
        .expect("timed out");
    assert_eq!(got, (b"bye".to_vec(), Ok(3)));
}

#[test]
fn tls_peer_eof_without_close_notify_after_the_handshake_is_a_clean_eof() {
    // Regression: a peer that ended the connection without close_notify (as
    // many do) made read_until_close fail with UnexpectedEof and drop the
    // data; Tornado (suppress_ragged_eofs) reads it as end of file.
    let io_loop = IoLoop::new();
    let (cert, key) = self_signed();
    let server_config = TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    let (ours, theirs) = loopback_pair();
    let peer = std::thread::spawn(move || {
        let mut tls = blocking_tls_client(theirs, &cert);
        tls.write_all(b"data").unwrap();
        tls.flush().unwrap();
        // FIN without close_notify (a half-close, so unread session tickets
        // do not turn it into a reset); then wait for the server to finish.
        tls.sock.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = tls.read_to_end(&mut Vec::new());
    });
    let data = io_loop
        .run_sync_timeout(
            async move {
                let stream = into_stream(ours);
                stream.start_tls_server(&server_config).await.unwrap();
                let data = stream.read_until_close().await;
                stream.close();
                join(peer).await;
                data.map_err(|e| e.to_string())
            },
            Duration::from_secs(20),
        )
        .expect("timed out");
    assert_eq!(data, Ok(b"data".to_vec()));
}
