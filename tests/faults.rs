//! Faults a server meets in the field, each over loopback against a whirl
//! web `Application`: clients that reset (RST, `SO_LINGER` 0) mid-headers,
//! mid-body and mid-response; an upstream that refuses, hangs or resets
//! behind a proxy route (502/504, no connection leaked on either side);
//! handlers that panic at every step; thread-pool jobs that panic; a TLS
//! peer that stops mid-handshake.
//!
//! Every fault runs while a bystander request waits on another connection
//! (parked on a gate in its handler): the fault must leave the loop
//! running — it still serves `/release` — and the bystander must then get
//! its `200`. Afterwards the server holds no connection it should not.
//! Every wait is bounded; nothing is timed.

mod support_hardening;

// The `async_patterns` example's application, for its streaming `/proxy`
// route (only part of it is used here).
#[allow(dead_code)]
#[path = "../examples/async_patterns/app/mod.rs"]
mod async_patterns_app;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use support_hardening::{assert_serves, get, wait_until, Conn, ReadError, Served, TEST_TIMEOUT};
use whirl::httpclient::{AsyncHttpClient, HttpClient, HttpRequest};
use whirl::httpserver::HttpServer;
use whirl::ioloop::locks::Event;
use whirl::ioloop::{run_in_executor, ThreadPool};
use whirl::iostream::TlsServerConfig;
use whirl::web::{Application, Context, HandlerResult, HttpError, RequestHandler, Route};

// ----- what the handlers share (one server per loop thread) ----------------------

/// Counters and the gate, on the server's loop thread.
#[derive(Default)]
struct State {
    /// Bystanders waiting at `/gate`.
    gate: RefCell<Vec<Event>>,
    /// Bytes the streaming upload handler received.
    streamed: Cell<usize>,
    /// `on_connection_close` calls.
    connection_closes: Cell<usize>,
    /// Handlers that started to wait for their client to leave.
    waiting: Cell<usize>,
    /// `on_finish` calls of `/big`.
    big_finished: Cell<usize>,
    /// Pieces `/big` got out.
    big_pieces: Cell<usize>,
    /// The proxy's client (one pool for every proxied request).
    client: RefCell<Option<AsyncHttpClient>>,
    /// The proxy's upstreams by name.
    upstreams: RefCell<HashMap<String, String>>,
    /// A one-thread pool: a job that panics must not cost its worker.
    pool: RefCell<Option<ThreadPool>>,
}

thread_local! {
    static STATE: State = State::default();
}

/// Pieces of 64 KiB `/big` sends: far more than socket buffers hold.
const BIG_PIECES: usize = 1024;

/// `GET /`: `ok`.
struct Root;

impl RequestHandler for Root {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("ok");
        Ok(())
    }
}

/// `GET /gate`: waits until `/release`, then `released`.
struct Gate;

impl RequestHandler for Gate {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let event = Event::new();
        STATE.with(|s| s.gate.borrow_mut().push(event.clone()));
        event.wait().await;
        cx.write("released");
        Ok(())
    }
}

/// `GET /release`: lets every waiting `/gate` go.
struct Release;

impl RequestHandler for Release {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let waiting: Vec<Event> = STATE.with(|s| s.gate.borrow_mut().drain(..).collect());
        for event in &waiting {
            event.set();
        }
        cx.write(format!("released {}", waiting.len()));
        Ok(())
    }
}

/// `POST /upload`: a buffered body; its length.
struct Upload;

impl RequestHandler for Upload {
    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        let len = cx.request().body.len();
        cx.write(format!("len={len}"));
        Ok(())
    }

    fn on_connection_close(&mut self, _cx: &mut Context) {
        STATE.with(|s| s.connection_closes.set(s.connection_closes.get() + 1));
    }
}

/// `POST /stream`: a streamed body, counted as it arrives.
struct Stream;

impl RequestHandler for Stream {
    const STREAM_REQUEST_BODY: bool = true;

    async fn data_received(&mut self, _cx: &mut Context, chunk: Vec<u8>) -> HandlerResult {
        STATE.with(|s| s.streamed.set(s.streamed.get() + chunk.len()));
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("done");
        Ok(())
    }

