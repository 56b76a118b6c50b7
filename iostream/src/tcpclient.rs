//! [`TcpClient`]: outgoing TCP connections (Tornado's `tcpclient`): the
//! client, its options and errors, and the happy-eyeballs race
//! ([`Connector`], Tornado's `_Connector`).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use whirl_ioloop::{sleep_until, with_timeout, Sleep};

use crate::resolver::Resolver;
use crate::stream::{IoStream, StreamOptions};
use crate::tls::TlsClientConfig;

/// Default for [`ConnectOptions::timeout`]: 20 s (the connect timeout of
/// Tornado's HTTP clients; Tornado's `TCPClient` itself has none).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Default for [`ConnectOptions::happy_eyeballs_delay`]: 0.3 s, the head start
/// the first address family gets before the other one is tried in parallel
/// (Tornado's `_INITIAL_CONNECT_TIMEOUT`; RFC 8305 recommends 250 ms).
pub const HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(300);

/// Opens TCP connections by host name: Tornado's `TCPClient`.
///
/// A connection is made in three steps, all under one deadline
/// ([`ConnectOptions::timeout`]):
///
/// 1. the [`Resolver`] turns the host name into addresses (off the loop);
/// 2. the addresses are raced "happy eyeballs" style (RFC 8305 in spirit,
///    as Tornado does): the family of the first address goes first, one
///    address after another as each fails; the other family joins in
///    parallel, also one address at a time, after a [`HAPPY_EYEBALLS_DELAY`]
///    head start or as soon as a first attempt fails; the first connection
///    made wins and the attempts still in flight are closed;
/// 3. if [TLS](ConnectOptions::tls) is asked for, the handshake.
///
/// The connected [`IoStream`] is handed back. Clones of a `TcpClient` are
/// cheap and share the resolver.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use whirl_ioloop::IoLoop;
/// use whirl_iostream::TcpClient;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let port = listener.local_addr().unwrap().port();
/// let server = std::thread::spawn(move || {
///     let (mut peer, _) = listener.accept().unwrap();
///     let mut buf = [0; 5];
///     peer.read_exact(&mut buf).unwrap();
///     peer.write_all(&buf).unwrap();
/// });
///
/// IoLoop::new().run_sync(async {
///     let stream = TcpClient::new().connect("127.0.0.1", port).await.unwrap();
///     stream.write("hello").await.unwrap();
///     assert_eq!(stream.read_bytes(5, false).await.unwrap(), b"hello");
/// });
/// server.join().unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct TcpClient {
    /// Turns host names into addresses.
    resolver: Resolver,
}

impl TcpClient {
    /// A client that resolves with the system resolver on the thread pool.
    /// Tornado: `TCPClient()`.
    pub fn new() -> TcpClient {
        TcpClient::default()
    }

    /// A client that resolves through `resolver` (e.g. one with overrides).
    /// Tornado: `TCPClient(resolver=…)`.
    pub fn with_resolver(resolver: Resolver) -> TcpClient {
        TcpClient { resolver }
    }

    /// The resolver this client uses.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// Connects to `host` (a name or an IP literal) on `port` with the default
    /// [`ConnectOptions`]. Tornado: `TCPClient.connect(host, port)`.
    ///
    /// # Errors
    ///
    /// See [`connect_with`](TcpClient::connect_with).
    pub async fn connect(&self, host: &str, port: u16) -> Result<IoStream, ConnectError> {
        self.connect_with(host, port, &ConnectOptions::default())
            .await
    }

