//! The read buffer: bytes received but not yet handed to a reader.
//!
//! Pure (no I/O). Bytes are consumed by moving a cursor; the live bytes are
//! moved to the front only when the free space at the end runs out, so a stream
//! that receives `n` bytes in small pieces copies each byte O(1) times, never
//! O(n²).
//!
//! An empty buffer can give its storage back ([`ReadBuffer::release`]) to a
//! small pool of spare buffers kept per thread, and takes storage from that
//! pool when it next needs room. A stream that waits for data with nothing
//! unread therefore holds no buffer (10,000 idle keep-alive connections do
//! not pin 64 KiB each), while a busy stream gets a buffer that is already
//! allocated and initialised, warm in cache: no allocation and no zeroing per
//! read. The pool is bounded in count and in buffer size, so its own memory
//! is too (at most `POOL_BUFFERS × POOL_MAX_BUFFER` per thread).

use std::cell::RefCell;

use crate::stream::DEFAULT_READ_CHUNK_SIZE;

/// Most spare buffers one thread's pool holds; more are freed.
const POOL_BUFFERS: usize = 16;

/// Smallest buffer the pool keeps; smaller ones (streams with a tiny
/// `read_chunk_size`) are cheap to allocate and would only take slots.
const POOL_MIN_BUFFER: usize = 4 * 1024;

/// Largest buffer the pool keeps (4 × the default read chunk); larger ones
/// (a burst, or a stream with a large `read_chunk_size`) are freed.
const POOL_MAX_BUFFER: usize = 4 * DEFAULT_READ_CHUNK_SIZE;

thread_local! {
    /// This thread's spare buffers: each fully initialised and
    /// `POOL_MIN_BUFFER..=POOL_MAX_BUFFER` bytes long; at most `POOL_BUFFERS`
    /// of them. Streams are `!Send`, so a stream's buffer comes from and
    /// returns to the pool of its loop's thread.
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Takes a spare buffer of at least `min` bytes from this thread's pool (the
/// most recently returned that fits: the warmest in cache).
fn pool_take(min: usize) -> Option<Vec<u8>> {
    POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        let at = pool.iter().rposition(|buf| buf.len() >= min)?;
        Some(pool.swap_remove(at))
    })
    .ok()
    .flatten()
}

/// Gives `buf` to this thread's pool, or frees it if it is too small or too
/// large, the pool is full, or the thread is exiting.
fn pool_put(buf: Vec<u8>) {
    if !(POOL_MIN_BUFFER..=POOL_MAX_BUFFER).contains(&buf.len()) {
        return;
    }
    let _ = POOL.try_with(move |pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_BUFFERS {
            pool.push(buf);
        }
    });
}

/// A growable byte buffer with a read cursor.
#[derive(Debug, Default)]
pub(crate) struct ReadBuffer {
    /// Storage; `buf[start..end]` is the unread data, `buf[end..]` free space.
    /// Always fully initialised, so reads go straight into it. Empty (no
    /// allocation) while released: then `start == end == 0`.
    buf: Vec<u8>,
    /// Index of the first unread byte.
    start: usize,
    /// Index one past the last unread byte.
    end: usize,
}

