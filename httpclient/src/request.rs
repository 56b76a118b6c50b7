//! [`HttpRequest`]: what to fetch and how — Tornado's
//! `tornado.httpclient.HTTPRequest`, with its fields and defaults, as a
//! builder.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use whirl_httpserver::HttpHeaders;

use crate::error::HttpClientError;
use crate::multipart::Multipart;
use crate::writer::BodyWriter;

/// Default time allowed to open a connection: 20 s (Tornado's).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Default time allowed for the whole request, queueing included: 20 s
/// (Tornado's).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Default most redirects followed: 5 (Tornado's).
pub const DEFAULT_MAX_REDIRECTS: usize = 5;
/// Default most response body bytes: 100 MiB (Tornado's).
pub const DEFAULT_MAX_BODY_SIZE: u64 = 100 * 1024 * 1024;
/// Default most response head bytes: 64 KiB (Tornado's).
pub const DEFAULT_MAX_HEADER_SIZE: usize = 64 * 1024;
/// The `User-Agent` sent unless the request sets one.
pub const DEFAULT_USER_AGENT: &str = concat!("whirl/", env!("CARGO_PKG_VERSION"));

/// A future writing a request body through a [`BodyWriter`].
pub type BodyFuture = Pin<Box<dyn Future<Output = Result<(), HttpClientError>>>>;

/// Writes a request body piece by piece (Tornado's `body_producer`); called
/// once per attempt (again for a 307/308 redirect).
pub type BodyProducer = Rc<dyn Fn(BodyWriter) -> BodyFuture>;

/// Receives the response body piece by piece instead of buffering it
/// (Tornado's `streaming_callback`).
pub type StreamingCallback = Rc<RefCell<dyn FnMut(Vec<u8>)>>;

/// Receives each response head line — the status line, each
/// `Name: value\r\n`, and the final `\r\n` (Tornado's `header_callback`).
pub type HeaderCallback = Rc<RefCell<dyn FnMut(&str)>>;

/// The body of a request.
#[derive(Clone, Default)]
pub enum RequestBody {
    /// No body.
    #[default]
    Empty,
    /// These bytes (sent with a `Content-Length`).
    Bytes(Vec<u8>),
    /// Written by a producer: with a `Content-Length` if the request sets
    /// one, else chunked.
    Producer(BodyProducer),
    /// A `multipart/form-data` form, streamed (files read from disk as
    /// they are sent) with its `Content-Length`.
    Multipart(Multipart),
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestBody::Empty => f.write_str("Empty"),
            RequestBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            RequestBody::Producer(_) => f.write_str("Producer"),
            RequestBody::Multipart(m) => f.debug_tuple("Multipart").field(m).finish(),
        }
    }
}

/// A request to fetch: Tornado's `HTTPRequest`, with its defaults. Build
/// it from a URL and chain the settings; `&str` and `String` convert to a
/// `GET`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use whirl_httpclient::HttpRequest;
///
/// let request = HttpRequest::post("https://api.example.com/v1/items")
///     .header("Accept", "application/json")
///     .body(r#"{"name": "kettle"}"#)
///     .request_timeout(Duration::from_secs(5));
/// assert_eq!(request.method, "POST");
/// ```
#[derive(Clone)]
pub struct HttpRequest {
    /// The URL (`http` or `https`).
    pub url: String,
    /// The method. Default is `GET`.
    pub method: String,
    /// Headers to send (the client adds `Host`, `User-Agent`,
    /// `Accept-Encoding`, `Content-Length` or `Transfer-Encoding`, and
    /// `Authorization` for basic auth, unless set here).
    pub headers: HttpHeaders,
    /// The body. Default is none.
    pub body: RequestBody,
    /// Basic auth user; when none, credentials in the URL
    /// (`http://user:pass@host/`) are used, as in Tornado. Default is none.
    pub auth_username: Option<String>,
    /// Basic auth password. Default is none.
    pub auth_password: Option<String>,
    /// Time allowed to open the connection; zero means no limit. Default
    /// is 20 s.
    pub connect_timeout: Duration,
    /// Time allowed for the whole request (queueing, connecting, sending,
    /// receiving); zero means no limit, as in Tornado. Default is 20 s.
    pub request_timeout: Duration,
    /// Follow 3xx redirects. Default is `true`.
    pub follow_redirects: bool,
    /// Most redirects followed. Default is 5.
    pub max_redirects: usize,
    /// `User-Agent` to send. Default is `whirl/<version>`.
    pub user_agent: Option<String>,
    /// Ask for gzip and decode it. Default is `true`.
    pub decompress_response: bool,
    /// Verify the server's certificate (https). Default is `true`.
    pub validate_cert: bool,
    /// PEM file of the certificate authorities to trust instead of the
    /// system's. Default is none.
    pub ca_certs: Option<PathBuf>,
    /// PEM file of a client certificate. Default is none.
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's key. Default is none.
    pub client_key: Option<PathBuf>,
    /// Receives the body piece by piece (then `HttpResponse::body` stays
    /// empty). Default is none.
    pub streaming_callback: Option<StreamingCallback>,
    /// Receives each response head line. Default is none.
    pub header_callback: Option<HeaderCallback>,
    /// Send `Expect: 100-continue` and the body only once the server says
    /// `100 Continue`. Default is `false`.
    pub expect_100_continue: bool,
    /// Allow methods other than the standard ones, and bodies where they
    /// are unusual. Default is `false`.
    pub allow_nonstandard_methods: bool,
    /// Most response body bytes. Default is 100 MiB.
    pub max_body_size: u64,
    /// Most response head bytes. Default is 64 KiB.
    pub max_header_size: usize,
    /// HTTP proxy host. Default is none.
    pub proxy_host: Option<String>,
    /// HTTP proxy port. Default is none (8080 when a host is set).
    pub proxy_port: Option<u16>,
    /// Proxy basic auth user. Default is none.
    pub proxy_username: Option<String>,
    /// Proxy basic auth password. Default is none.
    pub proxy_password: Option<String>,
    /// Fail with [`HttpClientError`] on a non-2xx status (the response is
    /// attached); when `false`, such responses are returned with their
    /// `error` set. Tornado: `fetch(..., raise_error=True)`. Default is
    /// `true`.
    pub raise_error: bool,
    /// A header given to [`header`](Self::header) that could not be
    /// added (the fetch fails with it).
    pub(crate) invalid_header: Option<String>,
}

