//! whirl's loop against tokio's `current_thread` runtime, in the same run.
//!
//! Measures, for N units of work each (default 1,000,000):
//!
//! - **(a) callbacks**: a callback that re-adds itself with
//!   `IoLoop::add_callback` N times, against a chain of `tokio::spawn` (each
//!   task spawns the next: one heap-allocated unit of work per step, as a boxed
//!   callback is). Also a single task yielding N times, against
//!   `tokio::task::yield_now` — that row goes through each runtime's waker.
//! - **(b) timers**: N timers with delays spread over 0..=1 ms, all scheduled
//!   then fired — whirl's `call_later` callbacks, and whirl's `sleep` in N
//!   spawned tasks, each against N spawned tokio tasks awaiting
//!   `tokio::time::sleep` (tokio has no callback timer).
//! - **(c) spawn + join**: N tasks spawned, then every `JoinHandle` awaited,
//!   inside `run_sync` / `block_on`.
//! - **(d) cross-thread**: one other thread hands the loop N callbacks with
//!   `LoopHandle::add_callback`; the loop stops after the Nth. Against tokio's
//!   `Handle::spawn` from the other thread (the closest thing to "run this on
//!   the loop"), and also a tokio unbounded mpsc channel drained by one task.
//!
//! Each case is timed from the first unit scheduled to the last one run (the
//! loop or runtime is built beforehand), repeated (default 5 times, whirl and
//! tokio alternating), and the best and median are kept. The ratio is
//! tokio / whirl: above 1 means whirl is faster.
//!
//! Run it with:
//!
//! ```text
//! cargo bench -p whirl-ioloop --bench ioloop
//! ```
//!
//! `WHIRL_BENCH_N=10000` scales N down (for a quick smoke run in CI);
//! `WHIRL_BENCH_REPS=3` changes the number of repetitions;
//! `WHIRL_BENCH_ONLY="(a)"` runs only the cases whose name contains that text
//! (handy under a profiler).

// A bench binary has no API to document; its items are explained by comments.
#![allow(missing_docs)]

use std::cell::{Cell, RefCell};
use std::env;
use std::future::{poll_fn, Future};
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use whirl_ioloop::IoLoop;

/// Default number of units of work per case.
const DEFAULT_N: usize = 1_000_000;
/// Default number of repetitions per case.
const DEFAULT_REPS: usize = 5;

// ----- a countdown shared by both runtimes ------------------------------------
//
// Every unit of work calls `tick`; the Nth one stops the loop (whirl) or wakes
// the future `block_on` waits on (tokio). Both runtimes run everything on the
// bench's thread, so a thread-local counter costs the same on either side.

thread_local! {
    /// Units of work done in the current measurement.
    static DONE: Cell<usize> = const { Cell::new(0) };
    /// The future waiting for the count to reach N, if any.
    static WAITER: RefCell<Option<Waker>> = const { RefCell::new(None) };
}

/// Starts a new count.
fn reset() {
    DONE.with(|d| d.set(0));
    WAITER.with(|w| w.borrow_mut().take());
}

/// Counts one unit; true (and the waiter woken) when it was the Nth.
fn tick(n: usize) -> bool {
    let done = DONE.with(|d| {
        let v = d.get() + 1;
        d.set(v);
        v
    });
    if done == n {
        if let Some(waker) = WAITER.with(|w| w.borrow_mut().take()) {
            waker.wake();
        }
        true
    } else {
        false
    }
}

/// Units done so far.
fn done() -> usize {
    DONE.with(Cell::get)
}

/// Completes once `tick` has been called `n` times.
fn wait(n: usize) -> impl Future<Output = ()> {
    poll_fn(move |cx| {
        if done() >= n {
            return Poll::Ready(());
        }
        WAITER.with(|w| *w.borrow_mut() = Some(cx.waker().clone()));
        Poll::Pending
    })
}

/// Returns `Pending` once after waking itself (whirl has no `yield_now`).
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A fresh tokio runtime, as the comparison asks for.
fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio current_thread runtime")
}

/// The delay of timer `i`: 0 or 1 ms.
fn spread(i: usize) -> Duration {
    Duration::from_millis((i % 2) as u64)
}

/// Checks a measurement did all its work, so a broken case cannot look fast.
fn check(what: &str, n: usize) {
    assert_eq!(done(), n, "{what}: not every unit of work ran");
}

// ----- (a) callbacks -------------------------------------------------------------

/// One step of the whirl chain: count, then re-add itself or stop.
fn whirl_chain_step(n: usize) {
    let io_loop = IoLoop::current();
    if tick(n) {
        io_loop.stop();
    } else {
        io_loop.add_callback(move || whirl_chain_step(n));
    }
}

