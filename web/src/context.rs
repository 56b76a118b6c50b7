//! [`Context`]: one request and its response, as a handler sees them — the
//! half of Tornado's `RequestHandler` that is not user code (`request`,
//! `get_argument`, `set_header`, `write`, `flush`, `finish`, `redirect`).
//!
//! Cookies, XSRF and the current user are in `security.rs`; templates and
//! URLs in `render.rs`; the bytes on the wire in `output.rs`.

use std::collections::HashMap;
use std::fmt;

use whirl_httpserver::{HeaderError, Http1Connection, HttpHeaders, HttpServerRequest};

use crate::application::{Application, Settings};
use crate::error::HttpError;
use crate::output::Output;
use crate::redirect_url::is_protocol_relative;
use crate::routing::PathArguments;

/// The `Server` header every response carries unless the handler changes
/// it (Tornado sends `TornadoServer/<version>`).
pub const SERVER_HEADER: &str = concat!("whirl/", env!("CARGO_PKG_VERSION"));

/// One request and the response being built for it. Handlers get it as
/// `cx` in every method. Tornado: the request-facing half of
/// `RequestHandler` (`self.request`, `self.get_argument`,
/// `self.set_header`, `self.write`, …).
///
/// Writing is buffered: [`write`](Self::write) appends to the body,
/// [`flush`](Self::flush) sends the headers and what is written so far
/// (then the response is chunked on HTTP/1.1 — for streaming), and
/// [`finish`](Self::finish) ends it (the framework finishes for you when a
/// handler returns without doing so).
pub struct Context {
    /// The request (its body is complete by the time the verb method runs,
    /// unless the handler streams it). Boxed: the context is moved into
    /// place several times, and the request is most of its size.
    pub(crate) request: Box<HttpServerRequest>,
    /// The connection the response goes out on.
    pub(crate) connection: Http1Connection,
    /// The application serving the request.
    pub(crate) app: Application,
    /// The route's captured groups.
    pub(crate) path: PathArguments,
    /// The response status.
    pub(crate) status: u16,
    /// A reason phrase instead of the standard one.
    pub(crate) reason: Option<String>,
    /// The response headers (sent at the first flush).
    pub(crate) headers: HttpHeaders,
    /// Body bytes written but not yet flushed.
    pub(crate) buffer: Vec<u8>,
    /// What has been sent, and how.
    pub(crate) output: Output,
    /// Whether `finish` ran.
    pub(crate) finished: bool,
    /// The user, from `get_current_user`.
    pub(crate) current_user: Option<String>,
    /// This request's raw XSRF token, once known.
    pub(crate) xsrf_raw: Option<crate::xsrf::XsrfToken>,
    /// This request's masked XSRF token, once asked for (stable within a
    /// request).
    pub(crate) xsrf_masked: Option<String>,
    /// A body limit for this request only (`set_max_body_size`).
    pub(crate) max_body_size: Option<u64>,
    /// A status `send_error` asked for, rendered once the method returns.
    pub(crate) pending_error: Option<u16>,
}

impl Context {
    /// A context for `request`, with Tornado's default response: `200`,
    /// `Content-Type: text/html; charset=UTF-8`, and a `Server` header.
    pub(crate) fn new(
        request: Box<HttpServerRequest>,
        connection: Http1Connection,
        app: Application,
        path: PathArguments,
    ) -> Context {
        let headers = default_headers();
        Context {
            request,
            connection,
            app,
            path,
            status: 200,
            reason: None,
            headers,
            buffer: Vec::new(),
            output: Output::default(),
            finished: false,
            current_user: None,
            xsrf_raw: None,
            xsrf_masked: None,
            max_body_size: None,
            pending_error: None,
        }
    }

    // ----- the request ---------------------------------------------------

    /// The request: method, uri, path, query, version, headers, body,
    /// remote_ip, protocol, host, arguments, files. Tornado: `self.request`.
    pub fn request(&self) -> &HttpServerRequest {
        &self.request
    }

    /// The request, mutably (to take its body without copying, say).
    pub fn request_mut(&mut self) -> &mut HttpServerRequest {
        &mut self.request
    }

    /// The connection the response goes out on.
    pub fn connection(&self) -> &Http1Connection {
        &self.connection
    }

    /// The application serving this request. Tornado: `self.application`.
    pub fn application(&self) -> &Application {
        &self.app
    }

    /// The application's settings. Tornado: `self.settings`.
    pub fn settings(&self) -> &Settings {
        self.app.settings()
    }

