//! Behaviour of [`IoLoop`]'s lifecycle: the current loop, `start`/`stop`,
//! `run_sync`, `close`, and the order of one iteration as documented on
//! `IoLoop::start`.

mod support;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    now_or_never, run, same_loop, socket_pair, start_safely, trace, yield_now, DropCounter, SAFETY,
};
use whirl_ioloop::{sleep, HandlerId, Interest, IoLoop, JoinError, TimeoutError};

// ----- the current loop --------------------------------------------------------

#[test]
fn the_first_loop_created_becomes_current() {
    IoLoop::clear_current();
    assert!(IoLoop::try_current().is_none());
    let first = IoLoop::new();
    let current = IoLoop::try_current().expect("new made it current");
    assert!(same_loop(&first, &current));
    let second = IoLoop::new();
    assert!(
        same_loop(&first, &IoLoop::current()),
        "a second loop does not replace the current one"
    );
    assert!(!same_loop(&second, &IoLoop::current()));
}

#[test]
fn current_creates_a_loop_when_there_is_none() {
    IoLoop::clear_current();
    assert!(IoLoop::try_current().is_none());
    let created = IoLoop::current();
    let again = IoLoop::try_current().expect("current made one current");
    assert!(same_loop(&created, &again));
    assert!(
        same_loop(&created, &IoLoop::current()),
        "and keeps returning it"
    );
}

#[test]
fn make_current_and_clear_current() {
    let a = IoLoop::new();
    let b = IoLoop::new();
    b.make_current();
    assert!(same_loop(&b, &IoLoop::current()));
    a.make_current();
    assert!(same_loop(&a, &IoLoop::current()));
    IoLoop::clear_current();
    assert!(IoLoop::try_current().is_none());
}

#[test]
fn run_sync_makes_the_loop_current_and_restores_the_previous_one() {
    let outer = IoLoop::new();
    outer.make_current();
    let inner = IoLoop::new();
    let probe = inner.clone();
    let was_current = inner.run_sync(async move { same_loop(&probe, &IoLoop::current()) });
    assert!(was_current, "run_sync's loop is current while it runs");
    assert!(
        same_loop(&outer, &IoLoop::current()),
        "the previous loop is restored"
    );

    IoLoop::clear_current();
    inner.run_sync(async {});
    assert!(
        IoLoop::try_current().is_none(),
        "no current loop is restored as none"
    );
}

#[test]
fn start_makes_the_loop_current_and_restores_the_previous_one() {
    let outer = IoLoop::new();
    outer.make_current();
    let inner = IoLoop::new();
    let seen = Rc::new(Cell::new(None));
    let (probe, result) = (inner.clone(), seen.clone());
    inner.add_callback(move || {
        result.set(Some((
            same_loop(&probe, &IoLoop::current()),
            probe.is_running(),
        )));
        probe.stop();
    });
    assert!(!inner.is_running());
    start_safely(&inner);
    assert_eq!(
        seen.get(),
        Some((true, true)),
        "current and running inside start"
    );
    assert!(!inner.is_running());
    assert!(same_loop(&outer, &IoLoop::current()));
}

// ----- start and stop ----------------------------------------------------------

#[test]
fn start_runs_until_stop() {
    let io_loop = IoLoop::new();
    let runs = Rc::new(Cell::new(0u32));
    // A callback that re-adds itself keeps the loop busy until it stops it.
    fn tick(io_loop: IoLoop, runs: Rc<Cell<u32>>) {
        runs.set(runs.get() + 1);
        if runs.get() == 100 {
            io_loop.stop();
        } else {
            let next = io_loop.clone();
            io_loop.add_callback(move || tick(next, runs));
        }
    }
    let (l, r) = (io_loop.clone(), runs.clone());
    io_loop.add_callback(move || tick(l, r));
    start_safely(&io_loop);
    assert_eq!(runs.get(), 100);
    assert!(!io_loop.is_running());
}

#[test]
fn stop_finishes_the_iteration_in_progress() {
    let io_loop = IoLoop::new();
    let log = trace();
    let (l, t) = (io_loop.clone(), log.clone());
    io_loop.add_callback(move || {
        t.borrow_mut().push("stopper");
        l.stop();
        let t2 = t.clone();
        l.add_callback(move || t2.borrow_mut().push("next iteration"));
    });
    let t = log.clone();
    io_loop.add_callback(move || t.borrow_mut().push("same iteration"));
    start_safely(&io_loop);
    assert_eq!(*log.borrow(), ["stopper", "same iteration"]);

    // What was queued for the next iteration runs on the next start.
    let l = io_loop.clone();
    io_loop.add_callback(move || l.stop());
    start_safely(&io_loop);
    assert_eq!(
        *log.borrow(),
        ["stopper", "same iteration", "next iteration"]
    );
}

