//! One request through the application: the message delegate the
//! connection feeds, and the handler run in Tornado's `_execute` order —
//! method check, XSRF check, current user, `prepare`, (streamed body),
//! the verb method, auto-finish, `on_finish` — with every error and panic
//! turned into an error page.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

use whirl_httpserver::{
    Flow, Http1Connection, HttpHeaders, HttpMessageDelegate, HttpServerRequest, RequestHead,
    RequestStartLine, StartLine,
};

use crate::application::Application;
use crate::context::Context;
use crate::error::HttpError;
use crate::handler::{DynHandler, Ran};
use crate::handlers::ErrorHandler;
use crate::routing::PathArguments;

/// Methods the framework knows; any other answers 501 (a known method a
/// handler does not support answers 405).
const KNOWN_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

/// A handler and its request, between the steps of the exchange.
struct Job {
    /// The handler.
    handler: Box<dyn DynHandler>,
    /// Its request and response.
    cx: Context,
    /// Whether the body is streamed to `data_received`.
    streaming: bool,
    /// Whether the request is over (answered with an error, or the handler
    /// finished early): later steps are skipped.
    done: bool,
    /// An error found before any handler ran (unknown method, no route,
    /// bad path argument), answered by the first step.
    early: Option<HttpError>,
}

/// What the exchange holds between the connection's calls.
#[derive(Default)]
struct State {
    /// The handler, when not lent to a running step.
    job: Option<Box<Job>>,
    /// The buffered body (non-streaming handlers).
    body: Vec<u8>,
}

/// The message delegate of one request (Tornado's `_HandlerDelegate`).
pub(crate) struct Exchange {
    /// The application.
    app: Application,
    /// The connection the request came on.
    connection: Http1Connection,
    /// Shared with the steps it starts.
    state: Rc<RefCell<State>>,
}

impl Exchange {
    /// A delegate for the next request on `connection`.
    pub(crate) fn new(app: Application, connection: Http1Connection) -> Exchange {
        Exchange {
            app,
            connection,
            state: Rc::default(),
        }
    }

    /// Runs `step` on the job (lent out of the shared state meanwhile);
    /// skipped once the job is done.
    fn run_step<F>(&self, step: F) -> Flow
    where
        F: for<'a> FnOnce(&'a mut Job) -> Pin<Box<dyn Future<Output = ()> + 'a>> + 'static,
    {
        let state = self.state.clone();
        Some(Box::pin(async move {
            let Some(mut job) = state.borrow_mut().job.take() else {
                return;
            };
            if !job.done {
                step(&mut job).await;
            }
            state.borrow_mut().job = Some(job);
        }))
    }
}

impl HttpMessageDelegate for Exchange {
    fn headers_received(&mut self, start_line: StartLine, headers: HttpHeaders) -> Flow {
        let StartLine::Request(start_line) = start_line else {
            return None;
        };
        let job = start(&self.app, &self.connection, start_line, headers);
        let streaming = job.streaming;
        self.state.borrow_mut().job = Some(Box::new(job));
        if !streaming {
            return None;
        }
        // A streaming handler is prepared before its body is read, so it
        // can refuse it, or change its size limit, first.
        self.run_step(|job| {
            Box::pin(async move {
                begin(job).await;
                if let Some(max) = job.cx.max_body_size {
                    job.cx.connection.set_max_body_size(max);
                }
            })
        })
    }

    fn data_received(&mut self, chunk: Vec<u8>) -> Flow {
        let streaming = {
            let mut state = self.state.borrow_mut();
            match &state.job {
                Some(job) if job.streaming => true,
                Some(job) if job.done => return None,
                _ => {
                    state.body.extend_from_slice(&chunk);
                    return None;
                }
            }
        };
        debug_assert!(streaming);
        self.run_step(move |job| {
            Box::pin(async move {
                let result = guarded(job.handler.data_received(&mut job.cx, chunk)).await;
                if let Err(error) = result {
                    fail(job, error);
                }
            })
        })
    }

    fn finish(&mut self) {
        if let Some(flow) = self.finish_flow() {
            drop(whirl_ioloop::spawn(flow));
        }
    }

