//! [`PeriodicCallback`]: a callback run every `period` (Tornado's
//! `PeriodicCallback`).

use std::cell::RefCell;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::timer::TimeoutHandle;
use crate::IoLoop;

/// Runs a callback every `period` on the current loop.
///
/// When the loop falls behind (a callback or something else blocked it for
/// longer than a period) the missed runs are skipped, not run in a burst: the
/// next run is the next multiple of `period` after now, as in Tornado.
///
/// A callback that panics is logged and the schedule goes on. The
/// `PeriodicCallback` is a handle: clones control the same schedule, and a
/// started schedule keeps running when every handle is dropped (the loop holds
/// it) until [`stop`](PeriodicCallback::stop) or [`IoLoop::close`].
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use whirl_ioloop::{IoLoop, PeriodicCallback};
///
/// let io_loop = IoLoop::new();
/// let ticks = Rc::new(Cell::new(0));
/// let counter = ticks.clone();
/// let pc = PeriodicCallback::new(move || counter.set(counter.get() + 1), Duration::from_millis(5));
/// pc.start();
/// io_loop.run_sync(whirl_ioloop::sleep(Duration::from_millis(50)));
/// pc.stop();
/// assert!(ticks.get() >= 3);
/// ```
#[derive(Clone)]
pub struct PeriodicCallback {
    /// The schedule, shared with the armed timer's callback.
    state: Rc<RefCell<State>>,
}

/// The schedule of a [`PeriodicCallback`].
struct State {
    /// The user's callback; `None` while it runs (it cannot re-enter itself).
    callback: Option<Box<dyn FnMut()>>,
    /// Time between runs.
    period: Duration,
    /// Fraction of `period` by which each run is randomly moved (0 = none).
    jitter: f64,
    /// The loop the schedule runs on, and the armed timer, while running.
    running: Option<(IoLoop, TimeoutHandle)>,
    /// When the next run is due.
    next: Instant,
    /// xorshift state for the jitter; never zero (see [`jitter_seed`]).
    rng: u64,
    /// Where the callback was created (named by the blocking detector).
    site: &'static Location<'static>,
}

impl PeriodicCallback {
    /// A periodic callback, not yet started.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    #[track_caller]
    pub fn new<F: FnMut() + 'static>(callback: F, period: Duration) -> PeriodicCallback {
        assert!(
            !period.is_zero(),
            "PeriodicCallback needs a period above zero"
        );
        let site = Location::caller();
        let state = Rc::new(RefCell::new(State {
            callback: Some(Box::new(callback)),
            period,
            jitter: 0.0,
            running: None,
            next: Instant::now(),
            rng: 1,
            site,
        }));
        // The allocation's address tells instances in one process apart.
        let address = Rc::as_ptr(&state) as usize as u64;
        state.borrow_mut().rng = jitter_seed(address);
        PeriodicCallback { state }
    }

    /// Moves each run by a random amount of up to `jitter / 2` periods either
    /// way (`0.1` spreads runs over ±5 % of the period), so many servers
    /// started together do not run in lock step. Default is `0.0`. Tornado:
    /// the `jitter` argument.
    pub fn with_jitter(self, jitter: f64) -> PeriodicCallback {
        self.state.borrow_mut().jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// Starts the schedule on the current loop; the first run is one period
    /// from now. Does nothing if already running.
    pub fn start(&self) {
        if self.is_running() {
            return;
        }
        let io_loop = IoLoop::current();
        let now = io_loop.time();
        let mut state = self.state.borrow_mut();
        state.next = now;
        state.advance(now);
        let handle = self.arm(&io_loop, state.next, state.site);
        state.running = Some((io_loop, handle));
    }

    /// Stops the schedule; the callback runs no more (unless started again).
    pub fn stop(&self) {
        let running = self.state.borrow_mut().running.take();
        if let Some((io_loop, handle)) = running {
            io_loop.remove_timeout(handle);
        }
    }

    /// Whether the schedule is running.
    pub fn is_running(&self) -> bool {
        self.state.borrow().running.is_some()
    }

    /// The period between runs.
    pub fn period(&self) -> Duration {
        self.state.borrow().period
    }

    /// Arms the timer for the run at `at`.
    fn arm(
        &self,
        io_loop: &IoLoop,
        at: Instant,
        site: &'static Location<'static>,
    ) -> TimeoutHandle {
        // The armed timer holds the schedule strongly, so a started
        // callback keeps running after its handles are dropped (as in
        // Tornado); `stop` or closing the loop ends it.
        let state = self.state.clone();
        io_loop.add_timeout_at_site(at, site, move || PeriodicCallback { state }.run())
    }

    /// One run: schedule the next one first (so a panicking callback does
    /// not end the schedule), then call the callback.
    fn run(&self) {
        let (io_loop, callback) = {
            let mut state = self.state.borrow_mut();
            let Some((io_loop, _)) = state.running.take() else {
                return;
            };
            let now = io_loop.time();
            state.advance(now);
            let handle = self.arm(&io_loop, state.next, state.site);
            state.running = Some((io_loop.clone(), handle));
            (io_loop, state.callback.take())
        };
        let Some(mut callback) = callback else {
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(&mut callback));
        self.state.borrow_mut().callback = Some(callback);
        drop(io_loop);
        if let Err(payload) = result {
            resume_unwind(payload); // the loop logs it, naming our site
        }
    }
}