    fn on_connection_close(&mut self, _cx: &mut Context) {
        STATE.with(|s| s.connection_closes.set(s.connection_closes.get() + 1));
    }
}

/// `GET /big`: 64 MiB flushed 64 KiB at a time.
struct Big;

impl RequestHandler for Big {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_header("Content-Type", "application/octet-stream")?;
        for _ in 0..BIG_PIECES {
            cx.write(vec![b'x'; 64 * 1024]);
            cx.flush().await?;
            STATE.with(|s| s.big_pieces.set(s.big_pieces.get() + 1));
        }
        Ok(())
    }

    fn on_finish(&mut self, _cx: &mut Context) {
        STATE.with(|s| s.big_finished.set(s.big_finished.get() + 1));
    }
}

/// `/panic/<where>`: panics in `prepare`, in the verb method (before or
/// after an await), in `data_received`, in `write_error`, in `on_finish`,
/// or in `on_connection_close`.
struct Panics {
    /// Where to panic (`?at=` is read in `prepare`).
    at: String,
}

impl RequestHandler for Panics {
    const STREAM_REQUEST_BODY: bool = true;

    async fn prepare(&mut self, cx: &mut Context) -> HandlerResult {
        self.at = cx.path_arg(0).unwrap_or_default().to_string();
        if self.at == "prepare" {
            panic!("boom in prepare");
        }
        Ok(())
    }

    async fn data_received(&mut self, _cx: &mut Context, _chunk: Vec<u8>) -> HandlerResult {
        if self.at == "data_received" {
            panic!("boom in data_received");
        }
        Ok(())
    }

    async fn get(&mut self, _cx: &mut Context) -> HandlerResult {
        match self.at.as_str() {
            "get" => panic!("boom in get"),
            "after_await" => {
                whirl::ioloop::sleep(Duration::from_millis(1)).await;
                panic!("boom after an await");
            }
            "write_error" => Err(HttpError::new(418)),
            "on_connection_close" => {
                // Wait for the client to leave.
                STATE.with(|s| s.waiting.set(s.waiting.get() + 1));
                std::future::pending::<()>().await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        self.get(cx).await
    }

    fn write_error(&mut self, _cx: &mut Context, _status: u16, _error: Option<&HttpError>) {
        if self.at == "write_error" {
            panic!("boom in write_error");
        }
    }

    fn on_finish(&mut self, _cx: &mut Context) {
        if self.at == "on_finish" {
            panic!("boom in on_finish");
        }
    }

    fn on_connection_close(&mut self, _cx: &mut Context) {
        STATE.with(|s| s.connection_closes.set(s.connection_closes.get() + 1));
        if self.at == "on_connection_close" {
            panic!("boom in on_connection_close");
        }
    }
}

/// `/pool/<job>`: runs a job on a thread pool — the app's one-thread pool
/// (`one-*`) or the default one (`default-*`); `*-panic` panics there,
/// `*-ok` answers 42.
struct Pool;

impl RequestHandler for Pool {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let job = cx.path_arg(0).unwrap_or_default().to_string();
        let panics = job.ends_with("panic");
        let work = move || -> u32 {
            if panics {
                panic!("boom in a thread-pool job");
            }
            42
        };
        let result = if job.starts_with("one") {
            let pool = STATE.with(|s| s.pool.borrow().clone()).expect("the pool");
            pool.submit(work).await
        } else {
            run_in_executor(work).await
        };
        let value = result.map_err(|e| HttpError::new(500).log_message(e.to_string()))?;
        cx.write(value.to_string());
        Ok(())
    }
}

/// `/proxy/<name>`: fetches upstream `<name>` with the shared client —
/// 502 when it fails, 504 when it times out (after 1 s for `hang`).
struct Proxy;

impl RequestHandler for Proxy {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let name = cx.path_arg(0).unwrap_or_default().to_string();
        let url = STATE
            .with(|s| s.upstreams.borrow().get(&name).cloned())
            .ok_or_else(|| HttpError::new(404))?;
        let client = STATE.with(|s| s.client.borrow().clone()).expect("a client");
        let request = HttpRequest::get(url.as_str())
            .raise_error(false)
            .connect_timeout(Duration::from_secs(5))
            // Short only where the test waits for it to run out.
            .request_timeout(if name == "hang" {
                Duration::from_secs(1)
            } else {
                TEST_TIMEOUT
            });
        match client.fetch(request).await {
            Ok(response) => {
                cx.set_status(response.code);
                cx.write(response.body);
                Ok(())
            }
            Err(e) => {
                let status = if e.is_timeout() { 504 } else { 502 };
                Err(HttpError::new(status).log_message(format!("upstream: {e}")))
            }
        }
    }
}

