//! The security half of [`Context`]: cookies, signed cookies, XSRF
//! tokens, the current user and the `authenticated` guard — Tornado's
//! `get_cookie`/`set_cookie`, `set_signed_cookie`, `xsrf_token`,
//! `check_xsrf_cookie`, `current_user` and `@authenticated`.

use crate::application::DEFAULT_SIGNED_COOKIE_MAX_AGE_DAYS;
use crate::context::Context;
use crate::cookie::{format_clear_cookie, format_set_cookie, CookieOptions};
use crate::error::HttpError;
use crate::escape::url_escape;
use crate::signing::{create_signed_value, decode_signed_value, SignedValueVersion};
use crate::xsrf;

/// How long a signed cookie lasts unless told otherwise: 30 days
/// (Tornado's `expires_days=30`).
pub const DEFAULT_SIGNED_COOKIE_EXPIRES_DAYS: f64 = 30.0;

/// The cookie holding the XSRF token (Tornado's `_xsrf`).
pub const XSRF_COOKIE: &str = "_xsrf";

impl Context {
    /// The value of request cookie `name`. Tornado: `get_cookie`.
    pub fn get_cookie(&self, name: &str) -> Option<String> {
        self.request.cookies().remove(name)
    }

    /// Sets cookie `name` to `value` on the response. Tornado:
    /// `set_cookie`.
    ///
    /// # Errors
    ///
    /// 500 for a name, value or attribute with characters a cookie cannot
    /// hold (spaces, `;`, control characters).
    pub fn set_cookie(
        &mut self,
        name: &str,
        value: &str,
        options: &CookieOptions,
    ) -> Result<(), HttpError> {
        let header = format_set_cookie(name, value, options)?;
        self.replace_set_cookie(name, header);
        Ok(())
    }

    /// Deletes cookie `name` (with the path and domain it was set with).
    /// Tornado: `clear_cookie`.
    ///
    /// # Errors
    ///
    /// As [`set_cookie`](Self::set_cookie).
    pub fn clear_cookie(&mut self, name: &str, options: &CookieOptions) -> Result<(), HttpError> {
        let header = format_clear_cookie(name, options)?;
        self.replace_set_cookie(name, header);
        Ok(())
    }

    /// Adds a `Set-Cookie` line for `name`, dropping any earlier one for
    /// the same name: Tornado keeps one morsel per name (`_new_cookie`), so
    /// the last call wins and attributes of an earlier one do not linger
    /// (a host-only and a `Domain=` cookie would otherwise both be kept).
    fn replace_set_cookie(&mut self, name: &str, header: String) {
        let others: Vec<String> = self
            .headers
            .get_all("Set-Cookie")
            .filter(|line| line.split('=').next() != Some(name))
            .map(str::to_string)
            .collect();
        self.headers.remove("Set-Cookie");
        for line in others {
            self.headers.add("Set-Cookie", line);
        }
        self.headers.add("Set-Cookie", header);
    }

    /// Sets cookie `name` to `value` signed with the `cookie_secret`
    /// setting, in Tornado's format (a Python Tornado app with the same
    /// secret reads it), expiring in 30 days as in Tornado. Tornado:
    /// `set_signed_cookie` (`set_secure_cookie`).
    ///
    /// # Errors
    ///
    /// 500 when no `cookie_secret` is set, or as
    /// [`set_cookie`](Self::set_cookie).
    pub fn set_signed_cookie(&mut self, name: &str, value: &str) -> Result<(), HttpError> {
        let options = CookieOptions {
            expires_days: Some(DEFAULT_SIGNED_COOKIE_EXPIRES_DAYS),
            ..CookieOptions::default()
        };
        self.set_signed_cookie_with(name, value, &options)
    }

    /// As [`set_signed_cookie`](Self::set_signed_cookie), with the cookie's
    /// attributes (expiry, `HttpOnly`, `Secure`, `SameSite`…) given.
    /// Tornado: `set_signed_cookie(name, value, expires_days, **kwargs)`.
    ///
    /// # Errors
    ///
    /// As [`set_signed_cookie`](Self::set_signed_cookie).
    pub fn set_signed_cookie_with(
        &mut self,
        name: &str,
        value: &str,
        options: &CookieOptions,
    ) -> Result<(), HttpError> {
        let secret = self.cookie_secret()?;
        let signed = create_signed_value(&secret, name, value.as_bytes());
        self.set_cookie(name, &signed, options)
    }

    /// The value of signed cookie `name` when its signature is good and it
    /// is younger than `max_age_days` (`None`: 31 days); `None` when it is
    /// missing, tampered with, expired or signed with another key. Tornado:
    /// `get_signed_cookie` (`get_secure_cookie`).
    ///
    /// # Errors
    ///
    /// 500 when no `cookie_secret` is set.
    pub fn get_signed_cookie(
        &self,
        name: &str,
        max_age_days: Option<f64>,
    ) -> Result<Option<String>, HttpError> {
        let secret = self.cookie_secret()?;
        let Some(cookie) = self.get_cookie(name) else {
            return Ok(None);
        };
        let max_age = max_age_days.unwrap_or(DEFAULT_SIGNED_COOKIE_MAX_AGE_DAYS);
        let value = decode_signed_value(&secret, name, cookie, max_age, SignedValueVersion::V1);
        Ok(value.and_then(|bytes| String::from_utf8(bytes).ok()))
    }

