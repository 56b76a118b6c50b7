//! [`IoStream`]: an async buffered stream over a [`Transport`] (Tornado's
//! `IOStream`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use memchr::memmem;
use whirl_ioloop::{HandlerId, Interest, IoLoop, Ready};

use crate::error::{CloseReason, StreamClosed, StreamError};
use crate::read_buffer::ReadBuffer;
use crate::transport::{Handshake, Transport};
use crate::write_queue::WriteQueue;

/// Default for [`StreamOptions::max_buffer_size`]: 100 MiB (Tornado's default).
pub const DEFAULT_MAX_BUFFER_SIZE: usize = 100 * 1024 * 1024;
/// Default for [`StreamOptions::read_chunk_size`]: 64 KiB (Tornado's default).
pub const DEFAULT_READ_CHUNK_SIZE: usize = 64 * 1024;
/// Most buffers handed to one `write_vectored` call (below every OS's `IOV_MAX`).
const MAX_IOVECS: usize = 64;

/// Limits of an [`IoStream`]; Tornado's `IOStream(max_buffer_size=…,
/// read_chunk_size=…)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Most unread bytes the stream holds; a peer that sends more while a read
    /// waits makes it fail with [`StreamError::BufferFull`].
    pub max_buffer_size: usize,
    /// Bytes asked of the OS per `read` call.
    pub read_chunk_size: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_buffer_size: DEFAULT_MAX_BUFFER_SIZE,
            read_chunk_size: DEFAULT_READ_CHUNK_SIZE,
        }
    }
}

impl StreamOptions {
    /// Sets the most unread bytes held. Default is 100 MiB.
    pub fn max_buffer_size(mut self, bytes: usize) -> Self {
        self.max_buffer_size = bytes.max(1);
        self
    }

    /// Sets the bytes asked of the OS per read. Default is 64 KiB.
    pub fn read_chunk_size(mut self, bytes: usize) -> Self {
        self.read_chunk_size = bytes.max(1);
        self
    }
}

/// Bytes queued for writing: owned bytes are moved in, never copied.
///
/// Made from `Vec<u8>`, `String`, `Box<[u8]>`, `&'static [u8]` and
/// `&'static str`; copy a borrowed slice with `.to_vec()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBuf(Cow<'static, [u8]>);

impl WriteBuf {
    /// The bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends the bytes to `buf`; owned ones leave their buffer to this
    /// thread's spares (see [`spare_write_buffer`]). For a small piece that
    /// should leave in one buffer with what comes before it.
    pub fn append_to(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.0);
        self.recycle();
    }
}

/// Most spare write buffers one thread keeps.
const SPARE_BUFFERS: usize = 256;
/// Largest write copied onto the end of the buffer queued before it.
const COALESCE_MAX: usize = 4096;
/// Largest a queued buffer grows by copies onto its end.
const COALESCED_MAX: usize = 64 * 1024;
/// Capacities of the buffers kept: a response head, a small body. Larger
/// buffers are freed once written (the spares' memory stays under 1 MiB
/// per thread).
const SPARE_CAPACITY: std::ops::RangeInclusive<usize> = 64..=4096;

thread_local! {
    /// This thread's spare write buffers: owned buffers that were written
    /// out, emptied, each with a capacity in `SPARE_CAPACITY`.
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for `capacity` bytes, for building bytes to
/// hand to [`IoStream::write`]: a buffer that an earlier write on this
/// thread sent and gave back when one is spare, so a response head built
/// per request costs no allocation. Once written, any owned buffer of up to
/// 4 KiB goes back to the spares; larger ones are freed.
pub fn spare_write_buffer(capacity: usize) -> Vec<u8> {
    let mut buf = SPARE
        .try_with(|spare| spare.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default();
    buf.reserve(capacity);
    buf
}

impl WriteBuf {
    /// Gives an owned buffer to this thread's spares, once it was written.
    fn recycle(self) {
        if let Cow::Owned(mut buf) = self.0 {
            if SPARE_CAPACITY.contains(&buf.capacity()) {
                buf.clear();
                let _ = SPARE.try_with(move |spare| {
                    let mut spare = spare.borrow_mut();
                    if spare.len() < SPARE_BUFFERS {
                        spare.push(buf);
                    }
                });
            }
        }
    }
}

impl From<Vec<u8>> for WriteBuf {
    fn from(v: Vec<u8>) -> Self {
        WriteBuf(Cow::Owned(v))
    }
}

impl From<String> for WriteBuf {
    fn from(s: String) -> Self {
        WriteBuf(Cow::Owned(s.into_bytes()))
    }
}

impl From<Box<[u8]>> for WriteBuf {
    fn from(b: Box<[u8]>) -> Self {
        WriteBuf(Cow::Owned(b.into_vec()))
    }
}

impl From<&'static [u8]> for WriteBuf {
    fn from(b: &'static [u8]) -> Self {
        WriteBuf(Cow::Borrowed(b))
    }
}

impl<const N: usize> From<&'static [u8; N]> for WriteBuf {
    fn from(b: &'static [u8; N]) -> Self {
        WriteBuf(Cow::Borrowed(b))
    }
}

impl From<&'static str> for WriteBuf {
    fn from(s: &'static str) -> Self {
        WriteBuf(Cow::Borrowed(s.as_bytes()))
    }
}

/// An async buffered stream: Tornado's `IOStream`, over any [`Transport`].
///
/// Reads (`read_until`, `read_bytes`, …) are futures served from the read
/// buffer first and from the socket only when the buffer cannot satisfy them;
/// one read may be pending at a time. Writes queue their bytes at once and
/// return a future that resolves when *those* bytes reached the kernel;
/// writes made in one burst go out together in one `write_vectored`.
///
/// `IoStream` is a handle: clones share the stream, so one task can read
/// while another writes. The socket closes when [`close`](IoStream::close) is
/// called, on EOF or error, or when the last handle is dropped — then only
/// after the writes already queued are sent (a write nobody awaits is not
/// lost), unless the stream closes first. Like the loop it runs on, it is
/// `!Send`. A [`WeakIoStream`] refers to a stream without keeping it open.
///
/// # Examples
///
/// ```
/// use whirl_ioloop::IoLoop;
/// use whirl_iostream::IoStream;
///
/// let io_loop = IoLoop::new();
/// io_loop.run_sync(async {
///     let (a, b) = mio::net::UnixStream::pair().unwrap();
///     let (a, b) = (IoStream::new(a).unwrap(), IoStream::new(b).unwrap());
///     a.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
///     let head = b.read_until(b"\r\n\r\n", 64 * 1024).await.unwrap();
///     assert!(head.starts_with(b"GET / "));
/// });
/// ```
#[derive(Clone)]
pub struct IoStream {
    /// The stream's state, shared with its fd handler (weakly) and futures.
    state: Rc<RefCell<State>>,
}