/// A seed for the jitter that differs between processes (wall-clock nanos,
/// process id) and between the instances of one process (`instance`, and a
/// counter: an address may be reused once its callback is gone), so that
/// servers or schedules started together do not draw the same jitter and
/// tick in step. Never zero (xorshift's fixed point).
fn jitter_seed(instance: u64) -> u64 {
    static CREATED: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    let count = CREATED.fetch_add(1, Ordering::Relaxed);
    let seed = mix(nanos) ^ mix((u64::from(std::process::id()) << 32) | count) ^ mix(instance);
    seed | 1
}

/// splitmix64's finalizer: spreads every input bit over the whole word, so
/// inputs that differ little give unrelated seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl State {
    /// Moves `next` to the first multiple of `period` after `now` (skipping
    /// missed runs), then applies the jitter.
    fn advance(&mut self, now: Instant) {
        let period = self.period.as_secs_f64();
        let behind = now.saturating_duration_since(self.next).as_secs_f64();
        let periods = (behind / period).floor() + 1.0;
        let mut step = period * periods;
        if self.jitter > 0.0 {
            step += period * self.jitter * (self.random_unit() - 0.5);
        }
        self.next += Duration::from_secs_f64(step.max(0.0));
    }

    /// A pseudo-random number in `[0, 1)` (xorshift64; jitter needs no more).
    fn random_unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl fmt::Debug for PeriodicCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("PeriodicCallback")
            .field("period", &state.period)
            .field("jitter", &state.jitter)
            .field("running", &state.running.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(period_ms: u64, next: Instant) -> State {
        State {
            callback: None,
            period: Duration::from_millis(period_ms),
            jitter: 0.0,
            running: None,
            next,
            rng: 0x9E37_79B9_7F4A_7C15,
            site: Location::caller(),
        }
    }

    #[test]
    fn a_started_schedule_outlives_its_handles() {
        use std::cell::Cell;
        let io_loop = IoLoop::new();
        let runs = Rc::new(Cell::new(0));
        let counter = runs.clone();
        PeriodicCallback::new(
            move || counter.set(counter.get() + 1),
            Duration::from_millis(2),
        )
        .start();
        io_loop.run_sync(crate::sleep(Duration::from_millis(30)));
        assert!(runs.get() >= 2, "ran {} times", runs.get());
        io_loop.close();
    }

    #[test]
    fn on_time_advances_one_period() {
        let t0 = Instant::now();
        let mut s = state(100, t0);
        s.advance(t0);
        assert_eq!(s.next, t0 + Duration::from_millis(100));
    }

    #[test]
    fn falling_behind_skips_missed_runs() {
        let t0 = Instant::now();
        let mut s = state(100, t0);
        // The loop was blocked for 350 ms: runs at 100, 200, 300 are skipped.
        s.advance(t0 + Duration::from_millis(350));
        assert_eq!(s.next, t0 + Duration::from_millis(400));
    }

    #[test]
    fn jitter_stays_within_half_period() {
        let t0 = Instant::now();
        let mut s = state(100, t0);
        s.jitter = 0.5;
        for _ in 0..1000 {
            let before = s.next;
            s.advance(before);
            let step = s.next - before;
            assert!(
                step >= Duration::from_millis(74) && step <= Duration::from_millis(126),
                "{step:?}"
            );
        }
    }

    #[test]
    fn jitter_seeds_differ_between_callbacks_created_together() {
        // The old seed (`Instant::now().elapsed()` and the source line) was
        // nearly the same for callbacks created together, so their jittered
        // runs stayed in step. Many created at once, at the same site, must
        // all draw differently.
        let callbacks: Vec<PeriodicCallback> = (0..64)
            .map(|_| PeriodicCallback::new(|| {}, Duration::from_secs(1)).with_jitter(0.5))
            .collect();
        let mut seeds: Vec<u64> = callbacks.iter().map(|pc| pc.state.borrow().rng).collect();
        assert!(seeds.iter().all(|&seed| seed != 0));
        seeds.sort_unstable();
        seeds.dedup();
        assert_eq!(seeds.len(), callbacks.len(), "two callbacks share a seed");
        // So do their first jittered steps.
        let t0 = Instant::now();
        let mut steps: Vec<Instant> = callbacks
            .iter()
            .map(|pc| {
                let mut state = pc.state.borrow_mut();
                state.next = t0;
                state.advance(t0);
                state.next
            })
            .collect();
        steps.sort_unstable();
        steps.dedup();
        assert!(
            steps.len() > callbacks.len() / 2,
            "{} distinct",
            steps.len()
        );
    }
}
