//! [`IoLoop`]: the reactor (mio `Poll`, fd handlers, timers) and the executor
//! (callbacks, tasks) in one single-threaded loop.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Events, Interest, Registry};
use slab::Slab;

use crate::handle::{LoopHandle, Remote, Shared};
use crate::handler::{HandlerFn, HandlerId, HandlerSlot, Ready, WAKER_TOKEN};
use crate::task::{self, panic_message, JoinHandle, TaskSlot};
use crate::time::{with_timeout, TimeoutError};
use crate::timer::{TimeoutHandle, TimerQueue};

/// How many events one `poll` returns at most.
const EVENTS_CAPACITY: usize = 1024;

thread_local! {
    /// The loop this thread is running, or last made current.
    static CURRENT: RefCell<Option<IoLoop>> = const { RefCell::new(None) };
}

/// The running loop's [`IoLoop::loop_time`] on this thread, or
/// `Instant::now()` on a thread whose current loop is not running (or that
/// has none). Cheaper than `IoLoop::current().loop_time()`: no handle is
/// made.
pub fn loop_time() -> Instant {
    CURRENT
        .try_with(|current| current.borrow().as_ref().map(IoLoop::loop_time))
        .ok()
        .flatten()
        .unwrap_or_else(Instant::now)
}

/// Work queued to run on the next iteration.
enum Runnable {
    /// A callback from [`IoLoop::add_callback`] (or from another thread).
    Callback(Box<dyn FnOnce()>, &'static Location<'static>),
    /// A callback from [`IoLoop::add_shared_callback`]: queued again and
    /// again without an allocation each time.
    Shared(Rc<dyn Fn()>, &'static Location<'static>),
    /// A task to poll: `(slab key, task id)`.
    Task(usize, u64),
}

/// What a timer does when it fires.
pub(crate) enum Timed {
    /// Run a callback from `add_timeout`/`call_later`/`call_at`.
    Callback(Box<dyn FnOnce()>, &'static Location<'static>),
    /// Wake a future waiting on a deadline ([`sleep`](crate::sleep)).
    Wake(Waker),
}

/// Everything one loop owns; shared by the [`IoLoop`] handles on its thread.
pub(crate) struct Inner {
    /// The OS poller; borrowed only for the `poll` call itself.
    poll: RefCell<mio::Poll>,
    /// A clone of the poller's registry, usable while `poll` is borrowed.
    registry: Registry,
    /// Buffer `poll` fills; borrowed while events are dispatched.
    events: RefCell<Events>,
    /// State shared with other threads (inbox, waker).
    shared: Arc<Shared>,
    /// Callbacks and woken tasks, FIFO.
    runnables: RefCell<VecDeque<Runnable>>,
    /// Armed timers.
    timers: RefCell<TimerQueue<Timed>>,
    /// The clock as last read by the loop (as an iteration begins, around
    /// its poll; see `loop_time`): never ahead of real time, so "the deadline has passed by this
    /// reading" is always true when it says so.
    clock: Cell<Instant>,
    /// fd handlers, keyed by [`HandlerId::key`].
    handlers: RefCell<Slab<HandlerSlot>>,
    /// Generation given to the next handler added.
    next_generation: Cell<usize>,
    /// Spawned tasks that have not finished.
    tasks: RefCell<Slab<TaskSlot>>,
    /// Id given to the next task spawned.
    next_task_id: Cell<u64>,
    /// Spare inbox, swapped with the shared one to drain it without allocating.
    spare_remote: RefCell<Remote>,
    /// True while `start` or `run_sync` is running.
    running: Cell<bool>,
    /// True once `stop` was called; cleared when the loop returns.
    stopping: Cell<bool>,
    /// True once `close` was called.
    closed: Cell<bool>,
    /// Dispatches longer than this are logged; `None` turns the detector off.
    blocking_threshold: Cell<Option<Duration>>,
}

/// A single-threaded event loop: Tornado's `IOLoop`, hand-rolled on `mio`.
///
/// One loop runs fd handlers (callbacks on socket readiness), timers, callbacks
/// and tasks (futures), all on the thread that runs it. `IoLoop` is a cheap,
/// clonable handle (an `Rc`); it is `!Send`, and the way in from another thread
/// is its [`LoopHandle`].
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<whirl_ioloop::IoLoop>();
/// ```
///
/// Tasks and callbacks usually hold a clone of their loop, which makes a cycle:
/// call [`IoLoop::close`] to free everything a loop holds.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use whirl_ioloop::{sleep, IoLoop};
///
/// let io_loop = IoLoop::new();
/// io_loop.call_later(Duration::from_millis(10), || println!("ten milliseconds later"));
/// let n = io_loop.run_sync(async {
///     sleep(Duration::from_millis(20)).await;
///     7
/// });
/// assert_eq!(n, 7);
/// ```
#[derive(Clone)]
pub struct IoLoop {
    /// The loop's state.
    inner: Rc<Inner>,
    /// States that the loop is `!Send` and `!Sync` (an `Rc` already is; this
    /// keeps it so if the representation changes).
    _not_send: PhantomData<Rc<()>>,
}

