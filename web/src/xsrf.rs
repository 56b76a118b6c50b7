//! Cross-site request forgery tokens in Tornado's format: the `_xsrf`
//! cookie, the `_xsrf` form field and the `X-XSRFToken` header
//! (`RequestHandler.xsrf_token`, `check_xsrf_cookie`, `xsrf_form_html`).
//!
//! The secret is 16 random bytes, kept in the `_xsrf` cookie. Each page
//! gets it masked afresh, so that compressed responses do not leak it
//! (the BREACH attack):
//!
//! ```text
//! 2|<4-byte mask, hex>|<token XOR mask repeated, hex>|<timestamp>
//! ```
//!
//! Decoding also accepts Tornado's version 1 (the token in plain hex) and
//! the raw tokens older Tornado wrote, so existing cookies keep working. A
//! form posted by a page Python Tornado rendered checks out here, and the
//! other way round.
//!
//! # Examples
//!
//! ```
//! use whirl_web::xsrf::{check_xsrf_token, decode_xsrf_token, encode_xsrf_token, new_raw_token};
//!
//! // First visit: make a token; encode it for the cookie and for the form.
//! let raw = new_raw_token().unwrap();
//! let cookie = encode_xsrf_token(&raw.token, raw.timestamp).unwrap();
//! let form_field = encode_xsrf_token(&raw.token, raw.timestamp).unwrap();
//! assert_ne!(cookie, form_field); // masked differently each time
//!
//! // On POST: the token in the cookie must equal the one in the form.
//! let expected = decode_xsrf_token(&cookie).unwrap().token;
//! assert!(check_xsrf_token(Some(&form_field), &expected).is_ok());
//! assert!(check_xsrf_token(Some("2|00000000|00|1"), &expected).is_err());
//! assert!(check_xsrf_token(None, &expected).is_err());
//! ```

use std::fmt;
use std::time::SystemTime;

use crate::escape::xhtml_escape;
use crate::signing::{constant_time_eq, hex_encode, parse_signed, unix_timestamp, version_prefix};

/// Length of a freshly made token: 16 random bytes. Tornado:
/// `os.urandom(16)` in `_get_raw_xsrf_token`.
pub const XSRF_TOKEN_LEN: usize = 16;

/// The default name of the cookie, and the name of the form field, that
/// carry the token. Tornado: the `xsrf_cookie_name` setting's default and
/// the `_xsrf` argument.
pub const XSRF_FIELD_NAME: &str = "_xsrf";

/// The request headers that may carry the token instead of the form field,
/// in the order they are consulted. Tornado: `check_xsrf_cookie`.
pub const XSRF_HEADER_NAMES: [&str; 2] = ["X-Xsrftoken", "X-Csrftoken"];

/// Length of the mask in a version 2 token. Tornado: `os.urandom(4)`.
const MASK_LEN: usize = 4;

/// A token as read from a cookie or made for this request. Tornado: the
/// `(version, token, timestamp)` tuple of `_get_raw_xsrf_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XsrfToken {
    /// The format the cookie had (1 or 2), or `None` for a token made in
    /// this request, which still has to be sent as a cookie.
    pub version: Option<u32>,
    /// The secret bytes; never empty.
    pub token: Vec<u8>,
    /// Seconds since the epoch when the token was made. Version 1 cookies
    /// do not record it, so they get the time they were read.
    pub timestamp: i64,
}

/// Why a request failed the XSRF check; each is a 403 in Tornado, with the
/// same message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XsrfError {
    /// Neither the `_xsrf` argument nor an `X-XSRFToken`/`X-CSRFToken`
    /// header was sent, or it was empty.
    Missing,
    /// The submitted token could not be decoded.
    InvalidFormat,
    /// The submitted token is not the one in the cookie (or there is no
    /// cookie).
    Mismatch,
}

impl fmt::Display for XsrfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XsrfError::Missing => "'_xsrf' argument missing from POST",
            XsrfError::InvalidFormat => "'_xsrf' argument has invalid format",
            XsrfError::Mismatch => "XSRF cookie does not match POST argument",
        })
    }
}

impl std::error::Error for XsrfError {}

/// Makes a new random token, dated now. Tornado: the `os.urandom(16)`
/// branch of `_get_raw_xsrf_token`.
///
/// # Errors
///
/// The operating system's random source failed.
pub fn new_raw_token() -> Result<XsrfToken, getrandom::Error> {
    let mut token = vec![0u8; XSRF_TOKEN_LEN];
    getrandom::fill(&mut token)?;
    Ok(XsrfToken {
        version: None,
        token,
        timestamp: unix_timestamp(SystemTime::now()),
    })
}

