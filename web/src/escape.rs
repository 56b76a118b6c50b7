//! Escaping and unescaping for HTML, URLs and JSON: Tornado's `tornado.escape`.
//!
//! Every function here is pure and thin: URL coding sits on
//! [`percent_encoding`], JSON on [`serde_json`], and HTML is a small scanner
//! that follows Python's `html.escape` / `html.unescape`, which Tornado's
//! `xhtml_escape` / `xhtml_unescape` wrap since Tornado 6.4.
//!
//! # Examples
//!
//! ```
//! use whirl_web::escape::{json_encode, url_escape, url_unescape, xhtml_escape, xhtml_unescape};
//!
//! assert_eq!(xhtml_escape("<a href='x'>"), "&lt;a href=&#x27;x&#x27;&gt;");
//! assert_eq!(xhtml_unescape("&lt;b&gt; &copy; &#65;"), "<b> \u{a9} A");
//! assert_eq!(url_escape("a b/c", true), "a+b%2Fc");
//! assert_eq!(url_unescape("a+b%2Fc", true).unwrap(), "a b/c");
//! assert_eq!(json_encode("</script>").unwrap(), r#""<\/script>""#);
//! ```

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Bytes `url_escape(.., plus = true)` leaves alone besides letters and
/// digits: Python's `quote_plus` with its default `safe=''` (space is turned
/// into `+` separately).
const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b' ');

/// Bytes `url_escape(.., plus = false)` leaves alone besides letters and
/// digits: Python's `quote` with its default `safe='/'`.
const PATH_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b'/');

/// Why [`url_unescape`] could not return a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscapeError {
    /// The percent-decoded bytes are not UTF-8; `valid_up_to` is the length of
    /// the longest valid prefix. Tornado would put U+FFFD in their place
    /// instead, as [`url_unescape_lossy`] does.
    InvalidUtf8 {
        /// Length in bytes of the valid UTF-8 prefix of the decoded value.
        valid_up_to: usize,
    },
}

impl fmt::Display for EscapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EscapeError::InvalidUtf8 { valid_up_to } => write!(
                f,
                "the URL-decoded value is not valid UTF-8 (invalid byte at offset {valid_up_to})"
            ),
        }
    }
}

impl std::error::Error for EscapeError {}

