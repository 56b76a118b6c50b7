//! Behaviour of `whirl_ioloop::locks` (Tornado's `tornado.locks`): tasks on one
//! loop waiting on events, conditions, semaphores and locks.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use whirl_ioloop::locks::{BoundedSemaphore, Condition, Event, Lock, Semaphore};
use whirl_ioloop::{sleep, spawn, IoLoop, JoinHandle, TimeoutError};

/// A timeout meant to expire.
const SHORT: Duration = Duration::from_millis(10);
/// A timeout meant never to expire in a passing test.
const LONG: Duration = Duration::from_secs(10);

/// Returns `Pending` once, waking itself, so the loop runs everything else
/// that is ready first.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Lets every task that can make progress do so (a few loop iterations),
/// without depending on timing.
async fn settle() {
    for _ in 0..10 {
        YieldNow(false).await;
    }
}

/// A shared log that tasks append to.
type Log<T> = Rc<RefCell<Vec<T>>>;

/// Runs `future` on a new loop; a test that would hang fails instead.
fn run<F: Future>(future: F) -> F::Output {
    IoLoop::new()
        .run_sync_timeout(future, Duration::from_secs(30))
        .expect("the test finished in time")
}

// ----- Event -------------------------------------------------------------------

#[test]
fn event_set_wakes_every_waiter() {
    run(async {
        let event = Event::new();
        assert!(!event.is_set());
        let waiters: Vec<JoinHandle<()>> = (0..3).map(|_| spawn(event.wait())).collect();
        settle().await;
        assert!(
            waiters.iter().all(|w| !w.is_finished()),
            "waited before set"
        );
        event.set();
        assert!(event.is_set());
        for waiter in waiters {
            with_long_timeout(waiter).await.unwrap();
        }
    });
}

#[test]
fn event_wait_completes_at_once_while_set_and_blocks_after_clear() {
    run(async {
        let event = Event::new();
        event.set();
        event.set(); // setting twice is harmless
        event.wait().await;
        assert_eq!(event.wait_timeout(SHORT).await, Ok(()));
        event.clear();
        assert!(!event.is_set());
        assert_eq!(event.wait_timeout(SHORT).await, Err(TimeoutError));
    });
}

#[test]
fn event_wait_timeout_succeeds_when_set_in_time() {
    run(async {
        let event = Event::new();
        let waiter = spawn({
            let event = event.clone();
            async move { event.wait_timeout(LONG).await }
        });
        settle().await;
        event.set();
        assert_eq!(waiter.await.unwrap(), Ok(()));
    });
}

#[test]
fn event_waiters_woken_by_set_complete_even_if_cleared_at_once() {
    run(async {
        let event = Event::new();
        let waiter = spawn(event.wait());
        settle().await;
        event.set();
        event.clear();
        with_long_timeout(waiter).await.unwrap();
    });
}

#[test]
fn event_dropped_waiters_leave_the_line() {
    run(async {
        let event = Event::new();
        for _ in 0..200 {
            // Each gives up at once.
            drop(event.wait());
        }
        assert!(format!("{event:?}").contains("waiters: 0"), "{event:?}");
    });
}

// ----- Condition ---------------------------------------------------------------

/// Spawns `n` tasks that wait on `condition` and then log their index.
fn spawn_condition_waiters(
    condition: &Condition,
    n: usize,
    log: &Log<usize>,
) -> Vec<JoinHandle<bool>> {
    (0..n)
        .map(|i| {
            let (condition, log) = (condition.clone(), log.clone());
            spawn(async move {
                let notified = condition.wait().await;
                log.borrow_mut().push(i);
                notified
            })
        })
        .collect()
}

#[test]
fn condition_notify_wakes_waiters_oldest_first() {
    run(async {
        let condition = Condition::new();
        let log = Log::default();
        let waiters = spawn_condition_waiters(&condition, 3, &log);
        settle().await;
        assert!(log.borrow().is_empty());
        condition.notify(1);
        settle().await;
        assert_eq!(*log.borrow(), [0]);
        condition.notify(2);
        settle().await;
        assert_eq!(*log.borrow(), [0, 1, 2]);
        for waiter in waiters {
            assert!(waiter.await.unwrap());
        }
    });
}

