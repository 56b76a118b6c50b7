//! whirl's asynchronous HTTP/1.1 client: Tornado's `httpclient` and
//! `simple_httpclient`, with what they lack — a connection pool, HTTP
//! proxies, and a multipart builder.
//!
//! [`AsyncHttpClient::fetch`] takes a URL or an [`HttpRequest`] and returns
//! an [`HttpResponse`] or an [`HttpClientError`] (code 599 when there was no
//! response, the status otherwise). [`HttpClient`] is the blocking form.
//!
//! # Examples
//!
//! ```
//! use whirl_httpclient::{AsyncHttpClient, HttpRequest};
//! use whirl_httpserver::{HttpHeaders, HttpServer, ResponseStartLine, Version};
//! use whirl_ioloop::IoLoop;
//!
//! let io_loop = IoLoop::new();
//! let server = HttpServer::from_fn(|request, connection| {
//!     let body = format!("you asked for {}", request.path());
//!     let mut headers = HttpHeaders::new();
//!     headers.insert("Content-Length", body.len().to_string());
//!     let ok = ResponseStartLine { version: Version::Http11, code: 200, reason: "OK".into() };
//!     let _ = connection.write_headers(&ok, &headers);
//!     let _ = connection.write(body);
//!     let _ = connection.finish();
//! });
//! let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];
//! let response = io_loop.run_sync(async move {
//!     let client = AsyncHttpClient::new();
//!     client.fetch(format!("http://{addr}/kettle")).await
//! });
//! assert_eq!(response.unwrap().text(), "you asked for /kettle");
//! ```

mod blocking;
mod client;
mod connect;
mod error;
mod exchange;
pub mod multipart;
mod pool;
mod request;
mod response;
mod writer;

pub use blocking::HttpClient;
pub use client::{
    AsyncHttpClient, ClientConfig, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_IDLE_PER_HOST,
};
pub use connect::DEFAULT_PROXY_PORT;
pub use error::{ErrorKind, HttpClientError, NETWORK_ERROR_CODE};
pub use multipart::Multipart;
pub use request::{
    BodyFuture, BodyProducer, HeaderCallback, HttpRequest, RequestBody, StreamingCallback,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_HEADER_SIZE, DEFAULT_MAX_REDIRECTS,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_USER_AGENT,
};
pub use response::{HttpResponse, TimeInfo};
pub use writer::BodyWriter;