/// The token a request should use: the one in its XSRF cookie if that
/// decodes, else a new one (with `version: None`, telling the caller to
/// set the cookie). Tornado: `RequestHandler._get_raw_xsrf_token`.
///
/// # Errors
///
/// The operating system's random source failed while making a new token.
pub fn get_raw_xsrf_token(cookie: Option<&str>) -> Result<XsrfToken, getrandom::Error> {
    match cookie.filter(|c| !c.is_empty()).and_then(decode_xsrf_token) {
        Some(token) => Ok(token),
        None => new_raw_token(),
    }
}

/// Encodes a token in version 2 format under a fresh random mask, so every
/// page carries a different string for the same token. Tornado: the
/// `xsrf_token` property (with `xsrf_cookie_version` 2, the default).
///
/// # Errors
///
/// The operating system's random source failed.
pub fn encode_xsrf_token(token: &[u8], timestamp: i64) -> Result<String, getrandom::Error> {
    let mut mask = [0u8; MASK_LEN];
    getrandom::fill(&mut mask)?;
    Ok(encode_xsrf_token_with_mask(token, mask, timestamp))
}

/// Encodes a token in version 2 format under the given mask:
/// `2|mask|token XOR mask|timestamp`, both in lower-case hex. Tornado: the
/// `xsrf_token` property.
///
/// Use [`encode_xsrf_token`], which picks the mask at random; a fixed mask
/// defeats the masking.
pub fn encode_xsrf_token_with_mask(token: &[u8], mask: [u8; MASK_LEN], timestamp: i64) -> String {
    format!(
        "2|{}|{}|{timestamp}",
        hex_encode(&mask),
        hex_encode(&apply_mask(mask, token))
    )
}

/// Encodes a token in version 1 format: plain lower-case hex. Tornado: the
/// `xsrf_token` property with `xsrf_cookie_version=1`.
pub fn encode_xsrf_token_v1(token: &[u8]) -> String {
    hex_encode(token)
}

/// Reads a token from a cookie or a submitted form value, dating version 1
/// tokens now. Tornado: `RequestHandler._decode_xsrf_token`.
///
/// See [`decode_xsrf_token_at`].
pub fn decode_xsrf_token(value: &str) -> Option<XsrfToken> {
    decode_xsrf_token_at(value, SystemTime::now())
}

/// Reads a token from a cookie or a submitted form value, dating version 1
/// tokens `now`. Tornado: `RequestHandler._decode_xsrf_token`.
///
/// - `2|mask|masked|timestamp`: the mask must be 4 bytes of hex (either
///   case), the masked token hex, the timestamp an integer;
/// - other text starting with a version number and `|` (`3|…`): `None`,
///   as Tornado treats unknown versions as absent;
/// - anything else is version 1: hex if it decodes as hex, else the raw
///   bytes of the text (what Tornado before 3.2.2 wrote).
///
/// Returns `None` for malformed input and, unlike Tornado (which goes on
/// with an empty token that can never match), for an empty token.
pub fn decode_xsrf_token_at(value: &str, now: SystemTime) -> Option<XsrfToken> {
    let (version, token, timestamp) = match version_prefix(value.as_bytes()) {
        Some(2) => {
            let mut parts = value.split('|');
            let (_, mask, masked, timestamp) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            let mask: [u8; MASK_LEN] = hex_decode(mask)?.try_into().ok()?;
            let token = apply_mask(mask, &hex_decode(masked)?);
            (2, token, parse_signed(timestamp.as_bytes())?)
        }
        Some(_) => return None,
        None => {
            let token = hex_decode(value).unwrap_or_else(|| value.as_bytes().to_vec());
            (1, token, unix_timestamp(now))
        }
    };
    if token.is_empty() {
        return None;
    }
    Some(XsrfToken {
        version: Some(version),
        token,
        timestamp,
    })
}

/// Whether two raw tokens are equal, compared in constant time; empty
/// tokens never match. Tornado: the `hmac.compare_digest` in
/// `check_xsrf_cookie`.
pub fn tokens_match(a: &[u8], b: &[u8]) -> bool {
    !a.is_empty() && constant_time_eq(a, b)
}

