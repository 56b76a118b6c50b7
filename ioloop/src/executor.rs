//! [`ThreadPool`] and [`run_in_executor`]: blocking work off the loop thread
//! (Tornado's `run_on_executor` / `IOLoop.run_in_executor`).
//!
//! A job runs on a worker thread; its result travels back through a one-shot
//! slot whose waker wakes the awaiting task on the loop thread. The pool knows
//! nothing of loops: any future executor could await it.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread;

use crate::task::{panic_message, JoinError};

/// A job as the workers see it.
type Job = Box<dyn FnOnce() + Send>;

/// A fixed-size pool of worker threads for blocking work.
///
/// Tornado: `concurrent.futures.ThreadPoolExecutor(n)` used through
/// `@run_on_executor` or `IOLoop.run_in_executor`. Clones share the pool; the
/// workers exit once the last clone is dropped and the queue is empty. A job
/// that panics yields [`JoinError::Panicked`] and its worker carries on, so the
/// pool keeps its size.
///
/// # Examples
///
/// ```
/// use whirl_ioloop::{IoLoop, ThreadPool};
///
/// let pool = ThreadPool::new(10); // the seed's ThreadPoolExecutor(10)
/// let sum = IoLoop::new().run_sync(pool.submit(|| (1..=100u64).sum::<u64>()));
/// assert_eq!(sum, Ok(5050));
/// ```
#[derive(Clone)]
pub struct ThreadPool {
    /// The queue and the workers' shared state.
    inner: Arc<PoolInner>,
    /// Counts live `ThreadPool` clones (not workers), to shut down on the last drop.
    _owner: Arc<Owner>,
}

/// State shared by the pool handles and its workers.
struct PoolInner {
    /// Jobs not yet picked up, and whether the pool is shutting down.
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the pool shuts down.
    available: Condvar,
    /// Number of worker threads.
    size: usize,
}

/// The job queue.
struct Queue {
    /// Jobs in submission order.
    jobs: VecDeque<Job>,
    /// Set when the last handle is dropped: workers exit once `jobs` is empty.
    shutdown: bool,
}

/// Dropped with the last handle; tells the workers to finish.
struct Owner {
    /// The pool to shut down.
    inner: Arc<PoolInner>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.inner.lock().shutdown = true;
        self.inner.available.notify_all();
    }
}

impl PoolInner {
    /// Locks the queue; jobs never run under the lock, so poisoning is moot.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A worker's life: take jobs until shut down and drained.
    fn work(&self) {
        loop {
            let job = {
                let mut queue = self.lock();
                loop {
                    if let Some(job) = queue.jobs.pop_front() {
                        break job;
                    }
                    if queue.shutdown {
                        return;
                    }
                    queue = self
                        .available
                        .wait(queue)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            };
            job(); // a job catches its own panics (see `submit`)
        }
    }
}

impl ThreadPool {
    /// A pool of `size` worker threads, started now.
    ///
    /// # Panics
    ///
    /// If `size` is zero, or the OS refuses to start a thread.
    pub fn new(size: usize) -> ThreadPool {
        assert!(size > 0, "a thread pool needs at least one thread");
        let inner = Arc::new(PoolInner {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                shutdown: false,
            }),
            available: Condvar::new(),
            size,
        });
        for i in 0..size {
            let worker = inner.clone();
            thread::Builder::new()
                .name(format!("whirl-pool-{i}"))
                .spawn(move || worker.work())
                .unwrap_or_else(|e| panic!("cannot start a thread-pool worker: {e}"));
        }
        ThreadPool {
            _owner: Arc::new(Owner {
                inner: inner.clone(),
            }),
            inner,
        }
    }

    /// Number of worker threads.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// Runs `f` on a worker thread; the returned future resolves, on the
    /// awaiting task's thread, to its result. Tornado: `executor.submit(fn)`.
    ///
    /// Dropping the future before the job starts cancels the job; once started
    /// it runs to the end and its result is discarded.
    pub fn submit<F, T>(&self, f: F) -> Submitted<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState {
                result: None,
                waker: None,
            }),
            cancelled: AtomicBool::new(false),
        });
        let worker_slot = slot.clone();
        let job: Job = Box::new(move || {
            if worker_slot.cancelled.load(Ordering::Acquire) {
                return;
            }
            let result = catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
                let msg = panic_message(&*payload);
                log::error!("thread-pool job panicked: {msg}");
                JoinError::Panicked(msg)
            });
            worker_slot.fill(result);
        });
        self.inner.lock().jobs.push_back(job);
        self.inner.available.notify_one();
        Submitted { slot }
    }
}

/// The process-wide default pool: `5 ×` the number of CPUs, started on first
/// use (Tornado 5's default executor size).
pub fn default_pool() -> &'static ThreadPool {
    static POOL: OnceLock<ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let cpus = thread::available_parallelism().map_or(1, |n| n.get());
        ThreadPool::new(cpus * 5)
    })
}

/// Runs blocking `f` on the [default pool](default_pool) and resolves to its
/// result without blocking the loop. Tornado: `IOLoop.run_in_executor(None, f)`.
///
/// # Examples
///
/// ```
/// use whirl_ioloop::{run_in_executor, IoLoop};
///
/// let out = IoLoop::new().run_sync(run_in_executor(|| {
///     std::thread::sleep(std::time::Duration::from_millis(5)); // blocking is fine here
///     "done"
/// }));
/// assert_eq!(out, Ok("done"));
/// ```
pub fn run_in_executor<F, T>(f: F) -> Submitted<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    default_pool().submit(f)
}

/// The one-shot channel from a worker back to the awaiting task.
struct Slot<T> {
    /// The result and the waker of whoever awaits it.
    state: Mutex<SlotState<T>>,
    /// Set when the [`Submitted`] future is dropped.
    cancelled: AtomicBool,
}

/// What a [`Slot`] holds.
struct SlotState<T> {
    /// The job's outcome, once it finished.
    result: Option<Result<T, JoinError>>,
    /// The waker to call when it does.
    waker: Option<Waker>,
}

impl<T> Slot<T> {
    /// Stores the outcome and wakes the awaiting task (outside the lock).
    fn fill(&self, result: Result<T, JoinError>) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.result = Some(result);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The future of a job submitted to a [`ThreadPool`]; resolves to the job's
/// result, or to [`JoinError::Panicked`] if it panicked.
#[must_use = "futures do nothing unless awaited (dropping this cancels a job not yet started)"]
pub struct Submitted<T> {
    /// Where the worker puts the result.
    slot: Arc<Slot<T>>,
}

impl<T> Future for Submitted<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(result) = state.result.take() {
            return Poll::Ready(result);
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for Submitted<T> {
    fn drop(&mut self) {
        self.slot.cancelled.store(true, Ordering::Release);
    }
}

impl<T> fmt::Debug for Submitted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submitted").finish_non_exhaustive()
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("size", &self.inner.size)
            .field("queued", &self.inner.lock().jobs.len())
            .finish()
    }
}
