//! Coordination between tasks on one loop: Tornado's `tornado.locks`.
//!
//! - [`Event`] — a flag tasks wait on until it is set;
//! - [`Condition`] — tasks wait until another task notifies them;
//! - [`Semaphore`] and [`BoundedSemaphore`] — a counter of permits, acquired
//!   and released, that tasks wait on when it is zero;
//! - [`Lock`] — a semaphore with one permit.
//!
//! Like everything on the loop side they are single-threaded (`!Send`; they
//! coordinate tasks, not threads), and every handle is a cheap clone of a
//! shared `Rc`, so each task can hold its own.
//!
//! ```compile_fail
//! fn assert_send<T: Send>() {}
//! assert_send::<whirl_ioloop::locks::Lock>();
//! ```
//!
//! # Taking a place in line
//!
//! As in Tornado, a call such as [`Semaphore::acquire`] or [`Condition::wait`]
//! takes its place in line when it is *called*; awaiting the future it returns
//! only waits for its turn. Waiters are served first come, first served.
//! Dropping a future gives up its place, and if it was already served but had
//! not yet seen it (a permit handed over, a notification delivered), what it
//! was given goes to the next waiter in line — a timed-out or cancelled waiter
//! never swallows a permit or a notification.
//!
//! Every waiting method has a `*_timeout` twin that gives up after a
//! [`Duration`](std::time::Duration) (Tornado's `timeout=` argument).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use whirl_ioloop::locks::Lock;
//! use whirl_ioloop::{sleep, spawn, IoLoop};
//!
//! let log = IoLoop::new().run_sync(async {
//!     let lock = Lock::new();
//!     let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
//!     let tasks: Vec<_> = (0..3)
//!         .map(|i| {
//!             let (lock, log) = (lock.clone(), log.clone());
//!             spawn(async move {
//!                 let _guard = lock.acquire().await;
//!                 log.borrow_mut().push(format!("{i} in"));
//!                 sleep(Duration::from_millis(1)).await;
//!                 log.borrow_mut().push(format!("{i} out"));
//!             })
//!         })
//!         .collect();
//!     for task in tasks {
//!         task.await.unwrap();
//!     }
//!     log.take()
//! });
//! assert_eq!(log, ["0 in", "0 out", "1 in", "1 out", "2 in", "2 out"]);
//! ```

mod condition;
mod event;
mod lock;
mod semaphore;

pub use condition::{Condition, ConditionWait};
pub use event::{Event, EventWait};
pub use lock::{Lock, LockAcquire, LockGuard};
pub use semaphore::{Acquire, BoundedSemaphore, Semaphore, SemaphoreGuard};

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Context, Waker};

// ----- the waiter list, shared by every primitive here and by the queues -----

/// Cancelled waiters tolerated in a [`WaiterList`] before it is compacted.
const COMPACT_MIN_CANCELLED: usize = 32;

/// Where a waiter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// In line, not yet served.
    Waiting,
    /// Served: popped from the list and woken.
    Granted,
    /// Its future was dropped while it was in line; skipped when reached.
    Cancelled,
}

/// One parked future, shared by the future and the list it waits in.
#[derive(Debug)]
pub(crate) struct Waiter<V> {
    /// Where it stands.
    pub(crate) status: Status,
    /// The task to wake when it is served; `None` until the future is polled.
    waker: Option<Waker>,
    /// What travels with the waiter: the item a queue getter is handed when
    /// served, or the item a queue putter carries until served. Unused (`None`)
    /// by the locks.
    pub(crate) value: Option<V>,
}

/// A shared handle to a [`Waiter`].
pub(crate) type WaiterRef<V> = Rc<RefCell<Waiter<V>>>;

/// Waiters in arrival order.
///
/// Served waiters are popped; a waiter whose future is dropped while in line
/// is only marked [`Status::Cancelled`] (O(1)) and skipped when it reaches the
/// front. When cancelled entries outnumber live ones the list is compacted, so
/// a loop of timed-out waits never grows it without bound (Tornado's
/// `_garbage_collect` does the same for `Condition`).
#[derive(Debug)]
pub(crate) struct WaiterList<V> {
    /// Waiters in line, oldest first; each is `Waiting` or `Cancelled`.
    queue: VecDeque<WaiterRef<V>>,
    /// How many entries of `queue` are `Cancelled`.
    cancelled: usize,
}

impl<V> WaiterList<V> {
    /// An empty list.
    pub(crate) fn new() -> Self {
        WaiterList {
            queue: VecDeque::new(),
            cancelled: 0,
        }
    }

