//! Tasks: futures the loop drives to completion, and the [`JoinHandle`] that
//! waits for one.
//!
//! A task lives in the loop's task table as a boxed [`TaskFuture`]; its waker is
//! an `Arc<TaskWaker>` holding only the task's id, so it is `Send + Sync` even
//! though the future is not. Waking queues the id on the loop (once: a task
//! woken many times before it runs is queued, and polled, once): straight onto
//! the run queue when the waker fires on the loop's own thread, else through
//! the loop's locked inbox.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::handle::Shared;
use crate::ioloop::Inner;
use crate::IoLoop;

/// Why a task or a thread-pool job produced no value.
///
/// Returned by awaiting a [`JoinHandle`] and by
/// [`run_in_executor`](crate::run_in_executor). Tornado surfaces both cases as
/// the exception the `Future` was resolved with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// The task was aborted, or its loop was closed, before it finished.
    Cancelled,
    /// The task panicked; holds the panic message.
    Panicked(String),
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => write!(f, "the task was cancelled before it finished"),
            JoinError::Panicked(msg) => write!(f, "the task panicked: {msg}"),
        }
    }
}

impl std::error::Error for JoinError {}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// The waker of one task: wakes by queueing the task's id on its loop.
pub(crate) struct TaskWaker {
    /// Slab key of the task in its loop's task table.
    pub(crate) key: usize,
    /// Unique id of the task; tells it from a later task in the same slot.
    pub(crate) id: u64,
    /// True from a wake until the loop next polls the task: further wakes are
    /// no-ops, so the task is queued once however often it is woken.
    pub(crate) scheduled: AtomicBool,
    /// The loop to wake.
    pub(crate) shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::AcqRel)
            && !IoLoop::try_wake_local(&self.shared, self.key, self.id)
        {
            self.shared.push_woken(self.key, self.id);
        }
    }
}

/// One entry in the loop's task table.
pub(crate) struct TaskSlot {
    /// Unique id (see [`TaskWaker::id`]).
    pub(crate) id: u64,
    /// The future; `None` while the loop is polling it.
    pub(crate) future: Option<Pin<Box<dyn Future<Output = ()>>>>,
    /// The task's waker state (its `scheduled` flag is cleared before each poll).
    pub(crate) waker: Arc<TaskWaker>,
    /// A `Waker` of `waker`, made once and lent to each poll (taken out of
    /// the slot with the future and put back with it), so a poll costs no
    /// reference count up and down. `None` while the task is being polled.
    pub(crate) handle: Option<Waker>,
    /// Set when the task is aborted while being polled; the loop drops it after.
    pub(crate) aborted: bool,
    /// Where `spawn` was called (for the blocking detector).
    pub(crate) site: &'static Location<'static>,
}

/// Where a task's output goes; shared by the task and its [`JoinHandle`].
struct JoinState<T> {
    /// The outcome, once there is one.
    result: RefCell<Option<Result<T, JoinError>>>,
    /// Set once an outcome was produced (it stays set after the handle took it).
    finished: Cell<bool>,
    /// The task awaiting the handle, if any.
    waiter: RefCell<Option<Waker>>,
}

impl<T> JoinState<T> {
    /// Records the outcome (the first one wins) and wakes the waiter.
    fn complete(&self, outcome: Result<T, JoinError>) {
        if self.finished.replace(true) {
            return;
        }
        *self.result.borrow_mut() = Some(outcome);
        let waiter = self.waiter.borrow_mut().take();
        if let Some(waker) = waiter {
            waker.wake();
        }
    }
}

/// The future stored in the task table: the user's future plus its join state.
///
/// It catches a panic of the inner future (logging it and resolving the handle
/// with [`JoinError::Panicked`]), and when dropped unfinished — aborted, or its
/// loop closed — resolves the handle with [`JoinError::Cancelled`]. A panic
/// in the destructor of the inner future (or of a detached task's output) is
/// caught and logged too, so the loop may drop a `TaskFuture` anywhere.
pub(crate) struct TaskFuture<F: Future> {
    /// The user's future; `None` once it finished or panicked.
    future: Option<Pin<Box<F>>>,
    /// Shared with the [`JoinHandle`].
    state: Rc<JoinState<F::Output>>,
    /// Where the task was spawned (named in the panic log).
    site: &'static Location<'static>,
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(future) = this.future.as_mut() else {
            return Poll::Ready(());
        };
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                this.drop_future();
                if Rc::strong_count(&this.state) > 1 {
                    this.state.complete(Ok(output));
                } else {
                    // Detached: nobody will take the output, and it would be
                    // dropped with this task, outside the loop's catch.
                    this.state.finished.set(true);
                    this.drop_caught(output, "its output");
                }
                Poll::Ready(())
            }
            Err(payload) => {
                let msg = panic_message(&*payload);
                log::error!("task spawned at {} panicked: {msg}", this.site);
                this.drop_future();
                this.state.complete(Err(JoinError::Panicked(msg)));
                Poll::Ready(())
            }
        }
    }
}

