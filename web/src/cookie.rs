//! `Set-Cookie` header values, written as Tornado's
//! `RequestHandler.set_cookie` and `clear_cookie` write them (through
//! Python's `http.cookies.Morsel.OutputString`).
//!
//! The value is quoted the way Python's `http.cookies` quotes it; the
//! attributes follow in Python's order (`Domain`, `expires`, `HttpOnly`,
//! `Max-Age`, `Path`, `SameSite`, `Secure`), joined by `"; "`. Names, values
//! and attributes Tornado refuses are refused here with a [`CookieError`].
//! Reading the `Cookie` request header is `whirl_httpserver::parse_cookie`.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use whirl_web::cookie::{format_clear_cookie_at, format_set_cookie, CookieOptions, SameSite};
//!
//! let options = CookieOptions {
//!     httponly: true,
//!     samesite: Some(SameSite::Lax),
//!     ..CookieOptions::default()
//! };
//! assert_eq!(
//!     format_set_cookie("session", "abc123", &options).unwrap(),
//!     "session=abc123; HttpOnly; Path=/; SameSite=Lax"
//! );
//! // Values with separators are quoted, as Python's http.cookies does.
//! assert_eq!(
//!     format_set_cookie("note", "a;b", &CookieOptions::default()).unwrap(),
//!     r#"note="a\073b"; Path=/"#
//! );
//! // Spaces and control characters are refused, as in Tornado.
//! assert!(format_set_cookie("note", "a b", &CookieOptions::default()).is_err());
//!
//! let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! assert_eq!(
//!     format_clear_cookie_at("session", &CookieOptions::default(), now).unwrap(),
//!     r#"session=""; expires=Mon, 14 Nov 2022 22:13:20 GMT; Path=/"#
//! );
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use whirl_httpserver::format_timestamp;

/// How long before "now" [`format_clear_cookie_at`] dates the expiry:
/// 365 days. Tornado: `clear_cookie`.
const CLEAR_COOKIE_AGE: Duration = Duration::from_secs(365 * 86_400);

/// The characters a cookie name may hold, and a value may hold unquoted.
/// Python: `http.cookies._LegalChars`.
const LEGAL_PUNCTUATION: &str = "!#$%&'*+-.^_`|~:";

/// Punctuation that may appear inside a quoted value without a backslash
/// escape (besides the legal characters). Python: `_UnescapedChars`.
const UNESCAPED_PUNCTUATION: &str = " ()/<=>?@[]{}";

/// Names that are cookie attributes and so cannot name a cookie
/// (compared without case). Python: `Morsel._reserved`.
const RESERVED_NAMES: [&str; 9] = [
    "expires", "path", "comment", "domain", "max-age", "secure", "httponly", "version", "samesite",
];

/// The `SameSite` attribute of a cookie. Tornado: `set_cookie(samesite=...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Sent only with requests from the cookie's own site.
    Strict,
    /// Also sent on top-level navigations from other sites.
    Lax,
    /// Sent with cross-site requests too; browsers require `Secure` with it.
    None,
}

