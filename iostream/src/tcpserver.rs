//! [`TcpServer`]: accepts connections and hands each to your code as an
//! [`IoStream`] (Tornado's `TCPServer`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use whirl_ioloop::{with_timeout, HandlerId, Interest, IoLoop};

use crate::error::CloseReason;

use crate::netutil::{bind_sockets, Family, DEFAULT_BACKLOG};
use crate::stream::{IoStream, StreamOptions};
use crate::tls::TlsServerConfig;

/// Connections accepted per readiness event before yielding to the rest of
/// the loop (Tornado's `_DEFAULT_BACKLOG`-sized batch).
pub const ACCEPT_BATCH: usize = 128;
/// How long a TLS client may take to complete its handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long accepting pauses when the process is out of file descriptors.
pub const ACCEPT_PAUSE_ON_EMFILE: Duration = Duration::from_millis(500);
/// How long after its last EMFILE an out-of-fds episode can end (and a new
/// one be logged): 10 s. Without it, a server held at its limit by waves of
/// clients logs each time one wave leaves and the next arrives.
const OUT_OF_FDS_QUIET: Duration = Duration::from_secs(10);

/// The per-connection hook: called with each accepted stream and the peer's
/// address; the future it returns runs as a task. Shared, so that a TLS
/// connection can call it once its handshake is done without holding the
/// whole server.
type HandleStream = Rc<dyn Fn(IoStream, SocketAddr) -> Pin<Box<dyn Future<Output = ()>>>>;

/// A non-blocking TCP server: Tornado's `TCPServer`, with `handle_stream` given
/// as a closure returning a future.
///
/// `TcpServer` is a handle: clones control the same server. A listening
/// server keeps running when every handle is dropped, as in Tornado
/// (`server.listen(8888); IOLoop.current().start()`): its accept handlers,
/// which the loop owns, hold it. That is a deliberate cycle through the loop,
/// broken by [`stop`](TcpServer::stop) or [`IoLoop::close`], as a started
/// [`PeriodicCallback`](whirl_ioloop::PeriodicCallback) is. Connections
/// already accepted do not hold the server: each is a task of its own.
///
/// # Examples
///
/// ```
/// use whirl_ioloop::IoLoop;
/// use whirl_iostream::{IoStream, TcpServer};
///
/// let io_loop = IoLoop::new();
/// let server = TcpServer::new(|stream: IoStream, _peer| async move {
///     // An echo of one line.
///     if let Ok(line) = stream.read_until(b"\n", 1024).await {
///         let _ = stream.write(line).await;
///     }
/// });
/// let addrs = server.listen(0, Some("127.0.0.1")).unwrap();
/// let echoed = io_loop.run_sync(async move {
///     let client = IoStream::connect(addrs[0]).await.unwrap();
///     client.write("ping\n");
///     client.read_until(b"\n", 1024).await.unwrap()
/// });
/// assert_eq!(echoed, b"ping\n");
/// server.stop();
/// ```
#[derive(Clone)]
pub struct TcpServer {
    /// Shared with the accept handlers, which hold it strongly until `stop`.
    inner: Rc<ServerInner>,
}

/// A server's state.
struct ServerInner {
    /// The loop the listeners are registered with.
    io_loop: IoLoop,
    /// The per-connection hook.
    handle_stream: HandleStream,
    /// Listening sockets; `None` once stopped. Indices are stable.
    listeners: RefCell<Vec<Option<Listener>>>,
    /// Limits for accepted streams.
    options: Cell<StreamOptions>,
    /// True while accepting is paused after EMFILE.
    paused: Cell<bool>,
    /// During an out-of-fds episode, when accept last failed with EMFILE;
    /// `None` outside one. The episode starts (and is logged) at an EMFILE,
    /// and ends when a batch accepts connections and finds the queue empty
    /// [`OUT_OF_FDS_QUIET`] or more after the last EMFILE: logged once, not
    /// at every retry, nor each time freed descriptors let a few more
    /// clients in.
    out_of_fds: Cell<Option<Instant>>,
    /// TLS settings: when set, each connection completes a TLS handshake
    /// before `handle_stream` sees it.
    tls: RefCell<Option<TlsServerConfig>>,
}

/// One listening socket.
struct Listener {
    /// The socket.
    socket: mio::net::TcpListener,
    /// Its fd handler.
    id: HandlerId,
    /// Its bound address.
    local: SocketAddr,
}

