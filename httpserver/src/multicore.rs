//! Multi-core serving: [`serve_threads`] runs N threads, each with its own
//! [`IoLoop`], its own [`HttpServer`] and its own `SO_REUSEPORT` listener on
//! one port — shared nothing. Tornado's `reuse_port` deployment
//! (`bind_sockets(reuse_port=True)` in each process), with threads for
//! processes.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use whirl_ioloop::{IoLoop, LoopHandle};
use whirl_iostream::netutil::{bind_sockets, Family, DEFAULT_BACKLOG};

use crate::server::HttpServer;
use crate::shutdown::drain;

/// How long a stopping thread waits for responses in flight before it drops
/// the connections still open, unless [`ServerThreads::stop_within`] says
/// otherwise: 10 s. Also a sensible deadline for
/// [`shutdown_on_signals`](crate::shutdown_on_signals).
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP on `threads` threads sharing one port: each thread creates
/// its own [`IoLoop`], calls `make_server` for its own [`HttpServer`], and
/// accepts on its own listening socket bound with `SO_REUSEPORT` to `port`
/// on `address` (`None`: every interface). Returns once every thread is
/// accepting. Tornado: `HTTPServer.start(n)` after `bind(port, reuse_port=True)`,
/// with threads for processes.
///
/// `threads` 0 means one per CPU (Tornado's `start(0)`). With `port` 0 the
/// first socket picks a free port and the others share it; read it from
/// [`ServerThreads::port`]. The kernel spreads connections over the sockets
/// (on Linux by a hash of the client's address and port; other systems may
/// hand them all to one). Nothing is shared between the threads but what
/// `make_server`'s closure captures.
///
/// # Errors
///
/// The errors of binding (`AddrInUse` when the port is taken), of creating
/// a loop or of registering the sockets; a thread whose `make_server`
/// panicked. Threads already started are stopped first.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::{serve_threads, HttpHeaders, HttpServer, ResponseStartLine, Version};
///
/// let servers = serve_threads(2, 0, Some("127.0.0.1"), || {
///     HttpServer::from_fn(|_request, connection| {
///         let mut headers = HttpHeaders::new();
///         headers.insert("Content-Length", "2");
///         let ok = ResponseStartLine { version: Version::Http11, code: 200, reason: "OK".into() };
///         let _ = connection.write_headers(&ok, &headers);
///         let _ = connection.write("ok");
///         let _ = connection.finish();
///     })
/// })
/// .unwrap();
/// assert_ne!(servers.port(), 0);
/// servers.stop();
/// servers.join().unwrap();
/// ```
pub fn serve_threads<F>(
    threads: usize,
    port: u16,
    address: Option<&str>,
    make_server: F,
) -> io::Result<ServerThreads>
where
    F: Fn() -> HttpServer + Send + Sync + 'static,
{
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // Step 1. Bind every socket here, so errors come back to the caller and
    // port 0 resolves to one port for all.
    let reuse_port = threads > 1;
    let first = bind_sockets(port, address, Family::Any, DEFAULT_BACKLOG, reuse_port)?;
    let local_addrs = first
        .iter()
        .map(std::net::TcpListener::local_addr)
        .collect::<io::Result<Vec<_>>>()?;
    let port = local_addrs[0].port();
    let mut socket_sets = vec![first];
    for _ in 1..threads {
        socket_sets.push(bind_sockets(
            port,
            address,
            Family::Any,
            DEFAULT_BACKLOG,
            true,
        )?);
    }

    // Step 2. One thread per set; each reports its loop handle once it
    // accepts, or why it cannot.
    let make_server = Arc::new(make_server);
    let mut servers = ServerThreads {
        local_addrs,
        workers: Vec::new(),
        stopped: AtomicBool::new(false),
        drain_timeout: Arc::new(Mutex::new(SHUTDOWN_TIMEOUT)),
    };
    for (index, listeners) in socket_sets.into_iter().enumerate() {
        let (ready_tx, ready_rx) = mpsc::channel();
        let make_server = make_server.clone();
        let drain_timeout = servers.drain_timeout.clone();
        let thread = std::thread::Builder::new()
            .name(format!("whirl-http-{index}"))
            .spawn(move || run_thread(listeners, &*make_server, &drain_timeout, &ready_tx))?;
        match ready_rx.recv() {
            Ok(Ok(handle)) => servers.workers.push(Worker {
                handle,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(io::Error::other(format!(
                    "server thread {index} panicked while starting"
                )));
            }
        }
    }
    Ok(servers)
}

/// The body of one server thread: a loop, a server on `listeners`, then a
/// graceful stop, within `drain_timeout` as it is then, once the loop is
/// asked to stop.
fn run_thread(
    listeners: Vec<std::net::TcpListener>,
    make_server: &dyn Fn() -> HttpServer,
    drain_timeout: &Mutex<Duration>,
    ready: &mpsc::Sender<io::Result<LoopHandle>>,
) {
    let io_loop = match IoLoop::try_new() {
        Ok(io_loop) => io_loop,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    io_loop.make_current();
    let server = make_server();
    if let Err(e) = server.add_sockets(listeners) {
        let _ = ready.send(Err(e));
        return;
    }
    let _ = ready.send(Ok(io_loop.handle()));
    io_loop.start();
    // Stop accepting, let responses in flight finish, then close the rest.
    let timeout = *drain_timeout.lock().unwrap_or_else(PoisonError::into_inner);
    io_loop.run_sync(drain(&server, timeout));
    io_loop.close();
}

/// The threads started by [`serve_threads`]: where they listen, and how to
/// stop them and wait for them.
///
/// Dropping it stops every thread and waits for each to finish.
pub struct ServerThreads {
    /// The bound addresses (one per address `address` resolved to; every
    /// thread has a socket on each).
    local_addrs: Vec<SocketAddr>,
    /// One per thread.
    workers: Vec<Worker>,
    /// Set by the first `stop`: each loop is asked once (a second stop
    /// would cut its graceful shutdown short).
    stopped: AtomicBool,
    /// How long each thread waits for responses in flight once stopped;
    /// set before the loops are asked to stop, read by each thread after.
    drain_timeout: Arc<Mutex<Duration>>,
}

/// One server thread.
struct Worker {
    /// Reaches the thread's loop.
    handle: LoopHandle,
    /// The thread; `None` once joined.
    thread: Option<JoinHandle<()>>,
}

impl ServerThreads {
    /// The port every thread listens on.
    pub fn port(&self) -> u16 {
        self.local_addrs[0].port()
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Number of server threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Asks every thread to stop: each stops accepting, waits up to
    /// [`SHUTDOWN_TIMEOUT`] for the responses in flight, closes its
    /// connections and ends. Returns at once; [`join`](ServerThreads::join)
    /// waits; calling it again does nothing. Tornado: `IOLoop.stop()` on
    /// each.
    pub fn stop(&self) {
        self.stop_within(SHUTDOWN_TIMEOUT);
    }

    /// As [`stop`](ServerThreads::stop), giving the responses in flight up
    /// to `timeout` instead: each thread [`drain`]s its server.
    pub fn stop_within(&self, timeout: Duration) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        *self
            .drain_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = timeout;
        for worker in &self.workers {
            worker.handle.stop();
        }
    }

    /// Waits for every thread to end (after [`stop`](ServerThreads::stop),
    /// or forever).
    ///
    /// # Errors
    ///
    /// If a thread panicked.
    pub fn join(mut self) -> io::Result<()> {
        self.join_all()
    }

    /// Joins the threads not joined yet.
    fn join_all(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for (index, worker) in self.workers.iter_mut().enumerate() {
            if let Some(thread) = worker.thread.take() {
                if thread.join().is_err() {
                    result = Err(io::Error::other(format!("server thread {index} panicked")));
                }
            }
        }
        result
    }
}

impl Drop for ServerThreads {
    fn drop(&mut self) {
        if self.workers.iter().any(|w| w.thread.is_some()) {
            self.stop();
            let _ = self.join_all();
        }
    }
}

impl fmt::Debug for ServerThreads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerThreads")
            .field("local_addrs", &self.local_addrs)
            .field("threads", &self.workers.len())
            .finish()
    }
}
