//! [`AsyncHttpClient`]: fetches without blocking the loop — Tornado's
//! `AsyncHTTPClient` (`simple_httpclient`), with a connection pool,
//! `max_clients` and a queue, redirects, proxies and TLS.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use whirl_httpserver::{HeadLimits, Http1ClientConnection, Http1ClientParams};
use whirl_ioloop::locks::Semaphore;
use whirl_ioloop::with_timeout;

use crate::connect::{Connector, PoolKey, Target};
use crate::error::{ErrorKind, HttpClientError};
use crate::exchange::{exchange, is_stale, validate, RawResponse};
use crate::pool::Pool;
use crate::request::{HttpRequest, RequestBody};
use crate::response::{HttpResponse, TimeInfo};

/// Default most requests in flight at once; more wait in a queue: 10
/// (Tornado's `max_clients`).
pub const DEFAULT_MAX_CLIENTS: usize = 10;
/// Default time an idle keep-alive connection is kept: 30 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default most idle connections kept per destination: 32.
pub const DEFAULT_MAX_IDLE_PER_HOST: usize = 32;

/// Settings of a client. Tornado: `AsyncHTTPClient.configure(None,
/// max_clients=…)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// Most requests in flight at once; more wait (their
    /// `request_timeout` counts while they wait). Default is 10.
    pub max_clients: usize,
    /// How long an idle keep-alive connection is kept for reuse; zero
    /// turns pooling off (every request opens a connection, as in
    /// Tornado). Default is 30 s.
    pub idle_timeout: Duration,
    /// Most idle connections kept per destination. Default is 32.
    pub max_idle_per_host: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_clients: DEFAULT_MAX_CLIENTS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_idle_per_host: DEFAULT_MAX_IDLE_PER_HOST,
        }
    }
}

thread_local! {
    /// The client [`AsyncHttpClient::current`] shares on this thread.
    static CURRENT: RefCell<Option<AsyncHttpClient>> = const { RefCell::new(None) };
}

/// An asynchronous HTTP/1.1 client. Tornado: `AsyncHTTPClient`.
///
/// Cheap to clone (clones share the pool and the queue). Requests run on
/// the loop of the thread that awaits them; at most `max_clients` at once,
/// the others queued. Idle keep-alive connections are pooled per
/// destination and reused (Tornado's simple client opens one per request).
///
/// # Examples
///
/// ```no_run
/// use whirl_httpclient::{AsyncHttpClient, HttpRequest};
/// use whirl_ioloop::IoLoop;
///
/// let io_loop = IoLoop::new();
/// io_loop.run_sync(async {
///     let client = AsyncHttpClient::new();
///     match client.fetch("http://www.example.com/").await {
///         Ok(response) => println!("{} bytes", response.body.len()),
///         Err(e) => println!("failed: {e}"),
///     }
/// });
/// ```
#[derive(Clone)]
pub struct AsyncHttpClient {
    /// What clones share.
    inner: Rc<Inner>,
}

/// What every clone of a client shares.
struct Inner {
    /// Settings.
    config: ClientConfig,
    /// Free request slots (`max_clients`).
    slots: Semaphore,
    /// Idle connections.
    pool: Rc<Pool>,
    /// Opens connections.
    connector: Connector,
    /// The last URL fetched and its parsed target, so that requests to
    /// one URL (a polled endpoint, a forwarding handler's upstream) skip
    /// parsing it again.
    last_target: RefCell<Option<(String, Rc<Target>)>>,
}

impl Inner {
    /// The target of `url`, parsed or from the last fetch of it.
    fn target(&self, url: &str) -> Result<Rc<Target>, HttpClientError> {
        if let Some((last, target)) = &*self.last_target.borrow() {
            if last == url {
                return Ok(target.clone());
            }
        }
        let target = Rc::new(Target::parse(url)?);
        *self.last_target.borrow_mut() = Some((url.to_string(), target.clone()));
        Ok(target)
    }
}

impl AsyncHttpClient {
    /// A client with the default settings.
    pub fn new() -> AsyncHttpClient {
        AsyncHttpClient::with_config(ClientConfig::default())
    }

    /// A client with `config`.
    pub fn with_config(config: ClientConfig) -> AsyncHttpClient {
        AsyncHttpClient {
            inner: Rc::new(Inner {
                slots: Semaphore::new(config.max_clients.max(1)),
                pool: Pool::new(config.idle_timeout, config.max_idle_per_host),
                connector: Connector::default(),
                last_target: RefCell::new(None),
                config,
            }),
        }
    }

    /// The client shared by everything on this thread (created on first
    /// use), so requests from many handlers share one pool and one queue.
    /// Tornado: `AsyncHTTPClient()`, one instance per loop.
    pub fn current() -> AsyncHttpClient {
        CURRENT.with(|current| {
            current
                .borrow_mut()
                .get_or_insert_with(AsyncHttpClient::new)
                .clone()
        })
    }

    /// The settings.
    pub fn config(&self) -> ClientConfig {
        self.inner.config
    }