impl TcpServer {
    /// A server that calls `handle_stream(stream, peer_addr)` for each
    /// connection and runs the returned future as a task. Tornado: subclass
    /// `TCPServer` and override `handle_stream`.
    pub fn new<F, Fut>(handle_stream: F) -> TcpServer
    where
        F: Fn(IoStream, SocketAddr) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        TcpServer {
            inner: Rc::new(ServerInner {
                io_loop: IoLoop::current(),
                handle_stream: Rc::new(move |stream, addr| Box::pin(handle_stream(stream, addr))),
                listeners: RefCell::new(Vec::new()),
                options: Cell::new(StreamOptions::default()),
                paused: Cell::new(false),
                out_of_fds: Cell::new(None),
                tls: RefCell::new(None),
            }),
        }
    }

    /// Sets the limits of accepted streams. Default is
    /// [`StreamOptions::default`]. Tornado: `max_buffer_size`,
    /// `read_chunk_size`.
    pub fn with_stream_options(self, options: StreamOptions) -> TcpServer {
        self.inner.options.set(options);
        self
    }

    /// Serves TLS: each accepted connection completes a handshake before it
    /// reaches `handle_stream`; one that fails (plain text, bad client) is
    /// logged at debug level and closed, and nothing else is affected.
    /// Default is plain TCP. Tornado: `TCPServer(ssl_options=…)`.
    pub fn with_tls(self, config: TlsServerConfig) -> TcpServer {
        *self.inner.tls.borrow_mut() = Some(config);
        self
    }

    /// Binds `port` on `address` (`None`: every interface) and starts
    /// accepting; returns the bound addresses (port 0 picks a free port).
    /// The server then listens until [`stop`](TcpServer::stop) or
    /// [`IoLoop::close`], whether or not a handle is kept. Tornado:
    /// `listen(port, address)`.
    ///
    /// # Errors
    ///
    /// The errors of [`bind_sockets`] and of registering with the loop.
    pub fn listen(&self, port: u16, address: Option<&str>) -> io::Result<Vec<SocketAddr>> {
        let sockets = bind_sockets(port, address, Family::Any, DEFAULT_BACKLOG, false)?;
        self.add_sockets(sockets)
    }

    /// Starts accepting on already bound, listening sockets (e.g. from
    /// [`bind_sockets`] with `reuse_port`), until [`stop`](TcpServer::stop)
    /// or [`IoLoop::close`]. Tornado: `add_sockets`.
    ///
    /// # Errors
    ///
    /// The error of making a socket non-blocking or registering it.
    pub fn add_sockets(&self, sockets: Vec<std::net::TcpListener>) -> io::Result<Vec<SocketAddr>> {
        let mut addrs = Vec::new();
        for socket in sockets {
            socket.set_nonblocking(true)?;
            let local = socket.local_addr()?;
            let mut socket = mio::net::TcpListener::from_std(socket);
            let index = self.inner.listeners.borrow().len();
            // Holds the server strongly: see the type's docs.
            let server = self.inner.clone();
            let id =
                self.inner
                    .io_loop
                    .add_handler(&mut socket, Interest::READABLE, move |_| {
                        accept_batch(&server, index)
                    })?;
            self.inner
                .listeners
                .borrow_mut()
                .push(Some(Listener { socket, id, local }));
            addrs.push(local);
        }
        Ok(addrs)
    }

    /// The addresses being listened on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner
            .listeners
            .borrow()
            .iter()
            .flatten()
            .map(|l| l.local)
            .collect()
    }

    /// Stops listening: the sockets are closed; connections already accepted
    /// go on. The loop lets go of the server (which is freed once no handle
    /// is left). Tornado: `stop()`.
    pub fn stop(&self) {
        let listeners: Vec<Listener> = self
            .inner
            .listeners
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for mut listener in listeners {
            let _ = self
                .inner
                .io_loop
                .remove_handler(listener.id, &mut listener.socket);
        }
    }
}

