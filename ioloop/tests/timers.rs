//! Behaviour of timers: [`IoLoop::add_timeout`], [`IoLoop::call_later`],
//! [`IoLoop::call_at`], [`IoLoop::remove_timeout`] and [`IoLoop::time`].

mod support;

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use support::{run, start_safely, trace, yield_now, DropCounter};
use whirl_ioloop::{sleep, IoLoop};

/// Runs the loop until `n` entries were traced into `log`.
fn run_until_len<T>(io_loop: &IoLoop, log: &support::Trace<T>, n: usize) {
    run(io_loop, async {
        while log.borrow().len() < n {
            sleep(Duration::from_millis(1)).await;
        }
    });
}

#[test]
fn timers_fire_in_deadline_order() {
    let io_loop = IoLoop::new();
    let log = trace();
    let base = io_loop.time();
    let ms = Duration::from_millis;
    // Armed out of deadline order, through both absolute-deadline methods.
    let t = log.clone();
    io_loop.add_timeout(base + ms(30), move || t.borrow_mut().push(30));
    let t = log.clone();
    io_loop.call_at(base + ms(10), move || t.borrow_mut().push(10));
    let t = log.clone();
    io_loop.add_timeout(base + ms(50), move || t.borrow_mut().push(50));
    let t = log.clone();
    io_loop.call_at(base, move || t.borrow_mut().push(0));
    let t = log.clone();
    io_loop.add_timeout(base + ms(20), move || t.borrow_mut().push(20));
    let t = log.clone();
    io_loop.call_at(base + ms(40), move || t.borrow_mut().push(40));
    run_until_len(&io_loop, &log, 6);
    assert_eq!(*log.borrow(), [0, 10, 20, 30, 40, 50]);
    assert_eq!(io_loop.pending_timeouts(), 0);
}

#[test]
fn call_later_timers_fire_in_deadline_order() {
    // call_later measures from the moment it is called, which this test does
    // not control: it only checks pairs whose possible deadlines do not overlap.
    let io_loop = IoLoop::new();
    let log = trace();
    let delays_ms = [60u64, 20, 40, 0, 100, 80, 20];
    let mut windows = Vec::new();
    for (i, delay) in delays_ms.iter().enumerate() {
        let delay = Duration::from_millis(*delay);
        let t = log.clone();
        let before = Instant::now();
        io_loop.call_later(delay, move || t.borrow_mut().push(i));
        windows.push((before + delay, Instant::now() + delay));
    }
    run_until_len(&io_loop, &log, delays_ms.len());
    let fired = log.borrow();
    let position = |i: usize| fired.iter().position(|&x| x == i).unwrap();
    for (i, (_, latest_i)) in windows.iter().enumerate() {
        for (j, (earliest_j, _)) in windows.iter().enumerate() {
            if latest_i < earliest_j {
                assert!(position(i) < position(j), "{i} fired after {j}: {fired:?}");
            }
        }
    }
    // The two 20 ms timers were armed in order; their deadlines are in order too.
    assert!(position(1) < position(6));
}

