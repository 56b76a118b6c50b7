//! Behaviour of the thread pool: [`ThreadPool`], [`run_in_executor`] and
//! [`default_pool`].

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use support::{run, wait_until, yield_now, DropFlag, SAFETY};
use whirl_ioloop::{default_pool, multi, run_in_executor, spawn, IoLoop, JoinError, ThreadPool};

/// A barrier whose `wait` gives up after a while, so a test whose jobs never
/// all meet fails instead of leaving workers blocked for ever.
struct TimedBarrier {
    /// How many have arrived.
    arrived: Mutex<usize>,
    /// Signalled when the last one arrives.
    all_in: Condvar,
    /// How many must arrive.
    n: usize,
}

impl TimedBarrier {
    fn new(n: usize) -> TimedBarrier {
        TimedBarrier {
            arrived: Mutex::new(0),
            all_in: Condvar::new(),
            n,
        }
    }

    /// Arrives and waits for the others; false if they did not all arrive
    /// within `limit`.
    fn wait(&self, limit: Duration) -> bool {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        if *arrived == self.n {
            self.all_in.notify_all();
            return true;
        }
        let (arrived, _) = self
            .all_in
            .wait_timeout_while(arrived, limit, |arrived| *arrived < self.n)
            .unwrap();
        *arrived >= self.n
    }
}

/// A job body that panics with a formatted message.
fn explode(n: usize) -> usize {
    panic!("job {n} failed")
}

// ----- threads ---------------------------------------------------------------------

#[test]
fn jobs_run_on_worker_threads_and_results_come_back_to_the_loop_thread() {
    let io_loop = IoLoop::new();
    let pool = ThreadPool::new(2);
    let loop_thread = thread::current().id();
    let (job_thread, awaiter_thread) = run(&io_loop, async {
        // Awaited from a spawned task, not just the run_sync future.
        spawn(async move {
            let job_thread = pool.submit(|| thread::current().id()).await.unwrap();
            (job_thread, thread::current().id())
        })
        .await
        .unwrap()
    });
    assert_ne!(job_thread, loop_thread, "the job ran on a worker thread");
    assert_eq!(
        awaiter_thread, loop_thread,
        "the result came back to the loop thread"
    );
}

#[test]
fn run_in_executor_runs_on_the_default_pool() {
    let io_loop = IoLoop::new();
    let loop_thread = thread::current().id();
    let (out, job_thread) = run(&io_loop, async {
        run_in_executor(|| (6 * 7, thread::current().id()))
            .await
            .unwrap()
    });
    assert_eq!(out, 42);
    assert_ne!(job_thread, loop_thread);
}

#[test]
fn default_pool_has_five_threads_per_cpu() {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(default_pool().size(), 5 * cpus);
    assert!(
        std::ptr::eq(default_pool(), default_pool()),
        "one process-wide pool"
    );
}

