//! Behaviour of `whirl_ioloop::queues` (Tornado's `tornado.queues`): producers
//! and consumers on one loop.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use whirl_ioloop::queues::{
    LifoQueue, PriorityQueue, PutTimeoutError, Queue, QueueEmpty, QueueFull,
};
use whirl_ioloop::{spawn, IoLoop, JoinError, JoinHandle, TimeoutError};

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

/// Runs `future` on a new loop; a test that would hang fails instead.
fn run<F: Future>(future: F) -> F::Output {
    IoLoop::new()
        .run_sync_timeout(future, Duration::from_secs(30))
        .expect("the test finished in time")
}

/// Awaits a task, failing the test instead of hanging if it never finishes.
async fn finish<T>(task: JoinHandle<T>) -> Result<T, JoinError> {
    whirl_ioloop::with_timeout(LONG, task)
        .await
        .expect("the task finished")
}

/// Spawns a task that gets one item from `queue`.
fn spawn_getter<T: 'static>(queue: &Queue<T>) -> JoinHandle<T> {
    let queue = queue.clone();
    spawn(async move { queue.get().await })
}

/// Every item left in `queue`, in order.
fn drain<T>(queue: &Queue<T>) -> Vec<T> {
    std::iter::from_fn(|| queue.get_nowait().ok()).collect()
}

#[test]
fn nowait_methods_and_sizes() {
    let queue = Queue::with_maxsize(2);
    assert_eq!(queue.maxsize(), 2);
    assert!(queue.empty());
    assert!(!queue.full());
    assert_eq!(queue.get_nowait(), Err(QueueEmpty));
    queue.put_nowait('a').unwrap();
    queue.put_nowait('b').unwrap();
    assert_eq!(queue.qsize(), 2);
    assert!(queue.full());
    assert_eq!(
        queue.put_nowait('c'),
        Err(QueueFull('c')),
        "the item comes back"
    );
    assert_eq!(queue.put_nowait('d').unwrap_err().into_inner(), 'd');
    assert_eq!(drain(&queue), ['a', 'b']);
    assert!(queue.empty());
}

#[test]
fn an_unbounded_queue_is_never_full() {
    for queue in [Queue::new(), Queue::with_maxsize(0), Queue::default()] {
        assert_eq!(queue.maxsize(), 0);
        for i in 0..1000 {
            queue.put_nowait(i).unwrap();
        }
        assert!(!queue.full());
        assert_eq!(queue.qsize(), 1000);
    }
}

#[test]
fn clones_share_one_queue() {
    let queue = Queue::new();
    let other = queue.clone();
    queue.put_nowait(1).unwrap();
    assert_eq!(other.get_nowait(), Ok(1));
    assert!(queue.empty());
}

#[test]
fn get_waits_for_a_put() {
    run(async {
        let queue = Queue::new();
        let getter = spawn_getter(&queue);
        settle().await;
        assert!(!getter.is_finished());
        queue.put_nowait(5).unwrap();
        assert_eq!(queue.qsize(), 0, "handed straight to the getter");
        assert_eq!(finish(getter).await, Ok(5));
    });
}

#[test]
fn bounded_put_waits_until_a_get_makes_room() {
    run(async {
        let queue = Queue::with_maxsize(1);
        queue.put(1).await;
        let putter = spawn({
            let queue = queue.clone();
            async move { queue.put(2).await }
        });
        settle().await;
        assert!(!putter.is_finished(), "the queue is full");
        assert_eq!(queue.qsize(), 1);
        assert_eq!(queue.get().await, 1);
        assert_eq!(queue.qsize(), 1, "the waiting item went in");
        finish(putter).await.unwrap();
        assert_eq!(queue.get_nowait(), Ok(2));
    });
}

#[test]
fn put_with_room_completes_when_called() {
    run(async {
        let queue = Queue::with_maxsize(1);
        let put = queue.put("x");
        assert_eq!(queue.qsize(), 1);
        put.await;
        assert_eq!(queue.get().await, "x");
    });
}

#[test]
fn getters_are_served_first_come_first_served() {
    run(async {
        let queue = Queue::new();
        let getters: Vec<_> = (0..3).map(|_| spawn_getter(&queue)).collect();
        settle().await;
        for item in [10, 11, 12] {
            queue.put_nowait(item).unwrap();
        }
        let mut got = Vec::new();
        for getter in getters {
            got.push(finish(getter).await.unwrap());
        }
        assert_eq!(got, [10, 11, 12]);
    });
}

#[test]
fn putters_are_served_first_come_first_served() {
    run(async {
        let queue = Queue::with_maxsize(1);
        queue.put_nowait(0).unwrap();
        let putters: Vec<_> = (1..=3)
            .map(|i| {
                let queue = queue.clone();
                spawn(async move { queue.put(i).await })
            })
            .collect();
        settle().await;
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(queue.get().await);
        }
        assert_eq!(got, [0, 1, 2, 3]);
        for putter in putters {
            finish(putter).await.unwrap();
        }
    });
}

