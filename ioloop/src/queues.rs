//! Queues for passing items between tasks: Tornado's `tornado.queues`.
//!
//! - [`Queue`] — first in, first out;
//! - [`PriorityQueue`] — smallest item first;
//! - [`LifoQueue`] — last in, first out.
//!
//! A queue may be bounded ([`Queue::with_maxsize`]): then [`put`](Queue::put)
//! waits while it is full. [`get`](Queue::get) waits while it is empty. Each
//! item put is counted until a consumer calls [`task_done`](Queue::task_done)
//! for it, and [`join`](Queue::join) waits until every item has been.
//!
//! Like the [`locks`](crate::locks) they are single-threaded and a clone is
//! another handle to the same queue, so a producer and a consumer task can
//! each hold one. As there, a call takes its place in line when it is made,
//! waiting getters and putters are served first come, first served, and
//! dropping a waiting future gives up its place without losing anything: an
//! item already handed to a getter that never saw it goes to the next getter,
//! or back to the front of the queue.
//!
//! ```compile_fail
//! fn assert_send<T: Send>() {}
//! assert_send::<whirl_ioloop::queues::Queue<u32>>();
//! ```
//!
//! # Examples
//!
//! Tornado's producer and consumer, with a queue of two:
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use whirl_ioloop::queues::Queue;
//! use whirl_ioloop::{spawn, IoLoop};
//!
//! let done = Rc::new(RefCell::new(Vec::new()));
//! IoLoop::new().run_sync(async {
//!     let queue = Queue::with_maxsize(2);
//!     let consumer = spawn({
//!         let (queue, done) = (queue.clone(), done.clone());
//!         async move {
//!             loop {
//!                 let item = queue.get().await;
//!                 done.borrow_mut().push(item);
//!                 queue.task_done();
//!             }
//!         }
//!     });
//!     for item in 0..5 {
//!         queue.put(item).await; // waits while two items are waiting
//!     }
//!     queue.join().await; // every item was marked done
//!     consumer.abort();
//! });
//! assert_eq!(*done.borrow(), [0, 1, 2, 3, 4]);
//! ```

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::future::{poll_fn, Future};
use std::ops::Deref;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use crate::locks::{grant, poll_waiter, wake_all, Event, Status, WaiterList, WaiterRef};
use crate::{sleep, with_timeout, TimeoutError};

// ----- errors ----------------------------------------------------------------

/// The error of [`Queue::get_nowait`] on an empty queue. Tornado:
/// `tornado.queues.QueueEmpty`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueEmpty;

impl fmt::Display for QueueEmpty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the queue is empty")
    }
}

impl std::error::Error for QueueEmpty {}

/// The error of [`Queue::put_nowait`] on a full queue; holds the item that was
/// not put. Tornado: `tornado.queues.QueueFull`.
#[derive(Clone, PartialEq, Eq)]
pub struct QueueFull<T>(pub T);

impl<T> QueueFull<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueFull(..)")
    }
}

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the queue is full")
    }
}

impl<T> std::error::Error for QueueFull<T> {}

/// The error of [`Queue::put_timeout`] when the queue stayed full until the
/// timeout; holds the item, which was not put.
///
/// Tornado raises `tornado.util.TimeoutError` and the item is gone; here it
/// comes back. It converts into [`TimeoutError`] for callers that only need
/// to know the time ran out.
#[derive(Clone, PartialEq, Eq)]
pub struct PutTimeoutError<T>(pub T);

impl<T> PutTimeoutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PutTimeoutError(..)")
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the queue stayed full until the put timed out")
    }
}

impl<T> std::error::Error for PutTimeoutError<T> {}

impl<T> From<PutTimeoutError<T>> for TimeoutError {
    fn from(_: PutTimeoutError<T>) -> TimeoutError {
        TimeoutError
    }
}

// ----- storage ---------------------------------------------------------------

