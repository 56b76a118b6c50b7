//! The examples run and do what their headers promise. `cargo test` builds the
//! examples before the tests run; these tests start the built binaries.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Path of a built example, next to this test's own binary.
fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

/// Runs an example to completion and returns (stdout, stderr).
fn run_to_end(name: &str) -> (String, String) {
    let out = Command::new(example(name))
        .env("RUST_LOG", "info")
        .output()
        .unwrap_or_else(|e| panic!("cannot run example {name}: {e}"));
    assert!(out.status.success(), "{name} failed: {out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn timers_fire_in_deadline_order_and_timeout_cuts_slow_work() {
    let (stdout, _) = run_to_end("timers");
    let pos = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing in:\n{stdout}"))
    };
    assert!(pos("call_later(300 ms) fired") < pos("call_later(600 ms) fired"));
    assert!(stdout.contains("slow operation: Err(\"the operation timed out\")"));
    assert!(stdout.contains("fast operation: Ok(\"made it\")"));
    assert!(stdout.contains("heartbeat #3"));
    assert!(stdout.trim_end().ends_with("done"));
}

#[test]
fn blocking_detector_names_the_culprit() {
    let (stdout, stderr) = run_to_end("blocking_detector");
    let warnings: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("blocked the event loop"))
        .collect();
    assert_eq!(warnings.len(), 1, "stderr:\n{stderr}");
    assert!(
        warnings[0].contains("examples/blocking_detector.rs:"),
        "{}",
        warnings[0]
    );
    assert!(stdout.contains("a quick callback: no warning"));
}

/// Kills the child when dropped, so a failing test leaves no server behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn fd_handler_echoes_a_large_payload() {
    let mut child = KillOnDrop(
        Command::new(example("fd_handler"))
            .args(["--port", "0"])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start fd_handler"),
    );
    let stderr = child.0.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("fd_handler exited early")
            .expect("read stderr");
        if let Some(at) = line.find("tcp://") {
            break line[at + "tcp://".len()..].trim().to_string();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));

    let stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let payload: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = stream.try_clone().unwrap();
    let to_send = payload.clone();
    let sender = std::thread::spawn(move || {
        writer.write_all(&to_send).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut echoed = Vec::new();
    (&stream).read_to_end(&mut echoed).expect("read echo");
    sender.join().unwrap();
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "echo differs");
}
