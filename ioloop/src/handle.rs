//! The thread-safe side of a loop: [`LoopHandle`] and the state it shares with
//! the loop thread.
//!
//! Everything another thread may hand to a loop passes through one mutex-guarded
//! [`Remote`] inbox: callbacks from [`LoopHandle::add_callback`] and the ids of
//! tasks whose wakers fired (on another thread: a waker fired on the loop's own
//! thread queues its task directly). The loop drains the inbox at the top of
//! every iteration, skipping the lock when a flag says it is empty. A sleeping
//! loop is woken through a [`mio::Waker`], and only when it is actually asleep
//! in `poll` and nobody has woken it yet — a burst of ten thousand callbacks
//! costs one wake-up syscall, not ten thousand.

use std::fmt;
use std::mem;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A callback handed in from another thread.
pub(crate) type SendCallback = Box<dyn FnOnce() + Send>;

/// Work other threads handed to the loop since it last looked.
#[derive(Default)]
pub(crate) struct Remote {
    /// Callbacks from [`LoopHandle::add_callback`], in arrival order, each with
    /// the place it was registered (for the blocking detector).
    pub(crate) callbacks: Vec<(SendCallback, &'static Location<'static>)>,
    /// `(slab key, task id)` of tasks whose waker fired, in wake order.
    pub(crate) woken: Vec<(usize, u64)>,
    /// Whether a stop was requested through [`LoopHandle::stop`].
    pub(crate) stop: bool,
}

impl Remote {
    /// Whether anything is waiting to be drained.
    pub(crate) fn is_empty(&self) -> bool {
        self.callbacks.is_empty() && self.woken.is_empty() && !self.stop
    }
}

/// State shared between a loop and every thread holding its [`LoopHandle`] or
/// one of its task wakers.
pub(crate) struct Shared {
    /// The inbox; see [`Remote`].
    remote: Mutex<Remote>,
    /// Interrupts the loop's `poll` (registered under [`WAKER_TOKEN`](crate::handler)).
    waker: mio::Waker,
    /// True while the loop is in (or about to enter) a blocking `poll`.
    sleeping: AtomicBool,
    /// True once someone woke the sleeping loop; reset before each `poll`, so
    /// a loop is woken at most once per sleep.
    notified: AtomicBool,
    /// Mirrors `!remote.is_empty()`, written only under the inbox lock, so the
    /// loop can see an empty inbox without taking the lock.
    pending: AtomicBool,
}

impl Shared {
    /// Shared state whose wake-ups interrupt the poll that `waker` belongs to.
    pub(crate) fn new(waker: mio::Waker) -> Self {
        Shared {
            remote: Mutex::new(Remote::default()),
            waker,
            sleeping: AtomicBool::new(false),
            notified: AtomicBool::new(false),
            pending: AtomicBool::new(false),
        }
    }

    /// Locks the inbox. A poisoned lock is still usable: the inbox is only ever
    /// pushed to or swapped, so no panic can leave it half-updated.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Remote> {
        self.remote
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a callback from any thread and wakes the loop if it sleeps.
    pub(crate) fn push_callback(&self, f: SendCallback, site: &'static Location<'static>) {
        self.push(|remote| remote.callbacks.push((f, site)));
    }

    /// Queues a task wake-up from any thread and wakes the loop if it sleeps.
    pub(crate) fn push_woken(&self, key: usize, id: u64) {
        self.push(|remote| remote.woken.push((key, id)));
    }

    /// Asks the loop to stop from any thread.
    pub(crate) fn push_stop(&self) {
        self.push(|remote| remote.stop = true);
    }

    /// Takes everything in the inbox, leaving `spare` (an empty inbox whose
    /// vectors keep their capacity) in its place.
    pub(crate) fn take(&self, spare: Remote) -> Remote {
        let mut remote = self.lock();
        self.pending.store(!spare.is_empty(), Ordering::SeqCst);
        mem::replace(&mut *remote, spare)
    }

    /// Adds to the inbox with `add`, flags it non-empty, and wakes the loop if
    /// it sleeps.
    fn push(&self, add: impl FnOnce(&mut Remote)) {
        let mut remote = self.lock();
        add(&mut remote);
        // Every write of `pending` is made under this lock, so this load sees
        // the latest one. `true` means an earlier push stored it (`SeqCst`)
        // and no `take` ran since: the next `take` comes after this push in
        // lock order and drains both, and the earlier pusher's `notify` wakes
        // a loop that went to sleep before seeing its store (see
        // `has_pending`). So this push needs neither the store nor, strictly,
        // the `notify` below, which is one load when the loop is awake.
        if !self.pending.load(Ordering::Relaxed) {
            self.pending.store(true, Ordering::SeqCst);
        }
        drop(remote);
        self.notify();
    }

