//! [`Event`]: a flag that tasks wait on until it is set.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{grant, poll_waiter, wake_all, WaiterList, WaiterRef};
use crate::{with_timeout, TimeoutError};

/// A flag, initially false, that tasks can wait on until it is set.
/// Tornado: `tornado.locks.Event`.
///
/// [`set`](Event::set) wakes every waiting task; while the flag stays set,
/// [`wait`](Event::wait) completes at once. [`clear`](Event::clear) resets
/// it. A clone is another handle to the same event.
///
/// # Examples
///
/// ```
/// use whirl_ioloop::locks::Event;
/// use whirl_ioloop::{spawn, IoLoop};
///
/// IoLoop::new().run_sync(async {
///     let event = Event::new();
///     let waiter = spawn({
///         let event = event.clone();
///         async move {
///             event.wait().await;
///             "done waiting"
///         }
///     });
///     event.set();
///     assert_eq!(waiter.await.unwrap(), "done waiting");
/// });
/// ```
#[derive(Clone, Default)]
pub struct Event {
    /// The flag and its waiters, shared by every clone.
    inner: Rc<RefCell<EventInner>>,
}

/// The state behind an [`Event`].
#[derive(Debug)]
struct EventInner {
    /// Whether the event is set.
    flag: bool,
    /// Tasks waiting for the flag; empty whenever `flag` is true.
    waiters: WaiterList<()>,
}

impl Default for EventInner {
    fn default() -> Self {
        EventInner {
            flag: false,
            waiters: WaiterList::new(),
        }
    }
}

impl Event {
    /// A new event, not set. Tornado: `Event()`.
    pub fn new() -> Event {
        Event::default()
    }

    /// Whether the flag is set. Tornado: `Event.is_set()`.
    pub fn is_set(&self) -> bool {
        self.inner.borrow().flag
    }

    /// Sets the flag and wakes every waiting task; until
    /// [`clear`](Event::clear), waiting completes at once. Tornado:
    /// `Event.set()`.
    pub fn set(&self) {
        let wakers: Vec<_> = {
            let mut inner = self.inner.borrow_mut();
            if inner.flag {
                return;
            }
            inner.flag = true;
            std::iter::from_fn(|| inner.waiters.pop())
                .map(|waiter| grant(&waiter))
                .collect()
        };
        wake_all(wakers);
    }

    /// Resets the flag; tasks that wait from now on block until the next
    /// [`set`](Event::set). Tasks already woken by a `set` still complete.
    /// Tornado: `Event.clear()`.
    pub fn clear(&self) {
        self.inner.borrow_mut().flag = false;
    }

    /// Waits until the flag is set: at once if it is set now. Tornado:
    /// `Event.wait()`.
    pub fn wait(&self) -> EventWait {
        let waiter = {
            let mut inner = self.inner.borrow_mut();
            (!inner.flag).then(|| inner.waiters.push(None))
        };
        EventWait {
            event: self.inner.clone(),
            waiter,
        }
    }

    /// Like [`wait`](Event::wait), but gives up after `timeout`. Tornado:
    /// `Event.wait(timeout)`.
    ///
    /// # Errors
    ///
    /// [`TimeoutError`] if the flag was not set within `timeout`.
    pub fn wait_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), TimeoutError>> {
        with_timeout(timeout, self.wait())
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Event")
            .field("set", &inner.flag)
            .field("waiters", &inner.waiters.len())
            .finish()
    }
}

/// The future returned by [`Event::wait`]; completes once the event is set.
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait {
    /// The event waited on.
    event: Rc<RefCell<EventInner>>,
    /// Our place in line; `None` if the flag was already set, or once done.
    waiter: Option<WaiterRef<()>>,
}

impl Future for EventWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.waiter {
            None => Poll::Ready(()),
            Some(waiter) if poll_waiter(waiter, cx) => {
                self.waiter = None;
                Poll::Ready(())
            }
            Some(_) => Poll::Pending,
        }
    }
}

impl Drop for EventWait {
    fn drop(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            // Nothing to pass on: a set wakes every waiter anyway.
            self.event.borrow_mut().waiters.cancel(&waiter);
        }
    }
}

impl fmt::Debug for EventWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}