/// The order items leave a queue in; what tells [`Queue`], [`PriorityQueue`]
/// and [`LifoQueue`] apart (Tornado's `_init`, `_get`, `_put`).
trait Storage<T> {
    /// Adds an item.
    fn push(&mut self, item: T);
    /// Removes the item that leaves next.
    fn pop(&mut self) -> Option<T>;
    /// Returns an item just popped so that it leaves next again (or, for a
    /// priority queue, in its place by priority).
    fn unpop(&mut self, item: T);
    /// How many items are held.
    fn len(&self) -> usize;
}

/// First in, first out.
impl<T> Storage<T> for VecDeque<T> {
    fn push(&mut self, item: T) {
        self.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
    fn unpop(&mut self, item: T) {
        self.push_front(item);
    }
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
}

/// Last in, first out.
impl<T> Storage<T> for Vec<T> {
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    fn unpop(&mut self, item: T) {
        Vec::push(self, item);
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

/// Smallest first.
impl<T: Ord> Storage<T> for BinaryHeap<Reverse<T>> {
    fn push(&mut self, item: T) {
        BinaryHeap::push(self, Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        BinaryHeap::pop(self).map(|Reverse(item)| item)
    }
    fn unpop(&mut self, item: T) {
        BinaryHeap::push(self, Reverse(item));
    }
    fn len(&self) -> usize {
        BinaryHeap::len(self)
    }
}

// ----- the queue -------------------------------------------------------------

/// The state behind a queue, shared by its handles and its futures.
struct Core<T> {
    /// The most items held before `put` waits; 0 for no limit.
    maxsize: usize,
    /// The items, in the queue's order. Holds at most `maxsize` items, except
    /// briefly after an item handed to a getter came back (see `give_back`).
    items: Box<dyn Storage<T>>,
    /// Tasks waiting for an item, oldest first; each is handed its item in its
    /// waiter's `value`. Only non-empty while `items` is empty.
    getters: WaiterList<T>,
    /// Tasks waiting for room, oldest first, each carrying its item in its
    /// waiter's `value`. Only non-empty while the queue is full.
    putters: WaiterList<T>,
    /// Items put and not yet marked done with `task_done`.
    unfinished: usize,
    /// Set exactly when `unfinished` is zero; `join` waits on it.
    finished: Event,
}

impl<T> Core<T> {
    /// Whether `put` would wait now.
    fn full(&self) -> bool {
        self.maxsize > 0 && self.items.len() >= self.maxsize
    }

    /// Counts an item that enters the queue (Tornado: `__put_internal`).
    fn count_in(&mut self) {
        self.unfinished += 1;
        self.finished.clear();
    }

    /// Puts `item` in without waiting: straight to the oldest getter, or into
    /// the storage if there is room. Gives it back if the queue is full.
    fn try_put(&mut self, item: T, wakers: &mut Vec<Option<Waker>>) -> Result<(), T> {
        if let Some(getter) = self.getters.pop() {
            self.count_in();
            getter.borrow_mut().value = Some(item);
            wakers.push(grant(&getter));
        } else if self.full() {
            return Err(item);
        } else {
            self.count_in();
            self.items.push(item);
        }
        Ok(())
    }

    /// Takes the next item without waiting, letting the oldest putter's item
    /// into the room that leaves.
    ///
    /// As in Tornado, the putter's item goes in before the next item is taken,
    /// so a priority or LIFO queue weighs it too.
    fn try_get(&mut self, wakers: &mut Vec<Option<Waker>>) -> Option<T> {
        // Step 1. Let a putter in if, after this get, the queue is within its
        // size (a returned item may have briefly overfilled it).
        if self.items.len() <= self.maxsize {
            if let Some(putter) = self.putters.pop() {
                let item = putter.borrow_mut().value.take();
                if let Some(item) = item {
                    self.count_in();
                    self.items.push(item);
                }
                wakers.push(grant(&putter));
            }
        }
        // Step 2. Take the next item.
        self.items.pop()
    }

    /// Takes back an item handed to a getter that will never see it: the
    /// oldest other getter gets it, or it goes back to be the next out. It
    /// was counted when it was put, so the count does not change.
    fn give_back(&mut self, item: T, wakers: &mut Vec<Option<Waker>>) {
        match self.getters.pop() {
            Some(getter) => {
                getter.borrow_mut().value = Some(item);
                wakers.push(grant(&getter));
            }
            None => self.items.unpop(item),
        }
    }
}

/// A first-in, first-out queue for passing items between tasks. Tornado:
/// `tornado.queues.Queue`.
///
/// A clone is another handle to the same queue. See the [module
/// documentation](self) for an example.
pub struct Queue<T> {
    /// The shared state.
    core: Rc<RefCell<Core<T>>>,
}

impl<T: 'static> Queue<T> {
    /// An unbounded queue. Tornado: `Queue()`.
    pub fn new() -> Queue<T> {
        Queue::with_maxsize(0)
    }

    /// A queue that holds at most `maxsize` items (0 for no limit); `put`
    /// waits while it is full. Tornado: `Queue(maxsize)`. Default (with
    /// [`new`](Queue::new)) is `0`.
    pub fn with_maxsize(maxsize: usize) -> Queue<T> {
        Queue::with_storage(maxsize, Box::new(VecDeque::new()))
    }
}

impl<T> Queue<T> {
    /// A queue over `items`.
    fn with_storage(maxsize: usize, items: Box<dyn Storage<T>>) -> Queue<T> {
        let finished = Event::new();
        finished.set();
        Queue {
            core: Rc::new(RefCell::new(Core {
                maxsize,
                items,
                getters: WaiterList::new(),
                putters: WaiterList::new(),
                unfinished: 0,
                finished,
            })),
        }
    }

    /// The most items the queue holds; 0 for no limit. Tornado:
    /// `Queue.maxsize`.
    pub fn maxsize(&self) -> usize {
        self.core.borrow().maxsize
    }

    /// How many items are in the queue (not counting those of waiting
    /// putters). Tornado: `Queue.qsize()`.
    pub fn qsize(&self) -> usize {
        self.core.borrow().items.len()
    }

    /// Whether the queue holds no items. Tornado: `Queue.empty()`.
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue holds `maxsize` items, so `put` would wait; never
    /// for an unbounded queue. Tornado: `Queue.full()`.
    pub fn full(&self) -> bool {
        self.core.borrow().full()
    }

    /// Puts an item in, waiting while the queue is full. Tornado:
    /// `Queue.put(item)`.
    ///
    /// If there is room the item goes in by this call, and the future is
    /// already complete; otherwise it takes its place in line, and goes in as
    /// soon as a `get` makes room for it. Dropping the future before then
    /// withdraws the item (it is dropped).
    pub fn put(&self, item: T) -> Put<T> {
        let mut wakers = Vec::new();
        let state = {
            let mut core = self.core.borrow_mut();
            match core.try_put(item, &mut wakers) {
                Ok(()) => PutState::Done,
                Err(item) => PutState::Waiting(core.putters.push(Some(item))),
            }
        };
        wake_all(wakers);
        Put {
            core: self.core.clone(),
            state,
        }
    }

    /// Like [`put`](Queue::put), but gives up after `timeout`. Tornado:
    /// `Queue.put(item, timeout)`.
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError`] holding the item if the queue stayed full for all
    /// of `timeout`; the item was not put.
    pub fn put_timeout(
        &self,
        item: T,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), PutTimeoutError<T>>> {
        let mut put = self.put(item);
        let mut deadline = sleep(timeout);
        poll_fn(move |cx| {
            if Pin::new(&mut put).poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            ready!(Pin::new(&mut deadline).poll(cx));
            Poll::Ready(match put.withdraw() {
                Some(item) => Err(PutTimeoutError(item)),
                None => Ok(()),
            })
        })
    }

    /// Puts an item in without waiting. Tornado: `Queue.put_nowait(item)`.
    ///
    /// # Errors
    ///
    /// [`QueueFull`] holding the item if the queue is full.
    pub fn put_nowait(&self, item: T) -> Result<(), QueueFull<T>> {
        let mut wakers = Vec::new();
        let put = self.core.borrow_mut().try_put(item, &mut wakers);
        wake_all(wakers);
        put.map_err(QueueFull)
    }

    /// Takes the next item out, waiting while the queue is empty. Tornado:
    /// `Queue.get()`.
    ///
    /// If an item is there, this call takes it; otherwise it takes its place
    /// in line. Dropping the future before it yielded its item returns the
    /// item to the queue (to the next getter in line, or to the front).
    pub fn get(&self) -> Get<T> {
        let mut wakers = Vec::new();
        let state = {
            let mut core = self.core.borrow_mut();
            match core.try_get(&mut wakers) {
                Some(item) => GetState::Taken(item),
                None => GetState::Waiting(core.getters.push(None)),
            }
        };
        wake_all(wakers);
        Get {
            core: self.core.clone(),
            state,
        }
    }

    /// Like [`get`](Queue::get), but gives up after `timeout`. Tornado:
    /// `Queue.get(timeout)`.
    ///
    /// # Errors
    ///
    /// [`TimeoutError`] if no item came within `timeout`; no item is lost.
    pub fn get_timeout(&self, timeout: Duration) -> impl Future<Output = Result<T, TimeoutError>> {
        with_timeout(timeout, self.get())
    }

    /// Takes the next item out without waiting. Tornado:
    /// `Queue.get_nowait()`.
    ///
    /// # Errors
    ///
    /// [`QueueEmpty`] if there is no item.
    pub fn get_nowait(&self) -> Result<T, QueueEmpty> {
        let mut wakers = Vec::new();
        let item = self.core.borrow_mut().try_get(&mut wakers);
        wake_all(wakers);
        item.ok_or(QueueEmpty)
    }

    /// Marks one item taken out as processed; once every item put has been,
    /// [`join`](Queue::join) completes. Tornado: `Queue.task_done()`.
    ///
    /// # Panics
    ///
    /// If called more times than items were put ("task_done() called too
    /// many times"; Tornado raises `ValueError`).
    pub fn task_done(&self) {
        let core = &mut *self.core.borrow_mut();
        assert!(core.unfinished > 0, "task_done() called too many times");
        core.unfinished -= 1;
        if core.unfinished == 0 {
            core.finished.set();
        }
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](Queue::task_done); at once if none is outstanding.
    /// Tornado: `Queue.join()`.
    pub fn join(&self) -> impl Future<Output = ()> {
        self.core.borrow().finished.wait()
    }

    /// Like [`join`](Queue::join), but gives up after `timeout`. Tornado:
    /// `Queue.join(timeout)`.
    ///
    /// # Errors
    ///
    /// [`TimeoutError`] if items were still outstanding after `timeout`.
    pub fn join_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), TimeoutError>> {
        with_timeout(timeout, self.join())
    }
}

impl<T: 'static> Default for Queue<T> {
    fn default() -> Self {
        Queue::new()
    }
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            core: self.core.clone(),
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.core.borrow();
        f.debug_struct("Queue")
            .field("maxsize", &core.maxsize)
            .field("qsize", &core.items.len())
            .field("getters", &core.getters.len())
            .field("putters", &core.putters.len())
            .field("unfinished_tasks", &core.unfinished)
            .finish()
    }
}

// ----- the other orders ------------------------------------------------------

/// A queue that gives out its smallest item first. Tornado:
/// `tornado.queues.PriorityQueue`.
///
/// It has every method of [`Queue`] (it dereferences to one, as Tornado's is
/// a subclass); only the order differs. Use [`Reverse`] for largest first,
/// or `(priority, item)` pairs as in Tornado.
///
/// # Examples
///
/// ```
/// use whirl_ioloop::queues::PriorityQueue;
///
/// let queue = PriorityQueue::new();
/// for item in [(1, "medium"), (0, "high"), (10, "low")] {
///     queue.put_nowait(item).unwrap();
/// }
/// assert_eq!(queue.get_nowait(), Ok((0, "high")));
/// assert_eq!(queue.get_nowait(), Ok((1, "medium")));
/// assert_eq!(queue.get_nowait(), Ok((10, "low")));
/// ```
pub struct PriorityQueue<T> {
    /// A queue over a min-heap.
    queue: Queue<T>,
}

impl<T: Ord + 'static> PriorityQueue<T> {
    /// An unbounded priority queue. Tornado: `PriorityQueue()`.
    pub fn new() -> PriorityQueue<T> {
        PriorityQueue::with_maxsize(0)
    }

    /// A priority queue that holds at most `maxsize` items (0 for no limit).
    /// Tornado: `PriorityQueue(maxsize)`.
    pub fn with_maxsize(maxsize: usize) -> PriorityQueue<T> {
        PriorityQueue {
            queue: Queue::with_storage(maxsize, Box::new(BinaryHeap::<Reverse<T>>::new())),
        }
    }
}

/// A queue that gives out its most recently put item first. Tornado:
/// `tornado.queues.LifoQueue`.
///
/// It has every method of [`Queue`] (it dereferences to one, as Tornado's is
/// a subclass); only the order differs.
///
/// # Examples
///
/// ```
/// use whirl_ioloop::queues::LifoQueue;
///
/// let queue = LifoQueue::new();
/// for item in [3, 2, 1] {
///     queue.put_nowait(item).unwrap();
/// }
/// assert_eq!(queue.get_nowait(), Ok(1));
/// assert_eq!(queue.get_nowait(), Ok(2));
/// assert_eq!(queue.get_nowait(), Ok(3));
/// ```
pub struct LifoQueue<T> {
    /// A queue over a stack.
    queue: Queue<T>,
}

impl<T: 'static> LifoQueue<T> {
    /// An unbounded LIFO queue. Tornado: `LifoQueue()`.
    pub fn new() -> LifoQueue<T> {
        LifoQueue::with_maxsize(0)
    }

    /// A LIFO queue that holds at most `maxsize` items (0 for no limit).
    /// Tornado: `LifoQueue(maxsize)`.
    pub fn with_maxsize(maxsize: usize) -> LifoQueue<T> {
        LifoQueue {
            queue: Queue::with_storage(maxsize, Box::new(Vec::new())),
        }
    }
}

/// `Deref` to [`Queue`], `Clone`, `Debug`, `Default` and `From` for the
/// queues of other orders.
macro_rules! queue_flavour {
    ($name:ident, $($bound:tt)*) => {
        impl<T> Deref for $name<T> {
            type Target = Queue<T>;

            fn deref(&self) -> &Queue<T> {
                &self.queue
            }
        }

        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name {
                    queue: self.queue.clone(),
                }
            }
        }

