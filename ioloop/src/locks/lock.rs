//! [`Lock`]: one task at a time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{Acquire, BoundedSemaphore, SemaphoreGuard};
use crate::{with_timeout, TimeoutError};

/// A lock for tasks: [`acquire`](Lock::acquire) waits until no other task
/// holds it; dropping the [`LockGuard`] unlocks it. Tornado:
/// `tornado.locks.Lock`.
///
/// Built, as in Tornado, on a [`BoundedSemaphore`] with one permit, so waiters
/// get the lock first come, first served, and one that gives up (timed out,
/// or its future dropped) never keeps the lock from the next. A clone is
/// another handle to the same lock.
///
/// Needed only where a task holds the lock across an `.await`: on one loop,
/// code between two awaits never interleaves with another task.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use whirl_ioloop::locks::Lock;
/// use whirl_ioloop::IoLoop;
///
/// IoLoop::new().run_sync(async {
///     let lock = Lock::new();
///     let guard = lock.acquire().await;
///     assert!(lock.try_acquire().is_none());
///     assert!(lock.acquire_timeout(Duration::from_millis(5)).await.is_err());
///     drop(guard);
///     assert!(lock.try_acquire().is_some());
/// });
/// ```
#[derive(Clone, Default)]
pub struct Lock {
    /// The one permit.
    semaphore: BoundedSemaphore,
}

impl Lock {
    /// A new, unlocked lock. Tornado: `Lock()`.
    pub fn new() -> Lock {
        Lock::default()
    }

    /// Waits until the lock is free and takes it; the guard unlocks it when
    /// dropped. The place in line is taken by this call. Tornado:
    /// `Lock.acquire()`.
    pub fn acquire(&self) -> LockAcquire {
        LockAcquire {
            acquire: self.semaphore.acquire(),
        }
    }

    /// Like [`acquire`](Lock::acquire), but gives up after `timeout`.
    /// Tornado: `Lock.acquire(timeout)`.
    ///
    /// # Errors
    ///
    /// [`TimeoutError`] if the lock was not free within `timeout`.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<LockGuard, TimeoutError>> {
        with_timeout(timeout, self.acquire())
    }

    /// Takes the lock if it is free now, without waiting.
    pub fn try_acquire(&self) -> Option<LockGuard> {
        self.semaphore
            .try_acquire()
            .map(|permit| LockGuard { _permit: permit })
    }

    /// Whether some task holds the lock.
    pub fn is_locked(&self) -> bool {
        self.semaphore.value() == 0
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.is_locked())
            .finish()
    }
}

/// Holds a [`Lock`]; unlocks it when dropped (Tornado: `Lock.release()`, or
/// leaving `async with lock:`).
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard {
    /// The lock's one permit.
    _permit: SemaphoreGuard,
}

/// The future returned by [`Lock::acquire`]; resolves to a [`LockGuard`].
///
/// Dropping it before it resolved gives up its place in line (and the lock,
/// if it had just been handed over).
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct LockAcquire {
    /// Acquiring the permit.
    acquire: Acquire,
}

impl Future for LockAcquire {
    type Output = LockGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard> {
        Pin::new(&mut self.acquire)
            .poll(cx)
            .map(|permit| LockGuard { _permit: permit })
    }
}
