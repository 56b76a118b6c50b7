//! [`BodyWriter`]: how a body producer writes a request body — the
//! `write` function Tornado hands its `body_producer`.

use std::fmt;

use whirl_httpserver::Http1ClientConnection;

use crate::error::{ErrorKind, HttpClientError};

/// Writes pieces of a request body on its connection; each write waits
/// until the piece reached the kernel, so a producer never queues more than
/// one piece. Tornado: the `write` argument of `body_producer`.
#[derive(Clone)]
pub struct BodyWriter {
    /// The connection the request is on.
    connection: Http1ClientConnection,
}

impl BodyWriter {
    /// A writer on `connection`.
    pub(crate) fn new(connection: Http1ClientConnection) -> BodyWriter {
        BodyWriter { connection }
    }

    /// Writes `chunk` (framed as the request's headers decided: exactly
    /// its `Content-Length`, or chunked) and waits until it is sent.
    ///
    /// # Errors
    ///
    /// When the connection closed, or the chunk goes past the declared
    /// `Content-Length` (the connection is then aborted).
    pub async fn write(&self, chunk: impl Into<Vec<u8>>) -> Result<(), HttpClientError> {
        let chunk = chunk.into();
        if chunk.is_empty() {
            return Ok(());
        }
        let written = self
            .connection
            .write(chunk)
            .map_err(|e| HttpClientError::new(ErrorKind::Body, format!("writing the body: {e}")))?;
        written.await.map_err(|e| {
            HttpClientError::new(
                ErrorKind::ConnectionClosed,
                format!("writing the body: {e}"),
            )
        })
    }
}

impl fmt::Debug for BodyWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyWriter").finish_non_exhaustive()
    }
}