fn whirl_callbacks(n: usize) -> Duration {
    let io_loop = IoLoop::new();
    reset();
    let started = Instant::now();
    io_loop.add_callback(move || whirl_chain_step(n));
    io_loop.start();
    let took = started.elapsed();
    check("whirl callbacks", n);
    io_loop.close();
    took
}

/// One step of the tokio chain: count, then spawn the next step.
fn tokio_chain_step(n: usize) {
    if !tick(n) {
        drop(tokio::spawn(async move { tokio_chain_step(n) }));
    }
}

fn tokio_spawn_chain(n: usize) -> Duration {
    let rt = tokio_rt();
    reset();
    let took = rt.block_on(async {
        let started = Instant::now();
        drop(tokio::spawn(async move { tokio_chain_step(n) }));
        wait(n).await;
        started.elapsed()
    });
    check("tokio spawn chain", n);
    took
}

fn whirl_yield(n: usize) -> Duration {
    let io_loop = IoLoop::new();
    reset();
    let took = io_loop.run_sync(async {
        let started = Instant::now();
        let task = whirl_ioloop::spawn(async move {
            while !tick(n) {
                YieldNow(false).await;
            }
        });
        task.await.expect("the yielding task");
        started.elapsed()
    });
    check("whirl yield", n);
    io_loop.close();
    took
}

fn tokio_yield(n: usize) -> Duration {
    let rt = tokio_rt();
    reset();
    let took = rt.block_on(async {
        let started = Instant::now();
        let task = tokio::spawn(async move {
            while !tick(n) {
                tokio::task::yield_now().await;
            }
        });
        task.await.expect("the yielding task");
        started.elapsed()
    });
    check("tokio yield", n);
    took
}

// ----- (b) timers ------------------------------------------------------------------

fn whirl_call_later(n: usize) -> Duration {
    let io_loop = IoLoop::new();
    reset();
    let started = Instant::now();
    for i in 0..n {
        io_loop.call_later(spread(i), move || {
            if tick(n) {
                IoLoop::current().stop();
            }
        });
    }
    io_loop.start();
    let took = started.elapsed();
    check("whirl call_later", n);
    io_loop.close();
    took
}

fn whirl_sleep_tasks(n: usize) -> Duration {
    let io_loop = IoLoop::new();
    reset();
    let took = io_loop.run_sync(async {
        let started = Instant::now();
        for i in 0..n {
            drop(whirl_ioloop::spawn(async move {
                whirl_ioloop::sleep(spread(i)).await;
                tick(n);
            }));
        }
        wait(n).await;
        started.elapsed()
    });
    check("whirl sleep tasks", n);
    io_loop.close();
    took
}

fn tokio_sleep_tasks(n: usize) -> Duration {
    let rt = tokio_rt();
    reset();
    let took = rt.block_on(async {
        let started = Instant::now();
        for i in 0..n {
            drop(tokio::spawn(async move {
                tokio::time::sleep(spread(i)).await;
                tick(n);
            }));
        }
        wait(n).await;
        started.elapsed()
    });
    check("tokio sleep tasks", n);
    took
}

// ----- (c) spawn + join ------------------------------------------------------------

fn whirl_spawn_join(n: usize) -> Duration {
    let io_loop = IoLoop::new();
    reset();
    let took = io_loop.run_sync(async {
        let started = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|i| {
                whirl_ioloop::spawn(async move {
                    tick(n);
                    i
                })
            })
            .collect();
        let mut sum = 0usize;
        for handle in handles {
            sum = sum.wrapping_add(handle.await.expect("a spawned task"));
        }
        black_box(sum);
        started.elapsed()
    });
    check("whirl spawn+join", n);
    io_loop.close();
    took
}

fn tokio_spawn_join(n: usize) -> Duration {
    let rt = tokio_rt();
    reset();
    let took = rt.block_on(async {
        let started = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|i| {
                tokio::spawn(async move {
                    tick(n);
                    i
                })
            })
            .collect();
        let mut sum = 0usize;
        for handle in handles {
            sum = sum.wrapping_add(handle.await.expect("a spawned task"));
        }
        black_box(sum);
        started.elapsed()
    });
    check("tokio spawn+join", n);
    took
}

// ----- (d) cross-thread ------------------------------------------------------------

fn whirl_cross_thread(n: usize) -> Duration {
    let io_loop = IoLoop::new();
    reset();
    let handle = io_loop.handle();
    let started = Instant::now();
    let producer = thread::spawn(move || {
        for _ in 0..n {
            handle.add_callback(move || {
                if tick(n) {
                    IoLoop::current().stop();
                }
            });
        }
    });
    io_loop.start();
    let took = started.elapsed();
    producer.join().expect("the producer thread");
    check("whirl cross-thread", n);
    io_loop.close();
    took
}