/// The application of every test, its state set up on the loop thread.
fn application(upstreams: HashMap<String, String>) -> Application {
    STATE.with(|s| {
        *s.client.borrow_mut() = Some(AsyncHttpClient::new());
        *s.upstreams.borrow_mut() = upstreams;
        *s.pool.borrow_mut() = Some(ThreadPool::new(1));
    });
    Application::new(vec![
        Route::new("/", || Root),
        Route::new("/gate", || Gate),
        Route::new("/release", || Release),
        Route::new("/upload", || Upload),
        Route::new("/stream", || Stream),
        Route::new("/big", || Big),
        Route::new("/panic/(.*)", || Panics { at: String::new() }),
        Route::new("/pool/(.*)", || Pool),
        Route::new("/proxy/(.*)", || Proxy),
    ])
}

/// The application over plain HTTP.
fn start() -> Served {
    start_with(HashMap::new())
}

/// The application with proxy `upstreams`.
fn start_with(upstreams: HashMap<String, String>) -> Served {
    Served::start(move || application(upstreams).listen(0, Some("127.0.0.1")))
}

/// A value of the server's state, read on its loop.
fn state<T: Send + 'static>(server: &Served, f: fn(&State) -> T) -> T {
    server.on_loop(move || STATE.with(f))
}

// ----- the bystander ------------------------------------------------------------

/// A request parked at `/gate` on a connection of its own.
struct Bystander {
    /// Its connection.
    conn: Conn,
}

impl Bystander {
    /// Sends `GET /gate` and waits (bounded) until its handler is waiting.
    fn park(server: &Served) -> Bystander {
        let before = state(server, |s| s.gate.borrow().len());
        let mut conn = Conn::connect(server.addr);
        conn.send(b"GET /gate HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            wait_until(TEST_TIMEOUT, || state(server, |s| s.gate.borrow().len())
                > before),
            "the bystander never reached its handler"
        );
        Bystander { conn }
    }

    /// Releases it (through the loop, on a fresh connection) and checks its
    /// `200`.
    fn release(mut self, server: &Served) {
        let released = get(server.addr, "/release");
        assert_eq!(released.status, 200, "{}", released.text());
        let r = self
            .conn
            .read_response("GET")
            .expect("the bystander's response");
        assert_eq!((r.status, r.text().as_str()), (200, "released"));
    }
}

/// Runs `fault` while a bystander waits, then checks the bystander got its
/// answer, a fresh connection is served, and (once the bystander's
/// connection is gone) the server holds no connection.
fn survives(server: &Served, fault: impl FnOnce()) {
    let bystander = Bystander::park(server);
    fault();
    bystander.release(server);
    assert_serves(server.addr);
    assert!(server.drains(), "the server kept a connection open");
}

// ----- clients that reset -----------------------------------------------------------

#[test]
fn client_reset_mid_headers() {
    let server = start();
    for partial in [
        &b"G"[..],
        b"GET / HTTP/1.1\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Half: va",
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n",
    ] {
        survives(&server, || {
            let mut conn = Conn::connect(server.addr);
            conn.send(partial);
            // The bystander and this one: wait until the server has this
            // connection, so the reset hits an accepted socket.
            assert!(wait_until(TEST_TIMEOUT, || server.connection_count() >= 2));
            conn.reset();
        });
    }
}