/// Everything one stream holds.
struct State {
    /// The byte pipe; `None` once closed.
    transport: Option<Box<dyn Transport>>,
    /// The loop the transport is registered with.
    io_loop: IoLoop,
    /// Our fd handler, while registered.
    handler: Option<HandlerId>,
    /// Edge-triggered readiness: true until a read returns `WouldBlock`.
    read_ready: bool,
    /// The peer's end-of-file was signalled (read-closed readiness): a short
    /// read then must not clear `read_ready`, or the EOF would never be read.
    peer_read_closed: bool,
    /// Whether the peer's end of file closes the stream even with no read
    /// pending (see `IoStream::set_close_on_peer_shutdown`).
    close_on_peer_shutdown: bool,
    /// Edge-triggered readiness: true until a write returns `WouldBlock`.
    write_ready: bool,
    /// Received bytes not yet handed to a reader.
    read_buf: ReadBuffer,
    /// Where the next delimiter search starts (bytes before it were searched).
    scan_from: usize,
    /// True while a read future is pending.
    reading: bool,
    /// The pending read's waker.
    read_waker: Option<Waker>,
    /// Bytes waiting to be written, oldest first.
    write_queue: WriteQueue,
    /// Bytes of the front buffer already written.
    front_written: usize,
    /// Total bytes ever queued.
    queued_total: u64,
    /// Total bytes ever handed to the transport (taken by `write_vectored`).
    written_total: u64,
    /// Total bytes known to have reached the OS: `written_total` as of the
    /// last moment the transport held none back (see
    /// `Transport::write_vectored`). Write futures resolve against it.
    flushed_total: u64,
    /// True while the transport holds bytes back (TLS records the socket
    /// could not take), as its last `flush_transport` said.
    transport_pending: bool,
    /// The state itself, while bytes wait to be written (queued, or held by
    /// the transport): the stream outlives its last handle until they are
    /// sent or it closes. When taken it goes into `Wakeups::release`, so it
    /// is never the last reference dropped while the state is borrowed.
    keepalive: Option<Rc<RefCell<State>>>,
    /// Wakers of write futures: `(flushed_total that completes it, waker)`.
    write_wakers: Vec<(u64, Waker)>,
    /// True while a flush callback is scheduled on the loop.
    flush_scheduled: bool,
    /// The flush callback, made on the first write and queued again for
    /// every later one without an allocation.
    flush_callback: Option<Rc<dyn Fn()>>,
    /// Wakers of tasks waiting for any readiness (connecting, handshaking).
    io_wakers: Vec<Waker>,
    /// Why the stream closed, once it did.
    closed: Option<Rc<CloseReason>>,
    /// Runs (on the loop) once the stream closes.
    close_callback: Option<Box<dyn FnOnce()>>,
    /// Limits.
    options: StreamOptions,
}

/// What to do once the state is no longer borrowed: wakers to call and the
/// keep-alive reference to drop (dropping it may free the state, which must
/// not happen while the state is borrowed). Handed to [`wake_all`].
#[derive(Default)]
struct Wakeups {
    /// The first waker to call, kept inline: most events wake one reader
    /// or one writer, and this spares that allocation.
    first: Option<Waker>,
    /// Any further wakers.
    rest: Vec<Waker>,
    /// `State::keepalive`, taken because nothing is left to send.
    release: Option<Rc<RefCell<State>>>,
}

impl Wakeups {
    /// Adds a waker.
    fn push(&mut self, waker: Waker) {
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.rest.push(waker);
        }
    }

    /// Adds everything `other` holds.
    fn absorb(&mut self, other: Wakeups) {
        self.extend(other.first.into_iter().chain(other.rest));
        if let Some(rc) = other.release {
            // Were both set, both point at the same state: dropping one
            // here is never dropping the last reference.
            self.release = Some(rc);
        }
    }
}

impl Extend<Waker> for Wakeups {
    fn extend<I: IntoIterator<Item = Waker>>(&mut self, wakers: I) {
        for waker in wakers {
            self.push(waker);
        }
    }
}

/// What one attempt to read from the transport gave.
enum Fill {
    /// Bytes arrived.
    Data,
    /// Nothing now; wait for readiness.
    WouldBlock,
    /// The stream closed (EOF, error, or no transport); `closed` is set.
    Closed(Wakeups),
}

impl IoStream {
    /// Wraps a connected, non-blocking transport, registering it with the
    /// current loop. Tornado: `IOStream(socket)`.
    ///
    /// # Errors
    ///
    /// The error of registering the transport with the loop.
    pub fn new(transport: impl Transport + 'static) -> io::Result<IoStream> {
        IoStream::with_options(transport, StreamOptions::default())
    }

    /// Like [`IoStream::new`], with limits.
    ///
    /// # Errors
    ///
    /// The error of registering the transport with the loop.
    pub fn with_options(
        transport: impl Transport + 'static,
        options: StreamOptions,
    ) -> io::Result<IoStream> {
        IoStream::from_boxed(Box::new(transport), options)
    }

    /// Wraps an already boxed transport.
    ///
    /// # Errors
    ///
    /// The error of registering the transport with the loop.
    pub fn from_boxed(
        mut transport: Box<dyn Transport>,
        options: StreamOptions,
    ) -> io::Result<IoStream> {
        let io_loop = IoLoop::current();
        let state = Rc::new(RefCell::new(State::new(io_loop.clone(), options)));
        // Register once for both directions; readiness is tracked in flags, so
        // the interest never needs to change.
        let id = io_loop.add_handler(
            &mut *transport,
            Interest::READABLE | Interest::WRITABLE,
            stream_handler(&state),
        )?;
        {
            let mut s = state.borrow_mut();
            s.transport = Some(transport);
            s.handler = Some(id);
        }
        Ok(IoStream { state })
    }

    /// Connects to `addr` over TCP without blocking the loop.
    ///
    /// # Errors
    ///
    /// The connect error (refused, unreachable, …).
    pub async fn connect(addr: SocketAddr) -> io::Result<IoStream> {
        IoStream::from_connecting(
            mio::net::TcpStream::connect(addr)?,
            StreamOptions::default(),
        )
        .await
    }

    /// Wraps a TCP socket whose non-blocking `connect` is under way (made with
    /// `socket2`, e.g. bound to a source address first) and waits until the
    /// connection is established. [`TcpClient`](crate::TcpClient) uses it;
    /// dropping the future closes the socket.
    ///
    /// # Errors
    ///
    /// The error of registering the socket with the loop, or the connect error
    /// (refused, unreachable, …) as the OS reported it.
    pub async fn from_connecting(
        socket: mio::net::TcpStream,
        options: StreamOptions,
    ) -> io::Result<IoStream> {
        let stream = IoStream::with_options(socket, options)?;
        stream.wait_connected().await?;
        Ok(stream)
    }

    /// Waits until a connecting socket is writable, then reports its error.
    async fn wait_connected(&self) -> io::Result<()> {
        poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            if let Some(reason) = &s.closed {
                // An error event may have closed it already (the socket was
                // read to notice): report the connect error all the same.
                return Poll::Ready(Err(match &**reason {
                    CloseReason::Io(e) => copy_io_error(e),
                    other => io::Error::new(io::ErrorKind::NotConnected, other.to_string()),
                }));
            }
            if s.write_ready {
                return Poll::Ready(Ok(()));
            }
            s.io_wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await?;
        let mut s = self.state.borrow_mut();
        let Some(transport) = s.transport.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the stream closed while connecting",
            ));
        };
        if let Some(e) = transport.take_error()? {
            // The caller gets the OS error itself; the close reason a copy.
            let wakeups = s.close_with(CloseReason::Io(copy_io_error(&e)));
            drop(s);
            wake_all(wakeups);
            return Err(e);
        }
        Ok(())
    }
}

/// A copy of an I/O error (`io::Error` is not `Clone`): the same OS error,
/// or the same kind and message.
fn copy_io_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

// ----- handshakes (TLS) -----------------------------------------------------

