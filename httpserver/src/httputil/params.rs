//! Header parameters such as `form-data; name="f"; filename*=UTF-8''%E2%82%AC`
//! (Tornado's `httputil._parse_header`, which leans on Python's
//! `email.utils.decode_params` for RFC 2231/5987 extended values).

use std::collections::HashMap;

use percent_encoding::percent_decode;

/// Splits a header value into its first item (such as `form-data`) and its
/// parameters, names lowercased.
///
/// As in Tornado: items split on `;` outside double quotes (a `"` after a
/// backslash does not count); an item without `=` is dropped; quoted values
/// lose their quotes and have `\\` and `\"` unescaped (and only those, so a
/// Windows path keeps its backslashes); `name*=charset'lang'%XX` values and
/// `name*0`, `name*1*` continuations are joined and decoded and win over a
/// plain `name`; a later plain duplicate wins over an earlier one.
/// `UTF-8`, `ISO-8859-1` and `US-ASCII` are decoded (invalid bytes become
/// U+FFFD); any other charset is read as UTF-8.
///
/// Runs in one pass over `line`.
pub(crate) fn parse_header(line: &str) -> (String, HashMap<String, String>) {
    let mut items = split_params(line);
    let key = items.next().unwrap_or("").trim().to_string();

    // Step 1: plain parameters in order; extended ones grouped by base name.
    let mut params: HashMap<String, String> = HashMap::new();
    let mut extended: Vec<(String, Vec<Section>)> = Vec::new();
    let mut extended_index: HashMap<String, usize> = HashMap::new();
    for item in items {
        let Some((name, value)) = item.split_once('=') else {
            continue;
        };
        let name = name.trim().to_lowercase();
        let value = unquote(value.trim());
        match rfc2231_name(&name) {
            Some((base, number, encoded)) => {
                let at = *extended_index.entry(base.to_string()).or_insert_with(|| {
                    extended.push((base.to_string(), Vec::new()));
                    extended.len() - 1
                });
                extended[at].1.push(Section {
                    number,
                    value,
                    encoded,
                });
            }
            None => {
                params.insert(name, value);
            }
        }
    }

    // Step 2: join and decode the extended values; they override plain ones.
    for (base, mut sections) in extended {
        sections.sort_by_key(|s| s.number);
        params.insert(base, join_sections(&sections));
    }

    // Step 3: Tornado strips one more pair of quotes.
    for value in params.values_mut() {
        if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            *value = value[1..value.len() - 1].to_string();
        }
    }
    (key, params)
}

/// One piece of an RFC 2231 parameter: `name*`, `name*N` or `name*N*`.
#[derive(Debug)]
struct Section {
    /// `N`, or `None` for a bare `name*`.
    number: Option<u32>,
    /// The value, unquoted.
    value: String,
    /// Whether the name ended in `*` (percent-encoded, charset first).
    encoded: bool,
}

/// Splits on `;` outside double quotes, in one pass.
fn split_params(line: &str) -> impl Iterator<Item = &str> {
    let mut in_quotes = false;
    let mut prev = 0u8;
    line.split(move |c: char| {
        let split = c == ';' && !in_quotes;
        if c == '"' && prev != b'\\' {
            in_quotes = !in_quotes;
        }
        prev = if c.is_ascii() { c as u8 } else { 0 };
        split
    })
}