#[test]
fn stop_before_start_makes_start_return_at_once() {
    let io_loop = IoLoop::new();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    io_loop.add_callback(move || r.set(true));
    io_loop.stop();
    start_safely(&io_loop);
    assert!(!ran.get(), "start returned before running anything");

    // The stop was used up: the next start runs normally.
    let l = io_loop.clone();
    io_loop.add_callback(move || l.stop());
    start_safely(&io_loop);
    assert!(ran.get());
}

#[test]
fn starting_a_running_loop_panics() {
    let io_loop = IoLoop::new();
    let l = io_loop.clone();
    let (start_panicked, run_sync_panicked) = run(&io_loop, async move {
        let start = catch_unwind(AssertUnwindSafe(|| l.start())).is_err();
        let run_sync = catch_unwind(AssertUnwindSafe(|| l.run_sync(async {}))).is_err();
        (start, run_sync)
    });
    assert!(start_panicked, "start inside a running loop panics");
    assert!(run_sync_panicked, "run_sync inside a running loop panics");
    assert!(!io_loop.is_running());
    assert_eq!(io_loop.run_sync(async { 3 }), 3, "the loop is still usable");
}

// ----- run_sync ----------------------------------------------------------------

#[test]
fn run_sync_returns_the_output() {
    let io_loop = IoLoop::new();
    assert_eq!(io_loop.run_sync(async { 6 * 7 }), 42);
    let slow = io_loop.run_sync(async {
        sleep(Duration::from_millis(5)).await;
        "slept"
    });
    assert_eq!(slow, "slept");
    assert!(!io_loop.is_running());
}

#[test]
fn run_sync_accepts_a_future_borrowing_a_local() {
    let io_loop = IoLoop::new();
    let mut words = vec!["a"];
    let len = io_loop.run_sync(async {
        words.push("b");
        yield_now().await;
        words.push("c");
        words.len()
    });
    assert_eq!(len, 3);
    assert_eq!(words, ["a", "b", "c"]);
}

#[test]
fn run_sync_timeout_times_out_and_drops_the_future() {
    let io_loop = IoLoop::new();
    let dropped = DropCounter::new();
    let token = dropped.token();
    let result = io_loop.run_sync_timeout(
        async move {
            let _token = token;
            std::future::pending::<()>().await
        },
        Duration::from_millis(20),
    );
    assert_eq!(result, Err(TimeoutError));
    assert_eq!(dropped.dropped(), 1, "the timed-out future was dropped");
    assert_eq!(io_loop.pending_timeouts(), 0);
}

#[test]
fn run_sync_timeout_succeeds_when_fast() {
    let io_loop = IoLoop::new();
    let result = io_loop.run_sync_timeout(
        async {
            sleep(Duration::from_millis(1)).await;
            "done"
        },
        SAFETY,
    );
    assert_eq!(result, Ok("done"));
    assert_eq!(
        io_loop.pending_timeouts(),
        0,
        "the deadline timer was disarmed"
    );
}

#[test]
fn run_sync_propagates_a_panic_of_the_future() {
    let outer = IoLoop::new();
    outer.make_current();
    let io_loop = IoLoop::new();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        io_loop.run_sync(async {
            yield_now().await;
            panic!("boom in run_sync");
        })
    }));
    let payload = caught.expect_err("the panic propagates");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in run_sync"));
    assert!(!io_loop.is_running(), "running is cleared");
    assert!(
        same_loop(&outer, &IoLoop::current()),
        "the current loop is restored"
    );
    assert_eq!(io_loop.run_sync(async { 1 }), 1, "the loop can run again");
}

// ----- close -------------------------------------------------------------------

