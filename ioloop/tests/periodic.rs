//! Behaviour of [`PeriodicCallback`]: repeated runs, stop and restart, panics,
//! skipping missed runs after the loop was blocked, jitter.

mod support;

use std::cell::{Cell, RefCell};
use std::panic::catch_unwind;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use support::{run, trace, Trace};
use whirl_ioloop::{sleep, IoLoop, PeriodicCallback};

/// The period of most tests.
const PERIOD: Duration = Duration::from_millis(5);

/// A periodic callback that counts its runs.
fn counting(period: Duration) -> (PeriodicCallback, Rc<Cell<u32>>) {
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let pc = PeriodicCallback::new(move || r.set(r.get() + 1), period);
    (pc, runs)
}

/// Runs the loop until `runs` reaches `n`.
fn run_until_count(io_loop: &IoLoop, runs: &Rc<Cell<u32>>, n: u32) {
    run(io_loop, async {
        while runs.get() < n {
            sleep(Duration::from_millis(1)).await;
        }
    });
}

#[test]
fn runs_repeatedly() {
    let io_loop = IoLoop::new();
    let (pc, runs) = counting(PERIOD);
    pc.start();
    run_until_count(&io_loop, &runs, 5);
    assert!(pc.is_running());
    pc.stop();
}

#[test]
fn the_first_run_is_one_period_after_start() {
    let io_loop = IoLoop::new();
    let first_run = Rc::new(Cell::new(None));
    let f = first_run.clone();
    let pc = PeriodicCallback::new(
        move || {
            if f.get().is_none() {
                f.set(Some(Instant::now()));
            }
        },
        Duration::from_millis(20),
    );
    let started = Instant::now();
    pc.start();
    run(&io_loop, async {
        while first_run.get().is_none() {
            sleep(Duration::from_millis(1)).await;
        }
    });
    pc.stop();
    let first_run = first_run.get().unwrap();
    assert!(
        first_run >= started + Duration::from_millis(20),
        "ran before one period passed"
    );
}

#[test]
fn stop_stops_it() {
    let io_loop = IoLoop::new();
    let (pc, runs) = counting(PERIOD);
    pc.start();
    run_until_count(&io_loop, &runs, 3);
    pc.stop();
    assert!(!pc.is_running());
    assert_eq!(io_loop.pending_timeouts(), 0, "its timer was disarmed");
    let after_stop = runs.get();
    run(&io_loop, sleep(PERIOD * 10));
    assert_eq!(runs.get(), after_stop, "no run after stop");
}

#[test]
fn stop_from_its_own_callback() {
    let io_loop = IoLoop::new();
    let runs = Rc::new(Cell::new(0));
    let slot: Rc<RefCell<Option<PeriodicCallback>>> = Rc::new(RefCell::new(None));
    let (r, s) = (runs.clone(), slot.clone());
    let pc = PeriodicCallback::new(
        move || {
            r.set(r.get() + 1);
            if r.get() == 3 {
                if let Some(pc) = s.borrow().as_ref() {
                    pc.stop();
                }
            }
        },
        PERIOD,
    );
    *slot.borrow_mut() = Some(pc.clone());
    pc.start();
    run_until_count(&io_loop, &runs, 3);
    run(&io_loop, sleep(PERIOD * 10));
    assert_eq!(runs.get(), 3);
    assert!(!pc.is_running());
    assert_eq!(io_loop.pending_timeouts(), 0);
    slot.borrow_mut().take(); // break the cycle callback -> handle -> callback
}

#[test]
fn is_running_follows_start_and_stop() {
    let _io_loop = IoLoop::new();
    let (pc, _) = counting(PERIOD);
    assert!(!pc.is_running());
    pc.start();
    assert!(pc.is_running());
    let clone = pc.clone();
    assert!(clone.is_running(), "clones share the schedule");
    clone.stop();
    assert!(!pc.is_running());
    pc.stop(); // stopping twice is harmless
    assert!(!pc.is_running());
    assert_eq!(pc.period(), PERIOD);
}

