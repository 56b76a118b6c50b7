//! The head parser: start line and header block from bytes, with limits.
//!
//! Pure (no I/O): `Ok(None)` means "need more bytes", `Ok(Some((head,
//! consumed)))` a complete head, `Err` a malformed or oversized one — each
//! error knows the status it is answered with. `httparse` does the scanning.

use std::fmt;
use std::mem::MaybeUninit;

use crate::headers::{HeaderError, HttpHeaders};
use crate::spare::strings_from;
use crate::start_line::{RequestStartLine, ResponseStartLine, Version};

/// Default most bytes in a head (start line and headers): 64 KiB → 431.
pub const DEFAULT_MAX_HEADER_SIZE: usize = 64 * 1024;
/// Default most bytes in a request line: 8 KiB → 414.
pub const DEFAULT_MAX_REQUEST_LINE: usize = 8 * 1024;
/// Default most header fields: 100 → 431.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Header slots kept on the stack; larger `max_headers` use the heap.
const STACK_HEADERS: usize = 128;

/// Limits the head parser enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Most bytes in the whole head, blank line included.
    pub max_header_size: usize,
    /// Most bytes in the request line.
    pub max_request_line: usize,
    /// Most header fields.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            max_request_line: DEFAULT_MAX_REQUEST_LINE,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }
}

/// Why a head was refused; [`ParseError::status`] gives the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The start line is malformed (missing parts, bad target, bad line end).
    BadStartLine,
    /// The method is not a token.
    InvalidMethod,
    /// `HTTP/x.y` other than 1.0 and 1.1 (including the HTTP/2 preface).
    UnsupportedVersion,
    /// The request line is longer than the limit.
    UriTooLong,
    /// The head is larger than the limit.
    HeaderTooLarge,
    /// More header fields than the limit.
    TooManyHeaders,
    /// A malformed header line.
    BadHeader(crate::headers::HeaderError),
}

impl ParseError {
    /// The status a server answers with: 400, 414, 431 or 505.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::UnsupportedVersion => 505,
            ParseError::UriTooLong => 414,
            ParseError::HeaderTooLarge | ParseError::TooManyHeaders => 431,
            _ => 400,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::BadStartLine => f.write_str("malformed HTTP start line"),
            ParseError::InvalidMethod => f.write_str("the method is not a valid token"),
            ParseError::UnsupportedVersion => f.write_str("unsupported HTTP version"),
            ParseError::UriTooLong => f.write_str("the request line is too long"),
            ParseError::HeaderTooLarge => f.write_str("the header block is too large"),
            ParseError::TooManyHeaders => f.write_str("too many header fields"),
            ParseError::BadHeader(e) => write!(f, "malformed header: {e}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The request line.
    pub start_line: RequestStartLine,
    /// The header fields.
    pub headers: HttpHeaders,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status line.
    pub start_line: ResponseStartLine,
    /// The header fields.
    pub headers: HttpHeaders,
}

/// `max` header slots for httparse: on the stack, left uninitialised, when
/// they fit (a 100-slot `Vec` per message cost a 3 KiB allocation and
/// memset, 11% of a hello request); on the heap past `STACK_HEADERS`.
fn header_slots<'s, 'b>(
    on_stack: &'s mut [MaybeUninit<httparse::Header<'b>>; STACK_HEADERS],
    on_heap: &'s mut Vec<MaybeUninit<httparse::Header<'b>>>,
    max: usize,
) -> &'s mut [MaybeUninit<httparse::Header<'b>>] {
    if max <= STACK_HEADERS {
        &mut on_stack[..max]
    } else {
        on_heap.resize_with(max, MaybeUninit::uninit);
        &mut on_heap[..]
    }
}

/// Parses a request head from the front of `buf`.
///
/// # Errors
///
/// A [`ParseError`] for malformed or oversized input.
pub fn parse_request_head(
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<(RequestHead, usize)>, ParseError> {
    let mut on_stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut on_heap = Vec::new();
    let slots = header_slots(&mut on_stack, &mut on_heap, limits.max_headers);
    let mut req = httparse::Request::new(&mut []);
    let consumed = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            check_partial(buf, limits)?;
            return Ok(None);
        }
        Err(e) => return Err(request_error(e, buf, limits)),
    };
    if consumed > limits.max_header_size {
        return Err(ParseError::HeaderTooLarge);
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(ParseError::BadStartLine);
    };
    if parsed_line_len(buf, method, target) > limits.max_request_line {
        return Err(ParseError::UriTooLong);
    }
    let headers = to_headers(req.headers, &buf[..consumed])?;
    let [method, target] = strings_from([method, target]);
    let start_line = RequestStartLine {
        method,
        target,
        version: version(minor),
    };
    Ok(Some((
        RequestHead {
            start_line,
            headers,
        },
        consumed,
    )))
}

