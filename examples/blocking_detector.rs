//! The blocking detector: the seed's whole warning is that one blocking call
//! stalls every request on the loop. Turn the detector on and whirl names the
//! culprit — where it was registered and how long it held the loop.
//!
//! ```text
//! cargo run --release --example blocking_detector
//! ```
//!
//! Expect one warning like
//! `blocked the event loop for 0.200s: timeout registered at examples/blocking_detector.rs:NN:13`,
//! and a heartbeat that visibly pauses while the loop is blocked.

use std::time::{Duration, Instant};

use whirl::ioloop::{IoLoop, PeriodicCallback};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let io_loop = IoLoop::new();
    io_loop.set_blocking_log_threshold(Some(Duration::from_millis(50)));

    let started = Instant::now();
    let heartbeat = PeriodicCallback::new(
        move || println!("{:>5} ms  heartbeat", started.elapsed().as_millis()),
        Duration::from_millis(50),
    );
    heartbeat.start();

    // The mistake: a blocking call on the loop thread (Tornado's
    // `os.system("ping ...")` in a handler). Nothing else runs for 200 ms.
    io_loop.call_later(Duration::from_millis(200), || {
        std::thread::sleep(Duration::from_millis(200));
    });

    // A well-behaved callback: fast, so the detector stays quiet.
    io_loop.add_callback(|| println!("a quick callback: no warning"));

    let stopper = io_loop.clone();
    io_loop.call_later(Duration::from_millis(600), move || stopper.stop());
    io_loop.start();
    heartbeat.stop();
}
