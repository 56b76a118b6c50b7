//! Helpers shared by the behaviour tests of `whirl-ioloop`: drop observers,
//! safety nets that make every test terminate, a one-shot poll, yields,
//! loopback socket pairs, a watchdog that wakes a loop through a socket, and a
//! log capturer.
//!
//! Each test file uses only some of these.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once};
use std::task::{Context, Poll, Waker};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use mio::net::UnixStream;
use whirl_ioloop::{sleep, HandlerId, Interest, IoLoop};

/// How long a test may run before its safety net ends it (and fails it).
/// Generous: the machine is shared and noisy.
pub const SAFETY: Duration = Duration::from_secs(20);

/// A shared, loop-side record of what ran, in order.
pub type Trace<T> = Rc<RefCell<Vec<T>>>;

/// An empty [`Trace`].
pub fn trace<T>() -> Trace<T> {
    Rc::new(RefCell::new(Vec::new()))
}

// ----- drop observers ----------------------------------------------------------

/// Counts how many of its [`DropToken`]s were dropped.
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    pub fn new() -> DropCounter {
        DropCounter::default()
    }

    /// A token to move into a closure; dropping it bumps the count.
    pub fn token(&self) -> DropToken {
        DropToken(self.0.clone())
    }

    /// How many tokens were dropped.
    pub fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Bumps its [`DropCounter`] when dropped. `Send`, so it can ride in a
/// cross-thread callback too.
pub struct DropToken(Arc<AtomicUsize>);

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Set once its [`DropToken`] is dropped: a [`DropCounter`] for one token.
/// `Send + Sync`, so it also observes thread-pool jobs.
#[derive(Clone, Default)]
pub struct DropFlag(DropCounter);

impl DropFlag {
    /// A flag not yet set.
    pub fn new() -> DropFlag {
        DropFlag::default()
    }

    /// A token to move into a future or closure; dropping it sets the flag.
    pub fn token(&self) -> DropToken {
        self.0.token()
    }

    /// Whether the token was dropped.
    pub fn dropped(&self) -> bool {
        self.0.dropped() > 0
    }
}

// ----- futures -----------------------------------------------------------------

/// Polls `future` once with a waker that does nothing.
pub fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Polls `future` once, outside any task; `Some(output)` if it was ready.
pub fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    match poll_once(pin!(future)) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// Returns `Pending` once, waking itself: lets everything else that is ready
/// on the loop run first.
pub struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// See [`YieldNow`].
pub fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// Gives the loop `n` iterations.
pub async fn yield_times(n: usize) {
    for _ in 0..n {
        yield_now().await;
    }
}

/// Waits, a millisecond at a time, until `cond` holds.
pub async fn wait_until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        sleep(Duration::from_millis(1)).await;
    }
}

// ----- running a loop safely ---------------------------------------------------

/// Starts `io_loop` with a timer that stops it after `limit`; returns true if
/// something else stopped it first. The safety timer is removed afterwards.
pub fn start_within(io_loop: &IoLoop, limit: Duration) -> bool {
    let timed_out = Rc::new(Cell::new(false));
    let flag = timed_out.clone();
    let stopper = io_loop.clone();
    let net = io_loop.call_later(limit, move || {
        flag.set(true);
        stopper.stop();
    });
    io_loop.start();
    io_loop.remove_timeout(net);
    !timed_out.get()
}

/// [`start_within`] with the default [`SAFETY`] limit, asserting it was not
/// needed.
pub fn start_safely(io_loop: &IoLoop) {
    assert!(
        start_within(io_loop, SAFETY),
        "the loop had to be stopped by the safety net"
    );
}

/// Runs `future` to completion on `io_loop`, failing the test if it takes
/// longer than [`SAFETY`].
#[track_caller]
pub fn run<F: Future>(io_loop: &IoLoop, future: F) -> F::Output {
    match io_loop.run_sync_timeout(future, SAFETY) {
        Ok(output) => output,
        Err(e) => panic!("the test's future did not complete within {SAFETY:?}: {e}"),
    }
}