impl IoStream {
    /// Drives the transport's handshake (see [`Transport::handshake`]) to the
    /// end. Plain transports have none and return at once.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] with reason [`CloseReason::Tls`] (the stream is
    /// closed) if the handshake fails, or the reason the stream closed.
    pub async fn handshake(&self) -> Result<(), StreamError> {
        poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            if let Some(reason) = &s.closed {
                return Poll::Ready(Err(StreamClosed::new(reason.clone()).into()));
            }
            let Some(transport) = s.transport.as_mut() else {
                // Lost to a panicking `replace_transport` wrap: closed.
                let wakeups = s.close_with(CloseReason::Local);
                let reason = s
                    .closed
                    .clone()
                    .unwrap_or_else(|| Rc::new(CloseReason::Local));
                drop(s);
                wake_all(wakeups);
                return Poll::Ready(Err(StreamClosed::new(reason).into()));
            };
            let step = transport.handshake();
            match step {
                Ok(Handshake::Done) => Poll::Ready(Ok(())),
                Ok(Handshake::WantRead) => {
                    s.read_ready = false;
                    s.io_wakers.push(cx.waker().clone());
                    Poll::Pending
                }
                Ok(Handshake::WantWrite) => {
                    s.write_ready = false;
                    s.io_wakers.push(cx.waker().clone());
                    Poll::Pending
                }
                Err(e) => {
                    let reason = match e.kind() {
                        io::ErrorKind::UnexpectedEof => CloseReason::Eof,
                        io::ErrorKind::InvalidData | io::ErrorKind::Other => {
                            CloseReason::Tls(e.to_string())
                        }
                        _ => CloseReason::Io(e),
                    };
                    let wakeups = s.close_with(reason);
                    let closed = s.closed.clone();
                    drop(s);
                    wake_all(wakeups);
                    match closed {
                        Some(reason) => Poll::Ready(Err(StreamClosed::new(reason).into())),
                        None => Poll::Ready(Ok(())),
                    }
                }
            }
        })
        .await
    }

    /// Swaps the transport for `wrap(old)` — e.g. a TLS layer over the plain
    /// socket (STARTTLS). The registration with the loop stays (the new
    /// transport must poll the same source). Tornado: `IOStream.start_tls`.
    ///
    /// `wrap` runs with the stream unborrowed, so it may use the stream.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream is closed (or `wrap` closed it);
    /// [`StreamError::NotIdle`] if a read is pending or unread bytes or
    /// unsent writes remain (they belong to the old protocol).
    ///
    /// # Panics
    ///
    /// If `wrap` panics; the old transport is then lost and the stream closed
    /// (reason [`CloseReason::Local`]).
    pub fn replace_transport(
        &self,
        wrap: impl FnOnce(Box<dyn Transport>) -> Box<dyn Transport>,
    ) -> Result<(), StreamError> {
        // Step 1. Check the stream is idle and take the old transport out.
        let old = {
            let mut s = self.state.borrow_mut();
            if let Some(reason) = &s.closed {
                return Err(StreamClosed::new(reason.clone()).into());
            }
            if s.reading || !s.read_buf.is_empty() || s.unsent() > 0 || s.transport_pending {
                return Err(StreamError::NotIdle);
            }
            s.transport.take()
        };
        let Some(old) = old else {
            // Another `wrap` is running (this call comes from inside it).
            return Err(StreamError::NotIdle);
        };
        // Step 2. Wrap it with the state unborrowed; a panic closes the
        // stream on its way out.
        let mut guard = CloseOnUnwind {
            state: &self.state,
            armed: true,
        };
        let new = wrap(old);
        guard.armed = false;
        // Step 3. Put the new transport in, unless `wrap` closed the stream
        // (then the handler is still registered: remove it with the new one).
        let mut s = self.state.borrow_mut();
        s.transport = Some(new);
        if let Some(reason) = s.closed.clone() {
            s.unregister();
            s.transport = None;
            return Err(StreamClosed::new(reason).into());
        }
        Ok(())
    }
}

// ----- reads -----------------------------------------------------------------

impl IoStream {
    /// Reads up to and including `delimiter`. Tornado: `read_until`.
    ///
    /// # Errors
    ///
    /// [`StreamError::UnsatisfiableRead`] if `max_bytes` pass without the
    /// delimiter (the stream is closed); [`StreamError::Closed`] if the stream
    /// closes first; [`StreamError::BufferFull`]; [`StreamError::AlreadyReading`].
    pub async fn read_until(
        &self,
        delimiter: &[u8],
        max_bytes: usize,
    ) -> Result<Vec<u8>, StreamError> {
        let finder = memmem::Finder::new(delimiter);
        self.read_with(|s| s.take_until(&finder, max_bytes)).await
    }

    /// Reads up to and including the first match of `regex`. Tornado:
    /// `read_until_regex`.
    ///
    /// # Errors
    ///
    /// As [`read_until`](IoStream::read_until).
    pub async fn read_until_regex(
        &self,
        regex: &regex::bytes::Regex,
        max_bytes: usize,
    ) -> Result<Vec<u8>, StreamError> {
        self.read_with(|s| match regex.find(s.read_buf.data()) {
            Some(m) if m.end() <= max_bytes => Some(Ok(s.read_buf.consume(m.end()))),
            Some(_) => Some(Err(s.unsatisfiable(max_bytes))),
            None if s.read_buf.len() > max_bytes => Some(Err(s.unsatisfiable(max_bytes))),
            None => None,
        })
        .await
    }

    /// Reads `n` bytes; with `partial`, returns as soon as any bytes (at most
    /// `n`) are available. Tornado: `read_bytes(num_bytes, partial)`.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream closes before enough bytes came;
    /// [`StreamError::BufferFull`] if `n` exceeds `max_buffer_size`;
    /// [`StreamError::AlreadyReading`].
    pub async fn read_bytes(&self, n: usize, partial: bool) -> Result<Vec<u8>, StreamError> {
        self.read_with(|s| {
            let available = s.read_buf.len();
            if available >= n || (partial && available > 0) {
                Some(Ok(s.read_buf.consume(n)))
            } else {
                None
            }
        })
        .await
    }

    /// Reads into `buf` until it is full (or, with `partial`, until at least one
    /// byte came) and returns how many bytes were read. Tornado: `read_into`.
    ///
    /// Bytes are copied into `buf` only when the read completes, so a dropped
    /// future leaves them buffered for the next read — except for a
    /// non-partial read into a `buf` larger than
    /// [`max_buffer_size`](StreamOptions::max_buffer_size), which the stream
    /// could not hold at once: that one moves bytes into `buf` as they
    /// arrive, and dropping it may leave a prefix consumed into `buf`.
    ///
    /// # Errors
    ///
    /// As [`read_bytes`](IoStream::read_bytes) (but a large `buf` is no
    /// [`StreamError::BufferFull`]: see above).
    pub async fn read_into(&self, buf: &mut [u8], partial: bool) -> Result<usize, StreamError> {
        let max_buffer_size = self.state.borrow().options.max_buffer_size;
        if partial || buf.len() <= max_buffer_size {
            // Copy only on completion: a dropped future takes nothing.
            return self
                .read_with(|s| {
                    let available = s.read_buf.len();
                    if available >= buf.len() || (partial && available > 0) {
                        Some(Ok(s.read_buf.consume_into(buf)))
                    } else {
                        None
                    }
                })
                .await;
        }
        // More than the stream may buffer: move bytes in as they come.
        let mut filled = 0;
        self.read_with(|s| {
            filled += s.read_buf.consume_into(&mut buf[filled..]);
            (filled == buf.len()).then_some(Ok(filled))
        })
        .await
    }