impl HttpRequest {
    /// A `GET` of `url` with Tornado's defaults.
    pub fn new(url: impl Into<String>) -> HttpRequest {
        HttpRequest {
            url: url.into(),
            method: "GET".to_string(),
            headers: HttpHeaders::new(),
            body: RequestBody::Empty,
            auth_username: None,
            auth_password: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            follow_redirects: true,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            user_agent: None,
            decompress_response: true,
            validate_cert: true,
            ca_certs: None,
            client_cert: None,
            client_key: None,
            streaming_callback: None,
            header_callback: None,
            expect_100_continue: false,
            allow_nonstandard_methods: false,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            proxy_host: None,
            proxy_port: None,
            proxy_username: None,
            proxy_password: None,
            raise_error: true,
            invalid_header: None,
        }
    }

    /// A `GET` of `url`.
    pub fn get(url: impl Into<String>) -> HttpRequest {
        HttpRequest::new(url)
    }

    /// A `POST` to `url`.
    pub fn post(url: impl Into<String>) -> HttpRequest {
        HttpRequest::new(url).method("POST")
    }

    /// A `PUT` to `url`.
    pub fn put(url: impl Into<String>) -> HttpRequest {
        HttpRequest::new(url).method("PUT")
    }

    /// A `DELETE` of `url`.
    pub fn delete(url: impl Into<String>) -> HttpRequest {
        HttpRequest::new(url).method("DELETE")
    }

    /// Sets the method.
    pub fn method(mut self, method: impl Into<String>) -> HttpRequest {
        self.method = method.into();
        self
    }

