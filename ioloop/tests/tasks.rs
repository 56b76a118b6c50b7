//! Behaviour of tasks: [`spawn`], [`JoinHandle`], [`JoinError`] and the task
//! wakers.

mod support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use support::{
    capture_logs, logs_of_this_thread, run, wait_until, yield_now, yield_times, DropFlag,
};
use whirl_ioloop::{sleep, spawn, IoLoop, JoinError, JoinHandle};

/// Code a [`Probe`] runs inside its first poll, with its waker.
type FirstPoll = Box<dyn FnOnce(&Waker)>;

/// A future that counts its polls, keeps the latest waker where the test can
/// reach it, runs `on_first_poll` with the waker during its first poll, and
/// never completes: whatever wakes it, it returns `Pending`.
struct Probe {
    /// How many times it was polled.
    polls: Rc<Cell<usize>>,
    /// The waker of its latest poll.
    waker: Rc<RefCell<Option<Waker>>>,
    /// Run once, inside the first poll.
    on_first_poll: Option<FirstPoll>,
}

impl Probe {
    fn new() -> Probe {
        Probe {
            polls: Rc::new(Cell::new(0)),
            waker: Rc::new(RefCell::new(None)),
            on_first_poll: None,
        }
    }
}

impl Future for Probe {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        if let Some(f) = self.on_first_poll.take() {
            f(cx.waker());
        }
        Poll::Pending
    }
}

/// Calls `wake_by_ref` on a clone of `waker` `n` times from a new thread, and
/// waits for that thread to finish.
fn wake_from_thread(waker: &Waker, n: usize) {
    let waker = waker.clone();
    thread::spawn(move || {
        for _ in 0..n {
            waker.wake_by_ref();
        }
    })
    .join()
    .expect("the waking thread panicked");
}

/// A task body that panics with a formatted message.
fn explode(n: u32) -> u32 {
    panic!("boom {n}")
}

// ----- spawn ---------------------------------------------------------------------

#[test]
fn spawn_runs_on_the_next_iteration_not_inline() {
    let io_loop = IoLoop::new();
    let ran = Rc::new(Cell::new(false));
    run(&io_loop, async {
        let handle = spawn({
            let ran = ran.clone();
            async move { ran.set(true) }
        });
        assert!(!ran.get(), "spawn must not poll the task inline");
        handle.await.unwrap();
        assert!(ran.get());
    });
}

#[test]
fn a_task_spawned_before_the_loop_runs_waits_for_it() {
    let io_loop = IoLoop::new();
    let ran = Rc::new(Cell::new(false));
    let handle = io_loop.spawn({
        let ran = ran.clone();
        async move { ran.set(true) }
    });
    assert!(!ran.get());
    assert_eq!(io_loop.pending_tasks(), 1);
    run(&io_loop, handle).unwrap();
    assert!(ran.get());
    assert_eq!(io_loop.pending_tasks(), 0);
}

#[test]
fn tasks_need_not_be_send() {
    let io_loop = IoLoop::new();
    let shared = Rc::new(RefCell::new(Vec::new()));
    let out = run(&io_loop, {
        let shared = shared.clone();
        async move {
            let handle = spawn({
                let shared = shared.clone();
                async move {
                    // An `Rc` held across an await: this future is `!Send`.
                    let local = Rc::new(5);
                    yield_now().await;
                    shared.borrow_mut().push(*local);
                    *local * 2
                }
            });
            handle.await
        }
    });
    assert_eq!(out, Ok(10));
    assert_eq!(*shared.borrow(), vec![5]);
}

#[test]
fn join_handle_yields_the_output() {
    let io_loop = IoLoop::new();
    let out = run(&io_loop, async {
        let handle = spawn(async {
            sleep(Duration::from_millis(2)).await;
            String::from("done")
        });
        assert!(!handle.is_finished());
        handle.await
    });
    assert_eq!(out, Ok(String::from("done")));
}

