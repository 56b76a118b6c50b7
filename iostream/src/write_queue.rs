//! The write queue: buffers waiting to be written, oldest first.
//!
//! Pure (no I/O). The first buffer is held inline and only the ones behind
//! it go to a `VecDeque`: since small writes are copied onto the buffer
//! before them (see `IoStream::write`), a queue mostly holds one buffer, and
//! then it allocates nothing — an idle keep-alive connection keeps no queue
//! storage from its last response.

use std::collections::VecDeque;

use crate::stream::WriteBuf;

/// Buffers waiting to be written, oldest first.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    /// The oldest buffer; `None` only when the queue is empty.
    first: Option<WriteBuf>,
    /// The buffers after the first.
    rest: VecDeque<WriteBuf>,
}

impl WriteQueue {
    /// Whether no buffer is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Queues `buf` behind the others.
    pub(crate) fn push_back(&mut self, buf: WriteBuf) {
        if self.first.is_none() {
            self.first = Some(buf);
        } else {
            self.rest.push_back(buf);
        }
    }

    /// The oldest buffer.
    pub(crate) fn front(&self) -> Option<&WriteBuf> {
        self.first.as_ref()
    }

    /// The oldest buffer when it is the only one.
    pub(crate) fn only(&self) -> Option<&WriteBuf> {
        if self.rest.is_empty() {
            self.first.as_ref()
        } else {
            None
        }
    }

    /// The newest buffer.
    pub(crate) fn back_mut(&mut self) -> Option<&mut WriteBuf> {
        match self.rest.back_mut() {
            Some(last) => Some(last),
            None => self.first.as_mut(),
        }
    }

    /// Takes the oldest buffer out.
    pub(crate) fn pop_front(&mut self) -> Option<WriteBuf> {
        let front = self.first.take();
        self.first = self.rest.pop_front();
        front
    }

    /// The buffers, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &WriteBuf> {
        self.first.iter().chain(self.rest.iter())
    }

    /// Drops every buffer.
    pub(crate) fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue's bytes, buffer by buffer.
    fn contents(queue: &WriteQueue) -> Vec<Vec<u8>> {
        queue.iter().map(|buf| buf.as_bytes().to_vec()).collect()
    }

    #[test]
    fn buffers_leave_in_the_order_they_came() {
        let mut queue = WriteQueue::default();
        assert!(queue.is_empty() && queue.front().is_none() && queue.back_mut().is_none());
        for piece in [&b"a"[..], b"bb", b"ccc"] {
            queue.push_back(WriteBuf::from(piece.to_vec()));
        }
        assert_eq!(contents(&queue), [&b"a"[..], b"bb", b"ccc"]);
        assert_eq!(queue.back_mut().map(|b| b.len()), Some(3));
        assert_eq!(queue.pop_front().map(|b| b.len()), Some(1));
        assert_eq!(queue.front().map(|b| b.len()), Some(2));
        queue.push_back(WriteBuf::from(b"dddd".to_vec()));
        assert_eq!(contents(&queue), [&b"bb"[..], b"ccc", b"dddd"]);
        queue.clear();
        assert!(queue.is_empty() && queue.pop_front().is_none());
    }

    #[test]
    fn one_buffer_needs_no_storage() {
        let mut queue = WriteQueue::default();
        queue.push_back(WriteBuf::from(b"head".to_vec()));
        assert_eq!(queue.rest.capacity(), 0);
        assert_eq!(
            queue.back_mut().map(|b| b.len()),
            Some(4),
            "the first is the last"
        );
        assert!(queue.pop_front().is_some() && queue.is_empty());
    }
}