impl SameSite {
    /// The attribute value as written in the header: `Strict`, `Lax` or
    /// `None`.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// The attributes of an outgoing cookie. Tornado: the keyword arguments of
/// `RequestHandler.set_cookie`.
#[derive(Debug, Clone, PartialEq)]
pub struct CookieOptions {
    /// `Domain`; `None` or empty leaves it out, making a host-only cookie.
    /// Default is `None`.
    pub domain: Option<String>,
    /// `expires`, as an HTTP date; wins over `expires_days`. Default is
    /// `None` (a session cookie unless `expires_days` or `max_age` is set).
    pub expires: Option<SystemTime>,
    /// `Path`; `None` or empty leaves it out. Default is `Some("/")`.
    pub path: Option<String>,
    /// `expires` as days from now, fractions and negatives allowed; ignored
    /// when `expires` is set. Default is `None`.
    pub expires_days: Option<f64>,
    /// `Max-Age` in seconds. Default is `None`. Unlike Tornado, `Some(0)`
    /// is written (Tornado drops a zero `max_age` as false).
    pub max_age: Option<u64>,
    /// `HttpOnly`: hidden from scripts. Default is `false`.
    pub httponly: bool,
    /// `Secure`: sent over HTTPS only. Default is `false`.
    pub secure: bool,
    /// `SameSite`. Default is `None` (the attribute is left out).
    pub samesite: Option<SameSite>,
}

impl Default for CookieOptions {
    fn default() -> Self {
        CookieOptions {
            domain: None,
            expires: None,
            path: Some("/".to_owned()),
            expires_days: None,
            max_age: None,
            httponly: false,
            secure: false,
            samesite: None,
        }
    }
}

/// Why a cookie could not be written. Tornado raises `ValueError` or
/// `http.cookies.CookieError` for the same inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum CookieError {
    /// The name is empty or holds a character other than letters, digits
    /// and ``!#$%&'*+-.^_`|~:``.
    InvalidName(String),
    /// The name is a cookie attribute (`path`, `expires`, …).
    ReservedName(String),
    /// The value holds a space or a control character.
    InvalidValue {
        /// The cookie's name.
        name: String,
        /// The refused value.
        value: String,
    },
    /// The value holds a character above U+00FF, which Python's
    /// `http.cookies` neither escapes nor Tornado can send in a header.
    UnencodableValue {
        /// The cookie's name.
        name: String,
        /// The first such character.
        character: char,
    },
    /// An attribute holds a space, `;`, a control character or a non-ASCII
    /// character, or `expires_days` is not a usable number.
    InvalidAttribute {
        /// The cookie's name.
        name: String,
        /// Which attribute: `domain`, `path` or `expires_days`.
        attribute: &'static str,
        /// The refused attribute value.
        value: String,
    },
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CookieError::InvalidName(name) => write!(
                f,
                "invalid cookie name {name:?}: a name is one or more letters, digits or {LEGAL_PUNCTUATION}"
            ),
            CookieError::ReservedName(name) => write!(
                f,
                "{name:?} cannot name a cookie because it is a cookie attribute"
            ),
            CookieError::InvalidValue { name, value } => write!(
                f,
                "invalid value {value:?} for cookie {name:?}: spaces and control characters are not allowed"
            ),
            CookieError::UnencodableValue { name, character } => write!(
                f,
                "the value of cookie {name:?} holds {character:?}, which cannot be sent in a Set-Cookie header"
            ),
            CookieError::InvalidAttribute {
                name,
                attribute,
                value,
            } => write!(f, "invalid {attribute} {value:?} for cookie {name:?}"),
        }
    }
}

impl std::error::Error for CookieError {}

/// Formats a `Set-Cookie` header value, reading the clock for
/// `expires_days`. Tornado: `RequestHandler.set_cookie`.
///
/// See [`format_set_cookie_at`].
///
/// # Errors
///
/// As [`format_set_cookie_at`].
pub fn format_set_cookie(
    name: &str,
    value: &str,
    options: &CookieOptions,
) -> Result<String, CookieError> {
    format_set_cookie_at(name, value, options, SystemTime::now())
}

/// Formats a `Set-Cookie` header value, with `now` as the time
/// `expires_days` counts from. Tornado: `RequestHandler.set_cookie`
/// followed by `Morsel.OutputString`.
///
/// # Errors
///
/// In Tornado's order: [`CookieError::InvalidValue`] for a value with a
/// space or control character (and [`CookieError::UnencodableValue`] for
/// one above U+00FF); [`CookieError::InvalidName`] or
/// [`CookieError::InvalidAttribute`] for a name, domain or path with a
/// space, `;` or control character (whirl also refuses non-ASCII
/// attributes); [`CookieError::ReservedName`] and
/// [`CookieError::InvalidName`] for names Python's `http.cookies` refuses.
pub fn format_set_cookie_at(
    name: &str,
    value: &str,
    options: &CookieOptions,
    now: SystemTime,
) -> Result<String, CookieError> {
    // Step 1: the value (Tornado checks it first).
    if value.chars().any(|c| c <= ' ') {
        return Err(CookieError::InvalidValue {
            name: name.to_owned(),
            value: value.to_owned(),
        });
    }
    if let Some(character) = value.chars().find(|&c| u32::from(c) > 0xFF) {
        return Err(CookieError::UnencodableValue {
            name: name.to_owned(),
            character,
        });
    }
    // Step 2: the name and the text attributes, in Tornado's order.
    if name.chars().any(|c| c <= ' ' || c == ';' || c == '\x7f') {
        return Err(CookieError::InvalidName(name.to_owned()));
    }
    let domain = checked_attribute(name, "domain", options.domain.as_deref())?;
    let path = checked_attribute(name, "path", options.path.as_deref())?;
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(CookieError::ReservedName(name.to_owned()));
    }
    if name.is_empty() || !name.chars().all(is_legal_char) {
        return Err(CookieError::InvalidName(name.to_owned()));
    }
    // Step 3: the expiry.
    let expires = match (options.expires, options.expires_days) {
        (Some(expires), _) => Some(expires),
        (None, Some(days)) => {
            Some(
                days_from(now, days).ok_or_else(|| CookieError::InvalidAttribute {
                    name: name.to_owned(),
                    attribute: "expires_days",
                    value: days.to_string(),
                })?,
            )
        }
        (None, None) => None,
    };
    // Step 4: write it, attributes sorted by their lower-case keys.
    let mut out = format!("{name}={}", quote_value(value));
    if let Some(domain) = domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    if let Some(expires) = expires {
        out.push_str("; expires=");
        out.push_str(&format_timestamp(expires));
    }
    if options.httponly {
        out.push_str("; HttpOnly");
    }
    if let Some(max_age) = options.max_age {
        out.push_str(&format!("; Max-Age={max_age}"));
    }
    if let Some(path) = path {
        out.push_str("; Path=");
        out.push_str(path);
    }
    if let Some(samesite) = options.samesite {
        out.push_str("; SameSite=");
        out.push_str(samesite.as_str());
    }
    if options.secure {
        out.push_str("; Secure");
    }
    Ok(out)
}