        impl<T: $($bound)*> Default for $name<T> {
            fn default() -> Self {
                $name::new()
            }
        }

        impl<T> From<$name<T>> for Queue<T> {
            fn from(queue: $name<T>) -> Queue<T> {
                queue.queue
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.queue).finish()
            }
        }
    };
}

queue_flavour!(PriorityQueue, Ord + 'static);
queue_flavour!(LifoQueue, 'static);

// ----- futures ---------------------------------------------------------------

/// The future returned by [`Queue::put`]; completes once the item is in the
/// queue.
#[must_use = "dropping a waiting put withdraws its item"]
pub struct Put<T> {
    /// The queue.
    core: Rc<RefCell<Core<T>>>,
    /// Whether the item is in, or still waits for room.
    state: PutState<T>,
}

/// Where a [`Put`] stands.
enum PutState<T> {
    /// The item is in the queue (or was withdrawn).
    Done,
    /// In line for room, carrying the item in the waiter's `value`.
    Waiting(WaiterRef<T>),
}

impl<T> Put<T> {
    /// Gives up: takes the item back if it is still waiting for room, or
    /// returns `None` if it is already in the queue.
    fn withdraw(&mut self) -> Option<T> {
        match std::mem::replace(&mut self.state, PutState::Done) {
            PutState::Waiting(waiter) => self.core.borrow_mut().putters.cancel(&waiter).1,
            PutState::Done => None,
        }
    }
}

// The item is never pinned: it lives in the waiter or in the queue.
impl<T> Unpin for Put<T> {}

impl<T> Future for Put<T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.state {
            PutState::Done => Poll::Ready(()),
            PutState::Waiting(waiter) if poll_waiter(waiter, cx) => {
                self.state = PutState::Done;
                Poll::Ready(())
            }
            PutState::Waiting(_) => Poll::Pending,
        }
    }
}

