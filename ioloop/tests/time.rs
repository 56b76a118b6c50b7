//! Behaviour of the time-based futures: [`sleep`], [`sleep_until`],
//! [`with_timeout`] and [`TimeoutError`].

mod support;

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use support::{now_or_never, poll_once, run, yield_now, yield_times, DropFlag};
use whirl_ioloop::{
    sleep, sleep_until, spawn, with_timeout, IoLoop, JoinError, Sleep, TimeoutError,
};

// ----- sleep -----------------------------------------------------------------------

#[test]
fn sleep_completes_after_at_least_its_duration() {
    let io_loop = IoLoop::new();
    for ms in [0, 1, 10, 25] {
        let duration = Duration::from_millis(ms);
        let started = Instant::now();
        run(&io_loop, sleep(duration));
        let elapsed = started.elapsed();
        assert!(
            elapsed >= duration,
            "sleep({duration:?}) completed after {elapsed:?}"
        );
    }
}

#[test]
fn sleep_does_not_block_other_tasks() {
    let io_loop = IoLoop::new();
    let finished = Rc::new(Cell::new(false));
    let steps = Rc::new(Cell::new(0));
    let out = run(&io_loop, async {
        // A sleep far longer than the safety net: if it blocked the thread,
        // nothing below could run and the test would time out.
        let sleeper = spawn({
            let finished = finished.clone();
            async move {
                sleep(Duration::from_secs(3600)).await;
                finished.set(true);
            }
        });
        let worker = spawn({
            let steps = steps.clone();
            async move {
                for _ in 0..10 {
                    yield_now().await;
                    steps.set(steps.get() + 1);
                }
                sleep(Duration::from_millis(1)).await;
                steps.set(steps.get() + 1);
            }
        });
        worker.await.unwrap();
        assert!(!sleeper.is_finished());
        sleeper.abort();
        sleeper.await
    });
    assert_eq!(
        steps.get(),
        11,
        "the other task ran to the end while the sleep was pending"
    );
    assert!(!finished.get());
    assert_eq!(out, Err(JoinError::Cancelled));
}

#[test]
fn a_sleep_arms_its_timer_on_first_poll_and_disarms_it_when_dropped() {
    let io_loop = IoLoop::new();
    run(&io_loop, async {
        let current = IoLoop::current();
        // After one iteration, so the safety net's own timer is armed.
        yield_now().await;
        let before = current.pending_timeouts();

        let unpolled = sleep(Duration::from_secs(3600));
        assert_eq!(
            current.pending_timeouts(),
            before,
            "a sleep arms nothing until polled"
        );
        drop(unpolled);

        let mut polled = Box::pin(sleep(Duration::from_secs(3600)));
        assert_eq!(poll_once(polled.as_mut()), Poll::Pending);
        assert_eq!(
            current.pending_timeouts(),
            before + 1,
            "the first poll arms a timer"
        );
        assert_eq!(poll_once(polled.as_mut()), Poll::Pending);
        assert_eq!(
            current.pending_timeouts(),
            before + 1,
            "polling again does not arm another"
        );
        drop(polled);
        assert_eq!(
            current.pending_timeouts(),
            before,
            "dropping the sleep disarms its timer"
        );

        // A completed sleep leaves no timer behind either.
        sleep(Duration::from_millis(1)).await;
        assert_eq!(current.pending_timeouts(), before);
    });
}

#[test]
fn dropping_a_sleeping_task_disarms_its_timer() {
    let io_loop = IoLoop::new();
    run(&io_loop, async {
        let current = IoLoop::current();
        yield_now().await;
        let before = current.pending_timeouts();
        let handles: Vec<_> = (0..100)
            .map(|_| spawn(sleep(Duration::from_secs(3600))))
            .collect();
        yield_times(2).await;
        assert_eq!(current.pending_timeouts(), before + 100);
        for handle in &handles {
            handle.abort();
        }
        assert_eq!(current.pending_timeouts(), before);
    });
}

