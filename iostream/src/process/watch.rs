//! [`Watch`]: noticing on the loop that a child exited, without a thread per
//! child (the mechanism is explained on
//! [`Subprocess`](super::Subprocess)).
//!
//! A watch owns the child (`std::process::Child`) and an [`ExitSource`]
//! registered with the loop. When the source fires, the watch tries a
//! non-blocking wait; once it reaps the child it stores the status,
//! unregisters, and wakes every [`WaitForExit`](super::WaitForExit).
//!
//! The loop's fd handler holds the watch strongly, so a child outlives its
//! [`Subprocess`](super::Subprocess) and is still reaped.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::mem;
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, ExitStatus};
use std::rc::Rc;
use std::task::Waker;
use std::thread;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use rustix::process::{Pid, WaitOptions};
use signal_hook::consts::SIGCHLD;
use signal_hook_mio::v1_0::Signals;
use whirl_ioloop::{HandlerId, IoLoop, Ready};

/// How a [`Watch`] learns that its child exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// A pidfd (Linux 5.3+): readable once this child exited.
    PidFd,
    /// A SIGCHLD self-pipe: readable after any child changed state.
    Sigchld,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::PidFd => "pidfd",
            Mechanism::Sigchld => "SIGCHLD",
        })
    }
}

/// Set once `pidfd_open` failed for want of kernel support (ENOSYS, before
/// Linux 5.3) or permission (EPERM under seccomp): later children go straight
/// to SIGCHLD.
#[cfg(target_os = "linux")]
static PIDFD_UNAVAILABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Opens a pidfd for `pid`, or says why not (and logs it).
#[cfg(target_os = "linux")]
fn open_pidfd(pid: Pid) -> Option<OwnedFd> {
    use rustix::io::Errno;
    use std::sync::atomic::Ordering;

    if PIDFD_UNAVAILABLE.load(Ordering::Relaxed) {
        return None;
    }
    match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => Some(fd),
        Err(e) => {
            if e == Errno::NOSYS || e == Errno::PERM {
                PIDFD_UNAVAILABLE.store(true, Ordering::Relaxed);
            }
            log::debug!(
                "pidfd_open({}) failed ({e}); watching for SIGCHLD instead",
                pid.as_raw_pid()
            );
            None
        }
    }
}

/// The pollable source that becomes readable when the child may have exited.
enum ExitSource {
    /// A pidfd for the child.
    #[cfg(target_os = "linux")]
    PidFd(OwnedFd),
    /// signal-hook's self-pipe for SIGCHLD.
    Sigchld(Signals),
}

impl ExitSource {
    /// Opens a source for `pid`: a pidfd if `preferred` says so and the
    /// kernel has them, else a SIGCHLD self-pipe.
    fn open(pid: Pid, preferred: Mechanism) -> io::Result<ExitSource> {
        #[cfg(target_os = "linux")]
        if preferred == Mechanism::PidFd {
            if let Some(fd) = open_pidfd(pid) {
                return Ok(ExitSource::PidFd(fd));
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (pid, preferred);
        Ok(ExitSource::Sigchld(Signals::new([SIGCHLD])?))
    }

    /// Which mechanism this source uses.
    fn mechanism(&self) -> Mechanism {
        match self {
            #[cfg(target_os = "linux")]
            ExitSource::PidFd(_) => Mechanism::PidFd,
            ExitSource::Sigchld(_) => Mechanism::Sigchld,
        }
    }

    /// Consumes the readiness (the self-pipe's bytes; a pidfd has none).
    fn drain(&mut self) {
        match self {
            #[cfg(target_os = "linux")]
            ExitSource::PidFd(_) => {}
            ExitSource::Sigchld(signals) => signals.pending().for_each(drop),
        }
    }
}

impl Source for ExitSource {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            ExitSource::PidFd(fd) => {
                mio::unix::SourceFd(&fd.as_raw_fd()).register(registry, token, interest)
            }
            ExitSource::Sigchld(signals) => signals.register(registry, token, interest),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            ExitSource::PidFd(fd) => {
                mio::unix::SourceFd(&fd.as_raw_fd()).reregister(registry, token, interest)
            }
            ExitSource::Sigchld(signals) => signals.reregister(registry, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            ExitSource::PidFd(fd) => mio::unix::SourceFd(&fd.as_raw_fd()).deregister(registry),
            ExitSource::Sigchld(signals) => signals.deregister(registry),
        }
    }
}

/// What is known of the child's end.
#[derive(Debug)]
enum Exit {
    /// Not reaped yet (it may be running, or a zombie about to be reaped).
    Running,
    /// Reaped, with this status.
    Exited(ExitStatus),
    /// Waiting failed (e.g. `ECHILD`: someone else reaped it); kind and message.
    Failed(io::ErrorKind, String),
}

/// One watched child: shared by its `Subprocess`, its `WaitForExit` futures
/// and (strongly, until the child is reaped) the loop's fd handler.
pub(crate) struct Watch {
    /// The child. Un-reaped while `exit` is `Running`, so its pid cannot be
    /// reused and signalling it cannot hit a stranger.
    child: Child,
    /// The child's pid.
    pid: Pid,
    /// What is known of its end.
    exit: Exit,
    /// The registered exit source; `None` once the child is reaped.
    source: Option<ExitSource>,
    /// The mechanism the source uses (kept after the source is dropped).
    mechanism: Mechanism,
    /// Our fd handler, while registered.
    handler: Option<HandlerId>,
    /// The loop the source is registered with.
    io_loop: IoLoop,
    /// Wakers of pending `WaitForExit` futures.
    wakers: Vec<Waker>,
}

impl Watch {
    /// Starts watching `child` on the current loop.
    ///
    /// On error the child is killed (nobody else can reach it) and reaped as
    /// the watch is dropped.
    pub(crate) fn start(child: Child, preferred: Mechanism) -> io::Result<Rc<RefCell<Watch>>> {
        let pid = Pid::from_child(&child);
        let watch = Rc::new(RefCell::new(Watch {
            child,
            pid,
            exit: Exit::Running,
            source: None,
            mechanism: preferred,
            handler: None,
            io_loop: IoLoop::current(),
            wakers: Vec::new(),
        }));
        if let Err(e) = Watch::register(&watch, preferred) {
            let _ = watch.borrow_mut().child.kill();
            return Err(e);
        }
        // The child may have exited before the source was registered (its
        // SIGCHLD already delivered): look once now.
        let wakeups = watch.borrow_mut().check();
        debug_assert!(wakeups.is_empty(), "nobody can be waiting yet");
        Ok(watch)
    }