impl IoLoop {
    /// Creates a loop, and makes it current for this thread if none is.
    ///
    /// Tornado: `IOLoop()`.
    ///
    /// # Panics
    ///
    /// If the OS refuses a poller (`epoll_create`/`kqueue` failing, e.g. out of
    /// file descriptors); [`IoLoop::try_new`] returns the error instead.
    pub fn new() -> IoLoop {
        match IoLoop::try_new() {
            Ok(io_loop) => io_loop,
            Err(e) => panic!("cannot create an event loop: {e}"),
        }
    }

    /// Creates a loop, returning the OS error if no poller can be had.
    ///
    /// # Errors
    ///
    /// The error of `mio::Poll::new`, `Registry::try_clone` or `Waker::new`.
    pub fn try_new() -> io::Result<IoLoop> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        let inner = Rc::new(Inner {
            poll: RefCell::new(poll),
            registry,
            events: RefCell::new(Events::with_capacity(EVENTS_CAPACITY)),
            shared: Arc::new(Shared::new(waker)),
            runnables: RefCell::new(VecDeque::new()),
            clock: Cell::new(Instant::now()),
            timers: RefCell::new(TimerQueue::new()),
            handlers: RefCell::new(Slab::new()),
            next_generation: Cell::new(0),
            tasks: RefCell::new(Slab::new()),
            next_task_id: Cell::new(0),
            spare_remote: RefCell::new(Remote::default()),
            running: Cell::new(false),
            stopping: Cell::new(false),
            closed: Cell::new(false),
            blocking_threshold: Cell::new(None),
        });
        let io_loop = IoLoop::from_inner(inner);
        // `try_with`: during thread teardown there is no current loop to set.
        let _ = CURRENT.try_with(|current| {
            let mut current = current.borrow_mut();
            if current.is_none() {
                *current = Some(io_loop.clone());
            }
        });
        Ok(io_loop)
    }

    pub(crate) fn from_inner(inner: Rc<Inner>) -> IoLoop {
        IoLoop {
            inner,
            _not_send: PhantomData,
        }
    }

    /// The loop this thread is running, or last made current; creates one (and
    /// makes it current) if there is none.
    ///
    /// Tornado: `IOLoop.current()`.
    pub fn current() -> IoLoop {
        if let Some(io_loop) = IoLoop::try_current() {
            return io_loop;
        }
        IoLoop::new()
    }

    /// The current loop, without creating one.
    pub fn try_current() -> Option<IoLoop> {
        CURRENT
            .try_with(|current| current.borrow().clone())
            .ok()
            .flatten()
    }

    /// Makes this loop the thread's current one. [`start`](IoLoop::start) and
    /// [`run_sync`](IoLoop::run_sync) do so for their duration.
    ///
    /// Tornado: `IOLoop.make_current()`.
    pub fn make_current(&self) {
        // The replaced loop is dropped after the borrow ends (its drop may run
        // destructors that look up the current loop).
        let replaced = CURRENT.with(|current| current.replace(Some(self.clone())));
        drop(replaced);
    }

    /// Clears the thread's current loop (Tornado: `IOLoop.clear_current()`).
    pub fn clear_current() {
        CURRENT.with(|current| current.borrow_mut().take());
    }

    /// A `Send + Sync` handle for reaching this loop from other threads.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            shared: self.inner.shared.clone(),
        }
    }

    /// The loop's clock: monotonic, as Tornado's `IOLoop.time()` is.
    pub fn time(&self) -> Instant {
        Instant::now()
    }

    /// Whether the loop is running (inside [`start`](IoLoop::start) or
    /// [`run_sync`](IoLoop::run_sync)).
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Runs the loop until [`stop`](IoLoop::stop) is called.
    ///
    /// Each iteration does, in this order:
    ///
    /// 1. **Drain the inbox**: callbacks and task wake-ups from other threads
    ///    (and from wakers) join the run queue; a remote stop is noted.
    /// 2. **Poll the [`run_sync`](IoLoop::run_sync) future** if it was woken;
    ///    return if it completed.
    /// 3. **Snapshot** the run queue: what is queued now runs this iteration;
    ///    what those callbacks queue waits for the next one.
    /// 4. **Pop due timers**: every timer whose deadline is at or before now
    ///    (the clock as read when the iteration began, before step 1: what
    ///    [`loop_time`](IoLoop::loop_time) answers).
    /// 5. **Run** the snapshot (callbacks and task polls, FIFO), then the due
    ///    timers in deadline order (ties in insertion order); a due timer
    ///    cancelled meanwhile, by a callback or an earlier timer, does not run.
    /// 6. **Stop** here if [`stop`](IoLoop::stop) was called.
    /// 7. **Poll** for I/O: with timeout 0 if work is pending (queued callbacks
    ///    or tasks, a non-empty inbox, a woken `run_sync` future), else until the
    ///    next timer's deadline, else indefinitely.
    ///    A poll that may have slept reads the clock again after it.
    /// 8. **Dispatch** events one token at a time, re-checking that the handler
    ///    still exists (an earlier handler may have removed it).
    ///
    /// A panic in any callback, timer, handler or task is caught, logged, and the
    /// loop goes on (Tornado: `handle_callback_exception`).
    ///
    /// If [`stop`](IoLoop::stop) was called while the loop was not running,
    /// `start` returns at once (Tornado's rule).
    ///
    /// # Panics
    ///
    /// If the loop is already running or was closed.
    pub fn start(&self) {
        if self.inner.stopping.replace(false) {
            return;
        }
        self.run(None);
    }

    /// Stops the loop after the iteration in progress. Tornado: `IOLoop.stop()`.
    ///
    /// From another thread, use [`LoopHandle::stop`].
    pub fn stop(&self) {
        self.inner.stopping.set(true);
    }

    /// Runs the loop until `future` completes and returns its output.
    ///
    /// The future need not be `'static` or `Send`: it is polled on this thread,
    /// as part of the loop (step 2 of [`start`](IoLoop::start)). Tornado:
    /// `IOLoop.run_sync(func)`.
    ///
    /// # Panics
    ///
    /// If the loop is already running or was closed; if `future` panics (the
    /// panic propagates, as Tornado re-raises); if the loop is stopped with
    /// [`stop`](IoLoop::stop) before `future` completes.
    pub fn run_sync<F: Future>(&self, future: F) -> F::Output {
        self.inner.stopping.set(false);
        let mut future = pin!(future);
        let mut output = None;
        self.run(Some(
            &mut |cx: &mut Context<'_>| match future.as_mut().poll(cx) {
                Poll::Ready(value) => {
                    output = Some(value);
                    true
                }
                Poll::Pending => false,
            },
        ));
        match output {
            Some(value) => value,
            None => panic!("the event loop stopped before the run_sync future completed"),
        }
    }

    /// Like [`run_sync`](IoLoop::run_sync), but gives up after `timeout`
    /// (Tornado: `IOLoop.run_sync(func, timeout=...)`).
    ///
    /// # Errors
    ///
    /// [`TimeoutError`] if `future` has not completed after `timeout`; the
    /// future is dropped.
    ///
    /// # Panics
    ///
    /// As [`run_sync`](IoLoop::run_sync).
    pub fn run_sync_timeout<F: Future>(
        &self,
        future: F,
        timeout: Duration,
    ) -> Result<F::Output, TimeoutError> {
        self.run_sync(with_timeout(timeout, future))
    }

    /// Closes the loop: drops every fd handler, task, timer and queued callback.
    ///
    /// Awaiting the [`JoinHandle`] of a dropped task yields
    /// [`JoinError::Cancelled`](crate::JoinError::Cancelled). Sources
    /// registered with [`add_handler`](IoLoop::add_handler) are not owned by the
    /// loop; drop them (closing their descriptors) to unregister them from the
    /// OS. A closed loop cannot be started again. Tornado: `IOLoop.close()`.
    pub fn close(&self) {
        self.inner.closed.set(true);
        IoLoop::clear_current_if(self);
        // Take everything out first, then drop it outside any borrow: the
        // destructors may call back into the loop. (A task's `TaskFuture`
        // catches a panic of the user's destructor.)
        let handlers: Vec<HandlerSlot> = self.inner.handlers.borrow_mut().drain().collect();
        let tasks: Vec<TaskSlot> = self.inner.tasks.borrow_mut().drain().collect();
        let timers = self.inner.timers.borrow_mut().drain();
        let runnables = mem::take(&mut *self.inner.runnables.borrow_mut());
        let remote = self.inner.shared.take(Remote::default());
        drop((handlers, tasks, timers, runnables, remote));
    }

    /// Whether [`close`](IoLoop::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Turns the blocking detector on (`Some`) or off (`None`, the default).
    ///
    /// When on, every callback, timer, fd-handler dispatch and task poll that
    /// runs longer than `threshold` logs a warning naming where it was
    /// registered (`add_callback`, `spawn`, `call_later`, `add_handler`, …) and
    /// how long it blocked the loop. The cost is one `Instant::now()` pair per
    /// dispatch while on. Tornado 4's `IOLoop.set_blocking_log_threshold`.
    pub fn set_blocking_log_threshold(&self, threshold: Option<Duration>) {
        self.inner.blocking_threshold.set(threshold);
    }

    // ----- callbacks ---------------------------------------------------------

    /// Runs `f` on the next iteration of the loop, after the callbacks already
    /// queued (FIFO). Tornado: `IOLoop.add_callback`.
    ///
    /// From another thread use [`LoopHandle::add_callback`].
    #[track_caller]
    pub fn add_callback<F: FnOnce() + 'static>(&self, f: F) {
        self.inner
            .runnables
            .borrow_mut()
            .push_back(Runnable::Callback(Box::new(f), Location::caller()));
    }

    /// As [`add_callback`](IoLoop::add_callback) for a callback made once
    /// and run many times: queuing it clones the `Rc` and allocates nothing,
    /// where `add_callback` boxes its closure on every call. An `IoStream`
    /// schedules its flush this way on each write.
    #[track_caller]
    pub fn add_shared_callback(&self, f: &Rc<dyn Fn()>) {
        self.inner
            .runnables
            .borrow_mut()
            .push_back(Runnable::Shared(Rc::clone(f), Location::caller()));
    }

    // ----- timers ------------------------------------------------------------

    /// Runs `f` once `deadline` has passed; returns a handle for
    /// [`remove_timeout`](IoLoop::remove_timeout). Tornado: `IOLoop.add_timeout`.
    ///
    /// Timers fire in deadline order, timers with equal deadlines in the order
    /// they were added.
    #[track_caller]
    pub fn add_timeout<F: FnOnce() + 'static>(&self, deadline: Instant, f: F) -> TimeoutHandle {
        self.add_timeout_at_site(deadline, Location::caller(), f)
    }

    /// Runs `f` after `delay`. Tornado: `IOLoop.call_later`.
    #[track_caller]
    pub fn call_later<F: FnOnce() + 'static>(&self, delay: Duration, f: F) -> TimeoutHandle {
        self.add_timeout(crate::time::deadline_after(delay), f)
    }

    /// Runs `f` at `when` (same as [`add_timeout`](IoLoop::add_timeout)).
    /// Tornado: `IOLoop.call_at`.
    #[track_caller]
    pub fn call_at<F: FnOnce() + 'static>(&self, when: Instant, f: F) -> TimeoutHandle {
        self.add_timeout(when, f)
    }

    /// Cancels a timer: it will never fire, and its callback is dropped now.
    /// Removing a timer that already fired does nothing. Tornado:
    /// `IOLoop.remove_timeout`.
    pub fn remove_timeout(&self, handle: TimeoutHandle) {
        let removed = self.inner.timers.borrow_mut().remove(handle);
        drop(removed); // outside the borrow: the callback's captures may run code
    }

    /// Arms a callback timer naming `site` as where it was registered.
    pub(crate) fn add_timeout_at_site<F: FnOnce() + 'static>(
        &self,
        deadline: Instant,
        site: &'static Location<'static>,
        f: F,
    ) -> TimeoutHandle {
        self.insert_timer(deadline, Timed::Callback(Box::new(f), site))
    }

    /// The clock as the loop last read it: when the iteration running now
    /// began, or after its poll for I/O if that may have slept. Never
    /// ahead of real time, behind it by the work done since (callbacks,
    /// tasks and handlers of this iteration); `Instant::now()` when the loop
    /// is not running. libuv's `uv_now`.
    ///
    /// Reading it costs no system clock read, which a server pays several
    /// times a request otherwise; use it where a deadline may come a little
    /// early or a cached value a little late (an idle timeout counted from
    /// here, a `Date` header's second), and [`time`](IoLoop::time) where
    /// the interval itself is measured.
    ///
    /// ```
    /// use whirl_ioloop::IoLoop;
    ///
    /// let io_loop = IoLoop::new();
    /// let before = std::time::Instant::now();
    /// let seen = io_loop.run_sync(async { IoLoop::current().loop_time() });
    /// assert!(seen >= before && seen <= std::time::Instant::now());
    /// ```
    pub fn loop_time(&self) -> Instant {
        if self.inner.running.get() {
            self.inner.clock.get()
        } else {
            Instant::now()
        }
    }

    /// The clock as the loop last read it, running or not (see
    /// [`loop_time`](IoLoop::loop_time)).
    pub(crate) fn cached_clock(&self) -> Instant {
        self.inner.clock.get()
    }

    /// Arms a timer of either kind.
    pub(crate) fn insert_timer(&self, deadline: Instant, timed: Timed) -> TimeoutHandle {
        self.inner.timers.borrow_mut().insert(deadline, timed)
    }

    /// Number of armed timers (live ones only).
    pub fn pending_timeouts(&self) -> usize {
        self.inner.timers.borrow().len()
    }

    // ----- fd handlers -------------------------------------------------------

    /// Registers `source` with the loop: `f` is called with the readiness each
    /// time the source becomes ready for `interest`. Tornado:
    /// `IOLoop.add_handler(fd, handler, events)`.
    ///
    /// The loop does not own `source`; keep it (usually where `f` can reach it,
    /// e.g. in an `Rc<RefCell<_>>`) and pass it to
    /// [`update_handler`](IoLoop::update_handler) and
    /// [`remove_handler`](IoLoop::remove_handler). Readiness is edge-triggered:
    /// on a readable event, read until `WouldBlock`.
    ///
    /// # Errors
    ///
    /// The error of `mio::Registry::register` (e.g. the source is already
    /// registered).
    #[track_caller]
    pub fn add_handler<S, F>(
        &self,
        source: &mut S,
        interest: Interest,
        f: F,
    ) -> io::Result<HandlerId>
    where
        S: Source + ?Sized,
        F: FnMut(Ready) + 'static,
    {
        let site = Location::caller();
        let mut handlers = self.inner.handlers.borrow_mut();
        let entry = handlers.vacant_entry();
        if !HandlerId::key_fits(entry.key()) {
            return Err(io::Error::other("too many fd handlers on one loop"));
        }
        let generation = self.inner.next_generation.get();
        self.inner
            .next_generation
            .set(HandlerId::next_generation(generation));
        let id = HandlerId {
            key: entry.key(),
            generation,
        };
        self.inner.registry.register(source, id.token(), interest)?;
        let callback: HandlerFn = Rc::new(RefCell::new(f));
        entry.insert(HandlerSlot {
            generation,
            callback,
            site,
        });
        Ok(id)
    }

    /// Changes the readiness a handler is called for. Tornado:
    /// `IOLoop.update_handler`.
    ///
    /// # Errors
    ///
    /// `NotFound` if `id` names no handler; else the error of
    /// `mio::Registry::reregister`.
    pub fn update_handler<S>(
        &self,
        id: HandlerId,
        source: &mut S,
        interest: Interest,
    ) -> io::Result<()>
    where
        S: Source + ?Sized,
    {
        if !self.handler_exists(id) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such fd handler",
            ));
        }
        self.inner.registry.reregister(source, id.token(), interest)
    }

    /// Gives a registered handler a new callback, keeping its registration:
    /// the next event for the source calls `f`, and none is lost in between
    /// (edge-triggered readiness continues as it was). The old callback is
    /// dropped; if it is the one running now, once it returns. A stream
    /// uses it to hand a quiet socket to a small record while its buffers
    /// are freed, and to take it back.
    ///
    /// # Errors
    ///
    /// `NotFound` if `id` names no handler.
    #[track_caller]
    pub fn replace_handler<F>(&self, id: HandlerId, f: F) -> io::Result<()>
    where
        F: FnMut(Ready) + 'static,
    {
        let callback: HandlerFn = Rc::new(RefCell::new(f));
        let old = {
            let mut handlers = self.inner.handlers.borrow_mut();
            match handlers.get_mut(id.key) {
                Some(slot) if slot.generation == id.generation => {
                    slot.site = Location::caller();
                    mem::replace(&mut slot.callback, callback)
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "no such fd handler",
                    ))
                }
            }
        };
        drop(old); // outside the borrow: it may own what removes handlers
        Ok(())
    }

    /// Unregisters `source` and drops its handler; no event for it is
    /// dispatched after this returns (not even one already polled). Tornado:
    /// `IOLoop.remove_handler`.
    ///
    /// # Errors
    ///
    /// `NotFound` if `id` names no handler; else the error of
    /// `mio::Registry::deregister` (the handler is dropped all the same).
    pub fn remove_handler<S>(&self, id: HandlerId, source: &mut S) -> io::Result<()>
    where
        S: Source + ?Sized,
    {
        let removed = {
            let mut handlers = self.inner.handlers.borrow_mut();
            match handlers.get(id.key) {
                Some(slot) if slot.generation == id.generation => Some(handlers.remove(id.key)),
                _ => None,
            }
        };
        let Some(slot) = removed else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such fd handler",
            ));
        };
        let result = self.inner.registry.deregister(source);
        drop(slot); // outside the borrow
        result
    }

    /// Whether `id` names a registered handler.
    fn handler_exists(&self, id: HandlerId) -> bool {
        matches!(self.inner.handlers.borrow().get(id.key), Some(slot) if slot.generation == id.generation)
    }

    // ----- tasks -------------------------------------------------------------

    /// Spawns `future` as a task on this loop and returns a handle to await its
    /// output. The future need not be `Send`; it first runs on the next
    /// iteration. Tornado: `IOLoop.spawn_callback`, `IOLoop.add_future`.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
    {
        let site = Location::caller();
        let (task, state) = task::new_task(future, site);
        let id = self.inner.next_task_id.get();
        self.inner.next_task_id.set(id + 1);
        let key = {
            let mut tasks = self.inner.tasks.borrow_mut();
            let entry = tasks.vacant_entry();
            let key = entry.key();
            let waker = task::task_waker(key, id, &self.inner.shared);
            entry.insert(TaskSlot {
                id,
                future: Some(Box::pin(task)),
                handle: Some(task::waker_of(&waker)),
                waker,
                aborted: false,
                site,
            });
            key
        };
        self.inner
            .runnables
            .borrow_mut()
            .push_back(Runnable::Task(key, id));
        JoinHandle::new(state, &self.inner, key, id)
    }

    /// Number of tasks spawned on this loop that have not finished.
    pub fn pending_tasks(&self) -> usize {
        self.inner.tasks.borrow().len()
    }

    /// Drops the task `(key, id)`, or marks it to be dropped after its poll.
    pub(crate) fn abort_task(&self, key: usize, id: u64) {
        let removed = {
            let mut tasks = self.inner.tasks.borrow_mut();
            match tasks.get_mut(key) {
                Some(slot) if slot.id == id && slot.future.is_none() => {
                    slot.aborted = true;
                    None
                }
                Some(slot) if slot.id == id => Some(tasks.remove(key)),
                _ => None,
            }
        };
        // Outside the borrow; the task's `TaskFuture` catches a panic of the
        // user's destructor.
        drop(removed);
    }

    // ----- the loop itself ---------------------------------------------------

    /// Makes this loop current for the duration of a run, restoring the previous
    /// current loop afterwards.
    fn run(&self, mut main: Option<&mut dyn FnMut(&mut Context<'_>) -> bool>) {
        assert!(!self.inner.closed.get(), "the event loop was closed");
        assert!(
            !self.inner.running.get(),
            "the event loop is already running"
        );
        let previous = CURRENT.with(|current| current.replace(Some(self.clone())));
        self.inner.running.set(true);
        // Restores the loop's state however `run` ends, including by a panic of
        // the run_sync future propagating out of it.
        let _guard = RunGuard {
            io_loop: self,
            previous,
        };
        let main_waker = Arc::new(MainWaker {
            woken: AtomicBool::new(true),
            shared: self.inner.shared.clone(),
        });
        let waker = Waker::from(main_waker.clone());
        let mut due = Vec::new();
        loop {
            if self.iterate(&mut main, &main_waker, &waker, &mut due) {
                break;
            }
        }
    }

    /// One iteration, as documented on [`start`](IoLoop::start). Returns true
    /// when the loop should return.
    fn iterate(
        &self,
        main: &mut Option<&mut dyn FnMut(&mut Context<'_>) -> bool>,
        main_waker: &MainWaker,
        waker: &Waker,
        due: &mut Vec<TimeoutHandle>,
    ) -> bool {
        let inner = &*self.inner;

        // The clock, read once for the iteration: what `loop_time` answers
        // until the next reading, and what step 4 judges timers by.
        let now = Instant::now();
        inner.clock.set(now);

        // Step 1. Drain the inbox.
        self.drain_remote();

        // Step 2. Poll the run_sync future if it was woken.
        if let Some(main) = main.as_mut() {
            if main_waker.woken.swap(false, Ordering::SeqCst)
                && main(&mut Context::from_waker(waker))
            {
                return true;
            }
        }

        // Step 3. Snapshot the run queue.
        let ready = inner.runnables.borrow().len();

        // Step 4. Pop due timers.
        {
            let mut timers = inner.timers.borrow_mut();
            while let Some(handle) = timers.pop_due(now) {
                due.push(handle);
            }
        }

        // Step 5. Run the snapshot, then the due timers.
        for _ in 0..ready {
            let next = inner.runnables.borrow_mut().pop_front();
            match next {
                Some(Runnable::Callback(f, site)) => self.run_callback(site, "callback", f),
                Some(Runnable::Shared(f, site)) => self.run_callback(site, "callback", &*f),
                Some(Runnable::Task(key, id)) => self.poll_task(key, id),
                None => break,
            }
        }
        for handle in due.drain(..) {
            // `None`: cancelled since step 4.
            let timed = inner.timers.borrow_mut().remove(handle);
            match timed {
                Some(Timed::Callback(f, site)) => self.run_callback(site, "timeout", f),
                Some(Timed::Wake(waker)) => waker.wake(),
                None => {}
            }
        }

        // Step 6. Stop if asked to.
        if inner.stopping.get() {
            return true;
        }

        // Step 7. Poll for I/O. Only a poll that may block announces itself
        // to wakers (`enter_sleep`), and must then re-check the inbox and the
        // run_sync flag to close the race with a wake-up in between (both
        // `SeqCst` loads: see `MainWaker::wake_by_ref`).
        let main_woken = || main.is_some() && main_waker.woken.load(Ordering::SeqCst);
        let busy =
            !inner.runnables.borrow().is_empty() || inner.shared.has_pending() || main_woken();
        let may_block = !busy && {
            inner.shared.enter_sleep();
            !(inner.shared.has_pending() || main_woken())
        };
        let timeout = if may_block {
            inner.timers.borrow_mut().next_deadline().map(|deadline| {
                let now = Instant::now();
                inner.clock.set(now);
                deadline.saturating_duration_since(now)
            })
        } else {
            Some(Duration::ZERO)
        };
        let polled = {
            let mut events = inner.events.borrow_mut();
            inner.poll.borrow_mut().poll(&mut events, timeout)
        };
        if !busy {
            inner.shared.leave_sleep();
        }
        if may_block {
            // The poll may have slept: the handlers it wakes read the
            // clock as it is now, not as it was before.
            inner.clock.set(Instant::now());
        }
        if let Err(e) = polled {
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("polling for I/O failed: {e}");
            }
            return false;
        }

        // Step 8. Dispatch events.
        let events = inner.events.borrow();
        for event in events.iter() {
            if event.token() == WAKER_TOKEN {
                continue;
            }
            let id = HandlerId::from_token(event.token());
            let handler = match inner.handlers.borrow().get(id.key) {
                Some(slot) if slot.generation == id.generation => {
                    Some((slot.callback.clone(), slot.site))
                }
                _ => None,
            };
            if let Some((callback, site)) = handler {
                let ready = Ready::from_event(event);
                self.run_callback(site, "fd handler", || (callback.borrow_mut())(ready));
            }
        }
        false
    }

    /// Moves the inbox into the run queue.
    fn drain_remote(&self) {
        let inner = &*self.inner;
        if !inner.shared.has_pending() {
            return; // the common case, without taking the lock
        }
        let spare = mem::take(&mut *inner.spare_remote.borrow_mut());
        let mut remote = inner.shared.take(spare);
        if remote.is_empty() {
            *inner.spare_remote.borrow_mut() = remote;
            return;
        }
        {
            let mut runnables = inner.runnables.borrow_mut();
            for (key, id) in remote.woken.drain(..) {
                runnables.push_back(Runnable::Task(key, id));
            }
            for (f, site) in remote.callbacks.drain(..) {
                runnables.push_back(Runnable::Callback(f, site));
            }
        }
        if mem::take(&mut remote.stop) {
            inner.stopping.set(true);
        }
        *inner.spare_remote.borrow_mut() = remote;
    }

    /// Runs one callback, catching a panic and timing it if the blocking
    /// detector is on.
    fn run_callback(&self, site: &'static Location<'static>, what: &str, f: impl FnOnce()) {
        let started = self
            .inner
            .blocking_threshold
            .get()
            .map(|t| (t, Instant::now()));
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            log::error!(
                "{what} registered at {site} panicked: {}",
                panic_message(&*payload)
            );
        }
        if let Some((threshold, started)) = started {
            report_blocking(threshold, started, what, site);
        }
    }

    /// Polls task `(key, id)` once, if it still exists.
    fn poll_task(&self, key: usize, id: u64) {
        let inner = &*self.inner;
        // Step 1. Take the future out, so the task table is not borrowed while
        // user code runs.
        let (mut future, waker, site) = {
            let mut tasks = inner.tasks.borrow_mut();
            let Some(slot) = tasks.get_mut(key).filter(|slot| slot.id == id) else {
                return;
            };
            let Some(future) = slot.future.take() else {
                return;
            };
            slot.waker.scheduled.store(false, Ordering::Release);
            let waker = slot
                .handle
                .take()
                .unwrap_or_else(|| task::waker_of(&slot.waker));
            (future, waker, slot.site)
        };
        // Step 2. Poll it (TaskFuture catches the task's own panics).
        let started = inner.blocking_threshold.get().map(|t| (t, Instant::now()));
        let done = future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        if let Some((threshold, started)) = started {
            report_blocking(threshold, started, "task", site);
        }
        // Step 3. Put it back, or drop it if it finished or was aborted.
        let finished = {
            let mut tasks = inner.tasks.borrow_mut();
            let ours = tasks.get(key).is_some_and(|slot| slot.id == id);
            if ours && !done && !tasks[key].aborted {
                let slot = &mut tasks[key];
                slot.future = Some(future);
                slot.handle = Some(waker);
                None
            } else {
                Some((ours.then(|| tasks.remove(key)), future))
            }
        };
        // Outside the borrow; the `TaskFuture` catches a panic of the user's
        // destructor.
        drop(finished);
    }
}