/// Formats a `Set-Cookie` header value that deletes a cookie, reading the
/// clock. Tornado: `RequestHandler.clear_cookie`.
///
/// See [`format_clear_cookie_at`].
///
/// # Errors
///
/// As [`format_set_cookie_at`].
pub fn format_clear_cookie(name: &str, options: &CookieOptions) -> Result<String, CookieError> {
    format_clear_cookie_at(name, options, SystemTime::now())
}

/// Formats a `Set-Cookie` header value that deletes a cookie: an empty
/// value that expired 365 days before `now`. Tornado:
/// `RequestHandler.clear_cookie`.
///
/// `domain`, `path`, `samesite` and `secure` must match those the cookie
/// was set with, or the browser keeps it. `expires`, `expires_days` and
/// `max_age` in `options` are ignored (Tornado refuses the first and last).
///
/// # Errors
///
/// As [`format_set_cookie_at`].
pub fn format_clear_cookie_at(
    name: &str,
    options: &CookieOptions,
    now: SystemTime,
) -> Result<String, CookieError> {
    let options = CookieOptions {
        expires: Some(
            now.checked_sub(CLEAR_COOKIE_AGE)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        ),
        expires_days: None,
        max_age: None,
        ..options.clone()
    };
    format_set_cookie_at(name, "", &options, now)
}

/// Whether `c` may appear in a cookie name or an unquoted value. Python:
/// `http.cookies._LegalChars`.
fn is_legal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || LEGAL_PUNCTUATION.contains(c)
}

/// A cookie value as Python's `http.cookies._quote` writes it: unchanged
/// when non-empty and made of legal characters, else in double quotes with
/// `"` and `\` backslash-escaped and other bytes outside the legal and
/// "unescaped" sets written as three-digit octal (`\073` for `;`).
///
/// The caller has refused characters above U+00FF.
fn quote_value(value: &str) -> String {
    if !value.is_empty() && value.chars().all(is_legal_char) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_legal_char(c) || UNESCAPED_PUNCTUATION.contains(c) => out.push(c),
            c => out.push_str(&format!("\\{:03o}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// An attribute value, or `None` when absent or empty (Tornado tests them
/// for truth). Refuses `;`, spaces, controls and (unlike Tornado) anything
/// outside printable ASCII.
fn checked_attribute<'a>(
    name: &str,
    attribute: &'static str,
    value: Option<&'a str>,
) -> Result<Option<&'a str>, CookieError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
        Ok(Some(value))
    } else {
        Err(CookieError::InvalidAttribute {
            name: name.to_owned(),
            attribute,
            value: value.to_owned(),
        })
    }
}