#[test]
fn client_reset_mid_body() {
    let server = start();
    // A buffered body.
    survives(&server, || {
        let mut conn = Conn::connect(server.addr);
        conn.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
        conn.send(&[b'a'; 1000]);
        assert!(wait_until(TEST_TIMEOUT, || server.connection_count() >= 2));
        conn.reset();
    });
    // A streamed body, reset once the handler has some of it: the handler
    // is told the client left.
    let closes = state(&server, |s| s.connection_closes.get());
    survives(&server, || {
        let mut conn = Conn::connect(server.addr);
        conn.send(b"POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
        conn.send(&[b'a'; 1000]);
        assert!(wait_until(TEST_TIMEOUT, || state(&server, |s| s
            .streamed
            .get())
            >= 1000));
        conn.reset();
        assert!(
            wait_until(TEST_TIMEOUT, || state(&server, |s| s
                .connection_closes
                .get())
                > closes),
            "on_connection_close was not called"
        );
    });
    // A chunked body cut inside a chunk.
    survives(&server, || {
        let mut conn = Conn::connect(server.addr);
        conn.send(b"POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        conn.send(b"ffff\r\nabc");
        assert!(wait_until(TEST_TIMEOUT, || server.connection_count() >= 2));
        conn.reset();
    });
}

#[test]
fn client_reset_mid_response() {
    let server = start();
    survives(&server, || {
        let mut conn = Conn::connect(server.addr);
        conn.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
        // Read a little of the 64 MiB, then reset.
        let mut first = [0u8; 4096];
        let n = conn.stream().try_clone().unwrap().read(&mut first).unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 200 OK"));
        conn.reset();
        assert!(
            wait_until(TEST_TIMEOUT, || state(&server, |s| s.big_finished.get())
                == 1),
            "the handler did not end"
        );
    });
    let sent = state(&server, |s| s.big_pieces.get());
    assert!(sent < BIG_PIECES, "the whole response was produced: {sent}");
    // The same with a keep-alive request queued behind it (pipelined).
    survives(&server, || {
        let mut conn = Conn::connect(server.addr);
        conn.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut first = [0u8; 4096];
        let _ = conn.stream().try_clone().unwrap().read(&mut first).unwrap();
        conn.reset();
        assert!(wait_until(TEST_TIMEOUT, || state(&server, |s| s
            .big_finished
            .get())
            == 2));
    });
}

// ----- panics -----------------------------------------------------------------------

#[test]
fn handler_panics_are_a_500_and_nothing_else() {
    let server = start();
    for (at, method, want) in [
        ("prepare", "GET", 500),
        ("get", "GET", 500),
        ("after_await", "GET", 500),
        ("data_received", "POST", 500),
        // A panic while rendering the error page: the plain page instead.
        ("write_error", "GET", 418),
        // A panic in on_finish comes after the answer.
        ("on_finish", "GET", 200),
    ] {
        survives(&server, || {
            let mut conn = Conn::connect(server.addr);
            let request = if method == "POST" {
                format!("POST /panic/{at} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            } else {
                format!("GET /panic/{at} HTTP/1.1\r\nHost: x\r\n\r\n")
            };
            conn.send(request.as_bytes());
            let r = conn
                .read_response(method)
                .unwrap_or_else(|e| panic!("{at}: {e:?}"));
            assert_eq!(r.status, want, "{at}: {}", r.text());
            // The same connection goes on (the request was framed well).
            assert_eq!(conn.probe_closed(), Ok(false), "{at}");
        });
    }
    // A panic in on_connection_close, when the client leaves a waiting
    // handler.
    let closes = state(&server, |s| s.connection_closes.get());
    survives(&server, || {
        let mut conn = Conn::connect(server.addr);
        conn.send(b"GET /panic/on_connection_close HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(wait_until(TEST_TIMEOUT, || state(&server, |s| s
            .waiting
            .get())
            == 1));
        conn.reset();
        assert!(wait_until(TEST_TIMEOUT, || state(&server, |s| s
            .connection_closes
            .get())
            > closes));
    });
}

#[test]
fn thread_pool_jobs_that_panic_are_a_500_and_the_pool_goes_on() {
    let server = start();
    for pool in ["one", "default"] {
        survives(&server, || {
            let r = get(server.addr, &format!("/pool/{pool}-panic"));
            assert_eq!(r.status, 500, "{pool}");
            // The one-thread pool's only worker survived its job's panic.
            let r = get(server.addr, &format!("/pool/{pool}-ok"));
            assert_eq!((r.status, r.text().as_str()), (200, "42"), "{pool}");
        });
    }
    // Many at once, panicking and not.
    survives(&server, || {
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let addr = server.addr;
                thread::spawn(move || {
                    let job = if i % 2 == 0 { "one-panic" } else { "one-ok" };
                    (i, get(addr, &format!("/pool/{job}")).status)
                })
            })
            .collect();
        for t in threads {
            let (i, status) = t.join().unwrap();
            assert_eq!(status, if i % 2 == 0 { 500 } else { 200 });
        }
    });
}

