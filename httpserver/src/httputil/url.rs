//! Query strings — [`parse_qs_bytes`], [`parse_qs`], [`parse_qsl_bytes`] —
//! and [`url_concat`]: Tornado's `escape.parse_qs_bytes`, Python's
//! `urllib.parse.parse_qs`, and `httputil.url_concat`.
//!
//! Decoding follows Python's `parse_qsl`: fields split on `&` only, empty
//! fields skipped, `+` is a space, `%XX` a byte, and a `%` not followed by two
//! hex digits (`%zz`, a trailing `%F`) is kept as it is. Values stay bytes;
//! names must be UTF-8 (Tornado decodes them as Latin-1, which cannot fail
//! but turns UTF-8 names into mojibake; we refuse them with 400 instead, as
//! Tornado does for an invalid value at `get_argument`).

use std::borrow::Cow;
use std::collections::HashMap;

use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::error::FormError;
use super::form::Arguments;

/// Most fields in a query string or urlencoded body: Tornado 6.6 answers
/// 1,001 with 400; exactly 1,000 is fine.
///
/// Fields are counted as Python counts them: one more than the number of
/// `&`, so empty fields (`a=1&&b=2`) count too.
pub const DEFAULT_MAX_FIELDS: usize = 1000;

/// The bytes Python's `quote_plus` leaves alone: letters, digits and `_.-~`.
const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Parses a query string into `(name, value)` pairs in order. Python:
/// `urllib.parse.parse_qsl(qs, keep_blank_values, max_num_fields=...)` with
/// values kept as bytes.
///
/// `keep_blank_values` keeps fields with an empty value (`a=`, `a`) as empty
/// byte strings; otherwise they are dropped. `max_fields` of `None` means no
/// limit.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::parse_qsl_bytes;
///
/// let pairs = parse_qsl_bytes(b"a=1+2&b=%41&a=&c", true, None).unwrap();
/// assert_eq!(pairs, [
///     ("a".to_string(), b"1 2".to_vec()),
///     ("b".to_string(), b"A".to_vec()),
///     ("a".to_string(), b"".to_vec()),
///     ("c".to_string(), b"".to_vec()),
/// ]);
/// ```
///
/// # Errors
///
/// [`FormError::TooManyArguments`] when there are more than `max_fields`
/// fields; [`FormError::InvalidArgumentName`] when a decoded name is not
/// UTF-8.
pub fn parse_qsl_bytes(
    qs: &[u8],
    keep_blank_values: bool,
    max_fields: Option<usize>,
) -> Result<Vec<(String, Vec<u8>)>, FormError> {
    if let Some(limit) = max_fields {
        check_field_count(qs, limit)?;
    }
    raw_fields(qs, keep_blank_values)
        .map(|(name, value)| {
            let name = String::from_utf8(unquote_plus(name).into_owned())
                .map_err(|_| FormError::InvalidArgumentName)?;
            Ok((name, unquote_plus(value).into_owned()))
        })
        .collect()
}

/// Parses a query string into a map from name to every value, in order.
/// Tornado: `escape.parse_qs_bytes`; at most [`DEFAULT_MAX_FIELDS`] fields.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::parse_qs_bytes;
///
/// let args = parse_qs_bytes(b"a=1&b=x%zz&a=3", false).unwrap();
/// assert_eq!(args["a"], [b"1".to_vec(), b"3".to_vec()]);
/// assert_eq!(args["b"], [b"x%zz".to_vec()]);
/// ```
///
/// # Errors
///
/// As [`parse_qsl_bytes`].
pub fn parse_qs_bytes(qs: &[u8], keep_blank_values: bool) -> Result<Arguments, FormError> {
    let mut args = Arguments::new();
    for (name, value) in parse_qsl_bytes(qs, keep_blank_values, Some(DEFAULT_MAX_FIELDS))? {
        args.entry(name).or_default().push(value);
    }
    Ok(args)
}