/// Accepts up to [`ACCEPT_BATCH`] connections from listener `index`, then
/// schedules itself again if more may be waiting (readiness is edge-triggered,
/// so stopping early must not lose the rest).
fn accept_batch(server: &Rc<ServerInner>, index: usize) {
    if server.paused.get() {
        return;
    }
    let mut accepted_any = false;
    for _ in 0..ACCEPT_BATCH {
        let accepted = match server.listeners.borrow().get(index) {
            Some(Some(listener)) => listener.socket.accept(),
            _ => return, // stopped
        };
        match accepted {
            Ok((socket, peer)) => {
                accepted_any = true;
                match IoStream::with_options(socket, server.options.get()) {
                    Ok(stream) => start_connection(server, stream, peer),
                    Err(e) => log::warn!("cannot register connection from {peer}: {e}"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Caught up: an out-of-fds episode can end here. (A listener
                // with nobody waiting proves nothing, so not on it.)
                if accepted_any {
                    end_out_of_fds(server);
                }
                return;
            }
            Err(e) if is_out_of_fds(&e) => {
                // Spinning on EMFILE would burn a core: pause, log once per
                // episode, retry.
                if server.out_of_fds.replace(Some(Instant::now())).is_none() {
                    log::error!(
                        "accept failed: {e}; pausing accepts for {:?}",
                        ACCEPT_PAUSE_ON_EMFILE
                    );
                }
                pause_accepting(server);
                return;
            }
            // ECONNABORTED and friends concern one connection only.
            Err(e) => log::debug!("accept failed: {e}"),
        }
    }
    let again = server.clone();
    server
        .io_loop
        .add_callback(move || accept_batch(&again, index));
}

/// Ends an out-of-fds episode, if one is on and its last EMFILE is
/// [`OUT_OF_FDS_QUIET`] old: called when a batch let every waiting client in.
fn end_out_of_fds(server: &ServerInner) {
    let Some(last) = server.out_of_fds.get() else {
        return;
    };
    let quiet = last.elapsed();
    if quiet >= OUT_OF_FDS_QUIET {
        server.out_of_fds.set(None);
        log::info!("accepting normally again: no EMFILE for {quiet:.1?}");
    }
}

/// Stops accepting on every listener for [`ACCEPT_PAUSE_ON_EMFILE`], then
/// resumes on every listener: while paused, the readiness events of all of
/// them were consumed unanswered, and edge-triggered readiness will not
/// report their waiting connections again.
fn pause_accepting(server: &Rc<ServerInner>) {
    server.paused.set(true);
    let resumed = server.clone();
    server.io_loop.call_later(ACCEPT_PAUSE_ON_EMFILE, move || {
        resumed.paused.set(false);
        let count = resumed.listeners.borrow().len();
        for index in 0..count {
            // A listener that runs out again pauses all of them; the
            // next resume retries every one.
            accept_batch(&resumed, index);
        }
    });
}

/// Hands an accepted stream to `handle_stream` as a task of its own; with
/// TLS, after the handshake. The task holds the hook, never the server, so
/// a connection does not keep a stopped server alive.
fn start_connection(server: &ServerInner, stream: IoStream, peer: SocketAddr) {
    let tls = server.tls.borrow().clone();
    let Some(tls) = tls else {
        drop(server.io_loop.spawn((server.handle_stream)(stream, peer)));
        return;
    };
    let handle_stream = server.handle_stream.clone();
    drop(server.io_loop.spawn(async move {
        match with_timeout(TLS_HANDSHAKE_TIMEOUT, stream.start_tls_server(&tls)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                log::debug!("TLS handshake with {peer} failed: {e}");
                return;
            }
            Err(_) => {
                log::debug!("TLS handshake with {peer} timed out");
                stream.close_with_reason(CloseReason::Timeout);
                return;
            }
        }
        // As on the plain path: the hook makes the connection's future and
        // is let go before that future runs.
        let connection = handle_stream(stream, peer);
        drop(handle_stream);
        connection.await;
    }));
}

/// Whether `e` is EMFILE or ENFILE (out of file descriptors).
fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24))
}

impl fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpServer")
            .field("local_addrs", &self.local_addrs())
            .field("paused", &self.inner.paused.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use whirl_ioloop::sleep;

    use super::*;

    #[test]
    fn after_an_emfile_pause_every_listener_is_retried() {
        // While accepting is paused (as after EMFILE on one listener), the
        // readiness events of *every* listener are consumed unanswered, and
        // edge-triggered readiness will not repeat them: the resume must
        // retry each listener, not only the one that ran out.
        let io_loop = IoLoop::new();
        let accepted = Rc::new(Cell::new(0));
        let count = accepted.clone();
        let server = TcpServer::new(move |_stream: IoStream, _peer| {
            count.set(count.get() + 1);
            async {}
        });
        let sockets: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let addrs = server.add_sockets(sockets).expect("add_sockets");
        pause_accepting(&server.inner);
        // One client per listener, waiting in its backlog; their readiness
        // events arrive while the server is paused.
        let clients: Vec<TcpStream> = addrs
            .iter()
            .map(|addr| TcpStream::connect(addr).expect("connect"))
            .collect();
        let outcome = io_loop.run_sync_timeout(
            async {
                while accepted.get() < clients.len() {
                    sleep(Duration::from_millis(5)).await;
                }
            },
            Duration::from_secs(60),
        );
        assert!(
            outcome.is_ok(),
            "accepted {} of {} after the pause",
            accepted.get(),
            clients.len()
        );
        server.stop();
        io_loop.close();
    }
}