    /// Reads everything until the peer closes the connection. Tornado:
    /// `read_until_close`.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream closes for any reason but EOF or
    /// a local close (e.g. a reset: the data may be incomplete);
    /// [`StreamError::BufferFull`] past `max_buffer_size`.
    pub async fn read_until_close(&self) -> Result<Vec<u8>, StreamError> {
        self.read_with(|s| match s.closed.as_deref() {
            Some(CloseReason::Eof | CloseReason::Local) => {
                let len = s.read_buf.len();
                Some(Ok(s.read_buf.consume(len)))
            }
            _ => None,
        })
        .await
    }

    /// Whether a read is pending. Tornado: `reading()`.
    pub fn reading(&self) -> bool {
        self.state.borrow().reading
    }

    /// Reads with a parser over the read buffer, for protocol codecs (the HTTP
    /// connection parses heads and chunked bodies this way, with no copy).
    ///
    /// `parse(buffered)` returns `Ok(Some((value, consumed)))` once the
    /// buffered bytes hold what it needs (the stream then drops `consumed`
    /// bytes), `Ok(None)` to wait for more bytes, or `Err(e)` to fail. It is
    /// called again each time bytes arrive, with everything buffered so far.
    ///
    /// # Errors
    ///
    /// `parse`'s error; or, converted into `E`, [`StreamError::BufferFull`]
    /// if the buffer fills before `parse` is satisfied,
    /// [`StreamError::Closed`] if the stream closes first,
    /// [`StreamError::AlreadyReading`].
    pub async fn read_parsed<T, E: From<StreamError>>(
        &self,
        mut parse: impl FnMut(&[u8]) -> Result<Option<(T, usize)>, E>,
    ) -> Result<T, E> {
        let outcome = self
            .read_with(|s| match parse(s.read_buf.data()) {
                Ok(Some((value, consumed))) => {
                    s.read_buf.discard(consumed);
                    Some(Ok(Ok(value)))
                }
                Ok(None) => None,
                Err(e) => Some(Ok(Err(e))),
            })
            .await;
        match outcome {
            Ok(result) => result,
            Err(e) => Err(E::from(e)),
        }
    }

    /// Like [`read_parsed`](IoStream::read_parsed) but only over bytes
    /// already buffered, never touching the socket: `None` if `parse` needs
    /// more (or another read is pending). Lets a protocol skip arming a
    /// deadline when a whole message is already here (pipelining, a request
    /// that arrived in one packet).
    pub fn try_read_parsed<T, E>(
        &self,
        parse: impl FnOnce(&[u8]) -> Result<Option<(T, usize)>, E>,
    ) -> Option<Result<T, E>> {
        let mut s = self.state.borrow_mut();
        if s.reading || s.read_buf.is_empty() {
            return None;
        }
        match parse(s.read_buf.data()) {
            Ok(Some((value, consumed))) => {
                s.read_buf.discard(consumed);
                let keep = s.options.read_chunk_size;
                s.read_buf.shrink(keep);
                Some(Ok(value))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Runs one read: `check` takes what it needs from the buffer (or fails);
    /// until it does, the transport is read as readiness allows.
    async fn read_with<T>(
        &self,
        mut check: impl FnMut(&mut State) -> Option<Result<T, StreamError>>,
    ) -> Result<T, StreamError> {
        {
            let mut s = self.state.borrow_mut();
            if s.reading {
                return Err(StreamError::AlreadyReading);
            }
            s.reading = true;
        }
        let _guard = ReadGuard { state: &self.state };
        poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            let (poll, wakeups) = s.poll_read(cx, &mut check);
            drop(s);
            wake_all(wakeups);
            poll
        })
        .await
    }
}

/// Closes the stream if `replace_transport`'s `wrap` panics (the old
/// transport went down with it).
struct CloseOnUnwind<'a> {
    /// The stream's state (not borrowed while `wrap` runs).
    state: &'a Rc<RefCell<State>>,
    /// False once `wrap` returned.
    armed: bool,
}

impl Drop for CloseOnUnwind<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(mut s) = self.state.try_borrow_mut() {
            let wakeups = s.close_with(CloseReason::Local);
            drop(s);
            wake_all(wakeups);
        }
    }
}

/// Ends a read however its future ends (completed or dropped).
struct ReadGuard<'a> {
    /// The stream's state.
    state: &'a Rc<RefCell<State>>,
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        let mut s = self.state.borrow_mut();
        s.reading = false;
        s.read_waker = None;
        // A read_until dropped mid-search must not leave its offset to the
        // next read (the buffer may be consumed by then).
        s.scan_from = 0;
    }
}