/// Parses a query string into a map from name to every value, values
/// decoded as UTF-8 with invalid bytes replaced by U+FFFD. Python:
/// `urllib.parse.parse_qs`; at most [`DEFAULT_MAX_FIELDS`] fields.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::parse_qs;
///
/// let args = parse_qs("q=caf%C3%A9&q=%FF", false).unwrap();
/// assert_eq!(args["q"], ["café", "\u{fffd}"]);
/// ```
///
/// # Errors
///
/// As [`parse_qsl_bytes`].
pub fn parse_qs(
    qs: &str,
    keep_blank_values: bool,
) -> Result<HashMap<String, Vec<String>>, FormError> {
    let mut args: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in
        parse_qsl_bytes(qs.as_bytes(), keep_blank_values, Some(DEFAULT_MAX_FIELDS))?
    {
        let value = match String::from_utf8(value) {
            Ok(v) => v,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        args.entry(name).or_default().push(value);
    }
    Ok(args)
}

/// Appends query arguments to `url`, after any it already has and before its
/// fragment. Tornado: `httputil.url_concat`.
///
/// As in Tornado, the existing query is parsed (blank values kept) and
/// encoded again with the new arguments, the way Python's `urlencode` does:
/// letters, digits and `_.-~` stay, a space becomes `+`, every other byte
/// `%XX`. (Python decodes the old query as UTF-8 with replacement first; we
/// re-encode its bytes as they were, so `%FF` survives.) An empty final query
/// drops the `?`, and an empty fragment the `#`.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::url_concat;
///
/// assert_eq!(url_concat("http://example.com/foo?a=b", [("c", "d")]),
///            "http://example.com/foo?a=b&c=d");
/// assert_eq!(url_concat("/p#tab", [("y", "/y z")]), "/p?y=%2Fy+z#tab");
/// ```
pub fn url_concat<I, K, V>(url: &str, args: I) -> String
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    // Step 1: split off the fragment, then the query (Python's urlsplit order).
    let (rest, fragment) = match url.split_once('#') {
        Some((rest, fragment)) => (rest, fragment),
        None => (url, ""),
    };
    let (base, query) = rest.split_once('?').unwrap_or((rest, ""));

    // Step 2: encode the old fields, then the new ones.
    let mut encoded = String::new();
    let mut push = |name: &[u8], value: &[u8]| {
        if !encoded.is_empty() {
            encoded.push('&');
        }
        quote_plus_into(&mut encoded, name);
        encoded.push('=');
        quote_plus_into(&mut encoded, value);
    };
    for (name, value) in raw_fields(query.as_bytes(), true) {
        push(&unquote_plus(name), &unquote_plus(value));
    }
    for (name, value) in args {
        push(name.as_ref().as_bytes(), value.as_ref().as_bytes());
    }

    // Step 3: put the URL back together.
    let mut out = String::with_capacity(base.len() + encoded.len() + fragment.len() + 2);
    out.push_str(base);
    if !encoded.is_empty() {
        out.push('?');
        out.push_str(&encoded);
    }
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// Fails when `qs` has more than `limit` fields, counted as Python does.
fn check_field_count(qs: &[u8], limit: usize) -> Result<(), FormError> {
    let fields = if qs.is_empty() {
        0
    } else {
        1 + memchr::memchr_iter(b'&', qs).count()
    };
    if fields > limit {
        return Err(FormError::TooManyArguments { limit });
    }
    Ok(())
}

/// The undecoded `(name, value)` slices of a query string, with Python's
/// rules for empty fields and blank values.
fn raw_fields(qs: &[u8], keep_blank_values: bool) -> impl Iterator<Item = (&[u8], &[u8])> {
    qs.split(|&b| b == b'&').filter_map(move |field| {
        if field.is_empty() {
            return None;
        }
        let (name, value) = match memchr::memchr(b'=', field) {
            Some(eq) => (&field[..eq], &field[eq + 1..]),
            None => (field, &b""[..]),
        };
        (keep_blank_values || !value.is_empty()).then_some((name, value))
    })
}

/// Decodes `+` as a space and `%XX` as a byte, keeping malformed `%`
/// sequences literally. Python: `unquote_plus` with Latin-1.
pub(crate) fn unquote_plus(s: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr2(b'+', b'%', s).is_none() {
        return Cow::Borrowed(s);
    }
    // A valid `%XX` never holds a `+`, so decoding between the `+`s is the
    // same as replacing them first.
    let mut out = Vec::with_capacity(s.len());
    for (i, piece) in s.split(|&b| b == b'+').enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend(percent_decode(piece));
    }
    Cow::Owned(out)
}