/// Escapes `&`, `<`, `>`, `"` and `'` so a string is safe in HTML text and
/// in quoted attribute values. Tornado: `escape.xhtml_escape`.
///
/// The quote is written `&#x27;` as Tornado 6.4 and later (Python's
/// `html.escape`) write it; older Tornado wrote `&#39;`. Both mean the same.
pub fn xhtml_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 8);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// Replaces HTML character references with the characters they stand for.
/// Tornado: `escape.xhtml_unescape` (Python's `html.unescape`).
///
/// Numeric references (`&#65;`, `&#x41;`, with or without the `;`) follow
/// the HTML5 rules exactly as Python does: code points 0x80–0x9F map
/// through Windows-1252, `&#0;`, surrogates and values past U+10FFFF become
/// U+FFFD, and non-characters and most C0/C1 controls are dropped.
///
/// Named references cover the HTML 4 set (the 252 names of Python's
/// `html.entities.name2codepoint`, plus `&apos;` and the upper-case `&AMP;`,
/// `&COPY;`, `&GT;`, `&LT;`, `&QUOT;`, `&REG;`), including HTML5's rule
/// that the legacy Latin-1 names also match without a `;` (`&copy2023` →
/// `©2023`). Python knows all 2,231 HTML5 names; the rarer ones outside
/// this set (`&NewLine;`, `&check;`, …) are left as written.
pub fn xhtml_unescape(value: &str) -> String {
    if !value.contains('&') {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let consumed = if let Some(numeric) = after.strip_prefix('#') {
            unescape_numeric(numeric, &mut out).map(|n| n + 1)
        } else {
            unescape_named(after, &mut out)
        };
        match consumed {
            Some(n) => rest = &after[n..],
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes the numeric reference at the start of `s` (just after `&#`),
/// pushing its character(s) onto `out`; returns how many bytes of `s` it
/// used, or `None` if `s` does not start with one.
fn unescape_numeric(s: &str, out: &mut String) -> Option<usize> {
    let (digits_start, radix) = match s.as_bytes().first() {
        Some(b'x' | b'X') => (1, 16),
        _ => (0, 10),
    };
    let digits = &s[digits_start..];
    let len = digits
        .bytes()
        .take_while(|b| char::from(*b).is_digit(radix))
        .count();
    if len == 0 {
        return None;
    }
    // Saturate: every value past U+10FFFF is treated alike.
    let num = digits[..len].bytes().fold(0u32, |acc, b| {
        let digit = char::from(b).to_digit(radix).unwrap_or(0);
        acc.saturating_mul(radix).saturating_add(digit)
    });
    let mut used = digits_start + len;
    if digits[len..].starts_with(';') {
        used += 1;
    }
    if let Some(c) = invalid_charref(num) {
        out.push(c);
    } else if (0xD800..=0xDFFF).contains(&num) || num > 0x10FFFF {
        out.push('\u{FFFD}');
    } else if !is_dropped_code_point(num) {
        out.push(char::from_u32(num).unwrap_or('\u{FFFD}'));
    }
    Some(used)
}

/// The replacement HTML5 (and Python's `html._invalid_charrefs`) gives a
/// numeric reference to `num`, when it has one.
fn invalid_charref(num: u32) -> Option<char> {
    /// Windows-1252 meanings of 0x80..=0x9F; 0x81, 0x8D, 0x8F, 0x90 and 0x9D
    /// have none and stand for themselves.
    const WINDOWS_1252: [char; 32] = [
        '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{2c6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8d}', '\u{17d}',
        '\u{8f}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}',
        '\u{2014}', '\u{2dc}', '\u{2122}', '\u{161}', '\u{203a}', '\u{153}', '\u{9d}', '\u{17e}',
        '\u{178}',
    ];
    match num {
        0x00 => Some('\u{FFFD}'),
        0x0D => Some('\r'),
        0x80..=0x9F => WINDOWS_1252.get((num - 0x80) as usize).copied(),
        _ => None,
    }
}

/// Whether a numeric reference to `num` produces nothing (Python's
/// `html._invalid_codepoints`).
fn is_dropped_code_point(num: u32) -> bool {
    matches!(num, 0x01..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F..=0x9F | 0xFDD0..=0xFDEF)
        || (num & 0xFFFE == 0xFFFE && num <= 0x10FFFF)
}

/// Decodes the named reference at the start of `s` (just after `&`),
/// pushing its character onto `out`; returns how many bytes of `s` it used,
/// or `None` if no name is recognised.
fn unescape_named(s: &str, out: &mut String) -> Option<usize> {
    // Python's pattern: `[^\t\n\f <&#;]{1,32};?`.
    let name_len: usize = s
        .chars()
        .take_while(|c| !matches!(c, '\t' | '\n' | '\x0c' | ' ' | '<' | '&' | '#' | ';'))
        .take(32)
        .map(char::len_utf8)
        .sum();
    if name_len == 0 {
        return None;
    }
    let name = &s[..name_len];
    let semicolon = s[name_len..].starts_with(';');
    if semicolon {
        if let Some((c, _)) = lookup_entity(name) {
            out.push(c);
            return Some(name_len + 1);
        }
    }
    // The longest legacy name (valid without `;`) that prefixes the text;
    // the rest of the text is kept.
    let mut end = name_len;
    while end >= 2 {
        if name.is_char_boundary(end) {
            if let Some((c, true)) = lookup_entity(&name[..end]) {
                out.push(c);
                return Some(end);
            }
        }
        end -= 1;
    }
    None
}

/// Looks a reference name up in [`ENTITIES`]: its character and whether it
/// also matches without a trailing `;`.
fn lookup_entity(name: &str) -> Option<(char, bool)> {
    ENTITIES
        .binary_search_by(|(n, _, _)| n.as_bytes().cmp(name.as_bytes()))
        .ok()
        .and_then(|i| ENTITIES.get(i))
        .map(|(_, c, legacy)| (*c, *legacy))
}

/// Named character references: (name, character, valid without `;`),
/// sorted by name bytes. Generated from Python's `html.entities.html5`.
#[rustfmt::skip]
const ENTITIES: &[(&str, char, bool)] = &[
    ("AElig", '\u{c6}', true), ("AMP", '&', true), ("Aacute", '\u{c1}', true),
    ("Acirc", '\u{c2}', true), ("Agrave", '\u{c0}', true), ("Alpha", '\u{391}', false),
    ("Aring", '\u{c5}', true), ("Atilde", '\u{c3}', true), ("Auml", '\u{c4}', true),
    ("Beta", '\u{392}', false), ("COPY", '\u{a9}', true), ("Ccedil", '\u{c7}', true),
    ("Chi", '\u{3a7}', false), ("Dagger", '\u{2021}', false), ("Delta", '\u{394}', false),
    ("ETH", '\u{d0}', true), ("Eacute", '\u{c9}', true), ("Ecirc", '\u{ca}', true),
    ("Egrave", '\u{c8}', true), ("Epsilon", '\u{395}', false), ("Eta", '\u{397}', false),
    ("Euml", '\u{cb}', true), ("GT", '>', true), ("Gamma", '\u{393}', false),
    ("Iacute", '\u{cd}', true), ("Icirc", '\u{ce}', true), ("Igrave", '\u{cc}', true),
    ("Iota", '\u{399}', false), ("Iuml", '\u{cf}', true), ("Kappa", '\u{39a}', false),
    ("LT", '<', true), ("Lambda", '\u{39b}', false), ("Mu", '\u{39c}', false),
    ("Ntilde", '\u{d1}', true), ("Nu", '\u{39d}', false), ("OElig", '\u{152}', false),
    ("Oacute", '\u{d3}', true), ("Ocirc", '\u{d4}', true), ("Ograve", '\u{d2}', true),
    ("Omega", '\u{3a9}', false), ("Omicron", '\u{39f}', false), ("Oslash", '\u{d8}', true),
    ("Otilde", '\u{d5}', true), ("Ouml", '\u{d6}', true), ("Phi", '\u{3a6}', false),
    ("Pi", '\u{3a0}', false), ("Prime", '\u{2033}', false), ("Psi", '\u{3a8}', false),
    ("QUOT", '"', true), ("REG", '\u{ae}', true), ("Rho", '\u{3a1}', false),
    ("Scaron", '\u{160}', false), ("Sigma", '\u{3a3}', false), ("THORN", '\u{de}', true),
    ("Tau", '\u{3a4}', false), ("Theta", '\u{398}', false), ("Uacute", '\u{da}', true),
    ("Ucirc", '\u{db}', true), ("Ugrave", '\u{d9}', true), ("Upsilon", '\u{3a5}', false),
    ("Uuml", '\u{dc}', true), ("Xi", '\u{39e}', false), ("Yacute", '\u{dd}', true),
    ("Yuml", '\u{178}', false), ("Zeta", '\u{396}', false), ("aacute", '\u{e1}', true),
    ("acirc", '\u{e2}', true), ("acute", '\u{b4}', true), ("aelig", '\u{e6}', true),
    ("agrave", '\u{e0}', true), ("alefsym", '\u{2135}', false), ("alpha", '\u{3b1}', false),
    ("amp", '&', true), ("and", '\u{2227}', false), ("ang", '\u{2220}', false),
    ("apos", '\'', false), ("aring", '\u{e5}', true), ("asymp", '\u{2248}', false),
    ("atilde", '\u{e3}', true), ("auml", '\u{e4}', true), ("bdquo", '\u{201e}', false),
    ("beta", '\u{3b2}', false), ("brvbar", '\u{a6}', true), ("bull", '\u{2022}', false),
    ("cap", '\u{2229}', false), ("ccedil", '\u{e7}', true), ("cedil", '\u{b8}', true),
    ("cent", '\u{a2}', true), ("chi", '\u{3c7}', false), ("circ", '\u{2c6}', false),
    ("clubs", '\u{2663}', false), ("cong", '\u{2245}', false), ("copy", '\u{a9}', true),
    ("crarr", '\u{21b5}', false), ("cup", '\u{222a}', false), ("curren", '\u{a4}', true),
    ("dArr", '\u{21d3}', false), ("dagger", '\u{2020}', false), ("darr", '\u{2193}', false),
    ("deg", '\u{b0}', true), ("delta", '\u{3b4}', false), ("diams", '\u{2666}', false),
    ("divide", '\u{f7}', true), ("eacute", '\u{e9}', true), ("ecirc", '\u{ea}', true),
    ("egrave", '\u{e8}', true), ("empty", '\u{2205}', false), ("emsp", '\u{2003}', false),
    ("ensp", '\u{2002}', false), ("epsilon", '\u{3b5}', false), ("equiv", '\u{2261}', false),
    ("eta", '\u{3b7}', false), ("eth", '\u{f0}', true), ("euml", '\u{eb}', true),
    ("euro", '\u{20ac}', false), ("exist", '\u{2203}', false), ("fnof", '\u{192}', false),
    ("forall", '\u{2200}', false), ("frac12", '\u{bd}', true), ("frac14", '\u{bc}', true),
    ("frac34", '\u{be}', true), ("frasl", '\u{2044}', false), ("gamma", '\u{3b3}', false),
    ("ge", '\u{2265}', false), ("gt", '>', true), ("hArr", '\u{21d4}', false),
    ("harr", '\u{2194}', false), ("hearts", '\u{2665}', false), ("hellip", '\u{2026}', false),
    ("iacute", '\u{ed}', true), ("icirc", '\u{ee}', true), ("iexcl", '\u{a1}', true),
    ("igrave", '\u{ec}', true), ("image", '\u{2111}', false), ("infin", '\u{221e}', false),
    ("int", '\u{222b}', false), ("iota", '\u{3b9}', false), ("iquest", '\u{bf}', true),
    ("isin", '\u{2208}', false), ("iuml", '\u{ef}', true), ("kappa", '\u{3ba}', false),
    ("lArr", '\u{21d0}', false), ("lambda", '\u{3bb}', false), ("lang", '\u{27e8}', false),
    ("laquo", '\u{ab}', true), ("larr", '\u{2190}', false), ("lceil", '\u{2308}', false),
    ("ldquo", '\u{201c}', false), ("le", '\u{2264}', false), ("lfloor", '\u{230a}', false),
    ("lowast", '\u{2217}', false), ("loz", '\u{25ca}', false), ("lrm", '\u{200e}', false),
    ("lsaquo", '\u{2039}', false), ("lsquo", '\u{2018}', false), ("lt", '<', true),
    ("macr", '\u{af}', true), ("mdash", '\u{2014}', false), ("micro", '\u{b5}', true),
    ("middot", '\u{b7}', true), ("minus", '\u{2212}', false), ("mu", '\u{3bc}', false),
    ("nabla", '\u{2207}', false), ("nbsp", '\u{a0}', true), ("ndash", '\u{2013}', false),
    ("ne", '\u{2260}', false), ("ni", '\u{220b}', false), ("not", '\u{ac}', true),
    ("notin", '\u{2209}', false), ("nsub", '\u{2284}', false), ("ntilde", '\u{f1}', true),
    ("nu", '\u{3bd}', false), ("oacute", '\u{f3}', true), ("ocirc", '\u{f4}', true),
    ("oelig", '\u{153}', false), ("ograve", '\u{f2}', true), ("oline", '\u{203e}', false),
    ("omega", '\u{3c9}', false), ("omicron", '\u{3bf}', false), ("oplus", '\u{2295}', false),
    ("or", '\u{2228}', false), ("ordf", '\u{aa}', true), ("ordm", '\u{ba}', true),
    ("oslash", '\u{f8}', true), ("otilde", '\u{f5}', true), ("otimes", '\u{2297}', false),
    ("ouml", '\u{f6}', true), ("para", '\u{b6}', true), ("part", '\u{2202}', false),
    ("permil", '\u{2030}', false), ("perp", '\u{22a5}', false), ("phi", '\u{3c6}', false),
    ("pi", '\u{3c0}', false), ("piv", '\u{3d6}', false), ("plusmn", '\u{b1}', true),
    ("pound", '\u{a3}', true), ("prime", '\u{2032}', false), ("prod", '\u{220f}', false),
    ("prop", '\u{221d}', false), ("psi", '\u{3c8}', false), ("quot", '"', true),
    ("rArr", '\u{21d2}', false), ("radic", '\u{221a}', false), ("rang", '\u{27e9}', false),
    ("raquo", '\u{bb}', true), ("rarr", '\u{2192}', false), ("rceil", '\u{2309}', false),
    ("rdquo", '\u{201d}', false), ("real", '\u{211c}', false), ("reg", '\u{ae}', true),
    ("rfloor", '\u{230b}', false), ("rho", '\u{3c1}', false), ("rlm", '\u{200f}', false),
    ("rsaquo", '\u{203a}', false), ("rsquo", '\u{2019}', false), ("sbquo", '\u{201a}', false),
    ("scaron", '\u{161}', false), ("sdot", '\u{22c5}', false), ("sect", '\u{a7}', true),
    ("shy", '\u{ad}', true), ("sigma", '\u{3c3}', false), ("sigmaf", '\u{3c2}', false),
    ("sim", '\u{223c}', false), ("spades", '\u{2660}', false), ("sub", '\u{2282}', false),
    ("sube", '\u{2286}', false), ("sum", '\u{2211}', false), ("sup", '\u{2283}', false),
    ("sup1", '\u{b9}', true), ("sup2", '\u{b2}', true), ("sup3", '\u{b3}', true),
    ("supe", '\u{2287}', false), ("szlig", '\u{df}', true), ("tau", '\u{3c4}', false),
    ("there4", '\u{2234}', false), ("theta", '\u{3b8}', false), ("thetasym", '\u{3d1}', false),
    ("thinsp", '\u{2009}', false), ("thorn", '\u{fe}', true), ("tilde", '\u{2dc}', false),
    ("times", '\u{d7}', true), ("trade", '\u{2122}', false), ("uArr", '\u{21d1}', false),
    ("uacute", '\u{fa}', true), ("uarr", '\u{2191}', false), ("ucirc", '\u{fb}', true),
    ("ugrave", '\u{f9}', true), ("uml", '\u{a8}', true), ("upsih", '\u{3d2}', false),
    ("upsilon", '\u{3c5}', false), ("uuml", '\u{fc}', true), ("weierp", '\u{2118}', false),
    ("xi", '\u{3be}', false), ("yacute", '\u{fd}', true), ("yen", '\u{a5}', true),
    ("yuml", '\u{ff}', true), ("zeta", '\u{3b6}', false), ("zwj", '\u{200d}', false),
    ("zwnj", '\u{200c}', false),
];

/// Percent-encodes a string for a URL. Tornado: `escape.url_escape`.
///
/// With `plus` (Tornado's default) the result suits a query string: space
/// becomes `+` and `/` becomes `%2F` (Python's `quote_plus`). Without it the
/// result suits a path: space becomes `%20` and `/` stays (Python's `quote`).
/// Letters, digits and `_.-~` are never escaped; everything else is written
/// as `%XX` of its UTF-8 bytes.
pub fn url_escape(value: &str, plus: bool) -> String {
    if plus {
        utf8_percent_encode(value, QUERY_SET)
            .to_string()
            .replace(' ', "+")
    } else {
        utf8_percent_encode(value, PATH_SET).to_string()
    }
}

/// Decodes a percent-encoded value to bytes. Tornado:
/// `escape.url_unescape(value, encoding=None, plus)`.
///
/// With `plus`, `+` means space (query strings and forms); without it `+`
/// is kept (paths). Malformed escapes such as `%zz` are kept as written.
pub fn url_unescape_to_bytes(value: &str, plus: bool) -> Vec<u8> {
    let value: Cow<'_, str> = if plus && value.contains('+') {
        Cow::Owned(value.replace('+', " "))
    } else {
        Cow::Borrowed(value)
    };
    percent_decode(value.as_bytes()).collect()
}

/// Decodes a percent-encoded value to a string. Tornado:
/// `escape.url_unescape(value, plus=plus)`.
///
/// See [`url_unescape_to_bytes`] for `plus`.
///
/// # Errors
///
/// [`EscapeError::InvalidUtf8`] if the decoded bytes are not UTF-8. Tornado
/// silently replaces such bytes with U+FFFD; use [`url_unescape_lossy`] for
/// that behaviour.
pub fn url_unescape(value: &str, plus: bool) -> Result<String, EscapeError> {
    String::from_utf8(url_unescape_to_bytes(value, plus)).map_err(|e| EscapeError::InvalidUtf8 {
        valid_up_to: e.utf8_error().valid_up_to(),
    })
}

/// Decodes a percent-encoded value to a string, replacing bytes that are
/// not UTF-8 with U+FFFD. Tornado: `escape.url_unescape(value, plus=plus)`,
/// exactly (Python decodes with `errors="replace"`).
pub fn url_unescape_lossy(value: &str, plus: bool) -> String {
    match String::from_utf8(url_unescape_to_bytes(value, plus)) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Serializes a value as JSON that is safe inside an HTML `<script>`
/// element. Tornado: `escape.json_encode`.
///
/// Like Tornado, every `</` is written `<\/`, so the text can never close
/// the script element. U+2028 and U+2029 are written `\u2028` and `\u2029`
/// (Python's `json.dumps` escapes all non-ASCII; these two are the ones
/// that break older JavaScript parsers). The output is compact
/// (`{"a":1}`), where Python puts a space after `:` and `,`.
///
/// # Errors
///
/// Whatever [`serde_json::to_string`] reports: a `Serialize` implementation
/// that fails, or a map whose keys are not strings.
pub fn json_encode<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(value)?;
    if !json.contains("</") && !json.contains(['\u{2028}', '\u{2029}']) {
        return Ok(json);
    }
    // `<` and the two separators only occur inside JSON strings, where the
    // escaped forms mean the same thing.
    Ok(json
        .replace("</", "<\\/")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029"))
}

/// Parses JSON text (UTF-8 bytes or a string) into any deserializable type;
/// `serde_json::Value` when the shape is not known. Tornado:
/// `escape.json_decode`.
///
/// # Errors
///
/// [`serde_json::Error`] when the text is not JSON or does not fit `T`.
pub fn json_decode<T: DeserializeOwned>(value: impl AsRef<[u8]>) -> Result<T, serde_json::Error> {
    serde_json::from_slice(value.as_ref())
}

/// Replaces every run of ASCII whitespace and control characters
/// (`\x00`–`\x20`) with a single space and trims the ends. Tornado:
/// `escape.squeeze`.
pub fn squeeze(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut in_run = false;
    for c in value.chars() {
        if c <= ' ' {
            if !in_run {
                out.push(' ');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xhtml_escape_matches_tornado() {
        let cases = [
            ("", ""),
            ("plain", "plain"),
            (
                "<a href=\"x\">'&'</a>",
                "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;",
            ),
            ("\u{4e2d} & \u{e9}", "\u{4e2d} &amp; \u{e9}"),
        ];
        for (input, want) in cases {
            assert_eq!(xhtml_escape(input), want, "{input:?}");
        }
    }

    /// Expected values printed by Tornado 6.6.1 (`html.unescape`, Python 3.11).
    #[test]
    fn xhtml_unescape_matches_tornado() {
        let cases = [
            ("no references", "no references"),
            ("&lt;b&gt; &amp;amp; &quot;&#39;&#x27;", "<b> &amp; \"''"),
            ("&amp", "&"),
            ("&ampx", "&x"),
            ("&notit;", "\u{ac}it;"),
            ("&notin;", "\u{2209}"),
            ("&copy2023", "\u{a9}2023"),
            ("&#65;&#x41;&#X41", "AAA"),
            (
                "&#0;&#13;&#128;&#150;&#xD800;&#x110000;&#1;&#x7f;&#xFFFE;",
                "\u{fffd}\r\u{20ac}\u{2013}\u{fffd}\u{fffd}",
            ),
            ("&#;&#x;&;& x", "&#;&#x;&;& x"),
            ("&bogus;", "&bogus;"),
            (
                "&hellip;&nbsp;&Omega;&lang;&apos;",
                "\u{2026}\u{a0}\u{3a9}\u{27e8}'",
            ),
            ("&AMP;&AMPx&LTy", "&&x<y"),
            ("&#99999999999999999999;", "\u{fffd}"),
            (
                "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;",
                "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;",
            ),
            ("&euro;", "\u{20ac}"),
            ("&\u{e9}t\u{e9};&", "&\u{e9}t\u{e9};&"),
            ("&&&lt;", "&&<"),
            ("&#x1F600;", "\u{1F600}"),
        ];
        for (input, want) in cases {
            assert_eq!(xhtml_unescape(input), want, "{input:?}");
        }
    }

    #[test]
    fn xhtml_unescape_leaves_html5_only_names() {
        // Python decodes this to "\n"; it is outside the HTML 4 table.
        assert_eq!(xhtml_unescape("&NewLine;"), "&NewLine;");
    }

    #[test]
    fn entity_table_is_sorted_for_binary_search() {
        for pair in ENTITIES.windows(2) {
            assert!(
                pair[0].0.as_bytes() < pair[1].0.as_bytes(),
                "{:?}",
                pair[1].0
            );
        }
        assert_eq!(ENTITIES.len(), 259);
    }

    #[test]
    fn escape_then_unescape_round_trips() {
        for s in ["<&>\"'", "a &amp; b", "\u{4e2d}&#1;"] {
            assert_eq!(xhtml_unescape(&xhtml_escape(s)), s);
        }
    }

    /// Expected values printed by Tornado 6.6.1's `url_escape`.
    #[test]
    fn url_escape_matches_tornado() {
        let cases = [
            (
                "a b/c?d=e&f+g",
                "a+b%2Fc%3Fd%3De%26f%2Bg",
                "a%20b/c%3Fd%3De%26f%2Bg",
            ),
            (
                "\u{fc}n\u{ef} ~_.-",
                "%C3%BCn%C3%AF+~_.-",
                "%C3%BCn%C3%AF%20~_.-",
            ),
            ("%", "%25", "%25"),
            ("", "", ""),
            (
                "!*'();:@&=+$,/?#[]",
                "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D",
                "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C/%3F%23%5B%5D",
            ),
        ];
        for (input, plus, path) in cases {
            assert_eq!(url_escape(input, true), plus, "{input:?}");
            assert_eq!(url_escape(input, false), path, "{input:?}");
        }
    }

    /// Expected values printed by Tornado 6.6.1's `url_unescape` with
    /// `encoding=None` (bytes) and with UTF-8 (lossy).
    #[test]
    fn url_unescape_matches_tornado() {
        let cases: [(&str, &[u8], &[u8], &str); 8] = [
            ("a+b%20c", b"a b c", b"a+b c", "a b c"),
            ("%2B", b"+", b"+", "+"),
            ("%zz%", b"%zz%", b"%zz%", "%zz%"),
            (
                "%e4%b8%ad",
                "\u{4e2d}".as_bytes(),
                "\u{4e2d}".as_bytes(),
                "\u{4e2d}",
            ),
            ("%ff", b"\xff", b"\xff", "\u{fffd}"),
            ("a%C3", b"a\xc3", b"a\xc3", "a\u{fffd}"),
            ("%C3%28x", b"\xc3(x", b"\xc3(x", "\u{fffd}(x"),
            (
                "\u{4e2d}+",
                "\u{4e2d} ".as_bytes(),
                "\u{4e2d}+".as_bytes(),
                "\u{4e2d} ",
            ),
        ];
        for (input, plus, no_plus, lossy) in cases {
            assert_eq!(url_unescape_to_bytes(input, true), plus, "{input:?}");
            assert_eq!(url_unescape_to_bytes(input, false), no_plus, "{input:?}");
            assert_eq!(url_unescape_lossy(input, true), lossy, "{input:?}");
        }
    }

    #[test]
    fn url_unescape_reports_invalid_utf8() {
        assert_eq!(url_unescape("a%20b", false), Ok("a b".to_owned()));
        assert_eq!(
            url_unescape("ab%C3%28", true),
            Err(EscapeError::InvalidUtf8 { valid_up_to: 2 })
        );
        let err = url_unescape("%ff", true).unwrap_err();
        assert!(err.to_string().contains("not valid UTF-8"));
    }

    #[test]
    fn url_escape_round_trips() {
        for s in ["a b/c+d%e", "\u{4e2d}\u{6587}?x=1&y=2", ""] {
            for plus in [true, false] {
                assert_eq!(url_unescape(&url_escape(s, plus), plus).unwrap(), s);
            }
        }
    }

    #[test]
    fn json_encode_is_safe_in_script() {
        let value = serde_json::json!({"a": "</script>", "b": "\u{2028}\u{2029}"});
        let json = json_encode(&value).unwrap();
        assert_eq!(json, r#"{"a":"<\/script>","b":"\u2028\u2029"}"#);
        let back: serde_json::Value = json_decode(&json).unwrap();
        assert_eq!(back, value);
        assert_eq!(json_encode(&[1, 2]).unwrap(), "[1,2]");
    }

    #[test]
    fn json_decode_reports_errors() {
        assert!(json_decode::<serde_json::Value>("{").is_err());
        assert!(json_decode::<serde_json::Value>(b"\xff").is_err());
        let n: u32 = json_decode(b"42").unwrap();
        assert_eq!(n, 42);
    }

    #[test]
    fn squeeze_matches_tornado() {
        let cases = [
            ("  a \t\n b\x00\x01c  ", "a b c"),
            ("", ""),
            ("one", "one"),
            ("\u{4e2d}  \u{6587}", "\u{4e2d} \u{6587}"),
        ];
        for (input, want) in cases {
            assert_eq!(squeeze(input), want, "{input:?}");
        }
    }
}