#[test]
fn starting_twice_is_harmless() {
    let io_loop = IoLoop::new();
    let (pc, runs) = counting(PERIOD);
    pc.start();
    pc.start();
    assert_eq!(io_loop.pending_timeouts(), 1, "one schedule, one timer");
    run_until_count(&io_loop, &runs, 3);
    pc.stop();
    assert_eq!(io_loop.pending_timeouts(), 0, "no timer left behind");
    let after_stop = runs.get();
    run(&io_loop, sleep(PERIOD * 10));
    assert_eq!(runs.get(), after_stop);
}

#[test]
fn restart_after_stop() {
    let io_loop = IoLoop::new();
    let (pc, runs) = counting(PERIOD);
    pc.start();
    run_until_count(&io_loop, &runs, 2);
    pc.stop();
    let after_stop = runs.get();
    pc.start();
    assert!(pc.is_running());
    run_until_count(&io_loop, &runs, after_stop + 3);
    pc.stop();
    assert_eq!(io_loop.pending_timeouts(), 0);
}

#[test]
fn runs_on_the_loop_current_when_started() {
    let other = IoLoop::new();
    let io_loop = IoLoop::new();
    io_loop.make_current();
    let (pc, runs) = counting(PERIOD);
    pc.start();
    assert_eq!(io_loop.pending_timeouts(), 1);
    assert_eq!(other.pending_timeouts(), 0);
    run_until_count(&io_loop, &runs, 2);
    pc.stop();
}

#[test]
fn a_panicking_callback_keeps_the_schedule_going() {
    let io_loop = IoLoop::new();
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let pc = PeriodicCallback::new(
        move || {
            r.set(r.get() + 1);
            panic!("a periodic callback panicked on purpose");
        },
        PERIOD,
    );
    pc.start();
    run_until_count(&io_loop, &runs, 4);
    assert!(pc.is_running());
    pc.stop();
}

#[test]
fn missed_runs_are_skipped_not_run_in_a_burst() {
    const SLOW_PERIOD: Duration = Duration::from_millis(20);
    let io_loop = IoLoop::new();
    let run_times: Trace<Instant> = trace();
    let t = run_times.clone();
    let pc = PeriodicCallback::new(move || t.borrow_mut().push(Instant::now()), SLOW_PERIOD);
    pc.start();
    // Block the loop for five periods, a quarter period after the schedule
    // started: the late run comes right after the block, the next one (on
    // the schedule's grid) three quarters of a period later.
    let block_end = Rc::new(Cell::new(None));
    let b = block_end.clone();
    io_loop.call_later(SLOW_PERIOD / 4, move || {
        thread::sleep(SLOW_PERIOD * 5);
        b.set(Some(Instant::now()));
    });
    // Wait until the schedule has clearly resumed after the block.
    run(&io_loop, async {
        loop {
            if let Some(end) = block_end.get() {
                if run_times.borrow().iter().filter(|t| **t >= end).count() >= 3 {
                    break;
                }
            }
            sleep(Duration::from_millis(1)).await;
        }
    });
    pc.stop();
    let end = block_end.get().unwrap();
    let window = end..end + SLOW_PERIOD / 2;
    let burst = run_times
        .borrow()
        .iter()
        .filter(|t| window.contains(t))
        .count();
    assert!(
        burst <= 2,
        "{burst} runs within half a period after the block: missed runs were replayed"
    );
}

#[test]
fn with_jitter_still_runs() {
    let io_loop = IoLoop::new();
    for jitter in [0.1, 0.5, 1.0] {
        let runs = Rc::new(Cell::new(0));
        let r = runs.clone();
        let pc = PeriodicCallback::new(move || r.set(r.get() + 1), PERIOD).with_jitter(jitter);
        pc.start();
        run_until_count(&io_loop, &runs, 5);
        pc.stop();
    }
    assert_eq!(io_loop.pending_timeouts(), 0);
}

#[test]
fn a_zero_period_is_refused() {
    assert!(catch_unwind(|| PeriodicCallback::new(|| {}, Duration::ZERO)).is_err());
}