impl State {
    /// One poll of a read (see `read_with`).
    fn poll_read<T>(
        &mut self,
        cx: &mut Context<'_>,
        check: &mut impl FnMut(&mut State) -> Option<Result<T, StreamError>>,
    ) -> (Poll<Result<T, StreamError>>, Wakeups) {
        let mut wakeups = Wakeups::default();
        loop {
            // Step 1. Serve from the buffer (also after a close: buffered
            // bytes stay readable).
            if let Some(result) = check(self) {
                if let Err(StreamError::UnsatisfiableRead { max_bytes }) = &result {
                    wakeups.absorb(self.close_with(CloseReason::UnsatisfiableRead {
                        max_bytes: *max_bytes,
                    }));
                }
                self.read_buf.shrink(self.options.read_chunk_size);
                return (Poll::Ready(result), wakeups);
            }
            // Step 2. A closed stream cannot satisfy the read.
            if let Some(reason) = &self.closed {
                let error = StreamClosed::new(reason.clone()).into();
                return (Poll::Ready(Err(error)), wakeups);
            }
            // Step 3. The buffer is full and still not enough: give up.
            let max = self.options.max_buffer_size;
            if self.read_buf.len() >= max {
                wakeups.absorb(self.close_with(CloseReason::BufferFull {
                    max_buffer_size: max,
                }));
                let error = StreamError::BufferFull {
                    max_buffer_size: max,
                };
                return (Poll::Ready(Err(error)), wakeups);
            }
            // Step 4. Read more if the transport is ready (a missing
            // transport closes the stream in `fill`, so nothing waits on it).
            let ready = self.read_ready
                || self
                    .transport
                    .as_ref()
                    .is_none_or(|t| t.has_buffered_read());
            if ready {
                match self.fill() {
                    Fill::Data => continue,
                    Fill::Closed(closed) => {
                        // Loop once more: check may accept a closed stream
                        // (read_until_close), else step 2 fails the read.
                        wakeups.absorb(closed);
                        continue;
                    }
                    Fill::WouldBlock => self.read_ready = false,
                }
            }
            // Step 5. Wait for readiness, holding no buffer if nothing is
            // unread (idle keep-alive connections pin no memory).
            self.read_buf.release();
            match &self.read_waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => self.read_waker = Some(cx.waker().clone()),
            }
            return (Poll::Pending, wakeups);
        }
    }

    /// Reads one chunk into the buffer (see `read_chunk`); closes the stream
    /// if it ended.
    fn fill(&mut self) -> Fill {
        match self.read_chunk() {
            Ok(true) => Fill::Data,
            Ok(false) => Fill::WouldBlock,
            Err(reason) => Fill::Closed(self.close_with(reason)),
        }
    }

    /// Reads one chunk from the transport into the buffer (the caller makes
    /// sure there is room): `Ok(true)` if bytes came, `Ok(false)` for
    /// `WouldBlock`, `Err` with the reason to close: end of file, an error,
    /// or no transport (lost to a panicking `replace_transport` wrap).
    fn read_chunk(&mut self) -> Result<bool, CloseReason> {
        let room = self.options.max_buffer_size - self.read_buf.len();
        let chunk = self.options.read_chunk_size.min(room);
        let Some(transport) = self.transport.as_mut() else {
            return Err(CloseReason::Local);
        };
        let spare = self.read_buf.spare(chunk);
        let limit = spare.len().min(chunk);
        loop {
            match transport.read(&mut spare[..limit]) {
                Ok(0) => return Err(CloseReason::Eof),
                Ok(n) => {
                    if n < limit && transport.short_read_drains() && !self.peer_read_closed {
                        // Drained: the next edge will say when more arrives.
                        self.read_ready = false;
                    }
                    self.read_buf.commit(n);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CloseReason::Io(e)),
            }
        }
    }

    /// With no read pending, reads into the buffer until `WouldBlock`, end of
    /// file or an error (or the buffer is full), so that a dead socket closes
    /// the stream now.
    fn drain_into_buffer(&mut self) -> Wakeups {
        while self.read_buf.len() < self.options.max_buffer_size {
            match self.read_chunk() {
                Ok(true) => {}
                Ok(false) => {
                    self.read_ready = false;
                    self.read_buf.release();
                    break;
                }
                Err(CloseReason::Io(e)) if e.kind() == io::ErrorKind::Unsupported => {
                    // A write-only transport (a pipe's write end) cannot
                    // read: its error event says the reader is gone.
                    let broken = io::Error::from(io::ErrorKind::BrokenPipe);
                    return self.close_with(CloseReason::Io(broken));
                }
                Err(reason) => return self.close_with(reason),
            }
        }
        Wakeups::default()
    }

    /// The `read_until` check: finds the delimiter, resuming where the last
    /// search stopped (so a slow trickle is searched once, not quadratically).
    fn take_until(
        &mut self,
        finder: &memmem::Finder<'_>,
        max_bytes: usize,
    ) -> Option<Result<Vec<u8>, StreamError>> {
        let data = self.read_buf.data();
        let delimiter_len = finder.needle().len();
        let from = self.scan_from.min(data.len());
        match finder.find(&data[from..]) {
            Some(at) => {
                let end = from + at + delimiter_len;
                self.scan_from = 0;
                if end > max_bytes {
                    return Some(Err(self.unsatisfiable(max_bytes)));
                }
                Some(Ok(self.read_buf.consume(end)))
            }
            None if data.len() > max_bytes => Some(Err(self.unsatisfiable(max_bytes))),
            None => {
                self.scan_from = data.len().saturating_sub(delimiter_len.saturating_sub(1));
                None
            }
        }
    }

    /// The error for a read whose limit passed.
    fn unsatisfiable(&mut self, max_bytes: usize) -> StreamError {
        self.scan_from = 0;
        StreamError::UnsatisfiableRead { max_bytes }
    }
}

// ----- writes ----------------------------------------------------------------

impl IoStream {
    /// Queues `data` for writing and returns a future that resolves once these
    /// bytes (and all written before them) reached the kernel — over TLS, once
    /// their records did. Tornado: `write(data)`.
    ///
    /// The bytes go out whether or not the future is awaited, even if the
    /// last handle is dropped meanwhile. Writes made together (before the
    /// loop's next iteration, or before one of them is awaited, which sends
    /// the queue at once) leave in one `write_vectored` call. Small pieces
    /// (up to 4 KiB) are copied onto the end of an owned buffer queued
    /// before them, so a response's head and short body, or a batch of
    /// pipelined responses, leave as one buffer rather than many.
    pub fn write(&self, data: impl Into<WriteBuf>) -> WriteFuture {
        let data = data.into();
        let mut s = self.state.borrow_mut();
        if s.closed.is_none() && !data.is_empty() {
            s.queued_total += data.len() as u64;
            match s.write_queue.back_mut() {
                Some(WriteBuf(Cow::Owned(tail)))
                    if data.len() <= COALESCE_MAX && tail.len() + data.len() <= COALESCED_MAX =>
                {
                    tail.extend_from_slice(&data.0);
                    data.recycle();
                }
                _ => s.write_queue.push_back(data),
            }
            if s.keepalive.is_none() {
                // Until the bytes are out, the stream keeps itself alive.
                s.keepalive = Some(self.state.clone());
            }
            if s.write_ready && !s.flush_scheduled {
                s.flush_scheduled = true;
                let weak = Rc::downgrade(&self.state);
                let s = &mut *s; // the callback and the loop borrowed apart
                let flush = s.flush_callback.get_or_insert_with(|| {
                    Rc::new(move || {
                        if let Some(state) = weak.upgrade() {
                            let mut s = state.borrow_mut();
                            s.flush_scheduled = false;
                            let wakeups = s.flush();
                            drop(s);
                            wake_all(wakeups);
                        }
                    })
                });
                s.io_loop.add_shared_callback(flush);
            }
        }
        // On a closed stream nothing was queued: a target no count reaches
        // makes the future fail with the close reason instead of succeeding.
        let target = if s.closed.is_some() {
            u64::MAX
        } else {
            s.queued_total
        };
        WriteFuture {
            state: self.state.clone(),
            target,
        }
    }

    /// Whether written bytes have not all reached the kernel yet (over TLS:
    /// their records). Tornado: `writing()`.
    pub fn writing(&self) -> bool {
        self.write_buffer_size() > 0
    }

    /// Bytes written and not yet known to have reached the kernel (queued, or
    /// over TLS still held as records the socket could not take): Tornado's
    /// `_write_buffer_size`, what a protocol layer checks before reading
    /// more requests from a client that does not read its answers.
    pub fn write_buffer_size(&self) -> usize {
        let s = self.state.borrow();
        if s.closed.is_some() {
            return 0; // a close drops the queue
        }
        usize::try_from(s.unsent()).unwrap_or(usize::MAX)
    }
}

impl State {
    /// Whether a flush could do anything: bytes queued or held back, a
    /// write future or the keep-alive reference still waiting, or a
    /// transport that may hold bytes of its own.
    fn has_anything_to_send(&self) -> bool {
        !self.write_queue.is_empty()
            || self.transport_pending
            || !self.write_wakers.is_empty()
            || self.keepalive.is_some()
            || self
                .transport
                .as_ref()
                .is_some_and(|t| t.has_buffered_write())
    }

    /// Bytes written and not yet known to have reached the OS.
    fn unsent(&self) -> u64 {
        self.queued_total - self.flushed_total
    }

