//! whirl's stream layer: [`IoStream`], an async buffered stream over a socket or
//! pipe (Tornado's `iostream`).
//!
//! An `IoStream` registers its transport with the current
//! [`IoLoop`](whirl_ioloop::IoLoop) and turns readiness into futures: reads
//! served from a buffer (`read_until`, `read_bytes`, …) and writes that resolve
//! when their bytes reached the kernel. It knows nothing of HTTP.
//!
//! # Examples
//!
//! ```
//! use whirl_ioloop::IoLoop;
//! use whirl_iostream::IoStream;
//!
//! IoLoop::new().run_sync(async {
//!     let (a, b) = mio::net::UnixStream::pair().unwrap();
//!     let (a, b) = (IoStream::new(a).unwrap(), IoStream::new(b).unwrap());
//!     a.write("hello\n").await.unwrap();
//!     assert_eq!(b.read_until(b"\n", 1024).await.unwrap(), b"hello\n");
//! });
//! ```

mod error;
pub mod netutil;
#[cfg(unix)]
mod process;
mod read_buffer;
mod resolver;
mod stream;
mod tcpclient;
mod tcpserver;
mod tls;
mod transport;
mod write_queue;

pub use error::{CloseReason, StreamClosed, StreamError};
#[cfg(unix)]
pub use process::{Subprocess, WaitForExit};
pub use resolver::{OverrideKey, OverrideTarget, Resolver};
pub use stream::{
    spare_write_buffer, DormantStream, IoStream, StreamOptions, WeakIoStream, WriteBuf,
    WriteFuture, DEFAULT_MAX_BUFFER_SIZE, DEFAULT_READ_CHUNK_SIZE,
};
pub use tcpclient::{
    ConnectError, ConnectOptions, TcpClient, DEFAULT_CONNECT_TIMEOUT, HAPPY_EYEBALLS_DELAY,
};
pub use tcpserver::{TcpServer, ACCEPT_BATCH, ACCEPT_PAUSE_ON_EMFILE, TLS_HANDSHAKE_TIMEOUT};
pub use tls::{TlsClientConfig, TlsClientConfigBuilder, TlsServerConfig, TlsTransport};
pub use transport::{Handshake, Transport, TransportIo};