/// Checks the token a request submitted (the `_xsrf` argument, else the
/// first of [`XSRF_HEADER_NAMES`] present) against the raw token from its
/// cookie. Tornado: `RequestHandler.check_xsrf_cookie`.
///
/// Pass an empty `expected` when the request has no usable XSRF cookie:
/// the check then fails with [`XsrfError::Mismatch`], as in Tornado.
///
/// # Errors
///
/// [`XsrfError::Missing`] for no (or an empty) submitted token,
/// [`XsrfError::InvalidFormat`] when it does not decode, and
/// [`XsrfError::Mismatch`] when it is not the cookie's token. Tornado
/// answers each with 403.
pub fn check_xsrf_token(submitted: Option<&str>, expected: &[u8]) -> Result<(), XsrfError> {
    let submitted = submitted
        .filter(|s| !s.is_empty())
        .ok_or(XsrfError::Missing)?;
    let decoded = decode_xsrf_token(submitted).ok_or(XsrfError::InvalidFormat)?;
    if tokens_match(&decoded.token, expected) {
        Ok(())
    } else {
        Err(XsrfError::Mismatch)
    }
}

/// The hidden form field that carries an encoded token:
/// `<input type="hidden" name="_xsrf" value="…"/>`, the value
/// HTML-escaped. Tornado: `RequestHandler.xsrf_form_html`.
pub fn xsrf_form_html(encoded_token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{XSRF_FIELD_NAME}\" value=\"{}\"/>",
        xhtml_escape(encoded_token)
    )
}

/// XORs `data` with the 4-byte mask repeated; applying it twice restores
/// `data`. Tornado: `tornado.util._websocket_mask`.
fn apply_mask(mask: [u8; MASK_LEN], data: &[u8]) -> Vec<u8> {
    data.iter()
        .zip(mask.iter().cycle())
        .map(|(d, m)| d ^ m)
        .collect()
}