/// Python's `email.utils.unquote`.
fn unquote(s: &str) -> String {
    if s.len() > 1 {
        if s.starts_with('"') && s.ends_with('"') {
            return s[1..s.len() - 1]
                .replace("\\\\", "\\")
                .replace("\\\"", "\"");
        }
        if s.starts_with('<') && s.ends_with('>') {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// Matches Python's `^(\w+)\*((\d+)\*?)?$`: the base name, the section
/// number and whether the value is encoded.
fn rfc2231_name(name: &str) -> Option<(&str, Option<u32>, bool)> {
    let star = name.find('*')?;
    let (base, rest) = (&name[..star], &name[star + 1..]);
    if base.is_empty() || !base.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    if rest.is_empty() {
        return Some((base, None, true));
    }
    let (digits, encoded) = match rest.strip_suffix('*') {
        Some(digits) => (digits, true),
        None => (rest, false),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = digits.parse().ok()?;
    Some((base, Some(number), encoded))
}

/// Joins the sections of one parameter and decodes it.
fn join_sections(sections: &[Section]) -> String {
    let mut bytes = Vec::new();
    for section in sections {
        if section.encoded {
            bytes.extend(percent_decode(section.value.as_bytes()));
        } else {
            bytes.extend_from_slice(section.value.as_bytes());
        }
    }
    if !sections.iter().any(|s| s.encoded) {
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    // `charset'language'value`; without both ticks it is all value, ASCII.
    let mut parts = bytes.splitn(3, |&b| b == b'\'');
    let (charset, value) = match (parts.next(), parts.next(), parts.next()) {
        (Some(charset), Some(_), Some(value)) => (charset, value),
        _ => (&b""[..], &bytes[..]),
    };
    decode_charset(charset, value)
}

/// Decodes `bytes` in `charset`, replacing what does not decode.
fn decode_charset(charset: &[u8], bytes: &[u8]) -> String {
    let charset = String::from_utf8_lossy(charset).to_ascii_lowercase();
    match charset.as_str() {
        "iso-8859-1" | "iso8859-1" | "latin-1" | "latin1" => {
            bytes.iter().map(|&b| b as char).collect()
        }
        "" | "us-ascii" | "ascii" => bytes
            .iter()
            .map(|&b| if b.is_ascii() { b as char } else { '\u{fffd}' })
            .collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(line: &str) -> (String, Vec<(String, String)>) {
        let (key, map) = parse_header(line);
        let mut pairs: Vec<_> = map.into_iter().collect();
        pairs.sort();
        (key, pairs)
    }

    #[test]
    fn parameters_decode_like_tornado() {
        // (header value, first item, sorted parameters)
        type Case = (
            &'static str,
            &'static str,
            &'static [(&'static str, &'static str)],
        );
        let cases: &[Case] = &[
            ("form-data; name=\"a\"", "form-data", &[("name", "a")]),
            (
                "form-data; name=a; filename=b.txt",
                "form-data",
                &[("filename", "b.txt"), ("name", "a")],
            ),
            (" form-data ;NAME = \"a\" ", "form-data", &[("name", "a")]),
            // Tornado's _parse_header doctest.
            (
                "form-data; foo=\"b\\\\a\\\"r\"; file*=utf-8''T%C3%A4st",
                "form-data",
                &[("file", "Täst"), ("foo", "b\\a\"r")],
            ),
            (
                "form-data; name=\"a;b\"; x=1",
                "form-data",
                &[("name", "a;b"), ("x", "1")],
            ),
            (
                "form-data; name=\"a\\\";b\"",
                "form-data",
                &[("name", "a\";b")],
            ),
            (
                "form-data; name=\"C:\\dir\\f.txt\"",
                "form-data",
                &[("name", "C:\\dir\\f.txt")],
            ),
            ("form-data; novalue; name=x", "form-data", &[("name", "x")]),
            ("form-data; name=x; name=y", "form-data", &[("name", "y")]),
            ("form-data; name=<x>", "form-data", &[("name", "x")]),
            ("form-data; name=\"\"", "form-data", &[("name", "")]),
            ("form-data; name=\"\"x\"\"", "form-data", &[("name", "x")]),
            // RFC 5987 wins over the plain value, whatever the order.
            (
                "form-data; filename*=UTF-8''%e2%82%ac.txt; filename=\"e.txt\"",
                "form-data",
                &[("filename", "€.txt")],
            ),
            (
                "form-data; filename*=iso-8859-1'en'%E9t%E9",
                "form-data",
                &[("filename", "été")],
            ),
            (
                "form-data; filename*=us-ascii''a%E9",
                "form-data",
                &[("filename", "a\u{fffd}")],
            ),
            (
                "form-data; filename*=UTF-8''%FF",
                "form-data",
                &[("filename", "\u{fffd}")],
            ),
            (
                "form-data; filename*=plain.txt",
                "form-data",
                &[("filename", "plain.txt")],
            ),
            (
                "form-data; filename*=UTF-8''%zz",
                "form-data",
                &[("filename", "%zz")],
            ),
            // RFC 2231 continuations, out of order.
            (
                "form-data; f*1=\"b.\"; f*0=\"a\"; f*2=txt",
                "form-data",
                &[("f", "ab.txt")],
            ),
            (
                "form-data; f*1*=%E2%82%AC; f*0*=UTF-8''x",
                "form-data",
                &[("f", "x€")],
            ),
            ("", "", &[]),
            (";;;", "", &[]),
        ];
        for (line, key, want) in cases {
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            assert_eq!(params(line), (key.to_string(), want), "{line:?}");
        }
    }

    #[test]
    fn rfc2231_names() {
        assert_eq!(rfc2231_name("filename*"), Some(("filename", None, true)));
        assert_eq!(rfc2231_name("f*0"), Some(("f", Some(0), false)));
        assert_eq!(rfc2231_name("f*12*"), Some(("f", Some(12), true)));
        for plain in [
            "filename",
            "*",
            "f**",
            "f*x",
            "f*1*2",
            "a-b*",
            "f*99999999999",
        ] {
            assert_eq!(rfc2231_name(plain), None, "{plain}");
        }
    }
}
