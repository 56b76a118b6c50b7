//! The timer queue: deadlines in a binary heap, entries in a slab.
//!
//! This file does no I/O and knows nothing of the loop; [`IoLoop`](crate::IoLoop)
//! owns one [`TimerQueue`] and asks it for due entries once per iteration.
//!
//! Cancellation is lazy, as in Tornado: [`TimerQueue::remove`] frees the entry in
//! the slab at once (so the callback and whatever it captured are dropped), but the
//! heap keeps a small stale record until it reaches the top or until stale records
//! outnumber live ones, when the heap is rebuilt. A server that arms and cancels one
//! timer per request therefore never grows without bound.
//!
//! Firing is two steps, as in Tornado: [`TimerQueue::pop_due`] takes a due timer off
//! the heap but leaves it armed, and the loop takes its value with
//! [`TimerQueue::remove`] only when it is about to run it. A timer cancelled in
//! between (by a callback or an earlier timer of the same iteration) never fires.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use slab::Slab;

/// Stale heap records tolerated before a rebuild is considered (Tornado: 512).
const COMPACT_MIN_STALE: usize = 512;

/// A handle to a timer armed with [`IoLoop::add_timeout`](crate::IoLoop::add_timeout),
/// [`IoLoop::call_later`](crate::IoLoop::call_later) or
/// [`IoLoop::call_at`](crate::IoLoop::call_at); pass it to
/// [`IoLoop::remove_timeout`](crate::IoLoop::remove_timeout) to cancel.
///
/// Tornado's `add_timeout` returns an opaque handle in the same way. A handle is
/// only meaningful for the loop that made it; removing a timer that already fired
/// or was already removed does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeoutHandle {
    /// Slab key of the entry.
    key: usize,
    /// Sequence number, unique per queue; tells a live entry from a reused slot.
    seq: u64,
}

/// One armed timer.
#[derive(Debug)]
struct Entry<T> {
    /// Sequence number given at insertion; ties on deadline fire in this order.
    seq: u64,
    /// What to hand back when the deadline passes.
    value: T,
}

/// A heap record: ordered by deadline, then by insertion sequence.
type Record = Reverse<(Instant, u64, usize)>;