    /// Opens the exit source and registers it, the handler holding `watch`.
    fn register(watch: &Rc<RefCell<Watch>>, preferred: Mechanism) -> io::Result<()> {
        // Step 1. Open the source.
        let pid = watch.borrow().pid;
        let mut source = ExitSource::open(pid, preferred)?;
        // Step 2. Register it; the handler keeps the watch alive until reaped.
        let strong = watch.clone();
        let io_loop = watch.borrow().io_loop.clone();
        let id = io_loop.add_handler(&mut source, Interest::READABLE, move |ready| {
            on_ready(&strong, ready)
        })?;
        // Step 3. Keep both where `stop_watching` finds them.
        let mut w = watch.borrow_mut();
        w.mechanism = source.mechanism();
        w.source = Some(source);
        w.handler = Some(id);
        Ok(())
    }

    /// The child's pid.
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    /// The loop the child is watched on.
    pub(crate) fn io_loop(&self) -> &IoLoop {
        &self.io_loop
    }

    /// The mechanism in use.
    pub(crate) fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Whether the child is reaped (or waiting for it failed).
    pub(crate) fn is_done(&self) -> bool {
        !matches!(self.exit, Exit::Running)
    }

    /// The outcome, once there is one.
    pub(crate) fn outcome(&self) -> Option<io::Result<ExitStatus>> {
        match &self.exit {
            Exit::Running => None,
            Exit::Exited(status) => Some(Ok(*status)),
            Exit::Failed(kind, message) => Some(Err(io::Error::new(*kind, message.clone()))),
        }
    }

    /// Registers `waker` to be woken once there is an outcome.
    pub(crate) fn add_waker(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|w| w.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
    }

    /// Sends SIGKILL, unless the child is already reaped (then does nothing).
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        if self.is_done() {
            return Ok(());
        }
        self.child.kill()
    }

    /// Tries a non-blocking wait; on an outcome, stops watching and returns
    /// the wakers to call (once no borrow is held).
    pub(crate) fn check(&mut self) -> Vec<Waker> {
        if self.is_done() {
            return Vec::new();
        }
        self.exit = match self.child.try_wait() {
            Ok(None) => return Vec::new(),
            Ok(Some(status)) => Exit::Exited(status),
            Err(e) => Exit::Failed(e.kind(), e.to_string()),
        };
        self.stop_watching();
        mem::take(&mut self.wakers)
    }

    /// Unregisters and drops the exit source.
    fn stop_watching(&mut self) {
        if let (Some(id), Some(source)) = (self.handler.take(), self.source.as_mut()) {
            // Dropping the handler drops its strong reference to us; whoever
            // called us holds another, so we live on.
            let _ = self.io_loop.remove_handler(id, source);
        }
        self.source = None;
    }
}

/// The fd handler: the source fired, so the child may have exited.
fn on_ready(watch: &Rc<RefCell<Watch>>, _ready: Ready) {
    let wakeups = {
        let mut w = watch.borrow_mut();
        if let Some(source) = w.source.as_mut() {
            source.drain();
        }
        w.check()
    };
    for waker in wakeups {
        waker.wake();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.is_done() {
            return;
        }
        // The loop let go of its handler (it was closed) while the child was
        // still unreaped, and every handle is gone: nothing on a loop will
        // reap it now. Reap it here if it already exited, else let one short
        // thread wait for it rather than leave a zombie.
        self.stop_watching();
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = self.pid;
        let spawned = thread::Builder::new()
            .name("whirl-reaper".into())
            .spawn(move || rustix::process::waitpid(Some(pid), WaitOptions::empty()));
        if let Err(e) = spawned {
            log::warn!(
                "cannot start a thread to reap child {}: {e}",
                pid.as_raw_pid()
            );
        }
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("pid", &self.pid.as_raw_pid())
            .field("mechanism", &self.mechanism)
            .field("exit", &self.exit)
            .finish()
    }
}