#[test]
fn a_zero_sleep_is_ready_at_once() {
    let _io_loop = IoLoop::new();
    assert_eq!(now_or_never(sleep(Duration::ZERO)), Some(()));
}

#[test]
fn a_sleep_moved_to_another_task_wakes_that_task() {
    let io_loop = IoLoop::new();
    let started = Instant::now();
    let parked: Rc<RefCell<Option<Sleep>>> = Rc::new(RefCell::new(None));
    run(&io_loop, async {
        // Armed with a first task's waker...
        let first = spawn({
            let parked = parked.clone();
            async move {
                let mut nap = Box::pin(sleep(Duration::from_millis(20)));
                let first_poll = poll_fn(|cx| Poll::Ready(nap.as_mut().poll(cx))).await;
                assert!(first_poll.is_pending());
                *parked.borrow_mut() = Some(*Pin::into_inner(nap));
            }
        });
        first.await.unwrap();
        // ...then awaited by a second one, which must be the one woken.
        let nap = parked
            .borrow_mut()
            .take()
            .expect("the first task parked its sleep");
        spawn(nap).await.unwrap();
    });
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert_eq!(io_loop.pending_timeouts(), 0);
}

// ----- sleep_until -----------------------------------------------------------------

#[test]
fn sleep_until_completes_at_or_after_its_deadline() {
    let io_loop = IoLoop::new();
    let deadline = Instant::now() + Duration::from_millis(20);
    let nap = sleep_until(deadline);
    assert_eq!(nap.deadline(), deadline);
    run(&io_loop, nap);
    assert!(Instant::now() >= deadline);
}

#[test]
fn sleep_until_a_past_deadline_is_ready_at_once() {
    let _io_loop = IoLoop::new();
    let past = Instant::now();
    std::thread::sleep(Duration::from_millis(1));
    assert_eq!(now_or_never(sleep_until(past)), Some(()));
}

#[test]
fn sleep_deadline_is_now_plus_duration() {
    let before = Instant::now();
    let nap = sleep(Duration::from_millis(30));
    let after = Instant::now();
    assert!(nap.deadline() >= before + Duration::from_millis(30));
    assert!(nap.deadline() <= after + Duration::from_millis(30));
}