#[test]
fn a_handle_awaited_after_its_task_finished_yields_the_output() {
    let io_loop = IoLoop::new();
    let out = run(&io_loop, async {
        let handle = spawn(async { 3 });
        wait_until(|| handle.is_finished()).await;
        handle.await
    });
    assert_eq!(out, Ok(3));
}

#[test]
fn free_spawn_uses_the_current_loop() {
    let a = IoLoop::new();
    let b = IoLoop::new();
    // Inside a run, the running loop is current.
    run(&a, async {
        let handle = spawn(async { 1 });
        assert_eq!(a.pending_tasks(), 1);
        assert_eq!(b.pending_tasks(), 0);
        assert_eq!(handle.await, Ok(1));
    });
    // Outside any run, the loop made current.
    b.make_current();
    let handle = spawn(async { 2 });
    assert_eq!(b.pending_tasks(), 1);
    assert_eq!(a.pending_tasks(), 0);
    assert_eq!(run(&b, handle), Ok(2));
}

#[test]
fn a_join_handle_can_be_awaited_from_another_task() {
    let io_loop = IoLoop::new();
    let out = run(&io_loop, async {
        let first = spawn(async {
            sleep(Duration::from_millis(5)).await;
            20
        });
        let second = spawn(async move { first.await.map(|n| n + 1) });
        second.await
    });
    assert_eq!(out, Ok(Ok(21)));
}

