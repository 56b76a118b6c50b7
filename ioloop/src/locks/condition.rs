//! [`Condition`]: tasks wait until another task notifies them.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{grant, poll_waiter, wake_all, Status, WaiterList, WaiterRef};
use crate::with_timeout;

/// A condition that tasks wait on until another task notifies them.
/// Tornado: `tornado.locks.Condition`.
///
/// Unlike a thread condition variable there is no lock to hold: on one loop,
/// nothing runs between a task's awaits. Notifications are not stored: a
/// [`notify`](Condition::notify) with nobody waiting is lost, as in Tornado.
/// Waiters are woken in the order they started waiting; one that gave up (timed
/// out, or its future was dropped) is skipped, and a notification delivered to
/// a waiter dropped before it saw it goes to the next one in line. A clone is
/// another handle to the same condition.
///
/// # Examples
///
/// ```
/// use whirl_ioloop::locks::Condition;
/// use whirl_ioloop::{spawn, IoLoop};
///
/// IoLoop::new().run_sync(async {
///     let condition = Condition::new();
///     let waiter = spawn({
///         let condition = condition.clone();
///         async move { condition.wait().await }
///     });
///     // Let the waiter start waiting, then wake it.
///     whirl_ioloop::sleep(std::time::Duration::from_millis(1)).await;
///     condition.notify(1);
///     assert!(waiter.await.unwrap());
/// });
/// ```
#[derive(Clone)]
pub struct Condition {
    /// The waiters, shared by every clone.
    waiters: Rc<RefCell<WaiterList<()>>>,
}

impl Default for Condition {
    fn default() -> Self {
        Condition {
            waiters: Rc::new(RefCell::new(WaiterList::new())),
        }
    }
}

impl Condition {
    /// A new condition with nobody waiting. Tornado: `Condition()`.
    pub fn new() -> Condition {
        Condition::default()
    }

    /// Waits until notified; resolves to `true` (the value is there to match
    /// [`wait_timeout`](Condition::wait_timeout)). The place in line is taken
    /// by this call, so a notification sent before the future is first
    /// awaited still reaches it. Tornado: `Condition.wait()`.
    pub fn wait(&self) -> ConditionWait {
        ConditionWait {
            waiters: self.waiters.clone(),
            waiter: Some(self.waiters.borrow_mut().push(None)),
        }
    }

    /// Like [`wait`](Condition::wait), but gives up after `timeout`:
    /// resolves to `true` if notified, `false` if the time ran out (Tornado
    /// resolves its future to `False` rather than raising). A waiter that
    /// timed out does not use up a later notification. Tornado:
    /// `Condition.wait(timeout)`.
    pub fn wait_timeout(&self, timeout: Duration) -> impl Future<Output = bool> {
        let wait = with_timeout(timeout, self.wait());
        async move { wait.await.unwrap_or(false) }
    }

    /// Wakes up to `n` waiters, oldest first. Tornado: `Condition.notify(n)`.
    pub fn notify(&self, n: usize) {
        let wakers: Vec<_> = {
            let mut waiters = self.waiters.borrow_mut();
            std::iter::from_fn(|| waiters.pop())
                .take(n)
                .map(|waiter| grant(&waiter))
                .collect()
        };
        wake_all(wakers);
    }

    /// Wakes every waiter. Tornado: `Condition.notify_all()`.
    pub fn notify_all(&self) {
        self.notify(usize::MAX);
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("waiters", &self.waiters.borrow().len())
            .finish()
    }
}

/// The future returned by [`Condition::wait`]; resolves to `true` once
/// notified.
#[must_use = "futures do nothing unless awaited"]
pub struct ConditionWait {
    /// The condition's waiters.
    waiters: Rc<RefCell<WaiterList<()>>>,
    /// Our place in line; `None` once the notification was seen.
    waiter: Option<WaiterRef<()>>,
}

impl Future for ConditionWait {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        match &self.waiter {
            None => Poll::Ready(true),
            Some(waiter) if poll_waiter(waiter, cx) => {
                self.waiter = None;
                Poll::Ready(true)
            }
            Some(_) => Poll::Pending,
        }
    }
}

impl Drop for ConditionWait {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        let passed_on = {
            let mut waiters = self.waiters.borrow_mut();
            match waiters.cancel(&waiter).0 {
                // Notified, but never saw it: the next waiter gets it instead.
                Status::Granted => waiters.pop().map(|next| grant(&next)),
                _ => None,
            }
        };
        wake_all([passed_on.flatten()]);
    }
}

impl fmt::Debug for ConditionWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionWait")
            .field(
                "notified",
                &self
                    .waiter
                    .as_ref()
                    .is_none_or(|w| w.borrow().status == Status::Granted),
            )
            .finish()
    }
}
