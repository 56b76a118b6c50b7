//! `TcpServer` behaviour over loopback: listening on port 0, peer addresses,
//! backlogs larger than one accept batch, stopping, `SO_REUSEPORT` sockets, a
//! reset connection among healthy ones, and a long echo with bounded memory.

mod support;

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::thread;

use whirl_ioloop::IoLoop;
use whirl_iostream::netutil::{bind_sockets, Family};
use whirl_iostream::{
    CloseReason, IoStream, TcpServer, TlsClientConfig, TlsServerConfig, ACCEPT_BATCH,
};

use support::{
    init_logging, join, reset, run, run_on, settle, wait_until, Checksum, Pattern, TEST_TIMEOUT,
};

/// A server that echoes lines until the client goes away; counts the
/// connections it accepted.
fn line_echo_server() -> (TcpServer, Rc<Cell<usize>>) {
    let accepted = Rc::new(Cell::new(0));
    let count = accepted.clone();
    let server = TcpServer::new(move |stream: IoStream, _peer| {
        count.set(count.get() + 1);
        async move {
            while let Ok(line) = stream.read_until(b"\n", 64 * 1024).await {
                if stream.write(line).await.is_err() {
                    break;
                }
            }
        }
    });
    (server, accepted)
}

/// Sends `line` (with a newline) on a blocking client and reads the echo.
fn echo_once(client: &mut BufReader<TcpStream>, line: &str) -> String {
    client
        .get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .expect("client write");
    let mut echoed = String::new();
    client.read_line(&mut echoed).expect("client read");
    echoed
}

/// A blocking client with a read deadline, so a lost connection fails the
/// test instead of hanging it.
fn blocking_client(addr: SocketAddr) -> TcpStream {
    let client = TcpStream::connect(addr).expect("connect");
    client
        .set_read_timeout(Some(TEST_TIMEOUT))
        .expect("read timeout");
    client
}

/// The listen backlog the kernel grants at most (`somaxconn`), where procfs
/// says.
fn max_backlog() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

#[test]
fn listen_on_port_zero_returns_a_usable_address_and_handle_stream_gets_the_peer() {
    run(async {
        let peers = Rc::new(RefCell::new(Vec::new()));
        let seen = peers.clone();
        let server = TcpServer::new(move |stream: IoStream, peer: SocketAddr| {
            seen.borrow_mut().push(peer);
            async move {
                let _ = stream.write(format!("{peer}\n")).await;
            }
        });
        let addrs = server.listen(0, Some("127.0.0.1")).unwrap();
        assert_eq!(addrs.len(), 1);
        assert_eq!(addrs[0].ip(), std::net::Ipv4Addr::LOCALHOST);
        assert_ne!(addrs[0].port(), 0);
        assert_eq!(server.local_addrs(), addrs);

        let client = TcpStream::connect(addrs[0]).unwrap();
        let local = client.local_addr().unwrap();
        let client = support::into_stream(client, Default::default());
        let line = client.read_until(b"\n", 1024).await.unwrap();
        assert_eq!(String::from_utf8(line).unwrap(), format!("{local}\n"));
        assert_eq!(*peers.borrow(), [local]);
        server.stop();
    });
}

#[test]
fn two_hundred_clients_at_once_are_all_served() {
    run(async {
        let (server, accepted) = line_echo_server();
        let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];
        let clients: Vec<_> = (0..200)
            .map(|i| {
                thread::spawn(move || {
                    let mut client = BufReader::new(blocking_client(addr));
                    echo_once(&mut client, &format!("client {i}"))
                })
            })
            .collect();
        for (i, client) in clients.into_iter().enumerate() {
            assert_eq!(join(client).await, format!("client {i}\n"));
        }
        assert_eq!(accepted.get(), 200);
    });
}

