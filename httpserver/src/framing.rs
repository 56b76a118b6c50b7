//! Which body framing a message uses (RFC 9112 §6.3), decided from its head.
//!
//! Pure: the request rules refuse every ambiguity a smuggler could use —
//! `Transfer-Encoding` with `Content-Length`, repeated or odd lengths,
//! `chunked` anywhere but last — each with the status to answer. The
//! response rules ([`response_framing`], for the client) are as strict
//! about contradictions but follow the response half of §6.3: no body for
//! HEAD, 1xx, 204 and 304, and a body read until close when nothing else
//! delimits it.

use std::fmt;

use crate::body::Framing;
use crate::headers::HttpHeaders;
use crate::start_line::{RequestStartLine, ResponseStartLine, Version};

/// Why a message's framing was refused.
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
    /// A 1xx response with `Content-Length` or `Transfer-Encoding` (1xx
    /// responses never have a body).
    BodyOnInformational {
        /// The 1xx status.
        code: u16,
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
            FramingError::BodyOnInformational { code } => {
                write!(
                    f,
                    "the {code} response declares a body, which a 1xx response cannot have"
                )
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
    let value = match headers.get_once("Content-Length") {
        Ok(Some(value)) => value,
        Ok(None) => return Ok(None),
        Err(_) => return Err(FramingError::InvalidContentLength),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FramingError::InvalidContentLength);
    }
    value
        .parse::<u64>()
        .map(Some)
        .map_err(|_| FramingError::InvalidContentLength)
}

/// Whether the client asked to keep the connection open after this request:
/// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
/// `Connection: keep-alive` and no `Transfer-Encoding` (RFC 9112 §6.1: an
/// HTTP/1.0 message with one has faulty framing, so the connection closes
/// after it).
pub fn wants_keep_alive(start_line: &RequestStartLine, headers: &HttpHeaders) -> bool {
    keep_alive_by_version(start_line.version, headers)
}

/// Whether the server lets the client send another request on the
/// connection after this response, by its version and `Connection` header
/// (the same rule as [`wants_keep_alive`]; the body's framing is the
/// caller's other half of the decision).
pub fn response_wants_keep_alive(start_line: &ResponseStartLine, headers: &HttpHeaders) -> bool {
    keep_alive_by_version(start_line.version, headers)
}

/// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
/// `Connection: keep-alive` and no `Transfer-Encoding`.
fn keep_alive_by_version(version: Version, headers: &HttpHeaders) -> bool {
    let has = |token: &str| {
        headers
            .get_all("Connection")
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    match version {
        Version::Http11 => !has("close"),
        Version::Http10 => has("keep-alive") && !headers.contains("Transfer-Encoding"),
    }
}

/// The framing of a response body, for the client (RFC 9112 §6.3), or why
/// it is refused. Tornado: the client half of `HTTP1Connection._read_body`.
///
/// In order: an answer to HEAD, a 204 or a 304 has no body whatever its
/// headers say, and neither has a 1xx — but a 1xx that declares one is
/// refused (Tornado does the same); `Transfer-Encoding` with
/// `Content-Length` is refused (strict, against smuggling); a
/// `Transfer-Encoding` whose final coding is `chunked` (once) is chunked,
/// any other is read until the server closes; a `Content-Length` — one
/// number, or the same number repeated, as proxies sometimes duplicate it —
/// is that many bytes (zero: no body), and a length over `max_body` is
/// refused before any of the body is read; with neither header the body
/// runs until the server closes.
///
/// Transfer codings other than `chunked` are not decoded: their bytes are
/// the body the caller receives.
///
/// # Errors
///
/// [`FramingError::BodyOnInformational`],
/// [`FramingError::TransferEncodingWithLength`],
/// [`FramingError::InvalidTransferEncoding`] (`chunked` twice),
/// [`FramingError::InvalidContentLength`] (not a number, or two different
/// numbers), [`FramingError::TooLarge`].
pub fn response_framing(
    code: u16,
    request_method: &str,
    headers: &HttpHeaders,
    max_body: u64,
) -> Result<Framing, FramingError> {
    let has_te = headers.contains("Transfer-Encoding");
    let has_cl = headers.contains("Content-Length");
    // Step 1. Responses without a body.
    if (100..200).contains(&code) && (has_te || has_cl) {
        return Err(FramingError::BodyOnInformational { code });
    }
    if response_has_no_body(code, request_method) {
        return Ok(Framing::Empty);
    }
    // Step 2. Transfer-Encoding, which must stand alone.
    if has_te && has_cl {
        return Err(FramingError::TransferEncodingWithLength);
    }
    if has_te {
        let codings: Vec<&str> = headers
            .get_all("Transfer-Encoding")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let chunked = codings
            .iter()
            .filter(|c| c.eq_ignore_ascii_case("chunked"))
            .count();
        let last_is_chunked = codings
            .last()
            .is_some_and(|c| c.eq_ignore_ascii_case("chunked"));
        return match (chunked, last_is_chunked) {
            (1, true) => Ok(Framing::Chunked),
            (0, _) | (1, false) => Ok(Framing::CloseDelimited),
            _ => Err(FramingError::InvalidTransferEncoding),
        };
    }
    // Step 3. Content-Length, or until close.
    match response_content_length(headers)? {
        None => Ok(Framing::CloseDelimited),
        Some(0) => Ok(Framing::Empty),
        Some(length) if length > max_body => Err(FramingError::TooLarge {
            length,
            max: max_body,
        }),
        Some(length) => Ok(Framing::Length(length)),
    }
}

/// A response's `Content-Length`: every value, in one header or several,
/// comma-separated or not, must be the same plain decimal number.
fn response_content_length(headers: &HttpHeaders) -> Result<Option<u64>, FramingError> {
    let mut length = None;
    for piece in headers
        .get_all("Content-Length")
        .flat_map(|v| v.split(','))
        .map(str::trim)
    {
        if piece.is_empty() || !piece.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FramingError::InvalidContentLength);
        }
        let value = piece
            .parse::<u64>()
            .map_err(|_| FramingError::InvalidContentLength)?;
        if length.is_some_and(|l| l != value) {
            return Err(FramingError::InvalidContentLength);
        }
        length = Some(value);
    }
    Ok(length)
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
        // RFC 9112 §6.1: HTTP/1.0 with Transfer-Encoding is faulty framing.
        assert!(!wants_keep_alive(
            &line(Version::Http10),
            &h(b"Connection: Keep-Alive\r\nTransfer-Encoding: chunked\r\n")
        ));
        assert!(response_has_no_body(204, "GET") && response_has_no_body(200, "HEAD"));
        assert!(!response_has_no_body(200, "GET"));
    }

    /// A response case: status, request method, header block, framing.
    type ResponseCase = (
        u16,
        &'static str,
        &'static [u8],
        Result<Framing, FramingError>,
    );

    #[test]
    fn response_table() {
        use FramingError as E;
        let cases: &[ResponseCase] = &[
            (200, "GET", b"", Ok(Framing::CloseDelimited)),
            (
                200,
                "GET",
                b"Content-Length: 12\r\n",
                Ok(Framing::Length(12)),
            ),
            (200, "GET", b"Content-Length: 0\r\n", Ok(Framing::Empty)),
            (
                200,
                "GET",
                b"Content-Length: 5, 5\r\n",
                Ok(Framing::Length(5)),
            ),
            (
                200,
                "GET",
                b"Content-Length: 5\r\nContent-Length: 5\r\n",
                Ok(Framing::Length(5)),
            ),
            (
                200,
                "GET",
                b"Content-Length: 5\r\nContent-Length: 6\r\n",
                Err(E::InvalidContentLength),
            ),
            (
                200,
                "GET",
                b"Content-Length: 5, 6\r\n",
                Err(E::InvalidContentLength),
            ),
            (
                200,
                "GET",
                b"Content-Length: 5,\r\n",
                Err(E::InvalidContentLength),
            ),
            (
                200,
                "GET",
                b"Content-Length: +5\r\n",
                Err(E::InvalidContentLength),
            ),
            (
                200,
                "GET",
                b"Content-Length: 0x5\r\n",
                Err(E::InvalidContentLength),
            ),
            (
                200,
                "GET",
                b"Content-Length: foo\r\n",
                Err(E::InvalidContentLength),
            ),
            (
                200,
                "GET",
                b"Content-Length: 99999999999999999999999\r\n",
                Err(E::InvalidContentLength),
            ),
            (
                200,
                "GET",
                b"Content-Length: 1001\r\n",
                Err(E::TooLarge {
                    length: 1001,
                    max: 1000,
                }),
            ),
            (
                200,
                "GET",
                b"Transfer-Encoding: chunked\r\n",
                Ok(Framing::Chunked),
            ),
            (
                200,
                "GET",
                b"Transfer-Encoding: Chunked\r\n",
                Ok(Framing::Chunked),
            ),
            (
                200,
                "GET",
                b"Transfer-Encoding: gzip, chunked\r\n",
                Ok(Framing::Chunked),
            ),
            (
                200,
                "GET",
                b"Transfer-Encoding: gzip\r\n",
                Ok(Framing::CloseDelimited),
            ),
            (
                200,
                "GET",
                b"Transfer-Encoding: chunked, gzip\r\n",
                Ok(Framing::CloseDelimited),
            ),
            (
                200,
                "GET",
                b"Transfer-Encoding: chunked, chunked\r\n",
                Err(E::InvalidTransferEncoding),
            ),
            (
                200,
                "GET",
                b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                Err(E::InvalidTransferEncoding),
            ),
            (
                200,
                "GET",
                b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                Err(E::TransferEncodingWithLength),
            ),
            (200, "HEAD", b"Content-Length: 12\r\n", Ok(Framing::Empty)),
            (
                200,
                "HEAD",
                b"Transfer-Encoding: chunked\r\n",
                Ok(Framing::Empty),
            ),
            (204, "GET", b"", Ok(Framing::Empty)),
            (304, "GET", b"Content-Length: 12\r\n", Ok(Framing::Empty)),
            (100, "POST", b"", Ok(Framing::Empty)),
            (101, "GET", b"Upgrade: websocket\r\n", Ok(Framing::Empty)),
            (
                100,
                "POST",
                b"Content-Length: 0\r\n",
                Err(E::BodyOnInformational { code: 100 }),
            ),
            (
                103,
                "HEAD",
                b"Transfer-Encoding: chunked\r\n",
                Err(E::BodyOnInformational { code: 103 }),
            ),
        ];
        for (code, method, block, want) in cases {
            let headers = HttpHeaders::parse(block).unwrap();
            assert_eq!(
                &response_framing(*code, method, &headers, 1000),
                want,
                "{code} {method} {:?}",
                String::from_utf8_lossy(block)
            );
        }
    }

    #[test]
    fn response_keep_alive_rules() {
        let line = |v| ResponseStartLine {
            version: v,
            code: 200,
            reason: String::new(),
        };
        let h = |b: &[u8]| HttpHeaders::parse(b).unwrap();
        assert!(response_wants_keep_alive(&line(Version::Http11), &h(b"")));
        assert!(!response_wants_keep_alive(
            &line(Version::Http11),
            &h(b"Connection: keep-alive, Close\r\n")
        ));
        assert!(!response_wants_keep_alive(&line(Version::Http10), &h(b"")));
        assert!(response_wants_keep_alive(
            &line(Version::Http10),
            &h(b"Connection: Keep-Alive\r\n")
        ));
        assert!(!response_wants_keep_alive(
            &line(Version::Http10),
            &h(b"Connection: Keep-Alive\r\nTransfer-Encoding: chunked\r\n")
        ));
    }
}