/// Decodes hex of either case; `None` for an odd length or a non-hex
/// character. Python: `binascii.a2b_hex`.
fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// The vectors' clock.
    const T: i64 = 1_700_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T as u64)
    }

    /// Tornado 6.6.1's `xsrf_token` with `os.urandom` returning this token,
    /// then this mask, at time 1700000000.9.
    const TOKEN: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    const MASK: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];
    const TORNADO_V2: &str = "2|deadbeef|debc9cdc9af8d8985634145412705010|1700000000";
    const TORNADO_V1: &str = "00112233445566778899aabbccddeeff";
    const TORNADO_FORM: &str = "<input type=\"hidden\" name=\"_xsrf\" \
        value=\"2|deadbeef|debc9cdc9af8d8985634145412705010|1700000000\"/>";
    /// The same, with `bytes(range(16))` and mask `01020304`.
    const TORNADO_V2_COUNTING: &str = "2|01020304|0103010705070503090b090f0d0f0d0b|1700000000";

    #[test]
    fn encodes_as_tornado_does() {
        assert_eq!(encode_xsrf_token_with_mask(&TOKEN, MASK, T), TORNADO_V2);
        let counting: Vec<u8> = (0..16).collect();
        assert_eq!(
            encode_xsrf_token_with_mask(&counting, [1, 2, 3, 4], T),
            TORNADO_V2_COUNTING
        );
        assert_eq!(encode_xsrf_token_v1(&TOKEN), TORNADO_V1);
        assert_eq!(xsrf_form_html(TORNADO_V2), TORNADO_FORM);
    }

    /// Outcomes of Tornado 6.6.1's `_decode_xsrf_token` on the same input
    /// (its version 1 timestamp is the time of reading).
    #[test]
    fn decodes_as_tornado_does() {
        let decoded = |version, token: &[u8], timestamp| {
            Some(XsrfToken {
                version: Some(version),
                token: token.to_vec(),
                timestamp,
            })
        };
        let counting: Vec<u8> = (0..16).collect();
        let cases: [(&str, Option<XsrfToken>); 14] = [
            (TORNADO_V2, decoded(2, &TOKEN, T)),
            (TORNADO_V2_COUNTING, decoded(2, &counting, T)),
            (
                "2|01020304|01030107050702030909080f0d0b0e0b|1700000000",
                decoded(
                    2,
                    b"\x00\x01\x02\x03\x04\x05\x01\x07\x08\x0b\x0b\x0b\x0c\t\r\x0f",
                    T,
                ),
            ),
            (
                "2|DEADBEEF|DEBC9CDC9AF8D8985634145412705010|1700000000",
                decoded(2, &TOKEN, T),
            ),
            ("2|01020304|0001|-5", decoded(2, b"\x01\x03", -5)),
            (TORNADO_V1, decoded(1, &TOKEN, T)),
            ("ABCDEF", decoded(1, b"\xab\xcd\xef", T)),
            ("abc", decoded(1, b"abc", T)),
            ("plain-token", decoded(1, b"plain-token", T)),
            ("3|a|b|c", None),
            ("2|0102|0001|1", None),
            ("2|01020304|zz|1", None),
            ("2|01020304|0001|x", None),
            ("2|01020304|0001|1|extra", None),
        ];
        for (input, want) in cases {
            assert_eq!(decode_xsrf_token_at(input, now()), want, "{input:?}");
        }
    }

    #[test]
    fn empty_tokens_are_refused() {
        for input in ["", "2|01020304||1700000000"] {
            assert_eq!(decode_xsrf_token_at(input, now()), None, "{input:?}");
        }
    }

    #[test]
    fn masking_differs_each_time_and_round_trips() {
        let raw = new_raw_token().unwrap();
        assert_eq!(raw.token.len(), XSRF_TOKEN_LEN);
        assert_eq!(raw.version, None);
        let encodings: Vec<String> = (0..4)
            .map(|_| encode_xsrf_token(&raw.token, raw.timestamp).unwrap())
            .collect();
        assert!(encodings.windows(2).any(|w| w[0] != w[1]));
        for encoded in &encodings {
            let back = decode_xsrf_token(encoded).unwrap();
            assert_eq!(back.token, raw.token);
            assert_eq!(back.timestamp, raw.timestamp);
            assert_eq!(back.version, Some(2));
        }
    }

    #[test]
    fn raw_token_comes_from_the_cookie_when_it_decodes() {
        let from_cookie = get_raw_xsrf_token(Some(TORNADO_V2)).unwrap();
        assert_eq!(from_cookie.version, Some(2));
        assert_eq!(from_cookie.token, TOKEN);
        for cookie in [None, Some(""), Some("3|x|y|z")] {
            let fresh = get_raw_xsrf_token(cookie).unwrap();
            assert_eq!(fresh.version, None, "{cookie:?}");
            assert_eq!(fresh.token.len(), XSRF_TOKEN_LEN);
        }
    }

    /// `check_xsrf_cookie`'s three refusals, with Tornado's messages.
    #[test]
    fn check_matches_tornado() {
        type Case<'a> = (Option<&'a str>, &'a [u8], Result<(), XsrfError>);
        let cases: [Case<'_>; 8] = [
            (Some(TORNADO_V2), &TOKEN, Ok(())),
            (Some(TORNADO_V1), &TOKEN, Ok(())),
            (Some(TORNADO_V2_COUNTING), &TOKEN, Err(XsrfError::Mismatch)),
            (Some(TORNADO_V2), b"", Err(XsrfError::Mismatch)),
            (None, &TOKEN, Err(XsrfError::Missing)),
            (Some(""), &TOKEN, Err(XsrfError::Missing)),
            (Some("2|bad|x|1"), &TOKEN, Err(XsrfError::InvalidFormat)),
            (Some("9|x"), &TOKEN, Err(XsrfError::InvalidFormat)),
        ];
        for (submitted, expected, want) in cases {
            assert_eq!(check_xsrf_token(submitted, expected), want, "{submitted:?}");
        }
        let messages = [
            (XsrfError::Missing, "'_xsrf' argument missing from POST"),
            (
                XsrfError::InvalidFormat,
                "'_xsrf' argument has invalid format",
            ),
            (
                XsrfError::Mismatch,
                "XSRF cookie does not match POST argument",
            ),
        ];
        for (err, want) in messages {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn tokens_match_is_exact() {
        let cases: [(&[u8], &[u8], bool); 5] = [
            (b"abc", b"abc", true),
            (b"abc", b"abd", false),
            (b"abc", b"abcd", false),
            (b"", b"", false),
            (&TOKEN, &TOKEN, true),
        ];
        for (a, b, want) in cases {
            assert_eq!(tokens_match(a, b), want, "{a:?} {b:?}");
        }
    }

    #[test]
    fn form_html_escapes_the_value() {
        assert_eq!(
            xsrf_form_html("a\"><script>"),
            "<input type=\"hidden\" name=\"_xsrf\" value=\"a&quot;&gt;&lt;script&gt;\"/>"
        );
    }

    #[test]
    fn hex_decode_is_binascii_a2b_hex() {
        let cases: [(&str, Option<&[u8]>); 6] = [
            ("", Some(b"")),
            ("00ff", Some(b"\x00\xff")),
            ("AbCd", Some(b"\xab\xcd")),
            ("abc", None),
            ("zz", None),
            ("\u{e9}\u{e9}", None),
        ];
        for (input, want) in cases {
            assert_eq!(hex_decode(input).as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let garbage = [
            "|",
            "||||",
            "2|",
            "2||||",
            "2|||",
            "2|\u{e9}\u{e9}|00|1",
            "2|0102030405|00|1",
            "2|01020304|0|1",
            "99999999999999999999999|x",
            "0|x",
            "\u{e9}",
            "2|a\nb|c|d",
        ];
        for input in garbage {
            let _ = decode_xsrf_token_at(input, now());
            let _ = check_xsrf_token(Some(input), &TOKEN);
        }
    }
}
