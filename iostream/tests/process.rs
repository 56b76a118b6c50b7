//! `Subprocess`: pipes as streams, exit statuses, kills, many children, and
//! no zombies left behind (Tornado's `process_test.py`, in spirit).
#![cfg(unix)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use whirl_ioloop::{multi, sleep, spawn, IoLoop};
use whirl_iostream::Subprocess;

/// Every test ends by itself: a stuck one fails after this long.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `future` on a fresh loop; panics if it does not finish in time.
fn run<F: Future>(future: F) -> F::Output {
    let _ = env_logger::builder().is_test(true).try_init();
    IoLoop::new()
        .run_sync_timeout(future, TEST_TIMEOUT)
        .expect("the test did not finish in time")
}

/// `/bin/sh -c script`, nothing piped.
fn sh(script: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(script);
    command
}

/// The state letter of `pid` in `/proc/<pid>/stat` (`Z` for a zombie), or
/// `None` once the process is gone (reaped).
#[cfg(target_os = "linux")]
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": comm may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// Waits on the loop until `pid` is gone from `/proc` (reaped).
#[cfg(target_os = "linux")]
async fn until_reaped(pid: u32) {
    while let Some(state) = proc_state(pid) {
        log::debug!("child {pid} is in state {state}");
        sleep(Duration::from_millis(20)).await;
    }
}

/// A path in the temp dir unique to this test process and `name`.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("whirl-process-{}-{name}", std::process::id()))
}

#[test]
fn cat_round_trip() {
    run(async {
        let mut command = Command::new("cat");
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = Subprocess::spawn(command).expect("spawn cat");
        // More than a pipe holds, so writing and reading must overlap.
        let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let stdin = child.take_stdin().expect("stdin is piped");
        let writer = spawn({
            let input = input.clone();
            async move {
                stdin.write(input).await.expect("write to cat");
                stdin.close(); // end of file for cat
            }
        });
        let output = child
            .stdout()
            .expect("stdout is piped")
            .read_until_close()
            .await
            .expect("read cat's output");
        writer.await.expect("the writer task");
        assert_eq!(output.len(), input.len());
        assert!(output == input, "cat returned different bytes");
        let status = child.wait_for_exit().await.expect("wait for cat");
        assert!(status.success());
        assert_eq!(status.code(), Some(0));
    });
}

#[test]
fn exit_status_is_reported() {
    run(async {
        let child = Subprocess::spawn(sh("exit 3")).expect("spawn");
        let status = child.wait_for_exit().await.expect("wait");
        assert_eq!(status.code(), Some(3));
        assert!(!status.success());
        assert_eq!(status.signal(), None);
    });
}

#[test]
fn stderr_is_captured() {
    run(async {
        let mut command = sh("echo out; echo oops >&2; exit 1");
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = Subprocess::spawn(&mut command).expect("spawn");
        assert!(child.stdin().is_none(), "stdin was not piped");
        let err = child
            .stderr()
            .expect("stderr is piped")
            .read_until_close()
            .await
            .expect("read stderr");
        let out = child
            .stdout()
            .expect("stdout is piped")
            .read_until_close()
            .await
            .expect("read stdout");
        assert_eq!(err, b"oops\n");
        assert_eq!(out, b"out\n");
        assert_eq!(child.wait_for_exit().await.expect("wait").code(), Some(1));
    });
}

#[test]
fn shell_pipes_stdout() {
    run(async {
        let child = Subprocess::shell("printf 'a\\nb\\n'; exit 0").expect("spawn");
        let mut lines = Vec::new();
        let stdout = child.stdout().expect("shell pipes stdout");
        while let Ok(line) = stdout.read_until(b"\n", 1024).await {
            lines.push(line);
        }
        assert_eq!(lines, [b"a\n".to_vec(), b"b\n".to_vec()]);
        assert!(child.wait_for_exit().await.expect("wait").success());
    });
}

#[test]
fn killed_child_reports_the_signal() {
    run(async {
        let child = Subprocess::spawn(Command::new("sleep").arg("10")).expect("spawn sleep");
        assert_eq!(
            child.try_wait().expect("try_wait"),
            None,
            "sleep 10 is still running"
        );
        child.kill().expect("kill");
        let status = child.wait_for_exit().await.expect("wait");
        assert_eq!(status.signal(), Some(signal_hook::consts::SIGKILL));
        assert_eq!(status.code(), None);
        assert!(!status.success());
        // Once reaped, the status stays, and signalling is a no-op.
        assert_eq!(
            child.try_wait().expect("try_wait").map(|s| s.signal()),
            Some(Some(9))
        );
        child.kill().expect("kill after exit does nothing");
        child
            .terminate()
            .expect("terminate after exit does nothing");
    });
}