    /// Number of idle pooled connections.
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.idle_count()
    }

    /// Closes the idle pooled connections (requests in flight go on).
    /// Tornado: `close`.
    pub fn close(&self) {
        self.inner.pool.clear();
    }

    /// Fetches `request` (a URL or an [`HttpRequest`]), following
    /// redirects. Tornado: `fetch`.
    ///
    /// # Errors
    ///
    /// An [`HttpClientError`]: code 599 when there was no response (the
    /// message says why: refused, DNS, TLS, which timeout, body too large,
    /// malformed response); the status and the response for a non-2xx
    /// answer (unless `raise_error(false)`).
    pub async fn fetch(
        &self,
        request: impl Into<HttpRequest>,
    ) -> Result<HttpResponse, HttpClientError> {
        let mut request = request.into();
        let started = Instant::now();
        // Each redirect request carries the redirects it has left (as in
        // Tornado), so its response knows whether it will be followed.
        let max_redirects = request.max_redirects;
        let mut redirect_time = Duration::ZERO;
        loop {
            let attempt_start = Instant::now();
            let (raw, mut time, url) = self.fetch_once(&request).await?;
            // Step 1. A redirect to follow becomes the next request.
            if let Some(next) = redirect(&request, &raw, &url) {
                if request.max_redirects == 0 {
                    // Tornado hands back the last 3xx (an error status).
                    let mut response = build(raw, url, time, started, redirect_time);
                    if request.raise_error {
                        return Err(HttpClientError::too_many_redirects(response, max_redirects));
                    }
                    let bare = HttpResponse {
                        body: Vec::new(),
                        ..response.clone()
                    };
                    let error = HttpClientError::too_many_redirects(bare, max_redirects);
                    response.error = Some(Box::new(error));
                    return Ok(response);
                }
                redirect_time += attempt_start.elapsed();
                request = next?;
                continue;
            }
            // Step 2. The final response.
            time.redirect = redirect_time;
            let mut response = build(raw, url, time, started, redirect_time);
            if !response.is_success() {
                if request.raise_error {
                    return Err(HttpClientError::from_response(response));
                }
                let error = HttpClientError::from_response(HttpResponse {
                    body: Vec::new(),
                    ..response.clone()
                });
                response.error = Some(Box::new(error));
            }
            return Ok(response);
        }
    }

    /// Fetches `request` in a task of its own and calls `callback` with
    /// the result; returns at once. Tornado: `fetch(request, callback)`.
    pub fn fetch_with_callback<F>(&self, request: impl Into<HttpRequest>, callback: F)
    where
        F: FnOnce(Result<HttpResponse, HttpClientError>) + 'static,
    {
        let client = self.clone();
        let request = request.into();
        drop(whirl_ioloop::spawn(async move {
            callback(client.fetch(request).await);
        }));
    }

    /// One request, no redirects: waits for a slot, then connects (or
    /// reuses a pooled connection), sends and reads — all within
    /// `request_timeout`.
    async fn fetch_once(
        &self,
        request: &HttpRequest,
    ) -> Result<(RawResponse, TimeInfo, String), HttpClientError> {
        validate(request)?;
        let target = self.inner.target(&request.url)?;
        let started = Instant::now();
        // Zero means no limit, as in Tornado (`Duration::MAX` never fires).
        let deadline = no_zero(request.request_timeout);
        // Step 1. A slot: at most `max_clients` requests at once.
        let slot = with_timeout(deadline, self.inner.slots.acquire())
            .await
            .map_err(|_| {
                HttpClientError::new(ErrorKind::TimeoutInQueue, "Timeout in request queue")
            })?;
        let mut time = TimeInfo {
            queue: started.elapsed(),
            ..TimeInfo::default()
        };
        let left = deadline.saturating_sub(time.queue);
        let result = {
            // Pinned here, so the timeout boxes a pointer to it rather than
            // the whole exchange (1.4 KiB: past glibc's per-thread cache, it
            // cost a slow allocation per request).
            let mut attempt = std::pin::pin!(self.attempt(request, &target, &mut time, started));
            if Instant::now().checked_add(left).is_none() {
                attempt.await
            } else {
                match with_timeout(left, attempt.as_mut()).await {
                    Ok(result) => result,
                    Err(_) => Err(HttpClientError::new(
                        ErrorKind::RequestTimeout,
                        format!(
                            "Timeout during request (after {:?})",
                            request.request_timeout
                        ),
                    )),
                }
            }
        };
        drop(slot);
        let raw = result?;
        time.total = started.elapsed();
        Ok((raw, time, target.url.to_string()))
    }

    /// Sends on a pooled connection, retrying once on a fresh one when the
    /// pooled one turns out to have been closed by the server.
    async fn attempt(
        &self,
        request: &HttpRequest,
        target: &Target,
        time: &mut TimeInfo,
        started: Instant,
    ) -> Result<RawResponse, HttpClientError> {
        let key = PoolKey::new(target, request);
        if let Some(connection) = self.inner.pool.checkout(&key) {
            match self
                .send(&connection, &key, target, request, time, started)
                .await
            {
                Err(e) if is_stale(&e) && replayable(request) => {
                    log::debug!("a pooled connection was stale; retrying on a new one");
                }
                other => return other,
            }
        }
        let connect_start = Instant::now();
        let stream = self.inner.connector.open(target, request).await?;
        time.connect = connect_start.duration_since(started) + connect_start.elapsed();
        // A request goes out in several writes (head, body pieces): with
        // Nagle's algorithm on, each write after the first waits for the
        // server's delayed ACK, ~40 ms. Tornado's `_create_connection` sets
        // it too. Best effort: a transport without it ignores the call.
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("cannot set TCP_NODELAY: {e}");
        }
        let params = Http1ClientParams {
            max_body_size: request.max_body_size,
            head_limits: HeadLimits {
                max_header_size: request.max_header_size,
                ..HeadLimits::default()
            },
            ..Http1ClientParams::default()
        };
        let connection = Http1ClientConnection::new(stream, params);
        self.send(&connection, &key, target, request, time, started)
            .await
    }

    /// One exchange on `connection`; a reusable connection goes back to the
    /// pool, any other is closed.
    async fn send(
        &self,
        connection: &Http1ClientConnection,
        key: &PoolKey,
        target: &Target,
        request: &HttpRequest,
        time: &mut TimeInfo,
        started: Instant,
    ) -> Result<RawResponse, HttpClientError> {
        let result = exchange(connection, target, request, time, started).await;
        match result {
            Ok((raw, outcome)) => {
                if outcome.is_reusable() {
                    self.inner.pool.checkin(key.clone(), connection.clone());
                } else {
                    connection.close();
                }
                if let Some(first) = raw.first_byte {
                    time.starttransfer = first.duration_since(started);
                }
                Ok(raw)
            }
            Err(e) => {
                connection.close();
                Err(e)
            }
        }
    }
}