impl IoLoop {
    /// Queues task `(key, id)` straight onto the run queue if `shared` belongs
    /// to the loop current on this thread — a waker fired on its own loop's
    /// thread — and returns true. Otherwise (another thread, another loop, or
    /// the run queue borrowed) returns false and the caller goes through the
    /// inbox, whose lock this skips.
    pub(crate) fn try_wake_local(shared: &Arc<Shared>, key: usize, id: u64) -> bool {
        CURRENT
            .try_with(|current| {
                let Ok(current) = current.try_borrow() else {
                    return false;
                };
                let Some(io_loop) = current
                    .as_ref()
                    .filter(|l| Arc::ptr_eq(&l.inner.shared, shared))
                else {
                    return false;
                };
                let Ok(mut runnables) = io_loop.inner.runnables.try_borrow_mut() else {
                    return false;
                };
                runnables.push_back(Runnable::Task(key, id));
                true
            })
            .unwrap_or(false)
    }

    /// Clears the current loop if it is `io_loop`.
    fn clear_current_if(io_loop: &IoLoop) {
        let _ = CURRENT.try_with(|current| {
            let mut current = current.borrow_mut();
            if current
                .as_ref()
                .is_some_and(|c| Rc::ptr_eq(&c.inner, &io_loop.inner))
            {
                current.take()
            } else {
                None
            }
        });
    }
}