    /// The route's unnamed groups, percent-decoded, in order (`None` for a
    /// group that did not take part). Tornado: `self.path_args`.
    pub fn path_args(&self) -> &[Option<String>] {
        &self.path.args
    }

    /// Unnamed group `index`, when it took part.
    pub fn path_arg(&self, index: usize) -> Option<&str> {
        self.path.args.get(index).and_then(|a| a.as_deref())
    }

    /// Unnamed group `index` as it appears in the URL (still
    /// percent-encoded) — for code that decodes it itself, such as
    /// [`static_files::resolve_path`](crate::static_files::resolve_path).
    pub fn path_arg_raw(&self, index: usize) -> Option<&str> {
        self.path.raw_args.get(index).and_then(|a| a.as_deref())
    }

    /// The route's named groups, percent-decoded. Tornado:
    /// `self.path_kwargs`.
    pub fn path_kwargs(&self) -> &HashMap<String, Option<String>> {
        &self.path.kwargs
    }

    /// Named group `name`, when it took part.
    pub fn path_kwarg(&self, name: &str) -> Option<&str> {
        self.path.kwargs.get(name).and_then(|a| a.as_deref())
    }

    // ----- arguments -----------------------------------------------------

    /// The last value of argument `name` (query or body), whitespace
    /// stripped and control characters removed. Tornado: `get_argument`.
    ///
    /// # Errors
    ///
    /// 400 when it is missing or not UTF-8.
    pub fn get_argument(&self, name: &str) -> Result<String, HttpError> {
        last_argument(&self.request.arguments, name)?
            .ok_or_else(|| HttpError::missing_argument(name))
    }

    /// As [`get_argument`](Self::get_argument), with a default when it is
    /// missing. Tornado: `get_argument(name, default)`.
    ///
    /// # Errors
    ///
    /// 400 when it is not UTF-8.
    pub fn get_argument_or(&self, name: &str, default: &str) -> Result<String, HttpError> {
        Ok(last_argument(&self.request.arguments, name)?.unwrap_or_else(|| default.to_string()))
    }

    /// Every value of argument `name` (query then body). Tornado:
    /// `get_arguments`.
    ///
    /// # Errors
    ///
    /// 400 when one is not UTF-8.
    pub fn get_arguments(&self, name: &str) -> Result<Vec<String>, HttpError> {
        all_arguments(&self.request.arguments, name)
    }

    /// The last value of query argument `name`. Tornado:
    /// `get_query_argument`.
    ///
    /// # Errors
    ///
    /// 400 when it is missing or not UTF-8.
    pub fn get_query_argument(&self, name: &str) -> Result<String, HttpError> {
        last_argument(&self.request.query_arguments, name)?
            .ok_or_else(|| HttpError::missing_argument(name))
    }

    /// As [`get_query_argument`](Self::get_query_argument), with a default.
    ///
    /// # Errors
    ///
    /// 400 when it is not UTF-8.
    pub fn get_query_argument_or(&self, name: &str, default: &str) -> Result<String, HttpError> {
        Ok(last_argument(&self.request.query_arguments, name)?
            .unwrap_or_else(|| default.to_string()))
    }

    /// Every value of query argument `name`. Tornado:
    /// `get_query_arguments`.
    ///
    /// # Errors
    ///
    /// 400 when one is not UTF-8.
    pub fn get_query_arguments(&self, name: &str) -> Result<Vec<String>, HttpError> {
        all_arguments(&self.request.query_arguments, name)
    }

    /// The last value of body argument `name`. Tornado:
    /// `get_body_argument`.
    ///
    /// # Errors
    ///
    /// 400 when it is missing or not UTF-8.
    pub fn get_body_argument(&self, name: &str) -> Result<String, HttpError> {
        last_argument(&self.request.body_arguments, name)?
            .ok_or_else(|| HttpError::missing_argument(name))
    }

    /// As [`get_body_argument`](Self::get_body_argument), with a default.
    ///
    /// # Errors
    ///
    /// 400 when it is not UTF-8.
    pub fn get_body_argument_or(&self, name: &str, default: &str) -> Result<String, HttpError> {
        Ok(last_argument(&self.request.body_arguments, name)?
            .unwrap_or_else(|| default.to_string()))
    }

    /// Every value of body argument `name`. Tornado:
    /// `get_body_arguments`.
    ///
    /// # Errors
    ///
    /// 400 when one is not UTF-8.
    pub fn get_body_arguments(&self, name: &str) -> Result<Vec<String>, HttpError> {
        all_arguments(&self.request.body_arguments, name)
    }

