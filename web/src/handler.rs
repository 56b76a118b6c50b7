//! [`RequestHandler`]: what a route runs for each request — Tornado's
//! `tornado.web.RequestHandler`, its verb methods `async`.

use std::future::Future;
use std::pin::Pin;

use crate::context::Context;
use crate::error::HttpError;
use crate::escape::xhtml_escape;
use crate::pipeline::{guarded, until_abandoned};

/// The methods a handler supports unless it says otherwise (Tornado's
/// `SUPPORTED_METHODS`).
pub const DEFAULT_SUPPORTED_METHODS: &[&str] =
    &["GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"];

/// The result of a handler method.
pub type HandlerResult = Result<(), HttpError>;

/// Serves the requests of one route. Tornado: `tornado.web.RequestHandler`.
///
/// A route builds a fresh handler for each request (its factory closure is
/// Tornado's `initialize(**kwargs)`), then runs, in order: the method check
/// (a method the handler does not list in
/// [`SUPPORTED_METHODS`](Self::SUPPORTED_METHODS) → 405), the XSRF check
/// for non-GET/HEAD/OPTIONS requests when `xsrf_cookies` is on,
/// [`get_current_user`](Self::get_current_user),
/// [`prepare`](Self::prepare), the verb method, then finishes the response
/// if the handler did not, and calls [`on_finish`](Self::on_finish).
///
/// Methods run on the loop thread and need not be `Send`. Return an
/// [`HttpError`] (or any error, which becomes a 500) to answer with an
/// error page from [`write_error`](Self::write_error); a panic becomes a
/// 500 too, and the loop goes on.
///
/// # Examples
///
/// ```
/// use whirl_web::{Context, HttpError, RequestHandler};
///
/// struct MainHandler;
///
/// impl RequestHandler for MainHandler {
///     const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];
///
///     async fn get(&mut self, cx: &mut Context) -> Result<(), HttpError> {
///         cx.write("Hello, world");
///         Ok(())
///     }
/// }
/// ```
#[allow(async_fn_in_trait)] // handlers run on one thread: no `Send` bound wanted
pub trait RequestHandler: 'static {
    /// The methods this handler answers; others get 405 with an `Allow`
    /// header listing these. List exactly the verbs you implement so `Allow`
    /// is exact. Default is [`DEFAULT_SUPPORTED_METHODS`] (Tornado's).
    const SUPPORTED_METHODS: &'static [&'static str] = DEFAULT_SUPPORTED_METHODS;

    /// Whether the body is handed to [`data_received`](Self::data_received)
    /// piece by piece as it arrives, after [`prepare`](Self::prepare),
    /// instead of buffered whole before it. Tornado: the
    /// `@stream_request_body` decorator. Default is `false`.
    const STREAM_REQUEST_BODY: bool = false;

    /// Runs before the verb method (and, when streaming, before the body is
    /// read). Finish the response or return an error here to skip the verb
    /// method. Tornado: `prepare`.
    async fn prepare(&mut self, _cx: &mut Context) -> HandlerResult {
        Ok(())
    }

    /// Answers `GET`. Default: 405.
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        Err(cx.method_not_allowed())
    }

    /// Answers `HEAD`. Default: 405.
    async fn head(&mut self, cx: &mut Context) -> HandlerResult {
        Err(cx.method_not_allowed())
    }

    /// Answers `POST`. Default: 405.
    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        Err(cx.method_not_allowed())
    }

    /// Answers `PUT`. Default: 405.
    async fn put(&mut self, cx: &mut Context) -> HandlerResult {
        Err(cx.method_not_allowed())
    }

    /// Answers `PATCH`. Default: 405.
    async fn patch(&mut self, cx: &mut Context) -> HandlerResult {
        Err(cx.method_not_allowed())
    }

    /// Answers `DELETE`. Default: 405.
    async fn delete(&mut self, cx: &mut Context) -> HandlerResult {
        Err(cx.method_not_allowed())
    }

    /// Answers `OPTIONS`. Default: 405.
    async fn options(&mut self, cx: &mut Context) -> HandlerResult {
        Err(cx.method_not_allowed())
    }

    /// A piece of the body, with [`STREAM_REQUEST_BODY`](Self::STREAM_REQUEST_BODY)
    /// on; the next piece is read once this returns (a slow handler slows
    /// the client). Tornado: `data_received`. Default: drops the piece.
    async fn data_received(&mut self, _cx: &mut Context, _chunk: Vec<u8>) -> HandlerResult {
        Ok(())
    }

    /// The user behind the request, if any — typically read from a signed
    /// cookie. Called once per request before [`prepare`](Self::prepare);
    /// the result is [`Context::current_user`]. Tornado:
    /// `get_current_user`. Default: `None`.
    async fn get_current_user(&mut self, _cx: &mut Context) -> Option<String> {
        None
    }

    /// Renders the error page for `status`; `error` is what caused it, when
    /// known. Tornado: `write_error`. Default: a small HTML page, with the
    /// error's log message in `<pre>` when the `serve_traceback` setting
    /// (or `debug`) is on.
    fn write_error(&mut self, cx: &mut Context, status: u16, error: Option<&HttpError>) {
        default_write_error(cx, status, error);
    }

    /// The response is finished (sent or failed). Tornado: `on_finish`.
    fn on_finish(&mut self, _cx: &mut Context) {}

    /// The client went away before its answer was finished: its body was
    /// cut short, or the connection failed while the verb method was
    /// running — then the method is dropped at the `await` it was waiting
    /// on, and this is called instead of it finishing. (A client that only
    /// half-closes its side is still waiting for the answer and is left
    /// alone, as in Tornado.) Tornado: `on_connection_close`.
    fn on_connection_close(&mut self, _cx: &mut Context) {}
}