#[test]
fn condition_notify_all_wakes_everyone() {
    run(async {
        let condition = Condition::new();
        let log = Log::default();
        let waiters = spawn_condition_waiters(&condition, 4, &log);
        settle().await;
        condition.notify_all();
        settle().await;
        assert_eq!(*log.borrow(), [0, 1, 2, 3]);
        drop(waiters);
    });
}

#[test]
fn condition_notification_without_waiters_is_lost() {
    run(async {
        let condition = Condition::new();
        condition.notify(1);
        condition.notify_all();
        assert!(!condition.wait_timeout(SHORT).await);
    });
}

#[test]
fn condition_wait_takes_its_place_when_called() {
    run(async {
        let condition = Condition::new();
        let wait = condition.wait();
        condition.notify(1);
        assert!(wait.await);
    });
}

#[test]
fn condition_wait_timeout_is_false_on_timeout_and_true_when_notified() {
    run(async {
        let condition = Condition::new();
        assert!(!condition.wait_timeout(SHORT).await);
        let waiter = spawn({
            let condition = condition.clone();
            async move { condition.wait_timeout(LONG).await }
        });
        settle().await;
        condition.notify(1);
        assert!(waiter.await.unwrap());
    });
}

#[test]
fn condition_timed_out_waiter_does_not_consume_a_notification() {
    run(async {
        let condition = Condition::new();
        let impatient = spawn({
            let condition = condition.clone();
            async move { condition.wait_timeout(SHORT).await }
        });
        let log = Log::default();
        let patient = spawn_condition_waiters(&condition, 1, &log);
        assert!(!impatient.await.unwrap(), "timed out");
        condition.notify(1);
        settle().await;
        assert_eq!(*log.borrow(), [0], "the live waiter got the notification");
        drop(patient);
    });
}

#[test]
fn condition_dropped_waiter_does_not_consume_a_notification() {
    run(async {
        let condition = Condition::new();
        let dropped = condition.wait();
        let log = Log::default();
        let _live = spawn_condition_waiters(&condition, 1, &log);
        settle().await;
        drop(dropped);
        condition.notify(1);
        settle().await;
        assert_eq!(*log.borrow(), [0]);
    });
}

#[test]
fn condition_notification_of_a_waiter_dropped_before_seeing_it_passes_on() {
    run(async {
        let condition = Condition::new();
        let log = Log::default();
        let first = spawn_condition_waiters(&condition, 1, &log);
        settle().await;
        let second = condition.wait();
        // The first waiter is notified, then cancelled before it runs.
        condition.notify(1);
        first[0].abort();
        settle().await;
        assert!(log.borrow().is_empty());
        assert!(with_timeout_ok(second).await, "the notification passed on");
    });
}

#[test]
fn condition_dropped_waiters_leave_the_line() {
    run(async {
        let condition = Condition::new();
        for _ in 0..100 {
            drop(condition.wait());
        }
        assert!(
            format!("{condition:?}").contains("waiters: 0"),
            "{condition:?}"
        );
    });
}

// ----- Semaphore ---------------------------------------------------------------

#[test]
fn semaphore_counts_permits() {
    run(async {
        let semaphore = Semaphore::new(2);
        assert_eq!(semaphore.value(), 2);
        let first = semaphore.acquire().await;
        let second = semaphore.try_acquire().expect("a second permit");
        assert_eq!(semaphore.value(), 0);
        assert!(semaphore.try_acquire().is_none());
        drop(first);
        assert_eq!(semaphore.value(), 1);
        drop(second);
        assert_eq!(semaphore.value(), 2);
        assert_eq!(Semaphore::default().value(), 1);
    });
}

#[test]
fn semaphore_serves_waiters_first_come_first_served() {
    run(async {
        let semaphore = Semaphore::new(1);
        let held = semaphore.acquire().await;
        let log = Log::default();
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let (semaphore, log) = (semaphore.clone(), log.clone());
                spawn(async move {
                    let _permit = semaphore.acquire().await;
                    log.borrow_mut().push(i);
                    sleep(Duration::from_millis(1)).await;
                })
            })
            .collect();
        settle().await;
        assert!(log.borrow().is_empty());
        drop(held);
        for task in tasks {
            with_long_timeout(task).await.unwrap();
        }
        assert_eq!(*log.borrow(), [0, 1, 2, 3, 4]);
        assert_eq!(semaphore.value(), 1);
    });
}