#[test]
fn the_loop_keeps_running_while_a_job_blocks() {
    let io_loop = IoLoop::new();
    let pool = ThreadPool::new(1);
    let (release, released) = mpsc::channel::<()>();
    let ticks = Arc::new(AtomicUsize::new(0));
    let out = run(&io_loop, async {
        // The job blocks until the loop releases it: if the loop were blocked
        // too, neither would ever go on.
        let job = pool.submit(move || released.recv_timeout(SAFETY).is_ok());
        let ticker = spawn({
            let ticks = ticks.clone();
            async move {
                for _ in 0..10 {
                    yield_now().await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        ticker.await.unwrap();
        IoLoop::current().call_later(Duration::from_millis(1), move || {
            release.send(()).expect("the job is waiting");
        });
        job.await
    });
    assert_eq!(out, Ok(true), "the loop's timer released the blocked job");
    assert_eq!(ticks.load(Ordering::SeqCst), 10);
}

#[test]
fn a_loop_timer_fires_while_a_job_sleeps() {
    let io_loop = IoLoop::new();
    let pool = ThreadPool::new(1);
    let fired = Arc::new(AtomicBool::new(false));
    let out = run(&io_loop, async {
        // The job sleeps, a millisecond at a time, until it sees the timer's
        // mark; it reports whether it did.
        let job = pool.submit({
            let fired = fired.clone();
            move || {
                let started = Instant::now();
                while !fired.load(Ordering::SeqCst) && started.elapsed() < SAFETY {
                    thread::sleep(Duration::from_millis(1));
                }
                fired.load(Ordering::SeqCst)
            }
        });
        IoLoop::current().call_later(Duration::from_millis(5), {
            let fired = fired.clone();
            move || fired.store(true, Ordering::SeqCst)
        });
        job.await
    });
    assert_eq!(out, Ok(true));
}

// ----- panics ----------------------------------------------------------------------

#[test]
fn a_panicking_job_yields_panicked_and_the_pool_keeps_its_size() {
    let io_loop = IoLoop::new();
    let pool = ThreadPool::new(2);
    let (failures, threads) = run(&io_loop, async {
        let failures = multi((0..20).map(|i| pool.submit(move || explode(i)))).await;
        let threads = multi((0..100).map(|_| {
            pool.submit(|| {
                // Long enough that both workers take a share.
                thread::sleep(Duration::from_micros(200));
                thread::current().id()
            })
        }))
        .await;
        (failures, threads)
    });
    for (i, failure) in failures.into_iter().enumerate() {
        assert_eq!(failure, Err(JoinError::Panicked(format!("job {i} failed"))));
    }
    let threads: Vec<ThreadId> = threads
        .into_iter()
        .map(|r| r.expect("a job after the panics succeeded"))
        .collect();
    assert_eq!(threads.len(), 100);
    let distinct: HashSet<ThreadId> = threads.into_iter().collect();
    assert!(
        distinct.len() <= 2,
        "ran on {} threads, the pool has 2",
        distinct.len()
    );
    assert_eq!(pool.size(), 2);
}

// ----- concurrency -----------------------------------------------------------------

#[test]
fn a_pool_of_ten_runs_ten_blocking_jobs_at_once() {
    const N: usize = 10;
    let io_loop = IoLoop::new();
    let pool = ThreadPool::new(N);
    assert_eq!(pool.size(), N);
    let barrier = Arc::new(TimedBarrier::new(N));
    let met = run(&io_loop, async {
        multi((0..N).map(|_| {
            let barrier = barrier.clone();
            pool.submit(move || barrier.wait(SAFETY))
        }))
        .await
    });
    assert_eq!(
        met,
        vec![Ok(true); N],
        "all ten jobs were blocked at the barrier together"
    );
}

#[test]
fn many_jobs_all_complete() {
    let io_loop = IoLoop::new();
    let pool = ThreadPool::new(4);
    let outs = run(
        &io_loop,
        multi((0..1000u64).map(|i| pool.submit(move || i * i))),
    );
    let sum: u64 = outs.into_iter().map(Result::unwrap).sum();
    assert_eq!(sum, (0..1000u64).map(|i| i * i).sum());
}

// ----- cancellation and shutdown ---------------------------------------------------

#[test]
fn dropping_a_submitted_future_before_the_job_starts_cancels_it() {
    let io_loop = IoLoop::new();
    let pool = ThreadPool::new(1);
    let (release, released) = mpsc::channel::<()>();
    let ran = Arc::new(AtomicBool::new(false));
    let dropped = DropFlag::new();
    run(&io_loop, async {
        // The only worker is busy...
        let busy = pool.submit(move || released.recv_timeout(SAFETY).is_ok());
        // ...so this job waits in the queue, and its future is dropped there.
        let token = dropped.token();
        let cancelled = pool.submit({
            let ran = ran.clone();
            move || {
                let _token = token;
                ran.store(true, Ordering::SeqCst);
            }
        });
        drop(cancelled);
        release.send(()).expect("the busy job is waiting");
        assert_eq!(busy.await, Ok(true));
        // A job queued after the cancelled one: once it ran, the cancelled one
        // was taken off the queue.
        assert_eq!(pool.submit(|| "after").await, Ok("after"));
    });
    assert!(!ran.load(Ordering::SeqCst), "the cancelled job never ran");
    assert!(dropped.dropped(), "the cancelled job's closure was dropped");
}

#[test]
fn dropping_a_submitted_future_after_the_job_started_lets_it_finish() {
    let io_loop = IoLoop::new();
    let pool = ThreadPool::new(1);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    run(&io_loop, async {
        let job = pool.submit({
            let finished = finished.clone();
            move || {
                started_tx.send(()).expect("the test is listening");
                released
                    .recv_timeout(SAFETY)
                    .expect("the test releases the job");
                finished.store(true, Ordering::SeqCst);
                "discarded"
            }
        });
        wait_until(|| started_rx.try_recv().is_ok()).await;
        drop(job);
        release.send(()).expect("the job is waiting");
        // The next job runs after the first finished, on the same worker.
        assert_eq!(pool.submit(|| 1).await, Ok(1));
    });
    assert!(
        finished.load(Ordering::SeqCst),
        "a started job runs to the end"
    );
}

#[test]
fn jobs_submitted_before_the_pool_is_dropped_still_run() {
    let io_loop = IoLoop::new();
    let pool = ThreadPool::new(1);
    let jobs: Vec<_> = (0..5).map(|i| pool.submit(move || i + 1)).collect();
    drop(pool);
    let outs = run(&io_loop, multi(jobs));
    assert_eq!(outs, vec![Ok(1), Ok(2), Ok(3), Ok(4), Ok(5)]);
}

#[test]
fn clones_share_one_pool() {
    let io_loop = IoLoop::new();
    let pool = ThreadPool::new(1);
    let clone = pool.clone();
    drop(pool);
    let threads = run(&io_loop, async {
        let a = clone.submit(|| thread::current().id()).await.unwrap();
        let b = clone
            .clone()
            .submit(|| thread::current().id())
            .await
            .unwrap();
        (a, b)
    });
    assert_eq!(threads.0, threads.1, "a pool of one has one worker");
    assert_eq!(clone.size(), 1);
}

#[test]
#[should_panic(expected = "at least one thread")]
fn a_pool_of_zero_threads_is_refused() {
    let _ = ThreadPool::new(0);
}
