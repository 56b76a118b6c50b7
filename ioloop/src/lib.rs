//! whirl's event loop: a single-threaded reactor and executor on `mio`,
//! Tornado's `IOLoop` rebuilt in Rust.
//!
//! One [`IoLoop`] per thread runs everything registered on it, on that thread:
//!
//! - **fd handlers** — callbacks on socket readiness ([`IoLoop::add_handler`]);
//! - **callbacks** — [`IoLoop::add_callback`], and from other threads
//!   [`LoopHandle::add_callback`];
//! - **timers** — [`IoLoop::call_later`], [`IoLoop::add_timeout`],
//!   [`PeriodicCallback`];
//! - **tasks** — futures, [`spawn`]ed or run with [`IoLoop::run_sync`], that
//!   await [`sleep`], [`with_timeout`], [`multi()`], a [`ThreadPool`] job, the
//!   [`locks`] and [`queues`], or (in the layers above) sockets.
//!
//! The order of one loop iteration is written down once, on [`IoLoop::start`].
//! Blocking the loop stalls everything on it; [`IoLoop::set_blocking_log_threshold`]
//! names the culprit.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use whirl_ioloop::{run_in_executor, sleep, spawn, with_timeout, IoLoop};
//!
//! let io_loop = IoLoop::new();
//! let result = io_loop.run_sync(async {
//!     // A task runs beside us while we wait.
//!     let ticker = spawn(async {
//!         sleep(Duration::from_millis(5)).await;
//!         "tick"
//!     });
//!     // Blocking work goes to the thread pool, under a deadline.
//!     let work = run_in_executor(|| 2 + 2);
//!     let sum = with_timeout(Duration::from_secs(5), work).await.unwrap().unwrap();
//!     (ticker.await.unwrap(), sum)
//! });
//! assert_eq!(result, ("tick", 4));
//! ```

mod executor;
mod handle;
mod handler;
mod ioloop;
pub mod locks;
mod multi;
mod periodic;
pub mod queues;
mod task;
mod time;
mod timer;

pub use executor::{default_pool, run_in_executor, Submitted, ThreadPool};
pub use handle::LoopHandle;
pub use handler::{HandlerId, Ready};
pub use ioloop::{loop_time, IoLoop};
pub use mio::Interest;
pub use multi::{multi, Multi};
pub use periodic::PeriodicCallback;
pub use task::{spawn, JoinError, JoinHandle};
pub use time::{sleep, sleep_until, with_timeout, Sleep, Timeout, TimeoutError};
pub use timer::TimeoutHandle;