impl ReadBuffer {
    /// An empty buffer (allocates on first use).
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The unread bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Number of unread bytes.
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether there are no unread bytes.
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// At least `min` bytes of free space to read into; commit what was
    /// written with [`ReadBuffer::commit`].
    ///
    /// A buffer without storage (new, or released) takes a spare one from
    /// this thread's pool, already initialised, or allocates one of `min`
    /// bytes.
    pub(crate) fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.buf.len() - self.end < min {
            // Step 1. No storage: take a pooled buffer (nothing to keep).
            if self.buf.is_empty() {
                self.buf = pool_take(min).unwrap_or_else(|| vec![0; min]);
                return &mut self.buf[..];
            }
            // Step 2. Reclaim the consumed prefix (copies only live bytes).
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            // Step 3. Grow geometrically if that was not enough.
            if self.buf.len() - self.end < min {
                let target = (self.end + min).max(self.buf.len() * 2);
                self.buf.resize(target, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Marks `n` bytes of the spare space as received.
    pub(crate) fn commit(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.buf.len());
        self.end += n;
    }

    /// Removes and returns the first `n` unread bytes.
    pub(crate) fn consume(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.len());
        let out = self.buf[self.start..self.start + n].to_vec();
        self.advance(n);
        out
    }

    /// Copies up to `dst.len()` unread bytes into `dst`, returning how many.
    pub(crate) fn consume_into(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len());
        dst[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.advance(n);
        n
    }

    /// Drops the first `n` unread bytes (at most all of them).
    pub(crate) fn discard(&mut self, n: usize) {
        self.advance(n.min(self.len()));
    }

    /// Drops the first `n` unread bytes.
    fn advance(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Gives the storage back to this thread's pool (or frees it) if no
    /// unread bytes are left; a buffer holding data keeps it. Called when a
    /// stream waits for data or closes: it then holds no buffer.
    pub(crate) fn release(&mut self) {
        if self.is_empty() && !self.buf.is_empty() {
            pool_put(std::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        }
    }

    /// After a read completed: once the buffer is empty, releases storage no
    /// larger than the pool takes (so a stream that stops reading, e.g.
    /// while its request is served, holds none) and frees storage a burst
    /// grew past `4 × keep` (the stream's read chunk). Storage too large for the pool
    /// but within `4 × keep` (a stream configured with a large read chunk)
    /// stays for the next read; it is released when the stream waits.
    pub(crate) fn shrink(&mut self, keep: usize) {
        let len = self.buf.len();
        if len <= POOL_MAX_BUFFER || len > keep.saturating_mul(4) {
            self.release();
        }
    }

    /// Bytes of storage held (0 while released).
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

impl Drop for ReadBuffer {
    /// A dropped stream's storage goes to the pool (its unread bytes, if
    /// any, can no longer be read by anyone).
    fn drop(&mut self) {
        pool_put(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spare buffers in this thread's pool.
    fn pool_len() -> usize {
        POOL.with(|pool| pool.borrow().len())
    }

    /// Empties this thread's pool (tests may share a thread).
    fn pool_clear() {
        POOL.with(|pool| pool.borrow_mut().clear());
    }

    /// A buffer holding `bytes` of storage, all consumed.
    fn emptied(bytes: usize) -> ReadBuffer {
        let mut b = ReadBuffer::new();
        push(&mut b, &vec![7; bytes]);
        b.discard(bytes);
        b
    }

    fn push(b: &mut ReadBuffer, bytes: &[u8]) {
        let spare = b.spare(bytes.len());
        spare[..bytes.len()].copy_from_slice(bytes);
        b.commit(bytes.len());
    }

    #[test]
    fn fifo_bytes() {
        let mut b = ReadBuffer::new();
        push(&mut b, b"hello ");
        push(&mut b, b"world");
        assert_eq!(b.data(), b"hello world");
        assert_eq!(b.consume(6), b"hello ");
        assert_eq!(b.data(), b"world");
        let mut dst = [0u8; 3];
        assert_eq!(b.consume_into(&mut dst), 3);
        assert_eq!(&dst, b"wor");
        assert_eq!(b.consume(100), b"ld");
        assert!(b.is_empty());
    }

    #[test]
    fn consuming_everything_resets_the_cursor() {
        let mut b = ReadBuffer::new();
        push(&mut b, b"abc");
        b.consume(3);
        assert_eq!((b.start, b.end), (0, 0));
    }

    #[test]
    fn compaction_reuses_space_instead_of_growing() {
        let mut b = ReadBuffer::new();
        push(&mut b, &[1; 1000]);
        let cap = b.capacity();
        for _ in 0..10_000 {
            b.consume(100);
            push(&mut b, &[2; 100]);
        }
        assert_eq!(b.len(), 1000);
        assert_eq!(
            b.capacity(),
            cap,
            "steady-state traffic must not grow the buffer"
        );
    }

    #[test]
    fn shrink_frees_a_burst() {
        let mut b = ReadBuffer::new();
        push(&mut b, &vec![0; 1 << 20]);
        b.consume(1 << 20);
        b.shrink(64 * 1024);
        assert_eq!(b.capacity(), 0);
    }

    #[test]
    fn release_when_empty_returns_storage_to_the_pool() {
        pool_clear();
        let mut b = emptied(DEFAULT_READ_CHUNK_SIZE);
        assert_eq!(b.capacity(), DEFAULT_READ_CHUNK_SIZE);
        b.release();
        assert_eq!(b.capacity(), 0);
        assert_eq!((b.start, b.end), (0, 0));
        assert_eq!(pool_len(), 1);
        // Releasing again (nothing held) changes nothing.
        b.release();
        assert_eq!(pool_len(), 1);
    }

    #[test]
    fn non_empty_buffer_is_never_released() {
        pool_clear();
        let mut b = ReadBuffer::new();
        push(&mut b, b"head");
        push(&mut b, b"er");
        b.consume(2);
        let cap = b.capacity();
        b.release();
        b.shrink(1);
        assert_eq!(b.capacity(), cap);
        assert_eq!(b.data(), b"ader");
        assert_eq!(pool_len(), 0);
    }

    #[test]
    fn released_storage_is_taken_again_without_growing() {
        pool_clear();
        let mut b = emptied(DEFAULT_READ_CHUNK_SIZE);
        let storage = b.buf.as_ptr();
        b.release();
        // Another stream's next read takes that very allocation.
        let mut c = ReadBuffer::new();
        assert_eq!(c.spare(1024).len(), DEFAULT_READ_CHUNK_SIZE);
        assert_eq!(c.buf.as_ptr(), storage);
        assert_eq!(c.capacity(), DEFAULT_READ_CHUNK_SIZE);
        assert_eq!(pool_len(), 0);
        // It still works as a buffer.
        push(&mut c, b"after");
        assert_eq!(c.data(), b"after");
    }

    #[test]
    fn a_pooled_buffer_too_small_is_left_for_a_smaller_read() {
        pool_clear();
        emptied(POOL_MIN_BUFFER).release();
        let mut b = ReadBuffer::new();
        assert_eq!(b.spare(2 * POOL_MIN_BUFFER).len(), 2 * POOL_MIN_BUFFER);
        assert_eq!(pool_len(), 1, "the smaller buffer is still pooled");
    }

    #[test]
    fn the_pool_is_bounded_in_count_and_size() {
        pool_clear();
        let mut buffers: Vec<ReadBuffer> = (0..POOL_BUFFERS + 4)
            .map(|_| emptied(POOL_MIN_BUFFER))
            .collect();
        for b in &mut buffers {
            b.release();
        }
        assert!(buffers.iter().all(|b| b.capacity() == 0));
        assert_eq!(pool_len(), POOL_BUFFERS);
        pool_clear();
        emptied(POOL_MIN_BUFFER - 1).release();
        assert_eq!(pool_len(), 0, "too small for the pool");
        let mut big = emptied(POOL_MAX_BUFFER + 1);
        big.release();
        assert_eq!(big.capacity(), 0, "freed, not kept");
        assert_eq!(pool_len(), 0, "too large for the pool");
        emptied(POOL_MAX_BUFFER).release();
        assert_eq!(pool_len(), 1);
    }

    #[test]
    fn a_dropped_buffer_goes_to_the_pool() {
        pool_clear();
        let mut b = ReadBuffer::new();
        push(&mut b, &[1; POOL_MIN_BUFFER]);
        assert_eq!(b.len(), POOL_MIN_BUFFER, "unread when dropped");
        drop(b);
        assert_eq!(pool_len(), 1);
    }

    #[test]
    fn shrink_pools_a_normal_buffer_and_keeps_a_large_chunk() {
        pool_clear();
        let mut b = emptied(DEFAULT_READ_CHUNK_SIZE);
        b.shrink(DEFAULT_READ_CHUNK_SIZE);
        assert_eq!(b.capacity(), 0);
        assert_eq!(pool_len(), 1);
        // A stream reading 1 MiB chunks keeps its buffer between reads ...
        let chunk = 1 << 20;
        let mut b = emptied(chunk);
        b.shrink(chunk);
        assert_eq!(b.capacity(), chunk);
        // ... until it waits.
        b.release();
        assert_eq!(b.capacity(), 0);
        assert_eq!(pool_len(), 1, "too large for the pool: freed");
    }
}