#[test]
fn many_tasks_are_spawned_and_joined() {
    const N: u64 = 100_000;
    let io_loop = IoLoop::new();
    let sum = run(&io_loop, async {
        let handles: Vec<JoinHandle<u64>> = (0..N)
            .map(|i| {
                spawn(async move {
                    yield_now().await;
                    i
                })
            })
            .collect();
        assert_eq!(IoLoop::current().pending_tasks(), N as usize);
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, N * (N - 1) / 2);
    assert_eq!(io_loop.pending_tasks(), 0);
}

#[test]
fn pending_tasks_counts_unfinished_tasks_and_returns_to_zero() {
    let io_loop = IoLoop::new();
    run(&io_loop, async {
        let current = IoLoop::current();
        assert_eq!(current.pending_tasks(), 0);
        let handles: Vec<_> = (0..3u64)
            .map(|i| spawn(sleep(Duration::from_millis(1 + i))))
            .collect();
        assert_eq!(current.pending_tasks(), 3);
        for handle in handles {
            handle.await.unwrap();
        }
        assert_eq!(current.pending_tasks(), 0);
    });
    assert_eq!(io_loop.pending_tasks(), 0);
}

// ----- detaching -----------------------------------------------------------------

#[test]
fn dropping_the_handle_detaches_the_task() {
    let io_loop = IoLoop::new();
    let done = Rc::new(Cell::new(false));
    let dropped = DropFlag::new();
    run(&io_loop, async {
        let token = dropped.token();
        drop(spawn({
            let done = done.clone();
            async move {
                let _token = token;
                sleep(Duration::from_millis(5)).await;
                done.set(true);
            }
        }));
        assert!(
            !dropped.dropped(),
            "dropping the handle must not drop the task"
        );
        wait_until(|| done.get()).await;
    });
    assert!(done.get());
    assert!(dropped.dropped(), "a finished task's future is dropped");
    assert_eq!(io_loop.pending_tasks(), 0);
}

// ----- abort ---------------------------------------------------------------------

#[test]
fn abort_drops_an_unstarted_task_at_once() {
    let io_loop = IoLoop::new();
    let ran = Rc::new(Cell::new(false));
    let dropped = DropFlag::new();
    let out = run(&io_loop, async {
        let token = dropped.token();
        let handle = spawn({
            let ran = ran.clone();
            async move {
                let _token = token;
                ran.set(true);
            }
        });
        handle.abort();
        assert!(dropped.dropped(), "abort drops the future at once");
        assert!(handle.is_finished());
        assert_eq!(IoLoop::current().pending_tasks(), 0);
        // Let the iteration that would have polled it go by.
        yield_times(2).await;
        handle.await
    });
    assert_eq!(out, Err(JoinError::Cancelled));
    assert!(!ran.get(), "an aborted task never runs");
}

#[test]
fn abort_drops_a_pending_task_and_disarms_what_it_awaited() {
    let io_loop = IoLoop::new();
    let finished = Rc::new(Cell::new(false));
    let dropped = DropFlag::new();
    let out = run(&io_loop, async {
        let current = IoLoop::current();
        // After one iteration, so the safety net's own timer is armed.
        yield_now().await;
        let timers_before = current.pending_timeouts();
        let token = dropped.token();
        let handle = spawn({
            let finished = finished.clone();
            async move {
                let _token = token;
                sleep(Duration::from_secs(3600)).await;
                finished.set(true);
            }
        });
        yield_times(2).await;
        assert_eq!(
            current.pending_timeouts(),
            timers_before + 1,
            "the task armed its sleep"
        );
        assert!(!dropped.dropped());
        handle.abort();
        assert!(dropped.dropped(), "abort drops the future at once");
        assert_eq!(
            current.pending_timeouts(),
            timers_before,
            "its sleep was disarmed"
        );
        assert_eq!(current.pending_tasks(), 0);
        handle.await
    });
    assert_eq!(out, Err(JoinError::Cancelled));
    assert!(!finished.get());
}

#[test]
fn a_task_aborting_itself_is_dropped_after_that_poll() {
    let io_loop = IoLoop::new();
    let polls = Rc::new(Cell::new(0));
    let alive_after_abort = Rc::new(Cell::new(false));
    let dropped = DropFlag::new();
    let own_handle: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::new(RefCell::new(None));
    run(&io_loop, async {
        let handle = spawn({
            let polls = polls.clone();
            let alive_after_abort = alive_after_abort.clone();
            let own_handle = own_handle.clone();
            let dropped = dropped.clone();
            let token = dropped.token();
            async move {
                let _token = token;
                polls.set(polls.get() + 1);
                let me = own_handle
                    .borrow_mut()
                    .take()
                    .expect("the test stored the handle");
                me.abort();
                // Still in the poll: the future is alive and keeps running.
                alive_after_abort.set(!dropped.dropped());
                // Wakes itself and returns Pending: the loop must drop it
                // instead of polling it again.
                yield_now().await;
                polls.set(polls.get() + 1);
            }
        });
        *own_handle.borrow_mut() = Some(handle);
        wait_until(|| dropped.dropped()).await;
        yield_times(3).await;
        assert_eq!(IoLoop::current().pending_tasks(), 0);
    });
    assert!(
        alive_after_abort.get(),
        "the future runs to the end of the poll that aborted it"
    );
    assert_eq!(polls.get(), 1, "an aborted task is not polled again");
}

#[test]
fn abort_after_completion_is_a_no_op() {
    let io_loop = IoLoop::new();
    let out = run(&io_loop, async {
        let handle = spawn(async { 7 });
        wait_until(|| handle.is_finished()).await;
        handle.abort();
        handle.abort();
        handle.await
    });
    assert_eq!(out, Ok(7));
}

#[test]
fn abort_from_another_task_cancels_the_awaiter_too() {
    let io_loop = IoLoop::new();
    let out = run(&io_loop, async {
        let victim = spawn(sleep(Duration::from_secs(3600)));
        let victim = Rc::new(victim);
        let aborter = spawn({
            let victim = victim.clone();
            async move {
                yield_now().await;
                victim.abort();
            }
        });
        aborter.await.unwrap();
        let victim = Rc::try_unwrap(victim).expect("the aborter let go of the handle");
        victim.await
    });
    assert_eq!(out, Err(JoinError::Cancelled));
}

// ----- panics --------------------------------------------------------------------

#[test]
fn a_panicking_task_yields_panicked_and_the_loop_goes_on() {
    let io_loop = IoLoop::new();
    let (panicked, after) = run(&io_loop, async {
        let panicked = spawn(async { explode(42) }).await;
        // The loop and other tasks carry on.
        let after = spawn(async {
            sleep(Duration::from_millis(1)).await;
            "still running"
        })
        .await;
        (panicked, after)
    });
    assert_eq!(panicked, Err(JoinError::Panicked(String::from("boom 42"))));
    assert_eq!(after, Ok("still running"));
    assert_eq!(io_loop.pending_tasks(), 0);
    // The loop can be run again.
    assert_eq!(run(&io_loop, async { 1 }), 1);
}

#[test]
fn a_panicking_task_does_not_disturb_its_neighbours() {
    let io_loop = IoLoop::new();
    let outs = run(&io_loop, async {
        let handles: Vec<JoinHandle<u32>> = (0..10u32)
            .map(|i| {
                spawn(async move {
                    yield_now().await;
                    if i % 3 == 0 {
                        explode(i)
                    } else {
                        i
                    }
                })
            })
            .collect();
        let mut outs = Vec::new();
        for handle in handles {
            outs.push(handle.await);
        }
        outs
    });
    for (i, out) in (0..10u32).zip(outs) {
        if i % 3 == 0 {
            assert_eq!(out, Err(JoinError::Panicked(format!("boom {i}"))));
        } else {
            assert_eq!(out, Ok(i));
        }
    }
}

#[test]
fn join_error_display_reads_as_a_sentence() {
    let cancelled = JoinError::Cancelled.to_string();
    let panicked = JoinError::Panicked(String::from("boom 42")).to_string();
    for text in [&cancelled, &panicked] {
        assert!(text.contains(' '), "{text:?} reads as words");
        assert!(!text.ends_with('.'), "{text:?}: no trailing period");
        assert!(
            text.starts_with(char::is_lowercase),
            "{text:?}: starts lowercase"
        );
    }
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    assert!(
        panicked.contains("panicked") && panicked.contains("boom 42"),
        "{panicked}"
    );
    let as_error: &dyn std::error::Error = &JoinError::Cancelled;
    assert!(as_error.source().is_none());
}

// ----- wakers --------------------------------------------------------------------

#[test]
fn task_wakers_are_send_and_sync_and_work_from_another_thread() {
    fn assert_send_sync<T: Send + Sync + 'static>(_: &T) {}

    /// Completes once a flag set by another thread is seen; the first poll
    /// starts that thread, which sets the flag and wakes the task after a
    /// delay.
    struct WokenFromThread {
        flag: Arc<AtomicBool>,
        thread: Option<thread::JoinHandle<()>>,
    }

    impl Future for WokenFromThread {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.flag.load(Ordering::SeqCst) {
                if let Some(thread) = self.thread.take() {
                    thread.join().expect("the waking thread panicked");
                }
                return Poll::Ready(());
            }
            if self.thread.is_none() {
                let waker = cx.waker().clone();
                assert_send_sync(&waker);
                let flag = self.flag.clone();
                self.thread = Some(thread::spawn(move || {
                    thread::sleep(Duration::from_millis(20));
                    flag.store(true, Ordering::SeqCst);
                    waker.wake();
                }));
            }
            Poll::Pending
        }
    }

    let io_loop = IoLoop::new();
    let loop_thread = thread::current().id();
    let out = run(&io_loop, async move {
        spawn(async move {
            WokenFromThread {
                flag: Arc::new(AtomicBool::new(false)),
                thread: None,
            }
            .await;
            thread::current().id()
        })
        .await
    });
    assert_eq!(
        out,
        Ok(loop_thread),
        "the woken task runs on the loop thread"
    );
}