    /// How many waiters are in line (cancelled ones not counted).
    pub(crate) fn len(&self) -> usize {
        self.queue.len() - self.cancelled
    }

    /// Puts a new waiter at the back of the line, carrying `value`.
    pub(crate) fn push(&mut self, value: Option<V>) -> WaiterRef<V> {
        let waiter = Rc::new(RefCell::new(Waiter {
            status: Status::Waiting,
            waker: None,
            value,
        }));
        self.queue.push_back(waiter.clone());
        waiter
    }

    /// Takes the first waiter still in line out of the list, dropping the
    /// cancelled ones before it. The caller serves it with [`grant`].
    pub(crate) fn pop(&mut self) -> Option<WaiterRef<V>> {
        while let Some(waiter) = self.queue.pop_front() {
            if waiter.borrow().status == Status::Waiting {
                return Some(waiter);
            }
            self.cancelled -= 1;
        }
        None
    }

    /// Withdraws `waiter` (its future is being dropped or gave up) and returns
    /// where it stood and the value it held.
    ///
    /// A `Waiting` waiter stays in the queue as `Cancelled` until popped or
    /// compacted. A `Granted` one is no longer in the queue: the caller must
    /// pass on what it was given.
    pub(crate) fn cancel(&mut self, waiter: &WaiterRef<V>) -> (Status, Option<V>) {
        let (status, value) = {
            let mut w = waiter.borrow_mut();
            let status = std::mem::replace(&mut w.status, Status::Cancelled);
            w.waker = None;
            (status, w.value.take())
        };
        if status == Status::Waiting {
            self.cancelled += 1;
            if self.cancelled >= COMPACT_MIN_CANCELLED && self.cancelled * 2 > self.queue.len() {
                self.queue.retain(|w| w.borrow().status == Status::Waiting);
                self.cancelled = 0;
            }
        }
        (status, value)
    }
}

/// Serves a waiter just [`pop`](WaiterList::pop)ped: marks it granted and
/// returns the waker to wake once the caller has released its borrows.
pub(crate) fn grant<V>(waiter: &WaiterRef<V>) -> Option<Waker> {
    let mut w = waiter.borrow_mut();
    debug_assert_eq!(w.status, Status::Waiting);
    w.status = Status::Granted;
    w.waker.take()
}

/// Polls a waiter from its future: true if it was served; otherwise records
/// the task to wake and returns false.
pub(crate) fn poll_waiter<V>(waiter: &WaiterRef<V>, cx: &Context<'_>) -> bool {
    let mut w = waiter.borrow_mut();
    if w.status == Status::Granted {
        return true;
    }
    match &w.waker {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => w.waker = Some(cx.waker().clone()),
    }
    false
}

/// Wakes every waker in `wakers`; called after the primitive's borrow ends.
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Option<Waker>>) {
    for waker in wakers.into_iter().flatten() {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_serves_in_arrival_order() {
        let mut list = WaiterList::new();
        let a = list.push(Some('a'));
        let b = list.push(Some('b'));
        assert_eq!(list.len(), 2);
        assert!(Rc::ptr_eq(&list.pop().unwrap(), &a));
        assert!(Rc::ptr_eq(&list.pop().unwrap(), &b));
        assert!(list.pop().is_none());
        assert_eq!(list.len(), 0);
    }

    #[test]
    fn cancelled_waiters_are_skipped_and_not_counted() {
        let mut list = WaiterList::new();
        let a = list.push(Some(1));
        let b = list.push(Some(2));
        assert_eq!(list.cancel(&a), (Status::Waiting, Some(1)));
        assert_eq!(list.len(), 1);
        assert!(Rc::ptr_eq(&list.pop().unwrap(), &b));
        assert!(list.pop().is_none());
        assert_eq!(list.cancelled, 0);
    }

    #[test]
    fn cancelling_a_granted_waiter_reports_it() {
        let mut list = WaiterList::new();
        let a = list.push(None::<()>);
        let popped = list.pop().unwrap();
        assert!(grant(&popped).is_none(), "never polled, so no waker");
        assert_eq!(list.cancel(&a), (Status::Granted, None));
        assert_eq!(list.len(), 0);
    }

    #[test]
    fn many_cancellations_are_compacted() {
        let mut list = WaiterList::new();
        let keep = list.push(None::<()>);
        for _ in 0..1000 {
            let w = list.push(None);
            list.cancel(&w);
        }
        assert!(
            list.queue.len() < 2 * COMPACT_MIN_CANCELLED + 1,
            "{}",
            list.queue.len()
        );
        assert_eq!(list.len(), 1);
        assert!(Rc::ptr_eq(&list.pop().unwrap(), &keep));
    }
}