/// Timers ordered by deadline, ties in insertion order, with O(log n) insert,
/// O(1) cancel and amortised O(log n) pop.
#[derive(Debug)]
pub(crate) struct TimerQueue<T> {
    /// Min-heap of `(deadline, seq, key)`; may hold stale records of removed timers.
    heap: BinaryHeap<Record>,
    /// Live entries; a heap record is live iff `entries[key].seq == seq`.
    entries: Slab<Entry<T>>,
    /// Next sequence number to hand out (strictly increasing).
    next_seq: u64,
}

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TimerQueue<T> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            entries: Slab::new(),
            next_seq: 0,
        }
    }

    /// Arms a timer that yields `value` once `deadline` has passed.
    pub(crate) fn insert(&mut self, deadline: Instant, value: T) -> TimeoutHandle {
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = self.entries.insert(Entry { seq, value });
        self.heap.push(Reverse((deadline, seq, key)));
        TimeoutHandle { key, seq }
    }

    /// Cancels a timer, returning its value if it was still armed.
    pub(crate) fn remove(&mut self, handle: TimeoutHandle) -> Option<T> {
        match self.entries.get(handle.key) {
            Some(entry) if entry.seq == handle.seq => {}
            _ => return None,
        }
        let value = self.entries.remove(handle.key).value;
        self.maybe_compact();
        Some(value)
    }

    /// Number of armed (live) timers.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is armed.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The earliest live deadline, discarding stale records on the way.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.discard_stale_top();
        self.heap.peek().map(|Reverse((deadline, _, _))| *deadline)
    }

    /// Takes the earliest timer off the heap if its deadline is at or before
    /// `now`, and returns its handle. The timer stays armed (and counted by
    /// [`len`](TimerQueue::len)) until taken with [`remove`](TimerQueue::remove),
    /// so cancelling it in between still prevents it from firing.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimeoutHandle> {
        self.discard_stale_top();
        match self.heap.peek() {
            Some(Reverse((deadline, _, _))) if *deadline <= now => {}
            _ => return None,
        }
        let Reverse((_, seq, key)) = self.heap.pop()?;
        Some(TimeoutHandle { key, seq })
    }

    /// Drops every timer, returning their values (so the caller may drop them
    /// outside any borrow).
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.heap.clear();
        self.entries.drain().map(|entry| entry.value).collect()
    }

    /// Pops heap records whose entry was removed.
    fn discard_stale_top(&mut self) {
        while let Some(Reverse((_, seq, key))) = self.heap.peek() {
            if self.is_live(*key, *seq) {
                break;
            }
            self.heap.pop();
        }
    }

    /// Rebuilds the heap without stale records once they outnumber live ones.
    fn maybe_compact(&mut self) {
        // Saturating: timers popped by `pop_due` but not yet removed are live
        // entries with no heap record.
        let stale = self.heap.len().saturating_sub(self.entries.len());
        if stale > COMPACT_MIN_STALE && stale > self.entries.len() {
            let entries = &self.entries;
            self.heap.retain(
                |Reverse((_, seq, key))| matches!(entries.get(*key), Some(e) if e.seq == *seq),
            );
        }
    }

    /// Whether the record `(key, seq)` names a live entry.
    fn is_live(&self, key: usize, seq: u64) -> bool {
        matches!(self.entries.get(key), Some(entry) if entry.seq == seq)
    }

    /// Heap records held, live and stale (for tests of the growth bound).
    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn drain_due(q: &mut TimerQueue<u32>, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| {
            let handle = q.pop_due(now)?;
            q.remove(handle)
        })
        .collect()
    }

    #[test]
    fn fires_in_deadline_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(t0 + Duration::from_millis(30), 3);
        q.insert(t0 + Duration::from_millis(10), 1);
        q.insert(t0 + Duration::from_millis(20), 2);
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(
            drain_due(&mut q, t0 + Duration::from_millis(25)),
            vec![1, 2]
        );
        assert_eq!(drain_due(&mut q, t0 + Duration::from_millis(30)), vec![3]);
        assert!(q.is_empty());
    }

    #[test]
    fn ties_fire_in_insertion_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        for i in 0..100 {
            q.insert(t0, i);
        }
        assert_eq!(drain_due(&mut q, t0), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn not_due_stays() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(t0 + Duration::from_secs(1), 1);
        assert_eq!(q.pop_due(t0), None);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn removed_timer_never_fires() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        let a = q.insert(t0, 1);
        q.insert(t0, 2);
        assert_eq!(q.remove(a), Some(1));
        assert_eq!(q.remove(a), None, "second remove is a no-op");
        assert_eq!(drain_due(&mut q, t0), vec![2]);
    }

    #[test]
    fn handle_of_fired_timer_does_not_cancel_slot_reuser() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        let a = q.insert(t0, 1);
        assert_eq!(drain_due(&mut q, t0), vec![1]);
        let _b = q.insert(t0, 2); // reuses a's slab slot
        assert_eq!(q.remove(a), None);
        assert_eq!(drain_due(&mut q, t0), vec![2]);
    }

    #[test]
    fn popped_timer_stays_armed_until_taken() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        let a = q.insert(t0, 1);
        let b = q.insert(t0, 2);
        assert_eq!(q.pop_due(t0), Some(a));
        assert_eq!(q.pop_due(t0), Some(b));
        assert_eq!(q.len(), 2, "popped but not yet taken");
        // Cancelled between pop and take (e.g. by the timer that ran before it).
        assert_eq!(q.remove(b), Some(2));
        assert_eq!(q.remove(a), Some(1));
        assert_eq!(q.remove(b), None);
        assert!(q.is_empty());
    }

    #[test]
    fn next_deadline_skips_removed() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        let a = q.insert(t0, 1);
        q.insert(t0 + Duration::from_secs(5), 2);
        q.remove(a);
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn arm_and_cancel_churn_stays_bounded() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        // One long-lived timer keeps the heap non-empty, as a server would.
        q.insert(t0 + Duration::from_secs(3600), u32::MAX);
        for i in 0..100_000 {
            let h = q.insert(t0 + Duration::from_secs(60), i);
            q.remove(h);
        }
        assert_eq!(q.len(), 1);
        assert!(
            q.heap_len() <= 2 * COMPACT_MIN_STALE + 2,
            "heap grew to {}",
            q.heap_len()
        );
    }

    #[test]
    fn drain_returns_everything() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(t0, 1);
        q.insert(t0, 2);
        let mut all = q.drain();
        all.sort();
        assert_eq!(all, vec![1, 2]);
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
    }
}
