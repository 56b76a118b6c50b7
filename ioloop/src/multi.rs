//! [`multi`]: await several futures together (Tornado's `gen.multi`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future that waits for every future in a list and yields their outputs in
/// the list's order; made by [`multi`].
#[must_use = "futures do nothing unless awaited"]
pub struct Multi<F: Future> {
    /// The futures still running (`Pending`) and the outputs of those done.
    slots: Vec<Slot<F>>,
    /// How many slots are still pending.
    remaining: usize,
}

/// One entry of a [`Multi`].
enum Slot<F: Future> {
    /// Still running (boxed so `Multi` is `Unpin` without `unsafe`).
    Pending(Pin<Box<F>>),
    /// Finished with this output.
    Done(F::Output),
    /// Output already handed out.
    Taken,
}

/// Runs every future in `futures` concurrently on the current task and yields
/// all their outputs, in the order given. Tornado: `gen.multi` (and
/// `yield [f1, f2]`).
///
/// Each wake polls every unfinished future, so this suits tens or hundreds of
/// futures; for thousands, [`spawn`](crate::spawn) each and await the handles.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use whirl_ioloop::{multi, sleep, IoLoop};
///
/// let outputs = IoLoop::new().run_sync(multi((1..=3).map(|i| async move {
///     sleep(Duration::from_millis(10 * (4 - i))).await;
///     i
/// })));
/// assert_eq!(outputs, vec![1, 2, 3]);
/// ```
pub fn multi<I>(futures: I) -> Multi<I::Item>
where
    I: IntoIterator,
    I::Item: Future,
{
    let slots: Vec<_> = futures
        .into_iter()
        .map(|f| Slot::Pending(Box::pin(f)))
        .collect();
    Multi {
        remaining: slots.len(),
        slots,
    }
}

// Futures are boxed and outputs are never pinned, so moving a `Multi` is fine.
impl<F: Future> Unpin for Multi<F> {}

impl<F: Future> Future for Multi<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        for slot in this.slots.iter_mut() {
            if let Slot::Pending(future) = slot {
                if let Poll::Ready(output) = future.as_mut().poll(cx) {
                    *slot = Slot::Done(output);
                    this.remaining -= 1;
                }
            }
        }
        if this.remaining > 0 {
            return Poll::Pending;
        }
        let outputs = this
            .slots
            .iter_mut()
            .filter_map(|slot| match std::mem::replace(slot, Slot::Taken) {
                Slot::Done(output) => Some(output),
                _ => None,
            })
            .collect();
        Poll::Ready(outputs)
    }
}

impl<F: Future> fmt::Debug for Multi<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multi")
            .field("len", &self.slots.len())
            .field("remaining", &self.remaining)
            .finish()
    }
}