/// Appends `bytes` encoded as Python's `quote_plus` does.
fn quote_plus_into(out: &mut String, bytes: &[u8]) {
    for (i, piece) in bytes.split(|&b| b == b' ').enumerate() {
        if i > 0 {
            out.push('+');
        }
        out.extend(percent_encode(piece, QUERY_SET));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(qs: &[u8], keep: bool) -> Vec<(String, Vec<u8>)> {
        parse_qsl_bytes(qs, keep, None).unwrap()
    }

    #[test]
    fn decoding_follows_python() {
        // (query, keep_blank_values, expected pairs)
        type Case = (
            &'static [u8],
            bool,
            &'static [(&'static str, &'static [u8])],
        );
        let cases: &[Case] = &[
            (b"", true, &[]),
            (
                b"a=1&b=2&a=3",
                false,
                &[("a", b"1"), ("b", b"2"), ("a", b"3")],
            ),
            (b"a=1+2", false, &[("a", b"1 2")]),
            (b"a=1%2B2", false, &[("a", b"1+2")]),
            (b"a+b=c", false, &[("a b", b"c")]),
            (b"a=%41%62", false, &[("a", b"Ab")]),
            (b"a=%zz", false, &[("a", b"%zz")]),
            (b"a=%F", false, &[("a", b"%F")]),
            (b"a=%", false, &[("a", b"%")]),
            (b"a=%+2", false, &[("a", b"% 2")]),
            (b"a=%FF%00", false, &[("a", b"\xff\x00")]),
            (b"a=x=y", false, &[("a", b"x=y")]),
            (b"a;b=1", false, &[("a;b", b"1")]),
            (b"&&a=1&&", false, &[("a", b"1")]),
            (b"a=&b", false, &[]),
            (b"a=&b", true, &[("a", b""), ("b", b"")]),
            (b"=x", false, &[("", b"x")]),
            (b"=", true, &[("", b"")]),
            (b"caf%C3%A9=1", false, &[("café", b"1")]),
        ];
        for (qs, keep, want) in cases {
            let want: Vec<(String, Vec<u8>)> = want
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect();
            assert_eq!(pairs(qs, *keep), want, "{:?}", String::from_utf8_lossy(qs));
        }
    }

    #[test]
    fn names_must_be_utf8() {
        for qs in [&b"%FF=1"[..], b"a=1&\xff=2", b"%C3=1"] {
            assert_eq!(
                parse_qs_bytes(qs, true).unwrap_err(),
                FormError::InvalidArgumentName
            );
        }
        // Values may be any bytes.
        assert_eq!(parse_qs_bytes(b"a=%FF", true).unwrap()["a"], [b"\xff"]);
    }

    #[test]
    fn more_than_1000_fields_is_an_error_exactly_1000_is_not() {
        let query = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join("&")
        };
        let args = parse_qs_bytes(query(1000).as_bytes(), true).unwrap();
        assert_eq!(args.len(), 1000);
        let err = parse_qs_bytes(query(1001).as_bytes(), true).unwrap_err();
        assert_eq!(err, FormError::TooManyArguments { limit: 1000 });
        assert_eq!(err.status(), 400);
        assert_eq!(err.to_string(), "the request has more than 1000 arguments");
        // Python counts `&`s, so empty fields count too.
        assert!(parse_qs_bytes("&".repeat(1000).as_bytes(), true).is_err());
        assert!(parse_qsl_bytes(query(5000).as_bytes(), true, None).is_ok());
    }

    #[test]
    fn parse_qs_groups_and_decodes_values_lossily() {
        let args = parse_qs("a=1&b=%FF&a=caf%C3%A9&c=", true).unwrap();
        assert_eq!(args["a"], ["1", "café"]);
        assert_eq!(args["b"], ["\u{fffd}"]);
        assert_eq!(args["c"], [""]);
        assert!(!parse_qs("c=", false).unwrap().contains_key("c"));
    }

    #[test]
    fn url_concat_matches_tornado() {
        // Tornado's TestUrlConcat cases, plus encoding and fragments.
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        let cases: &[Case] = &[
            (
                "https://localhost/path",
                &[("y", "y"), ("z", "z")],
                "https://localhost/path?y=y&z=z",
            ),
            (
                "https://localhost/path",
                &[("y", "/y"), ("z", "z")],
                "https://localhost/path?y=%2Fy&z=z",
            ),
            (
                "https://localhost/path?",
                &[("y", "y"), ("z", "z")],
                "https://localhost/path?y=y&z=z",
            ),
            (
                "https://localhost/path?x",
                &[("y", "y"), ("z", "z")],
                "https://localhost/path?x=&y=y&z=z",
            ),
            (
                "https://localhost/path?x&",
                &[("y", "y"), ("z", "z")],
                "https://localhost/path?x=&y=y&z=z",
            ),
            (
                "https://localhost/path?a=1&b=2",
                &[("y", "y"), ("z", "z")],
                "https://localhost/path?a=1&b=2&y=y&z=z",
            ),
            (
                "https://localhost/path?r=1&t=2",
                &[],
                "https://localhost/path?r=1&t=2",
            ),
            (
                "https://localhost/path#tab",
                &[("y", "y")],
                "https://localhost/path?y=y#tab",
            ),
            (
                "https://localhost/path",
                &[("y", "y1"), ("y", "y2")],
                "https://localhost/path?y=y1&y=y2",
            ),
            (
                "https://localhost/path?r=1&r=2",
                &[("y", "y")],
                "https://localhost/path?r=1&r=2&y=y",
            ),
            ("https://localhost/path?", &[], "https://localhost/path"),
            ("/p?a=%FF+b", &[("é", "a b~*")], "/p?a=%FF+b&%C3%A9=a+b~%2A"),
            ("/p?q=1#", &[], "/p?q=1"),
            ("/p#f?x", &[("a", "1")], "/p?a=1#f?x"),
        ];
        for (url, args, want) in cases {
            assert_eq!(url_concat(url, args.iter().copied()), *want, "{url}");
        }
        let mut map = HashMap::new();
        map.insert("y".to_string(), "y".to_string());
        assert_eq!(
            url_concat("https://localhost/path", &map),
            "https://localhost/path?y=y"
        );
    }
}