/// Tornado's default error page: `<html><title>404: Not Found</title>…`.
pub(crate) fn default_write_error(cx: &mut Context, status: u16, error: Option<&HttpError>) {
    let reason = cx.reason().to_string();
    let mut page =
        format!("<html><title>{status}: {reason}</title><body>{status}: {reason}</body></html>");
    if cx.settings().serve_traceback() {
        if let Some(message) = error.and_then(|e| e.message()) {
            let detail = format!("<pre>{}</pre>", xhtml_escape(message));
            page.insert_str(page.len() - "</body></html>".len(), &detail);
        }
    }
    cx.headers
        .insert("Content-Type", "text/html; charset=UTF-8");
    cx.write(page);
}

/// A boxed handler future borrowing the handler and the context.
pub(crate) type HandlerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// [`RequestHandler`] made object-safe, so routes can hold any handler type.
pub(crate) trait DynHandler {
    /// `SUPPORTED_METHODS`.
    fn supported_methods(&self) -> &'static [&'static str];
    /// `STREAM_REQUEST_BODY`.
    fn stream_request_body(&self) -> bool;
    /// `prepare`.
    fn prepare<'a>(&'a mut self, cx: &'a mut Context) -> HandlerFuture<'a, HandlerResult>;
    /// The verb method for `method` (one of the seven).
    fn call<'a>(
        &'a mut self,
        method: &str,
        cx: &'a mut Context,
    ) -> HandlerFuture<'a, HandlerResult>;
    /// `data_received`.
    fn data_received<'a>(
        &'a mut self,
        cx: &'a mut Context,
        chunk: Vec<u8>,
    ) -> HandlerFuture<'a, HandlerResult>;
    /// `get_current_user`.
    fn get_current_user<'a>(&'a mut self, cx: &'a mut Context)
        -> HandlerFuture<'a, Option<String>>;
    /// A buffered request's handler steps in one future (one box, where
    /// the steps one by one take three): see [`run_buffered`].
    fn run_buffered<'a>(
        &'a mut self,
        cx: &'a mut Context,
        method: &'a str,
    ) -> HandlerFuture<'a, Ran>;
    /// `write_error`.
    fn write_error(&mut self, cx: &mut Context, status: u16, error: Option<&HttpError>);
    /// `on_finish`.
    fn on_finish(&mut self, cx: &mut Context);
    /// `on_connection_close`.
    fn on_connection_close(&mut self, cx: &mut Context);
}