    fn finish_flow(&mut self) -> Flow {
        let state = self.state.clone();
        Some(Box::pin(async move {
            let (job, body) = {
                let mut state = state.borrow_mut();
                (state.job.take(), std::mem::take(&mut state.body))
            };
            let Some(mut job) = job else { return };
            execute(&mut job, body).await;
        }))
    }

    fn on_connection_close(&mut self) {
        let job = self.state.borrow_mut().job.take();
        if let Some(mut job) = job {
            let closed = catch_unwind(AssertUnwindSafe(|| {
                job.handler.on_connection_close(&mut job.cx);
            }));
            if closed.is_err() {
                log::error!("on_connection_close panicked");
            }
        }
    }
}

/// Builds the handler for a request: the route's, or an error
/// handler for an unknown method (501), an unmatched path (404), an
/// undecodable path argument or query (400).
fn start(
    app: &Application,
    connection: &Http1Connection,
    start_line: RequestStartLine,
    headers: HttpHeaders,
) -> Job {
    let (request, mut early) = build_request(connection, start_line, headers);
    if early.is_none() && !KNOWN_METHODS.contains(&request.method()) {
        early =
            Some(HttpError::new(501).log_message(format!("unknown method {}", request.method())));
    }
    let mut path = PathArguments::default();
    let mut factory = None;
    if early.is_none() {
        match app.find_route(request.path()) {
            Some((f, Ok(arguments))) => {
                factory = Some(f);
                path = arguments;
            }
            Some((_, Err(error))) => early = Some(error),
            None => early = Some(HttpError::new(404)),
        }
    }
    let handler: Box<dyn DynHandler> = match &factory {
        Some(factory) => factory(),
        None => Box::new(ErrorHandler::new(404)),
    };
    let cx = Context::new(request, connection.clone(), app.clone(), path);
    Job {
        streaming: early.is_none() && handler.stream_request_body(),
        handler,
        cx,
        done: false,
        early,
    }
}

/// The request, or — for a query the server refuses to parse (too many
/// fields, a name that is not UTF-8) — the request without its query,
/// with the 400 to answer.
fn build_request(
    connection: &Http1Connection,
    start_line: RequestStartLine,
    headers: HttpHeaders,
) -> (Box<HttpServerRequest>, Option<HttpError>) {
    let context = connection.context();
    let head = RequestHead {
        start_line,
        headers,
    };
    let started = connection.request_start_time();
    let refused =
        match HttpServerRequest::from_head_at(head, context.remote_ip, context.protocol, started) {
            Ok(request) => return (Box::new(request), None),
            Err(refused) => refused,
        };
    let error = HttpError::new(refused.error.status()).log_message(refused.error.to_string());
    let mut head = refused.head;
    let fallback_line = head.start_line.clone();
    head.start_line.target = head
        .start_line
        .target
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let request = HttpServerRequest::new(*head, context.remote_ip, context.protocol)
        .unwrap_or_else(|_| fallback_request(&fallback_line));
    (Box::new(request), Some(error))
}

/// Runs a request that has no body (the application's
/// [`whole_request`](whirl_httpserver::HttpServerConnectionDelegate::whole_request)): the
/// steps the exchange would run one call at a time, in one flow, with no
/// exchange and no shared state made for it.
pub(crate) fn whole_request(
    app: &Application,
    connection: &Http1Connection,
    head: RequestHead,
) -> Flow {
    let (app, connection) = (app.clone(), connection.clone());
    // The job is made in the flow's own state, so it needs no box.
    Some(Box::pin(async move {
        let mut job = start(&app, &connection, head.start_line, head.headers);
        if job.streaming {
            // Prepared before the (empty) body, as a streamed one would be.
            begin(&mut job).await;
        }
        execute(&mut job, Vec::new()).await;
    }))
}

/// Tornado's `_execute` up to `prepare`: the method check, the XSRF check,
/// the current user, `prepare`. Marks the job done when it failed or the
/// handler finished.
async fn begin(job: &mut Job) {
    let result = async {
        checks(job)?;
        job.cx.current_user = guarded(job.handler.get_current_user(&mut job.cx)).await?;
        guarded(job.handler.prepare(&mut job.cx)).await?
    }
    .await;
    match result {
        Err(error) => fail(job, error),
        Ok(()) if job.cx.finished || job.cx.pending_error.is_some() => {
            finalize(job);
        }
        Ok(()) => {}
    }
}

