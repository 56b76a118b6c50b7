//! Errors of the stream layer.

use std::fmt;
use std::io;
use std::rc::Rc;

/// Why a stream closed: the cause carried by [`StreamClosed`].
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`IoStream::close`](crate::IoStream::close) was called.
    Local,
    /// The peer closed the connection (end of file).
    Eof,
    /// An I/O error on the socket (connection reset, broken pipe, …).
    Io(io::Error),
    /// A deadline passed (a connect, read or idle timeout).
    Timeout,
    /// The TLS layer failed (handshake, certificate, protocol).
    Tls(String),
    /// A read could not be satisfied within its `max_bytes`.
    UnsatisfiableRead {
        /// The limit that was exceeded.
        max_bytes: usize,
    },
    /// The peer sent more than `max_buffer_size` bytes nobody read.
    BufferFull {
        /// The configured limit.
        max_buffer_size: usize,
    },
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Local => write!(f, "the stream was closed locally"),
            CloseReason::Eof => write!(f, "the peer closed the connection"),
            CloseReason::Io(e) => write!(f, "I/O error: {e}"),
            CloseReason::Timeout => write!(f, "the operation timed out"),
            CloseReason::Tls(e) => write!(f, "TLS error: {e}"),
            CloseReason::UnsatisfiableRead { max_bytes } => {
                write!(f, "the delimiter was not found within {max_bytes} bytes")
            }
            CloseReason::BufferFull { max_buffer_size } => {
                write!(
                    f,
                    "the peer sent more than the {max_buffer_size}-byte read buffer holds"
                )
            }
        }
    }
}

impl std::error::Error for CloseReason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CloseReason::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// The stream is closed; [`source`](std::error::Error::source) is the
/// [`CloseReason`]. Tornado: `StreamClosedError` (its `real_error`).
#[derive(Debug, Clone)]
pub struct StreamClosed {
    /// Why it closed (shared by every operation that fails because of it).
    reason: Rc<CloseReason>,
}

impl StreamClosed {
    pub(crate) fn new(reason: Rc<CloseReason>) -> Self {
        StreamClosed { reason }
    }

    /// Why the stream closed.
    pub fn reason(&self) -> &CloseReason {
        &self.reason
    }
}

impl fmt::Display for StreamClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the stream is closed ({})", self.reason)
    }
}

impl std::error::Error for StreamClosed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.reason)
    }
}

/// The error of a stream operation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StreamError {
    /// The stream is closed (or closed while the operation waited).
    Closed(StreamClosed),
    /// `max_bytes` passed without the delimiter or pattern; the stream was
    /// closed. Tornado: `UnsatisfiableReadError`.
    UnsatisfiableRead {
        /// The limit given to the read.
        max_bytes: usize,
    },
    /// The peer sent more than `max_buffer_size` unread bytes; the stream was
    /// closed. Tornado: `StreamBufferFullError`.
    BufferFull {
        /// The stream's limit.
        max_buffer_size: usize,
    },
    /// A read was started while another was pending (one read at a time, as in
    /// Tornado: "Already reading").
    AlreadyReading,
    /// The stream is not idle: a read is pending, or unread bytes or unsent
    /// writes remain, so its transport cannot be replaced (they belong to the
    /// old protocol). Tornado's `start_tls` raises `ValueError` for this.
    NotIdle,
}

impl StreamError {
    /// The close that caused this error, if it is [`StreamError::Closed`].
    pub fn as_closed(&self) -> Option<&StreamClosed> {
        match self {
            StreamError::Closed(closed) => Some(closed),
            _ => None,
        }
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Closed(closed) => closed.fmt(f),
            StreamError::UnsatisfiableRead { max_bytes } => {
                write!(f, "the delimiter was not found within {max_bytes} bytes")
            }
            StreamError::BufferFull { max_buffer_size } => {
                write!(
                    f,
                    "the peer sent more than the {max_buffer_size}-byte read buffer holds"
                )
            }
            StreamError::AlreadyReading => {
                write!(f, "another read is already pending on this stream")
            }
            StreamError::NotIdle => write!(
                f,
                "the stream is not idle: a read is pending, or unread bytes or unsent writes remain"
            ),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Closed(closed) => Some(closed),
            _ => None,
        }
    }
}

impl From<StreamClosed> for StreamError {
    fn from(closed: StreamClosed) -> Self {
        StreamError::Closed(closed)
    }
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> io::Error {
        let kind = match &e {
            StreamError::Closed(c) => match c.reason() {
                CloseReason::Eof => io::ErrorKind::UnexpectedEof,
                CloseReason::Timeout => io::ErrorKind::TimedOut,
                CloseReason::Io(e) => e.kind(),
                _ => io::ErrorKind::NotConnected,
            },
            StreamError::UnsatisfiableRead { .. } | StreamError::BufferFull { .. } => {
                io::ErrorKind::InvalidData
            }
            StreamError::AlreadyReading => io::ErrorKind::WouldBlock,
            StreamError::NotIdle => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e.to_string())
    }
}