fn tokio_cross_thread_spawn(n: usize) -> Duration {
    let rt = tokio_rt();
    reset();
    let handle = rt.handle().clone();
    let started = Instant::now();
    let producer = thread::spawn(move || {
        for _ in 0..n {
            drop(handle.spawn(async move {
                tick(n);
            }));
        }
    });
    rt.block_on(wait(n));
    let took = started.elapsed();
    producer.join().expect("the producer thread");
    check("tokio Handle::spawn", n);
    took
}

fn tokio_cross_thread_mpsc(n: usize) -> Duration {
    let rt = tokio_rt();
    reset();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let started = Instant::now();
    let producer = thread::spawn(move || {
        for i in 0..n {
            tx.send(i).expect("the receiver is alive");
        }
    });
    rt.block_on(async {
        while let Some(i) = rx.recv().await {
            black_box(i);
            if tick(n) {
                break;
            }
        }
    });
    let took = started.elapsed();
    producer.join().expect("the producer thread");
    check("tokio mpsc", n);
    took
}

// ----- the harness ---------------------------------------------------------------

/// Best and median of a set of timings.
struct Stats {
    best: Duration,
    median: Duration,
}

impl Stats {
    fn of(mut times: Vec<Duration>) -> Stats {
        times.sort();
        Stats {
            best: times[0],
            median: times[times.len() / 2],
        }
    }
}

/// One row of the table: a whirl case and its tokio counterpart.
struct Case {
    name: &'static str,
    whirl: fn(usize) -> Duration,
    tokio: fn(usize) -> Duration,
}

/// Reads a positive count from the environment.
fn env_count(var: &str, default: usize) -> usize {
    match env::var(var) {
        Ok(v) => match v.replace('_', "").parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("{var} must be a positive integer, got {v:?}"),
        },
        Err(_) => default,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let n = env_count("WHIRL_BENCH_N", DEFAULT_N);
    let reps = env_count("WHIRL_BENCH_REPS", DEFAULT_REPS);
    let cases = [
        Case {
            name: "(a) add_callback chain | tokio spawn chain",
            whirl: whirl_callbacks,
            tokio: tokio_spawn_chain,
        },
        Case {
            name: "(a') task yield | tokio yield_now",
            whirl: whirl_yield,
            tokio: tokio_yield,
        },
        Case {
            name: "(b) call_later | tokio spawn+sleep",
            whirl: whirl_call_later,
            tokio: tokio_sleep_tasks,
        },
        Case {
            name: "(b') spawn+sleep | tokio spawn+sleep",
            whirl: whirl_sleep_tasks,
            tokio: tokio_sleep_tasks,
        },
        Case {
            name: "(c) spawn all, join all",
            whirl: whirl_spawn_join,
            tokio: tokio_spawn_join,
        },
        Case {
            name: "(d) LoopHandle::add_callback | Handle::spawn",
            whirl: whirl_cross_thread,
            tokio: tokio_cross_thread_spawn,
        },
        Case {
            name: "(d') LoopHandle::add_callback | mpsc",
            whirl: whirl_cross_thread,
            tokio: tokio_cross_thread_mpsc,
        },
    ];

    println!("whirl IoLoop vs tokio current_thread: N = {n}, best and median of {reps}");
    println!("ratio = tokio time / whirl time (> 1: whirl faster)\n");
    println!(
        "{:<46} {:>11} {:>11} {:>7} | {:>11} {:>11} {:>7}",
        "case (whirl | tokio)",
        "whirl best",
        "tokio best",
        "ratio",
        "whirl med",
        "tokio med",
        "ratio"
    );
    let only = env::var("WHIRL_BENCH_ONLY").unwrap_or_default();
    for case in cases
        .iter()
        .filter(|case| case.name.contains(only.as_str()))
    {
        let mut whirl = Vec::with_capacity(reps);
        let mut tokio = Vec::with_capacity(reps);
        for _ in 0..reps {
            whirl.push((case.whirl)(n));
            tokio.push((case.tokio)(n));
        }
        let (w, t) = (Stats::of(whirl), Stats::of(tokio));
        println!(
            "{:<46} {:>11} {:>11} {:>6.2}x | {:>11} {:>11} {:>6.2}x",
            case.name,
            ms(w.best),
            ms(t.best),
            t.best.as_secs_f64() / w.best.as_secs_f64(),
            ms(w.median),
            ms(t.median),
            t.median.as_secs_f64() / w.median.as_secs_f64(),
        );
    }
}
