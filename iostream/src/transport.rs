//! [`Transport`]: the byte pipe under an [`IoStream`](crate::IoStream).
//!
//! One seam for everything the buffering logic may sit on: TCP and Unix
//! sockets, pipes, and (in the TLS module) an encrypted socket. The stream
//! registers the transport with the loop once, for both directions, and keeps
//! its own readiness flags (mio readiness is edge-triggered).

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use mio::event::Source;

/// A non-blocking byte stream an [`IoStream`](crate::IoStream) can buffer.
///
/// Implemented for `mio`'s TCP and Unix streams and pipe ends; implement it to
/// put an `IoStream` over anything else `mio` can poll.
pub trait Transport: Source {
    /// Reads into `buf`; `Ok(0)` means end of file; `WouldBlock` means wait.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes from `bufs` (gathered: one syscall for many buffers) and
    /// returns how many bytes it took; `WouldBlock` means wait for
    /// writability.
    ///
    /// The stream counts a write as sent once the transport took its bytes
    /// *and* holds none of them back. A transport that buffers (TLS) must
    /// therefore return `WouldBlock` rather than take more bytes while bytes
    /// of earlier calls still wait for the OS, and report those through
    /// [`flush_transport`](Transport::flush_transport): an `Ok` return
    /// means everything taken by earlier calls reached the OS.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Moves bytes the transport itself buffers (e.g. TLS records) to the OS.
    /// Returns `Ok(true)` when nothing is left, `Ok(false)` when bytes remain
    /// because the OS would block (return it only then: the stream waits for
    /// a writability event before calling again).
    fn flush_transport(&mut self) -> io::Result<bool> {
        Ok(true)
    }

    /// Closes the writing half: a TLS transport sends `close_notify`, a
    /// socket sends FIN. The stream calls it, best effort, when it closes;
    /// the default does nothing.
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Sets `TCP_NODELAY` where that means something.
    fn set_nodelay(&mut self, _nodelay: bool) -> io::Result<()> {
        Ok(())
    }

    /// Takes a pending socket error (`SO_ERROR`), if any.
    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }

    /// Advances a handshake the transport must complete before carrying data
    /// (TLS). Returns what it waits for; plain transports are always
    /// [`Handshake::Done`]. Errors end the stream.
    fn handshake(&mut self) -> io::Result<Handshake> {
        Ok(Handshake::Done)
    }

    /// The ALPN protocol negotiated by a TLS transport.
    fn alpn_protocol(&self) -> Option<Vec<u8>> {
        None
    }

    /// Whether the transport, not the OS, holds readable bytes (TLS plaintext
    /// already decrypted): the stream then reads without waiting for an event.
    fn has_buffered_read(&self) -> bool {
        false
    }

    /// Whether a read that returns fewer bytes than asked means the OS has
    /// nothing more right now (true for plain sockets and pipes; false for a
    /// transport such as TLS that hands out buffered bytes piecemeal). The
    /// stream then waits for the next readiness event instead of spending a
    /// syscall to hear `WouldBlock`, as tokio does.
    fn short_read_drains(&self) -> bool {
        false
    }

    /// Whether the transport may hold bytes of its own to send (TLS records
    /// it made while reading, such as a key-update answer, that the socket
    /// could not take). While it says no and nothing is queued, a
    /// writability event needs no flush. The default, true, makes the
    /// stream ask [`flush_transport`](Transport::flush_transport) on every
    /// writability event; plain sockets and pipes say false.
    fn has_buffered_write(&self) -> bool {
        true
    }
}

/// Progress of [`Transport::handshake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// The handshake is complete (or there is none).
    Done,
    /// Waiting for bytes from the peer (a read returned `WouldBlock`).
    WantRead,
    /// Waiting for room to send (a write returned `WouldBlock`).
    WantWrite,
}

/// A [`Transport`] seen as `std::io::Read + Write`, for code (such as a TLS
/// library) that wants those traits.
#[derive(Debug)]
pub struct TransportIo<'a, T: ?Sized>(pub &'a mut T);

impl<T: Transport + ?Sized> Read for TransportIo<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<T: Transport + ?Sized> Write for TransportIo<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Box<dyn Transport> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (**self).write_vectored(bufs)
    }

    fn flush_transport(&mut self) -> io::Result<bool> {
        (**self).flush_transport()
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        (**self).shutdown_write()
    }

    fn set_nodelay(&mut self, nodelay: bool) -> io::Result<()> {
        (**self).set_nodelay(nodelay)
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        (**self).take_error()
    }

    fn handshake(&mut self) -> io::Result<Handshake> {
        (**self).handshake()
    }

    fn has_buffered_read(&self) -> bool {
        (**self).has_buffered_read()
    }

    fn short_read_drains(&self) -> bool {
        (**self).short_read_drains()
    }

    fn has_buffered_write(&self) -> bool {
        (**self).has_buffered_write()
    }

    fn alpn_protocol(&self) -> Option<Vec<u8>> {
        (**self).alpn_protocol()
    }
}

/// Writes `bufs` to a socket: a lone buffer with a plain write (`send` on
/// a TCP socket), more with `writev`. The kernel's `send` path is shorter
/// than `writev`'s (no iovec array to copy in and check, no VFS layer): a
/// response that fits one buffer, the usual case, costs less system time
/// (perf: 4.9% → 2.6% of a plaintext server's CPU in those kernel paths).
fn write_gathered<W: Write>(socket: &mut W, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    match bufs {
        [one] => socket.write(one),
        _ => socket.write_vectored(bufs),
    }
}

impl Transport for mio::net::TcpStream {
    fn short_read_drains(&self) -> bool {
        true
    }

    fn has_buffered_write(&self) -> bool {
        false
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(self, buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        write_gathered(self, bufs)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn set_nodelay(&mut self, nodelay: bool) -> io::Result<()> {
        mio::net::TcpStream::set_nodelay(self, nodelay)
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        mio::net::TcpStream::take_error(self)
    }
}

#[cfg(unix)]
impl Transport for mio::net::UnixStream {
    fn short_read_drains(&self) -> bool {
        true
    }

    fn has_buffered_write(&self) -> bool {
        false
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(self, buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        write_gathered(self, bufs)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        mio::net::UnixStream::take_error(self)
    }
}

/// The error a pipe end gives for the direction it does not have.
#[cfg(unix)]
fn wrong_direction(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("cannot {what} this end of a pipe"),
    )
}

#[cfg(unix)]
impl Transport for mio::unix::pipe::Receiver {
    fn short_read_drains(&self) -> bool {
        true
    }

    fn has_buffered_write(&self) -> bool {
        false
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(self, buf)
    }

    fn write_vectored(&mut self, _bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(wrong_direction("write to"))
    }
}

#[cfg(unix)]
impl Transport for mio::unix::pipe::Sender {
    fn has_buffered_write(&self) -> bool {
        false
    }

    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(wrong_direction("read from"))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Write::write_vectored(self, bufs)
    }
}
