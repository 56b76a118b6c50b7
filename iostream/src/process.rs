//! [`Subprocess`]: a child process whose pipes are [`IoStream`]s and whose
//! exit is a future (Tornado's `process.Subprocess`).
//!
//! The public type documents how a child's exit is noticed without a thread
//! per child (pidfd on Linux, `SIGCHLD` elsewhere) and what dropping one
//! does; `process/watch.rs` implements it.

mod watch;

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::{Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::task::{Context, Poll};

use mio::unix::pipe::{Receiver, Sender};
use rustix::process::Signal;

use crate::stream::IoStream;
use watch::{Mechanism, Watch};

/// A child process on the loop: Tornado's `tornado.process.Subprocess`.
///
/// The pipes the [`Command`] was given ([`Stdio::piped()`]) become
/// non-blocking [`IoStream`]s on the current loop — Tornado's
/// `Subprocess.STREAM` — and [`wait_for_exit`](Subprocess::wait_for_exit) is a
/// future that resolves when the child exits, while the loop goes on with
/// everything else.
///
/// # How the exit is noticed
///
/// No thread waits per child. Each child gets a *watch*: a source registered
/// with the loop that becomes readable when the child may have exited, after
/// which the loop reaps it with a non-blocking `waitpid`
/// ([`Child::try_wait`](std::process::Child::try_wait)).
///
/// - **On Linux (5.3 and later) the source is a pidfd** (`pidfd_open(2)`):
///   one descriptor per child, readable exactly when *that* child exited.
///   Nothing process-wide changes — no signal handler is installed — and no
///   watch is woken for another child's exit.
/// - **Elsewhere (macOS, the BSDs), and on Linux where `pidfd_open` is missing
///   or forbidden** (older kernels, some seccomp sandboxes), the source is a
///   `SIGCHLD` self-pipe from `signal-hook` — Tornado's mechanism. Every
///   `SIGCHLD` in the process wakes every watch, and each one polls its own
///   child; coalesced signals are harmless for that reason. This installs a
///   process-wide `SIGCHLD` handler (with `SA_RESTART`, chaining to any
///   handler installed before) and costs one `waitpid` per watched child per
///   signal, fine for the tens of children a server runs.
///
/// pidfd is preferred because it is exact and leaves the process's signal
/// dispositions alone; the fallback keeps whirl portable, as the design asks.
/// Both are exercised by the tests on Linux.
///
/// # Reaping
///
/// The child is reaped only through its own pid, so other children of the
/// process are never touched. Until it is reaped its pid stays reserved (a
/// zombie cannot be replaced), so [`Subprocess::kill`] and
/// [`Subprocess::send_signal`] cannot hit a stranger. Code elsewhere in the
/// process that reaps *any* child (`waitpid(-1)`, `SIGCHLD` set to `SIG_IGN`)
/// steals the status: [`wait_for_exit`](Subprocess::wait_for_exit) then fails
/// with `ECHILD`.
///
/// # Dropping
///
/// Dropping a `Subprocess` closes the pipes it still holds (a child reading
/// stdin sees end of file) and **leaves the child running**, as Tornado and
/// `std` do — but, unlike `std`'s `Child`, **not un-reaped**: its watch stays
/// registered on the loop, which reaps the child when it exits (while the loop
/// runs). Kill it first ([`kill`](Subprocess::kill)) if it should not outlive
/// the handle. If the loop is [closed](whirl_ioloop::IoLoop::close) while such
/// a child still runs, one short-lived thread waits for it, so no zombie is
/// left. A loop dropped *without* `close` while it watches a running child is
/// kept alive by that watch (the usual handler–loop cycle that `close`
/// breaks), and the child is reaped when the process ends.
///
/// `Subprocess` is `!Send`, like the loop it runs on:
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<whirl_iostream::Subprocess>();
/// ```
///
/// # Examples
///
/// ```
/// use std::process::{Command, Stdio};
/// use whirl_ioloop::IoLoop;
/// use whirl_iostream::Subprocess;
///
/// IoLoop::new().run_sync(async {
///     let mut command = Command::new("tr");
///     command.arg("a-z").arg("A-Z").stdin(Stdio::piped()).stdout(Stdio::piped());
///     let mut child = Subprocess::spawn(command).unwrap();
///
///     let stdin = child.take_stdin().unwrap();
///     stdin.write("hello\n").await.unwrap();
///     drop(stdin); // end of file for `tr`
///
///     let out = child.stdout().unwrap().read_until_close().await.unwrap();
///     assert_eq!(out, b"HELLO\n");
///     assert!(child.wait_for_exit().await.unwrap().success());
/// });
/// ```
pub struct Subprocess {
    /// The child's pid (copied from the watch, which may be borrowed).
    pid: u32,
    /// The write end of the child's stdin pipe, if piped and not taken.
    stdin: Option<IoStream>,
    /// The read end of the child's stdout pipe, if piped and not taken.
    stdout: Option<IoStream>,
    /// The read end of the child's stderr pipe, if piped and not taken.
    stderr: Option<IoStream>,
    /// The child and its exit watch, shared with the loop's fd handler.
    watch: Rc<RefCell<Watch>>,
}

impl Subprocess {
    /// Starts `command` and watches it on the current loop. Tornado:
    /// `Subprocess(args, stdin=Subprocess.STREAM, ...)`.
    ///
    /// Takes a `Command` or a `&mut Command` (so the builder chain
    /// `Command::new("ls").arg("-l")` can be passed as it is). Its stdin,
    /// stdout and stderr set to [`Stdio::piped()`] become the streams returned
    /// by [`stdin`](Subprocess::stdin), [`stdout`](Subprocess::stdout) and
    /// [`stderr`](Subprocess::stderr); the others are as `std` leaves them
    /// (inherited unless set).
    ///
    /// # Errors
    ///
    /// The error of [`Command::spawn`] (e.g. `NotFound` for a missing
    /// program); or of opening the exit watch or registering the pipes with
    /// the loop (e.g. out of file descriptors) — then the child, which the
    /// caller could not reach any more, is killed and reaped.
    pub fn spawn(mut command: impl std::borrow::BorrowMut<Command>) -> io::Result<Subprocess> {
        Subprocess::spawn_with(
            std::borrow::BorrowMut::borrow_mut(&mut command),
            Mechanism::PidFd,
        )
    }

    /// Runs `script` with `/bin/sh -c`, its stdout piped, stdin from
    /// `/dev/null`, stderr inherited — the seed's `os.system("ping ...")`
    /// made asynchronous. Tornado: `Subprocess(script, shell=True,
    /// stdout=Subprocess.STREAM)`.
    ///
    /// Build the [`Command`] yourself for other plumbing.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Subprocess::spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// use whirl_ioloop::IoLoop;
    /// use whirl_iostream::Subprocess;
    ///
    /// IoLoop::new().run_sync(async {
    ///     let child = Subprocess::shell("echo one; echo two").unwrap();
    ///     let out = child.stdout().unwrap().read_until_close().await.unwrap();
    ///     assert_eq!(out, b"one\ntwo\n");
    ///     assert_eq!(child.wait_for_exit().await.unwrap().code(), Some(0));
    /// });
    /// ```
    pub fn shell(script: &str) -> io::Result<Subprocess> {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        Subprocess::spawn(command)
    }

    /// [`spawn`](Subprocess::spawn), choosing the exit mechanism (tests use
    /// this to exercise the SIGCHLD fallback on Linux).
    fn spawn_with(command: &mut Command, preferred: Mechanism) -> io::Result<Subprocess> {
        // Step 1. Start the child.
        let mut child = command.spawn()?;
        let pid = child.id();
        let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        // Step 2. Watch for its exit first, so that from here on it is reaped
        // whatever happens.
        let watch = Watch::start(child, preferred)?;
        // Step 3. Turn its pipes into streams on the loop.
        let streams = (|| -> io::Result<_> {
            let stdin = pipes
                .0
                .map(|p| pipe_stream(Sender::from(p), Sender::set_nonblocking));
            let stdout = pipes
                .1
                .map(|p| pipe_stream(Receiver::from(p), Receiver::set_nonblocking));
            let stderr = pipes
                .2
                .map(|p| pipe_stream(Receiver::from(p), Receiver::set_nonblocking));
            Ok((stdin.transpose()?, stdout.transpose()?, stderr.transpose()?))
        })();
        let (stdin, stdout, stderr) = match streams {
            Ok(streams) => streams,
            Err(e) => {
                // The caller gets no handle: do not leave the child running.
                let _ = watch.borrow_mut().kill();
                return Err(e);
            }
        };
        Ok(Subprocess {
            pid,
            stdin,
            stdout,
            stderr,
            watch,
        })
    }

    /// The child's process id. Tornado: `Subprocess.pid`.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The child's stdin, if it was piped and not taken. Tornado:
    /// `Subprocess.stdin`.
    ///
    /// The stream is a handle: [`close`](IoStream::close) it (after awaiting
    /// the last write: `close` drops unsent bytes) to send end of file.
    pub fn stdin(&self) -> Option<&IoStream> {
        self.stdin.as_ref()
    }

    /// The child's stdout, if it was piped and not taken. Tornado:
    /// `Subprocess.stdout`.
    pub fn stdout(&self) -> Option<&IoStream> {
        self.stdout.as_ref()
    }

    /// The child's stderr, if it was piped and not taken. Tornado:
    /// `Subprocess.stderr`.
    pub fn stderr(&self) -> Option<&IoStream> {
        self.stderr.as_ref()
    }

    /// Takes the child's stdin out (dropping the last handle closes it).
    pub fn take_stdin(&mut self) -> Option<IoStream> {
        self.stdin.take()
    }

    /// Takes the child's stdout out.
    pub fn take_stdout(&mut self) -> Option<IoStream> {
        self.stdout.take()
    }

    /// Takes the child's stderr out.
    pub fn take_stderr(&mut self) -> Option<IoStream> {
        self.stderr.take()
    }

    /// A future that resolves with the child's exit status once it exits.
    /// Tornado: `Subprocess.wait_for_exit(raise_error=False)`.
    ///
    /// Any number of futures may wait; they all resolve with the same status.
    /// A child killed by a signal reports it through
    /// [`ExitStatusExt::signal`](std::os::unix::process::ExitStatusExt::signal)
    /// (its [`code`](ExitStatus::code) is `None`). Tornado's
    /// `raise_error=True` is `status.success()` checked by the caller.
    ///
    /// The future needs the loop the child was spawned on to be running.
    ///
    /// # Errors
    ///
    /// The error of `waitpid` — `ECHILD` if other code reaped the child.
    pub fn wait_for_exit(&self) -> WaitForExit {
        WaitForExit {
            watch: self.watch.clone(),
        }
    }

    /// Runs `callback` on the loop with the exit status once the child exits.
    /// Tornado: `Subprocess.set_exit_callback`.
    ///
    /// Built on [`wait_for_exit`](Subprocess::wait_for_exit) (a task on the
    /// child's loop awaits it); the callback runs even if the `Subprocess` was
    /// dropped meanwhile.
    pub fn set_exit_callback<F>(&self, callback: F)
    where
        F: FnOnce(io::Result<ExitStatus>) + 'static,
    {
        let exit = self.wait_for_exit();
        let io_loop = self.watch.borrow().io_loop().clone();
        io_loop.spawn(async move { callback(exit.await) });
    }

    /// The exit status if the child has exited, without waiting (reaping it
    /// if it just did). Tornado: `Subprocess.returncode`; `std`'s
    /// [`Child::try_wait`](std::process::Child::try_wait).
    ///
    /// # Errors
    ///
    /// As [`wait_for_exit`](Subprocess::wait_for_exit).
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        let wakeups = self.watch.borrow_mut().check();
        for waker in wakeups {
            waker.wake();
        }
        self.watch.borrow().outcome().transpose()
    }

    /// Kills the child with `SIGKILL`; does nothing if it was already reaped.
    /// Await [`wait_for_exit`](Subprocess::wait_for_exit) for its status.
    /// Tornado: `Subprocess.proc.kill()`.
    ///
    /// # Errors
    ///
    /// The error of `kill(2)`.
    pub fn kill(&self) -> io::Result<()> {
        self.watch.borrow_mut().kill()
    }

    /// Sends `SIGTERM`, asking the child to end; does nothing if it was
    /// already reaped. Tornado: `Subprocess.proc.terminate()`.
    ///
    /// # Errors
    ///
    /// The error of `kill(2)`.
    pub fn terminate(&self) -> io::Result<()> {
        self.signal(Signal::TERM)
    }

    /// Sends the signal numbered `signal` (e.g. `SIGHUP` from `libc` or
    /// `signal_hook::consts`); does nothing if the child was already reaped.
    /// Tornado: `Subprocess.proc.send_signal(sig)`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a number that names no signal (real-time signals
    /// are not supported); else the error of `kill(2)`.
    pub fn send_signal(&self, signal: i32) -> io::Result<()> {
        let signal = Signal::from_named_raw(signal).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{signal} names no signal"),
            )
        })?;
        self.signal(signal)
    }

    /// Sends `signal` unless the child was already reaped.
    fn signal(&self, signal: Signal) -> io::Result<()> {
        let watch = self.watch.borrow();
        if watch.is_done() {
            return Ok(());
        }
        Ok(rustix::process::kill_process(watch.pid(), signal)?)
    }
}