    /// Connects to `host` on `port` with `options`: resolves, races the
    /// addresses, then completes TLS if [`ConnectOptions::tls`] is set — all
    /// within [`ConnectOptions::timeout`]. Tornado: `TCPClient.connect(host,
    /// port, ssl_options=…, timeout=…, source_ip=…, source_port=…,
    /// max_buffer_size=…)`.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Resolve`] if the name does not resolve;
    /// [`ConnectError::Connect`], naming every address tried and its error, if
    /// no connection could be made; [`ConnectError::Timeout`] if the deadline
    /// passed first; [`ConnectError::Tls`] if the TLS handshake failed.
    pub async fn connect_with(
        &self,
        host: &str,
        port: u16,
        options: &ConnectOptions,
    ) -> Result<IoStream, ConnectError> {
        let connecting = self.connect_within_deadline(host, port, options);
        // A timeout too large to be a deadline means no deadline.
        if Instant::now().checked_add(options.timeout).is_none() {
            return connecting.await;
        }
        match with_timeout(options.timeout, connecting).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::Timeout {
                host: host.to_owned(),
                port,
                timeout: options.timeout,
            }),
        }
    }

    /// The three steps of a connection; the caller enforces the deadline.
    async fn connect_within_deadline(
        &self,
        host: &str,
        port: u16,
        options: &ConnectOptions,
    ) -> Result<IoStream, ConnectError> {
        // Step 1. Resolve (off the loop thread).
        let resolved = self.resolver.resolve(host, port).await;
        let addrs = resolved.map_err(|source| ConnectError::Resolve {
            host: host.to_owned(),
            port,
            source,
        })?;

        // Step 2. Race the addresses; the losers are closed.
        let source = (options.source_ip, options.source_port);
        let stream_options = options.stream_options;
        let connect = move |addr| connect_one(addr, source, stream_options);
        let stream = Connector::new(addrs, options.happy_eyeballs_delay, connect)
            .await
            .map_err(|attempts| ConnectError::Connect {
                host: host.to_owned(),
                port,
                attempts,
            })?;

        // Step 3. TLS, for the name asked (or the one given for SNI).
        if let Some(tls) = &options.tls {
            let server_name = options.server_hostname.as_deref().unwrap_or(host);
            stream
                .start_tls_client(tls, server_name)
                .await
                .map_err(|e| ConnectError::Tls {
                    host: host.to_owned(),
                    port,
                    source: e.into(),
                })?;
        }
        Ok(stream)
    }
}

/// How [`TcpClient::connect_with`] connects: the keyword arguments of
/// Tornado's `TCPClient.connect`. Build with [`ConnectOptions::new`] and the
/// setters.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use whirl_iostream::{ConnectOptions, StreamOptions};
///
/// let options = ConnectOptions::new()
///     .timeout(Duration::from_secs(5))
///     .source_ip("127.0.0.1".parse().unwrap())
///     .stream_options(StreamOptions::default().max_buffer_size(1 << 20));
/// assert_eq!(options.source_port, None);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Deadline for the whole connection: resolution, connecting and the TLS
    /// handshake.
    pub timeout: Duration,
    /// Head start of the first address family before the other joins.
    pub happy_eyeballs_delay: Duration,
    /// Local address to connect from; `None` lets the OS choose.
    pub source_ip: Option<IpAddr>,
    /// Local port to connect from; `None` lets the OS choose.
    pub source_port: Option<u16>,
    /// Limits of the stream handed back.
    pub stream_options: StreamOptions,
    /// TLS settings; `None` for a plain connection.
    pub tls: Option<TlsClientConfig>,
    /// Name sent as SNI and checked against the certificate; `None` uses the
    /// host connected to.
    pub server_hostname: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: DEFAULT_CONNECT_TIMEOUT,
            happy_eyeballs_delay: HAPPY_EYEBALLS_DELAY,
            source_ip: None,
            source_port: None,
            stream_options: StreamOptions::default(),
            tls: None,
            server_hostname: None,
        }
    }
}

impl ConnectOptions {
    /// The defaults: 20 s timeout, 0.3 s head start, any source address,
    /// default stream limits, no TLS.
    pub fn new() -> ConnectOptions {
        ConnectOptions::default()
    }

