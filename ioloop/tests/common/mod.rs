//! Helpers for the behaviour tests of tasks, time, `multi`, the thread pool and
//! fd handlers: a safety-netted `run`, drop observers, a one-shot poll, a
//! yield, and connected loopback TCP pairs.
//!
//! Each test file uses only some of these.
#![allow(dead_code)]

use std::cell::Cell;
use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use whirl_ioloop::{sleep, IoLoop};

/// How long a test may run before its safety net ends it (and fails it).
/// Generous: the machine is shared and noisy.
pub const SAFETY: Duration = Duration::from_secs(20);

/// Runs `future` to completion on `io_loop`, failing the test if it takes
/// longer than [`SAFETY`].
#[track_caller]
pub fn run<F: Future>(io_loop: &IoLoop, future: F) -> F::Output {
    match io_loop.run_sync_timeout(future, SAFETY) {
        Ok(output) => output,
        Err(e) => panic!("the test's future did not complete within {SAFETY:?}: {e}"),
    }
}

/// Starts `io_loop` with a stop armed `SAFETY` from now; returns whether the
/// loop was stopped by something other than the safety net.
pub fn start_with_safety_net(io_loop: &IoLoop) -> bool {
    let tripped = Rc::new(Cell::new(false));
    let net = {
        let io_loop_in = io_loop.clone();
        let tripped = tripped.clone();
        io_loop.call_later(SAFETY, move || {
            tripped.set(true);
            io_loop_in.stop();
        })
    };
    io_loop.start();
    io_loop.remove_timeout(net);
    !tripped.get()
}

// ----- drop observers ----------------------------------------------------------

/// Set once its [`DropToken`] is dropped. `Send + Sync`, so it also observes
/// thread-pool jobs.
#[derive(Clone, Default)]
pub struct DropFlag(Arc<AtomicBool>);

impl DropFlag {
    /// A flag not yet set.
    pub fn new() -> DropFlag {
        DropFlag::default()
    }

    /// A token to move into a future or closure; dropping it sets the flag.
    pub fn token(&self) -> DropToken {
        DropToken(self.0.clone())
    }

    /// Whether the token was dropped.
    pub fn dropped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Sets its [`DropFlag`] when dropped.
pub struct DropToken(Arc<AtomicBool>);

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
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

/// Returns `Pending` once (waking itself), then `Ready`: lets the loop run
/// one iteration.
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

/// Gives the loop one iteration.
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

// ----- sockets -----------------------------------------------------------------

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
