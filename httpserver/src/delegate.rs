//! Tornado's HTTP interfaces as traits: the connection delegate, which starts a
//! message delegate for each request, and the message delegate, which receives
//! one message's head, body and end.

use std::future::Future;
use std::pin::Pin;

use crate::connection::Http1Connection;
use crate::head::RequestHead;
use crate::headers::HttpHeaders;
use crate::start_line::{RequestStartLine, ResponseStartLine};

/// Flow control returned by a message delegate: `None` to go on at once, or a
/// future the connection awaits before it reads more (Tornado: returning a
/// `Future` from `data_received`). A slow consumer slows the sender this way.
pub type Flow = Option<Pin<Box<dyn Future<Output = ()>>>>;

/// The first line of a message: a request's or a response's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// A request line (the server receives these).
    Request(RequestStartLine),
    /// A status line (the client receives these).
    Response(ResponseStartLine),
}

/// Receives one HTTP message. Tornado: `httputil.HTTPMessageDelegate`.
///
/// For each message the connection calls `headers_received`, then
/// `data_received` for each piece of the body (at most `chunk_size` bytes),
/// then exactly one of `finish` (the message arrived whole) or
/// `on_connection_close` (it did not). (A server's request without a body
/// may be taken whole by
/// [`HttpServerConnectionDelegate::whole_request`] instead: then no
/// message delegate is made for it.)
pub trait HttpMessageDelegate {
    /// The head arrived. The delegate owns it from here: keep what you need
    /// without copying.
    fn headers_received(&mut self, start_line: StartLine, headers: HttpHeaders) -> Flow;

    /// A piece of the body arrived.
    fn data_received(&mut self, chunk: Vec<u8>) -> Flow;

    /// The whole message arrived.
    fn finish(&mut self);

    /// The whole message arrived, as [`finish`](Self::finish), returning
    /// work for the connection to run in its own task rather than a task
    /// of its own — a server delegate returns the handler that answers the
    /// request. The connection runs it until the response is finished (a
    /// handler that goes on afterwards continues as a task), so an answer
    /// ready at once costs no task and pipelined answers leave in one
    /// write. Default: calls `finish` and returns `None`. Wrappers forward
    /// it.
    fn finish_flow(&mut self) -> Flow {
        self.finish();
        None
    }

    /// The connection closed before the message was complete.
    fn on_connection_close(&mut self);
}

/// Starts a message delegate per request on a server connection. Tornado:
/// `httputil.HTTPServerConnectionDelegate`.
pub trait HttpServerConnectionDelegate {
    /// A request is starting on `connection`; return the delegate that will
    /// receive it. Respond through `connection` (`write_headers`, `write`,
    /// `finish`), during or after the request.
    fn start_request(&self, connection: &Http1Connection) -> Box<dyn HttpMessageDelegate>;

    /// A request without a body arrived on `connection`: its head is the
    /// whole of it. A delegate that can take such a request at once answers
    /// it here (or returns the work that will, as
    /// [`finish_flow`](HttpMessageDelegate::finish_flow) does) and spares
    /// the message delegate [`start_request`](Self::start_request) would
    /// make for it; one that cannot gives the head back (`Err`), and the
    /// connection goes the usual way: `start_request`, `headers_received`,
    /// `finish_flow`. Default: gives it back.
    ///
    /// # Errors
    ///
    /// The head, untouched, when the delegate wants the usual way.
    fn whole_request(
        &self,
        _connection: &Http1Connection,
        head: RequestHead,
    ) -> Result<Flow, RequestHead> {
        Err(head)
    }

    /// The connection closed (after its last request).
    fn on_close(&self, _connection: &Http1Connection) {}
}
