//! whirl's web framework: Tornado's `web`, `routing`, `template` and
//! `escape`, with `async` handlers on the loop thread.
//!
//! An [`Application`] matches each request path against its [`Route`]s and
//! runs a fresh [`RequestHandler`] for it; the handler answers through its
//! [`Context`] (`get_argument`, `set_header`, `write`, `flush`, `finish`,
//! cookies, templates). Errors are [`HttpError`]s.
//!
//! # Examples
//!
//! ```
//! use whirl_ioloop::IoLoop;
//! use whirl_web::{Application, Context, HttpError, RequestHandler, Route};
//!
//! struct MainHandler;
//!
//! impl RequestHandler for MainHandler {
//!     async fn get(&mut self, cx: &mut Context) -> Result<(), HttpError> {
//!         let name = cx.get_argument_or("name", "world")?;
//!         cx.write(format!("Hello, {name}"));
//!         Ok(())
//!     }
//! }
//!
//! let io_loop = IoLoop::new();
//! let app = Application::new(vec![Route::new("/", || MainHandler)]);
//! let server = app.listen(0, Some("127.0.0.1")).unwrap();
//! let addr = server.local_addrs()[0];
//! let reply = io_loop.run_sync(async move {
//!     let stream = whirl_iostream::IoStream::connect(addr).await.unwrap();
//!     stream.write("GET /?name=whirl HTTP/1.0\r\n\r\n");
//!     stream.read_until_close().await.unwrap()
//! });
//! assert!(reply.ends_with(b"Hello, whirl"));
//! ```

mod application;
mod context;
mod error;
mod handler;
mod handlers;
mod output;
mod pipeline;
mod redirect_url;
mod render;
mod routing;
mod security;
mod static_handler;

pub mod cookie;
pub mod escape;
pub mod signing;
pub mod static_files;
pub mod template;
pub mod testing;
pub mod xsrf;

pub use application::{
    Application, Settings, DEFAULT_SIGNED_COOKIE_MAX_AGE_DAYS, DEFAULT_STATIC_URL_PREFIX,
};
pub use context::{Body, Context, SERVER_HEADER};
pub use error::HttpError;
pub use handler::{HandlerResult, RequestHandler, DEFAULT_SUPPORTED_METHODS};
pub use handlers::{ErrorHandler, RedirectHandler};
/// The template engine, for building contexts (`minijinja::context!`) and
/// values.
pub use minijinja;
pub use output::GZIP_MIN_LENGTH;
pub use routing::{Route, RouteError};
pub use security::{DEFAULT_SIGNED_COOKIE_EXPIRES_DAYS, XSRF_COOKIE};
pub use static_handler::StaticFileHandler;