/// Logs a warning if a dispatch started at `started` took longer than `threshold`.
fn report_blocking(
    threshold: Duration,
    started: Instant,
    what: &str,
    site: &'static Location<'static>,
) {
    let took = started.elapsed();
    if took > threshold {
        log::warn!(
            "blocked the event loop for {:.3}s: {what} registered at {site}",
            took.as_secs_f64()
        );
    }
}

/// Ends a run of the loop: clears `running` and `stopping` and restores the
/// thread's previous current loop.
struct RunGuard<'a> {
    /// The loop that was running.
    io_loop: &'a IoLoop,
    /// The current loop before the run.
    previous: Option<IoLoop>,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.io_loop.inner.running.set(false);
        self.io_loop.inner.stopping.set(false);
        let previous = self.previous.take();
        let replaced = CURRENT.try_with(|current| current.replace(previous));
        drop(replaced);
    }
}

/// The waker of the [`run_sync`](IoLoop::run_sync) future: sets a flag the
/// loop checks in step 2, and wakes a sleeping loop.
struct MainWaker {
    /// True when the future should be polled. Read and written only with
    /// `SeqCst` (see [`MainWaker::wake_by_ref`]).
    woken: AtomicBool,
    /// The loop to wake.
    shared: Arc<Shared>,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // `SeqCst`, like every access to `woken` and to `Shared::sleeping`:
        // the loop stores `sleeping` then loads `woken`, this stores `woken`
        // then loads `sleeping`; only in a single total order must one of
        // the two see the other's store (weaker orderings let both read the
        // old value, and the wake-up would be lost).
        if !self.woken.swap(true, Ordering::SeqCst) {
            self.shared.notify();
        }
    }
}

impl Default for IoLoop {
    fn default() -> Self {
        IoLoop::new()
    }
}

impl fmt::Debug for IoLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoLoop")
            .field("running", &self.inner.running.get())
            .field("closed", &self.inner.closed.get())
            .field("handlers", &self.inner.handlers.borrow().len())
            .field("tasks", &self.inner.tasks.borrow().len())
            .field("timers", &self.inner.timers.borrow().len())
            .finish()
    }
}
