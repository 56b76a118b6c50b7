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
    deadline_from(Instant::now(), duration)
}

/// `now + duration`, capped at [`NEVER`] from now; where the platform's
/// `Instant` cannot reach that far, the farthest deadline it can (to within
/// a factor of two), and `now` only if it cannot move at all. A too-long
/// wait must stay "practically never", not become "at once".
fn deadline_from(now: Instant, duration: Duration) -> Instant {
    let mut wait = duration.min(NEVER);
    while !wait.is_zero() {
        if let Some(deadline) = now.checked_add(wait) {
            return deadline;
        }
        wait /= 2;
    }
    now
}

/// How far away "never" is: ~30 years.
const NEVER: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

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
        // Once armed, the clock reading of the loop it is armed on will do:
        // it is never ahead of real time (when it says the deadline passed,
        // it has), and the timer that woke us was popped at that reading.
        // The first poll reads the clock, so a past deadline is ready at
        // once. (Armed, no handle to the current loop is made: a sleep
        // polled again and again, as a connection's idle timer is, costs a
        // comparison.)
        let now = match &self.timer {
            Some((io_loop, _, _)) => io_loop.cached_clock(),
            None => Instant::now(),
        };
        if now >= self.deadline {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The latest `Instant` this platform can represent, to within a second
    /// (its range ends somewhere; found by halving steps).
    fn the_end_of_time() -> Instant {
        let mut end = Instant::now();
        let mut step = Duration::MAX;
        while step >= Duration::from_secs(1) {
            match end.checked_add(step) {
                Some(later) => end = later,
                None => step /= 2,
            }
        }
        end
    }

    #[test]
    fn deadline_after_overflowing_the_clock_falls_back_to_far_not_now() {
        // A moment from which "never" (30 years) no longer fits, but a
        // week does: the deadline must be far off, not `now` (which would
        // fire a "never" timeout at once).
        let Some(now) = the_end_of_time().checked_sub(NEVER / 2) else {
            return; // an `Instant` range shorter than 15 years: nothing to test
        };
        assert!(now.checked_add(NEVER).is_none());
        let deadline = deadline_from(now, Duration::MAX);
        assert!(
            deadline >= now + NEVER / 4,
            "a Duration::MAX wait gave a deadline only {:?} away",
            deadline - now
        );
        // A short wait is unaffected by the cap.
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(deadline_from(now, week), now + week);
    }

    #[test]
    fn deadline_after_caps_at_never() {
        let now = Instant::now();
        assert_eq!(deadline_from(now, Duration::MAX), now + NEVER);
        assert_eq!(deadline_from(now, Duration::ZERO), now);
    }
}