/// Parses a response head from the front of `buf` (for the client).
///
/// # Errors
///
/// A [`ParseError`] for malformed or oversized input.
pub fn parse_response_head(
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<(ResponseHead, usize)>, ParseError> {
    let mut on_stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut on_heap = Vec::new();
    let slots = header_slots(&mut on_stack, &mut on_heap, limits.max_headers);
    let mut resp = httparse::Response::new(&mut []);
    // Servers still fold headers; a client tolerates it (Tornado does).
    let parsed = httparse::ParserConfig::default()
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_spaces_after_header_name_in_responses(true)
        .parse_response_with_uninit_headers(&mut resp, buf, slots);
    let consumed = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_header_size {
                return Err(ParseError::HeaderTooLarge);
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(ParseError::UnsupportedVersion),
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            return Err(ParseError::BadHeader(
                crate::headers::HeaderError::InvalidValue,
            ))
        }
        Err(_) => return Err(ParseError::BadStartLine),
    };
    if consumed > limits.max_header_size {
        return Err(ParseError::HeaderTooLarge);
    }
    let (Some(code), Some(minor)) = (resp.code, resp.version) else {
        return Err(ParseError::BadStartLine);
    };
    let mut headers = HttpHeaders::with_capacity(resp.headers.len());
    let mut unfolded = String::new();
    let text = AsciiHead::of(&buf[..consumed]);
    for h in resp.headers.iter() {
        if !h.value.contains(&b'\n') {
            // The usual case: one line, added as a request's field is
            // (Latin-1, trimmed, checked).
            text.add(&mut headers, h).map_err(ParseError::BadHeader)?;
            continue;
        }
        // Unfold: httparse keeps the CRLF and leading whitespace of a folded
        // value inside it; its lines join with one space.
        unfolded.clear();
        for part in h.value.split(|&b| b == b'\r' || b == b'\n') {
            let part: String = part.iter().map(|&b| b as char).collect();
            let part = part.trim_matches([' ', '\t']);
            if !part.is_empty() {
                if !unfolded.is_empty() {
                    unfolded.push(' ');
                }
                unfolded.push_str(part);
            }
        }
        headers
            .try_add(h.name, &unfolded)
            .map_err(ParseError::BadHeader)?;
    }
    let start_line = ResponseStartLine {
        version: version(minor),
        code,
        reason: resp.reason.unwrap_or("").to_string(),
    };
    Ok(Some((
        ResponseHead {
            start_line,
            headers,
        },
        consumed,
    )))
}

/// The version for an `HTTP/1.x` minor number.
fn version(minor: u8) -> Version {
    if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    }
}

/// Converts httparse's header slices (parsed from `head`) into
/// [`HttpHeaders`], validating values.
fn to_headers(parsed: &[httparse::Header<'_>], head: &[u8]) -> Result<HttpHeaders, ParseError> {
    let mut headers = HttpHeaders::with_capacity(parsed.len());
    let text = AsciiHead::of(head);
    for h in parsed {
        text.add(&mut headers, h).map_err(ParseError::BadHeader)?;
    }
    Ok(headers)
}

/// A head's bytes, and their text when they are all ASCII (the usual
/// case): then each field's value is a slice of that text, checked for
/// UTF-8 once for the whole head rather than once a field.
struct AsciiHead<'a> {
    /// The head.
    bytes: &'a [u8],
    /// The head as text, if it is ASCII.
    text: Option<&'a str>,
}

