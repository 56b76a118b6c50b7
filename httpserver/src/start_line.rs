//! Start lines: [`RequestStartLine`], [`ResponseStartLine`] and [`Version`].

use std::fmt;

/// An HTTP/1 protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    Http11,
}

impl Version {
    /// The version as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first line of a request: `GET /path?q HTTP/1.1`. Tornado:
/// `httputil.RequestStartLine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStartLine {
    /// The method token, case preserved (`GET`).
    pub method: String,
    /// The request target as sent (`/path?q`, `*`, or an absolute URL).
    pub target: String,
    /// The protocol version.
    pub version: Version,
}

/// The first line of a response: `HTTP/1.1 200 OK`. Tornado:
/// `httputil.ResponseStartLine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseStartLine {
    /// The protocol version.
    pub version: Version,
    /// The status code.
    pub code: u16,
    /// The reason phrase (may be empty: a server then sends the standard
    /// one for the code).
    pub reason: String,
}

impl ResponseStartLine {
    /// `HTTP/1.1 <code>` with the standard reason phrase (left empty here,
    /// so building it allocates nothing; the server writes
    /// [`reason_phrase`]`(code)`).
    ///
    /// ```
    /// use whirl_httpserver::ResponseStartLine;
    ///
    /// let ok = ResponseStartLine::new(200);
    /// assert_eq!((ok.code, ok.reason.as_str()), (200, ""));
    /// ```
    pub fn new(code: u16) -> ResponseStartLine {
        ResponseStartLine {
            version: Version::Http11,
            code,
            reason: String::new(),
        }
    }
}

/// The standard reason phrase for a status code, or `"Unknown"` (Tornado's
/// `httputil.responses` lookup).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        418 => "I'm a Teapot",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(418), "I'm a Teapot");
        assert_eq!(reason_phrase(507), "Insufficient Storage");
        assert_eq!(reason_phrase(682), "Unknown");
        assert_eq!(Version::Http10.to_string(), "HTTP/1.0");
    }
}
