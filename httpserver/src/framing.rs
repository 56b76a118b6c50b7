//! Which body framing a message uses (RFC 9112 §6.3), decided from its head.
//!
//! Pure: the request rules refuse every ambiguity a smuggler could use —
//! `Transfer-Encoding` with `Content-Length`, repeated or odd lengths,
//! `chunked` anywhere but last — each with the status to answer.

use std::fmt;

use crate::body::Framing;
use crate::headers::HttpHeaders;
use crate::start_line::{RequestStartLine, Version};

/// Why a request's framing was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramingError {
    /// Both `Transfer-Encoding` and `Content-Length`.
    TransferEncodingWithLength,
    /// A `Content-Length` that is not one plain decimal number.
    InvalidContentLength,
    /// `chunked` repeated or not the last coding.
    InvalidTransferEncoding,
    /// A final transfer coding other than `chunked` (501).
    UnsupportedTransferEncoding,
    /// A body longer than the limit (413).
    TooLarge {
        /// The declared length.
        length: u64,
        /// The limit.
        max: u64,
    },
}

impl FramingError {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            FramingError::UnsupportedTransferEncoding => 501,
            FramingError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::TransferEncodingWithLength => {
                f.write_str("the message has both Transfer-Encoding and Content-Length")
            }
            FramingError::InvalidContentLength => f.write_str("the Content-Length is not a number"),
            FramingError::InvalidTransferEncoding => {
                f.write_str("chunked is repeated or not the last transfer coding")
            }
            FramingError::UnsupportedTransferEncoding => {
                f.write_str("the final transfer coding is not chunked")
            }
            FramingError::TooLarge { length, max } => {
                write!(f, "the body of {length} bytes is over the {max}-byte limit")
            }
        }
    }
}

impl std::error::Error for FramingError {}

/// The framing of a request body, or why it is refused. A declared length over
/// `max_body` is refused here, before any of the body is read.
///
/// # Errors
///
/// A [`FramingError`] (400, 413 or 501).
pub fn request_framing(headers: &HttpHeaders, max_body: u64) -> Result<Framing, FramingError> {
    let has_te = headers.contains("Transfer-Encoding");
    let has_cl = headers.contains("Content-Length");
    if has_te && has_cl {
        return Err(FramingError::TransferEncodingWithLength);
    }
    if has_te {
        return transfer_framing(headers);
    }
    match content_length(headers)? {
        None | Some(0) => Ok(Framing::Empty),
        Some(length) if length > max_body => Err(FramingError::TooLarge {
            length,
            max: max_body,
        }),
        Some(length) => Ok(Framing::Length(length)),
    }
}

/// `Transfer-Encoding` must be exactly `chunked`: `chunked` repeated or not
/// last is malformed (400); any other coding is one we do not decode (501).
fn transfer_framing(headers: &HttpHeaders) -> Result<Framing, FramingError> {
    let codings: Vec<String> = headers
        .get_all("Transfer-Encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    let chunked = codings.iter().filter(|c| *c == "chunked").count();
    let last_is_chunked = codings.last().is_some_and(|c| c == "chunked");
    match (chunked, last_is_chunked, codings.len()) {
        (1, true, 1) => Ok(Framing::Chunked),
        // `gzip, chunked` is well-formed but needs a coding we do not decode.
        (1, true, _) => Err(FramingError::UnsupportedTransferEncoding),
        (0, _, _) => Err(FramingError::UnsupportedTransferEncoding),
        _ => Err(FramingError::InvalidTransferEncoding),
    }
}

/// The one `Content-Length`, if any: digits only, one value, one header.
///
/// # Errors
///
/// [`FramingError::InvalidContentLength`] for anything else (signs, hex,
/// spaces inside, `5, 5`, two headers, overflow).
pub fn content_length(headers: &HttpHeaders) -> Result<Option<u64>, FramingError> {
    let mut values = headers.get_all("Content-Length");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FramingError::InvalidContentLength);
    }
    value
        .parse::<u64>()
        .map(Some)
        .map_err(|_| FramingError::InvalidContentLength)
}

/// Whether the client asked to keep the connection open after this request:
/// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
/// `Connection: keep-alive`.
pub fn wants_keep_alive(start_line: &RequestStartLine, headers: &HttpHeaders) -> bool {
    let has = |token: &str| {
        headers
            .get_all("Connection")
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    match start_line.version {
        Version::Http11 => !has("close"),
        Version::Http10 => has("keep-alive"),
    }
}

/// Whether a response with this status (to this method) carries no body:
/// 1xx, 204, 304, or any answer to HEAD.
pub fn response_has_no_body(code: u16, request_method: &str) -> bool {
    (100..200).contains(&code) || code == 204 || code == 304 || request_method == "HEAD"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(block: &[u8]) -> Result<Framing, FramingError> {
        request_framing(&HttpHeaders::parse(block).unwrap(), 1000)
    }

    #[test]
    fn table() {
        let cases: &[(&[u8], Result<Framing, u16>)] = &[
            (b"", Ok(Framing::Empty)),
            (b"Content-Length: 0\r\n", Ok(Framing::Empty)),
            (b"Content-Length: 12\r\n", Ok(Framing::Length(12))),
            (b"Content-Length: 1001\r\n", Err(413)),
            (b"Content-Length: 99999999999999999999999\r\n", Err(400)),
            (b"Content-Length: +10\r\n", Err(400)),
            (b"Content-Length: -1\r\n", Err(400)),
            (b"Content-Length: 0x10\r\n", Err(400)),
            (b"Content-Length: 1_0\r\n", Err(400)),
            (b"Content-Length: foo\r\n", Err(400)),
            (b"Content-Length:\r\n", Err(400)),
            (b"Content-Length: 5, 5\r\n", Err(400)),
            (b"Content-Length: 5\r\nContent-Length: 5\r\n", Err(400)),
            (b"Transfer-Encoding: chunked\r\n", Ok(Framing::Chunked)),
            (b"Transfer-Encoding: Chunked\r\n", Ok(Framing::Chunked)),
            (b"Transfer-Encoding: gzip, chunked\r\n", Err(501)),
            (
                b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                Err(400),
            ),
            (b"Transfer-Encoding: chunked, identity\r\n", Err(400)),
            (b"Transfer-Encoding: chunked, chunked\r\n", Err(400)),
            (
                b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                Err(400),
            ),
            (b"Transfer-Encoding: gzip\r\n", Err(501)),
            (b"Transfer-Encoding: identity\r\n", Err(501)),
            (b"Transfer-Encoding: xchunked\r\n", Err(501)),
            (b"Transfer-Encoding: \r\n", Err(501)),
        ];
        for (block, want) in cases {
            let got = framing(block).map_err(|e| e.status());
            assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(block));
        }
    }

    #[test]
    fn keep_alive_rules() {
        let line = |v| RequestStartLine {
            method: "GET".into(),
            target: "/".into(),
            version: v,
        };
        let h = |b: &[u8]| HttpHeaders::parse(b).unwrap();
        assert!(wants_keep_alive(&line(Version::Http11), &h(b"")));
        assert!(!wants_keep_alive(
            &line(Version::Http11),
            &h(b"Connection: close\r\n")
        ));
        assert!(!wants_keep_alive(&line(Version::Http10), &h(b"")));
        assert!(wants_keep_alive(
            &line(Version::Http10),
            &h(b"Connection: Keep-Alive\r\n")
        ));
        assert!(response_has_no_body(204, "GET") && response_has_no_body(200, "HEAD"));
        assert!(!response_has_no_body(200, "GET"));
    }
}