impl<T> Drop for Put<T> {
    fn drop(&mut self) {
        // Dropped here, outside the queue's borrow.
        drop(self.withdraw());
    }
}

impl<T> fmt::Debug for Put<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiting =
            matches!(&self.state, PutState::Waiting(w) if w.borrow().status == Status::Waiting);
        f.debug_struct("Put").field("waiting", &waiting).finish()
    }
}

/// The future returned by [`Queue::get`]; resolves to the next item.
#[must_use = "futures do nothing unless awaited"]
pub struct Get<T> {
    /// The queue.
    core: Rc<RefCell<Core<T>>>,
    /// Whether we hold our item, wait for one, or gave it out.
    state: GetState<T>,
}

/// Where a [`Get`] stands.
enum GetState<T> {
    /// An item was there when `get` was called; it is ours.
    Taken(T),
    /// In line for an item; once granted, the item is in the waiter's `value`.
    Waiting(WaiterRef<T>),
    /// The item was yielded.
    Done,
}

// The item is never pinned: it is moved out when the future completes.
impl<T> Unpin for Get<T> {}

impl<T> Future for Get<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match std::mem::replace(&mut self.state, GetState::Done) {
            GetState::Taken(item) => Poll::Ready(item),
            GetState::Waiting(waiter) => {
                if poll_waiter(&waiter, cx) {
                    let item = waiter.borrow_mut().value.take();
                    Poll::Ready(item.expect("a served getter holds its item"))
                } else {
                    self.state = GetState::Waiting(waiter);
                    Poll::Pending
                }
            }
            GetState::Done => panic!("`Get` polled after completion"),
        }
    }
}