    /// Writes queued bytes until the queue is empty or the transport would
    /// block, then lets the transport send what it holds; returns the wakers
    /// of the writes that completed (and, once nothing is left to send, the
    /// keep-alive reference).
    fn flush(&mut self) -> Wakeups {
        let mut wakeups = Wakeups::default();
        while self.write_ready && !self.write_queue.is_empty() {
            let Some(transport) = self.transport.as_mut() else {
                // Lost to a panicking `replace_transport` wrap.
                wakeups.absorb(self.close_with(CloseReason::Local));
                break;
            };
            // Step 1. Gather up to MAX_IOVECS queued buffers, on the stack
            // (a flush per response must not cost an allocation) — or just
            // the one, the usual case, without filling the whole array.
            let mut slices = [IoSlice::new(&[]); 1];
            let mut many;
            let slices: &[IoSlice<'_>] = if let Some(only) = self.write_queue.only() {
                slices[0] = IoSlice::new(&only.as_bytes()[self.front_written..]);
                &slices
            } else {
                many = [IoSlice::new(&[]); MAX_IOVECS];
                let mut count = 0;
                for (slot, buf) in many.iter_mut().zip(self.write_queue.iter()) {
                    let skip = if count == 0 { self.front_written } else { 0 };
                    *slot = IoSlice::new(&buf.as_bytes()[skip..]);
                    count += 1;
                }
                &many[..count]
            };
            // Step 2. One syscall for all of them. A transport that takes
            // bytes holds none from earlier calls: those are out.
            match transport.write_vectored(slices) {
                Ok(0) => {
                    let e =
                        io::Error::new(io::ErrorKind::WriteZero, "the transport accepted no bytes");
                    wakeups.absorb(self.close_with(CloseReason::Io(e)));
                }
                Ok(n) => {
                    self.flushed_total = self.written_total;
                    self.advance_written(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.write_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => wakeups.absorb(self.close_with(CloseReason::Io(e))),
            }
        }
        // Step 3. Let the transport move out what it holds (TLS records) —
        // also when only it holds bytes. Plain transports answer at once;
        // this is what confirms the last `write_vectored`.
        if let Some(transport) = self.transport.as_mut() {
            match transport.flush_transport() {
                Ok(true) => {
                    self.transport_pending = false;
                    self.flushed_total = self.written_total;
                }
                Ok(false) => {
                    self.transport_pending = true;
                    self.write_ready = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.transport_pending = true;
                    self.write_ready = false;
                }
                Err(e) => wakeups.absorb(self.close_with(CloseReason::Io(e))),
            }
        }
        // Step 4. Wake the writes whose bytes are all out.
        let flushed = self.flushed_total;
        self.write_wakers.retain(|(target, waker)| {
            if *target <= flushed {
                wakeups.push(waker.clone());
                false
            } else {
                true
            }
        });
        // Step 5. Nothing left to send: the stream need not keep itself alive.
        if self.write_queue.is_empty() && !self.transport_pending {
            if let Some(keepalive) = self.keepalive.take() {
                wakeups.release = Some(keepalive);
            }
        }
        wakeups
    }

    /// Drops `n` written bytes from the front of the queue.
    fn advance_written(&mut self, mut n: usize) {
        self.written_total += n as u64;
        while n > 0 {
            let Some(front) = self.write_queue.front() else {
                break;
            };
            let left = front.len() - self.front_written;
            if n >= left {
                n -= left;
                self.front_written = 0;
                if let Some(sent) = self.write_queue.pop_front() {
                    sent.recycle();
                }
            } else {
                self.front_written += n;
                n = 0;
            }
        }
    }
}

/// The future of one [`IoStream::write`]: resolves once its bytes reached the
/// kernel (over TLS: their records), or fails with [`StreamError::Closed`] if
/// the stream closed first.
///
/// Not `#[must_use]`: as in Tornado, the bytes go out whether or not anyone
/// awaits this, so fire-and-forget writes are fine.
pub struct WriteFuture {
    /// The stream's state.
    state: Rc<RefCell<State>>,
    /// `flushed_total` at which this write is complete.
    target: u64,
}

impl Future for WriteFuture {
    type Output = Result<(), StreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.state.borrow_mut();
        if s.flushed_total >= self.target {
            return Poll::Ready(Ok(()));
        }
        if let Some(reason) = &s.closed {
            return Poll::Ready(Err(StreamClosed::new(reason.clone()).into()));
        }
        // Awaiting a write sends what is queued now instead of on the loop's
        // next iteration (which would cost an extra iteration and poll per
        // write); writes queued before this await still go out together.
        if s.write_ready {
            let wakeups = s.flush();
            let done = s.flushed_total >= self.target;
            let closed = s.closed.clone();
            drop(s);
            wake_all(wakeups);
            if done {
                return Poll::Ready(Ok(()));
            }
            if let Some(reason) = closed {
                return Poll::Ready(Err(StreamClosed::new(reason).into()));
            }
            s = self.state.borrow_mut();
        }
        let target = self.target;
        if !s
            .write_wakers
            .iter()
            .any(|(t, w)| *t == target && w.will_wake(cx.waker()))
        {
            s.write_wakers.push((target, cx.waker().clone()));
        }
        Poll::Pending
    }
}

impl fmt::Debug for WriteFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteFuture")
            .field("target", &self.target)
            .finish()
    }
}

// ----- closing and the rest ----------------------------------------------------

impl IoStream {
    /// Closes the stream now: queued writes are dropped, pending operations
    /// fail with [`StreamError::Closed`] (reason [`CloseReason::Local`]), and the
    /// close callback runs. Tornado: `close()`.
    ///
    /// Before the descriptor is closed the writing half is shut down, best
    /// effort: TLS sends `close_notify`, a socket sends FIN (also to whoever
    /// shares the socket through a duplicated descriptor).
    pub fn close(&self) {
        let wakeups = self.state.borrow_mut().close_with(CloseReason::Local);
        wake_all(wakeups);
    }

    /// Closes the stream with a given reason (e.g. [`CloseReason::Timeout`] from
    /// a layer above that enforces deadlines).
    pub fn close_with_reason(&self, reason: CloseReason) {
        let wakeups = self.state.borrow_mut().close_with(reason);
        wake_all(wakeups);
    }

    /// Whether the stream is closed. Tornado: `closed()`.
    pub fn closed(&self) -> bool {
        self.state.borrow().closed.is_some()
    }

    /// Why the stream closed, if it did. Tornado: `stream.error`.
    pub fn error(&self) -> Option<StreamClosed> {
        self.state.borrow().closed.clone().map(StreamClosed::new)
    }

