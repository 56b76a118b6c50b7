//! [`Semaphore`] and [`BoundedSemaphore`]: a counter of permits that tasks
//! acquire and release.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::{grant, poll_waiter, wake_all, Status, WaiterList, WaiterRef};
use crate::{with_timeout, TimeoutError};

/// The message of the panic on releasing a [`BoundedSemaphore`] above its
/// initial value (Tornado's `ValueError` says the same).
const RELEASED_TOO_MANY_TIMES: &str = "Semaphore released too many times";

/// A counter of permits: [`acquire`](Semaphore::acquire) takes one, waiting
/// while there are none; dropping the [`SemaphoreGuard`] (or calling
/// [`release`](Semaphore::release)) gives one back. Tornado:
/// `tornado.locks.Semaphore`.
///
/// Waiters get permits first come, first served: a released permit goes
/// straight to the oldest waiter, never to a later [`try_acquire`]. A permit
/// handed to a waiter whose future is then dropped before it saw it goes back
/// (to the next waiter, or to the counter). A clone is another handle to the
/// same semaphore.
///
/// [`try_acquire`]: Semaphore::try_acquire
///
/// # Examples
///
/// ```
/// use whirl_ioloop::locks::Semaphore;
/// use whirl_ioloop::IoLoop;
///
/// IoLoop::new().run_sync(async {
///     let semaphore = Semaphore::new(2);
///     let first = semaphore.acquire().await;
///     let _second = semaphore.acquire().await;
///     assert_eq!(semaphore.value(), 0);
///     assert!(semaphore.try_acquire().is_none());
///     drop(first);
///     assert_eq!(semaphore.value(), 1);
/// });
/// ```
#[derive(Clone)]
pub struct Semaphore {
    /// The counter and its waiters, shared by every clone.
    inner: Rc<RefCell<SemInner>>,
}

/// The state behind a [`Semaphore`].
#[derive(Debug)]
struct SemInner {
    /// Permits available now. Invariant: if it is above zero, nobody waits.
    value: usize,
    /// For a [`BoundedSemaphore`], the initial value, which `value` must not
    /// exceed.
    bound: Option<usize>,
    /// Tasks waiting for a permit, oldest first.
    waiters: WaiterList<()>,
}

impl SemInner {
    /// Takes a permit if one is available now.
    fn try_take(&mut self) -> bool {
        if self.value > 0 {
            self.value -= 1;
            true
        } else {
            false
        }
    }

    /// Gives a permit back: to the oldest waiter (returning its waker), or to
    /// the counter. `Err` if that would lift a bounded semaphore above its
    /// initial value.
    fn release(&mut self) -> Result<Option<Waker>, ()> {
        if self.bound.is_some_and(|bound| self.value >= bound) {
            return Err(());
        }
        match self.waiters.pop() {
            Some(waiter) => Ok(grant(&waiter)),
            None => {
                self.value += 1;
                Ok(None)
            }
        }
    }
}

/// Gives back a permit held by a guard or a future being dropped.
fn release_from_drop(inner: &RefCell<SemInner>) {
    let released = inner.borrow_mut().release();
    match released {
        Ok(waker) => wake_all([waker]),
        // Do not turn a panic already unwinding into an abort.
        Err(()) if std::thread::panicking() => log::error!("{RELEASED_TOO_MANY_TIMES}"),
        Err(()) => panic!("{RELEASED_TOO_MANY_TIMES}"),
    }
}

impl Semaphore {
    /// A semaphore with `value` permits. Tornado: `Semaphore(value)`.
    pub fn new(value: usize) -> Semaphore {
        Semaphore::with_bound(value, None)
    }

    /// A semaphore with `value` permits and an optional upper bound.
    fn with_bound(value: usize, bound: Option<usize>) -> Semaphore {
        Semaphore {
            inner: Rc::new(RefCell::new(SemInner {
                value,
                bound,
                waiters: WaiterList::new(),
            })),
        }
    }

    /// How many permits are available now.
    pub fn value(&self) -> usize {
        self.inner.borrow().value
    }

    /// Takes a permit, waiting for one if there are none; the guard gives it
    /// back when dropped. The place in line is taken by this call. Tornado:
    /// `Semaphore.acquire()`.
    pub fn acquire(&self) -> Acquire {
        let state = {
            let mut inner = self.inner.borrow_mut();
            if inner.try_take() {
                AcquireState::Taken
            } else {
                AcquireState::Waiting(inner.waiters.push(None))
            }
        };
        Acquire {
            sem: self.inner.clone(),
            state,
        }
    }