#[test]
fn semaphore_released_permit_goes_to_the_waiter_not_to_try_acquire() {
    run(async {
        let semaphore = Semaphore::new(1);
        let held = semaphore.acquire().await;
        let waiter = spawn({
            let semaphore = semaphore.clone();
            async move {
                let _permit = semaphore.acquire().await;
            }
        });
        settle().await;
        drop(held);
        assert_eq!(semaphore.value(), 0, "handed straight to the waiter");
        assert!(semaphore.try_acquire().is_none());
        with_long_timeout(waiter).await.unwrap();
        assert_eq!(semaphore.value(), 1);
    });
}

#[test]
fn semaphore_acquire_timeout() {
    run(async {
        let semaphore = Semaphore::new(1);
        let held = semaphore
            .acquire_timeout(LONG)
            .await
            .expect("a free permit");
        assert_eq!(
            semaphore.acquire_timeout(SHORT).await.err(),
            Some(TimeoutError)
        );
        assert_eq!(semaphore.value(), 0);
        let waiter = spawn({
            let semaphore = semaphore.clone();
            async move { semaphore.acquire_timeout(LONG).await.is_ok() }
        });
        settle().await;
        drop(held);
        assert!(waiter.await.unwrap());
        assert_eq!(semaphore.value(), 1);
    });
}

#[test]
fn semaphore_timed_out_waiter_does_not_take_a_permit() {
    run(async {
        let semaphore = Semaphore::new(1);
        let held = semaphore.acquire().await;
        let impatient = spawn({
            let semaphore = semaphore.clone();
            async move { semaphore.acquire_timeout(SHORT).await.is_ok() }
        });
        let patient = spawn({
            let semaphore = semaphore.clone();
            async move {
                let _permit = semaphore.acquire().await;
                "got it"
            }
        });
        assert!(!impatient.await.unwrap(), "timed out");
        drop(held);
        assert_eq!(with_long_timeout(patient).await.unwrap(), "got it");
        assert_eq!(semaphore.value(), 1);
    });
}

#[test]
fn semaphore_permit_handed_to_a_dropped_waiter_comes_back() {
    run(async {
        let semaphore = Semaphore::new(1);
        let held = semaphore.acquire().await;
        let waiter = spawn({
            let semaphore = semaphore.clone();
            async move {
                let _permit = semaphore.acquire().await;
            }
        });
        settle().await;
        drop(held); // the permit goes to the waiter...
        waiter.abort(); // ...which is cancelled before it runs
        assert_eq!(semaphore.value(), 1, "the permit came back");
        assert!(semaphore.try_acquire().is_some());
    });
}

#[test]
fn semaphore_permit_handed_to_a_dropped_waiter_goes_to_the_next() {
    run(async {
        let semaphore = Semaphore::new(1);
        let held = semaphore.acquire().await;
        let dropped = semaphore.acquire();
        let next = semaphore.acquire();
        drop(held); // handed to `dropped`
        assert_eq!(semaphore.value(), 0);
        drop(dropped); // passes it to `next`
        assert_eq!(semaphore.value(), 0);
        let permit = with_timeout_ok(next).await;
        drop(permit);
        assert_eq!(semaphore.value(), 1);
    });
}

#[test]
fn semaphore_dropping_an_unpolled_acquire_that_got_a_permit_returns_it() {
    run(async {
        let semaphore = Semaphore::new(1);
        let acquire = semaphore.acquire();
        assert_eq!(semaphore.value(), 0, "taken when called");
        drop(acquire);
        assert_eq!(semaphore.value(), 1);
    });
}

#[test]
fn semaphore_forget_and_release() {
    run(async {
        let semaphore = Semaphore::new(1);
        semaphore.acquire().await.forget();
        assert_eq!(semaphore.value(), 0);
        let waiter = spawn({
            let semaphore = semaphore.clone();
            async move { semaphore.acquire().await.forget() }
        });
        settle().await;
        semaphore.release();
        with_long_timeout(waiter).await.unwrap();
        assert_eq!(semaphore.value(), 0);
        semaphore.release();
        semaphore.release(); // an unbounded semaphore may grow
        assert_eq!(semaphore.value(), 2);
    });
}