impl<F: Future> TaskFuture<F> {
    /// Drops the user's future (see [`TaskFuture::drop_caught`]). Finished,
    /// panicked, aborted or closed, a task's future is dropped here.
    fn drop_future(&mut self) {
        if let Some(future) = self.future.take() {
            self.drop_caught(future, "its future");
        }
    }

    /// Drops `value`, a piece of the user's task, catching and logging a
    /// panic of its destructor as the loop does for any other user code: no
    /// such panic escapes the loop, [`JoinHandle::abort`] or
    /// [`IoLoop::close`].
    fn drop_caught<T>(&self, value: T, what: &str) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
            log::error!(
                "task spawned at {} panicked while dropping {what}: {}",
                self.site,
                panic_message(&*payload)
            );
        }
    }
}

impl<F: Future> Drop for TaskFuture<F> {
    fn drop(&mut self) {
        // Drop the user's future first: its destructor may run user code.
        self.drop_future();
        self.state.complete(Err(JoinError::Cancelled));
    }
}

/// Wraps `future` for the task table and makes the handle that awaits it.
pub(crate) fn new_task<F>(
    future: F,
    site: &'static Location<'static>,
) -> (TaskFuture<F>, JoinStateErased<F::Output>)
where
    F: Future + 'static,
{
    let state = Rc::new(JoinState {
        result: RefCell::new(None),
        finished: Cell::new(false),
        waiter: RefCell::new(None),
    });
    let task = TaskFuture {
        future: Some(Box::pin(future)),
        state: state.clone(),
        site,
    };
    (task, JoinStateErased(state))
}

/// The join state as seen from outside this module.
pub(crate) struct JoinStateErased<T>(Rc<JoinState<T>>);

/// An owned permission to await a spawned task's output (Tornado: the `Future`
/// that `IOLoop.spawn_callback`'s coroutine would return).
///
/// Awaiting it yields `Ok(output)`, or a [`JoinError`] if the task panicked or
/// was cancelled. Dropping the handle detaches the task: it keeps running.
/// [`JoinHandle::abort`] cancels it. Like the loop, a handle is `!Send`.
///
/// # Examples
///
/// ```
/// use whirl_ioloop::{spawn, IoLoop};
///
/// let io_loop = IoLoop::new();
/// let answer = io_loop.run_sync(async {
///     let handle = spawn(async { 6 * 7 });
///     handle.await.unwrap()
/// });
/// assert_eq!(answer, 42);
/// ```
pub struct JoinHandle<T> {
    /// Where the outcome arrives.
    state: Rc<JoinState<T>>,
    /// The task's loop, to abort it (weak: a handle must not keep a loop alive).
    io_loop: Weak<Inner>,
    /// Slab key and id of the task.
    key: usize,
    /// See [`TaskWaker::id`].
    id: u64,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(state: JoinStateErased<T>, io_loop: &Rc<Inner>, key: usize, id: u64) -> Self {
        JoinHandle {
            state: state.0,
            io_loop: Rc::downgrade(io_loop),
            key,
            id,
        }
    }

    /// Cancels the task: its future is dropped (at once, or right after the poll
    /// in progress if the task aborts itself) and awaiting this handle yields
    /// [`JoinError::Cancelled`]. Does nothing if the task already finished.
    pub fn abort(&self) {
        if self.state.finished.get() {
            return;
        }
        self.state.complete(Err(JoinError::Cancelled));
        if let Some(inner) = self.io_loop.upgrade() {
            IoLoop::from_inner(inner).abort_task(self.key, self.id);
        }
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.state.finished.get()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = self.state.result.borrow_mut().take() {
            return Poll::Ready(outcome);
        }
        if self.state.finished.get() {
            // The outcome was already taken by an earlier poll.
            return Poll::Ready(Err(JoinError::Cancelled));
        }
        let mut waiter = self.state.waiter.borrow_mut();
        match waiter.as_ref() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waiter = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .field("finished", &self.state.finished.get())
            .finish()
    }
}