    /// Whether the inbox holds work. Lock-free: the loop asks once or twice
    /// per iteration, and the inbox is almost always empty.
    ///
    /// `SeqCst`, as are the pushers' store of `pending` and both sides'
    /// accesses to `sleeping`: a pusher stores `pending` then loads
    /// `sleeping`; the loop stores `sleeping` ([`Shared::enter_sleep`]) then
    /// loads `pending`. In the single total order of `SeqCst` operations one
    /// of the two loads comes last and sees the other side's store, so either
    /// the loop does not sleep or the pusher wakes it. (With acquire/release
    /// only, both loads may read the old values: a lost wake-up.)
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }

    /// Wakes the loop if, and only if, it is asleep and not yet woken.
    pub(crate) fn notify(&self) {
        if self.sleeping.load(Ordering::SeqCst) && !self.notified.swap(true, Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                log::error!("failed to wake the event loop: {e}");
            }
        }
    }

    /// Called by the loop before a `poll` that may block. After this,
    /// any push sees `sleeping` and wakes the poll; the loop must check
    /// [`Shared::has_pending`] *after* calling it to close the race.
    pub(crate) fn enter_sleep(&self) {
        self.notified.store(false, Ordering::SeqCst);
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// Called by the loop when `poll` returns.
    pub(crate) fn leave_sleep(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

/// A `Send + Sync` handle to an [`IoLoop`](crate::IoLoop): the only way to reach a
/// loop from another thread.
///
/// Tornado's counterpart is `IOLoop.add_callback`, the one IOLoop method that is
/// safe to call from other threads. Get one with
/// [`IoLoop::handle`](crate::IoLoop::handle); it is cheap to clone.
///
/// # Examples
///
/// ```
/// use whirl_ioloop::IoLoop;
///
/// let io_loop = IoLoop::new();
/// let handle = io_loop.handle();
/// std::thread::spawn(move || {
///     // Runs on the loop's thread, on its next iteration.
///     handle.add_callback(|| IoLoop::current().stop());
/// });
/// io_loop.start(); // returns once the callback ran
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    /// The loop's shared state.
    pub(crate) shared: Arc<Shared>,
}

impl LoopHandle {
    /// Runs `f` on the loop's thread on its next iteration, from any thread.
    ///
    /// Callbacks run in the order they were added. If the loop is asleep it is
    /// woken (once, however many callbacks arrive before it runs). A callback that
    /// panics is logged and the loop goes on. Tornado: `IOLoop.add_callback`.
    #[track_caller]
    pub fn add_callback<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.shared.push_callback(Box::new(f), Location::caller());
    }

    /// Asks the loop to stop, from any thread; it stops after the iteration in
    /// progress, as [`IoLoop::stop`](crate::IoLoop::stop) would.
    pub fn stop(&self) {
        self.shared.push_stop();
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    fn setup() -> (Poll, Shared) {
        let poll = Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), Token(7)).unwrap();
        (poll, Shared::new(waker))
    }

    fn wake_events(poll: &mut Poll) -> usize {
        let mut events = Events::with_capacity(8);
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
        events.iter().count()
    }

    #[test]
    fn awake_loop_is_not_woken() {
        let (mut poll, shared) = setup();
        shared.push_callback(Box::new(|| {}), Location::caller());
        assert_eq!(wake_events(&mut poll), 0);
        assert!(shared.has_pending());
    }

    #[test]
    fn sleeping_loop_is_woken_once_per_sleep() {
        let (mut poll, shared) = setup();
        shared.enter_sleep();
        for _ in 0..1000 {
            shared.push_woken(1, 1);
        }
        assert!(shared.notified.load(Ordering::SeqCst));
        assert_eq!(wake_events(&mut poll), 1);
        shared.leave_sleep();
        assert_eq!(shared.take(Remote::default()).woken.len(), 1000);
        assert!(!shared.has_pending());
        // The next sleep may be woken again.
        shared.enter_sleep();
        assert!(!shared.notified.load(Ordering::SeqCst));
        shared.push_stop();
        assert!(shared.notified.load(Ordering::SeqCst));
    }
}