impl<T> Drop for Get<T> {
    fn drop(&mut self) {
        let item = match std::mem::replace(&mut self.state, GetState::Done) {
            GetState::Taken(item) => Some(item),
            // Granted: the item handed to us comes back with the cancel.
            GetState::Waiting(waiter) => self.core.borrow_mut().getters.cancel(&waiter).1,
            GetState::Done => None,
        };
        if let Some(item) = item {
            let mut wakers = Vec::new();
            self.core.borrow_mut().give_back(item, &mut wakers);
            wake_all(wakers);
        }
    }
}

impl<T> fmt::Debug for Get<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            GetState::Taken(_) => "ready",
            GetState::Waiting(w) if w.borrow().status == Status::Granted => "ready",
            GetState::Waiting(_) => "waiting",
            GetState::Done => "done",
        };
        f.debug_struct("Get").field("state", &state).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Puts `items` into `storage`, pops one and unpops it, then drains it.
    fn drain(mut storage: Box<dyn Storage<u32>>, items: &[u32]) -> Vec<u32> {
        for &item in items {
            storage.push(item);
        }
        let first = storage.pop().unwrap();
        storage.unpop(first);
        assert_eq!(storage.len(), items.len());
        std::iter::from_fn(|| storage.pop()).collect()
    }

    #[test]
    fn storage_orders() {
        let items = [3, 1, 4, 1, 5];
        let fifo: Box<dyn Storage<u32>> = Box::new(VecDeque::new());
        let lifo: Box<dyn Storage<u32>> = Box::new(Vec::new());
        let priority: Box<dyn Storage<u32>> = Box::new(BinaryHeap::new());
        assert_eq!(drain(fifo, &items), [3, 1, 4, 1, 5]);
        assert_eq!(drain(lifo, &items), [5, 1, 4, 1, 3]);
        assert_eq!(drain(priority, &items), [1, 1, 3, 4, 5]);
    }

    #[test]
    fn error_messages_read_as_sentences() {
        assert_eq!(QueueEmpty.to_string(), "the queue is empty");
        assert_eq!(QueueFull(1).to_string(), "the queue is full");
        assert_eq!(
            PutTimeoutError(1).to_string(),
            "the queue stayed full until the put timed out"
        );
        assert_eq!(TimeoutError::from(PutTimeoutError(1)), TimeoutError);
        assert_eq!(QueueFull(7).into_inner(), 7);
        assert_eq!(format!("{:?}", QueueFull(7)), "QueueFull(..)");
    }
}