    /// The secret keys, or the 500 a missing one means.
    fn cookie_secret(&self) -> Result<crate::signing::SecretKeys, HttpError> {
        self.settings()
            .cookie_secret
            .clone()
            .ok_or_else(|| HttpError::new(500).log_message("the cookie_secret setting is not set"))
    }

    /// The user [`get_current_user`](crate::RequestHandler::get_current_user)
    /// found, if any. Tornado: `current_user`.
    pub fn current_user(&self) -> Option<&str> {
        self.current_user.as_deref()
    }

    /// Sets the current user (after a login, say) for the rest of this
    /// request.
    pub fn set_current_user(&mut self, user: Option<String>) {
        self.current_user = user;
    }

    /// Requires a logged-in user: returns them, or — for a `GET`/`HEAD` —
    /// redirects to the `login_url` setting with `?next=<this URL>` and
    /// returns the (already answered) 302, or answers 403 for other
    /// methods and when no `login_url` is set. Use it with `?` at the top
    /// of a method. Tornado: the `@authenticated` decorator.
    ///
    /// # Errors
    ///
    /// 302 (response already sent) or 403, as above.
    pub fn authenticated(&mut self) -> Result<String, HttpError> {
        if let Some(user) = &self.current_user {
            return Ok(user.clone());
        }
        let method = self.request.method();
        let login_url = self.settings().login_url.clone();
        match login_url {
            Some(login_url) if method == "GET" || method == "HEAD" => {
                let mut url = login_url;
                if !url.contains('?') {
                    let next = if url.contains("://") {
                        self.request.full_url()
                    } else {
                        self.request.uri().to_string()
                    };
                    url = format!("{url}?next={}", url_escape(&next, true));
                }
                self.redirect(&url, false)?;
                Err(HttpError::new(302).log_message("not logged in: redirected to login"))
            }
            _ => Err(HttpError::new(403).log_message("not logged in")),
        }
    }

    /// This request's XSRF token, masked (so it differs on every request
    /// and cannot be read back by compression attacks); sets the `_xsrf`
    /// cookie when the client has none. Put it in forms as `_xsrf` (see
    /// [`xsrf_form_html`](Self::xsrf_form_html)) or send it as
    /// `X-XSRFToken`. Tornado: `xsrf_token`.
    ///
    /// # Errors
    ///
    /// 500 when the system's random source fails.
    pub fn xsrf_token(&mut self) -> Result<String, HttpError> {
        if let Some(masked) = &self.xsrf_masked {
            return Ok(masked.clone());
        }
        let raw = self.raw_xsrf_token()?;
        let masked = xsrf::encode_xsrf_token(&raw.token, raw.timestamp)?;
        if raw.version.is_none() {
            // A token made for this request: the client keeps it.
            let header = format_set_cookie(XSRF_COOKIE, &masked, &CookieOptions::default())?;
            self.replace_set_cookie(XSRF_COOKIE, header);
        }
        self.xsrf_masked = Some(masked.clone());
        Ok(masked)
    }

    /// A hidden form field carrying [`xsrf_token`](Self::xsrf_token):
    /// `<input type="hidden" name="_xsrf" value="…"/>`. Tornado:
    /// `xsrf_form_html`.
    ///
    /// # Errors
    ///
    /// As [`xsrf_token`](Self::xsrf_token).
    pub fn xsrf_form_html(&mut self) -> Result<String, HttpError> {
        let token = self.xsrf_token()?;
        Ok(xsrf::xsrf_form_html(&token))
    }

    /// The raw token from the cookie, or a new one (Tornado's
    /// `_get_raw_xsrf_token`), the same for the whole request.
    fn raw_xsrf_token(&mut self) -> Result<xsrf::XsrfToken, HttpError> {
        if let Some(raw) = &self.xsrf_raw {
            return Ok(raw.clone());
        }
        let raw = xsrf::get_raw_xsrf_token(self.get_cookie(XSRF_COOKIE).as_deref())?;
        self.xsrf_raw = Some(raw.clone());
        Ok(raw)
    }

    /// Refuses (403) a request whose `_xsrf` argument or
    /// `X-XSRFToken`/`X-CSRFToken` header does not carry the token of its
    /// `_xsrf` cookie. Runs for every non-GET/HEAD/OPTIONS request when the
    /// `xsrf_cookies` setting is on. Tornado: `check_xsrf_cookie`.
    ///
    /// # Errors
    ///
    /// 403 when the token is missing, malformed or different.
    pub fn check_xsrf_cookie(&mut self) -> Result<(), HttpError> {
        let sent = self
            .get_argument("_xsrf")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| {
                xsrf::XSRF_HEADER_NAMES
                    .iter()
                    .find_map(|name| self.request.headers.get(name).map(str::to_string))
            });
        let expected = self.raw_xsrf_token()?;
        xsrf::check_xsrf_token(sent.as_deref(), &expected.token)
            .map_err(|e| HttpError::new(403).log_message(e.to_string()))
    }
}
