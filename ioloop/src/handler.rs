//! fd handlers: the types behind [`IoLoop::add_handler`](crate::IoLoop::add_handler).
//!
//! A handler is a callback registered for a `mio` event source. Its id is packed
//! into the `mio::Token` together with a generation count, so an event that was
//! already in the batch returned by `poll` when its handler was removed (and its
//! slot perhaps reused) is recognised as stale and dropped.

use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use mio::Token;

/// Token reserved for the loop's own [`mio::Waker`].
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// Bits of a token that hold the slab key; the rest hold the generation.
const KEY_BITS: u32 = usize::BITS / 2;
/// Mask selecting the key bits.
const KEY_MASK: usize = (1 << KEY_BITS) - 1;

/// Identifies a handler registered with
/// [`IoLoop::add_handler`](crate::IoLoop::add_handler); pass it to
/// [`update_handler`](crate::IoLoop::update_handler) and
/// [`remove_handler`](crate::IoLoop::remove_handler).
///
/// Tornado identifies handlers by their file descriptor; a `mio` source has no
/// portable descriptor, so whirl hands out an id instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandlerId {
    /// Slab key of the handler.
    pub(crate) key: usize,
    /// Generation of the slot when the handler was added.
    pub(crate) generation: usize,
}

impl HandlerId {
    /// The `mio` token events for this handler carry.
    pub(crate) fn token(self) -> Token {
        Token((self.generation << KEY_BITS) | self.key)
    }

    /// The id a token names (which may be stale).
    pub(crate) fn from_token(token: Token) -> HandlerId {
        HandlerId {
            key: token.0 & KEY_MASK,
            generation: token.0 >> KEY_BITS,
        }
    }

    /// Whether `key` fits in a token next to a generation.
    pub(crate) fn key_fits(key: usize) -> bool {
        key < KEY_MASK // KEY_MASK itself would collide with WAKER_TOKEN
    }

    /// Generations wrap within the bits a token leaves them.
    pub(crate) fn next_generation(generation: usize) -> usize {
        generation.wrapping_add(1) & (usize::MAX >> KEY_BITS)
    }
}

/// The readiness an fd handler is called with: a copy of the flags of one
/// [`mio::event::Event`].
///
/// Readiness is edge-triggered (as `mio` is): a handler told its source is
/// readable must read until `WouldBlock`, or it may not be told again. Tornado
/// passes an `events` bit mask (`IOLoop.READ | IOLoop.WRITE | IOLoop.ERROR`).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready {
    /// Bit set of the `*_BIT` flags below.
    bits: u8,
}

const READABLE_BIT: u8 = 1;
const WRITABLE_BIT: u8 = 1 << 1;
const ERROR_BIT: u8 = 1 << 2;
const READ_CLOSED_BIT: u8 = 1 << 3;
const WRITE_CLOSED_BIT: u8 = 1 << 4;
const PRIORITY_BIT: u8 = 1 << 5;

impl Ready {
    /// Copies the flags of a `mio` event.
    pub fn from_event(event: &mio::event::Event) -> Ready {
        let flags = [
            (event.is_readable(), READABLE_BIT),
            (event.is_writable(), WRITABLE_BIT),
            (event.is_error(), ERROR_BIT),
            (event.is_read_closed(), READ_CLOSED_BIT),
            (event.is_write_closed(), WRITE_CLOSED_BIT),
            (event.is_priority(), PRIORITY_BIT),
        ];
        let bits = flags
            .iter()
            .filter(|(set, _)| *set)
            .fold(0, |bits, (_, bit)| bits | bit);
        Ready { bits }
    }

    /// The source has bytes to read (or a connection to accept).
    pub fn is_readable(self) -> bool {
        self.bits & READABLE_BIT != 0
    }

    /// The source can take more bytes.
    pub fn is_writable(self) -> bool {
        self.bits & WRITABLE_BIT != 0
    }

    /// The source reported an error; read it with `take_error` on the socket.
    pub fn is_error(self) -> bool {
        self.bits & ERROR_BIT != 0
    }

    /// The peer closed its writing half (a read will return EOF).
    pub fn is_read_closed(self) -> bool {
        self.bits & READ_CLOSED_BIT != 0
    }

    /// The writing half is closed (writes will fail).
    pub fn is_write_closed(self) -> bool {
        self.bits & WRITE_CLOSED_BIT != 0
    }

    /// Out-of-band or priority data is ready.
    pub fn is_priority(self) -> bool {
        self.bits & PRIORITY_BIT != 0
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.is_readable(), "READABLE"),
            (self.is_writable(), "WRITABLE"),
            (self.is_error(), "ERROR"),
            (self.is_read_closed(), "READ_CLOSED"),
            (self.is_write_closed(), "WRITE_CLOSED"),
            (self.is_priority(), "PRIORITY"),
        ];
        let mut first = true;
        write!(f, "Ready(")?;
        for (_, name) in names.iter().filter(|(set, _)| *set) {
            if !first {
                write!(f, " | ")?;
            }
            write!(f, "{name}")?;
            first = false;
        }
        write!(f, ")")
    }
}

/// A handler's callback, shared so the loop can call it without holding a
/// borrow of the handler table (the callback may add or remove handlers).
pub(crate) type HandlerFn = Rc<RefCell<dyn FnMut(Ready)>>;

/// One registered handler.
pub(crate) struct HandlerSlot {
    /// Generation this slot had when the handler was added.
    pub(crate) generation: usize,
    /// The callback.
    pub(crate) callback: HandlerFn,
    /// Where `add_handler` was called (for the blocking detector).
    pub(crate) site: &'static Location<'static>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip() {
        let id = HandlerId {
            key: 12345,
            generation: 77,
        };
        assert_eq!(HandlerId::from_token(id.token()), id);
    }

    #[test]
    fn generations_wrap_inside_their_bits() {
        let max = usize::MAX >> KEY_BITS;
        assert_eq!(HandlerId::next_generation(max), 0);
        let id = HandlerId {
            key: 3,
            generation: max,
        };
        assert_eq!(HandlerId::from_token(id.token()), id);
        assert_ne!(id.token(), WAKER_TOKEN);
    }

    #[test]
    fn ready_debug_lists_flags() {
        let r = Ready {
            bits: READABLE_BIT | READ_CLOSED_BIT,
        };
        assert_eq!(format!("{r:?}"), "Ready(READABLE | READ_CLOSED)");
        assert!(r.is_readable() && r.is_read_closed() && !r.is_writable());
    }
}