    /// Sets the deadline for resolving, connecting and the TLS handshake
    /// together (Tornado: `timeout`). Default is `20 s`
    /// ([`DEFAULT_CONNECT_TIMEOUT`]); `Duration::MAX` means none.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the head start the first address family gets before the other
    /// family is tried in parallel (Tornado: `_INITIAL_CONNECT_TIMEOUT`).
    /// Default is `300 ms` ([`HAPPY_EYEBALLS_DELAY`]).
    pub fn happy_eyeballs_delay(mut self, delay: Duration) -> Self {
        self.happy_eyeballs_delay = delay;
        self
    }

    /// Connects from this local address (Tornado: `source_ip`). Addresses of
    /// the other family then fail without a syscall, so the ones of this
    /// family are tried at once. Default is `None` (the OS chooses).
    pub fn source_ip(mut self, ip: IpAddr) -> Self {
        self.source_ip = Some(ip);
        self
    }

    /// Connects from this local port (Tornado: `source_port`), on the
    /// [`source_ip`](ConnectOptions::source_ip) if set, else on the
    /// unspecified address of each attempt's family (Tornado binds loopback
    /// there, which cannot reach other hosts). The socket has `SO_REUSEADDR`,
    /// so a port left in `TIME_WAIT` can be reused. Default is `None` (the OS
    /// chooses).
    pub fn source_port(mut self, port: u16) -> Self {
        self.source_port = Some(port);
        self
    }

    /// Sets the limits of the stream handed back (Tornado: `max_buffer_size`).
    /// Default is `StreamOptions::default()`.
    pub fn stream_options(mut self, options: StreamOptions) -> Self {
        self.stream_options = options;
        self
    }

    /// Completes a TLS handshake before handing the stream back (Tornado:
    /// `ssl_options`). Default is `None` (plain TCP).
    pub fn tls(mut self, config: TlsClientConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Sets the name sent as SNI and checked against the server's
    /// certificate (Tornado: `server_hostname`). Default is `None` (the host
    /// connected to).
    pub fn server_hostname(mut self, name: impl Into<String>) -> Self {
        self.server_hostname = Some(name.into());
        self
    }
}

/// Why [`TcpClient::connect`] failed. Each variant names the host and port
/// asked for; [`source`](std::error::Error::source) is the underlying error.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The host name did not resolve (Tornado lets `socket.gaierror` through).
    Resolve {
        /// The host asked for.
        host: String,
        /// The port asked for.
        port: u16,
        /// The resolver's error.
        source: io::Error,
    },
    /// Every resolved address was tried and none connected (Tornado raises
    /// the last error).
    Connect {
        /// The host asked for.
        host: String,
        /// The port asked for.
        port: u16,
        /// Each address tried and why it failed, in the order they failed.
        attempts: Vec<(SocketAddr, io::Error)>,
    },
    /// The deadline passed before a connection was made (Tornado:
    /// `TimeoutError`); every attempt was abandoned.
    Timeout {
        /// The host asked for.
        host: String,
        /// The port asked for.
        port: u16,
        /// The deadline that passed.
        timeout: Duration,
    },
    /// The connection was made but the TLS handshake failed; the stream is
    /// closed.
    Tls {
        /// The host asked for.
        host: String,
        /// The port asked for.
        port: u16,
        /// The handshake error.
        source: io::Error,
    },
}

impl ConnectError {
    /// The host the connection was for.
    pub fn host(&self) -> &str {
        match self {
            ConnectError::Resolve { host, .. }
            | ConnectError::Connect { host, .. }
            | ConnectError::Timeout { host, .. }
            | ConnectError::Tls { host, .. } => host,
        }
    }

    /// The port the connection was for.
    pub fn port(&self) -> u16 {
        match self {
            ConnectError::Resolve { port, .. }
            | ConnectError::Connect { port, .. }
            | ConnectError::Timeout { port, .. }
            | ConnectError::Tls { port, .. } => *port,
        }
    }