#[test]
fn get_timeout() {
    run(async {
        let queue = Queue::new();
        assert_eq!(queue.get_timeout(SHORT).await, Err(TimeoutError));
        let getter = spawn({
            let queue = queue.clone();
            async move { queue.get_timeout(LONG).await }
        });
        settle().await;
        queue.put_nowait(7).unwrap();
        assert_eq!(finish(getter).await.unwrap(), Ok(7));
    });
}

#[test]
fn put_timeout_returns_the_item() {
    run(async {
        let queue = Queue::with_maxsize(1);
        assert_eq!(queue.put_timeout('a', SHORT).await, Ok(()));
        let err = queue.put_timeout('b', SHORT).await.unwrap_err();
        assert_eq!(err, PutTimeoutError('b'));
        assert_eq!(err.into_inner(), 'b');
        assert_eq!(drain(&queue), ['a'], "the timed-out item was not put");
        queue.put_nowait('c').unwrap();
        let putter = spawn({
            let queue = queue.clone();
            async move { queue.put_timeout('d', LONG).await }
        });
        settle().await;
        assert_eq!(queue.get_nowait(), Ok('c'));
        assert_eq!(finish(putter).await.unwrap(), Ok(()));
        assert_eq!(drain(&queue), ['d']);
    });
}

#[test]
fn timed_out_getter_does_not_take_an_item() {
    run(async {
        let queue = Queue::new();
        let impatient = spawn({
            let queue = queue.clone();
            async move { queue.get_timeout(SHORT).await }
        });
        let patient = spawn_getter(&queue);
        assert_eq!(finish(impatient).await.unwrap(), Err(TimeoutError));
        queue.put_nowait(1).unwrap();
        assert_eq!(finish(patient).await, Ok(1));
        assert!(queue.empty());
    });
}

#[test]
fn item_handed_to_a_dropped_getter_goes_back_to_the_front() {
    run(async {
        let queue = Queue::new();
        let getter = spawn_getter(&queue);
        settle().await;
        queue.put_nowait(1).unwrap(); // handed to the getter...
        getter.abort(); // ...which is cancelled before it runs
        queue.put_nowait(2).unwrap();
        assert_eq!(drain(&queue), [1, 2], "not lost, and still first");
    });
}

#[test]
fn item_handed_to_a_dropped_getter_goes_to_the_next_getter() {
    run(async {
        let queue = Queue::new();
        let dropped = queue.get();
        let next = spawn_getter(&queue);
        settle().await;
        queue.put_nowait(1).unwrap(); // handed to `dropped`
        drop(dropped);
        assert_eq!(finish(next).await, Ok(1));
        assert!(queue.empty());
    });
}

#[test]
fn dropping_an_unpolled_get_that_took_an_item_returns_it() {
    run(async {
        let queue = Queue::new();
        queue.put_nowait(1).unwrap();
        queue.put_nowait(2).unwrap();
        let get = queue.get();
        assert_eq!(queue.qsize(), 1, "taken when called");
        drop(get);
        assert_eq!(drain(&queue), [1, 2]);
    });
}

#[test]
fn dropping_a_waiting_put_withdraws_its_item() {
    run(async {
        let queue = Queue::with_maxsize(1);
        queue.put_nowait(Rc::new(1)).unwrap();
        let item = Rc::new(2);
        let put = queue.put(item.clone());
        assert_eq!(Rc::strong_count(&item), 2, "the put holds it");
        drop(put);
        assert_eq!(Rc::strong_count(&item), 1, "withdrawn and dropped");
        assert_eq!(*queue.get_nowait().unwrap(), 1);
        assert!(queue.get_nowait().is_err());
        // Room made for a putter that is then dropped: the item stays put.
        queue.put_nowait(Rc::new(3)).unwrap();
        let put = queue.put(item.clone());
        assert_eq!(*queue.get_nowait().unwrap(), 3);
        drop(put);
        assert_eq!(*queue.get_nowait().unwrap(), 2);
    });
}

#[test]
fn task_done_and_join() {
    run(async {
        let queue = Queue::new();
        queue.join().await; // nothing outstanding
        for i in 0..3 {
            queue.put_nowait(i).unwrap();
        }
        assert_eq!(queue.join_timeout(SHORT).await, Err(TimeoutError));
        let joiner = spawn({
            let queue = queue.clone();
            async move { queue.join_timeout(LONG).await }
        });
        for _ in 0..3 {
            queue.get().await;
            settle().await;
            assert!(!joiner.is_finished(), "joined before every task_done");
            queue.task_done();
        }
        assert_eq!(finish(joiner).await.unwrap(), Ok(()));
        queue.put_nowait(3).unwrap();
        assert_eq!(
            queue.join_timeout(SHORT).await,
            Err(TimeoutError),
            "outstanding again"
        );
    });
}

#[test]
#[should_panic(expected = "task_done() called too many times")]
fn task_done_too_many_times_panics() {
    let queue = Queue::new();
    queue.put_nowait(()).unwrap();
    queue.get_nowait().unwrap();
    queue.task_done();
    queue.task_done();
}

