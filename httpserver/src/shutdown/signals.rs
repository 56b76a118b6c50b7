//! [`ShutdownSignals`]: `SIGTERM` and `SIGINT` start a graceful [`drain`].
//!
//! The signals reach the loop through `signal-hook`'s self-pipe, a source
//! registered with the loop like a socket (as `Subprocess` hears
//! `SIGCHLD`): the signal handler only writes a byte to the pipe, and the
//! loop does the rest in an ordinary fd handler.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use whirl_ioloop::{Interest, IoLoop};

use super::drain;
use crate::multicore::ServerThreads;
use crate::server::HttpServer;

/// Catches `SIGTERM` and `SIGINT` from the moment it is made, so the process
/// can shut down gracefully instead of ending at once.
///
/// Make it before announcing the server (so a signal sent as soon as the
/// server is known cannot end the process the hard way), then hand it a
/// server with [`shutdown`](ShutdownSignals::shutdown) (one loop) or the
/// threads of [`serve_threads`](crate::serve_threads) with
/// [`join`](ShutdownSignals::join). In both, the first signal starts a
/// [`drain`]; a second one ends the process at once, as that signal's
/// default action would (Ctrl-C twice does not wait).
///
/// The handlers are process-wide and chain to any installed before; once a
/// `ShutdownSignals` is dropped the two signals are ignored, not restored to
/// their default (a `signal-hook` rule). Unix only. Tornado leaves this to
/// the application (`signal.signal(SIGTERM, …)` then
/// `IOLoop.add_callback_from_signal`).
pub struct ShutdownSignals {
    /// The self-pipe the two signals are written to.
    signals: Signals,
}

impl ShutdownSignals {
    /// Starts catching `SIGTERM` and `SIGINT`.
    ///
    /// # Errors
    ///
    /// If the self-pipe cannot be made (out of file descriptors).
    pub fn catch() -> io::Result<ShutdownSignals> {
        Ok(ShutdownSignals {
            signals: Signals::new([SIGTERM, SIGINT])?,
        })
    }

    /// Shuts `server` down on the first signal: on the current loop,
    /// [`drain`]s it within `drain_timeout`, then stops the loop, so
    /// [`IoLoop::start`] returns and `main` can return (exit status 0).
    /// Returns at once; the watch lives on the loop.
    ///
    /// # Errors
    ///
    /// If the self-pipe cannot be registered with the loop.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use whirl_httpserver::{HttpServer, ShutdownSignals};
    /// use whirl_ioloop::IoLoop;
    ///
    /// let io_loop = IoLoop::new();
    /// let signals = ShutdownSignals::catch().unwrap();
    /// let server = HttpServer::from_fn(|_request, _connection| {});
    /// server.listen(0, Some("127.0.0.1")).unwrap();
    /// signals.shutdown(&server, Duration::from_secs(10)).unwrap();
    /// // What `kill -TERM <pid>` would do:
    /// io_loop.add_callback(|| {
    ///     signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
    /// });
    /// io_loop.start(); // returns once the server is drained
    /// assert_eq!(server.connection_count(), 0);
    /// ```
    pub fn shutdown(self, server: &HttpServer, drain_timeout: Duration) -> io::Result<()> {
        let server = server.clone();
        self.watch(&IoLoop::current(), move |_signal| {
            IoLoop::current().spawn(async move {
                drain(&server, drain_timeout).await;
                IoLoop::current().stop();
            });
        })
    }

    /// Serves until the first signal, then stops every thread of `servers`
    /// within `drain_timeout` (each [`drain`]s its server, see
    /// [`ServerThreads::stop_within`])
    /// and waits for them. Blocks the calling thread, which waits on a loop
    /// of its own.
    ///
    /// # Errors
    ///
    /// If this thread's loop cannot be made or the self-pipe registered;
    /// if a server thread panicked.
    pub fn join(self, servers: ServerThreads, drain_timeout: Duration) -> io::Result<()> {
        // Step 1. Wait on a loop of our own for the first signal.
        let io_loop = IoLoop::try_new()?;
        let stopper = io_loop.clone();
        self.watch(&io_loop, move |_signal| stopper.stop())?;
        io_loop.start();
        // Step 2. Stop the threads; one of them wakes us once all ended,
        // unless a second signal ends the process first.
        servers.stop_within(drain_timeout);
        let waker = io_loop.handle();
        let joiner = std::thread::spawn(move || {
            let joined = servers.join();
            waker.stop();
            joined
        });
        io_loop.start();
        io_loop.close();
        joiner
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread joining the servers panicked")))
    }

    /// Registers the self-pipe with `io_loop`: `on_first` runs for the
    /// first signal, a later one ends the process. The handler owns the
    /// pipe, so it stays until the loop is closed.
    fn watch(self, io_loop: &IoLoop, on_first: impl FnOnce(i32) + 'static) -> io::Result<()> {
        let signals = Rc::new(RefCell::new(self.signals));
        let source = signals.clone();
        let mut on_first = Some(on_first);
        let draining = Cell::new(false);
        io_loop.add_handler(
            &mut *signals.borrow_mut(),
            Interest::READABLE,
            move |_ready| {
                // Read the pipe dry (readiness is edge-triggered); several
                // signals at once count as one.
                let received: Vec<i32> = source.borrow_mut().pending().collect();
                let Some(&signal) = received.first() else {
                    return;
                };
                if draining.replace(true) {
                    end_now(signal);
                }
                log::info!("{}: stopping gracefully", name(signal));
                if let Some(on_first) = on_first.take() {
                    on_first(signal);
                }
            },
        )?;
        Ok(())
    }
}

impl fmt::Debug for ShutdownSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownSignals").finish_non_exhaustive()
    }
}

/// Catches `SIGTERM` and `SIGINT` and shuts `server` down gracefully on the
/// first: [`ShutdownSignals::catch`] then
/// [`shutdown`](ShutdownSignals::shutdown). Call it before logging where
/// the server listens, then start the loop.
///
/// # Errors
///
/// As those two.
///
/// # Examples
///
/// ```no_run
/// use whirl_httpserver::{shutdown_on_signals, HttpServer, SHUTDOWN_TIMEOUT};
/// use whirl_ioloop::IoLoop;
///
/// let io_loop = IoLoop::new();
/// let server = HttpServer::from_fn(|_request, _connection| {});
/// server.listen(8888, Some("127.0.0.1"))?;
/// shutdown_on_signals(&server, SHUTDOWN_TIMEOUT)?;
/// log::info!("listening on http://127.0.0.1:8888");
/// io_loop.start(); // until SIGTERM or Ctrl-C, and the drain after it
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn shutdown_on_signals(server: &HttpServer, drain_timeout: Duration) -> io::Result<()> {
    ShutdownSignals::catch()?.shutdown(server, drain_timeout)
}

/// A second signal during a drain: ends the process as the signal's default
/// action would.
fn end_now(signal: i32) -> ! {
    log::warn!(
        "{} again: ending now, without waiting for requests in flight",
        name(signal)
    );
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}

/// The signal's name, for the log.
fn name(signal: i32) -> &'static str {
    signal_hook::low_level::signal_name(signal).unwrap_or("a signal")
}