// ----- a proxy route and its upstream ---------------------------------------------------

/// What a raw upstream does with each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Reads, never answers, and waits for the client to close.
    Hang,
    /// Resets the connection as soon as it is accepted.
    ResetAtOnce,
    /// Reads the request head, then resets.
    ResetAfterRequest,
    /// Sends half a response, then resets.
    ResetMidResponse,
    /// Answers with a response head that is not HTTP, then closes.
    Garbage,
}

/// A misbehaving upstream on a thread of its own.
struct RawUpstream {
    /// Where it listens.
    addr: SocketAddr,
    /// Connections accepted.
    accepted: Arc<AtomicUsize>,
    /// Connections the client closed (a hanging upstream sees EOF).
    closed_by_client: Arc<AtomicUsize>,
    /// Set to stop accepting.
    stop: Arc<AtomicBool>,
    /// The accepting thread.
    thread: Option<thread::JoinHandle<()>>,
}

impl RawUpstream {
    fn start(behaviour: Behaviour) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed_by_client = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, c, s) = (accepted.clone(), closed_by_client.clone(), stop.clone());
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let c = c.clone();
                thread::spawn(move || serve_raw(stream, behaviour, &c));
            }
        });
        RawUpstream {
            addr,
            accepted,
            closed_by_client,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection of a raw upstream.
fn serve_raw(mut stream: TcpStream, behaviour: Behaviour, closed_by_client: &AtomicUsize) {
    stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    let reset = |stream: TcpStream| {
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        drop(stream);
    };
    if behaviour == Behaviour::ResetAtOnce {
        return reset(stream);
    }
    // Read the request head.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    match behaviour {
        Behaviour::Hang => loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => {
                    closed_by_client.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok(_) => {}
            }
        },
        Behaviour::ResetAfterRequest => reset(stream),
        Behaviour::ResetMidResponse => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf");
            let _ = stream.flush();
            thread::sleep(Duration::from_millis(20));
            reset(stream);
        }
        Behaviour::Garbage => {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n");
        }
        Behaviour::ResetAtOnce => unreachable!(),
    }
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn proxy_upstream_that_refuses_hangs_or_resets() {
    let good = start();
    let hang = RawUpstream::start(Behaviour::Hang);
    let reset_at_once = RawUpstream::start(Behaviour::ResetAtOnce);
    let reset_after_request = RawUpstream::start(Behaviour::ResetAfterRequest);
    let reset_mid_response = RawUpstream::start(Behaviour::ResetMidResponse);
    let garbage = RawUpstream::start(Behaviour::Garbage);
    let upstreams: HashMap<String, String> = [
        ("good", format!("http://{}/", good.addr)),
        ("refuse", format!("http://127.0.0.1:{}/", closed_port())),
        ("hang", hang.url()),
        ("reset-at-once", reset_at_once.url()),
        ("reset-after-request", reset_after_request.url()),
        ("reset-mid-response", reset_mid_response.url()),
        ("garbage", garbage.url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let server = start_with(upstreams);
    let idle = |server: &Served| {
        server.on_loop(|| {
            STATE.with(|s| {
                s.client
                    .borrow()
                    .as_ref()
                    .map_or(0, |c| c.idle_connections())
            })
        })
    };

    // The baseline: one good fetch leaves one pooled connection.
    let r = get(server.addr, "/proxy/good");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(idle(&server), 1);

    for (name, want) in [
        ("refuse", 502),
        ("hang", 504),
        ("reset-at-once", 502),
        ("reset-after-request", 502),
        ("reset-mid-response", 502),
        ("garbage", 502),
    ] {
        survives(&server, || {
            let r = get(server.addr, &format!("/proxy/{name}"));
            assert_eq!(r.status, want, "{name}: {}", r.text());
            // The good upstream is still reachable through the same pool.
            let r = get(server.addr, "/proxy/good");
            assert_eq!((r.status, r.text().as_str()), (200, "ok"), "after {name}");
        });
        // No failed connection was pooled, and the good one was reused.
        assert_eq!(idle(&server), 1, "idle connections after {name}");
    }
    // The hanging upstream's connection was closed by the client when it
    // timed out: nothing leaked on that side either.
    assert_eq!(hang.accepted.load(Ordering::SeqCst), 1);
    assert!(
        wait_until(TEST_TIMEOUT, || hang
            .closed_by_client
            .load(Ordering::SeqCst)
            == 1),
        "the timed-out upstream connection was left open"
    );
    // Several hanging requests at once all time out, and all close.
    survives(&server, || {
        let threads: Vec<_> = (0..5)
            .map(|_| {
                let addr = server.addr;
                thread::spawn(move || get(addr, "/proxy/hang").status)
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 504);
        }
    });
    assert!(wait_until(TEST_TIMEOUT, || hang
        .closed_by_client
        .load(Ordering::SeqCst)
        == hang.accepted.load(Ordering::SeqCst)));
    assert_eq!(idle(&server), 1);
    // The good upstream holds just the one pooled connection.
    assert_eq!(good.connection_count(), 1);
    // A client that leaves while the proxy waits on a hanging upstream.
    survives(&server, || {
        // The count before sending: read after, it may already hold the
        // proxy's connection (a busy machine can run the whole fetch
        // between the send and the read), and no increase would come.
        let accepted = hang.accepted.load(Ordering::SeqCst);
        let mut conn = Conn::connect(server.addr);
        conn.send(b"GET /proxy/hang HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(wait_until(TEST_TIMEOUT, || hang
            .accepted
            .load(Ordering::SeqCst)
            > accepted));
        conn.reset();
    });
    assert!(wait_until(TEST_TIMEOUT, || hang
        .closed_by_client
        .load(Ordering::SeqCst)
        == hang.accepted.load(Ordering::SeqCst)));
    assert_eq!(idle(&server), 1);
}

/// The `async_patterns` example with its `/proxy/<path>` forwarding to
/// `upstream` (1 s deadline).
fn start_example(upstream: String) -> Served {
    let config = async_patterns_app::Config {
        upstream,
        ocr_url: format!("http://127.0.0.1:{}/", closed_port()),
        upload_dir: std::env::temp_dir(),
        task: "true".to_string(),
        api_key: String::new(),
        api_secret: String::new(),
        upstream_timeout: Duration::from_secs(1),
        pool_size: 1,
        max_clients: 10,
    };
    Served::start(move || async_patterns_app::application(config).listen(0, Some("127.0.0.1")))
}

#[test]
fn the_examples_streaming_proxy_with_an_upstream_that_refuses_hangs_or_resets() {
    // Before any byte of the answer: 502 or 504.
    for (behaviour, want) in [
        (None, 502),
        (Some(Behaviour::Hang), 504),
        (Some(Behaviour::ResetAtOnce), 502),
        (Some(Behaviour::ResetAfterRequest), 502),
        (Some(Behaviour::Garbage), 502),
    ] {
        let upstream = behaviour.map(RawUpstream::start);
        let url = upstream.as_ref().map_or_else(
            || format!("http://127.0.0.1:{}", closed_port()),
            |u| format!("http://{}", u.addr),
        );
        let server = start_example(url);
        let addr = server.addr;
        let proxied = thread::spawn(move || get(addr, "/proxy/x").status);
        if let Some(upstream) = &upstream {
            assert!(wait_until(TEST_TIMEOUT, || upstream
                .accepted
                .load(Ordering::SeqCst)
                >= 1));
        }
        // The loop serves others meanwhile.
        assert_eq!(get(addr, "/").status, 200, "{behaviour:?}");
        assert_eq!(proxied.join().unwrap(), want, "{behaviour:?}");
        assert!(server.drains(), "{behaviour:?}: a connection was left open");
        if let Some(upstream) = &upstream {
            if behaviour == Some(Behaviour::Hang) {
                assert!(
                    wait_until(TEST_TIMEOUT, || upstream
                        .closed_by_client
                        .load(Ordering::SeqCst)
                        == 1),
                    "the timed-out upstream connection was left open"
                );
            }
        }
    }
    // Mid-answer: once the head was relayed, the client must see a cut
    // response (its Content-Length unmet), never a complete-looking one
    // (a 502 if the reset beat the head).
    let upstream = RawUpstream::start(Behaviour::ResetMidResponse);
    let server = start_example(format!("http://{}", upstream.addr));
    let mut conn = Conn::connect(server.addr);
    conn.send(b"GET /proxy/x HTTP/1.1\r\nHost: x\r\n\r\n");
    match conn.read_response("GET") {
        Err(ReadError::Closed(_)) => {}
        Ok(r) if r.status == 502 => {}
        other => panic!("a cut upstream answer was relayed as {other:?}"),
    }
    assert_eq!(get(server.addr, "/").status, 200);
    drop(conn);
    assert!(server.drains(), "a connection was left open");
}

// ----- TLS -----------------------------------------------------------------------------

/// The application over TLS, with a self-signed certificate.
fn start_tls() -> Served {
    Served::start(|| {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let cert = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
        let tls = TlsServerConfig::from_pem(
            cert.cert.pem().as_bytes(),
            cert.signing_key.serialize_pem().as_bytes(),
        )?;
        let server = HttpServer::new(application(HashMap::new())).with_tls(tls);
        server.listen(0, Some("127.0.0.1"))?;
        Ok(server)
    })
}

/// `GET path` over TLS (certificate not checked); the status and body.
fn tls_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = HttpClient::new()
        .fetch(
            HttpRequest::get(format!("https://{addr}{path}").as_str())
                .validate_cert(false)
                .raise_error(false)
                .request_timeout(TEST_TIMEOUT),
        )
        .unwrap_or_else(|e| panic!("GET {path} over TLS: {e}"));
    (response.code, response.text())
}

