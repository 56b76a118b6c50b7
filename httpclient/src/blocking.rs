//! [`HttpClient`]: a blocking client for scripts and tests — Tornado's
//! `HTTPClient`, which runs a private loop for each fetch.

use std::fmt;

use whirl_ioloop::IoLoop;

use crate::client::{AsyncHttpClient, ClientConfig};
use crate::error::HttpClientError;
use crate::request::HttpRequest;
use crate::response::HttpResponse;

/// A blocking HTTP client: each [`fetch`](Self::fetch) runs a private
/// loop until the response is in. Tornado: `tornado.httpclient.HTTPClient`.
///
/// Called from inside a running loop (a handler), it blocks that loop
/// until the fetch completes — the `requests`-in-a-handler anti-pattern,
/// which is what it shows; use [`AsyncHttpClient`] there.
///
/// # Examples
///
/// ```no_run
/// use whirl_httpclient::HttpClient;
///
/// let client = HttpClient::new();
/// let response = client.fetch("http://www.example.com/").unwrap();
/// println!("{}", response.code);
/// ```
pub struct HttpClient {
    /// The private loop.
    io_loop: IoLoop,
    /// The client it runs (its pool lives on the private loop).
    client: AsyncHttpClient,
}

impl HttpClient {
    /// A blocking client with the default settings.
    pub fn new() -> HttpClient {
        HttpClient::with_config(ClientConfig::default())
    }

    /// A blocking client with `config`.
    pub fn with_config(config: ClientConfig) -> HttpClient {
        // The private loop must not become the thread's current one
        // (Tornado: `IOLoop(make_current=False)`); `IoLoop::new` makes it
        // current when there is none.
        let had_current = IoLoop::try_current().is_some();
        let io_loop = IoLoop::new();
        if !had_current {
            IoLoop::clear_current();
        }
        HttpClient {
            io_loop,
            client: AsyncHttpClient::with_config(config),
        }
    }

    /// Fetches `request`, blocking until it completes. Tornado:
    /// `HTTPClient.fetch`.
    ///
    /// # Errors
    ///
    /// As [`AsyncHttpClient::fetch`].
    pub fn fetch(&self, request: impl Into<HttpRequest>) -> Result<HttpResponse, HttpClientError> {
        let request = request.into();
        self.io_loop.run_sync(self.client.fetch(request))
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("client", &self.client)
            .finish()
    }
}

impl Drop for HttpClient {
    fn drop(&mut self) {
        self.client.close();
    }
}
