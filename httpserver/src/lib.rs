//! whirl's HTTP/1.1 layer: Tornado's `httpserver`, `http1connection` and
//! `httputil`.
//!
//! Both roles of a connection live here: [`Http1Connection`] serves
//! requests, [`Http1ClientConnection`] sends them for the HTTP client; they
//! share the head codec ([`parse_request_head`], [`HttpHeaders`]), the body
//! [`Encoder`]/[`Decoder`] and the framing rules.
//!
//! [`HttpServer`] accepts connections and serves each with an
//! [`Http1Connection`], which hands every request to a
//! [`HttpServerConnectionDelegate`]: a request without a body is offered
//! whole ([`whole_request`](HttpServerConnectionDelegate::whole_request));
//! any other goes to the [`HttpMessageDelegate`] that
//! [`start_request`](HttpServerConnectionDelegate::start_request) makes —
//! its head, its body in pieces, its end. [`HttpServer::from_fn`] is the
//! simple case: a closure called with each whole [`HttpServerRequest`].
//! The web layer (`whirl-web`) is such a delegate.
mod body;
mod client_connection;
mod connection;
mod date;
mod delegate;
mod framing;
mod gzip;
mod gzip_delegate;
mod head;
mod headers;
mod httputil;
mod multicore;
mod request;
mod server;
mod shutdown;
mod spare;
mod start_line;
mod xheaders;

pub use body::{
    BodyError, ChunkHead, Decoded, Decoder, Encoder, Framing, MAX_CHUNK_EXTENSION, MAX_TRAILERS,
    MAX_TRAILER_SIZE,
};
pub use client_connection::{
    Http1ClientConnection, Http1ClientParams, HttpClientConnectionError, ResponseOutcome,
    MAX_INFORMATIONAL_RESPONSES,
};
pub use connection::{
    Http1Connection, Http1ConnectionParams, HttpOutputError, DEFAULT_BODY_TIMEOUT,
    DEFAULT_CHUNK_SIZE, DEFAULT_DORMANT_AFTER, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_CONNECTION_TIMEOUT, DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_REQUESTS, WRITE_HIGH_WATER,
};
pub use delegate::{Flow, HttpMessageDelegate, HttpServerConnectionDelegate, StartLine};
pub use framing::{
    content_length, request_framing, response_has_no_body, wants_keep_alive, FramingError,
};
pub use framing::{response_framing, response_wants_keep_alive};
pub use gzip::{GzipDecompressor, GzipError};
pub use gzip_delegate::GzipMessageDelegate;
pub use head::{
    parse_request_head, parse_response_head, HeadLimits, ParseError, RequestHead, ResponseHead,
};
pub use headers::{is_valid_header_name, is_valid_header_value, Decimal, HeaderError, HttpHeaders};
pub use httputil::{
    format_timestamp, format_unix_timestamp, parse_body_arguments, parse_cookie, parse_http_date,
    parse_multipart_form_data, parse_qs, parse_qs_bytes, parse_qsl_bytes, url_concat, Arguments,
    BodyArguments, Files, FormError, HttpFile, ParseBodyConfig, DEFAULT_MAX_FIELDS,
    DEFAULT_MAX_PARTS, DEFAULT_MAX_PART_HEADER_SIZE,
};
pub use multicore::{serve_threads, ServerThreads, SHUTDOWN_TIMEOUT};
pub use request::{HttpServerRequest, RefusedHead, RequestError};
pub use server::{HttpServer, DEFAULT_MAX_CONNECTIONS};
pub use shutdown::drain;
#[cfg(unix)]
pub use shutdown::{shutdown_on_signals, ShutdownSignals};
pub use start_line::{reason_phrase, RequestStartLine, ResponseStartLine, Version};
pub use xheaders::RequestContext;