impl Default for AsyncHttpClient {
    fn default() -> Self {
        AsyncHttpClient::new()
    }
}

impl fmt::Debug for AsyncHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncHttpClient")
            .field("config", &self.inner.config)
            .field("pool", &self.inner.pool)
            .finish()
    }
}

/// `timeout`, with zero meaning "no limit" (Tornado's `0`/`None`).
pub(crate) fn no_zero(timeout: Duration) -> Duration {
    if timeout.is_zero() {
        Duration::MAX
    } else {
        timeout
    }
}

/// Whether a request may be sent again after a stale connection ate it:
/// idempotent methods only (RFC 9110 §9.2.2), and bodies that can be
/// replayed — not a producer's, which may already have consumed what it
/// was sending (a pipe, a stream being relayed).
fn replayable(request: &HttpRequest) -> bool {
    matches!(
        request.method.as_str(),
        "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE"
    ) && !matches!(request.body, RequestBody::Producer(_))
}

/// The next request for a redirect response, when one should be followed
/// (Tornado's `_should_follow_redirect` and its redirect request): 301,
/// 302, 303, 307, 308 with a `Location`. 303 (and 301/302 after a POST)
/// become a `GET` without a body; 307/308 keep method and body;
/// `Authorization` and `Cookie` are dropped when the origin changes.
fn redirect(
    request: &HttpRequest,
    raw: &RawResponse,
    url: &str,
) -> Option<Result<HttpRequest, HttpClientError>> {
    if !request.follow_redirects || !matches!(raw.code, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = raw.headers.get("Location")?;
    let base = url::Url::parse(url).ok()?;
    let next_url = match base.join(location) {
        Ok(next) => next,
        Err(e) => {
            return Some(Err(HttpClientError::new(
                ErrorKind::MalformedResponse,
                format!("invalid redirect Location {location:?}: {e}"),
            )))
        }
    };
    let mut next = request.clone();
    next.url = next_url.to_string();
    next.max_redirects = request.max_redirects.saturating_sub(1);
    let to_get = raw.code == 303 && request.method != "HEAD"
        || matches!(raw.code, 301 | 302) && request.method == "POST";
    if to_get {
        next.method = "GET".to_string();
        next.body = RequestBody::Empty;
        for name in [
            "Content-Length",
            "Content-Type",
            "Content-Encoding",
            "Transfer-Encoding",
        ] {
            next.headers.remove(name);
        }
    }
    // A body producer is called again for the new request (Tornado copies
    // the request, `body_producer` included).
    let same_origin = Target::parse(url)
        .ok()
        .zip(Target::parse(next.url.as_str()).ok())
        .is_some_and(|(a, b)| a.origin() == b.origin());
    if !same_origin {
        next.headers.remove("Authorization");
        next.headers.remove("Cookie");
        next.auth_username = None;
        next.auth_password = None;
    }
    next.headers.remove("Host");
    Some(Ok(next))
}

/// The response handed to the caller.
fn build(
    raw: RawResponse,
    url: String,
    time: TimeInfo,
    started: Instant,
    redirect: Duration,
) -> HttpResponse {
    HttpResponse {
        code: raw.code,
        reason: raw.reason,
        headers: raw.headers,
        body: raw.body,
        effective_url: url,
        request_time: started.elapsed(),
        time_info: TimeInfo { redirect, ..time },
        error: None,
    }
}