/// Spawns `future` on the current loop ([`IoLoop::current`]); see
/// [`IoLoop::spawn`].
///
/// Tornado: `IOLoop.current().spawn_callback(coroutine)`, or simply calling a
/// coroutine without awaiting it.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    IoLoop::current().spawn(future)
}

/// Creates the waker for a new task.
pub(crate) fn task_waker(key: usize, id: u64, shared: &Arc<Shared>) -> Arc<TaskWaker> {
    Arc::new(TaskWaker {
        key,
        id,
        scheduled: AtomicBool::new(true),
        shared: shared.clone(),
    })
}

/// The `Waker` for a task waker.
pub(crate) fn waker_of(waker: &Arc<TaskWaker>) -> Waker {
    Waker::from(waker.clone())
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::future::poll_fn;
    use std::rc::Rc;
    use std::task::{Poll, Waker};
    use std::time::Duration;

    use crate::IoLoop;

    #[test]
    fn task_woken_repeatedly_on_its_own_thread_is_polled_once_more() {
        let io_loop = IoLoop::new();
        let polls = Rc::new(Cell::new(0));
        let counted = polls.clone();
        let task = io_loop.spawn(poll_fn(move |cx| {
            counted.set(counted.get() + 1);
            if counted.get() == 1 {
                for _ in 0..3 {
                    cx.waker().wake_by_ref();
                }
            }
            Poll::<()>::Pending
        }));
        io_loop.run_sync(crate::sleep(Duration::from_millis(5)));
        assert_eq!(polls.get(), 2, "three wakes, one poll");
        task.abort();
        io_loop.close();
    }

    #[test]
    fn every_poll_of_a_task_lends_the_same_waker_and_a_kept_one_still_wakes_it() {
        // The waker is made once per task and lent to each poll: a future
        // that keeps the first one (as a stream's pending read does, checked
        // with `will_wake`) needs no new clone, and waking it reschedules.
        let io_loop = IoLoop::new();
        let first: Rc<RefCell<Option<Waker>>> = Rc::default();
        let kept = first.clone();
        let polls = Rc::new(Cell::new(0));
        let counted = polls.clone();
        let task = io_loop.spawn(poll_fn(move |cx| {
            counted.set(counted.get() + 1);
            let mut kept = kept.borrow_mut();
            match &*kept {
                None => *kept = Some(cx.waker().clone()),
                Some(waker) => assert!(waker.will_wake(cx.waker()), "poll {}", counted.get()),
            }
            if counted.get() == 4 {
                return Poll::Ready(counted.get());
            }
            // Woken through the first poll's waker, every time.
            kept.as_ref().unwrap().wake_by_ref();
            Poll::Pending
        }));
        let joined = io_loop.run_sync_timeout(task, Duration::from_secs(5));
        assert_eq!(joined, Ok(Ok(4)));
        assert_eq!(polls.get(), 4);
        drop(first);
        io_loop.close();
    }

    #[test]
    fn waker_fired_while_another_loop_is_current_still_reaches_its_loop() {
        let other = IoLoop::new();
        let io_loop = IoLoop::new();
        let parked: Rc<RefCell<Option<Waker>>> = Rc::default();
        let slot = parked.clone();
        let task = io_loop.spawn(poll_fn(move |cx| {
            if slot.borrow().is_some() {
                return Poll::Ready(7);
            }
            *slot.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }));
        // First poll parks the waker; the loop then has nothing to do.
        io_loop.run_sync(async {
            while parked.borrow().is_none() {
                crate::sleep(Duration::from_millis(1)).await;
            }
        });
        other.make_current();
        parked.borrow().as_ref().unwrap().wake_by_ref();
        let joined = io_loop.run_sync_timeout(task, Duration::from_secs(5));
        assert_eq!(joined, Ok(Ok(7)), "woke its own loop");
        io_loop.close();
        other.close();
    }
}