    /// Sets the most body bytes this request may send (it replaces the
    /// server's `max_body_size` for this request only). Call it in
    /// [`prepare`](crate::RequestHandler::prepare) of a handler that
    /// streams its body. Tornado: `request.connection.set_max_body_size`.
    pub fn set_max_body_size(&mut self, max: u64) {
        self.max_body_size = Some(max);
    }

    // ----- the response head ---------------------------------------------

    /// Sets the status; its reason phrase is the standard one unless
    /// [`set_status_reason`](Self::set_status_reason) gives another.
    /// Tornado: `set_status`.
    pub fn set_status(&mut self, status: u16) {
        self.status = status;
        self.reason = None;
    }

    /// Sets the status with a reason phrase of your own. A reason that is
    /// not a valid reason phrase (a control character such as CR or LF) or
    /// that holds `<` becomes `Unknown`, as in Tornado: it is shown on error
    /// pages, so it must not carry markup.
    pub fn set_status_reason(&mut self, status: u16, reason: impl Into<String>) {
        let reason = reason.into();
        let valid = reason
            .chars()
            .all(|c| matches!(c, '\t' | ' '..='~' | '\u{80}'..='\u{ff}') && c != '<');
        self.status = status;
        self.reason = Some(if valid { reason } else { "Unknown".to_string() });
    }

    /// The response status. Tornado: `get_status`.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase that will be sent.
    pub fn reason(&self) -> &str {
        self.reason
            .as_deref()
            .unwrap_or_else(|| whirl_httpserver::reason_phrase(self.status))
    }

    /// Sets response header `name` to `value`, replacing any. Tornado:
    /// `set_header`.
    ///
    /// # Errors
    ///
    /// 500 for a name that is not a token, or a value with a control
    /// character (CR or LF would let it inject headers).
    pub fn set_header(&mut self, name: &str, value: impl fmt::Display) -> Result<(), HttpError> {
        let set = self.headers.try_insert_display(name, &value);
        set.map_err(|e| header_error(e, name, &value))
    }

    /// Adds a value to response header `name` (sent as another line).
    /// Tornado: `add_header`.
    ///
    /// # Errors
    ///
    /// As [`set_header`](Self::set_header).
    pub fn add_header(&mut self, name: &str, value: impl fmt::Display) -> Result<(), HttpError> {
        let added = self.headers.try_add_display(name, &value);
        added.map_err(|e| header_error(e, name, &value))
    }

    /// Removes response header `name`. Tornado: `clear_header`.
    pub fn clear_header(&mut self, name: &str) {
        self.headers.remove(name);
    }

    /// The response headers set so far.
    pub fn response_headers(&self) -> &HttpHeaders {
        &self.headers
    }

    /// Resets the response to Tornado's defaults (status 200, default
    /// headers, empty body). Tornado: `clear`.
    pub fn clear(&mut self) {
        self.headers = default_headers();
        self.buffer.clear();
        self.status = 200;
        self.reason = None;
    }

    // ----- the body --------------------------------------------------------

    /// Appends to the response body. Text and bytes go as they are; a
    /// `serde_json::Value` is sent as JSON with `Content-Type:
    /// application/json` (Tornado's `write(dict)`; for any other
    /// `Serialize` type see [`write_json`](Self::write_json)). Tornado:
    /// `write`.
    ///
    /// Writing after [`finish`](Self::finish) is a mistake in the handler:
    /// it is logged and the bytes are dropped.
    pub fn write(&mut self, body: impl Body) {
        if self.finished {
            log::error!(
                "write() after finish() on {} {}: dropped",
                self.request.method(),
                self.request.uri()
            );
            return;
        }
        let (bytes, json) = body.into_bytes();
        if json {
            self.headers
                .insert("Content-Type", "application/json; charset=UTF-8");
        }
        if self.buffer.is_empty() {
            self.buffer = bytes;
        } else {
            self.buffer.extend_from_slice(&bytes);
        }
    }