#[test]
fn bounded_semaphore_releases_up_to_its_initial_value() {
    run(async {
        let semaphore = BoundedSemaphore::new(2);
        semaphore.acquire().await.forget();
        semaphore.release();
        assert_eq!(semaphore.value(), 2);
        {
            let _a = semaphore.acquire().await;
            let _b = semaphore.acquire().await;
            assert_eq!(semaphore.value(), 0);
        }
        assert_eq!(semaphore.value(), 2);
        assert_eq!(BoundedSemaphore::default().value(), 1);
    });
}

#[test]
#[should_panic(expected = "Semaphore released too many times")]
fn bounded_semaphore_released_too_many_times_panics() {
    let semaphore = BoundedSemaphore::new(1);
    semaphore.release();
}

#[test]
#[should_panic(expected = "Semaphore released too many times")]
fn bounded_semaphore_guard_after_extra_release_panics() {
    run(async {
        let semaphore = BoundedSemaphore::new(1);
        let guard = semaphore.acquire().await;
        semaphore.release();
        drop(guard);
    });
}

// ----- Lock --------------------------------------------------------------------

#[test]
fn lock_excludes_and_serves_in_order() {
    let log = run(async {
        let lock = Lock::new();
        let log: Log<String> = Log::default();
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let (lock, log) = (lock.clone(), log.clone());
                spawn(async move {
                    let _guard = lock.acquire().await;
                    log.borrow_mut().push(format!("{i} in"));
                    sleep(Duration::from_millis(2)).await;
                    log.borrow_mut().push(format!("{i} out"));
                })
            })
            .collect();
        for task in tasks {
            with_long_timeout(task).await.unwrap();
        }
        assert!(!lock.is_locked());
        log.take()
    });
    assert_eq!(log, ["0 in", "0 out", "1 in", "1 out", "2 in", "2 out"]);
}

#[test]
fn lock_try_acquire_and_timeout_while_held() {
    run(async {
        let lock = Lock::new();
        assert!(!lock.is_locked());
        let guard = lock.acquire().await;
        assert!(lock.is_locked());
        assert!(lock.try_acquire().is_none());
        assert!(lock.acquire_timeout(SHORT).await.is_err());
        drop(guard);
        assert!(!lock.is_locked());
        let guard = lock.acquire_timeout(LONG).await.expect("a free lock");
        assert!(format!("{lock:?}").contains("locked: true"));
        drop(guard);
        assert!(lock.try_acquire().is_some());
    });
}

#[test]
fn lock_timed_out_waiter_does_not_keep_the_lock() {
    run(async {
        let lock = Lock::new();
        let held = lock.acquire().await;
        let impatient = spawn({
            let lock = lock.clone();
            async move { lock.acquire_timeout(SHORT).await.is_ok() }
        });
        let patient = spawn({
            let lock = lock.clone();
            async move {
                let _guard = lock.acquire().await;
            }
        });
        assert!(!impatient.await.unwrap());
        drop(held);
        with_long_timeout(patient).await.unwrap();
        assert!(!lock.is_locked());
    });
}

#[test]
fn lock_handed_to_a_dropped_waiter_is_unlocked() {
    run(async {
        let lock = Lock::new();
        let held = lock.acquire().await;
        let dropped = lock.acquire();
        drop(held);
        assert!(lock.is_locked(), "handed to the waiter");
        drop(dropped);
        assert!(!lock.is_locked());
    });
}

// ----- helpers -------------------------------------------------------------------

/// Awaits a task, failing the test instead of hanging if it never finishes.
async fn with_long_timeout<T>(task: JoinHandle<T>) -> Result<T, whirl_ioloop::JoinError> {
    whirl_ioloop::with_timeout(LONG, task)
        .await
        .expect("the task finished")
}

/// Awaits `future`, failing the test instead of hanging if it never completes.
async fn with_timeout_ok<F: Future>(future: F) -> F::Output {
    whirl_ioloop::with_timeout(LONG, future)
        .await
        .expect("completed in time")
}