impl<H: RequestHandler> DynHandler for H {
    fn supported_methods(&self) -> &'static [&'static str] {
        H::SUPPORTED_METHODS
    }

    fn stream_request_body(&self) -> bool {
        H::STREAM_REQUEST_BODY
    }

    fn prepare<'a>(&'a mut self, cx: &'a mut Context) -> HandlerFuture<'a, HandlerResult> {
        Box::pin(RequestHandler::prepare(self, cx))
    }

    fn call<'a>(
        &'a mut self,
        method: &str,
        cx: &'a mut Context,
    ) -> HandlerFuture<'a, HandlerResult> {
        match method {
            "GET" => Box::pin(RequestHandler::get(self, cx)),
            "HEAD" => Box::pin(RequestHandler::head(self, cx)),
            "POST" => Box::pin(RequestHandler::post(self, cx)),
            "PUT" => Box::pin(RequestHandler::put(self, cx)),
            "PATCH" => Box::pin(RequestHandler::patch(self, cx)),
            "DELETE" => Box::pin(RequestHandler::delete(self, cx)),
            "OPTIONS" => Box::pin(RequestHandler::options(self, cx)),
            _ => {
                let error = cx.method_not_allowed();
                Box::pin(std::future::ready(Err(error)))
            }
        }
    }

    fn data_received<'a>(
        &'a mut self,
        cx: &'a mut Context,
        chunk: Vec<u8>,
    ) -> HandlerFuture<'a, HandlerResult> {
        Box::pin(RequestHandler::data_received(self, cx, chunk))
    }

    fn get_current_user<'a>(
        &'a mut self,
        cx: &'a mut Context,
    ) -> HandlerFuture<'a, Option<String>> {
        Box::pin(RequestHandler::get_current_user(self, cx))
    }

    fn run_buffered<'a>(
        &'a mut self,
        cx: &'a mut Context,
        method: &'a str,
    ) -> HandlerFuture<'a, Ran> {
        Box::pin(run_buffered(self, cx, method))
    }

    fn write_error(&mut self, cx: &mut Context, status: u16, error: Option<&HttpError>) {
        RequestHandler::write_error(self, cx, status, error);
    }

    fn on_finish(&mut self, cx: &mut Context) {
        RequestHandler::on_finish(self, cx);
    }

    fn on_connection_close(&mut self, cx: &mut Context) {
        RequestHandler::on_connection_close(self, cx);
    }
}

/// How [`run_buffered`] ended.
pub(crate) enum Ran {
    /// `get_current_user`, `prepare` or the verb method failed (returned
    /// an error, or panicked: a 500).
    Failed(HttpError),
    /// `prepare` finished the response or asked for an error page: the
    /// verb method did not run.
    Prepared,
    /// The verb method returned `Ok`.
    Done,
    /// The client left before the response was finished: the verb method
    /// was dropped at its await.
    Abandoned,
}

/// The steps of Tornado's `_execute` that are the handler's own, for a
/// request whose body is already read, statically dispatched: the current
/// user (stored in `cx`), `prepare`, then — unless `prepare` finished or
/// asked for an error page — the verb method for `method`, given up if the
/// connection closes before the response is finished. Each step's panic is
/// caught as a 500.
async fn run_buffered<H: RequestHandler>(handler: &mut H, cx: &mut Context, method: &str) -> Ran {
    let user = guarded(std::pin::pin!(handler.get_current_user(cx))).await;
    match user {
        Ok(user) => cx.current_user = user,
        Err(error) => return Ran::Failed(error),
    }
    match guarded(std::pin::pin!(handler.prepare(cx))).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) | Err(error) => return Ran::Failed(error),
    }
    if cx.finished || cx.pending_error.is_some() {
        return Ran::Prepared;
    }
    let connection = cx.connection.clone();
    let open = crate::pipeline::open_response(cx);
    // One arm per verb: each awaits its own future type, held in this
    // future's state (no box of its own).
    let connection = &connection;
    let ran = match method {
        "GET" => settle(handler.get(cx), connection, open).await,
        "HEAD" => settle(handler.head(cx), connection, open).await,
        "POST" => settle(handler.post(cx), connection, open).await,
        "PUT" => settle(handler.put(cx), connection, open).await,
        "PATCH" => settle(handler.patch(cx), connection, open).await,
        "DELETE" => settle(handler.delete(cx), connection, open).await,
        "OPTIONS" => settle(handler.options(cx), connection, open).await,
        _ => return Ran::Failed(cx.method_not_allowed()),
    };
    match ran {
        Some(Ok(Ok(()))) => Ran::Done,
        Some(Ok(Err(error)) | Err(error)) => Ran::Failed(error),
        None => Ran::Abandoned,
    }
}

/// Runs a verb method, its panic caught, until it returns or its client
/// leaves first (`None`).
async fn settle<F: Future<Output = HandlerResult>>(
    verb: F,
    connection: &whirl_httpserver::Http1Connection,
    open: u64,
) -> Option<Result<HandlerResult, HttpError>> {
    until_abandoned(guarded(std::pin::pin!(verb)), connection, open).await
}