/// The checks of `_execute` before the handler's own steps: an error
/// found early, the method, the XSRF cookie.
fn checks(job: &mut Job) -> Result<(), HttpError> {
    if let Some(error) = job.early.take() {
        return Err(error);
    }
    let method = job.cx.request.method();
    let supported = job.handler.supported_methods().contains(&method);
    let state_changing = !matches!(method, "GET" | "HEAD" | "OPTIONS");
    if !supported {
        return Err(job.cx.method_not_allowed());
    }
    if job.cx.settings().xsrf_cookies && state_changing {
        job.cx.check_xsrf_cookie()?;
    }
    Ok(())
}

/// The rest of `_execute` once the whole request arrived: for a buffered
/// body, parse it and `begin`; then the verb method, auto-finish and
/// `on_finish`.
async fn execute(job: &mut Job, body: Vec<u8>) {
    if !job.streaming && !job.done {
        job.cx.request.body = body;
        if let Err(e) = job.cx.request.parse_body() {
            fail(job, HttpError::new(400).log_message(e.to_string()));
        } else if let Err(error) = checks(job) {
            fail(job, error);
        } else {
            // The handler's steps in one future (one box).
            let method = known_method(job.cx.request.method());
            let ran = job.handler.run_buffered(&mut job.cx, &method).await;
            match ran {
                Ran::Failed(error) => fail(job, error),
                Ran::Prepared | Ran::Done => finalize(job),
                Ran::Abandoned => abandoned(job),
            }
        }
        return;
    }
    if !job.done {
        // Streamed: `begin` ran when the head came; now the verb method.
        let method = known_method(job.cx.request.method());
        let connection = job.cx.connection.clone();
        let open = open_response(&job.cx);
        let verb = guarded(job.handler.call(&method, &mut job.cx));
        match until_abandoned(verb, &connection, open).await {
            Some(result) => match result.and_then(|r| r) {
                Err(error) => fail(job, error),
                Ok(()) => finalize(job),
            },
            None => abandoned(job),
        }
    }
}

/// The method as it outlives the borrow of the context: a known one (any
/// method that got this far) as a static string, so no copy.
fn known_method(method: &str) -> std::borrow::Cow<'static, str> {
    match KNOWN_METHODS.iter().find(|known| **known == method) {
        Some(known) => (*known).into(),
        None => method.to_string().into(),
    }
}

/// The client left before its answer: the method was dropped (its awaits
/// cancelled); the handler is told.
fn abandoned(job: &mut Job) {
    log::debug!(
        "{} {}: the client went away",
        job.cx.request.method(),
        job.cx.request.uri()
    );
    if catch_unwind(AssertUnwindSafe(|| {
        job.handler.on_connection_close(&mut job.cx);
    }))
    .is_err()
    {
        log::error!("on_connection_close panicked");
    }
    end(job);
}

/// What [`until_abandoned`] is given to tell whether `cx`'s response has
/// finished: the connection's count of finished responses before it.
pub(crate) fn open_response(cx: &Context) -> u64 {
    cx.connection.responses_finished() - u64::from(cx.finished)
}

