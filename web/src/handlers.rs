//! Small ready-made handlers: [`ErrorHandler`] and [`RedirectHandler`]
//! (Tornado's of the same names). `StaticFileHandler` is in
//! `static_handler.rs`.

use crate::context::Context;
use crate::error::HttpError;
use crate::handler::{HandlerResult, RequestHandler};
use crate::redirect_url::{has_forbidden_header_chars, scheme_and_netloc};

/// Answers every request with one error status. Tornado: `ErrorHandler`
/// (`url(r"/gone", ErrorHandler, {"status_code": 410})`).
///
/// # Examples
///
/// ```
/// use whirl_web::{ErrorHandler, Route};
///
/// let gone = Route::new("/old", || ErrorHandler::new(410));
/// # let _ = gone;
/// ```
#[derive(Debug, Clone)]
pub struct ErrorHandler {
    /// The status every request gets.
    status: u16,
}

impl ErrorHandler {
    /// A handler answering `status`.
    pub fn new(status: u16) -> ErrorHandler {
        ErrorHandler { status }
    }
}

impl RequestHandler for ErrorHandler {
    async fn prepare(&mut self, _cx: &mut Context) -> HandlerResult {
        Err(HttpError::new(self.status))
    }
}

/// Redirects every `GET` to a URL. Tornado: `RedirectHandler`.
///
/// `{0}`, `{1}`… in the URL are replaced by the route's path arguments (and
/// `{name}` by named ones); the request's query string is appended. It is
/// permanent (301) unless [`temporary`](Self::temporary). As in Tornado
/// 6.6, a substitution may not change the URL's scheme or host (the part
/// before the first `{` decides them: `/{0}` with the argument
/// `/evil.com` would be `//evil.com`), nor bring in control characters:
/// either answers 400.
///
/// # Examples
///
/// ```
/// use whirl_web::{RedirectHandler, Route};
///
/// let old = Route::new(r"/pictures/(.*)", || RedirectHandler::new("/photos/{0}"));
/// # let _ = old;
/// ```
#[derive(Debug, Clone)]
pub struct RedirectHandler {
    /// The target, with `{…}` placeholders.
    url: String,
    /// 301 when true, else 302.
    permanent: bool,
}

impl RedirectHandler {
    /// A permanent redirect to `url`.
    pub fn new(url: impl Into<String>) -> RedirectHandler {
        RedirectHandler {
            url: url.into(),
            permanent: true,
        }
    }

    /// Makes it a temporary (302) redirect.
    pub fn temporary(mut self) -> RedirectHandler {
        self.permanent = false;
        self
    }
}

impl RequestHandler for RedirectHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET", "HEAD"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let mut url = self.url.clone();
        for (i, arg) in cx.path_args().iter().enumerate() {
            url = url.replace(&format!("{{{i}}}"), arg.as_deref().unwrap_or(""));
        }
        for (name, arg) in cx.path_kwargs() {
            url = url.replace(&format!("{{{name}}}"), arg.as_deref().unwrap_or(""));
        }
        let query = cx.request().query();
        if !query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(query);
        }
        // The scheme and host come from the template, never from the
        // request: `/{0}` with `/evil.com` would otherwise send the user to
        // `//evil.com` (Tornado 6.6: 400 for both checks).
        let (prefix, substituted) = match self.url.find('{') {
            Some(i) => (&self.url[..i], true),
            None => (self.url.as_str(), false),
        };
        let unchanged = match (scheme_and_netloc(prefix), scheme_and_netloc(&url)) {
            (Some(before), Some(after)) => {
                // A host that would come entirely from a substitution.
                let host_from_request = substituted
                    && matches!(before.0.as_str(), "http" | "https")
                    && before.1.is_empty();
                before == after && !host_from_request
            }
            _ => false,
        };
        if !unchanged {
            return Err(HttpError::new(400).log_message(format!(
                "redirect to {url:?} would change the scheme or host"
            )));
        }
        if has_forbidden_header_chars(&url) {
            return Err(HttpError::new(400)
                .log_message(format!("redirect URL {url:?} contains invalid characters")));
        }
        cx.redirect(&url, self.permanent)
    }

    async fn head(&mut self, cx: &mut Context) -> HandlerResult {
        self.get(cx).await
    }
}