    /// Runs `f` on the loop once the stream closes (at once, on the next
    /// iteration, if it already has). Replaces an earlier callback. Tornado:
    /// `set_close_callback`.
    ///
    /// The stream holds `f` until it closes (then drops it, run or not). An
    /// `f` that holds a clone of this stream therefore keeps the stream — and
    /// its socket — alive until something closes it, even after every other
    /// handle is gone; give `f` a [`downgrade`](IoStream::downgrade)d handle
    /// instead. If the last handle is dropped before the stream closes, `f`
    /// is dropped without running.
    pub fn set_close_callback<F: FnOnce() + 'static>(&self, f: F) {
        let mut s = self.state.borrow_mut();
        if s.closed.is_some() {
            s.io_loop.add_callback(f);
        } else {
            s.close_callback = Some(Box::new(f));
        }
    }

    /// Makes the peer's end of file close the stream as soon as it is
    /// signalled, even while no read is pending — what Tornado's streams do
    /// (their idle "error listener" reads), and what an HTTP server wants
    /// to notice a client that left while its handler works. By default a
    /// peer that only shuts down its sending side is left alone while no
    /// read is pending (it may still wait for an answer), and its end of
    /// file is seen by the next read.
    pub fn set_close_on_peer_shutdown(&self, on: bool) {
        self.state.borrow_mut().close_on_peer_shutdown = on;
    }

    /// Sets `TCP_NODELAY` (no-op on transports without it). Tornado:
    /// `set_nodelay`.
    ///
    /// # Errors
    ///
    /// The `setsockopt` error; closed streams ignore the call.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self.state.borrow_mut().transport.as_mut() {
            Some(t) => t.set_nodelay(nodelay),
            None => Ok(()),
        }
    }

    /// The limits this stream was made with.
    pub fn options(&self) -> StreamOptions {
        self.state.borrow().options
    }

    /// The ALPN protocol negotiated by TLS, if any.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.state
            .borrow()
            .transport
            .as_ref()
            .and_then(|t| t.alpn_protocol())
    }

    /// Bytes received and not yet read.
    pub fn buffered(&self) -> usize {
        self.state.borrow().read_buf.len()
    }

    /// Bytes of read-buffer memory the stream holds now (for memory tests
    /// and metrics).
    ///
    /// A stream with nothing unread holds none while it waits for data, or
    /// after a read emptied its buffer: the buffer went back to a small
    /// per-thread pool of spare buffers, from which the next read takes one
    /// again (no allocation, no zeroing). Only a stream with unread bytes
    /// holds one between reads — or, until it next waits, a stream whose
    /// [`read_chunk_size`](StreamOptions::read_chunk_size) makes buffers
    /// too large for the pool (over 256 KiB).
    ///
    /// # Examples
    ///
    /// ```
    /// use whirl_ioloop::IoLoop;
    /// use whirl_iostream::IoStream;
    ///
    /// let io_loop = IoLoop::new();
    /// io_loop.run_sync(async {
    ///     let (a, b) = mio::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (IoStream::new(a).unwrap(), IoStream::new(b).unwrap());
    ///     a.write("ping\nrest");
    ///     assert_eq!(b.read_until(b"\n", 64).await.unwrap(), b"ping\n");
    ///     assert!(b.read_buffer_capacity() > 0); // "rest" is unread
    ///     assert_eq!(b.read_bytes(4, false).await.unwrap(), b"rest");
    ///     assert_eq!(b.read_buffer_capacity(), 0); // nothing unread: no buffer
    /// });
    /// ```
    pub fn read_buffer_capacity(&self) -> usize {
        self.state.borrow().read_buf.capacity()
    }

    /// A handle that does not keep the stream alive (for close callbacks and
    /// other back references); see [`WeakIoStream::upgrade`].
    pub fn downgrade(&self) -> WeakIoStream {
        WeakIoStream {
            state: Rc::downgrade(&self.state),
        }
    }
}

/// A handle to an [`IoStream`] that does not keep it alive: made by
/// [`IoStream::downgrade`], turned back into a handle by
/// [`upgrade`](WeakIoStream::upgrade) while the stream still exists.
#[derive(Clone)]
pub struct WeakIoStream {
    /// The stream's state, weakly.
    state: Weak<RefCell<State>>,
}

impl WeakIoStream {
    /// A handle to the stream, or `None` if it no longer exists (its last
    /// handle was dropped and its queued writes are done).
    pub fn upgrade(&self) -> Option<IoStream> {
        self.state.upgrade().map(|state| IoStream { state })
    }
}

impl fmt::Debug for WeakIoStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakIoStream")
            .field("alive", &(self.state.strong_count() > 0))
            .finish()
    }
}

impl State {
    /// A stream's state with no transport yet: nothing buffered, nothing
    /// ready.
    fn new(io_loop: IoLoop, options: StreamOptions) -> State {
        State {
            transport: None,
            io_loop,
            handler: None,
            read_ready: false,
            peer_read_closed: false,
            close_on_peer_shutdown: false,
            write_ready: false,
            read_buf: ReadBuffer::new(),
            scan_from: 0,
            reading: false,
            read_waker: None,
            write_queue: WriteQueue::default(),
            front_written: 0,
            queued_total: 0,
            written_total: 0,
            flushed_total: 0,
            transport_pending: false,
            keepalive: None,
            write_wakers: Vec::new(),
            flush_scheduled: false,
            flush_callback: None,
            io_wakers: Vec::new(),
            closed: None,
            close_callback: None,
            options,
        }
    }
}

/// The fd handler of the stream whose state is `state`: it holds the state
/// weakly (the stream's handles own it).
fn stream_handler(state: &Rc<RefCell<State>>) -> impl FnMut(Ready) + 'static {
    let guard = HandlerGuard(Rc::downgrade(state));
    move |ready| {
        let guard = &guard; // the closure owns the whole guard
        on_ready(&guard.0, ready)
    }
}

impl State {
    /// Closes the stream (once): shuts down the writing half (best effort),
    /// unregisters and drops the transport, records the reason, schedules the
    /// close callback. Returns the wakers to call and the keep-alive
    /// reference to drop.
    fn close_with(&mut self, reason: CloseReason) -> Wakeups {
        if self.closed.is_some() {
            return Wakeups::default();
        }
        let peer_finished = matches!(reason, CloseReason::Eof);
        // A broken socket or TLS session has nobody left to say goodbye to.
        let goodbye = !matches!(reason, CloseReason::Io(_) | CloseReason::Tls(_));
        self.closed = Some(Rc::new(reason));
        // Step 1. The peer only stopped sending (it may be half-closed and
        // still reading): give queued writes one last chance to reach the
        // kernel rather than drop an answer already written.
        let mut wakeups = Wakeups::default();
        if peer_finished && (!self.write_queue.is_empty() || self.transport_pending) {
            self.write_ready = true;
            wakeups = self.flush();
        }
        // Step 2. Say goodbye: TLS close_notify, or FIN.
        if let Some(transport) = self.transport.as_mut().filter(|_| goodbye) {
            let _ = transport.shutdown_write();
        }
        // Step 3. Let go of the socket and of what was still to be sent.
        self.unregister();
        self.transport = None; // closes the socket
        self.read_buf.release(); // unread bytes stay readable
        self.write_queue.clear();
        self.front_written = 0;
        self.transport_pending = false;
        // Step 4. The close callback runs (and is dropped) on the loop.
        if let Some(callback) = self.close_callback.take() {
            self.io_loop.add_callback(callback);
        }
        // Step 5. Everyone waiting learns of the close; the stream need not
        // keep itself alive any more.
        wakeups.extend(self.write_wakers.drain(..).map(|(_, w)| w));
        wakeups.extend(self.read_waker.take());
        wakeups.extend(self.io_wakers.drain(..));
        if let Some(keepalive) = self.keepalive.take() {
            wakeups.release = Some(keepalive);
        }
        wakeups
    }

    /// Removes our fd handler, if registered (it takes the transport, the
    /// source it was registered with).
    fn unregister(&mut self) {
        if let Some(transport) = self.transport.as_mut() {
            if let Some(id) = self.handler.take() {
                let _ = self.io_loop.remove_handler(id, &mut **transport);
            }
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // The last handle is gone and nothing is left to send: close as
        // `close` would (without the close callback), freeing the handler
        // slot with the socket.
        if self.closed.is_none() {
            if let Some(transport) = self.transport.as_mut() {
                let _ = transport.shutdown_write();
            }
        }
        self.unregister();
    }
}

/// Owned by the stream's fd handler. If the loop drops the handler on its
/// own (`IoLoop::close`), releases the stream's keep-alive reference, so a
/// stream with unsent writes does not outlive its loop.
struct HandlerGuard(Weak<RefCell<State>>);

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        let Some(state) = self.0.upgrade() else {
            return; // the stream is gone (it removed us while dropping)
        };
        let Ok(mut s) = state.try_borrow_mut() else {
            return; // the stream is closing and removing us itself
        };
        s.handler = None; // the loop no longer has it
        let keepalive = s.keepalive.take();
        drop(s);
        drop(keepalive);
        // `state` goes last, outside any borrow: it may free the stream.
    }
}