/// Whether `a` and `b` are handles to the same loop (a timer armed on one is
/// seen by the other).
pub fn same_loop(a: &IoLoop, b: &IoLoop) -> bool {
    let before = b.pending_timeouts();
    let probe = a.call_later(Duration::from_secs(3600), || {});
    let same = b.pending_timeouts() == before + 1;
    a.remove_timeout(probe);
    same
}

// ----- sockets -----------------------------------------------------------------

/// A connected pair of Unix stream sockets, both non-blocking.
pub fn socket_pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().expect("socketpair")
}

/// A connected loopback TCP pair: a non-blocking `mio` end for the loop and a
/// blocking `std` end for the test (or a client thread) to drive.
pub fn tcp_pair() -> (mio::net::TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    let peer =
        TcpStream::connect(listener.local_addr().expect("listener address")).expect("connect");
    let (accepted, _) = listener.accept().expect("accept");
    accepted.set_nonblocking(true).expect("set non-blocking");
    (mio::net::TcpStream::from_std(accepted), peer)
}

/// Stops a loop through a socket after a limit, without a timer: for tests
/// that need the loop to sleep in `poll` with no deadline. Its handler records
/// that it fired and stops the loop.
pub struct Watchdog {
    /// Tells the thread to stand down.
    cancel: Option<mpsc::Sender<()>>,
    /// The thread that writes to the socket when the limit passes.
    thread: Option<JoinHandle<()>>,
    /// The loop the handler is registered on.
    io_loop: IoLoop,
    /// The watched socket and its handler.
    registered: Option<(UnixStream, HandlerId)>,
    /// Set by the handler when the watchdog fired.
    fired: Rc<Cell<bool>>,
}

impl Watchdog {
    /// Arms a watchdog on `io_loop` that stops it after `limit`.
    pub fn arm(io_loop: &IoLoop, limit: Duration) -> Watchdog {
        let (mut ours, mut theirs) = socket_pair();
        let fired = Rc::new(Cell::new(false));
        let flag = fired.clone();
        let stopper = io_loop.clone();
        let id = io_loop
            .add_handler(&mut ours, Interest::READABLE, move |_| {
                flag.set(true);
                stopper.stop();
            })
            .expect("register the watchdog");
        let (cancel, cancelled) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                let _ = theirs.write_all(b"!");
                // Keep the socket open until told to stand down, so the
                // loop sees readiness rather than a hang-up only.
                let _ = cancelled.recv();
            }
        });
        Watchdog {
            cancel: Some(cancel),
            thread: Some(thread),
            io_loop: io_loop.clone(),
            registered: Some((ours, id)),
            fired,
        }
    }

    /// Whether the watchdog had to stop the loop.
    pub fn fired(&self) -> bool {
        self.fired.get()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.cancel.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some((mut socket, id)) = self.registered.take() {
            let _ = self.io_loop.remove_handler(id, &mut socket);
        }
    }
}

// ----- log capture -------------------------------------------------------------

/// Every record logged so far, with the thread that logged it.
static RECORDS: Mutex<Vec<(ThreadId, String)>> = Mutex::new(Vec::new());

/// A `log::Log` that keeps records in [`RECORDS`].
struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        let mut records = RECORDS.lock().unwrap_or_else(|e| e.into_inner());
        records.push((thread::current().id(), line));
    }

    fn flush(&self) {}
}

/// Installs the capturing logger (once per test binary).
pub fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// The records logged on this thread so far (tests run on their own threads,
/// and a loop logs on the thread that runs it).
pub fn logs_of_this_thread() -> Vec<String> {
    let me = thread::current().id();
    let records = RECORDS.lock().unwrap_or_else(|e| e.into_inner());
    records
        .iter()
        .filter(|(thread, _)| *thread == me)
        .map(|(_, line)| line.clone())
        .collect()
}