    /// The kind an `io::Error` made from this error has: the last attempt's
    /// for `Connect`, `TimedOut` for `Timeout`.
    fn io_kind(&self) -> io::ErrorKind {
        match self {
            ConnectError::Resolve { source, .. } | ConnectError::Tls { source, .. } => {
                source.kind()
            }
            ConnectError::Connect { attempts, .. } => attempts
                .last()
                .map_or(io::ErrorKind::NotConnected, |(_, e)| e.kind()),
            ConnectError::Timeout { .. } => io::ErrorKind::TimedOut,
        }
    }
}

/// `host:port`, with an IPv6 literal in brackets.
struct HostPort<'a>(&'a str, u16);

impl fmt::Display for HostPort<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(':') && !self.0.starts_with('[') {
            write!(f, "[{}]:{}", self.0, self.1)
        } else {
            write!(f, "{}:{}", self.0, self.1)
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = HostPort(self.host(), self.port());
        match self {
            ConnectError::Resolve { source, .. } => write!(f, "cannot resolve {target}: {source}"),
            ConnectError::Connect { attempts, .. } if attempts.is_empty() => {
                write!(f, "cannot connect to {target}: no address was tried")
            }
            ConnectError::Connect { attempts, .. } => {
                write!(f, "cannot connect to {target} (")?;
                for (i, (addr, e)) in attempts.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{addr}: {e}")?;
                }
                write!(f, ")")
            }
            ConnectError::Timeout { timeout, .. } => {
                write!(f, "connecting to {target} timed out after {timeout:?}")
            }
            ConnectError::Tls { source, .. } => {
                write!(f, "the TLS handshake with {target} failed: {source}")
            }
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Resolve { source, .. } | ConnectError::Tls { source, .. } => Some(source),
            ConnectError::Connect { attempts, .. } => attempts.last().map(|(_, e)| e as _),
            ConnectError::Timeout { .. } => None,
        }
    }
}

impl From<ConnectError> for io::Error {
    /// An `io::Error` of the matching kind that carries the `ConnectError`
    /// (get it back with `get_ref` and `downcast_ref`).
    fn from(e: ConnectError) -> io::Error {
        io::Error::new(e.io_kind(), e)
    }
}

// ----- one attempt ---------------------------------------------------------------

/// Connects to `addr`, from `source` (ip, port) if either is given, and waits
/// for the connection. Nothing happens until the future is first polled;
/// dropping it closes the socket.
async fn connect_one(
    addr: SocketAddr,
    source: (Option<IpAddr>, Option<u16>),
    options: StreamOptions,
) -> io::Result<IoStream> {
    let socket = match source {
        (None, None) => mio::net::TcpStream::connect(addr)?,
        (ip, port) => connect_from(addr, ip, port.unwrap_or(0))?,
    };
    IoStream::from_connecting(socket, options).await
}

/// Starts a non-blocking connect to `addr` from a bound local address.
fn connect_from(
    addr: SocketAddr,
    ip: Option<IpAddr>,
    port: u16,
) -> io::Result<mio::net::TcpStream> {
    let ip = match ip {
        Some(ip) if ip.is_ipv4() != addr.is_ipv4() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("source address {ip} is not of {addr}'s address family"),
            ));
        }
        Some(ip) => ip,
        None if addr.is_ipv4() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if port != 0 {
        socket.set_reuse_address(true)?;
    }
    socket.bind(&SocketAddr::new(ip, port).into())?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if is_in_progress(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(socket.into()))
}

/// Whether a non-blocking `connect` error only means "under way".
fn is_in_progress(e: &io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) {
        return true;
    }
    e.kind() == io::ErrorKind::WouldBlock
}

// ----- the race ------------------------------------------------------------------

/// Index of the first address family's chain in [`Connector::chains`].
const PRIMARY: usize = 0;
/// Index of the other family's chain.
const SECONDARY: usize = 1;

/// One family's addresses, tried one after another.
struct Chain<Fut> {
    /// Addresses not yet tried, in order.
    queue: VecDeque<SocketAddr>,
    /// The attempt in flight, if any, and its address.
    attempt: Option<(SocketAddr, Pin<Box<Fut>>)>,
}

