//! The `async_patterns` application: its settings, what its handlers
//! share, and its routes. `main.rs` runs it; the integration tests build it
//! in-process (`#[path]`-included) against their own upstream.

mod client;
mod pipe;
mod proxy;
mod tasks;
mod upload;

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use whirl::httpclient::{AsyncHttpClient, ClientConfig, HttpClientError};
use whirl::ioloop::ThreadPool;
use whirl::web::{Application, Context, HandlerResult, HttpError, RequestHandler, Route};

use client::{ClientAsyncHandler, ClientResponseHandler, ClientSyncHandler};
use proxy::ProxyHandler;
use tasks::{AsyncHandler, AsyncTaskHandler, FutureHandler, FutureResponseHandler, SyncHandler};
use upload::UploadHandler;

/// The demo API key shared with the `ocr_service` example's default.
pub const DEMO_API_KEY: &str = "whirl-demo-key";
/// The demo API secret shared with the `ocr_service` example's default.
pub const DEMO_API_SECRET: &str = "whirl-demo-secret";

/// What the application is told.
#[derive(Debug, Clone)]
pub struct Config {
    /// What `/client/*` fetch, and the base `/proxy/<path>` forwards to.
    pub upstream: String,
    /// Where `/upload` posts the image.
    pub ocr_url: String,
    /// Where `/upload` saves files (must exist).
    pub upload_dir: PathBuf,
    /// The slow task, a `sh -c` command line.
    pub task: String,
    /// Sent to the OCR service as `api_key`.
    pub api_key: String,
    /// Sent to the OCR service as `api_secret`.
    pub api_secret: String,
    /// Connect and request timeout of every upstream and OCR request.
    pub upstream_timeout: Duration,
    /// Threads of the pool `/future` and `/future_response` use.
    pub pool_size: usize,
    /// Most upstream requests in flight at once (Tornado's `max_clients`).
    pub max_clients: usize,
}

/// What every handler shares.
#[derive(Debug)]
pub struct Shared {
    /// The settings.
    pub config: Config,
    /// The seed's `ThreadPoolExecutor(10)`.
    pub pool: ThreadPool,
    /// The loop's HTTP client (Tornado's `AsyncHTTPClient()`).
    pub client: AsyncHttpClient,
}

/// The application: every route of the seed's walk-through.
pub fn application(config: Config) -> Application {
    let client = AsyncHttpClient::with_config(ClientConfig {
        max_clients: config.max_clients,
        ..ClientConfig::default()
    });
    let shared = Rc::new(Shared {
        pool: ThreadPool::new(config.pool_size.max(1)),
        client,
        config,
    });
    let s = &shared;
    Application::new(vec![
        Route::new("/", || IndexHandler),
        Route::new("/sync", with(s, SyncHandler)),
        Route::new("/async", with(s, AsyncHandler)),
        Route::new("/async_task", with(s, AsyncTaskHandler)),
        Route::new("/future", with(s, FutureHandler)),
        Route::new("/future_response", with(s, FutureResponseHandler)),
        Route::new("/client/sync", with(s, ClientSyncHandler)),
        Route::new("/client/async", with(s, ClientAsyncHandler)),
        Route::new("/client/response", with(s, ClientResponseHandler)),
        Route::new("/proxy/(.*)", with(s, ProxyHandler::new)),
        Route::new("/upload", with(s, UploadHandler)),
    ])
}

/// A handler factory handing each handler the shared state (Tornado's
/// `initialize(**kwargs)`).
fn with<H: 'static>(shared: &Rc<Shared>, make: fn(Rc<Shared>) -> H) -> impl Fn() -> H + 'static {
    let shared = shared.clone();
    move || make(shared.clone())
}

/// The answer for a failed upstream request: 504 for a timeout, 502 for
/// anything else (refused, DNS, TLS, a broken response).
pub fn upstream_error(e: &HttpClientError) -> HttpError {
    let status = if e.is_timeout() { 504 } else { 502 };
    HttpError::new(status).log_message(format!("upstream: {e}"))
}

/// `GET /`: the routes, as text.
struct IndexHandler;

impl RequestHandler for IndexHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_header("Content-Type", "text/plain; charset=UTF-8")?;
        cx.write(
            "GET  /sync              the task blocks the whole server\n\
             GET  /async             call_later starts the task; answers at once\n\
             GET  /async_task        awaits the task as a Subprocess\n\
             GET  /future            the task goes to a thread pool; answers at once\n\
             GET  /future_response   awaits the pool under with_timeout (?timeout=SECONDS)\n\
             GET  /client/sync       blocking fetch of the upstream\n\
             GET  /client/async      fetch with a callback; answers at once\n\
             GET  /client/response   awaits the fetch; relays status and body\n\
             ANY  /proxy/<path>      forwards to the upstream (?validate_cert=0)\n\
             POST /upload            multipart file -> saved -> OCR service\n",
        );
        Ok(())
    }
}
