//! Shared helpers for the stream and server behaviour tests: connected pairs
//! over loopback, a raw `std` peer, running a future on a fresh loop under a
//! deadline, polling a future once, and process-wide resource counts.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::pin::Pin;
use std::task::Poll;
use std::thread;
use std::time::Duration;

use whirl_ioloop::{sleep, IoLoop};
use whirl_iostream::{IoStream, StreamOptions};

/// Every test ends by itself: a stuck one fails after this long. Generous,
/// because debug builds on a loaded CI machine are slow; never an upper bound
/// on how fast anything should be.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts `env_logger` once (quiet unless `RUST_LOG` is set).
pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// Runs `future` on a fresh loop; panics if it does not finish within
/// [`TEST_TIMEOUT`].
pub fn run<F: Future>(future: F) -> F::Output {
    run_on(&IoLoop::new(), future)
}

/// Runs `future` on `io_loop`; panics if it does not finish within
/// [`TEST_TIMEOUT`].
pub fn run_on<F: Future>(io_loop: &IoLoop, future: F) -> F::Output {
    init_logging();
    io_loop
        .run_sync_timeout(future, TEST_TIMEOUT)
        .expect("the test did not finish in time")
}

/// Polls `future` exactly once and reports what it gave (the future stays
/// usable; its waker is the calling task's).
pub async fn poll_once<F: Future + ?Sized>(mut future: Pin<&mut F>) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

/// Lets the loop run for a while (to let bytes travel and events arrive)
/// before a test checks that something has *not* happened.
pub async fn settle() {
    sleep(Duration::from_millis(50)).await;
}

/// Waits, without blocking the loop, until `done()` holds.
pub async fn wait_until(mut done: impl FnMut() -> bool) {
    while !done() {
        sleep(Duration::from_millis(2)).await;
    }
}

/// Waits, without blocking the loop, for a thread to finish; re-raises its
/// panic so a failing peer fails the test.
pub async fn join<T>(handle: thread::JoinHandle<T>) -> T {
    wait_until(|| handle.is_finished()).await;
    match handle.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A connected TCP pair over 127.0.0.1: two blocking `std` sockets.
pub fn std_tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("local_addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (server, client)
}

/// Turns a connected `std` socket into an `IoStream` on the current loop.
pub fn into_stream(socket: TcpStream, options: StreamOptions) -> IoStream {
    socket.set_nonblocking(true).expect("set_nonblocking");
    IoStream::with_options(mio::net::TcpStream::from_std(socket), options).expect("register")
}

/// An `IoStream` over TCP on the current loop, and its peer: a raw blocking
/// `std` socket (use it from a thread, or only for writes that fit in the
/// socket buffers).
pub fn tcp_pair() -> (IoStream, TcpStream) {
    tcp_pair_with(StreamOptions::default())
}

/// Like [`tcp_pair`], with stream limits.
pub fn tcp_pair_with(options: StreamOptions) -> (IoStream, TcpStream) {
    let (ours, peer) = std_tcp_pair();
    (into_stream(ours, options), peer)
}

/// Two connected `IoStream`s over a Unix socket pair, on the current loop.
pub fn unix_pair() -> (IoStream, IoStream) {
    unix_pair_with(StreamOptions::default())
}

/// Like [`unix_pair`]; `options` apply to the second (reading) end.
pub fn unix_pair_with(options: StreamOptions) -> (IoStream, IoStream) {
    let (a, b) = mio::net::UnixStream::pair().expect("socketpair");
    (
        IoStream::new(a).expect("register"),
        IoStream::with_options(b, options).expect("register"),
    )
}

/// Aborts `socket`: `SO_LINGER` 0 then close, so the peer gets a reset (RST)
/// instead of an orderly end of file.
pub fn reset(socket: TcpStream) {
    let socket = socket2::Socket::from(socket);
    socket.set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
    drop(socket);
}

/// Half-closes `socket`: the peer reads end of file, this side may still read.
pub fn shutdown_write(socket: &TcpStream) {
    socket.shutdown(Shutdown::Write).expect("shutdown");
}

/// Writes `bytes` one byte per `write` call (`TCP_NODELAY`, with a pause
/// between them, so they arrive as separate segments), in a thread; stops
/// early if the stream under test closes (a test that makes it close, such
/// as an unsatisfiable read, races the last bytes — what the stream got is
/// what the test checks).
pub fn trickle(
    mut peer: TcpStream,
    bytes: Vec<u8>,
    pause: Duration,
) -> thread::JoinHandle<TcpStream> {
    peer.set_nodelay(true).expect("nodelay");
    thread::spawn(move || {
        for b in bytes {
            if peer.write_all(&[b]).is_err() {
                break;
            }
            thread::sleep(pause);
        }
        peer
    })
}

/// Reads from `peer` until end of file, in a thread; returns the bytes.
pub fn read_to_end(mut peer: TcpStream) -> thread::JoinHandle<io::Result<Vec<u8>>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        peer.read_to_end(&mut out)?;
        Ok(out)
    })
}

/// Open file descriptors of this process (`/proc/self/fd`); `None` where
/// there is no procfs.
pub fn fd_count() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// Resident set size of this process in bytes (`/proc/self/statm`); `None`
/// where there is no procfs.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Number of fd handlers registered on `io_loop`, read from its `Debug`
/// output (the loop has no public counter).
pub fn handler_count(io_loop: &IoLoop) -> usize {
    let debug = format!("{io_loop:?}");
    let rest = debug
        .split("handlers: ")
        .nth(1)
        .expect("IoLoop's Debug shows its handlers");
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a handler count")
}

/// A cheap, order-sensitive checksum (FNV-1a, 64-bit) fed in pieces.
#[derive(Debug, Clone, Copy)]
pub struct Checksum(u64);

impl Default for Checksum {
    fn default() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }
}

impl Checksum {
    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The checksum so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// Deterministic pseudo-random bytes (xorshift), so a reordering or a lost
/// chunk changes the checksum.
#[derive(Debug, Clone)]
pub struct Pattern(u64);

impl Pattern {
    /// A generator from `seed` (non-zero).
    pub fn new(seed: u64) -> Self {
        Pattern(seed.max(1))
    }

    /// Fills `buf`.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}
