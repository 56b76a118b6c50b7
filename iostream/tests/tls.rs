//! TLS: round trips, certificate validation, plain text on a TLS port, STARTTLS.

use std::io::{Read, Write};
use std::net::SocketAddr;
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