#[test]
fn a_task_woken_many_times_before_it_runs_is_polled_once() {
    let io_loop = IoLoop::new();
    let mut probe = Probe::new();
    let polls = probe.polls.clone();
    let waker = probe.waker.clone();
    probe.on_first_poll = Some(Box::new(|waker: &Waker| {
        // 1000 wakes from inside the poll, 1000 from another thread.
        for _ in 0..1000 {
            waker.wake_by_ref();
        }
        wake_from_thread(waker, 1000);
    }));
    run(&io_loop, async {
        let handle = spawn(probe);
        yield_times(5).await;
        sleep(Duration::from_millis(10)).await;
        assert_eq!(polls.get(), 2, "first poll, then one poll for 2000 wakes");

        // While it is idle: 1000 wakes from here, 1000 from another thread.
        let task_waker = waker.borrow().clone().expect("the probe kept its waker");
        for _ in 0..1000 {
            task_waker.wake_by_ref();
        }
        wake_from_thread(&task_waker, 1000);
        yield_times(5).await;
        sleep(Duration::from_millis(10)).await;
        assert_eq!(polls.get(), 3, "one more poll for 2000 more wakes");

        handle.abort();
        // Waking an aborted task does nothing.
        task_waker.wake_by_ref();
        wake_from_thread(&task_waker, 10);
        yield_times(5).await;
        assert_eq!(polls.get(), 3);
    });
}

