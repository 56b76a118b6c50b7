//! A bounded, one-way pipe of body pieces: the proxy's `data_received`
//! writes the client's body into it as it arrives, and the upstream
//! request's body producer reads it out — so a large body crosses the proxy
//! a few pieces at a time, never whole.
//!
//! Both ends live on the loop thread. Either end can go away: a writer
//! dropped without [`PipeWriter::finish`] is an aborted body (the reader
//! fails, so a cut upload is never forwarded as if it were complete), and a
//! reader dropped (the upstream request failed) makes further writes fail
//! at once instead of waiting forever for room.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// How much the pipe holds before a writer waits: four of the server's
/// 64 KiB read chunks.
pub const PIPE_LIMIT: usize = 256 * 1024;

/// The body was cut short: its writer went away without finishing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aborted;

/// Nobody reads the pipe any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderGone;

/// A new pipe's two ends.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let shared = Rc::new(RefCell::new(Shared::default()));
    (
        PipeWriter {
            shared: shared.clone(),
            finished: false,
        },
        PipeReader { shared },
    )
}

/// What both ends share.
#[derive(Debug, Default)]
struct Shared {
    /// Pieces written and not yet read, oldest first.
    pieces: VecDeque<Vec<u8>>,
    /// Total bytes in `pieces`.
    buffered: usize,
    /// How the writer ended, once it did: `Some(true)` finished,
    /// `Some(false)` dropped without finishing.
    writer_end: Option<bool>,
    /// Whether the reader was dropped.
    reader_gone: bool,
    /// The reader waiting for a piece.
    reader_waker: Option<Waker>,
    /// The writer waiting for room.
    writer_waker: Option<Waker>,
}

/// The writing end.
#[derive(Debug)]
pub struct PipeWriter {
    /// The pipe.
    shared: Rc<RefCell<Shared>>,
    /// Whether [`finish`](Self::finish) ran (else dropping aborts).
    finished: bool,
}

impl PipeWriter {
    /// Adds `piece`, waiting while the pipe holds [`PIPE_LIMIT`] bytes or
    /// more (this is what slows a client down to the upstream's pace).
    ///
    /// # Errors
    ///
    /// [`ReaderGone`] when the reader was dropped (the piece is discarded).
    pub async fn write(&self, piece: Vec<u8>) -> Result<(), ReaderGone> {
        let mut piece = Some(piece);
        poll_fn(|task| {
            let mut shared = self.shared.borrow_mut();
            if shared.reader_gone {
                return Poll::Ready(Err(ReaderGone));
            }
            if shared.buffered >= PIPE_LIMIT {
                shared.writer_waker = Some(task.waker().clone());
                return Poll::Pending;
            }
            let piece = piece.take().unwrap_or_default();
            shared.buffered += piece.len();
            shared.pieces.push_back(piece);
            let reader = shared.reader_waker.take();
            drop(shared);
            if let Some(waker) = reader {
                waker.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Ends the body: the reader gets `None` once it has read every piece.
    pub fn finish(mut self) {
        self.finished = true;
        // `drop` records the end and wakes the reader.
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let reader = {
            let mut shared = self.shared.borrow_mut();
            shared.writer_end = Some(self.finished);
            shared.reader_waker.take()
        };
        if let Some(waker) = reader {
            waker.wake();
        }
    }
}

/// The reading end.
#[derive(Debug)]
pub struct PipeReader {
    /// The pipe.
    shared: Rc<RefCell<Shared>>,
}

impl PipeReader {
    /// The next piece, or `None` once the body is complete.
    ///
    /// # Errors
    ///
    /// [`Aborted`] when the writer went away without finishing.
    pub async fn read(&self) -> Result<Option<Vec<u8>>, Aborted> {
        poll_fn(|task| {
            let mut shared = self.shared.borrow_mut();
            if let Some(piece) = shared.pieces.pop_front() {
                shared.buffered -= piece.len();
                let writer = shared.writer_waker.take();
                drop(shared);
                if let Some(waker) = writer {
                    waker.wake();
                }
                return Poll::Ready(Ok(Some(piece)));
            }
            match shared.writer_end {
                Some(true) => Poll::Ready(Ok(None)),
                Some(false) => Poll::Ready(Err(Aborted)),
                None => {
                    shared.reader_waker = Some(task.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let writer = {
            let mut shared = self.shared.borrow_mut();
            shared.reader_gone = true;
            shared.pieces.clear();
            shared.buffered = 0;
            shared.writer_waker.take()
        };
        if let Some(waker) = writer {
            waker.wake();
        }
    }
}