/// Runs `verb` until it completes, or — while its response is not
/// finished — until the connection closes (`None`): there is no one left
/// to answer. A handler that finished its response runs to its end. The
/// response is finished once the connection's count of finished
/// responses passed `before` (see [`open_response`]).
pub(crate) async fn until_abandoned<F: Future + Unpin>(
    mut verb: F,
    connection: &Http1Connection,
    before: u64,
) -> Option<F::Output> {
    // Made only once the verb waits: most answer on their first poll.
    let mut closed = None;
    std::future::poll_fn(move |task| {
        if let Poll::Ready(output) = Pin::new(&mut verb).poll(task) {
            return Poll::Ready(Some(output));
        }
        let closed = closed.get_or_insert_with(|| Box::pin(connection.closed()));
        let finished = connection.responses_finished() > before;
        if !finished && closed.as_mut().poll(task).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// Ends a request that went well: renders a pending `send_error`, finishes
/// if the handler did not, calls `on_finish`.
fn finalize(job: &mut Job) {
    if let Some(status) = job.cx.pending_error.take() {
        send_error(job, status, None);
    } else if !job.cx.finished {
        if let Err(error) = job.cx.finish() {
            log::debug!("could not finish {}: {error}", job.cx.request.uri());
        }
    }
    end(job);
}

/// Ends a request that failed: logs the error and answers with the error
/// page — or, when the headers are already out, closes the connection so
/// the client sees a cut response rather than a wrong one.
fn fail(job: &mut Job, error: HttpError) {
    log_error(&job.cx, &error);
    if job.cx.headers_written() {
        if !job.cx.finished {
            log::error!("cannot send an error response after the headers were sent");
            job.cx.connection.stream().close();
        }
    } else {
        send_error(job, error.status(), Some(&error));
    }
    end(job);
}

/// Tornado's `send_error`: clears the response, sets the status (with
/// `Allow` for a 405), lets the handler render the page, finishes.
fn send_error(job: &mut Job, status: u16, error: Option<&HttpError>) {
    job.cx.clear();
    match error {
        Some(error) => job.cx.set_status_reason(status, error.reason()),
        None => job.cx.set_status(status),
    }
    if status == 405 {
        let method = job.cx.request.method().to_string();
        let allow: Vec<&str> = job
            .handler
            .supported_methods()
            .iter()
            .copied()
            .filter(|m| *m != method)
            .collect();
        job.cx.headers.insert("Allow", allow.join(", "));
    }
    let rendered = catch_unwind(AssertUnwindSafe(|| {
        job.handler.write_error(&mut job.cx, status, error);
    }));
    if rendered.is_err() {
        log::error!("write_error panicked; sending the plain error page");
        job.cx.clear();
        job.cx.set_status(status);
        crate::handler::default_write_error(&mut job.cx, status, error);
    }
    if !job.cx.finished {
        if let Err(e) = job.cx.finish() {
            log::debug!("could not send the error page: {e}");
        }
    }
}

/// Marks the job done and calls `on_finish` (once).
fn end(job: &mut Job) {
    if job.done {
        return;
    }
    job.done = true;
    if catch_unwind(AssertUnwindSafe(|| job.handler.on_finish(&mut job.cx))).is_err() {
        log::error!("on_finish panicked");
    }
}

/// Logs a handler's error as Tornado's `log_exception` does: server errors
/// at `error`, client errors with a message at `warn`.
fn log_error(cx: &Context, error: &HttpError) {
    let summary = format!(
        "{} {} ({})",
        cx.request.method(),
        cx.request.uri(),
        ip_of(cx)
    );
    if error.status() >= 500 {
        log::error!("{summary}: {error}");
    } else if error.status() >= 400 && error.message().is_some() {
        // (A 3xx "error" is an answer already sent, such as
        // `authenticated`'s redirect to the login page: nothing to log.)
        log::warn!("{summary}: {error}");
    }
}

/// The client's address as the access log shows it.
fn ip_of(cx: &Context) -> String {
    cx.request
        .remote_ip
        .map_or_else(|| "-".to_string(), |ip| ip.to_string())
}

/// A request for a head nothing else could be built from (never expected:
/// the connection refuses bad hosts before this).
fn fallback_request(start_line: &RequestStartLine) -> HttpServerRequest {
    let head = RequestHead {
        start_line: RequestStartLine {
            method: start_line.method.clone(),
            target: "/".to_string(),
            version: whirl_httpserver::Version::Http10,
        },
        headers: HttpHeaders::new(),
    };
    match HttpServerRequest::new(head, None, "http") {
        Ok(request) => request,
        Err(e) => unreachable!("a bare HTTP/1.0 request always builds: {e}"),
    }
}

/// Runs a handler future, turning a panic into a 500.
pub(crate) fn guarded<F: Future + Unpin>(future: F) -> CatchUnwind<F> {
    CatchUnwind(future)
}

/// A future that catches a panic while polling and resolves to a 500.
pub(crate) struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, HttpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                Poll::Ready(Err(
                    HttpError::new(500).log_message(format!("handler panicked: {message}"))
                ))
            }
        }
    }
}