/// `now` moved by a (possibly fractional or negative) number of days;
/// `None` if that is not a finite time.
fn days_from(now: SystemTime, days: f64) -> Option<SystemTime> {
    let offset = Duration::try_from_secs_f64((days * 86_400.0).abs()).ok()?;
    if days >= 0.0 {
        now.checked_add(offset)
    } else {
        now.checked_sub(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// The vectors' clock.
    const T: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn set(name: &str, value: &str, options: &CookieOptions) -> Result<String, CookieError> {
        format_set_cookie_at(name, value, options, at(T))
    }

    /// Expected headers printed by Tornado 6.6.1 on Python 3.11
    /// (`set_cookie(name, value)` then `OutputString()`).
    #[test]
    fn values_are_quoted_as_tornado_does() {
        let cases = [
            ("simple", "a=simple; Path=/"),
            ("", r#"a=""; Path=/"#),
            ("a;b", r#"a="a\073b"; Path=/"#),
            ("a\"b", r#"a="a\"b"; Path=/"#),
            ("a\\b", r#"a="a\\b"; Path=/"#),
            ("a,b", r#"a="a\054b"; Path=/"#),
            ("a=b", r#"a="a=b"; Path=/"#),
            ("(x)<y>", r#"a="(x)<y>"; Path=/"#),
            ("\u{e9}", r#"a="\351"; Path=/"#),
            ("a\x7fb", r#"a="a\177b"; Path=/"#),
            ("!#$%&'*+-.^_`|~:", "a=!#$%&'*+-.^_`|~:; Path=/"),
            (
                "2|01020304|0103010705070503090b090f0d0f0d0b|1700000000",
                "a=2|01020304|0103010705070503090b090f0d0f0d0b|1700000000; Path=/",
            ),
        ];
        for (value, want) in cases {
            assert_eq!(
                set("a", value, &CookieOptions::default()).unwrap(),
                want,
                "{value:?}"
            );
        }
    }

    /// Every attribute, in Python's order; Tornado 6.6.1 wrote the same.
    #[test]
    fn attributes_follow_tornado_order() {
        let all = CookieOptions {
            domain: Some("example.com".into()),
            expires: Some(at(T)),
            path: Some("/app".into()),
            expires_days: None,
            max_age: Some(3600),
            httponly: true,
            secure: true,
            samesite: Some(SameSite::Lax),
        };
        let cases = [
            (
                all,
                "a=v; Domain=example.com; expires=Tue, 14 Nov 2023 22:13:20 GMT; HttpOnly; \
                 Max-Age=3600; Path=/app; SameSite=Lax; Secure",
            ),
            (
                CookieOptions {
                    path: None,
                    ..CookieOptions::default()
                },
                "a=v",
            ),
            (
                CookieOptions {
                    path: Some(String::new()),
                    domain: Some(String::new()),
                    ..CookieOptions::default()
                },
                "a=v",
            ),
            (
                CookieOptions {
                    samesite: Some(SameSite::None),
                    secure: true,
                    ..CookieOptions::default()
                },
                "a=v; Path=/; SameSite=None; Secure",
            ),
            (
                CookieOptions {
                    samesite: Some(SameSite::Strict),
                    ..CookieOptions::default()
                },
                "a=v; Path=/; SameSite=Strict",
            ),
            (
                CookieOptions {
                    max_age: Some(0),
                    ..CookieOptions::default()
                },
                "a=v; Max-Age=0; Path=/",
            ),
        ];
        for (options, want) in cases {
            assert_eq!(set("a", "v", &options).unwrap(), want);
        }
    }

    #[test]
    fn expires_days_counts_from_now_and_yields_to_expires() {
        let days = |d: f64, expires: Option<SystemTime>| CookieOptions {
            expires_days: Some(d),
            expires,
            ..CookieOptions::default()
        };
        let cases = [
            (
                days(2.0, None),
                "a=v; expires=Thu, 16 Nov 2023 22:13:20 GMT; Path=/",
            ),
            (
                days(0.5, None),
                "a=v; expires=Wed, 15 Nov 2023 10:13:20 GMT; Path=/",
            ),
            (
                days(-1.0, None),
                "a=v; expires=Mon, 13 Nov 2023 22:13:20 GMT; Path=/",
            ),
            (
                days(2.0, Some(at(T + 1))),
                "a=v; expires=Tue, 14 Nov 2023 22:13:21 GMT; Path=/",
            ),
        ];
        for (options, want) in cases {
            assert_eq!(set("a", "v", &options).unwrap(), want);
        }
        for bad in [f64::NAN, f64::INFINITY, 1e300] {
            let err = set("a", "v", &days(bad, None)).unwrap_err();
            assert!(
                matches!(
                    err,
                    CookieError::InvalidAttribute {
                        attribute: "expires_days",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    /// Refusals Tornado 6.6.1 makes too (it raises `ValueError` or
    /// `CookieError`), plus whirl's non-ASCII ones.
    #[test]
    fn refuses_what_tornado_refuses() {
        let default = CookieOptions::default();
        let domain = |d: &str| CookieOptions {
            domain: Some(d.into()),
            ..CookieOptions::default()
        };
        let path = |p: &str| CookieOptions {
            path: Some(p.into()),
            ..CookieOptions::default()
        };
        let invalid_value = |name: &str, value: &str| CookieError::InvalidValue {
            name: name.into(),
            value: value.into(),
        };
        let invalid_attr = |attribute, value: &str| CookieError::InvalidAttribute {
            name: "a".into(),
            attribute,
            value: value.into(),
        };
        let cases = [
            (
                "a",
                "with space",
                &default,
                invalid_value("a", "with space"),
            ),
            ("a", "tab\t", &default, invalid_value("a", "tab\t")),
            ("a", "nul\0", &default, invalid_value("a", "nul\0")),
            (
                "bad name",
                "v",
                &default,
                CookieError::InvalidName("bad name".into()),
            ),
            ("a;b", "v", &default, CookieError::InvalidName("a;b".into())),
            (
                "na=me",
                "v",
                &default,
                CookieError::InvalidName("na=me".into()),
            ),
            ("", "v", &default, CookieError::InvalidName(String::new())),
            (
                "n\u{e9}",
                "v",
                &default,
                CookieError::InvalidName("n\u{e9}".into()),
            ),
            (
                "expires",
                "v",
                &default,
                CookieError::ReservedName("expires".into()),
            ),
            (
                "Path",
                "v",
                &default,
                CookieError::ReservedName("Path".into()),
            ),
            (
                "MAX-AGE",
                "v",
                &default,
                CookieError::ReservedName("MAX-AGE".into()),
            ),
            (
                "a",
                "v",
                &domain("ex;ample.com"),
                invalid_attr("domain", "ex;ample.com"),
            ),
            (
                "a",
                "v",
                &domain("ex\u{e4}mple.com"),
                invalid_attr("domain", "ex\u{e4}mple.com"),
            ),
            ("a", "v", &path("/a b"), invalid_attr("path", "/a b")),
            (
                "a",
                "v",
                &path("/a\r\nSet-Cookie: x=y"),
                invalid_attr("path", "/a\r\nSet-Cookie: x=y"),
            ),
            (
                "a",
                "\u{4e2d}",
                &default,
                CookieError::UnencodableValue {
                    name: "a".into(),
                    character: '\u{4e2d}',
                },
            ),
        ];
        for (name, value, options, want) in cases {
            assert_eq!(set(name, value, options), Err(want), "{name:?}={value:?}");
        }
    }

    #[test]
    fn errors_read_as_sentences() {
        let cases = [
            (
                CookieError::InvalidName("a b".into()),
                "invalid cookie name \"a b\": a name is one or more letters, digits or !#$%&'*+-.^_`|~:",
            ),
            (
                CookieError::ReservedName("path".into()),
                "\"path\" cannot name a cookie because it is a cookie attribute",
            ),
            (
                CookieError::InvalidValue {
                    name: "a".into(),
                    value: "x y".into(),
                },
                "invalid value \"x y\" for cookie \"a\": spaces and control characters are not allowed",
            ),
            (
                CookieError::InvalidAttribute {
                    name: "a".into(),
                    attribute: "path",
                    value: "/ x".into(),
                },
                "invalid path \"/ x\" for cookie \"a\"",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    /// Tornado 6.6.1's `clear_cookie` output at the same clock.
    #[test]
    fn clear_cookie_matches_tornado() {
        let default = CookieOptions::default();
        assert_eq!(
            format_clear_cookie_at("a", &default, at(T)).unwrap(),
            r#"a=""; expires=Mon, 14 Nov 2022 22:13:20 GMT; Path=/"#
        );
        let scoped = CookieOptions {
            domain: Some("example.com".into()),
            path: Some("/x".into()),
            max_age: Some(60),
            expires_days: Some(30.0),
            ..CookieOptions::default()
        };
        assert_eq!(
            format_clear_cookie_at("a", &scoped, at(T)).unwrap(),
            r#"a=""; Domain=example.com; expires=Mon, 14 Nov 2022 22:13:20 GMT; Path=/x"#
        );
        assert!(format_clear_cookie("a", &default).is_ok());
    }

    #[test]
    fn clock_wrapper_writes_a_date() {
        let options = CookieOptions {
            expires_days: Some(1.0),
            ..CookieOptions::default()
        };
        let header = format_set_cookie("a", "v", &options).unwrap();
        assert!(header.starts_with("a=v; expires=") && header.ends_with(" GMT; Path=/"));
    }

    /// What whirl writes, whirl's (Tornado's) cookie parser reads back.
    #[test]
    fn quoted_values_round_trip_through_parse_cookie() {
        for value in ["a;b", "a\"b\\c", "(x)<y>,z", "\u{e9}\u{ff}", "plain"] {
            let header = set("k", value, &CookieOptions::default()).unwrap();
            let pair = header.split("; Path=").next().unwrap_or_default();
            let parsed = whirl_httpserver::parse_cookie(pair);
            assert_eq!(parsed.get("k").map(String::as_str), Some(value), "{header}");
        }
    }
}
