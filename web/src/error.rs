//! [`HttpError`]: how a handler says "answer with this status" — Tornado's
//! `tornado.web.HTTPError`.

use std::fmt;

use whirl_httpserver::reason_phrase;

/// An error a handler returns (or raises with `?`) to end its request with
/// an HTTP status. Tornado: `tornado.web.HTTPError(status_code, log_message,
/// reason=…)`.
///
/// The `log_message` goes to the log, never to the client; the client sees
/// the status and its reason phrase (rendered by
/// [`RequestHandler::write_error`](crate::RequestHandler::write_error)).
///
/// Any `std::error::Error` converts into a 500 with the error's text as the
/// log message, so `?` works on I/O, parse or client errors inside a
/// handler. (For that reason `HttpError` itself does not implement
/// `std::error::Error`, as `anyhow::Error` does not.)
///
/// # Examples
///
/// ```
/// use whirl_web::HttpError;
///
/// let e = HttpError::new(404).log_message("no story 7");
/// assert_eq!(e.status(), 404);
/// assert_eq!(e.reason(), "Not Found");
///
/// let parse: Result<u32, _> = "x".parse::<u32>();
/// let e: HttpError = parse.unwrap_err().into();
/// assert_eq!(e.status(), 500);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The status to answer with.
    status: u16,
    /// What to log (not sent to the client).
    log_message: Option<String>,
    /// A reason phrase instead of the standard one.
    reason: Option<String>,
}

impl HttpError {
    /// An error answering `status` with its standard reason phrase.
    pub fn new(status: u16) -> HttpError {
        HttpError {
            status,
            log_message: None,
            reason: None,
        }
    }

    /// Adds a message for the log (never sent to the client).
    pub fn log_message(mut self, message: impl Into<String>) -> HttpError {
        self.log_message = Some(message.into());
        self
    }

    /// Answers with `reason` instead of the standard reason phrase (needed
    /// for a status without one).
    pub fn reason_phrase(mut self, reason: impl Into<String>) -> HttpError {
        self.reason = Some(reason.into());
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase sent: the one given, else the standard one.
    pub fn reason(&self) -> &str {
        self.reason
            .as_deref()
            .unwrap_or_else(|| reason_phrase(self.status))
    }

    /// The message for the log, if any.
    pub fn message(&self) -> Option<&str> {
        self.log_message.as_deref()
    }

    /// A 400 for a required argument that is missing. Tornado:
    /// `MissingArgumentError`.
    pub fn missing_argument(name: &str) -> HttpError {
        HttpError::new(400).log_message(format!("Missing argument {name}"))
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} ({})", self.status, self.reason())?;
        if let Some(message) = &self.log_message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl<E: std::error::Error> From<E> for HttpError {
    fn from(error: E) -> HttpError {
        HttpError::new(500).log_message(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_as_tornado_logs_it() {
        let e = HttpError::new(403).log_message("XSRF cookie does not match");
        assert_eq!(
            e.to_string(),
            "HTTP 403 (Forbidden): XSRF cookie does not match"
        );
        assert_eq!(HttpError::new(599).reason(), "Unknown");
        assert_eq!(HttpError::new(599).reason_phrase("Odd").reason(), "Odd");
    }

    #[test]
    fn any_error_becomes_500() {
        let io = std::io::Error::other("disk on fire");
        let e = HttpError::from(io);
        assert_eq!((e.status(), e.message()), (500, Some("disk on fire")));
    }
}
