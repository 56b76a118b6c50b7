//! The connection pool: idle keep-alive connections by destination, each
//! closed after `idle_timeout` — what Tornado's simple client never had
//! (its issue #324).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use whirl_httpserver::Http1ClientConnection;
use whirl_ioloop::IoLoop;

use crate::connect::PoolKey;

/// An idle connection.
struct Idle {
    /// The connection, between requests.
    connection: Http1ClientConnection,
    /// When it became idle.
    since: Instant,
}

/// Idle connections by destination.
pub(crate) struct Pool {
    /// Idle connections, most recently used last.
    idle: RefCell<HashMap<PoolKey, Vec<Idle>>>,
    /// How long a connection may stay idle.
    idle_timeout: Duration,
    /// Most idle connections kept per destination.
    max_idle_per_key: usize,
    /// Whether a sweep is scheduled.
    sweeping: Cell<bool>,
    /// The loop the idle connections (and the sweep timer) belong to; a
    /// client outliving its loop (`AsyncHttpClient::current()` is per
    /// thread) must not hand them to the next loop.
    io_loop: RefCell<Option<IoLoop>>,
}

impl Pool {
    /// An empty pool.
    pub(crate) fn new(idle_timeout: Duration, max_idle_per_key: usize) -> Rc<Pool> {
        Rc::new(Pool {
            idle: RefCell::default(),
            idle_timeout,
            max_idle_per_key,
            sweeping: Cell::new(false),
            io_loop: RefCell::new(None),
        })
    }

    /// Forgets what was pooled on a loop that is no longer the running one
    /// (closed, or done running while this one runs): its connections can
    /// never become readable here, and its sweep timer never fires.
    fn follow_current_loop(&self) {
        let gone = self
            .io_loop
            .borrow()
            .as_ref()
            .is_some_and(|l| l.is_closed() || !l.is_running());
        if gone {
            self.clear();
            self.sweeping.set(false);
            *self.io_loop.borrow_mut() = None;
        }
        if self.io_loop.borrow().is_none() {
            *self.io_loop.borrow_mut() = IoLoop::try_current();
        }
    }

    /// An idle connection to `key` that is still open, if any (the most
    /// recently used: the likeliest to still be open at the server).
    pub(crate) fn checkout(&self, key: &PoolKey) -> Option<Http1ClientConnection> {
        self.follow_current_loop();
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(key)?;
        while let Some(entry) = list.pop() {
            let stream = entry.connection.stream();
            if entry.since.elapsed() < self.idle_timeout
                && !stream.closed()
                && entry.connection.is_ready()
            {
                return Some(entry.connection);
            }
            stream.close();
        }
        idle.remove(key);
        None
    }

    /// Keeps `connection` for the next request to `key`.
    pub(crate) fn checkin(self: &Rc<Self>, key: PoolKey, connection: Http1ClientConnection) {
        if self.idle_timeout.is_zero() || self.max_idle_per_key == 0 {
            connection.stream().close();
            return;
        }
        self.follow_current_loop();
        {
            let mut idle = self.idle.borrow_mut();
            let list = idle.entry(key).or_default();
            if list.len() >= self.max_idle_per_key {
                let oldest = list.remove(0);
                oldest.connection.stream().close();
            }
            list.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
        self.schedule_sweep();
    }

    /// Number of idle connections.
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }

    /// Closes every idle connection.
    pub(crate) fn clear(&self) {
        let idle = std::mem::take(&mut *self.idle.borrow_mut());
        for entry in idle.into_values().flatten() {
            entry.connection.stream().close();
        }
    }

    /// Closes connections idle too long (and ones the server closed);
    /// runs every `idle_timeout` while any connection is idle.
    fn sweep(&self) {
        let mut idle = self.idle.borrow_mut();
        for list in idle.values_mut() {
            list.retain(|entry| {
                let keep = entry.since.elapsed() < self.idle_timeout
                    && !entry.connection.stream().closed();
                if !keep {
                    entry.connection.stream().close();
                }
                keep
            });
        }
        idle.retain(|_, list| !list.is_empty());
    }

    /// Schedules a sweep on the current loop, unless one is scheduled.
    fn schedule_sweep(self: &Rc<Self>) {
        if self.sweeping.replace(true) {
            return;
        }
        let Some(io_loop) = IoLoop::try_current() else {
            self.sweeping.set(false);
            return;
        };
        let weak: Weak<Pool> = Rc::downgrade(self);
        io_loop.call_later(self.idle_timeout, move || {
            if let Some(pool) = weak.upgrade() {
                pool.sweeping.set(false);
                pool.sweep();
                if pool.idle_count() > 0 {
                    pool.schedule_sweep();
                }
            }
        });
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.idle_count())
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.clear();
    }
}
