//! Dormant connections: a kept-alive connection that waits longer than
//! `dormant_after` for its next request is held as its socket and a small
//! record, and served again — as the same connection, counting its requests
//! — when the client sends, leaves, times out, or the server closes it.

mod support;

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use support::{
    connect, hello_server as hello_thread_server, join, read_response, read_to_close, run_on,
    wait_until, Reader, HELLO,
};
use whirl_httpserver::{
    Flow, Http1Connection, Http1ConnectionParams, HttpHeaders, HttpMessageDelegate, HttpServer,
    HttpServerConnectionDelegate, ResponseStartLine, StartLine,
};
use whirl_ioloop::{sleep, IoLoop};

/// Settings that make a connection dormant soon after its response.
fn soon_dormant() -> Http1ConnectionParams {
    Http1ConnectionParams {
        dormant_after: Some(Duration::from_millis(20)),
        ..Http1ConnectionParams::default()
    }
}

/// A GET of `path`, kept alive.
fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// What the hello delegate saw.
#[derive(Default)]
struct Seen {
    /// Requests answered.
    requests: Cell<usize>,
    /// `on_close` calls.
    closes: Cell<usize>,
    /// Handles kept by request (when `keep` is on).
    kept: RefCell<Vec<Http1Connection>>,
    /// Whether to keep a handle to each connection.
    keep: Cell<bool>,
}

/// A delegate answering every request with hello, counting requests and
/// connection closes in [`Seen`].
struct Hello(Rc<Seen>);

impl HttpServerConnectionDelegate for Hello {
    fn start_request(&self, connection: &Http1Connection) -> Box<dyn HttpMessageDelegate> {
        if self.0.keep.get() {
            self.0.kept.borrow_mut().push(connection.clone());
        }
        Box::new(HelloMessage {
            seen: self.0.clone(),
            connection: connection.clone(),
        })
    }

    fn on_close(&self, _connection: &Http1Connection) {
        self.0.closes.set(self.0.closes.get() + 1);
    }
}

/// One request of [`Hello`].
struct HelloMessage {
    /// Shared with the test.
    seen: Rc<Seen>,
    /// Where to answer.
    connection: Http1Connection,
}

impl HttpMessageDelegate for HelloMessage {
    fn headers_received(&mut self, _start_line: StartLine, _headers: HttpHeaders) -> Flow {
        None
    }

    fn data_received(&mut self, _chunk: Vec<u8>) -> Flow {
        None
    }

    fn finish(&mut self) {
        self.seen.requests.set(self.seen.requests.get() + 1);
        let remote = self.connection.remote_addr().map(|a| a.to_string());
        let remote = remote.unwrap_or_default();
        let _ = self.connection.respond(
            &ResponseStartLine::new(200),
            &[("X-Remote", &remote)],
            HELLO,
        );
    }

    fn on_connection_close(&mut self) {}
}

/// A hello server with `params` on the current loop; its address.
fn hello_server(params: Http1ConnectionParams, seen: &Rc<Seen>) -> (HttpServer, SocketAddr) {
    let server = HttpServer::new(Hello(seen.clone())).with_params(params);
    let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];
    (server, addr)
}

/// A client thread: connects, and for each message from the test sends it
/// as a request and reports the response's `(code, Connection, X-Remote)`;
/// when the test hangs up its sender, reads until the server closes and
/// reports what came.
fn client(
    addr: SocketAddr,
) -> (
    mpsc::Sender<String>,
    mpsc::Receiver<Reply>,
    thread::JoinHandle<Vec<u8>>,
) {
    let (to_client, requests) = mpsc::channel::<String>();
    let (replies, from_client) = mpsc::channel();
    let handle = thread::spawn(move || {
        let mut stream = connect(addr);
        for request in requests {
            stream.write_all(request.as_bytes()).unwrap();
            let response = read_response(&mut stream, false).unwrap();
            let header = |name| response.header(name).map(str::to_owned);
            let _ = replies.send((response.code, header("Connection"), header("X-Remote")));
        }
        read_to_close(&mut stream)
    });
    (to_client, from_client, handle)
}

/// A client's report of one response: `(code, Connection, X-Remote)`.
type Reply = (u16, Option<String>, Option<String>);

