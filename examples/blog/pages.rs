//! The blog's pages: the home page, one page per entry, and the compose
//! form. Each handler reads the user from the login cookie (Tornado's blog
//! demo puts that in a `BaseHandler`; here each calls `cookie_user`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use whirl::web::{Context, HandlerResult, HttpError, RequestHandler};

use crate::auth::cookie_user;
use crate::store::Store;

/// The store every handler shares.
pub type Shared = Rc<RefCell<Store>>;

/// `/`: every entry, newest first.
pub struct HomeHandler(
    /// The entries.
    pub Shared,
);

impl RequestHandler for HomeHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get_current_user(&mut self, cx: &mut Context) -> Option<String> {
        cookie_user(cx)
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let entries = self.0.borrow().entries().to_vec();
        cx.render("home.html", HashMap::from([("entries", entries)]))
    }
}

/// `/entry/<slug>`: one entry.
pub struct EntryHandler(
    /// The entries.
    pub Shared,
);

impl RequestHandler for EntryHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get_current_user(&mut self, cx: &mut Context) -> Option<String> {
        cookie_user(cx)
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let slug = cx.path_arg(0).unwrap_or_default();
        let entry = self.0.borrow().get(slug).cloned();
        let entry = entry.ok_or_else(|| HttpError::new(404))?;
        cx.render("entry.html", HashMap::from([("entry", entry)]))
    }
}

/// `/compose`: the form (GET) and publishing (POST), for logged-in users.
pub struct ComposeHandler(
    /// The entries.
    pub Shared,
);

impl RequestHandler for ComposeHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET", "POST"];

    async fn get_current_user(&mut self, cx: &mut Context) -> Option<String> {
        cookie_user(cx)
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.authenticated()?;
        cx.render("compose.html", ())
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        let author = cx.authenticated()?;
        let (title, text) = (cx.get_argument("title")?, cx.get_argument("body")?);
        if title.is_empty() || text.is_empty() {
            return Err(HttpError::new(400).log_message("empty title or text"));
        }
        let slug = self.0.borrow_mut().add(&title, &author, &text);
        let url = cx.reverse_url("entry", &[&slug])?;
        cx.redirect(&url, false)
    }
}
