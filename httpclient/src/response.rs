//! [`HttpResponse`]: what a fetch returned — Tornado's
//! `tornado.httpclient.HTTPResponse`.

use std::fmt;
use std::time::Duration;

use whirl_httpserver::HttpHeaders;

use crate::error::HttpClientError;

/// Where the time of a request went, each measured from its start (Tornado's
/// `time_info`, with `curl`'s names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeInfo {
    /// Waiting for a free slot (`max_clients`).
    pub queue: Duration,
    /// Until the connection was open (and TLS done); zero for a reused one.
    pub connect: Duration,
    /// Until the request was written (`pretransfer`).
    pub pretransfer: Duration,
    /// Until the first byte of the response (`starttransfer`).
    pub starttransfer: Duration,
    /// Until the whole response arrived (`total`).
    pub total: Duration,
    /// Time spent following redirects before the final request.
    pub redirect: Duration,
}

/// A response. Tornado: `HTTPResponse`.
#[derive(Clone)]
pub struct HttpResponse {
    /// The status code.
    pub code: u16,
    /// The reason phrase (the standard one when the server sent none).
    pub reason: String,
    /// The response headers.
    pub headers: HttpHeaders,
    /// The body, decoded (empty when a `streaming_callback` took it).
    pub body: Vec<u8>,
    /// The URL finally fetched, after redirects.
    pub effective_url: String,
    /// How long the whole fetch took (redirects included).
    pub request_time: Duration,
    /// Where the time went.
    pub time_info: TimeInfo,
    /// For a non-2xx response fetched with `raise_error(false)`: the error
    /// it would have raised. Tornado: `error`.
    pub error: Option<Box<HttpClientError>>,
}

impl HttpResponse {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// Fails with the attached error, if any. Tornado: `rethrow`.
    ///
    /// # Errors
    ///
    /// The response's [`error`](Self::error).
    pub fn rethrow(&self) -> Result<(), HttpClientError> {
        match &self.error {
            Some(error) => Err((**error).clone()),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("code", &self.code)
            .field("reason", &self.reason)
            .field("effective_url", &self.effective_url)
            .field("headers", &self.headers)
            .field("body", &format_args!("{} bytes", self.body.len()))
            .field("request_time", &self.request_time)
            .finish()
    }
}