/// Waits (without blocking the loop) for the client's next reply.
async fn reply(from_client: &mpsc::Receiver<Reply>) -> Reply {
    loop {
        if let Ok(reply) = from_client.try_recv() {
            return reply;
        }
        sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn a_connection_idle_past_dormant_after_sleeps_then_serves_its_next_request() {
    run_on(&IoLoop::new(), async {
        let seen = Rc::new(Seen::default());
        let (server, addr) = hello_server(soon_dormant(), &seen);
        let (to_client, from_client, handle) = client(addr);

        to_client.send(get("/one")).unwrap();
        let first = reply(&from_client).await;
        assert_eq!(first.0, 200);
        wait_until(|| server.dormant_connection_count() == 1).await;
        assert_eq!(server.connection_count(), 1, "dormant is still open");
        assert_eq!(server.requests_in_flight(), 0);

        // Woken by the request: served, with the same peer, kept alive,
        // then asleep again.
        to_client.send(get("/two")).unwrap();
        let second = reply(&from_client).await;
        assert_eq!(second, (200, None, first.2.clone()));
        assert_eq!(seen.requests.get(), 2);
        wait_until(|| server.dormant_connection_count() == 1).await;
        to_client.send(get("/three")).unwrap();
        assert_eq!(reply(&from_client).await.0, 200);
        assert_eq!(seen.closes.get(), 0, "sleeping is not closing");

        drop(to_client);
        server.close_all_connections().await;
        assert!(join(handle).await.is_empty());
        assert_eq!(seen.closes.get(), 1);
    });
}

#[test]
fn max_requests_counts_the_requests_before_a_sleep() {
    run_on(&IoLoop::new(), async {
        let seen = Rc::new(Seen::default());
        let params = Http1ConnectionParams {
            max_requests: 2,
            ..soon_dormant()
        };
        let (server, addr) = hello_server(params, &seen);
        let (to_client, from_client, handle) = client(addr);
        to_client.send(get("/")).unwrap();
        assert_eq!(reply(&from_client).await.1, None);
        wait_until(|| server.dormant_connection_count() == 1).await;
        to_client.send(get("/")).unwrap();
        assert_eq!(reply(&from_client).await.1.as_deref(), Some("close"));
        drop(to_client);
        assert!(join(handle).await.is_empty(), "closed after the second");
        wait_until(|| server.connection_count() == 0).await;
        assert_eq!(seen.closes.get(), 1);
    });
}

#[test]
fn the_idle_timeout_closes_a_dormant_connection_and_the_delegate_hears_of_it() {
    run_on(&IoLoop::new(), async {
        let seen = Rc::new(Seen::default());
        let timeout = Duration::from_millis(400);
        let params = Http1ConnectionParams {
            idle_connection_timeout: timeout,
            ..soon_dormant()
        };
        let (server, addr) = hello_server(params, &seen);
        let (to_client, from_client, handle) = client(addr);
        to_client.send(get("/")).unwrap();
        reply(&from_client).await;
        let answered = Instant::now();
        drop(to_client);
        wait_until(|| server.dormant_connection_count() == 1).await;
        wait_until(|| server.connection_count() == 0).await;
        // Not at the sleep, and never early: the wait began before the
        // client had its answer, by a scheduling delay at most (half the
        // timeout is room for that).
        assert!(
            answered.elapsed() >= timeout / 2,
            "{:?}",
            answered.elapsed()
        );
        assert!(join(handle).await.is_empty());
        assert_eq!(seen.closes.get(), 1);
    });
}

#[test]
fn a_client_that_leaves_while_dormant_is_closed_and_forgotten() {
    run_on(&IoLoop::new(), async {
        let seen = Rc::new(Seen::default());
        let (server, addr) = hello_server(soon_dormant(), &seen);
        let handle = thread::spawn(move || {
            let mut stream = connect(addr);
            stream.write_all(get("/").as_bytes()).unwrap();
            read_response(&mut stream, false).unwrap();
            // Long enough to be made dormant; then hangs up.
            thread::sleep(Duration::from_millis(300));
        });
        wait_until(|| server.dormant_connection_count() == 1).await;
        join(handle).await;
        wait_until(|| server.connection_count() == 0).await;
        assert_eq!(seen.closes.get(), 1);
        assert_eq!(server.dormant_connection_count(), 0);
    });
}

#[test]
fn close_all_connections_closes_dormant_ones_and_served_ones() {
    run_on(&IoLoop::new(), async {
        let seen = Rc::new(Seen::default());
        let (server, addr) = hello_server(soon_dormant(), &seen);
        let clients: Vec<_> = (0..3).map(|_| client(addr)).collect();
        for (to_client, from_client, _) in &clients {
            to_client.send(get("/")).unwrap();
            reply(from_client).await;
        }
        wait_until(|| server.dormant_connection_count() == 3).await;
        server.stop();
        server.close_all_connections().await;
        assert_eq!(server.connection_count(), 0);
        for (to_client, _, handle) in clients {
            drop(to_client);
            assert!(join(handle).await.is_empty());
        }
        assert_eq!(seen.closes.get(), 3);
    });
}

#[test]
fn a_connection_someone_holds_or_one_midway_through_a_request_does_not_sleep() {
    run_on(&IoLoop::new(), async {
        let seen = Rc::new(Seen::default());
        seen.keep.set(true);
        let (server, addr) = hello_server(soon_dormant(), &seen);
        let (to_client, from_client, handle) = client(addr);
        to_client.send(get("/")).unwrap();
        reply(&from_client).await;
        // Half a request head on a second connection.
        let mut half = TcpStream::connect(addr).unwrap();
        half.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
        sleep(Duration::from_millis(200)).await;
        assert_eq!(server.dormant_connection_count(), 0);
        assert_eq!(server.connection_count(), 2);

        // Once let go of, it may.
        seen.keep.set(false);
        seen.kept.borrow_mut().clear();
        wait_until(|| server.dormant_connection_count() == 1).await;
        to_client.send(get("/")).unwrap();
        assert_eq!(reply(&from_client).await.0, 200);

        // The half request still completes.
        half.write_all(b"st: x\r\n\r\n").unwrap();
        let response = join(thread::spawn(move || {
            read_response(&mut half, false).unwrap()
        }));
        assert_eq!(response.await.code, 200);
        drop(to_client);
        server.close_all_connections().await;
        join(handle).await;
    });
}

#[test]
fn without_dormant_after_connections_never_sleep() {
    never_sleeps_with(None);
}

#[test]
fn a_dormant_after_too_long_to_double_never_sleeps_and_does_not_panic() {
    never_sleeps_with(Some(Duration::MAX));
}

/// Serves a request with `dormant_after` set so, and checks that the
/// connection stays awake.
fn never_sleeps_with(dormant_after: Option<Duration>) {
    run_on(&IoLoop::new(), async {
        let seen = Rc::new(Seen::default());
        let params = Http1ConnectionParams {
            dormant_after,
            ..Http1ConnectionParams::default()
        };
        let (server, addr) = hello_server(params, &seen);
        let (to_client, from_client, handle) = client(addr);
        to_client.send(get("/")).unwrap();
        reply(&from_client).await;
        sleep(Duration::from_millis(300)).await;
        assert_eq!(server.dormant_connection_count(), 0);
        assert_eq!(server.connection_count(), 1);
        drop(to_client);
        server.close_all_connections().await;
        join(handle).await;
    });
}

#[test]
fn a_client_that_comes_back_soon_after_each_sleep_is_let_sleep_later() {
    run_on(&IoLoop::new(), async {
        let seen = Rc::new(Seen::default());
        let (server, addr) = hello_server(soon_dormant(), &seen);
        let (to_client, from_client, handle) = client(addr);
        // Each request comes just after the connection fell asleep: its
        // threshold doubles each time, 20 ms → 40, 80, … 1,280 ms (the cap).
        for _ in 0..7 {
            to_client.send(get("/")).unwrap();
            assert_eq!(reply(&from_client).await.0, 200);
            wait_until(|| server.dormant_connection_count() == 1).await;
        }
        to_client.send(get("/")).unwrap();
        assert_eq!(reply(&from_client).await.0, 200);
        sleep(Duration::from_millis(200)).await;
        assert_eq!(
            server.dormant_connection_count(),
            0,
            "awake for 1,280 ms now"
        );
        wait_until(|| server.dormant_connection_count() == 1).await;
        drop(to_client);
        server.close_all_connections().await;
        join(handle).await;
    });
}

#[test]
fn many_clients_pausing_around_the_threshold_get_every_answer_whole() {
    // Sleeps and wakes at every step of a mixed conversation: single
    // requests, pipelined pairs, bodies, heads split by a pause; pauses on
    // either side of a 5 ms threshold. Every answer must come whole, in
    // order, on the same connection.
    let server = hello_thread_server(Http1ConnectionParams {
        dormant_after: Some(Duration::from_millis(5)),
        ..Http1ConnectionParams::default()
    });
    let addr = server.addr;
    let clients: Vec<_> = (0..16u64)
        .map(|client| {
            thread::spawn(move || {
                let mut stream = connect(addr);
                let mut seed = client.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut next = move |n: u64| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed % n
                };
                for step in 0..20 {
                    let path = format!("/c{client}/s{step}");
                    let mut expected = vec![(path.clone(), HELLO.as_bytes().to_vec())];
                    match next(4) {
                        0 => stream.write_all(get(&path).as_bytes()).unwrap(),
                        1 => {
                            let second = format!("{path}/b");
                            let both = format!("{}{}", get(&path), get(&second));
                            stream.write_all(both.as_bytes()).unwrap();
                            expected.push((second, HELLO.as_bytes().to_vec()));
                        }
                        2 => {
                            let body = vec![b'x' + (step % 3) as u8; 1 + next(70_000) as usize];
                            let head = format!(
                                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                                body.len()
                            );
                            stream.write_all(head.as_bytes()).unwrap();
                            stream.write_all(&body).unwrap();
                            expected[0].1 = body;
                        }
                        _ => {
                            let request = get(&path);
                            let (a, b) = request.split_at(7);
                            stream.write_all(a.as_bytes()).unwrap();
                            thread::sleep(Duration::from_millis(12));
                            stream.write_all(b.as_bytes()).unwrap();
                        }
                    }
                    let mut reader = Reader::new(&mut stream);
                    for (path, body) in expected {
                        let response = reader.read_response(false).unwrap();
                        assert_eq!(response.code, 200, "{path}");
                        assert_eq!(response.header("X-Path"), Some(path.as_str()));
                        assert_eq!(response.body, body, "{path}");
                    }
                    assert!(reader.leftover().is_empty());
                    let pause = [0, 3, 8, 30, 60][next(5) as usize];
                    thread::sleep(Duration::from_millis(pause));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
}
