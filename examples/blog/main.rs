//! A small blog in the spirit of Tornado's blog demo: a home page of
//! entries, one page per entry, a compose page for logged-in users, a login
//! form that sets a signed cookie, and logout. Templates extend
//! `base.html` and include `modules/entry.html`; every form carries an XSRF
//! token (`xsrf_cookies` is on, so a POST without one gets 403); the CSS is
//! linked with `static_url` (a `?v=` hash, cached for years). Entries live
//! in memory (`store.rs`).
//!
//! ```text
//! cargo run --release --example blog -- --port 8888
//! open http://127.0.0.1:8888/ and log in as demo / whirl
//! curl -i http://127.0.0.1:8888/compose        # 302 to /auth/login?next=%2Fcompose
//! curl -i -d name=demo -d password=whirl http://127.0.0.1:8888/auth/login   # 403: no XSRF token
//! ```
//!
//! `--user` and `--password` set the one account; `--cookie-secret` the key
//! that signs the login cookie (the default is a demo value anyone can read
//! here, so anyone could forge a login: the log warns about it).
//! `SIGTERM` or Ctrl-C stops it gracefully.

mod auth;
mod pages;
mod store;

use std::io;
use std::rc::Rc;

use clap::Parser;
use whirl::httpserver::{shutdown_on_signals, SHUTDOWN_TIMEOUT};
use whirl::ioloop::IoLoop;
use whirl::web::signing::SecretKeys;
use whirl::web::{Application, Route, Settings};

use auth::{Account, LoginHandler, LogoutHandler};
use pages::{ComposeHandler, EntryHandler, HomeHandler, Shared};

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// The user who may write.
    #[arg(long, default_value = "demo")]
    user: String,
    /// Their password.
    #[arg(long, default_value = "whirl")]
    password: String,
    /// The key signing the login cookie.
    #[arg(long, default_value = DEMO_SECRET)]
    cookie_secret: String,
}

/// The default `--cookie-secret`: public, so fit for a demo only.
const DEMO_SECRET: &str = "whirl-blog-demo-secret-do-not-use-in-production";
/// Where templates and static files live (found wherever the binary runs).
const HERE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/blog");

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    if args.cookie_secret == DEMO_SECRET {
        log::warn!(
            "signing cookies with the demo secret: anyone can forge a login; pass --cookie-secret"
        );
    }
    let io_loop = IoLoop::new();
    let store: Shared = Rc::default();
    store.borrow_mut().add(
        "Hello from whirl",
        "whirl",
        "This blog runs on one thread and one event loop.\n\nLog in to write the next entry.",
    );
    let account = Rc::new(Account {
        user: args.user,
        password: args.password,
    });
    let settings = Settings {
        cookie_secret: Some(SecretKeys::single(args.cookie_secret)),
        xsrf_cookies: true,
        login_url: Some("/auth/login".to_string()),
        template_path: Some(format!("{HERE}/templates").into()),
        static_path: Some(format!("{HERE}/static").into()),
        ..Settings::default()
    };
    let routes = vec![
        Route::new("/", with_store(&store, HomeHandler)).name("home"),
        Route::new("/entry/([^/]+)", with_store(&store, EntryHandler)).name("entry"),
        Route::new("/compose", with_store(&store, ComposeHandler)).name("compose"),
        Route::new("/auth/login", move || LoginHandler(account.clone())).name("login"),
        Route::new("/auth/logout", || LogoutHandler).name("logout"),
    ];
    let app = Application::with_settings(routes, settings);
    let server = app.listen(args.port, Some(&args.address))?;
    shutdown_on_signals(&server, SHUTDOWN_TIMEOUT)?;
    log::info!("listening on http://{}", server.local_addrs()[0]);
    io_loop.start();
    Ok(())
}

/// A handler factory giving each new handler the shared store (Tornado's
/// `initialize(db=…)`).
fn with_store<H>(store: &Shared, make: fn(Shared) -> H) -> impl Fn() -> H + 'static
where
    H: 'static,
{
    let store = store.clone();
    move || make(store.clone())
}