    /// Appends `value` as JSON (with `</` escaped, so it is safe inside
    /// `<script>`) and sets `Content-Type: application/json`. Tornado:
    /// `write(dict)`.
    ///
    /// # Errors
    ///
    /// 500 when `value` cannot be serialised (a map with non-string keys).
    pub fn write_json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), HttpError> {
        let json = crate::escape::json_encode(value)?;
        self.headers
            .insert("Content-Type", "application/json; charset=UTF-8");
        self.write(json);
        Ok(())
    }

    /// Whether [`finish`](Self::finish) ran. Tornado: `_finished`.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the headers were sent (by a flush). Tornado:
    /// `_headers_written`.
    pub fn headers_written(&self) -> bool {
        self.output.headers_written()
    }

    /// Sends the headers (the first time) and the body written so far, and
    /// waits until the bytes reach the kernel: a streaming response that
    /// awaits each flush never queues more than one piece. Without a
    /// `Content-Length`, an HTTP/1.1 response is then sent chunked.
    /// Tornado: `flush`.
    ///
    /// # Errors
    ///
    /// When the response is finished or the connection closed.
    pub async fn flush(&mut self) -> Result<(), HttpError> {
        if self.finished {
            return Err(HttpError::new(500).log_message("flush() after finish()"));
        }
        let written = self.send(false)?;
        if let Some(written) = written {
            written
                .await
                .map_err(|e| HttpError::new(500).log_message(format!("flush failed: {e}")))?;
        }
        Ok(())
    }

    /// Ends the response: sends the headers (with a `Content-Length`, an
    /// `Etag` for a `GET` 200 — answered 304 when the client's
    /// `If-None-Match` matches), the rest of the body, and the end of a
    /// chunked body. Returns at once; the bytes go out in the background.
    /// Tornado: `finish`.
    ///
    /// # Errors
    ///
    /// When already finished, or the connection refused the response.
    pub fn finish(&mut self) -> Result<(), HttpError> {
        if self.finished {
            return Err(HttpError::new(500).log_message("finish() called twice"));
        }
        self.send(true)?;
        self.finished = true;
        self.request.mark_finished();
        Ok(())
    }

    /// Redirects to `url` (301 if `permanent`, else 302) and finishes.
    /// A relative `url` is resolved against the request path. Tornado:
    /// `redirect`.
    ///
    /// # Errors
    ///
    /// 500 when the headers were already sent or `url` has a control
    /// character.
    pub fn redirect(&mut self, url: &str, permanent: bool) -> Result<(), HttpError> {
        self.redirect_with_status(url, if permanent { 301 } else { 302 })
    }

    /// Redirects with a status of your choice (303, 307, 308…).
    ///
    /// # Errors
    ///
    /// As [`redirect`](Self::redirect).
    pub fn redirect_with_status(&mut self, url: &str, status: u16) -> Result<(), HttpError> {
        if self.headers_written() {
            return Err(HttpError::new(500).log_message("cannot redirect after headers were sent"));
        }
        let location = join_url(self.request.path(), url);
        self.set_header("Location", location)?;
        self.set_status(status);
        self.finish()
    }

    /// Answers with the error page for `status` (from the handler's
    /// [`write_error`](crate::RequestHandler::write_error)) once the
    /// current method returns; what was written so far is discarded.
    /// Returning `Err(HttpError::new(status))` does the same. Tornado:
    /// `send_error`.
    pub fn send_error(&mut self, status: u16) {
        self.pending_error = Some(status);
    }

    /// The 405 for this request, with `Allow` listing what the handler
    /// supports (used by the verb methods' defaults).
    pub(crate) fn method_not_allowed(&mut self) -> HttpError {
        HttpError::new(405).log_message(format!("{} is not implemented", self.request.method()))
    }
}

/// What [`Context::write`] accepts: text, bytes, or JSON.
pub trait Body {
    /// The bytes, and whether they are JSON.
    fn into_bytes(self) -> (Vec<u8>, bool);
}

/// A copy of `bytes` in a spare write buffer of this thread (see
/// `whirl_iostream::spare_write_buffer`): a body written from borrowed
/// bytes, once sent, leaves its buffer to the next one, so a response
/// costs no allocation for it.
fn pooled_copy(bytes: &[u8]) -> Vec<u8> {
    let mut copy = whirl_iostream::spare_write_buffer(bytes.len());
    copy.extend_from_slice(bytes);
    copy
}

impl Body for &str {
    fn into_bytes(self) -> (Vec<u8>, bool) {
        (pooled_copy(self.as_bytes()), false)
    }
}

impl Body for String {
    fn into_bytes(self) -> (Vec<u8>, bool) {
        (self.into_bytes(), false)
    }
}

impl Body for &String {
    fn into_bytes(self) -> (Vec<u8>, bool) {
        (pooled_copy(self.as_bytes()), false)
    }
}

impl Body for Vec<u8> {
    fn into_bytes(self) -> (Vec<u8>, bool) {
        (self, false)
    }
}

impl Body for &[u8] {
    fn into_bytes(self) -> (Vec<u8>, bool) {
        (pooled_copy(self), false)
    }
}

