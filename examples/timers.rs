//! Timers on the event loop: `call_later`, `PeriodicCallback` and
//! `with_timeout`, all on one thread, none of them blocking the others.
//!
//! Run it (it finishes by itself after about two seconds):
//!
//! ```text
//! cargo run --release --example timers
//! ```
//!
//! You will see a heartbeat every 250 ms, two one-shot timers firing in
//! deadline order, a cancelled timer that never fires, a slow operation cut
//! short by `with_timeout`, and a fast one that makes it in time.

use std::time::{Duration, Instant};

use whirl::ioloop::{sleep, with_timeout, IoLoop, PeriodicCallback};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let io_loop = IoLoop::new();
    let started = Instant::now();
    let at = move || format!("{:>5} ms", started.elapsed().as_millis());

    // One-shot timers fire in deadline order, whatever order they were added in.
    io_loop.call_later(Duration::from_millis(600), move || {
        println!("{}  call_later(600 ms) fired", at())
    });
    io_loop.call_later(Duration::from_millis(300), move || {
        println!("{}  call_later(300 ms) fired", at())
    });

    // A removed timer never fires.
    let cancelled = io_loop.call_later(Duration::from_millis(400), || {
        unreachable!("removed timers never fire")
    });
    io_loop.remove_timeout(cancelled);

    // A heartbeat; missed beats are skipped, not burst, if the loop falls behind.
    let mut beats = 0;
    let heartbeat = PeriodicCallback::new(
        move || {
            beats += 1;
            println!("{}  heartbeat #{beats}", at());
        },
        Duration::from_millis(250),
    );
    heartbeat.start();

    // Meanwhile a task races two operations against a deadline.
    io_loop.run_sync(async {
        let slow = with_timeout(Duration::from_millis(800), sleep(Duration::from_secs(10))).await;
        println!(
            "{}  slow operation: {:?}",
            at(),
            slow.map_err(|e| e.to_string())
        );

        let fast = with_timeout(Duration::from_millis(800), async {
            sleep(Duration::from_millis(100)).await;
            "made it"
        })
        .await;
        println!("{}  fast operation: {fast:?}", at());

        sleep(Duration::from_millis(1000)).await;
    });
    heartbeat.stop();
    println!("{}  done", at());
}
