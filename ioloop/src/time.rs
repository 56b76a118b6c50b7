//! Time-based futures: [`sleep`] and [`with_timeout`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::ioloop::Timed;
use crate::timer::TimeoutHandle;
use crate::IoLoop;

/// The error of an operation that did not finish in time.
///
/// Returned by [`with_timeout`], [`IoLoop::run_sync_timeout`] and the `*_timeout`
/// methods of the locks and queues. Tornado: `tornado.util.TimeoutError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeoutError;

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the operation timed out")
    }
}

impl std::error::Error for TimeoutError {}

/// A future that completes once a deadline has passed; made by [`sleep`] and
/// [`sleep_until`].
///
/// It arms a timer on the loop that polls it (the current loop) the first time
/// it is polled, and disarms it when dropped.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    /// When the future completes.
    deadline: Instant,
    /// The armed timer, its loop, and the waker it will wake, once polled.
    timer: Option<(IoLoop, TimeoutHandle, Waker)>,
}

/// Waits for `duration` without blocking the loop. Tornado: `gen.sleep`.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use whirl_ioloop::{sleep, IoLoop};
///
/// let started = Instant::now();
/// IoLoop::new().run_sync(sleep(Duration::from_millis(5)));
/// assert!(started.elapsed() >= Duration::from_millis(5));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(deadline_after(duration))
}

/// `now + duration`, saturating at a deadline ~30 years away: a
/// `Duration::MAX` sleep or timeout means "never" instead of overflowing.
pub(crate) fn deadline_after(duration: Duration) -> Instant {
    const NEVER: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(duration.min(NEVER)).unwrap_or(now)
}

/// Waits until `deadline` without blocking the loop.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

impl Sleep {
    /// When this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Disarms the timer, if armed.
    fn disarm(&mut self) {
        if let Some((io_loop, handle, _)) = self.timer.take() {
            io_loop.remove_timeout(handle);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            self.disarm();
            return Poll::Ready(());
        }
        if let Some((_, _, waker)) = &self.timer {
            if waker.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        // First poll, or polled by another task: (re-)arm for this waker.
        self.disarm();
        let io_loop = IoLoop::current();
        let waker = cx.waker().clone();
        let handle = io_loop.insert_timer(self.deadline, Timed::Wake(waker.clone()));
        self.timer = Some((io_loop, handle, waker));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("armed", &self.timer.is_some())
            .finish()
    }
}

/// A future that resolves to its inner future's output, or to [`TimeoutError`]
/// once its deadline passes; made by [`with_timeout`].
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    /// The wrapped future (boxed so `Timeout` is `Unpin` without `unsafe`).
    future: Pin<Box<F>>,
    /// The deadline.
    sleep: Sleep,
}

/// Runs `future` with a time limit: its output, or [`TimeoutError`] if it has
/// not completed after `timeout` (the future is then dropped when the
/// `Timeout` is). Tornado: `gen.with_timeout`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use whirl_ioloop::{sleep, with_timeout, IoLoop, TimeoutError};
///
/// let io_loop = IoLoop::new();
/// let slow = with_timeout(Duration::from_millis(5), sleep(Duration::from_secs(60)));
/// assert_eq!(io_loop.run_sync(slow), Err(TimeoutError));
/// let fast = with_timeout(Duration::from_secs(60), async { 1 });
/// assert_eq!(io_loop.run_sync(fast), Ok(1));
/// ```
pub fn with_timeout<F: Future>(timeout: Duration, future: F) -> Timeout<F> {
    Timeout {
        future: Box::pin(future),
        sleep: sleep(timeout),
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, TimeoutError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(output) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(&mut self.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(TimeoutError)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("sleep", &self.sleep)
            .finish()
    }
}