#[test]
fn a_backlog_larger_than_one_accept_batch_is_drained() {
    init_logging();
    // Clients past the kernel's backlog limit would wait in SYN retries with
    // the loop not yet running, so stay within it.
    let count = match max_backlog() {
        Some(limit) if limit > 2 * ACCEPT_BATCH => 300.min(limit),
        other => {
            eprintln!(
                "skipped: the kernel's backlog limit ({other:?}) is not above two accept batches"
            );
            return;
        }
    };
    let io_loop = IoLoop::new();
    let (server, accepted) = line_echo_server();
    let sockets = bind_sockets(0, Some("127.0.0.1"), Family::Ipv4, 1024, false).unwrap();
    let addr = server.add_sockets(sockets).unwrap()[0];
    // Every client connects (the kernel completes the handshakes) and sends
    // its line before the loop runs: all of them sit in the backlog, and one
    // readiness event must lead to all of them being accepted.
    let mut clients: Vec<BufReader<TcpStream>> = (0..count)
        .map(|i| {
            let mut client = blocking_client(addr);
            client
                .write_all(format!("client {i}\n").as_bytes())
                .unwrap();
            BufReader::new(client)
        })
        .collect();
    let readers = thread::spawn(move || {
        for (i, client) in clients.iter_mut().enumerate() {
            let mut echoed = String::new();
            client.read_line(&mut echoed).expect("client read");
            assert_eq!(echoed, format!("client {i}\n"));
        }
    });
    run_on(&io_loop, async {
        join(readers).await;
    });
    assert_eq!(accepted.get(), count);
}

#[test]
fn stop_closes_the_listener_but_accepted_connections_keep_working() {
    run(async {
        let (server, _) = line_echo_server();
        let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];
        let client = IoStream::connect(addr).await.unwrap();
        client.write("before\n");
        assert_eq!(client.read_until(b"\n", 1024).await.unwrap(), b"before\n");

        server.stop();
        assert!(server.local_addrs().is_empty());
        settle().await;
        let refused = TcpStream::connect(addr).unwrap_err();
        assert_eq!(
            refused.kind(),
            io::ErrorKind::ConnectionRefused,
            "{refused:?}"
        );

        client.write("after\n");
        assert_eq!(client.read_until(b"\n", 1024).await.unwrap(), b"after\n");
        // Stopping twice is harmless.
        server.stop();
    });
}

#[cfg(unix)]
#[test]
fn add_sockets_with_reuse_port_serves_from_every_socket() {
    run(async {
        let first = bind_sockets(0, Some("127.0.0.1"), Family::Ipv4, 128, true).unwrap();
        let port = first[0].local_addr().unwrap().port();
        let second = bind_sockets(port, Some("127.0.0.1"), Family::Ipv4, 128, true).unwrap();
        let (server_a, accepted_a) = line_echo_server();
        let (server_b, accepted_b) = line_echo_server();
        let addr_a = server_a.add_sockets(first).unwrap()[0];
        let addr_b = server_b.add_sockets(second).unwrap()[0];
        assert_eq!(addr_a, addr_b);

        let clients: Vec<_> = (0..50)
            .map(|i| {
                thread::spawn(move || {
                    let mut client = BufReader::new(blocking_client(addr_a));
                    echo_once(&mut client, &format!("reuse {i}"))
                })
            })
            .collect();
        for (i, client) in clients.into_iter().enumerate() {
            assert_eq!(join(client).await, format!("reuse {i}\n"));
        }
        // The kernel decides which socket gets each connection; together
        // they accepted every one.
        assert_eq!(accepted_a.get() + accepted_b.get(), 50);
        server_a.stop();
        server_b.stop();
    });
}