impl<'a> AsciiHead<'a> {
    /// `head`, checked once.
    fn of(head: &'a [u8]) -> AsciiHead<'a> {
        let text = if head.is_ascii() {
            std::str::from_utf8(head).ok()
        } else {
            None
        };
        AsciiHead { bytes: head, text }
    }

    /// Adds the field `h`, as httparse parsed it from the head, to
    /// `headers` (checked again only when not ASCII).
    fn add(&self, headers: &mut HttpHeaders, h: &httparse::Header<'_>) -> Result<(), HeaderError> {
        let from = (h.value.as_ptr() as usize).wrapping_sub(self.bytes.as_ptr() as usize);
        let to = from.checked_add(h.value.len());
        match self.text.zip(to).and_then(|(text, to)| text.get(from..to)) {
            Some(value) => {
                headers.add_parsed_ascii(h.name, value);
                Ok(())
            }
            None => headers.add_raw(h.name.as_bytes(), h.value),
        }
    }
}

/// [`request_line_len`] of a request line httparse parsed, from where its
/// method and target lie (no scan): the method, a space, the target, a
/// space, `HTTP/1.x`, and the CR if the line ends with one.
fn parsed_line_len(buf: &[u8], method: &str, target: &str) -> usize {
    let at = |part: &str| (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    let version_end = at(target) + target.len() + " HTTP/1.1".len();
    let end = if buf.get(version_end) == Some(&b'\r') {
        version_end + 1
    } else {
        version_end
    };
    let len = end.saturating_sub(at(method));
    debug_assert_eq!(
        len,
        request_line_len(buf),
        "{:?}",
        String::from_utf8_lossy(buf)
    );
    len
}

/// Length of the request line (after any leading blank lines).
fn request_line_len(buf: &[u8]) -> usize {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    line.iter().position(|&b| b == b'\n').unwrap_or(line.len())
}

/// Limits on a head that is not complete yet.
fn check_partial(buf: &[u8], limits: &HeadLimits) -> Result<(), ParseError> {
    if request_line_len(buf) > limits.max_request_line {
        return Err(ParseError::UriTooLong);
    }
    if buf.len() > limits.max_header_size {
        return Err(ParseError::HeaderTooLarge);
    }
    Ok(())
}

/// Maps an httparse error on a request to ours.
fn request_error(e: httparse::Error, buf: &[u8], limits: &HeadLimits) -> ParseError {
    use crate::headers::HeaderError;
    match e {
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        httparse::Error::HeaderName => ParseError::BadHeader(HeaderError::InvalidName),
        httparse::Error::HeaderValue => ParseError::BadHeader(HeaderError::InvalidValue),
        httparse::Error::Version => {
            // `HTTP/2.0` (or the h2 preface) as the third of three parts is a
            // version we do not speak: 505. Anything else (`http/1.1`, a space
            // inside the target, `FOO`) is just malformed.
            let start = buf
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .unwrap_or(buf.len());
            let line = &buf[start..start + request_line_len(buf)];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut parts = line.split(|&b| b == b' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(_), Some(_), Some(v), None)
                    if v.len() == 8
                        && v.starts_with(b"HTTP/")
                        && v[5].is_ascii_digit()
                        && v[6] == b'.'
                        && v[7].is_ascii_digit()
                        && v != b"HTTP/1.0"
                        && v != b"HTTP/1.1" =>
                {
                    ParseError::UnsupportedVersion
                }
                _ => ParseError::BadStartLine,
            }
        }
        httparse::Error::Token => {
            let first_space = buf.iter().position(|&b| b == b' ');
            match first_space {
                Some(at)
                    if buf[..at]
                        .iter()
                        .all(|&b| crate::headers::is_token_byte(b) || b == b'\r' || b == b'\n') =>
                {
                    if request_line_len(buf) > limits.max_request_line {
                        ParseError::UriTooLong
                    } else {
                        ParseError::BadStartLine
                    }
                }
                Some(_) => ParseError::InvalidMethod,
                None => ParseError::BadStartLine,
            }
        }
        _ => ParseError::BadStartLine,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(bytes: &[u8]) -> Result<Option<(RequestHead, usize)>, ParseError> {
        parse_request_head(bytes, &HeadLimits::default())
    }

    #[test]
    fn ascii_and_latin1_heads_give_the_same_trimmed_fields() {
        // All ASCII: the values are slices of the head checked whole.
        let (head, _) = req(b"GET / HTTP/1.1\r\nHost:  x \r\nX-A:\tone two\t\r\nX-B:\r\n\r\n")
            .unwrap()
            .unwrap();
        let fields: Vec<_> = head.headers.iter().collect();
        assert_eq!(fields, [("Host", "x"), ("X-A", "one two"), ("X-B", "")]);
        // One Latin-1 byte anywhere: every field is read byte by byte.
        let (head, _) = req(b"GET / HTTP/1.1\r\nHost:  x \r\nX-A: caf\xe9 \r\n\r\n")
            .unwrap()
            .unwrap();
        let fields: Vec<_> = head.headers.iter().collect();
        assert_eq!(fields, [("Host", "x"), ("X-A", "caf\u{e9}")]);
        // Checks hold either way.
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n"[..],
            &b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \xe9\x01\r\n\r\n"[..],
        ] {
            assert!(req(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn complete_request() {
        let (head, n) = req(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\nBODY")
            .unwrap()
            .unwrap();
        assert_eq!(head.start_line.method, "GET");
        assert_eq!(head.start_line.target, "/a?b=1");
        assert_eq!(head.start_line.version, Version::Http11);
        assert_eq!(head.headers.get("host"), Some("x"));
        assert_eq!(n, 40);
    }

    #[test]
    fn partial_needs_more() {
        assert_eq!(req(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(), None);
        assert_eq!(req(b"GE").unwrap(), None);
    }

    #[test]
    fn bare_lf_and_one_leading_crlf_are_accepted() {
        assert!(req(b"GET / HTTP/1.0\n\n").unwrap().is_some());
        assert!(req(b"\r\nGET / HTTP/1.0\r\n\r\n").unwrap().is_some());
    }

    #[test]
    fn statuses_of_malformed_heads() {
        let cases: &[(&[u8], u16)] = &[
            (b"asdf\r\n\r\n", 400),
            (b"FOO,BAR / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
            (b"GET / http/1.1\r\n\r\n", 400),
            (b"\r\nGET / HTTP/2.0\r\n\r\n", 505),
            // Regression: a space inside the target was taken for a version.
            (b"GET /a b HTTP/1.1\r\n\r\n", 400),
            (b"GET /a b HTTP/2.0\r\n\r\n", 400),
            (b"GET /\x01 HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX : y\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX: 1\r\n 2\r\n\r\n", 400),
            (b"GET / HTTP/1.1\rX: 1\r\n\r\n", 400),
        ];
        for (bytes, status) in cases {
            let got = req(bytes);
            assert_eq!(
                got.as_ref().map_err(ParseError::status).err(),
                Some(*status),
                "{:?} gave {got:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn a_request_line_of_the_limit_passes_and_one_byte_more_is_414() {
        let limits = HeadLimits::default();
        // `GET ` + target + ` HTTP/1.1` + CR: the target plus 14 bytes.
        for (ending, extra) in [("\r\n", 14), ("\n", 13)] {
            let line = |target_len: usize| {
                format!(
                    "GET /{} HTTP/1.1{ending}Host: x{ending}{ending}",
                    "a".repeat(target_len - 1)
                )
            };
            let fits = line(limits.max_request_line - extra);
            assert!(req(fits.as_bytes()).unwrap().is_some(), "{ending:?}");
            let over = line(limits.max_request_line - extra + 1);
            assert_eq!(
                req(over.as_bytes()).unwrap_err().status(),
                414,
                "{ending:?}"
            );
        }
        // Blank lines before the request line do not count.
        let fits = format!(
            "\r\n\r\nGET /{} HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(limits.max_request_line - 15)
        );
        assert!(req(fits.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn limits() {
        let limits = HeadLimits::default();
        let long_target = format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(limits.max_request_line)
        );
        assert_eq!(req(long_target.as_bytes()).unwrap_err().status(), 414);
        let long_partial = format!("GET /{}", "a".repeat(limits.max_request_line + 1));
        assert_eq!(req(long_partial.as_bytes()).unwrap_err().status(), 414);
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        while big.len() <= limits.max_header_size {
            big.extend_from_slice(
                b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            );
        }
        assert_eq!(req(&big).unwrap_err(), ParseError::TooManyHeaders);
        let mut huge_value = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge_value.resize(limits.max_header_size + 10, b'a');
        assert_eq!(req(&huge_value).unwrap_err().status(), 431);
        let many: String = (0..101).map(|i| format!("X-{i}: 1\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            req(many.as_bytes()).unwrap_err(),
            ParseError::TooManyHeaders
        );
    }

    #[test]
    fn response_head_tolerates_folding() {
        let (head, _) = parse_response_head(
            b"HTTP/1.1 200 OK\r\nX: a\r\n  b\r\nContent-Length: 0\r\n\r\n",
            &HeadLimits::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.start_line.code, 200);
        assert_eq!(head.start_line.reason, "OK");
        assert_eq!(head.headers.get("x"), Some("a b"));
    }
}
