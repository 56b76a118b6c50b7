//! [`HttpClientError`]: why a fetch failed — Tornado's `HTTPClientError`
//! (`HTTPError`), with code 599 for failures that produced no response.

use std::fmt;

use crate::response::HttpResponse;

/// The code of a failure that produced no HTTP response (a refused
/// connection, a timeout…), as in Tornado.
pub const NETWORK_ERROR_CODE: u16 = 599;

/// What kind of failure a [`HttpClientError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server answered with a non-2xx status (the response is
    /// attached).
    Status,
    /// The request is invalid (a bad URL, method or header).
    InvalidRequest,
    /// The host name did not resolve.
    Dns,
    /// The connection was refused or failed to open.
    Connect,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// The request waited longer than its `request_timeout` for a free
    /// slot (`max_clients` were busy).
    TimeoutInQueue,
    /// The connection took longer than `connect_timeout` to open.
    ConnectTimeout,
    /// The whole request took longer than `request_timeout`.
    RequestTimeout,
    /// The response body is larger than `max_body_size`.
    BodyTooLarge,
    /// The response is not valid HTTP (a malformed head, conflicting
    /// lengths, broken chunked coding).
    MalformedResponse,
    /// The connection closed before the response was complete.
    ConnectionClosed,
    /// More redirects than `max_redirects`.
    TooManyRedirects,
    /// The proxy refused the tunnel or answered wrongly.
    Proxy,
    /// Writing the request body failed (a body producer or a file).
    Body,
}

/// A failed fetch: either an HTTP error status (`code` is the status and
/// [`response`](Self::response) the answer) or a failure with no response
/// (`code` 599, [`NETWORK_ERROR_CODE`]), with a message saying what
/// happened. Tornado: `tornado.httpclient.HTTPClientError`.
#[derive(Debug, Clone)]
pub struct HttpClientError {
    /// The HTTP status, or 599.
    code: u16,
    /// What happened, as a sentence.
    message: String,
    /// The kind of failure.
    kind: ErrorKind,
    /// The response, for an error status.
    response: Option<Box<HttpResponse>>,
}

impl HttpClientError {
    /// A failure with no response (code 599).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> HttpClientError {
        HttpClientError {
            code: NETWORK_ERROR_CODE,
            message: message.into(),
            kind,
            response: None,
        }
    }

    /// The error for a response with a non-2xx status.
    pub fn from_response(response: HttpResponse) -> HttpClientError {
        HttpClientError {
            code: response.code,
            message: response.reason.clone(),
            kind: ErrorKind::Status,
            response: Some(Box::new(response)),
        }
    }

    /// The error for the last redirect of a chain longer than
    /// `max_redirects`: its status, and the response attached.
    pub(crate) fn too_many_redirects(response: HttpResponse, max: usize) -> HttpClientError {
        HttpClientError {
            code: response.code,
            message: format!(
                "stopped after {max} redirects at {}",
                response.effective_url
            ),
            kind: ErrorKind::TooManyRedirects,
            response: Some(Box::new(response)),
        }
    }

    /// The HTTP status, or 599 when there was no response. Tornado: `code`.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// What happened. Tornado: `message`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The response, for an error status. Tornado: `response`.
    pub fn response(&self) -> Option<&HttpResponse> {
        self.response.as_deref()
    }

    /// Takes the response out, for an error status.
    pub fn into_response(self) -> Option<HttpResponse> {
        self.response.map(|r| *r)
    }

    /// Whether it is a timeout of any kind.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::TimeoutInQueue | ErrorKind::ConnectTimeout | ErrorKind::RequestTimeout
        )
    }
}

impl fmt::Display for HttpClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.code, self.message)
    }
}

impl std::error::Error for HttpClientError {}

impl PartialEq for HttpClientError {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.kind == other.kind && self.message == other.message
    }
}