/// Builds a stream on the current loop over a non-blocking pipe end.
fn pipe_stream<P: crate::transport::Transport + 'static>(
    pipe: P,
    set_nonblocking: fn(&P, bool) -> io::Result<()>,
) -> io::Result<IoStream> {
    set_nonblocking(&pipe, true)?;
    IoStream::new(pipe)
}

impl fmt::Debug for Subprocess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let watch = self.watch.borrow();
        f.debug_struct("Subprocess")
            .field("pid", &self.pid)
            .field("mechanism", &format_args!("{}", watch.mechanism()))
            .field("exit", &watch.outcome())
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .finish()
    }
}

/// The future of [`Subprocess::wait_for_exit`]: resolves with the child's
/// exit status once it exits. Tornado: the future `wait_for_exit` returns.
///
/// It holds the child's watch, not the `Subprocess`: it may outlive it.
#[must_use = "futures do nothing unless awaited"]
pub struct WaitForExit {
    /// The child's watch.
    watch: Rc<RefCell<Watch>>,
}

impl Future for WaitForExit {
    type Output = io::Result<ExitStatus>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut watch = self.watch.borrow_mut();
        match watch.outcome() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                watch.add_waker(cx.waker());
                Poll::Pending
            }
        }
    }
}

impl fmt::Debug for WaitForExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WaitForExit")
            .field(&*self.watch.borrow())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::time::Duration;
    use whirl_ioloop::{multi, IoLoop};

    /// Runs `future` on a fresh loop, failing the test after 30 s.
    fn run<F: Future>(future: F) -> F::Output {
        IoLoop::new()
            .run_sync_timeout(future, Duration::from_secs(30))
            .expect("the test timed out")
    }

    fn sh(script: &str) -> Command {
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(script);
        command
    }

    #[test]
    fn sigchld_fallback_reports_exit_codes() {
        run(async {
            let child = Subprocess::spawn_with(&mut sh("exit 7"), Mechanism::Sigchld).unwrap();
            assert_eq!(child.watch.borrow().mechanism(), Mechanism::Sigchld);
            assert_eq!(child.wait_for_exit().await.unwrap().code(), Some(7));
        });
    }

    #[test]
    fn sigchld_fallback_reaps_many_children_and_kills() {
        run(async {
            let children: Vec<_> = (0..10)
                .map(|i| {
                    Subprocess::spawn_with(
                        &mut sh(&format!("sleep 0.0{i}; exit {i}")),
                        Mechanism::Sigchld,
                    )
                    .unwrap()
                })
                .collect();
            let sleeper =
                Subprocess::spawn_with(&mut sh("exec sleep 10"), Mechanism::Sigchld).unwrap();
            let statuses = multi(children.iter().map(|c| c.wait_for_exit())).await;
            for (i, status) in statuses.into_iter().enumerate() {
                assert_eq!(status.unwrap().code(), Some(i as i32));
            }
            sleeper.kill().unwrap();
            assert_eq!(sleeper.wait_for_exit().await.unwrap().signal(), Some(9));
        });
    }

    /// The loop, not a fallback thread, reaps a dropped child: its handler
    /// keeps the watch alive until the child exits, then lets it go reaped.
    #[test]
    fn the_loop_keeps_and_reaps_a_dropped_child() {
        for mechanism in [Mechanism::PidFd, Mechanism::Sigchld] {
            run(async {
                let child = Subprocess::spawn_with(&mut sh("sleep 0.1"), mechanism).unwrap();
                let watch = Rc::downgrade(&child.watch);
                drop(child);
                assert!(
                    watch.upgrade().is_some(),
                    "the loop holds the watch of a running child"
                );
                while let Some(watch) = watch.upgrade() {
                    assert!(
                        !watch.borrow().is_done(),
                        "a reaped watch is released at once"
                    );
                    drop(watch);
                    whirl_ioloop::sleep(Duration::from_millis(10)).await;
                }
            });
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_prefers_pidfd() {
        use rustix::process::{getpid, pidfd_open, PidfdFlags};
        // pidfd where the kernel has it; the fallback where it does not.
        let expected = match pidfd_open(getpid(), PidfdFlags::empty()) {
            Ok(_) => Mechanism::PidFd,
            Err(_) => Mechanism::Sigchld,
        };
        run(async {
            let child = Subprocess::spawn(sh("exit 0")).unwrap();
            assert_eq!(child.watch.borrow().mechanism(), expected);
            assert!(child.wait_for_exit().await.unwrap().success());
        });
    }
}