#[test]
fn producer_and_consumer_pass_ten_thousand_items() {
    const N: u64 = 10_000;
    let received = run(async {
        let queue = Queue::with_maxsize(10);
        let consumer = spawn({
            let queue = queue.clone();
            async move {
                let mut received = Vec::new();
                loop {
                    let item = queue.get().await;
                    queue.task_done();
                    if item == N {
                        return received;
                    }
                    received.push(item);
                }
            }
        });
        let producer = spawn({
            let queue = queue.clone();
            async move {
                for item in 0..=N {
                    assert!(queue.qsize() <= 10);
                    queue.put(item).await;
                }
            }
        });
        finish(producer).await.unwrap();
        queue.join_timeout(LONG).await.unwrap();
        finish(consumer).await.unwrap()
    });
    assert_eq!(received, (0..N).collect::<Vec<_>>());
}

#[test]
fn priority_queue_gives_the_smallest_first() {
    run(async {
        let queue = PriorityQueue::with_maxsize(3);
        for item in [(1, "medium"), (0, "high"), (10, "low")] {
            queue.put(item).await;
        }
        assert!(queue.full());
        assert_eq!(queue.get().await, (0, "high"));
        assert_eq!(queue.get().await, (1, "medium"));
        assert_eq!(queue.get().await, (10, "low"));
        assert_eq!(PriorityQueue::<u8>::new().maxsize(), 0);
    });
}

#[test]
fn priority_queue_weighs_a_waiting_putters_item() {
    run(async {
        let queue = PriorityQueue::with_maxsize(2);
        queue.put_nowait(5).unwrap();
        queue.put_nowait(6).unwrap();
        let put = queue.put(1); // waits: full
        assert_eq!(queue.get_nowait(), Ok(1), "as in Tornado, it goes in first");
        put.await;
        assert_eq!(drain(&queue), [5, 6]);
    });
}

#[test]
fn priority_queue_returns_a_dropped_getters_item_in_order() {
    run(async {
        let queue = PriorityQueue::new();
        let getter = queue.get();
        queue.put_nowait(3).unwrap(); // handed to the getter
        queue.put_nowait(4).unwrap();
        queue.put_nowait(1).unwrap();
        drop(getter);
        assert_eq!(drain(&queue), [1, 3, 4]);
    });
}

#[test]
fn lifo_queue_gives_the_newest_first() {
    run(async {
        let queue = LifoQueue::new();
        for item in [1, 2, 3] {
            queue.put(item).await;
        }
        assert_eq!(drain(&queue), [3, 2, 1]);
        let getter = queue.get(); // waits, is handed 4, is dropped
        queue.put_nowait(4).unwrap();
        queue.put_nowait(5).unwrap();
        drop(getter);
        assert_eq!(drain(&queue), [4, 5], "the returned item is next out");
        let queue: Queue<_> = LifoQueue::with_maxsize(1).into();
        queue.put_nowait(1).unwrap();
        assert!(queue.put_nowait(2).is_err());
    });
}

#[test]
fn debug_needs_no_debug_items_and_errors_are_std_errors() {
    struct Opaque;
    let queue = Queue::with_maxsize(3);
    queue.put_nowait(Opaque).unwrap();
    let shown = format!("{queue:?}");
    assert!(
        shown.contains("maxsize: 3") && shown.contains("qsize: 1"),
        "{shown}"
    );
    assert!(format!("{:?}", PriorityQueue::<u8>::new()).starts_with("PriorityQueue(Queue {"));
    assert!(format!("{:?}", LifoQueue::<Opaque>::new()).starts_with("LifoQueue(Queue {"));
    let errors: Vec<Box<dyn std::error::Error>> = vec![
        Box::new(QueueEmpty),
        Box::new(QueueFull(Opaque)),
        Box::new(PutTimeoutError(Opaque)),
    ];
    let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        messages,
        [
            "the queue is empty",
            "the queue is full",
            "the queue stayed full until the put timed out"
        ]
    );
}

#[test]
fn putters_wait_while_a_returned_item_overfills_the_queue() {
    run(async {
        let queue = Queue::with_maxsize(1);
        let getter = queue.get(); // waits
        queue.put_nowait(1).unwrap(); // handed to the getter
        queue.put_nowait(2).unwrap(); // the queue is full again
        let putter = {
            let queue = queue.clone();
            spawn(async move { queue.put(3).await })
        };
        settle().await;
        drop(getter); // 1 comes back: one over the limit
        assert_eq!(queue.qsize(), 2);
        assert_eq!(queue.get_nowait(), Ok(1));
        settle().await;
        assert!(!putter.is_finished(), "no room yet");
        assert_eq!(queue.qsize(), 1);
        assert_eq!(queue.get_nowait(), Ok(2));
        finish(putter).await.unwrap();
        assert_eq!(drain(&queue), [3]);
    });
}