    /// Adds a header (names are case-insensitive; values must not contain
    /// CR or LF, or the fetch fails as an invalid request).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpRequest {
        let (name, value) = (name.into(), value.into());
        if self.headers.try_add(name.clone(), value).is_err() {
            // Remembered and refused when fetched, so the builder chain
            // stays simple and nothing invalid is ever sent.
            self.invalid_header = Some(name);
        }
        self
    }

    /// Sets the body (sent with a `Content-Length`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> HttpRequest {
        self.body = RequestBody::Bytes(body.into());
        self
    }

    /// Has `producer` write the body piece by piece (chunked unless a
    /// `Content-Length` header is set). Tornado: `body_producer`.
    ///
    /// # Examples
    ///
    /// ```
    /// use whirl_httpclient::HttpRequest;
    ///
    /// let request = HttpRequest::post("http://127.0.0.1:8888/upload").body_producer(|writer| {
    ///     Box::pin(async move {
    ///         for i in 0..3 {
    ///             writer.write(format!("piece {i}\n")).await?;
    ///         }
    ///         Ok(())
    ///     })
    /// });
    /// # let _ = request;
    /// ```
    pub fn body_producer<F>(mut self, producer: F) -> HttpRequest
    where
        F: Fn(BodyWriter) -> BodyFuture + 'static,
    {
        self.body = RequestBody::Producer(Rc::new(producer));
        self
    }

    /// Sends `form` as `multipart/form-data` (its `Content-Type` and
    /// `Content-Length` set), streaming files from disk.
    pub fn multipart(mut self, form: Multipart) -> HttpRequest {
        self.body = RequestBody::Multipart(form);
        self
    }

    /// Basic authentication. Tornado: `auth_username`, `auth_password`.
    pub fn basic_auth(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> HttpRequest {
        self.auth_username = Some(username.into());
        self.auth_password = Some(password.into());
        self
    }

    /// Sets `connect_timeout`. Default is 20 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> HttpRequest {
        self.connect_timeout = timeout;
        self
    }

    /// Sets `request_timeout`. Default is 20 s.
    pub fn request_timeout(mut self, timeout: Duration) -> HttpRequest {
        self.request_timeout = timeout;
        self
    }

    /// Sets `follow_redirects`. Default is `true`.
    pub fn follow_redirects(mut self, follow: bool) -> HttpRequest {
        self.follow_redirects = follow;
        self
    }

    /// Sets `max_redirects`. Default is 5.
    pub fn max_redirects(mut self, max: usize) -> HttpRequest {
        self.max_redirects = max;
        self
    }

    /// Sets the `User-Agent`. Default is `whirl/<version>`.
    pub fn user_agent(mut self, agent: impl Into<String>) -> HttpRequest {
        self.user_agent = Some(agent.into());
        self
    }

    /// Sets `decompress_response`. Default is `true`.
    pub fn decompress_response(mut self, decompress: bool) -> HttpRequest {
        self.decompress_response = decompress;
        self
    }

    /// Sets `validate_cert`. Default is `true`.
    pub fn validate_cert(mut self, validate: bool) -> HttpRequest {
        self.validate_cert = validate;
        self
    }

    /// Trusts the certificate authorities in PEM file `path`. Tornado:
    /// `ca_certs`.
    pub fn ca_certs(mut self, path: impl Into<PathBuf>) -> HttpRequest {
        self.ca_certs = Some(path.into());
        self
    }

    /// Presents the client certificate and key in PEM files. Tornado:
    /// `client_cert`, `client_key`.
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> HttpRequest {
        self.client_cert = Some(cert.into());
        self.client_key = Some(key.into());
        self
    }

    /// Hands the body to `callback` piece by piece as it arrives instead of
    /// buffering it. Tornado: `streaming_callback`.
    pub fn streaming_callback(mut self, callback: impl FnMut(Vec<u8>) + 'static) -> HttpRequest {
        self.streaming_callback = Some(Rc::new(RefCell::new(callback)));
        self
    }

    /// Hands each response head line to `callback`. Tornado:
    /// `header_callback`.
    pub fn header_callback(mut self, callback: impl FnMut(&str) + 'static) -> HttpRequest {
        self.header_callback = Some(Rc::new(RefCell::new(callback)));
        self
    }

    /// Sets `expect_100_continue`. Default is `false`.
    pub fn expect_100_continue(mut self, expect: bool) -> HttpRequest {
        self.expect_100_continue = expect;
        self
    }

    /// Sets `allow_nonstandard_methods`. Default is `false`.
    pub fn allow_nonstandard_methods(mut self, allow: bool) -> HttpRequest {
        self.allow_nonstandard_methods = allow;
        self
    }

    /// Sets `max_body_size`. Default is 100 MiB.
    pub fn max_body_size(mut self, max: u64) -> HttpRequest {
        self.max_body_size = max;
        self
    }

    /// Sets `max_header_size`. Default is 64 KiB.
    pub fn max_header_size(mut self, max: usize) -> HttpRequest {
        self.max_header_size = max;
        self
    }

    /// Sends the request through the HTTP proxy at `host:port`: `http`
    /// URLs as absolute-form requests to it, `https` ones through a
    /// `CONNECT` tunnel. Tornado's `proxy_host`, `proxy_port` (which its
    /// simple client ignores).
    pub fn proxy(mut self, host: impl Into<String>, port: u16) -> HttpRequest {
        self.proxy_host = Some(host.into());
        self.proxy_port = Some(port);
        self
    }

    /// Authenticates to the proxy (basic). Tornado: `proxy_username`,
    /// `proxy_password`.
    pub fn proxy_auth(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> HttpRequest {
        self.proxy_username = Some(username.into());
        self.proxy_password = Some(password.into());
        self
    }

    /// Sets `raise_error`. Default is `true`.
    pub fn raise_error(mut self, raise: bool) -> HttpRequest {
        self.raise_error = raise;
        self
    }
}

impl From<&str> for HttpRequest {
    fn from(url: &str) -> HttpRequest {
        HttpRequest::new(url)
    }
}

impl From<String> for HttpRequest {
    fn from(url: String) -> HttpRequest {
        HttpRequest::new(url)
    }
}

impl From<&String> for HttpRequest {
    fn from(url: &String) -> HttpRequest {
        HttpRequest::new(url.clone())
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .field("request_timeout", &self.request_timeout)
            .field("follow_redirects", &self.follow_redirects)
            .field("proxy_host", &self.proxy_host)
            .finish_non_exhaustive()
    }
}