#[test]
fn terminate_and_send_signal() {
    run(async {
        let term = Subprocess::spawn(Command::new("sleep").arg("10")).expect("spawn");
        term.terminate().expect("terminate");
        assert_eq!(
            term.wait_for_exit().await.expect("wait").signal(),
            Some(signal_hook::consts::SIGTERM)
        );

        let hup = Subprocess::spawn(Command::new("sleep").arg("10")).expect("spawn");
        hup.send_signal(signal_hook::consts::SIGHUP)
            .expect("send SIGHUP");
        assert_eq!(
            hup.wait_for_exit().await.expect("wait").signal(),
            Some(signal_hook::consts::SIGHUP)
        );

        let err = hup.send_signal(-5).expect_err("no such signal");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn the_loop_runs_other_work_while_a_child_runs() {
    run(async {
        let child =
            Rc::new(Subprocess::spawn(Command::new("sleep").arg("0.3")).expect("spawn sleep"));
        // A timer fires, and a task ticks, while we await the child.
        let timer_saw_child_running = Rc::new(Cell::new(None));
        IoLoop::current().call_later(Duration::from_millis(10), {
            let (child, seen) = (child.clone(), timer_saw_child_running.clone());
            move || seen.set(Some(child.try_wait().expect("try_wait").is_none()))
        });
        let ticks = Rc::new(Cell::new(0u32));
        let ticker = spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    sleep(Duration::from_millis(5)).await;
                    ticks.set(ticks.get() + 1);
                }
            }
        });
        let status = child.wait_for_exit().await.expect("wait");
        ticker.abort();
        assert!(status.success());
        assert_eq!(
            timer_saw_child_running.get(),
            Some(true),
            "the timer fired while the child ran"
        );
        assert!(ticks.get() > 0, "the ticker ran while the child ran");
    });
}

#[test]
fn twenty_children_concurrently_are_all_reaped() {
    run(async {
        let children: Vec<Subprocess> = (0..20)
            .map(|i| Subprocess::spawn(sh(&format!("sleep 0.{}; exit {i}", i % 5))).expect("spawn"))
            .collect();
        let statuses = multi(children.iter().map(Subprocess::wait_for_exit)).await;
        for (i, status) in statuses.into_iter().enumerate() {
            assert_eq!(status.expect("wait").code(), Some(i as i32));
        }
        #[cfg(target_os = "linux")]
        for child in &children {
            assert_eq!(
                proc_state(child.pid()),
                None,
                "child {} was reaped",
                child.pid()
            );
        }
    });
}

#[test]
fn many_waiters_and_the_exit_callback_see_the_same_status() {
    run(async {
        let child = Subprocess::spawn(sh("sleep 0.05; exit 5")).expect("spawn");
        let seen = Rc::new(RefCell::new(None));
        child.set_exit_callback({
            let seen = seen.clone();
            move |status| *seen.borrow_mut() = Some(status.expect("exit callback status").code())
        });
        let (a, b) = (child.wait_for_exit(), child.wait_for_exit());
        drop(child); // the futures and the callback outlive the handle
        assert_eq!(a.await.expect("wait a").code(), Some(5));
        assert_eq!(b.await.expect("wait b").code(), Some(5));
        while seen.borrow().is_none() {
            sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(*seen.borrow(), Some(Some(5)));
    });
}

#[test]
fn a_missing_program_is_an_error() {
    run(async {
        let err = Subprocess::spawn(Command::new("/nonexistent/whirl-no-such-program"))
            .expect_err("spawn fails");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    });
}

#[test]
fn dropping_stdin_sends_end_of_file() {
    run(async {
        let mut command = Command::new("cat");
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = Subprocess::spawn(command).expect("spawn cat");
        drop(child.take_stdin());
        assert_eq!(
            child
                .stdout()
                .expect("stdout")
                .read_until_close()
                .await
                .expect("read"),
            b""
        );
        assert!(child.wait_for_exit().await.expect("wait").success());
    });
}

/// Dropping a running `Subprocess` leaves the child running (it finishes
/// its work) and the loop reaps it when it exits: no zombie.
#[cfg(target_os = "linux")]
#[test]
fn a_dropped_subprocess_leaves_no_zombie() {
    let marker = temp_path("dropped");
    let _ = std::fs::remove_file(&marker);
    run(async {
        let script = format!("sleep 0.2; : > '{}'", marker.display());
        let child = Subprocess::spawn(sh(&script)).expect("spawn");
        let pid = child.pid();
        drop(child);
        until_reaped(pid).await;
    });
    assert!(marker.exists(), "the dropped child ran to completion");
    let _ = std::fs::remove_file(&marker);
}

/// A child still running when its loop is closed (and its handle dropped) is
/// reaped all the same.
#[cfg(target_os = "linux")]
#[test]
fn a_child_outliving_its_loop_leaves_no_zombie() {
    let io_loop = IoLoop::new();
    let pid = io_loop.run_sync(async {
        let child = Subprocess::spawn(Command::new("sleep").arg("0.2")).expect("spawn");
        child.pid()
    });
    io_loop.close();
    drop(io_loop);
    assert!(
        proc_state(pid).is_some(),
        "the child still runs after the loop closed"
    );
    // No loop runs now: poll /proc from this thread, boundedly.
    let mut waited = Duration::ZERO;
    while proc_state(pid).is_some() {
        assert!(waited < TEST_TIMEOUT, "child {pid} was never reaped");
        std::thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
    }
}