#[test]
fn many_concurrent_sleeps_complete_in_deadline_order() {
    const N: u64 = 50;
    let io_loop = IoLoop::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    run(&io_loop, async {
        let base = Instant::now() + Duration::from_millis(10);
        // Spawned in a scrambled order; deadlines 1 ms apart.
        let handles: Vec<_> = (0..N)
            .map(|i| (i * 17) % N)
            .map(|rank| {
                let order = order.clone();
                spawn(async move {
                    sleep_until(base + Duration::from_millis(rank)).await;
                    order.borrow_mut().push(rank);
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
    assert_eq!(*order.borrow(), (0..N).collect::<Vec<_>>());
}

#[test]
fn sleeps_with_equal_deadlines_complete_in_the_order_they_were_armed() {
    let io_loop = IoLoop::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    run(&io_loop, async {
        let deadline = Instant::now() + Duration::from_millis(5);
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let order = order.clone();
                spawn(async move {
                    sleep_until(deadline).await;
                    order.borrow_mut().push(i);
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
    assert_eq!(*order.borrow(), (0..20).collect::<Vec<_>>());
}

// ----- with_timeout ----------------------------------------------------------------

#[test]
fn with_timeout_returns_the_output_when_fast() {
    let io_loop = IoLoop::new();
    let out = run(&io_loop, async {
        with_timeout(Duration::from_secs(3600), async {
            sleep(Duration::from_millis(2)).await;
            "fast"
        })
        .await
    });
    assert_eq!(out, Ok("fast"));
}

#[test]
fn with_timeout_disarms_its_timer_when_the_future_wins() {
    let io_loop = IoLoop::new();
    run(&io_loop, async {
        let current = IoLoop::current();
        yield_now().await;
        let before = current.pending_timeouts();
        let out = with_timeout(Duration::from_secs(3600), async {
            yield_now().await;
            1
        })
        .await;
        assert_eq!(out, Ok(1));
        assert_eq!(current.pending_timeouts(), before);
    });
}

#[test]
fn a_ready_future_wins_even_a_zero_timeout() {
    let io_loop = IoLoop::new();
    let out = run(&io_loop, with_timeout(Duration::ZERO, async { 5 }));
    assert_eq!(out, Ok(5));
}

#[test]
fn with_timeout_errs_when_slow_and_drops_the_future() {
    let io_loop = IoLoop::new();
    let dropped = DropFlag::new();
    let completed = Rc::new(Cell::new(false));
    let started = Instant::now();
    let out = run(&io_loop, async {
        let token = dropped.token();
        let completed_in = completed.clone();
        let timed = with_timeout(Duration::from_millis(10), async move {
            let _token = token;
            sleep(Duration::from_secs(3600)).await;
            completed_in.set(true);
        });
        let out = timed.await;
        assert!(
            dropped.dropped(),
            "the timed-out future is dropped with the Timeout"
        );
        out
    });
    assert_eq!(out, Err(TimeoutError));
    assert!(started.elapsed() >= Duration::from_millis(10));
    assert!(!completed.get());
    assert_eq!(
        io_loop.pending_timeouts(),
        0,
        "the inner sleep was disarmed"
    );
}

#[test]
fn with_timeout_does_not_block_other_tasks() {
    let io_loop = IoLoop::new();
    let out = run(&io_loop, async {
        let other = spawn(async {
            yield_times(5).await;
            "other"
        });
        let timed = with_timeout(Duration::from_secs(3600), other).await;
        timed.map(|joined| joined.unwrap())
    });
    assert_eq!(out, Ok("other"));
}

// ----- TimeoutError ----------------------------------------------------------------

#[test]
fn timeout_error_display_reads_as_a_sentence() {
    let text = TimeoutError.to_string();
    assert!(text.contains("timed out"), "{text:?}");
    assert!(text.contains(' '), "{text:?} reads as words");
    assert!(
        text.starts_with(char::is_lowercase),
        "{text:?}: starts lowercase"
    );
    assert!(!text.ends_with('.'), "{text:?}: no trailing period");
    assert_ne!(text, format!("{TimeoutError:?}"), "Display is not Debug");
    let as_error: &dyn std::error::Error = &TimeoutError;
    assert!(as_error.source().is_none());
}

#[test]
fn a_duration_max_timeout_means_never_not_overflow() {
    let io_loop = IoLoop::new();
    let out = io_loop.run_sync(whirl_ioloop::with_timeout(Duration::MAX, async { 5 }));
    assert_eq!(out, Ok(5));
    let handle = io_loop.call_later(Duration::MAX, || panic!("never fires"));
    io_loop.remove_timeout(handle);
}

// ----- loop_time -------------------------------------------------------------------

#[test]
fn loop_time_is_never_ahead_of_the_clock_and_moves_with_the_loop() {
    let io_loop = IoLoop::new();
    let started = Instant::now();
    // Not running: the clock itself.
    assert!(io_loop.loop_time() >= started);
    run(&io_loop, async {
        let first = whirl_ioloop::loop_time();
        assert!(first >= started && first <= Instant::now());
        sleep(Duration::from_millis(20)).await;
        // The timer was popped at a reading past its deadline, and the task
        // ran after it: the loop's time moved at least as far.
        let second = whirl_ioloop::loop_time();
        assert!(
            second >= first + Duration::from_millis(20),
            "{first:?} -> {second:?}"
        );
        assert!(second <= Instant::now());
        assert_eq!(
            IoLoop::current().loop_time(),
            second,
            "one reading per step"
        );
    });
}

#[test]
fn loop_time_outside_a_running_loop_is_now() {
    let before = Instant::now();
    let seen = whirl_ioloop::loop_time();
    assert!(seen >= before && seen <= Instant::now());
}