#[test]
fn close_drops_every_handler_task_timer_and_callback() {
    let io_loop = IoLoop::new();
    let dropped = DropCounter::new();

    let token = dropped.token();
    io_loop.add_callback(move || drop(token));
    let token = dropped.token();
    io_loop.call_later(Duration::from_secs(3600), move || drop(token));
    let token = dropped.token();
    let task = io_loop.spawn(async move {
        let _token = token;
        std::future::pending::<()>().await
    });
    let (mut ours, _theirs) = socket_pair();
    let token = dropped.token();
    io_loop
        .add_handler(&mut ours, Interest::READABLE, move |_| {
            let _ = &token;
        })
        .unwrap();
    let token = dropped.token();
    io_loop.handle().add_callback(move || drop(token));

    // Let the task be polled once, so it is parked rather than queued.
    run(&io_loop, yield_now());
    assert_eq!(
        dropped.dropped(),
        2,
        "only the two callbacks ran (and dropped their tokens)"
    );
    let token = dropped.token();
    io_loop.add_callback(move || drop(token));
    let token = dropped.token();
    io_loop.handle().add_callback(move || drop(token));
    assert_eq!(io_loop.pending_tasks(), 1);
    assert_eq!(io_loop.pending_timeouts(), 1);

    io_loop.close();
    assert!(io_loop.is_closed());
    assert_eq!(dropped.dropped(), 7, "everything the loop held was dropped");
    assert_eq!(io_loop.pending_tasks(), 0);
    assert_eq!(io_loop.pending_timeouts(), 0);
    assert_eq!(now_or_never(task), Some(Err(JoinError::Cancelled)));
}

#[test]
fn close_cancels_a_task_that_never_ran() {
    let io_loop = IoLoop::new();
    let task = io_loop.spawn(async { 5 });
    io_loop.close();
    assert_eq!(now_or_never(task), Some(Err(JoinError::Cancelled)));
}

#[test]
fn close_tolerates_destructors_that_use_the_loop() {
    struct UsesLoop(IoLoop);
    impl Drop for UsesLoop {
        fn drop(&mut self) {
            let _ = self.0.pending_timeouts() + self.0.pending_tasks();
            self.0.add_callback(|| {});
        }
    }
    let io_loop = IoLoop::new();
    let user = UsesLoop(io_loop.clone());
    io_loop.call_later(Duration::from_secs(3600), move || drop(user));
    let user = UsesLoop(io_loop.clone());
    io_loop.add_callback(move || drop(user));
    let user = UsesLoop(io_loop.clone());
    io_loop.spawn(async move {
        let _user = user;
        std::future::pending::<()>().await
    });
    io_loop.close();
    assert_eq!(io_loop.pending_timeouts(), 0);
    assert_eq!(io_loop.pending_tasks(), 0);
}

#[test]
fn close_clears_the_current_loop_if_it_is_this_one() {
    let io_loop = IoLoop::new();
    io_loop.make_current();
    io_loop.close();
    assert!(IoLoop::try_current().is_none());

    let current = IoLoop::new();
    current.make_current();
    IoLoop::new().close();
    assert!(
        same_loop(&current, &IoLoop::current()),
        "closing another loop leaves it"
    );
}

#[test]
fn a_closed_loop_cannot_start() {
    let io_loop = IoLoop::new();
    io_loop.close();
    assert!(catch_unwind(AssertUnwindSafe(|| io_loop.start())).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| io_loop.run_sync(async {}))).is_err());
    assert!(!io_loop.is_running());
}

// ----- one iteration -----------------------------------------------------------

#[test]
fn callbacks_added_by_a_callback_run_on_the_next_iteration() {
    // A timer that is already due runs after this iteration's callbacks and
    // before the next iteration's: it tells the two apart.
    let io_loop = IoLoop::new();
    let log = trace();
    let (l, t) = (io_loop.clone(), log.clone());
    io_loop.add_callback(move || {
        t.borrow_mut().push("first");
        let t2 = t.clone();
        l.add_callback(move || t2.borrow_mut().push("added by first"));
    });
    let t = log.clone();
    io_loop.add_timeout(Instant::now(), move || t.borrow_mut().push("due timer"));
    let (l, t) = (io_loop.clone(), log.clone());
    io_loop.call_later(Duration::from_millis(30), move || {
        t.borrow_mut().push("stop");
        l.stop();
    });
    start_safely(&io_loop);
    assert_eq!(
        *log.borrow(),
        ["first", "due timer", "added by first", "stop"]
    );
}