/// The stream's fd handler: records readiness, writes what is queued, and
/// wakes whoever waits.
fn on_ready(weak: &Weak<RefCell<State>>, ready: Ready) {
    let Some(state) = weak.upgrade() else {
        return;
    };
    let mut s = state.borrow_mut();
    let mut wakeups = Wakeups::default();
    // Step 1. Readable: wake the pending read, which reads for itself.
    if ready.is_readable() || ready.is_read_closed() || ready.is_error() {
        s.read_ready = true;
        s.peer_read_closed |= ready.is_read_closed() || ready.is_error();
        if let Some(waker) = s.read_waker.take() {
            wakeups.push(waker);
        }
    }
    // Step 2. Writable: send what is queued or held by the transport. With
    // nothing to send (the usual case: a socket that is readable is
    // writable too, and the event says both) there is nothing to flush.
    if ready.is_writable() || ready.is_write_closed() || ready.is_error() {
        s.write_ready = true;
        if s.has_anything_to_send() {
            wakeups.absorb(s.flush());
        }
    }
    // Step 3. A dead socket (an error, or hung up both ways) and no read to
    // notice it: read what is left into the buffer now, so the stream closes
    // and its close callback runs. A peer that only half-closed may still be
    // waiting for an answer: it is left alone, unless the stream was told
    // to close on it (`set_close_on_peer_shutdown`, Tornado's behaviour).
    let hung_up = ready.is_read_closed() && (ready.is_write_closed() || s.close_on_peer_shutdown);
    let dead = ready.is_error() || hung_up;
    if dead && !s.reading && s.closed.is_none() {
        wakeups.absorb(s.drain_into_buffer());
    }
    // Step 4. Connects and handshakes wait for any readiness.
    if !s.io_wakers.is_empty() {
        wakeups.extend(s.io_wakers.drain(..));
    }
    drop(s);
    wake_all(wakeups);
}

/// Calls every waker, then drops the released keep-alive reference (the
/// state must no longer be borrowed).
fn wake_all(wakeups: Wakeups) {
    let Wakeups {
        first,
        rest,
        release,
    } = wakeups;
    for waker in first.into_iter().chain(rest) {
        waker.wake();
    }
    drop(release);
}

// ----- dormancy ---------------------------------------------------------------

impl IoStream {
    /// Puts a quiet stream to sleep: everything but its transport and its
    /// registration with the loop is freed (a few hundred bytes a
    /// connection, which matters for thousands of idle keep-alive ones), and
    /// `on_event` is called on the next readiness event instead (the peer
    /// sent something, hung up, or the socket failed). Take the stream back
    /// with [`DormantStream::wake`]; dropping the `DormantStream` closes it.
    ///
    /// Only a stream nobody else holds and nothing is under way on can
    /// sleep: this is the only handle (a [`WeakIoStream`] does not count),
    /// no read is pending and no byte is buffered (nor held decrypted by the
    /// transport), every write has reached the OS, the last read ended in
    /// `WouldBlock`, and the stream is open. Otherwise the stream is handed
    /// back unchanged. A close callback is dropped without being called:
    /// the stream has not closed.
    ///
    /// # Errors
    ///
    /// The stream itself, when it cannot sleep.
    pub fn into_dormant(
        self,
        on_event: impl FnMut(Ready) + 'static,
    ) -> Result<DormantStream, IoStream> {
        if Rc::strong_count(&self.state) != 1 {
            return Err(self);
        }
        let s = self.state.borrow_mut();
        let quiet = s.closed.is_none()
            && !s.reading
            && !s.read_ready
            && !s.peer_read_closed
            && s.read_buf.is_empty()
            && s.write_queue.is_empty()
            && !s.transport_pending
            && s.keepalive.is_none()
            && s.write_wakers.is_empty()
            && s.io_wakers.is_empty()
            && s.transport.as_ref().is_some_and(|t| !t.has_buffered_read());
        let (Some(id), true) = (s.handler, quiet) else {
            drop(s);
            return Err(self);
        };
        // A flush still scheduled finds the state gone and does nothing. The
        // old handler (holding the state weakly) is dropped by the swap, so
        // no borrow may be held across it.
        let io_loop = s.io_loop.clone();
        drop(s);
        if io_loop.replace_handler(id, on_event).is_err() {
            return Err(self); // the loop dropped the handler: not ours to move
        }
        let mut s = self.state.borrow_mut();
        s.handler = None;
        let transport = s.transport.take();
        let options = (s.options != StreamOptions::default()).then(|| Box::new(s.options));
        let close_callback = s.close_callback.take();
        drop(s);
        drop((close_callback, self)); // frees the state; no socket is closed
        Ok(DormantStream {
            transport,
            handler: id,
            io_loop,
            options,
        })
    }
}

/// A stream put to sleep by [`IoStream::into_dormant`]: its transport and
/// its registration with the loop, nothing else. [`wake`](Self::wake) makes
/// it an [`IoStream`] again; dropping it closes the transport.
pub struct DormantStream {
    /// The transport; `None` only once woken (or dropped).
    transport: Option<Box<dyn Transport>>,
    /// The registration, now calling the sleeper's callback.
    handler: HandlerId,
    /// The loop it is registered with.
    io_loop: IoLoop,
    /// The stream's limits, for when it wakes, unless the defaults (a
    /// dormant connection is smaller by the bytes).
    options: Option<Box<StreamOptions>>,
}

impl DormantStream {
    /// The stream again, over the same transport and registration (with new,
    /// empty buffers), as if just made: the sleeper's callback is dropped.
    /// It assumes readiness in both directions, so a read or a write tries
    /// the socket at once (an edge that came while it slept is not lost).
    ///
    /// # Errors
    ///
    /// `NotFound` if the loop no longer has the registration (it was
    /// closed); the transport is closed.
    pub fn wake(mut self) -> io::Result<IoStream> {
        let options = self.options.as_deref().copied().unwrap_or_default();
        let state = Rc::new(RefCell::new(State::new(self.io_loop.clone(), options)));
        self.io_loop
            .replace_handler(self.handler, stream_handler(&state))?;
        {
            let mut s = state.borrow_mut();
            s.transport = self.transport.take();
            s.handler = Some(self.handler);
            s.read_ready = true;
            s.write_ready = true;
        }
        Ok(IoStream { state })
    }
}

impl Drop for DormantStream {
    fn drop(&mut self) {
        // As a stream's last handle would: FIN, and the handler slot freed
        // with the socket.
        if let Some(mut transport) = self.transport.take() {
            let _ = transport.shutdown_write();
            let _ = self.io_loop.remove_handler(self.handler, &mut *transport);
        }
    }
}

impl fmt::Debug for DormantStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DormantStream")
            .field("handler", &self.handler)
            .field("options", &self.options)
            .finish()
    }
}

impl fmt::Debug for IoStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.borrow();
        f.debug_struct("IoStream")
            .field("closed", &s.closed)
            .field("buffered", &s.read_buf.len())
            .field("queued", &s.unsent())
            .field("reading", &s.reading)
            .finish()
    }
}