#[test]
fn a_task_that_is_not_woken_is_not_polled_again() {
    let io_loop = IoLoop::new();
    let probe = Probe::new();
    let polls = probe.polls.clone();
    run(&io_loop, async {
        let handle = spawn(probe);
        yield_times(3).await;
        sleep(Duration::from_millis(50)).await;
        assert_eq!(
            polls.get(),
            1,
            "a task returning Pending without a wake must not be polled again"
        );
        handle.abort();
    });
}

#[test]
fn a_stale_waker_does_not_poll_a_newer_task() {
    let io_loop = IoLoop::new();
    let old = Probe::new();
    let old_waker = old.waker.clone();
    let new = Probe::new();
    let new_polls = new.polls.clone();
    run(&io_loop, async {
        // The old task finishes (aborted); the new one may reuse its slot.
        let old_handle = spawn(old);
        yield_times(2).await;
        old_handle.abort();
        let new_handle = spawn(new);
        yield_times(2).await;
        assert_eq!(new_polls.get(), 1);
        let stale = old_waker
            .borrow()
            .clone()
            .expect("the old probe kept its waker");
        stale.wake_by_ref();
        wake_from_thread(&stale, 10);
        yield_times(5).await;
        assert_eq!(
            new_polls.get(),
            1,
            "the old task's waker must not poll the new task"
        );
        new_handle.abort();
    });
}

// ----- panics in a task's destructor -------------------------------------------

/// A future that is ready with `output` once `ready` is set (at once if it
/// starts set), and panics when dropped: a destructor that runs user code
/// which goes wrong.
struct PanicsOnDrop {
    /// Whether the next poll completes.
    ready: Rc<Cell<bool>>,
    /// What it completes with.
    output: u32,
}

impl Future for PanicsOnDrop {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        if self.ready.get() {
            Poll::Ready(self.output)
        } else {
            Poll::Pending
        }
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("dropping future {}", self.output);
    }
}

/// Panics when dropped: a task output whose destructor goes wrong.
struct OutputPanicsOnDrop;

impl Drop for OutputPanicsOnDrop {
    fn drop(&mut self) {
        panic!("dropping the output");
    }
}

/// Whether this thread's captured log holds `needle`.
fn logged(needle: &str) -> bool {
    logs_of_this_thread()
        .iter()
        .any(|line| line.contains(needle))
}

#[test]
fn a_finished_task_future_panicking_in_drop_does_not_escape_the_loop() {
    capture_logs();
    let io_loop = IoLoop::new();
    let (joined, after) = run(&io_loop, async {
        let ready = Rc::new(Cell::new(true));
        let joined = spawn(PanicsOnDrop { ready, output: 7 }).await;
        let after = spawn(async { "still running" }).await;
        (joined, after)
    });
    // The output was produced before the drop went wrong: it is kept.
    assert_eq!(joined, Ok(7));
    assert_eq!(after, Ok("still running"));
    assert!(logged(
        "panicked while dropping its future: dropping future 7"
    ));
    assert_eq!(io_loop.pending_tasks(), 0);
    assert_eq!(run(&io_loop, async { 1 }), 1);
}