    /// Like [`acquire`](Semaphore::acquire), but gives up after `timeout`.
    /// Tornado: `Semaphore.acquire(timeout)`.
    ///
    /// # Errors
    ///
    /// [`TimeoutError`] if no permit came within `timeout`; the place in line
    /// is given up, and no permit is lost.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<SemaphoreGuard, TimeoutError>> {
        with_timeout(timeout, self.acquire())
    }

    /// Takes a permit if one is available now, without waiting.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard> {
        self.inner.borrow_mut().try_take().then(|| SemaphoreGuard {
            sem: Some(self.inner.clone()),
        })
    }

    /// Adds a permit: the oldest waiter gets it, or the counter goes up.
    ///
    /// Guards release their permit when dropped, so call this only to give
    /// back a permit kept with [`SemaphoreGuard::forget`], or to add permits.
    /// Tornado: `Semaphore.release()`.
    ///
    /// # Panics
    ///
    /// For a [`BoundedSemaphore`], if this would lift the value above its
    /// initial value ("Semaphore released too many times").
    pub fn release(&self) {
        let released = self.inner.borrow_mut().release();
        match released {
            Ok(waker) => wake_all([waker]),
            Err(()) => panic!("{RELEASED_TOO_MANY_TIMES}"),
        }
    }
}

impl Default for Semaphore {
    /// A semaphore with one permit, as Tornado's `Semaphore()`.
    fn default() -> Self {
        Semaphore::new(1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Semaphore")
            .field("value", &inner.value)
            .field("bound", &inner.bound)
            .field("waiters", &inner.waiters.len())
            .finish()
    }
}

/// A [`Semaphore`] that may not be released above its initial value.
/// Tornado: `tornado.locks.BoundedSemaphore`.
///
/// It has every method of [`Semaphore`] (it dereferences to one);
/// [`release`](Semaphore::release) panics with "Semaphore released too many
/// times" where Tornado raises `ValueError`: releasing more than was acquired
/// is a bug in the program, not a condition to handle.
///
/// # Examples
///
/// ```should_panic
/// use whirl_ioloop::locks::BoundedSemaphore;
///
/// let semaphore = BoundedSemaphore::new(1);
/// semaphore.release(); // panics: Semaphore released too many times
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    /// The semaphore, created with its bound.
    semaphore: Semaphore,
}

impl BoundedSemaphore {
    /// A semaphore with `value` permits that may not be released above
    /// `value`. Tornado: `BoundedSemaphore(value)`.
    pub fn new(value: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            semaphore: Semaphore::with_bound(value, Some(value)),
        }
    }
}

impl Default for BoundedSemaphore {
    /// A bounded semaphore with one permit, as Tornado's `BoundedSemaphore()`.
    fn default() -> Self {
        BoundedSemaphore::new(1)
    }
}

impl Deref for BoundedSemaphore {
    type Target = Semaphore;

    fn deref(&self) -> &Semaphore {
        &self.semaphore
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.semaphore.inner.borrow();
        f.debug_struct("BoundedSemaphore")
            .field("value", &inner.value)
            .field("bound", &inner.bound)
            .field("waiters", &inner.waiters.len())
            .finish()
    }
}

/// A permit of a [`Semaphore`]; gives it back when dropped. Tornado: the
/// context manager that `with (yield semaphore.acquire()):` enters.
#[must_use = "the permit is released as soon as the guard is dropped"]
pub struct SemaphoreGuard {
    /// The semaphore to give the permit back to; `None` once forgotten.
    sem: Option<Rc<RefCell<SemInner>>>,
}

impl SemaphoreGuard {
    /// Keeps the permit taken without releasing it; give it back later with
    /// [`Semaphore::release`] (Tornado's manual `release()` style).
    pub fn forget(mut self) {
        self.sem = None;
    }
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        if let Some(sem) = self.sem.take() {
            release_from_drop(&sem);
        }
    }
}

impl fmt::Debug for SemaphoreGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard")
            .field("forgotten", &self.sem.is_none())
            .finish()
    }
}

/// The future returned by [`Semaphore::acquire`]; resolves to a
/// [`SemaphoreGuard`] once a permit is ours.
///
/// Dropping it before it resolved gives up its place in line, and gives back
/// the permit if one had already been handed to it.
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire {
    /// The semaphore.
    sem: Rc<RefCell<SemInner>>,
    /// Whether we hold a permit, wait for one, or handed it out in a guard.
    state: AcquireState,
}

/// Where an [`Acquire`] stands.
#[derive(Debug)]
enum AcquireState {
    /// A permit was free when `acquire` was called; it is ours.
    Taken,
    /// In line for a permit; it is ours once the waiter is granted.
    Waiting(WaiterRef<()>),
    /// The permit went out in a guard.
    Done,
}

impl Future for Acquire {
    type Output = SemaphoreGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SemaphoreGuard> {
        let ours = match &self.state {
            AcquireState::Taken => true,
            AcquireState::Waiting(waiter) => poll_waiter(waiter, cx),
            AcquireState::Done => panic!("`Acquire` polled after completion"),
        };
        if !ours {
            return Poll::Pending;
        }
        self.state = AcquireState::Done;
        Poll::Ready(SemaphoreGuard {
            sem: Some(self.sem.clone()),
        })
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let holds_permit = match std::mem::replace(&mut self.state, AcquireState::Done) {
            AcquireState::Taken => true,
            AcquireState::Waiting(waiter) => {
                self.sem.borrow_mut().waiters.cancel(&waiter).0 == Status::Granted
            }
            AcquireState::Done => false,
        };
        if holds_permit {
            release_from_drop(&self.sem);
        }
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("state", &self.state)
            .finish()
    }
}
