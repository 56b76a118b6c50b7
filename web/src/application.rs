//! [`Application`]: routes and settings, served as an `HttpServer`
//! delegate — Tornado's `tornado.web.Application`.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use whirl_httpserver::{
    Flow, Http1Connection, Http1ConnectionParams, HttpMessageDelegate, HttpServer,
    HttpServerConnectionDelegate, RequestHead,
};

use crate::handler::RequestHandler;
use crate::pipeline::Exchange;
use crate::routing::{reverse_pattern, Factory, Route, RouteError};
use crate::signing::SecretKeys;
use crate::static_files::VersionCache;
use crate::static_handler::StaticFileHandler;
use crate::template::Templates;

/// Default prefix of static file URLs (Tornado's `static_url_prefix`).
pub const DEFAULT_STATIC_URL_PREFIX: &str = "/static/";

/// Default lifetime of a signed cookie when read: 31 days (Tornado's
/// `max_age_days`).
pub const DEFAULT_SIGNED_COOKIE_MAX_AGE_DAYS: f64 = 31.0;

/// Application settings: Tornado's `Application(**settings)`. Build with
/// struct update syntax: `Settings { debug: true, ..Settings::default() }`.
#[derive(Clone, Default)]
pub struct Settings {
    /// Development mode: templates reload when their files change, error
    /// pages show the error, static versions are not cached. Default is
    /// `false`.
    pub debug: bool,
    /// Show the error's message on 500 pages; `None` follows `debug`.
    /// Tornado: `serve_traceback`. Default is `None`.
    pub serve_traceback: Option<bool>,
    /// The key(s) signed cookies are signed with. Tornado: `cookie_secret`
    /// (and `key_version`). Default is none (signed cookies then fail with
    /// 500).
    pub cookie_secret: Option<SecretKeys>,
    /// Check an XSRF token on every request other than GET, HEAD and
    /// OPTIONS (403 without a valid one). Tornado: `xsrf_cookies`. Default
    /// is `false`.
    pub xsrf_cookies: bool,
    /// Where [`Context::authenticated`](crate::Context::authenticated)
    /// sends users who are not logged in. Tornado: `login_url`. Default is
    /// none (403 instead).
    pub login_url: Option<String>,
    /// The directory static files are served from, under
    /// [`static_url_prefix`](Self::static_url_prefix). Tornado:
    /// `static_path`. Default is none (no static route).
    pub static_path: Option<PathBuf>,
    /// The URL prefix of static files; `None` means
    /// [`DEFAULT_STATIC_URL_PREFIX`]. Tornado: `static_url_prefix`.
    pub static_url_prefix: Option<String>,
    /// The directory templates are loaded from. Tornado: `template_path`.
    /// Default is none (then [`Context::render`](crate::Context::render)
    /// fails with 500).
    pub template_path: Option<PathBuf>,
    /// Gzip responses for clients that accept it (compressible types over
    /// 1 KiB, and flushed streams). Tornado: `compress_response`. Default
    /// is `false`.
    pub compress_response: bool,
    /// Settings of each HTTP connection when the application listens
    /// itself ([`Application::listen`]): limits, timeouts, keep-alive.
    pub http: Http1ConnectionParams,
    /// Trust `X-Real-IP`/`X-Forwarded-For`/`X-Forwarded-Proto` when the
    /// application listens itself. Tornado: `xheaders`. Default is `false`.
    pub xheaders: bool,
}

impl Settings {
    /// Whether error pages show the error's message.
    pub fn serve_traceback(&self) -> bool {
        self.serve_traceback.unwrap_or(self.debug)
    }

    /// The static URL prefix in force.
    pub fn static_url_prefix(&self) -> &str {
        self.static_url_prefix
            .as_deref()
            .unwrap_or(DEFAULT_STATIC_URL_PREFIX)
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("debug", &self.debug)
            .field(
                "cookie_secret",
                &self.cookie_secret.as_ref().map(|_| "<secret>"),
            )
            .field("xsrf_cookies", &self.xsrf_cookies)
            .field("login_url", &self.login_url)
            .field("static_path", &self.static_path)
            .field("template_path", &self.template_path)
            .field("compress_response", &self.compress_response)
            .finish_non_exhaustive()
    }
}

/// A web application: routes matched in order against each request path,
/// and settings. Tornado: `tornado.web.Application`.
///
/// Serve it with [`listen`](Self::listen), or hand it to
/// [`HttpServer::new`] (it is an [`HttpServerConnectionDelegate`]) to
/// choose TLS or multi-core. A path no route matches gets 404 (or the
/// [`default_handler`](Self::default_handler)); with `static_path` set,
/// `static_url_prefix` serves files (a `StaticFileHandler` route in front,
/// as in Tornado).
///
/// Cloning is cheap (the routes and settings are shared).
///
/// # Examples
///
/// ```no_run
/// use whirl_ioloop::IoLoop;
/// use whirl_web::{Application, Context, HttpError, RequestHandler, Route};
///
/// struct MainHandler;
///
/// impl RequestHandler for MainHandler {
///     async fn get(&mut self, cx: &mut Context) -> Result<(), HttpError> {
///         cx.write("Hello, world");
///         Ok(())
///     }
/// }
///
/// let io_loop = IoLoop::new();
/// let app = Application::new(vec![Route::new("/", || MainHandler)]);
/// let _server = app.listen(8888, Some("127.0.0.1")).unwrap();
/// io_loop.start();
/// ```
#[derive(Clone)]
pub struct Application {
    /// Routes and settings.
    inner: Rc<AppInner>,
}