/// The first bytes of a TLS 1.2/1.3 ClientHello whose record claims 512
/// bytes: a peer that sends this and stops is mid-handshake.
const PARTIAL_CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, // handshake record, 512 bytes
    0x01, 0x00, 0x01, 0xfc, // ClientHello, 508 bytes
    0x03, 0x03, // TLS 1.2
    0x52, 0x61, 0x6e, 0x64, 0x6f, 0x6d, // the start of the random
];

#[test]
fn tls_peer_that_stops_mid_handshake() {
    let server = start_tls();
    assert_eq!(tls_get(server.addr, "/"), (200, "ok".to_string()));
    // Peers that go silent mid-handshake: before any byte, in the record
    // header, in the ClientHello.
    let mut stalled: Vec<TcpStream> = Vec::new();
    for bytes in [&[][..], &PARTIAL_CLIENT_HELLO[..3], PARTIAL_CLIENT_HELLO] {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.write_all(bytes).unwrap();
        stalled.push(stream);
    }
    // While they hang there, a bystander waits and others are served.
    let bystander = thread::spawn({
        let addr = server.addr;
        move || tls_get(addr, "/gate")
    });
    assert!(wait_until(TEST_TIMEOUT, || state(&server, |s| s
        .gate
        .borrow()
        .len())
        == 1));
    for _ in 0..3 {
        assert_eq!(tls_get(server.addr, "/"), (200, "ok".to_string()));
    }
    assert_eq!(tls_get(server.addr, "/release").0, 200);
    assert_eq!(bystander.join().unwrap(), (200, "released".to_string()));
    // A peer that stops mid-handshake and then resets, and one that sends
    // a ClientHello that is not one.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.write_all(PARTIAL_CLIENT_HELLO).unwrap();
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    stream
        .write_all(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\xff")
        .unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest); // an alert, then close
    assert_eq!(tls_get(server.addr, "/"), (200, "ok".to_string()));
    // Plain HTTP on the TLS port is closed, and the port goes on.
    let mut plain = Conn::connect(server.addr);
    plain.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(
        plain.read_response("GET"),
        Err(ReadError::Closed(_))
    ));
    assert_eq!(tls_get(server.addr, "/"), (200, "ok".to_string()));
    drop(stalled);
    assert!(server.drains(), "the server kept a connection open");
}