#[test]
fn a_reset_mid_read_fails_that_read_and_other_connections_keep_working() {
    run(async {
        let streams = Rc::new(RefCell::new(Vec::new()));
        let errors = Rc::new(RefCell::new(Vec::new()));
        let (kept, failed) = (streams.clone(), errors.clone());
        let server = TcpServer::new(move |stream: IoStream, _| {
            kept.borrow_mut().push(stream.clone());
            let failed = failed.clone();
            async move {
                loop {
                    match stream.read_until(b"\n", 64 * 1024).await {
                        Ok(line) => {
                            if stream.write(line).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            failed.borrow_mut().push(e);
                            break;
                        }
                    }
                }
            }
        });
        let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];

        // A: half a line reaches the server's buffer, then the connection is
        // reset under the pending read_until.
        let mut doomed = blocking_client(addr);
        doomed.write_all(b"partial").unwrap();
        wait_until(|| streams.borrow().first().is_some_and(|s| s.buffered() == 7)).await;
        let healthy = IoStream::connect(addr).await.unwrap();
        healthy.write("first\n");
        assert_eq!(healthy.read_until(b"\n", 1024).await.unwrap(), b"first\n");
        reset(doomed);

        wait_until(|| !errors.borrow().is_empty()).await;
        {
            let errors = errors.borrow();
            let reason = errors[0].as_closed().map(|c| c.reason());
            assert!(
                matches!(reason, Some(CloseReason::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset),
                "{:?}",
                errors[0]
            );
            assert!(streams.borrow()[0].closed());
        }

        // B and new clients are unaffected.
        healthy.write("second\n");
        assert_eq!(healthy.read_until(b"\n", 1024).await.unwrap(), b"second\n");
        let late = IoStream::connect(addr).await.unwrap();
        late.write("late\n");
        assert_eq!(late.read_until(b"\n", 1024).await.unwrap(), b"late\n");
        assert_eq!(errors.borrow().len(), 1);
    });
}

/// Bytes for the big echo: `WHIRL_BIG_ECHO_BYTES`, default 64 MiB (1 GiB
/// takes minutes in a debug build; set it for a release run).
fn big_echo_bytes() -> u64 {
    std::env::var("WHIRL_BIG_ECHO_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64 << 20)
}

#[test]
fn a_long_echo_keeps_memory_bounded() {
    const CHUNK: usize = 64 * 1024;
    let total = big_echo_bytes();
    let rss_before = support::rss_bytes();
    let max_buffered = Rc::new(Cell::new(0usize));
    let echoed_by_server = Rc::new(Cell::new(0u64));
    let result = run(async {
        let (seen, echoed) = (max_buffered.clone(), echoed_by_server.clone());
        let server = TcpServer::new(move |stream: IoStream, _| {
            let (seen, echoed) = (seen.clone(), echoed.clone());
            async move {
                // Read a chunk, write it back, wait until it left: the
                // server never holds more than about one chunk.
                while let Ok(chunk) = stream.read_bytes(CHUNK, true).await {
                    seen.set(seen.get().max(stream.buffered()));
                    echoed.set(echoed.get() + chunk.len() as u64);
                    if stream.write(chunk).await.is_err() {
                        break;
                    }
                    seen.set(seen.get().max(stream.buffered()));
                }
            }
        });
        let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];

        // The client: one thread writes, another reads, concurrently.
        let client = thread::spawn(move || {
            let writer_socket = TcpStream::connect(addr).expect("connect");
            let mut reader_socket = writer_socket.try_clone().expect("clone");
            reader_socket.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
            let writer = thread::spawn(move || {
                let mut socket = writer_socket;
                let mut pattern = Pattern::new(0x5eed);
                let mut sum = Checksum::default();
                let mut buf = vec![0u8; CHUNK];
                let mut left = total;
                while left > 0 {
                    let n = left.min(CHUNK as u64) as usize;
                    pattern.fill(&mut buf[..n]);
                    sum.update(&buf[..n]);
                    socket.write_all(&buf[..n]).expect("client write");
                    left -= n as u64;
                }
                socket
                    .shutdown(std::net::Shutdown::Write)
                    .expect("shutdown");
                sum.value()
            });
            let mut sum = Checksum::default();
            let mut received = 0u64;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = reader_socket.read(&mut buf).expect("client read");
                if n == 0 {
                    break;
                }
                sum.update(&buf[..n]);
                received += n as u64;
            }
            let sent = writer.join().expect("writer");
            (sent, sum.value(), received)
        });
        let result = join(client).await;
        server.stop();
        result
    });
    let (sent_sum, received_sum, received) = result;
    assert_eq!(received, total, "bytes echoed back");
    assert_eq!(echoed_by_server.get(), total);
    assert_eq!(
        received_sum, sent_sum,
        "the echoed bytes differ from those sent"
    );
    assert!(
        max_buffered.get() <= 2 * CHUNK,
        "the server buffered up to {} bytes",
        max_buffered.get()
    );
    if let (Some(before), Some(after)) = (rss_before, support::rss_bytes()) {
        let growth = after.saturating_sub(before);
        assert!(
            growth < 64 << 20,
            "RSS grew by {growth} bytes while echoing {total}"
        );
    }
}

