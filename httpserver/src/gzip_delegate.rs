//! [`GzipMessageDelegate`]: decodes `Content-Encoding: gzip` request bodies
//! before the wrapped delegate sees them (Tornado's `_GzipMessageDelegate`,
//! behind `decompress_request=True`).

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use crate::connection::Http1Connection;
use crate::delegate::{Flow, HttpMessageDelegate, StartLine};
use crate::gzip::{GzipDecompressor, GzipError};
use crate::headers::HttpHeaders;
use crate::start_line::{reason_phrase, ResponseStartLine, Version};

/// A message delegate wrapper that gunzips the request body: Tornado's
/// `_GzipMessageDelegate`. [`HttpServer::decompress_request`] puts one in
/// front of every request's delegate.
///
/// For a request whose `Content-Encoding` is `gzip` (any case), the wrapped
/// delegate sees the headers with `Content-Encoding` renamed to
/// `X-Consumed-Content-Encoding` and `Content-Length` removed (it described
/// the compressed body), then the decompressed body in pieces of at most
/// `chunk_size` bytes, flow control passed through piece by piece. Other
/// requests pass through untouched.
///
/// The decompressed total is bound by the connection's `max_body_size`: past
/// it the request is answered 413 and the connection closed, having
/// inflated one byte more than the limit and no more. Malformed gzip (bad
/// header, corrupt data, wrong checksum, a truncated body) is answered 400
/// and closed. Either way the wrapped delegate gets `on_connection_close`
/// instead of `finish`. Tornado answers 400 to both, and lets truncated or
/// mis-checksummed bodies through.
///
/// [`HttpServer::decompress_request`]: crate::HttpServer::decompress_request
pub struct GzipMessageDelegate {
    /// Shared with the flow futures that deliver pieces after an await.
    state: Rc<RefCell<GzipState>>,
}

/// What a [`GzipMessageDelegate`] and its pending flow futures share.
struct GzipState {
    /// The wrapped delegate.
    inner: Box<dyn HttpMessageDelegate>,
    /// Where to answer when the body is refused.
    connection: Http1Connection,
    /// The decoder, while the body is gzip; `None` passes bytes through.
    decompressor: Option<GzipDecompressor>,
    /// Largest piece handed to the wrapped delegate.
    chunk_size: usize,
    /// Set once the body was refused: later bytes are dropped.
    failed: bool,
    /// Set once the wrapped delegate got `finish` or `on_connection_close`.
    ended: bool,
}

impl GzipMessageDelegate {
    /// Wraps `inner`, the delegate of a request on `connection`; the limit
    /// and piece size are the connection's `max_body_size` and `chunk_size`.
    pub fn new(
        inner: Box<dyn HttpMessageDelegate>,
        connection: &Http1Connection,
    ) -> GzipMessageDelegate {
        GzipMessageDelegate {
            state: Rc::new(RefCell::new(GzipState {
                inner,
                connection: connection.clone(),
                decompressor: None,
                chunk_size: connection.params().chunk_size.max(1),
                failed: false,
                ended: false,
            })),
        }
    }
}

impl HttpMessageDelegate for GzipMessageDelegate {
    fn headers_received(&mut self, start_line: StartLine, mut headers: HttpHeaders) -> Flow {
        let mut state = self.state.borrow_mut();
        let encoding = headers
            .get_joined("Content-Encoding")
            .filter(|e| e.trim().eq_ignore_ascii_case("gzip"))
            .map(|e| e.into_owned());
        let Some(encoding) = encoding else {
            return state.inner.headers_received(start_line, headers);
        };
        // Downstream sees only decompressed bytes: say so in the headers.
        headers.remove("Content-Encoding");
        headers.remove("Content-Length");
        headers.add("X-Consumed-Content-Encoding", encoding);
        let max = state.connection.max_body_size();
        state.decompressor = Some(GzipDecompressor::new(max));
        state.inner.headers_received(start_line, headers)
    }

    fn data_received(&mut self, chunk: Vec<u8>) -> Flow {
        let mut state = self.state.borrow_mut();
        if state.failed {
            return None;
        }
        if state.decompressor.is_none() {
            return state.inner.data_received(chunk);
        }
        drop(state);
        pump(self.state.clone(), chunk, 0)
    }

    fn finish(&mut self) {
        if let Some(flow) = self.finish_flow() {
            drop(whirl_ioloop::spawn(flow));
        }
    }

    fn finish_flow(&mut self) -> Flow {
        let mut state = self.state.borrow_mut();
        if !state.failed {
            if let Some(Err(e)) = state.decompressor.as_ref().map(GzipDecompressor::finish) {
                // Nothing can be awaited here: the answer and the close go
                // on as a task of their own.
                if let Some(answer) = refuse(&mut state, &e) {
                    drop(whirl_ioloop::spawn(answer));
                }
            }
        }
        if std::mem::replace(&mut state.ended, true) {
            return None;
        }
        if state.failed {
            state.inner.on_connection_close();
            None
        } else {
            state.inner.finish_flow()
        }
    }

    fn on_connection_close(&mut self) {
        let mut state = self.state.borrow_mut();
        if !std::mem::replace(&mut state.ended, true) {
            state.inner.on_connection_close();
        }
    }
}

/// Decodes `chunk` from `offset` on and hands each piece to the wrapped
/// delegate; when it asks to wait, returns a future that waits, then goes on
/// with the rest.
fn pump(state: Rc<RefCell<GzipState>>, chunk: Vec<u8>, mut offset: usize) -> Flow {
    loop {
        let mut guard = state.borrow_mut();
        let s = &mut *guard;
        let decompressor = s.decompressor.as_mut().filter(|_| !s.failed)?;
        let (piece, consumed) = match decompressor.decompress(&chunk[offset..], s.chunk_size) {
            Ok(step) => step,
            Err(e) => return refuse(s, &e),
        };
        offset += consumed;
        if piece.is_empty() {
            if consumed > 0 {
                continue;
            }
            if offset < chunk.len() {
                // No progress with input left: never spin on it.
                return refuse(s, &GzipError::Corrupt);
            }
            return None;
        }
        if let Some(flow) = s.inner.data_received(piece) {
            drop(guard);
            return Some(Box::pin(async move {
                flow.await;
                if let Some(rest) = pump(state, chunk, offset) {
                    rest.await;
                }
            }));
        }
    }
}

/// Refuses the body: answers `e`'s status (413 or 400) with
/// `Connection: close` unless a response is already under way, and returns
/// a flow that closes the connection once the answer is sent, so no more of
/// the body is read.
fn refuse(state: &mut GzipState, e: &GzipError) -> Flow {
    log::debug!("refusing a gzip request body: {e}");
    state.failed = true;
    let connection = state.connection.clone();
    let code = e.status();
    let start_line = ResponseStartLine {
        version: Version::Http11,
        code,
        reason: reason_phrase(code).to_string(),
    };
    let mut headers = HttpHeaders::new();
    headers.insert("Content-Length", "0");
    headers.insert("Connection", "close");
    let sent = connection
        .write_headers(&start_line, &headers)
        .and_then(|_| connection.finish());
    Some(Box::pin(async move {
        if let Ok(written) = sent {
            let _ = written.await;
        }
        connection.stream().close();
    }))
}

impl fmt::Debug for GzipMessageDelegate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("GzipMessageDelegate")
            .field("decompressor", &state.decompressor)
            .field("failed", &state.failed)
            .finish_non_exhaustive()
    }
}