#[test]
fn a_callback_that_re_adds_itself_starves_neither_timers_nor_fd_events() {
    let io_loop = IoLoop::new();
    let (mut ours, mut theirs) = socket_pair();
    theirs.write_all(b"x").unwrap();
    let timer_fired = Rc::new(Cell::new(false));
    let fd_fired = Rc::new(Cell::new(false));
    let starved = Rc::new(Cell::new(false));

    let f = fd_fired.clone();
    let id = io_loop
        .add_handler(&mut ours, Interest::READABLE, move |_| f.set(true))
        .unwrap();
    let t = timer_fired.clone();
    io_loop.call_later(Duration::from_millis(1), move || t.set(true));

    // Re-adds itself until both fired; gives up (and fails the test) after a
    // while, so a broken snapshot rule cannot hang the test.
    fn spin(io_loop: IoLoop, done: [Rc<Cell<bool>>; 2], starved: Rc<Cell<bool>>, since: Instant) {
        if done.iter().all(|d| d.get()) {
            io_loop.stop();
        } else if since.elapsed() > SAFETY {
            starved.set(true);
            io_loop.stop();
        } else {
            let next = io_loop.clone();
            io_loop.add_callback(move || spin(next, done, starved, since));
        }
    }
    let (l, done, s) = (
        io_loop.clone(),
        [timer_fired.clone(), fd_fired.clone()],
        starved.clone(),
    );
    io_loop.add_callback(move || spin(l, done, s, Instant::now()));
    start_safely(&io_loop);
    assert!(!starved.get(), "the spinning callback starved the loop");
    assert!(timer_fired.get());
    assert!(fd_fired.get());
    io_loop.remove_handler(id, &mut ours).unwrap();
}

#[test]
fn one_iteration_runs_callbacks_then_due_timers_then_fd_events() {
    // Iteration 1: the queued callback, the due timer, then the fd event that
    // was ready before start. Iteration 2: what those queued, callbacks before
    // timers (the timer armed by a callback with a past deadline waits for
    // the next iteration's pop).
    let io_loop = IoLoop::new();
    let log = trace();
    let (mut ours, mut theirs) = socket_pair();
    theirs.write_all(b"x").unwrap();

    let (l, t) = (io_loop.clone(), log.clone());
    let id = io_loop
        .add_handler(&mut ours, Interest::READABLE, move |_| {
            t.borrow_mut().push("fd event");
            let t2 = t.clone();
            l.add_callback(move || t2.borrow_mut().push("callback from fd handler"));
        })
        .unwrap();
    let (l, t) = (io_loop.clone(), log.clone());
    io_loop.add_callback(move || {
        t.borrow_mut().push("callback");
        let t2 = t.clone();
        l.add_callback(move || t2.borrow_mut().push("callback from callback"));
        let (l2, t2) = (l.clone(), t.clone());
        l.add_timeout(Instant::now() - Duration::from_millis(1), move || {
            t2.borrow_mut().push("past timer from callback");
            l2.stop();
        });
    });
    let t = log.clone();
    io_loop.add_timeout(Instant::now(), move || t.borrow_mut().push("due timer"));

    start_safely(&io_loop);
    assert_eq!(
        *log.borrow(),
        [
            "callback",
            "due timer",
            "fd event",
            "callback from callback",
            "callback from fd handler",
            "past timer from callback",
        ]
    );
    io_loop.remove_handler(id, &mut ours).unwrap();
}

#[test]
fn a_stop_in_a_callback_comes_before_that_iterations_poll() {
    let io_loop = IoLoop::new();
    let (mut ours, mut theirs) = socket_pair();
    theirs.write_all(b"x").unwrap();
    let events = Rc::new(Cell::new(0));
    let e = events.clone();
    let id = io_loop
        .add_handler(&mut ours, Interest::READABLE, move |_| e.set(e.get() + 1))
        .unwrap();
    let l = io_loop.clone();
    io_loop.add_callback(move || l.stop());
    start_safely(&io_loop);
    assert_eq!(events.get(), 0, "the loop stopped before polling");

    // The readiness is still there for the next run.
    run(&io_loop, async {
        while events.get() == 0 {
            sleep(Duration::from_millis(1)).await;
        }
    });
    assert_eq!(events.get(), 1);
    let mut buf = [0; 8];
    assert_eq!(ours.read(&mut buf).unwrap(), 1);
    io_loop.remove_handler(id, &mut ours).unwrap();
}