#[test]
fn dropping_every_server_handle_keeps_it_listening_until_the_loop_closes() {
    // Tornado's shape: `listen`, then run the loop, keeping no handle. The
    // server used to stop silently (its accept handlers held it weakly),
    // leaving a dead handler slot on the loop.
    let io_loop = IoLoop::new();
    let (server, accepted) = line_echo_server();
    let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];
    drop(server);
    run_on(&io_loop, async {
        for i in 0..3 {
            let client = IoStream::connect(addr).await.unwrap();
            client.write(format!("still listening {i}\n"));
            let echoed = client.read_until(b"\n", 1024).await.unwrap();
            assert_eq!(echoed, format!("still listening {i}\n").as_bytes());
        }
    });
    assert_eq!(accepted.get(), 3);
    // Closing the loop frees the server (the hook held `accepted`) and
    // closes its socket.
    io_loop.close();
    assert_eq!(Rc::strong_count(&accepted), 1, "the server was not freed");
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(
        refused.kind(),
        io::ErrorKind::ConnectionRefused,
        "{refused:?}"
    );
}

/// A self-signed certificate for 127.0.0.1, as a server and a client config.
fn tls_configs() -> (TlsServerConfig, TlsClientConfig) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
    let (cert, key) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let server = TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).expect("server config");
    let client = TlsClientConfig::builder()
        .ca_certs_pem(cert.as_bytes())
        .build()
        .expect("client config");
    (server, client)
}

/// Stops a server (plain or TLS) with a connection open, drops its last
/// handle, and checks that the server is freed at once while the
/// connection goes on.
fn a_stopped_server_is_freed_while_its_connections_go_on(tls: bool) {
    run(async {
        let (server, accepted) = line_echo_server();
        let (server, client_tls) = if tls {
            let (server_tls, client_tls) = tls_configs();
            (server.with_tls(server_tls), Some(client_tls))
        } else {
            (server, None)
        };
        let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];
        let client = IoStream::connect(addr).await.unwrap();
        if let Some(config) = &client_tls {
            client.start_tls_client(config, "127.0.0.1").await.unwrap();
        }
        client.write("before\n");
        assert_eq!(client.read_until(b"\n", 1024).await.unwrap(), b"before\n");

        let also = server.clone();
        drop(server);
        also.stop();
        drop(also);
        // The hook (which holds `accepted`) is gone with the server: neither
        // the loop nor the connection's task holds it.
        assert_eq!(Rc::strong_count(&accepted), 1, "the server is still held");

        client.write("after\n");
        assert_eq!(client.read_until(b"\n", 1024).await.unwrap(), b"after\n");
        assert_eq!(accepted.get(), 1);
    });
}

#[test]
fn stop_frees_a_server_whose_handles_are_dropped_while_a_connection_goes_on() {
    a_stopped_server_is_freed_while_its_connections_go_on(false);
}

#[test]
fn a_tls_connection_does_not_hold_its_stopped_server() {
    // The TLS path used to hold the whole server for the connection's
    // lifetime, unlike the plain path.
    a_stopped_server_is_freed_while_its_connections_go_on(true);
}