#[test]
fn timers_with_equal_deadlines_fire_in_insertion_order() {
    let io_loop = IoLoop::new();
    let log = trace();
    let deadline = io_loop.time() + Duration::from_millis(5);
    for i in 0..1000 {
        let t = log.clone();
        if i % 2 == 0 {
            io_loop.add_timeout(deadline, move || t.borrow_mut().push(i));
        } else {
            io_loop.call_at(deadline, move || t.borrow_mut().push(i));
        }
    }
    run_until_len(&io_loop, &log, 1000);
    assert_eq!(*log.borrow(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn a_timer_never_fires_before_its_deadline() {
    let io_loop = IoLoop::new();
    let log = trace();
    for delay in [0u64, 1, 2, 5, 10, 15] {
        let (l, t) = (io_loop.clone(), log.clone());
        let deadline = io_loop.time() + Duration::from_millis(delay);
        io_loop.add_timeout(deadline, move || t.borrow_mut().push(l.time() >= deadline));
    }
    run_until_len(&io_loop, &log, 6);
    assert!(
        log.borrow().iter().all(|on_time| *on_time),
        "{:?}",
        log.borrow()
    );
}

#[test]
fn remove_timeout_prevents_firing_and_drops_the_callback_at_once() {
    let io_loop = IoLoop::new();
    let dropped = DropCounter::new();
    let fired = Rc::new(Cell::new(false));
    let (token, f) = (dropped.token(), fired.clone());
    let handle = io_loop.call_later(Duration::from_millis(1), move || {
        let _token = token;
        f.set(true);
    });
    assert_eq!(io_loop.pending_timeouts(), 1);
    io_loop.remove_timeout(handle);
    assert_eq!(
        dropped.dropped(),
        1,
        "the callback was dropped by remove_timeout"
    );
    assert_eq!(io_loop.pending_timeouts(), 0);
    run(&io_loop, sleep(Duration::from_millis(20)));
    assert!(!fired.get());
    io_loop.remove_timeout(handle); // removing twice is harmless
}

#[test]
fn removing_a_fired_timer_is_a_no_op() {
    let io_loop = IoLoop::new();
    let log = trace();
    let t = log.clone();
    let first = io_loop.call_later(Duration::ZERO, move || t.borrow_mut().push("first"));
    run_until_len(&io_loop, &log, 1);
    // The next timer may take the fired timer's slot; the old handle must not
    // cancel it.
    let t = log.clone();
    io_loop.call_later(Duration::from_millis(1), move || {
        t.borrow_mut().push("second")
    });
    io_loop.remove_timeout(first);
    assert_eq!(io_loop.pending_timeouts(), 1);
    run_until_len(&io_loop, &log, 2);
    assert_eq!(*log.borrow(), ["first", "second"]);
}

#[test]
fn a_hundred_thousand_timers_half_removed() {
    const N: usize = 100_000;
    let io_loop = IoLoop::new();
    let log = trace();
    let base = io_loop.time();
    let mut handles = Vec::with_capacity(N);
    for i in 0..N {
        // Deadlines spread over ~50 ms, in a scrambled order.
        let offset = Duration::from_micros(((i * 7919) % N) as u64 / 2);
        let deadline = base + offset;
        let t = log.clone();
        handles.push(io_loop.add_timeout(deadline, move || t.borrow_mut().push((deadline, i))));
    }
    for (i, handle) in handles.iter().enumerate() {
        if i % 2 == 1 {
            io_loop.remove_timeout(*handle);
        }
    }
    assert_eq!(io_loop.pending_timeouts(), N / 2);
    run_until_len(&io_loop, &log, N / 2);
    // Anything left over (removed timers must not be) would fire by now.
    run(&io_loop, sleep(Duration::from_millis(20)));

    let fired = log.borrow();
    assert_eq!(fired.len(), N / 2);
    assert!(
        fired.windows(2).all(|w| w[0].0 <= w[1].0),
        "timers fired out of deadline order"
    );
    let indices: HashSet<usize> = fired.iter().map(|(_, i)| *i).collect();
    assert_eq!(indices.len(), N / 2, "a timer fired twice");
    assert!(indices.iter().all(|i| i % 2 == 0), "a removed timer fired");
    assert_eq!(io_loop.pending_timeouts(), 0);
}

#[test]
fn arming_and_cancelling_a_timer_per_request_does_not_accumulate() {
    let io_loop = IoLoop::new();
    let fired = Rc::new(Cell::new(0u32));
    // A long-lived timer, as a server would have.
    let keepalive = io_loop.call_later(Duration::from_secs(3600), || {});
    let f = fired.clone();
    let l = io_loop.clone();
    run(&io_loop, async move {
        for request in 0..100_000u32 {
            let f = f.clone();
            let handle = l.call_later(Duration::from_secs(60), move || f.set(f.get() + 1));
            l.remove_timeout(handle);
            if request % 1000 == 0 {
                yield_now().await;
            }
        }
        // With the safety-net deadline of run: at most two armed.
        assert!(
            l.pending_timeouts() <= 2,
            "{} timers pending",
            l.pending_timeouts()
        );
    });
    assert_eq!(io_loop.pending_timeouts(), 1);
    assert_eq!(fired.get(), 0);
    io_loop.remove_timeout(keepalive);
    assert_eq!(io_loop.pending_timeouts(), 0);
}

#[test]
fn a_panicking_timer_does_not_stop_the_loop() {
    let io_loop = IoLoop::new();
    let log = trace();
    let deadline = io_loop.time() + Duration::from_millis(2);
    io_loop.add_timeout(deadline, || panic!("a timer panicked on purpose"));
    let t = log.clone();
    io_loop.add_timeout(deadline, move || t.borrow_mut().push("same deadline"));
    io_loop.call_later(Duration::from_millis(4), || {
        panic!("another timer panicked on purpose")
    });
    let (l, t) = (io_loop.clone(), log.clone());
    io_loop.call_later(Duration::from_millis(10), move || {
        t.borrow_mut().push("later");
        l.stop();
    });
    start_safely(&io_loop);
    assert_eq!(*log.borrow(), ["same deadline", "later"]);
}

#[test]
fn time_is_monotonic() {
    let io_loop = IoLoop::new();
    let mut last = io_loop.time();
    for _ in 0..10_000 {
        let now = io_loop.time();
        assert!(now >= last);
        last = now;
    }
    let before = io_loop.time();
    let l = io_loop.clone();
    let after = io_loop.run_sync(async move {
        sleep(Duration::from_millis(5)).await;
        l.time()
    });
    assert!(
        after >= before + Duration::from_millis(5),
        "a sleep ends after its deadline"
    );
}

#[test]
fn a_past_deadline_timer_armed_by_a_timer_fires_on_a_later_iteration() {
    // Due timers are taken all at once before any runs: a timer armed by one
    // of them, even with a past deadline, waits for the next iteration, after
    // that iteration's callbacks.
    let io_loop = IoLoop::new();
    let log = trace();
    let deadline = io_loop.time();
    let (l, t) = (io_loop.clone(), log.clone());
    io_loop.add_timeout(deadline, move || {
        t.borrow_mut().push("first timer");
        let t2 = t.clone();
        let l2 = l.clone();
        l.add_timeout(Instant::now() - Duration::from_millis(10), move || {
            t2.borrow_mut().push("armed by first timer");
            l2.stop();
        });
        let t3 = t.clone();
        l.add_callback(move || t3.borrow_mut().push("callback from first timer"));
    });
    let t = log.clone();
    io_loop.add_timeout(deadline, move || t.borrow_mut().push("second timer"));
    start_safely(&io_loop);
    assert_eq!(
        *log.borrow(),
        [
            "first timer",
            "second timer",
            "callback from first timer",
            "armed by first timer",
        ]
    );
}

#[test]
fn a_timer_can_remove_a_later_timer_of_the_same_batch() {
    // Both are due in the same iteration; removing the second from the first
    // must still prevent it (Tornado: a cancelled timeout never runs).
    let io_loop = IoLoop::new();
    let log = trace();
    let dropped = DropCounter::new();
    let deadline = io_loop.time();
    let victim = Rc::new(Cell::new(None));
    let (l, t, v) = (io_loop.clone(), log.clone(), victim.clone());
    io_loop.add_timeout(deadline, move || {
        t.borrow_mut().push("first");
        if let Some(handle) = v.take() {
            l.remove_timeout(handle);
        }
    });
    let (t, token) = (log.clone(), dropped.token());
    victim.set(Some(io_loop.add_timeout(deadline, move || {
        let _token = token;
        t.borrow_mut().push("second");
    })));
    let (l, t) = (io_loop.clone(), log.clone());
    io_loop.call_later(Duration::from_millis(10), move || {
        t.borrow_mut().push("stop");
        l.stop();
    });
    start_safely(&io_loop);
    assert_eq!(*log.borrow(), ["first", "stop"]);
    assert_eq!(dropped.dropped(), 1);
}

#[test]
fn cancelling_a_due_timer_from_a_callback_of_the_same_iteration_prevents_it() {
    // The timer is already due when the iteration starts, so it is taken off
    // the queue before the callback runs; cancelling it must still work, or a
    // read that completes in the same iteration as its deadline would also
    // see its timeout fire (Tornado checks each due timeout before running it).
    let io_loop = IoLoop::new();
    let log = trace();
    let dropped = DropCounter::new();
    let (t, token) = (log.clone(), dropped.token());
    let timeout = io_loop.add_timeout(io_loop.time(), move || {
        let _token = token;
        t.borrow_mut().push("timeout");
    });
    let (l, t) = (io_loop.clone(), log.clone());
    io_loop.add_callback(move || {
        t.borrow_mut().push("completed");
        l.remove_timeout(timeout);
    });
    let (l, t) = (io_loop.clone(), log.clone());
    io_loop.call_later(Duration::from_millis(10), move || {
        t.borrow_mut().push("stop");
        l.stop();
    });
    start_safely(&io_loop);
    assert_eq!(*log.borrow(), ["completed", "stop"]);
    assert_eq!(dropped.dropped(), 1);
    assert_eq!(io_loop.pending_timeouts(), 0);
}