/// Races connection attempts over resolved addresses: Tornado's
/// `_Connector`, a future that yields the first connection made or every
/// attempt's error.
///
/// Invariants: at most one attempt per family is in flight; the secondary
/// chain starts only once `head_start` is [`HeadStart::Over`]; when the
/// future completes or is dropped, every attempt still in flight is dropped —
/// closing its socket.
struct Connector<F, Fut> {
    /// `[PRIMARY, SECONDARY]`: the first address's family, and the other one.
    chains: [Chain<Fut>; 2],
    /// Whether the secondary chain may start yet.
    head_start: HeadStart,
    /// Failed attempts, in the order they failed.
    failures: Vec<(SocketAddr, io::Error)>,
    /// Makes the attempt for an address, when its turn comes.
    connect: F,
}

/// The primary family's head start over the secondary.
enum HeadStart {
    /// Until this timer fires or a primary attempt fails.
    Running(Sleep),
    /// Until a primary attempt fails (the delay is too long to be a deadline).
    UntilFailure,
    /// The secondary chain may run (or there is none).
    Over,
}

impl<T, F, Fut> Connector<F, Fut>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    /// A race over `addrs` (in order of preference), split by family.
    fn new(addrs: Vec<SocketAddr>, delay: Duration, connect: F) -> Self {
        let primary_is_v4 = addrs.first().is_some_and(SocketAddr::is_ipv4);
        let (primary, secondary): (VecDeque<_>, VecDeque<_>) = addrs
            .into_iter()
            .partition(|a| a.is_ipv4() == primary_is_v4);
        let head_start = match Instant::now().checked_add(delay) {
            _ if secondary.is_empty() => HeadStart::Over,
            Some(deadline) => HeadStart::Running(sleep_until(deadline)),
            None => HeadStart::UntilFailure,
        };
        Connector {
            chains: [
                Chain {
                    queue: primary,
                    attempt: None,
                },
                Chain {
                    queue: secondary,
                    attempt: None,
                },
            ],
            head_start,
            failures: Vec::new(),
            connect,
        }
    }

    /// Whether `chain` may have an attempt in flight now.
    fn may_run(&self, chain: usize) -> bool {
        chain == PRIMARY || matches!(self.head_start, HeadStart::Over)
    }
}

impl<T, F, Fut> Future for Connector<F, Fut>
where
    F: FnMut(SocketAddr) -> Fut + Unpin,
    Fut: Future<Output = io::Result<T>>,
{
    type Output = Result<T, Vec<(SocketAddr, io::Error)>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            // Step 1. The secondary family's head start may be over.
            if let HeadStart::Running(sleep) = &mut this.head_start {
                if Pin::new(sleep).poll(cx).is_ready() {
                    this.head_start = HeadStart::Over;
                }
            }

            // Step 2. Start the next attempt of each chain that may run and
            // has none in flight (the primary first, as Tornado does).
            for chain in [PRIMARY, SECONDARY] {
                if !this.may_run(chain) || this.chains[chain].attempt.is_some() {
                    continue;
                }
                if let Some(addr) = this.chains[chain].queue.pop_front() {
                    log::debug!("connecting to {addr}");
                    this.chains[chain].attempt = Some((addr, Box::pin((this.connect)(addr))));
                }
            }

            // Step 3. Poll the attempts in flight: the first connection wins
            // and the others are dropped (closed).
            let mut failed = false;
            for chain in [PRIMARY, SECONDARY] {
                let Some((addr, attempt)) = &mut this.chains[chain].attempt else {
                    continue;
                };
                match attempt.as_mut().poll(cx) {
                    Poll::Pending => {}
                    Poll::Ready(Ok(connection)) => {
                        log::debug!("connected to {addr}");
                        for chain in &mut this.chains {
                            chain.attempt = None;
                        }
                        return Poll::Ready(Ok(connection));
                    }
                    Poll::Ready(Err(e)) => {
                        log::debug!("connecting to {addr} failed: {e}");
                        this.failures.push((*addr, e));
                        this.chains[chain].attempt = None;
                        failed = true;
                        // A failure ends the head start at once (Tornado's
                        // `on_connect_done` calls `on_timeout`).
                        this.head_start = HeadStart::Over;
                    }
                }
            }

            // Step 4. Done when nothing is in flight and nothing is left.
            let exhausted = this
                .chains
                .iter()
                .all(|c| c.attempt.is_none() && c.queue.is_empty());
            if exhausted {
                return Poll::Ready(Err(std::mem::take(&mut this.failures)));
            }
            // A failure frees a chain: go round to start (and poll) its next
            // attempt. Otherwise every attempt and the timer hold our waker.
            if !failed {
                return Poll::Pending;
            }
        }
    }
}