impl Body for &Vec<u8> {
    fn into_bytes(self) -> (Vec<u8>, bool) {
        (pooled_copy(self), false)
    }
}

impl Body for serde_json::Value {
    fn into_bytes(self) -> (Vec<u8>, bool) {
        let text = crate::escape::json_encode(&self).unwrap_or_else(|_| "null".to_string());
        (text.into_bytes(), true)
    }
}

/// The last value of `name`, cleaned as Tornado's `_get_argument` does.
fn last_argument(
    arguments: &whirl_httpserver::Arguments,
    name: &str,
) -> Result<Option<String>, HttpError> {
    match arguments.get(name).and_then(|values| values.last()) {
        Some(value) => clean_argument(name, value).map(Some),
        None => Ok(None),
    }
}

/// Every value of `name`, cleaned.
fn all_arguments(
    arguments: &whirl_httpserver::Arguments,
    name: &str,
) -> Result<Vec<String>, HttpError> {
    arguments
        .get(name)
        .map(|values| values.iter().map(|v| clean_argument(name, v)).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// UTF-8 (else 400), control characters other than whitespace removed,
/// surrounding whitespace stripped (Tornado's `decode_argument`,
/// `_remove_control_chars_regex`, `strip=True`).
fn clean_argument(name: &str, value: &[u8]) -> Result<String, HttpError> {
    let text = std::str::from_utf8(value).map_err(|_| {
        HttpError::new(400).log_message(format!("Invalid unicode in argument {name}"))
    })?;
    let cleaned: String = text
        .chars()
        .filter(|&c| !matches!(c, '\x00'..='\x08' | '\x0e'..='\x1f'))
        .collect();
    Ok(cleaned.trim().to_string())
}

/// The 500 for a header the map refused (Tornado's `_convert_header_value`
/// refuses the same): a name that is not a token, or a value with a control
/// character.
fn header_error(error: HeaderError, name: &str, value: &dyn fmt::Display) -> HttpError {
    let message = match error {
        HeaderError::InvalidName => format!("Invalid header name {name:?}"),
        _ => format!("Unsafe header value {:?}", value.to_string()),
    };
    HttpError::new(500).log_message(message)
}

/// Tornado's default response headers: `Server` and an HTML `Content-Type`,
/// copied from a map made once per thread (a copy costs no allocation once
/// a response's map was dropped, see `HttpHeaders`).
fn default_headers() -> HttpHeaders {
    thread_local! {
        static DEFAULTS: HttpHeaders = {
            let mut headers = HttpHeaders::new();
            headers.insert("Server", SERVER_HEADER);
            headers.insert("Content-Type", "text/html; charset=UTF-8");
            headers
        };
    }
    DEFAULTS.with(HttpHeaders::clone)
}

/// `url` resolved against the request `path`: absolute URLs and absolute
/// paths as they are, relative ones beside the last segment (enough of
/// `urljoin` for redirects). A join a browser would read as another host
/// (`//evil.com/` + `x`, or `/` + `\evil.com`) is not made: the relative
/// URL goes as it is, as Tornado sends it, and the browser resolves it on
/// this host.
fn join_url(path: &str, url: &str) -> String {
    if url.starts_with('/') || url.contains("://") {
        return url.to_string();
    }
    let base = path.rfind('/').map_or("/", |i| &path[..=i]);
    let joined = format!("{base}{url}");
    if is_protocol_relative(&joined) {
        return url.to_string();
    }
    joined
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("request", &self.request)
            .field("status", &self.status)
            .field("finished", &self.finished)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_cleaned_like_tornado() {
        assert_eq!(clean_argument("a", b"  x\x01y \t").unwrap(), "xy");
        assert_eq!(clean_argument("a", b"\xff").unwrap_err().status(), 400);
    }

    #[test]
    fn relative_redirects_resolve_beside_the_path() {
        assert_eq!(join_url("/a/b", "c"), "/a/c");
        assert_eq!(join_url("/a/b", "/c"), "/c");
        assert_eq!(join_url("/a/", "c?x=1"), "/a/c?x=1");
        assert_eq!(join_url("/a", "https://x.org/"), "https://x.org/");
    }

    #[test]
    fn regression_relative_redirects_are_never_joined_into_another_host() {
        assert_eq!(join_url("//evil.com/x", "target"), "target");
        assert_eq!(join_url("/", "\\evil.com"), "\\evil.com");
        assert_eq!(join_url("/a", "\t/evil.com"), "\t/evil.com");
        assert_eq!(join_url("/a//b/c", "d"), "/a//b/d");
    }
}