#[test]
fn the_run_sync_future_is_polled_before_the_iterations_callbacks() {
    let io_loop = IoLoop::new();
    let log = trace();
    let t = log.clone();
    io_loop.add_callback(move || t.borrow_mut().push("callback"));
    let t = log.clone();
    io_loop.run_sync(async move {
        t.borrow_mut().push("future, first poll");
        yield_now().await;
        t.borrow_mut().push("future, second poll");
    });
    assert_eq!(
        *log.borrow(),
        ["future, first poll", "callback", "future, second poll"]
    );
}

#[test]
fn an_fd_handler_removed_by_an_earlier_one_of_the_same_batch_does_not_run() {
    // Both sockets are readable in the same poll; whichever handler runs
    // first removes the other, whose already-polled event must be dropped.
    let io_loop = IoLoop::new();
    let runs = Rc::new(Cell::new(0));
    let sockets: Vec<_> = (0..2).map(|_| socket_pair()).collect();
    let mut ours = Vec::new();
    let mut keep = Vec::new();
    for (a, mut b) in sockets {
        b.write_all(b"x").unwrap();
        ours.push(Rc::new(RefCell::new(a)));
        keep.push(b);
    }
    let ids: Rc<Cell<[Option<HandlerId>; 2]>> = Rc::new(Cell::new([None, None]));
    for me in 0..2 {
        let other = 1 - me;
        let (l, r, ids2, other_socket) = (
            io_loop.clone(),
            runs.clone(),
            ids.clone(),
            ours[other].clone(),
        );
        let id = io_loop
            .add_handler(&mut *ours[me].borrow_mut(), Interest::READABLE, move |_| {
                r.set(r.get() + 1);
                if let Some(id) = ids2.get()[other] {
                    l.remove_handler(id, &mut *other_socket.borrow_mut())
                        .unwrap();
                }
                l.stop();
            })
            .unwrap();
        let mut all = ids.get();
        all[me] = Some(id);
        ids.set(all);
    }
    start_safely(&io_loop);
    assert_eq!(runs.get(), 1, "the removed handler ran");
    io_loop.close(); // frees the handlers' cycle through the loop
}

#[test]
fn a_loop_can_run_inside_a_callback_of_another_loop() {
    let outer = IoLoop::new();
    outer.make_current();
    let inner = IoLoop::new();
    let seen = Rc::new(Cell::new((false, false)));
    let (o, i, s) = (outer.clone(), inner.clone(), seen.clone());
    outer.add_callback(move || {
        let probe = i.clone();
        let inner_was_current = i.run_sync(async move { same_loop(&probe, &IoLoop::current()) });
        s.set((inner_was_current, same_loop(&o, &IoLoop::current())));
        o.stop();
    });
    start_safely(&outer);
    assert_eq!(
        seen.get(),
        (true, true),
        "(inner current inside, outer current again after)"
    );
}

// ----- wake-ups from other threads ---------------------------------------------

#[test]
fn a_run_sync_future_woken_from_another_thread_never_loses_the_wake() {
    // The run_sync future's waker and the loop's sleep announce each other
    // through two flags; each side stores its own and loads the other's, so
    // every access must be `SeqCst` or a wake-up may be lost and the loop
    // sleep on. Here the future is woken only from another thread, thousands
    // of times, sometimes while the loop is awake and sometimes while it
    // sleeps in `poll`; a lost wake-up ends in the safety net.
    const ROUNDS: usize = 5000;
    let io_loop = IoLoop::new();
    let parked: Arc<Mutex<Option<Waker>>> = Arc::default();
    let waker_thread = {
        let parked = parked.clone();
        thread::spawn(move || {
            for round in 0..ROUNDS {
                let waker = loop {
                    if let Some(waker) = parked.lock().unwrap().take() {
                        break waker;
                    }
                    thread::yield_now();
                };
                if round % 8 == 0 {
                    // Give the loop time to go to sleep in `poll`.
                    thread::sleep(Duration::from_micros(100));
                }
                waker.wake();
            }
        })
    };
    let mut done = 0;
    let mut waiting = false;
    let rounds = run(
        &io_loop,
        poll_fn(|cx| {
            // Woken for this round once the thread took the parked waker.
            if waiting && parked.lock().unwrap().is_none() {
                waiting = false;
                done += 1;
            }
            if done == ROUNDS {
                return Poll::Ready(done);
            }
            if !waiting {
                *parked.lock().unwrap() = Some(cx.waker().clone());
                waiting = true;
            }
            Poll::Pending
        }),
    );
    assert_eq!(rounds, ROUNDS);
    waker_thread.join().expect("the waking thread");
}