impl<F, Fut> fmt::Debug for Connector<F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let in_flight: Vec<SocketAddr> = self
            .chains
            .iter()
            .filter_map(|c| c.attempt.as_ref().map(|(a, _)| *a))
            .collect();
        f.debug_struct("Connector")
            .field("in_flight", &in_flight)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! The race, with fake attempts the test completes by hand (Tornado's
    //! `ConnectorTest`), and the error messages.

    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;
    use std::task::Waker;

    use whirl_ioloop::{sleep, spawn, IoLoop, JoinHandle};

    use super::*;

    /// No head start ends on its own within a test.
    const FOREVER: Duration = Duration::from_secs(3600);

    /// What the fake attempts did, and the outcomes the test has decided.
    #[derive(Default)]
    struct Fakes {
        /// Addresses whose attempt started, in order.
        started: Vec<SocketAddr>,
        /// Addresses whose attempt was dropped before it completed.
        dropped: Vec<SocketAddr>,
        /// Outcomes decided but not yet taken by their attempt.
        outcomes: HashMap<SocketAddr, io::Result<()>>,
        /// Wakers of pending attempts.
        wakers: Vec<Waker>,
    }

    type Shared = Rc<RefCell<Fakes>>;

    /// A connection attempt that completes when the test says so.
    struct FakeAttempt {
        addr: SocketAddr,
        fakes: Shared,
        done: bool,
    }

    impl Future for FakeAttempt {
        type Output = io::Result<SocketAddr>;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let outcome = self.fakes.borrow_mut().outcomes.remove(&self.addr);
            match outcome {
                Some(outcome) => {
                    self.done = true;
                    Poll::Ready(outcome.map(|()| self.addr))
                }
                None => {
                    self.fakes.borrow_mut().wakers.push(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }

    impl Drop for FakeAttempt {
        fn drop(&mut self) {
            if !self.done {
                self.fakes.borrow_mut().dropped.push(self.addr);
            }
        }
    }

    type Race = JoinHandle<Result<SocketAddr, Vec<(SocketAddr, io::Error)>>>;

    /// Spawns a race over `addrs` with fake attempts.
    fn race(addrs: &[SocketAddr], delay: Duration) -> (Race, Shared) {
        let fakes = Shared::default();
        let shared = fakes.clone();
        let connect = move |addr| {
            shared.borrow_mut().started.push(addr);
            FakeAttempt {
                addr,
                fakes: shared.clone(),
                done: false,
            }
        };
        (spawn(Connector::new(addrs.to_vec(), delay, connect)), fakes)
    }

    /// Decides the outcome of `addr`'s attempt and wakes the race.
    fn complete(fakes: &Shared, addr: SocketAddr, outcome: io::Result<()>) {
        let wakers = {
            let mut f = fakes.borrow_mut();
            f.outcomes.insert(addr, outcome);
            std::mem::take(&mut f.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    fn refused() -> io::Result<()> {
        Err(io::ErrorKind::ConnectionRefused.into())
    }

    /// Lets the race run until `fakes` satisfy `done`.
    async fn until(fakes: &Shared, done: impl Fn(&Fakes) -> bool) {
        while !done(&fakes.borrow()) {
            sleep(Duration::from_millis(1)).await;
        }
    }

    /// Lets the loop run a while, before checking something did not happen.
    async fn settle() {
        sleep(Duration::from_millis(20)).await;
    }

    fn started(fakes: &Shared) -> Vec<SocketAddr> {
        fakes.borrow().started.clone()
    }

    fn dropped(fakes: &Shared) -> Vec<SocketAddr> {
        fakes.borrow().dropped.clone()
    }

    fn run<F: Future>(future: F) -> F::Output {
        IoLoop::new()
            .run_sync_timeout(future, Duration::from_secs(60))
            .expect("the test did not finish in time")
    }

    fn v4(port: u16) -> SocketAddr {
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)
    }

    fn v6(port: u16) -> SocketAddr {
        SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port)
    }

    #[test]
    fn the_first_address_connects() {
        run(async {
            let (race, fakes) = race(&[v4(1)], FOREVER);
            until(&fakes, |f| !f.started.is_empty()).await;
            complete(&fakes, v4(1), Ok(()));
            assert_eq!(race.await.unwrap().unwrap(), v4(1));
            assert_eq!(started(&fakes), [v4(1)]);
        });
    }

    #[test]
    fn one_family_is_tried_in_order_one_at_a_time() {
        run(async {
            let (race, fakes) = race(&[v4(1), v4(2), v4(3)], Duration::ZERO);
            settle().await;
            assert_eq!(
                started(&fakes),
                [v4(1)],
                "no head start applies within a family"
            );
            complete(&fakes, v4(1), refused());
            until(&fakes, |f| f.started.len() == 2).await;
            complete(&fakes, v4(2), refused());
            until(&fakes, |f| f.started.len() == 3).await;
            complete(&fakes, v4(3), Ok(()));
            assert_eq!(race.await.unwrap().unwrap(), v4(3));
            assert_eq!(started(&fakes), [v4(1), v4(2), v4(3)]);
        });
    }

    #[test]
    fn the_secondary_family_waits_for_its_head_start() {
        run(async {
            let (race, fakes) = race(&[v6(1), v4(2)], FOREVER);
            settle().await;
            assert_eq!(started(&fakes), [v6(1)]);
            complete(&fakes, v6(1), Ok(()));
            assert_eq!(race.await.unwrap().unwrap(), v6(1));
            assert_eq!(started(&fakes), [v6(1)], "the secondary never started");
        });
    }

    #[test]
    fn the_secondary_family_joins_after_the_head_start_and_may_win() {
        run(async {
            let (race, fakes) = race(&[v6(1), v6(2), v4(3)], Duration::from_millis(10));
            until(&fakes, |f| f.started.len() == 2).await;
            assert_eq!(
                started(&fakes),
                [v6(1), v4(3)],
                "in parallel, not the next IPv6"
            );
            complete(&fakes, v4(3), Ok(()));
            assert_eq!(race.await.unwrap().unwrap(), v4(3));
            assert_eq!(dropped(&fakes), [v6(1)], "the loser is closed");
            assert_eq!(started(&fakes), [v6(1), v4(3)]);
        });
    }

    #[test]
    fn a_primary_failure_starts_the_secondary_at_once() {
        run(async {
            let (race, fakes) = race(&[v4(1), v4(2), v6(3)], FOREVER);
            until(&fakes, |f| !f.started.is_empty()).await;
            complete(&fakes, v4(1), refused());
            until(&fakes, |f| f.started.len() == 3).await;
            assert_eq!(started(&fakes), [v4(1), v4(2), v6(3)]);
            complete(&fakes, v6(3), Ok(()));
            assert_eq!(race.await.unwrap().unwrap(), v6(3));
            assert_eq!(dropped(&fakes), [v4(2)]);
        });
    }

    #[test]
    fn every_failure_is_reported_in_order() {
        run(async {
            let (race, fakes) = race(&[v6(1), v4(2), v6(3)], FOREVER);
            until(&fakes, |f| !f.started.is_empty()).await;
            complete(&fakes, v6(1), refused());
            until(&fakes, |f| f.started.len() == 3).await;
            complete(&fakes, v4(2), Err(io::ErrorKind::TimedOut.into()));
            settle().await;
            complete(&fakes, v6(3), refused());
            let failures = race.await.unwrap().unwrap_err();
            let summary: Vec<_> = failures.iter().map(|(a, e)| (*a, e.kind())).collect();
            assert_eq!(
                summary,
                [
                    (v6(1), io::ErrorKind::ConnectionRefused),
                    (v4(2), io::ErrorKind::TimedOut),
                    (v6(3), io::ErrorKind::ConnectionRefused),
                ]
            );
        });
    }

    #[test]
    fn simultaneous_starts_with_no_head_start() {
        run(async {
            let (race, fakes) = race(&[v6(1), v6(2), v4(3)], Duration::ZERO);
            until(&fakes, |f| f.started.len() == 2).await;
            assert_eq!(started(&fakes), [v6(1), v4(3)]);
            complete(&fakes, v6(1), Ok(()));
            assert_eq!(race.await.unwrap().unwrap(), v6(1));
            assert_eq!(dropped(&fakes), [v4(3)]);
        });
    }

    #[test]
    fn dropping_the_race_closes_every_attempt() {
        run(async {
            let (race, fakes) = race(&[v6(1), v4(2)], Duration::ZERO);
            until(&fakes, |f| f.started.len() == 2).await;
            race.abort();
            until(&fakes, |f| f.dropped.len() == 2).await;
            assert_eq!(dropped(&fakes), [v6(1), v4(2)]);
        });
    }

    #[test]
    fn a_huge_head_start_waits_for_a_failure() {
        run(async {
            let (race, fakes) = race(&[v4(1), v6(2)], Duration::MAX);
            settle().await;
            assert_eq!(started(&fakes), [v4(1)]);
            complete(&fakes, v4(1), refused());
            until(&fakes, |f| f.started.len() == 2).await;
            complete(&fakes, v6(2), Ok(()));
            assert_eq!(race.await.unwrap().unwrap(), v6(2));
        });
    }

    #[test]
    fn errors_read_as_sentences() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let cases = [
            (
                ConnectError::Connect {
                    host: "localhost".into(),
                    port: 80,
                    attempts: vec![(v6(80), io::ErrorKind::ConnectionRefused.into()), (v4(80), refused)],
                },
                "cannot connect to localhost:80 ([::1]:80: connection refused; 127.0.0.1:80: connection refused)",
            ),
            (
                ConnectError::Connect {
                    host: "::1".into(),
                    port: 80,
                    attempts: Vec::new(),
                },
                "cannot connect to [::1]:80: no address was tried",
            ),
            (
                ConnectError::Timeout {
                    host: "example.com".into(),
                    port: 443,
                    timeout: Duration::from_millis(250),
                },
                "connecting to example.com:443 timed out after 250ms",
            ),
            (
                ConnectError::Resolve {
                    host: "nowhere.test".into(),
                    port: 1,
                    source: io::Error::new(io::ErrorKind::NotFound, "no such host"),
                },
                "cannot resolve nowhere.test:1: no such host",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
        }
    }

    #[test]
    fn io_errors_keep_the_kind_and_the_connect_error() {
        let error = ConnectError::Timeout {
            host: "h".into(),
            port: 1,
            timeout: Duration::from_secs(1),
        };
        let io_error = io::Error::from(error);
        assert_eq!(io_error.kind(), io::ErrorKind::TimedOut);
        let inner = io_error
            .get_ref()
            .and_then(|e| e.downcast_ref::<ConnectError>());
        assert!(matches!(inner, Some(ConnectError::Timeout { port: 1, .. })));
    }
}
