//! [`FormError`]: why a query string or a form body was refused.

use std::fmt;

/// Why a query string or a request body could not be parsed into arguments.
///
/// Every variant is the client's fault and is answered with 400
/// ([`FormError::status`]). Tornado raises `httputil.HTTPInputError` with a
/// message for each of these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormError {
    /// A query string or urlencoded body with more fields than the limit
    /// (Tornado 6.6: more than 1,000).
    TooManyArguments {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// An argument name that does not decode to UTF-8.
    InvalidArgumentName,
    /// A form body with a `Content-Encoding` that nothing decoded.
    UnsupportedContentEncoding(String),
    /// A `Content-Type` that starts with `multipart/form-data` but names
    /// another type (`multipart/form-dataxyz`).
    InvalidContentType,
    /// `multipart/form-data` parsing is turned off in the configuration.
    MultipartDisabled,
    /// `multipart/form-data` without a (non-empty) `boundary` parameter.
    MissingBoundary,
    /// A multipart body shorter than its own closing delimiter
    /// (`--boundary--`), such as an empty body.
    BodyTooShort,
    /// A multipart body in which the closing delimiter `--boundary--`
    /// appears nowhere.
    NoFinalBoundary,
    /// A part that no delimiter line closes: the body ends inside it, or
    /// the next boundary is not at the start of a line.
    UnterminatedPart,
    /// A part without a header block, or whose headers are not ended by a
    /// blank line.
    MissingPartHeaders,
    /// A part whose header block is larger than the limit.
    PartHeaderTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A part header line that is not UTF-8, has no colon, an invalid name,
    /// a control character in its value, a continuation line, or repeats
    /// `Content-Disposition`.
    InvalidPartHeader,
    /// A part without a `Content-Disposition` header.
    MissingContentDisposition,
    /// A part whose `Content-Disposition` is not `form-data`.
    InvalidContentDisposition,
    /// A part whose `Content-Disposition` has no (or an empty) `name`.
    MissingName,
    /// More parts than the limit (default 100).
    TooManyParts {
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl FormError {
    /// The status a server answers with: always 400 Bad Request.
    pub fn status(&self) -> u16 {
        400
    }
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::TooManyArguments { limit } => {
                write!(f, "the request has more than {limit} arguments")
            }
            FormError::InvalidArgumentName => f.write_str("an argument name is not valid UTF-8"),
            FormError::UnsupportedContentEncoding(enc) => {
                write!(
                    f,
                    "the form body has an unsupported Content-Encoding {enc:?}"
                )
            }
            FormError::InvalidContentType => {
                f.write_str("the Content-Type is not exactly multipart/form-data")
            }
            FormError::MultipartDisabled => f.write_str("multipart/form-data parsing is disabled"),
            FormError::MissingBoundary => {
                f.write_str("the multipart/form-data Content-Type has no boundary")
            }
            FormError::BodyTooShort => {
                f.write_str("the multipart body is too short to hold its closing boundary")
            }
            FormError::NoFinalBoundary => f.write_str("the multipart body has no final boundary"),
            FormError::UnterminatedPart => {
                f.write_str("a multipart part is not closed by a boundary line")
            }
            FormError::MissingPartHeaders => {
                f.write_str("a multipart part has no headers ended by a blank line")
            }
            FormError::PartHeaderTooLarge { limit } => {
                write!(f, "a multipart part header is larger than {limit} bytes")
            }
            FormError::InvalidPartHeader => f.write_str("a multipart part has a malformed header"),
            FormError::MissingContentDisposition => {
                f.write_str("a multipart part has no Content-Disposition header")
            }
            FormError::InvalidContentDisposition => {
                f.write_str("a multipart part's Content-Disposition is not form-data")
            }
            FormError::MissingName => {
                f.write_str("a multipart part's Content-Disposition has no name")
            }
            FormError::TooManyParts { limit } => {
                write!(f, "the multipart body has more than {limit} parts")
            }
        }
    }
}

impl std::error::Error for FormError {}
