//! Behaviour of the blocking detector, [`IoLoop::set_blocking_log_threshold`]:
//! whatever blocks the loop for longer than the threshold is logged as a
//! warning naming where it was registered.

mod support;

use std::io::Write;
use std::thread;
use std::time::Duration;

use support::{capture_logs, logs_of_this_thread, run, socket_pair, start_safely};
use whirl_ioloop::{sleep, spawn, Interest, IoLoop, PeriodicCallback};

/// The threshold the tests set.
const THRESHOLD: Duration = Duration::from_millis(20);
/// How long a blocking callback blocks: well over the threshold.
const BLOCK: Duration = Duration::from_millis(60);

/// The blocking warnings logged on this thread so far.
fn blocking_warnings() -> Vec<String> {
    logs_of_this_thread()
        .into_iter()
        .filter(|line| line.contains("blocked the event loop"))
        .collect()
}

/// Asserts exactly one blocking warning was logged, naming `kind` and the
/// registration site at `line` of this file.
fn assert_one_warning(kind: &str, line: u32) {
    let warnings = blocking_warnings();
    assert_eq!(
        warnings.len(),
        1,
        "expected one blocking warning, got {warnings:?}"
    );
    let warning = &warnings[0];
    let site = format!("{}:{line}:", file!());
    assert!(warning.starts_with("WARN"), "{warning}");
    assert!(warning.contains(&site), "{warning:?} does not name {site}");
    assert!(warning.contains(kind), "{warning:?} does not say {kind}");
}

/// A loop with the detector on at [`THRESHOLD`].
fn detecting_loop() -> IoLoop {
    capture_logs();
    let io_loop = IoLoop::new();
    io_loop.set_blocking_log_threshold(Some(THRESHOLD));
    io_loop
}

/// Runs the loop for one iteration and what it queues.
fn run_briefly(io_loop: &IoLoop) {
    let l = io_loop.clone();
    io_loop.add_callback(move || {
        let l2 = l.clone();
        l.add_callback(move || l2.stop());
    });
    start_safely(io_loop);
}

#[test]
fn a_blocking_callback_is_logged_with_its_add_callback_site() {
    let io_loop = detecting_loop();
    let block = || thread::sleep(BLOCK);
    let line = line!() + 1;
    io_loop.add_callback(block);
    run_briefly(&io_loop);
    assert_one_warning("callback", line);
}

#[test]
fn a_blocking_callback_from_another_thread_is_logged_with_its_site() {
    let io_loop = detecting_loop();
    let handle = io_loop.handle();
    let line = thread::spawn(move || {
        let block = || thread::sleep(BLOCK);
        let line = line!() + 1;
        handle.add_callback(block);
        line
    })
    .join()
    .unwrap();
    run_briefly(&io_loop);
    assert_one_warning("callback", line);
}

#[test]
fn a_blocking_call_later_is_logged_with_its_site() {
    let io_loop = detecting_loop();
    let l = io_loop.clone();
    let block = move || {
        thread::sleep(BLOCK);
        l.stop();
    };
    let line = line!() + 1;
    io_loop.call_later(Duration::from_millis(1), block);
    start_safely(&io_loop);
    assert_one_warning("timeout", line);
}

#[test]
fn a_blocking_add_timeout_is_logged_with_its_site() {
    let io_loop = detecting_loop();
    let l = io_loop.clone();
    let block = move || {
        thread::sleep(BLOCK);
        l.stop();
    };
    let deadline = io_loop.time();
    let line = line!() + 1;
    io_loop.add_timeout(deadline, block);
    start_safely(&io_loop);
    assert_one_warning("timeout", line);
}

#[test]
fn a_task_blocking_during_a_poll_is_logged_with_its_spawn_site() {
    let io_loop = detecting_loop();
    let task = async {
        sleep(Duration::from_millis(1)).await;
        thread::sleep(BLOCK); // blocks in its second poll
    };
    let line = line!() + 1;
    let handle = io_loop.spawn(task);
    run(&io_loop, handle).unwrap();
    assert_one_warning("task", line);
}

#[test]
fn a_task_spawned_with_the_free_function_is_logged_with_its_site() {
    let io_loop = detecting_loop();
    let line = run(&io_loop, async {
        let task = async { thread::sleep(BLOCK) };
        let line = line!() + 1;
        let handle = spawn(task);
        handle.await.unwrap();
        line
    });
    assert_one_warning("task", line);
}

#[test]
fn a_blocking_fd_handler_is_logged_with_its_add_handler_site() {
    let io_loop = detecting_loop();
    let (mut ours, mut theirs) = socket_pair();
    let l = io_loop.clone();
    let block = move |_| {
        thread::sleep(BLOCK);
        l.stop();
    };
    let line = line!() + 1;
    let added = io_loop.add_handler(&mut ours, Interest::READABLE, block);
    let id = added.unwrap();
    theirs.write_all(b"x").unwrap();
    start_safely(&io_loop);
    io_loop.remove_handler(id, &mut ours).unwrap();
    assert_one_warning("fd handler", line);
}

#[test]
fn a_blocking_periodic_callback_is_logged_with_its_site() {
    let io_loop = detecting_loop();
    let l = io_loop.clone();
    let block = move || {
        thread::sleep(BLOCK);
        l.stop();
    };
    let line = line!() + 1;
    let pc = PeriodicCallback::new(block, Duration::from_millis(1));
    pc.start();
    start_safely(&io_loop);
    pc.stop();
    assert_one_warning("timeout", line);
}

#[test]
fn fast_callbacks_log_nothing() {
    capture_logs();
    let io_loop = IoLoop::new();
    // Far above what an empty callback takes, even on a busy machine.
    io_loop.set_blocking_log_threshold(Some(Duration::from_millis(500)));
    for _ in 0..100 {
        io_loop.add_callback(|| {});
    }
    io_loop.call_later(Duration::from_millis(1), || {});
    run(&io_loop, async {
        spawn(async { sleep(Duration::from_millis(1)).await })
            .await
            .unwrap();
    });
    run_briefly(&io_loop);
    assert_eq!(blocking_warnings(), Vec::<String>::new());
}

#[test]
fn the_detector_is_off_by_default() {
    capture_logs();
    let io_loop = IoLoop::new();
    io_loop.add_callback(|| thread::sleep(BLOCK));
    run_briefly(&io_loop);
    assert_eq!(blocking_warnings(), Vec::<String>::new());
}

#[test]
fn the_detector_can_be_turned_off_again() {
    let io_loop = detecting_loop();
    io_loop.set_blocking_log_threshold(None);
    io_loop.add_callback(|| thread::sleep(BLOCK));
    run_briefly(&io_loop);
    assert_eq!(blocking_warnings(), Vec::<String>::new());
}
