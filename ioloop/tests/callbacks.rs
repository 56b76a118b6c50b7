//! Behaviour of callbacks: [`IoLoop::add_callback`] on the loop's thread and
//! [`LoopHandle`] from any thread.

mod support;

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use support::{run, start_safely, start_within, trace, yield_now, Watchdog, SAFETY};
use whirl_ioloop::{IoLoop, LoopHandle};

/// Compiles only if `T` is `Send + Sync + Clone`.
fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

#[test]
fn loop_handle_is_send_sync_and_clone() {
    assert_send_sync_clone::<LoopHandle>();
}

#[test]
fn callbacks_run_in_the_order_they_were_added() {
    let io_loop = IoLoop::new();
    let log = trace();
    for i in 0..1000 {
        let t = log.clone();
        io_loop.add_callback(move || t.borrow_mut().push(i));
    }
    let l = io_loop.clone();
    io_loop.add_callback(move || l.stop());
    start_safely(&io_loop);
    assert_eq!(*log.borrow(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn callbacks_from_a_handle_run_in_the_order_they_were_added() {
    let io_loop = IoLoop::new();
    let handle = io_loop.handle();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    thread::spawn(move || {
        for i in 0..1000 {
            let s = s.clone();
            handle.add_callback(move || s.lock().unwrap().push(i));
        }
        handle.add_callback(|| IoLoop::current().stop());
    })
    .join()
    .unwrap();
    start_safely(&io_loop);
    assert_eq!(*seen.lock().unwrap(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn a_callback_runs_on_the_next_iteration_not_at_once() {
    let io_loop = IoLoop::new();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    io_loop.add_callback(move || r.set(true));
    assert!(!ran.get(), "add_callback does not run the callback itself");
    run(&io_loop, async {
        while !ran.get() {
            yield_now().await;
        }
    });
}

#[test]
fn a_panicking_callback_does_not_stop_the_loop() {
    let io_loop = IoLoop::new();
    let log = trace();
    let t = log.clone();
    io_loop.add_callback(move || t.borrow_mut().push("before"));
    io_loop.add_callback(|| panic!("a callback panicked on purpose"));
    let t = log.clone();
    io_loop.add_callback(move || t.borrow_mut().push("same iteration"));
    let (l, t) = (io_loop.clone(), log.clone());
    io_loop.add_callback(move || {
        let t = t.clone();
        l.add_callback(move || t.borrow_mut().push("next iteration"));
    });
    io_loop
        .handle()
        .add_callback(|| panic!("a remote callback panicked on purpose"));
    let (l, t) = (io_loop.clone(), log.clone());
    io_loop.call_later(Duration::from_millis(5), move || {
        t.borrow_mut().push("timer");
        l.stop();
    });
    start_safely(&io_loop);
    assert_eq!(
        *log.borrow(),
        ["before", "same iteration", "next iteration", "timer"]
    );
}

#[test]
fn eighty_thousand_callbacks_from_eight_threads_each_run_exactly_once() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 10_000;
    const TOTAL: usize = THREADS * PER_THREAD;

    let io_loop = IoLoop::new();
    // runs[thread * PER_THREAD + i] counts runs of callback i of that thread.
    let runs = Arc::new(Mutex::new(vec![0u32; TOTAL]));
    let seen = Arc::new(AtomicUsize::new(0));
    let start_line = Arc::new(Barrier::new(THREADS));
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let (handle, runs, seen, start_line) = (
                io_loop.handle(),
                runs.clone(),
                seen.clone(),
                start_line.clone(),
            );
            thread::spawn(move || {
                start_line.wait();
                for i in 0..PER_THREAD {
                    let (runs, seen) = (runs.clone(), seen.clone());
                    handle.add_callback(move || {
                        runs.lock().unwrap()[t * PER_THREAD + i] += 1;
                        if seen.fetch_add(1, Ordering::SeqCst) + 1 == TOTAL {
                            IoLoop::current().stop();
                        }
                    });
                }
            })
        })
        .collect();
    let finished = start_within(&io_loop, SAFETY);
    for sender in senders {
        sender.join().unwrap();
    }
    assert!(
        finished,
        "only {} of {TOTAL} callbacks ran",
        seen.load(Ordering::SeqCst)
    );
    // Anything still queued (there should be nothing) would run now.
    run(&io_loop, async {
        for _ in 0..3 {
            yield_now().await;
        }
    });
    let runs = runs.lock().unwrap();
    let wrong: Vec<(usize, usize, u32)> = runs
        .iter()
        .enumerate()
        .filter(|(_, n)| **n != 1)
        .map(|(k, n)| (k / PER_THREAD, k % PER_THREAD, *n))
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "(thread, i, runs) not run exactly once: {wrong:?}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), TOTAL);
}

#[test]
fn handle_callbacks_run_on_the_loops_thread() {
    let io_loop = IoLoop::new();
    let handle = io_loop.handle();
    let ran_on = Arc::new(Mutex::new(HashSet::new()));
    let r = ran_on.clone();
    thread::spawn(move || {
        for _ in 0..10 {
            let r = r.clone();
            handle.add_callback(move || {
                r.lock().unwrap().insert(thread::current().id());
            });
        }
        handle.add_callback(|| IoLoop::current().stop());
    })
    .join()
    .unwrap();
    start_safely(&io_loop);
    let ran_on = ran_on.lock().unwrap();
    assert_eq!(ran_on.len(), 1);
    assert!(ran_on.contains(&thread::current().id()));
}

#[test]
fn a_handle_wakes_a_loop_sleeping_with_nothing_to_do() {
    // No timer is armed: the loop sleeps in poll with no deadline, and only
    // the handle's wake-up (or the watchdog's socket) can end the sleep.
    let io_loop = IoLoop::new();
    let watchdog = Watchdog::arm(&io_loop, SAFETY);
    let handle = io_loop.handle();
    let ran = Rc::new(Cell::new(false));
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        handle.add_callback(|| IoLoop::current().stop());
    });
    let r = ran.clone();
    io_loop.add_callback(move || r.set(true));
    assert_eq!(io_loop.pending_timeouts(), 0);
    io_loop.start();
    sender.join().unwrap();
    assert!(ran.get());
    assert!(
        !watchdog.fired(),
        "the callback did not wake the sleeping loop"
    );
}

#[test]
fn a_handle_wakes_a_sleeping_loop_many_times() {
    // Each callback is sent only after the previous one ran, so the loop is
    // asleep (or about to be) every time.
    let io_loop = IoLoop::new();
    let watchdog = Watchdog::arm(&io_loop, SAFETY);
    let handle = io_loop.handle();
    let count = Arc::new(AtomicUsize::new(0));
    let loop_returned = Arc::new(AtomicBool::new(false));
    let (c, returned) = (count.clone(), loop_returned.clone());
    let sender = thread::spawn(move || {
        for round in 1..=20 {
            let c2 = c.clone();
            handle.add_callback(move || {
                c2.fetch_add(1, Ordering::SeqCst);
            });
            while c.load(Ordering::SeqCst) < round {
                if returned.load(Ordering::SeqCst) {
                    return; // the watchdog ended the loop
                }
                thread::sleep(Duration::from_millis(1));
            }
        }
        handle.add_callback(|| IoLoop::current().stop());
    });
    io_loop.start();
    loop_returned.store(true, Ordering::SeqCst);
    sender.join().unwrap();
    assert!(
        !watchdog.fired(),
        "a callback did not wake the sleeping loop"
    );
    assert_eq!(count.load(Ordering::SeqCst), 20);
}

#[test]
fn a_handle_stops_the_loop_from_another_thread() {
    let io_loop = IoLoop::new();
    let watchdog = Watchdog::arm(&io_loop, SAFETY);
    let handle = io_loop.handle();
    let stopper = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        handle.stop();
    });
    io_loop.start();
    stopper.join().unwrap();
    assert!(
        !watchdog.fired(),
        "LoopHandle::stop did not stop the sleeping loop"
    );
    assert!(!io_loop.is_running());
}

#[test]
fn a_handle_outlives_its_loop_harmlessly() {
    let io_loop = IoLoop::new();
    let handle = io_loop.handle();
    io_loop.close();
    drop(io_loop);
    let clone = handle.clone();
    thread::spawn(move || {
        clone.add_callback(|| {});
        clone.stop();
    })
    .join()
    .unwrap();
    handle.add_callback(|| {});
}

#[test]
fn a_shared_callback_runs_once_each_time_it_is_queued() {
    let io_loop = IoLoop::new();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let callback: Rc<dyn Fn()> = Rc::new(move || c.set(c.get() + 1));
    io_loop.add_shared_callback(&callback);
    io_loop.add_shared_callback(&callback);
    let l = io_loop.clone();
    io_loop.add_callback(move || l.stop());
    start_safely(&io_loop);
    assert_eq!(count.get(), 2, "queued twice, run twice");
    assert_eq!(Rc::strong_count(&callback), 1, "the loop let go of it");
}