/// What an application holds.
#[derive(Clone)]
struct AppInner {
    /// Routes, in matching order (the static route first when configured).
    routes: Vec<Route>,
    /// The settings.
    settings: Settings,
    /// What serves unmatched paths (404 when none).
    default_handler: Option<Factory>,
    /// Reversible routes, shareable with templates (`Send + Sync`).
    reverse: Arc<ReverseTable>,
    /// The template loader, when `template_path` is set.
    templates: Option<Templates>,
    /// Content hashes of static files, for `static_url`.
    static_versions: Arc<VersionCache>,
}

/// Named routes, for `reverse_url` (also inside templates, which need
/// `Send + Sync` values): `(name, pattern)` pairs.
#[derive(Debug, Default)]
pub(crate) struct ReverseTable {
    /// `(name, pattern)` pairs, in route order.
    routes: Vec<(String, String)>,
}

impl ReverseTable {
    /// The path of the route named `name` for `args`.
    pub(crate) fn reverse(&self, name: &str, args: &[&str]) -> Result<String, RouteError> {
        let (_, pattern) = self
            .routes
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| RouteError::UnknownName(name.to_string()))?;
        reverse_pattern(pattern, args)
    }
}

impl Application {
    /// An application serving `routes` with default settings.
    pub fn new(routes: Vec<Route>) -> Application {
        Application::with_settings(routes, Settings::default())
    }

    /// An application serving `routes` with `settings`.
    pub fn with_settings(routes: Vec<Route>, settings: Settings) -> Application {
        let mut all = Vec::with_capacity(routes.len() + 1);
        if let Some(root) = &settings.static_path {
            let prefix = regex::escape(settings.static_url_prefix());
            let root = root.clone();
            all.push(Route::new(&format!("{prefix}(.*)"), move || {
                StaticFileHandler::new(root.clone())
            }));
        }
        all.extend(routes);
        let reverse = Arc::new(reverse_table(&all));
        let templates = settings
            .template_path
            .as_ref()
            .map(|path| Templates::new(path.clone(), settings.debug));
        Application {
            inner: Rc::new(AppInner {
                routes: all,
                default_handler: None,
                reverse,
                templates,
                static_versions: Arc::new(VersionCache::new()),
                settings,
            }),
        }
    }

    /// Serves paths no route matches with handlers from `factory` (instead
    /// of 404). Tornado: the `default_handler_class` setting.
    pub fn default_handler<H, F>(mut self, factory: F) -> Application
    where
        H: RequestHandler,
        F: Fn() -> H + 'static,
    {
        let factory: Factory =
            Rc::new(move || Box::new(factory()) as Box<dyn crate::handler::DynHandler>);
        Rc::make_mut(&mut self.inner).default_handler = Some(factory);
        self
    }

    /// The settings. Tornado: `Application.settings`.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The path of the route named `name` with `args` filling its groups
    /// (percent-encoded). Tornado: `reverse_url`.
    ///
    /// # Errors
    ///
    /// A [`RouteError`]: no such name, wrong argument count, or a pattern
    /// too complex to reverse.
    pub fn reverse_url(&self, name: &str, args: &[&str]) -> Result<String, RouteError> {
        self.inner.reverse.reverse(name, args)
    }

    /// Listens on `port` (0 picks one) at `address` (all interfaces when
    /// `None`) with the `http` and `xheaders` settings, and returns the
    /// server (see [`HttpServer::local_addrs`] for the bound addresses).
    /// Tornado: `Application.listen`.
    ///
    /// # Errors
    ///
    /// Binding errors.
    pub fn listen(&self, port: u16, address: Option<&str>) -> io::Result<HttpServer> {
        let server = HttpServer::new(self.clone())
            .with_params(self.inner.settings.http)
            .xheaders(self.inner.settings.xheaders);
        server.listen(port, address)?;
        Ok(server)
    }

    /// The route for `path`, its arguments decoded, or the default handler
    /// (no arguments) when none matches.
    pub(crate) fn find_route(
        &self,
        path: &str,
    ) -> Option<(
        Factory,
        Result<crate::routing::PathArguments, crate::HttpError>,
    )> {
        for route in &self.inner.routes {
            if let Some(arguments) = route.matches(path) {
                return Some((route.factory.clone(), arguments));
            }
        }
        self.inner
            .default_handler
            .clone()
            .map(|f| (f, Ok(Default::default())))
    }

    /// The template loader, when `template_path` is set: add app-wide
    /// globals and functions to it (Tornado's `ui_methods` and template
    /// namespace).
    pub fn templates(&self) -> Option<&Templates> {
        self.inner.templates.as_ref()
    }

    /// The named routes, shareable with templates.
    pub(crate) fn reverse_table(&self) -> Arc<ReverseTable> {
        self.inner.reverse.clone()
    }

    /// Content hashes of static files.
    pub(crate) fn static_versions(&self) -> Arc<VersionCache> {
        self.inner.static_versions.clone()
    }
}

/// The named routes of `routes`.
fn reverse_table(routes: &[Route]) -> ReverseTable {
    ReverseTable {
        routes: routes
            .iter()
            .filter_map(|r| Some((r.route_name()?.to_string(), r.pattern().to_string())))
            .collect(),
    }
}

impl HttpServerConnectionDelegate for Application {
    fn start_request(&self, connection: &Http1Connection) -> Box<dyn HttpMessageDelegate> {
        Box::new(Exchange::new(self.clone(), connection.clone()))
    }

    fn whole_request(
        &self,
        connection: &Http1Connection,
        head: RequestHead,
    ) -> Result<Flow, RequestHead> {
        Ok(crate::pipeline::whole_request(self, connection, head))
    }
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Application")
            .field("routes", &self.inner.routes)
            .field("settings", &self.inner.settings)
            .finish()
    }
}