/// A future whose poll panics, and whose destructor panics too (run after
/// the poll's panic was caught, not while unwinding it).
struct PanicsInPollAndDrop;

impl Future for PanicsInPollAndDrop {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(explode(8))
    }
}

impl Drop for PanicsInPollAndDrop {
    fn drop(&mut self) {
        panic!("dropping the panicked future");
    }
}

#[test]
fn a_panicked_task_future_panicking_in_drop_yields_panicked_and_the_loop_goes_on() {
    capture_logs();
    let io_loop = IoLoop::new();
    let joined = run(&io_loop, async { spawn(PanicsInPollAndDrop).await });
    assert_eq!(joined, Err(JoinError::Panicked(String::from("boom 8"))));
    assert!(logged(
        "panicked while dropping its future: dropping the panicked future"
    ));
    assert_eq!(run(&io_loop, async { 2 }), 2);
}

#[test]
fn an_aborted_task_future_panicking_in_drop_does_not_escape_abort() {
    capture_logs();
    let io_loop = IoLoop::new();
    let joined = run(&io_loop, async {
        let ready = Rc::new(Cell::new(false));
        let task = spawn(PanicsOnDrop { ready, output: 9 });
        yield_times(2).await; // the task was polled, and is pending
        task.abort(); // drops the future here, in this task's poll
        task.await
    });
    assert_eq!(joined, Err(JoinError::Cancelled));
    assert!(logged(
        "panicked while dropping its future: dropping future 9"
    ));
    assert_eq!(run(&io_loop, async { 3 }), 3);
}

#[test]
fn a_task_aborting_itself_with_a_future_panicking_in_drop_does_not_escape_the_loop() {
    capture_logs();
    let io_loop = IoLoop::new();
    let joined = run(&io_loop, async {
        let handle: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        let own = handle.clone();
        let task = spawn(async move {
            let _bomb = PanicsOnDrop {
                ready: Rc::new(Cell::new(false)),
                output: 10,
            };
            yield_now().await;
            // Dropped after this poll, by the loop.
            own.borrow().as_ref().expect("the handle").abort();
            std::future::pending::<()>().await;
        });
        *handle.borrow_mut() = Some(task);
        yield_times(4).await;
        let task = handle.borrow_mut().take().expect("the handle");
        task.await
    });
    assert_eq!(joined, Err(JoinError::Cancelled));
    assert!(logged(
        "panicked while dropping its future: dropping future 10"
    ));
    assert_eq!(run(&io_loop, async { 4 }), 4);
}

#[test]
fn closing_a_loop_whose_task_future_panics_in_drop_does_not_panic() {
    capture_logs();
    let io_loop = IoLoop::new();
    let ready = Rc::new(Cell::new(false));
    let task = io_loop.spawn(PanicsOnDrop { ready, output: 11 });
    run(&io_loop, yield_times(2)); // polled once, pending
    io_loop.close();
    assert!(task.is_finished());
    assert_eq!(support::now_or_never(task), Some(Err(JoinError::Cancelled)));
    assert!(logged(
        "panicked while dropping its future: dropping future 11"
    ));
}

#[test]
fn a_detached_tasks_output_panicking_in_drop_does_not_escape_the_loop() {
    capture_logs();
    let io_loop = IoLoop::new();
    let after = run(&io_loop, async {
        drop(spawn(async { OutputPanicsOnDrop }));
        yield_times(2).await;
        spawn(async { "still running" }).await
    });
    assert_eq!(after, Ok("still running"));
    assert!(logged(
        "panicked while dropping its output: dropping the output"
    ));
    assert_eq!(io_loop.pending_tasks(), 0);
}
