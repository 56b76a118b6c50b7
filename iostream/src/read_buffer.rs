//! The read buffer: bytes received but not yet handed to a reader.
//!
//! Pure (no I/O). Bytes are consumed by moving a cursor; the live bytes are
//! moved to the front only when the free space at the end runs out, so a stream
//! that receives `n` bytes in small pieces copies each byte O(1) times, never
//! O(n²).

/// A growable byte buffer with a read cursor.
#[derive(Debug, Default)]
pub(crate) struct ReadBuffer {
    /// Storage; `buf[start..end]` is the unread data, `buf[end..]` free space.
    /// Always fully initialised, so reads go straight into it.
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
    pub(crate) fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.buf.len() - self.end < min {
            // Step 1. Reclaim the consumed prefix (copies only live bytes).
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            // Step 2. Grow geometrically if that was not enough.
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

    /// Releases memory a burst left behind, once the buffer is empty again.
    pub(crate) fn shrink(&mut self, keep: usize) {
        if self.is_empty() && self.buf.len() > keep.saturating_mul(4) {
            self.buf = Vec::new();
        }
    }

    /// Capacity currently allocated (for tests of the memory bound).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
