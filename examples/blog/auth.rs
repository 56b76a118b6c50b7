//! Logging in and out: a form checked against the one account, a signed
//! cookie naming the user (Tornado's `set_signed_cookie`), and
//! `cookie_user` to read it back on every request.

use std::collections::HashMap;
use std::rc::Rc;

use whirl::web::cookie::{CookieOptions, SameSite};
use whirl::web::{Context, HandlerResult, RequestHandler};

/// The signed cookie naming the logged-in user.
const USER_COOKIE: &str = "blog_user";

/// The user named by the signed login cookie, when its signature holds
/// (Tornado's `get_current_user` reading `get_signed_cookie`).
pub fn cookie_user(cx: &Context) -> Option<String> {
    cx.get_signed_cookie(USER_COOKIE, None).ok().flatten()
}

/// The one account that may write.
#[derive(Debug)]
pub struct Account {
    /// Its name.
    pub user: String,
    /// Its password.
    pub password: String,
}

/// `/auth/login`: the form, and the password check that sets the cookie.
pub struct LoginHandler(
    /// The one account.
    pub Rc<Account>,
);

impl RequestHandler for LoginHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET", "POST"];

    async fn get_current_user(&mut self, cx: &mut Context) -> Option<String> {
        cookie_user(cx)
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let next = cx.get_argument_or("next", "/")?;
        cx.render(
            "login.html",
            HashMap::from([("next", next), ("error", String::new())]),
        )
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        let (name, password) = (cx.get_argument("name")?, cx.get_argument("password")?);
        let next = cx.get_argument_or("next", "/")?;
        if name != self.0.user || password != self.0.password {
            cx.set_status(403);
            let error = "Wrong name or password.".to_string();
            return cx.render(
                "login.html",
                HashMap::from([("next", next), ("error", error)]),
            );
        }
        let options = CookieOptions {
            httponly: true,
            samesite: Some(SameSite::Lax),
            ..CookieOptions::default()
        };
        cx.set_signed_cookie_with(USER_COOKIE, &name, &options)?;
        // Only a path on this site: `next` must not send the user elsewhere,
        // as a browser reads it (it drops tabs and newlines, and takes `\`
        // for `/`: `/<TAB>/evil.example` is `//evil.example`).
        let seen: String = next
            .chars()
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .collect();
        let local = seen.starts_with('/') && !seen.starts_with("//") && !seen.contains('\\');
        cx.redirect(if local { &next } else { "/" }, false)
    }
}

/// `/auth/logout` (POST, so it carries an XSRF token): forgets the cookie.
pub struct LogoutHandler;

impl RequestHandler for LogoutHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["POST"];

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        cx.clear_cookie(USER_COOKIE, &CookieOptions::default())?;
        cx.redirect("/", false)
    }
}
