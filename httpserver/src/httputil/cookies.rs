//! The `Cookie` request header: [`parse_cookie`] (Tornado's
//! `httputil.parse_cookie`).

use std::collections::HashMap;

/// Parses a `Cookie` header into a map from name to value. Tornado:
/// `httputil.parse_cookie` (the algorithm of Django 1.9.10, which mimics
/// browsers rather than the cookie RFCs).
///
/// Pairs split on every `;`, even inside quotes; each splits at its first
/// `=`; name and value are trimmed of whitespace; a pair without `=` is a
/// value with the empty name (as Firefox does); a pair with neither name nor
/// value is skipped; a later pair wins over an earlier one with the same
/// name. A value in double quotes loses them and has `\"`, `\\` and octal
/// `\ooo` escapes decoded (Python's `http.cookies._unquote`). Any input is
/// accepted and the time is linear in it.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::parse_cookie;
///
/// let cookies = parse_cookie("a=1; b=\"q\\\"x\"; c; a = 2 ");
/// assert_eq!(cookies["a"], "2");
/// assert_eq!(cookies["b"], "q\"x");
/// assert_eq!(cookies[""], "c");
/// ```
pub fn parse_cookie(cookie: &str) -> HashMap<String, String> {
    let mut cookies = HashMap::new();
    for chunk in cookie.split(';') {
        let (name, value) = chunk.split_once('=').unwrap_or(("", chunk));
        let (name, value) = (py_strip(name), py_strip(value));
        if !name.is_empty() || !value.is_empty() {
            cookies.insert(name.to_string(), unquote_cookie(value));
        }
    }
    cookies
}

/// Whether `name` may name a cookie in Python's `http.cookies`, which
/// Tornado's `HTTPServerRequest.cookies` goes through: one or more letters,
/// digits or ``!#$%&'*+-.^_`|~:``.
pub(crate) fn is_legal_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:".contains(&b))
}

/// Trims what Python's `str.strip()` trims: Unicode whitespace and the
/// separators `\x1c`..`\x1f`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// Python's `http.cookies._unquote`: strips surrounding double quotes and
/// decodes `\ooo` (octal, up to `\377`) and `\c` (any other character but a
/// newline) escapes.
fn unquote_cookie(s: &str) -> String {
    let inner = match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner,
        None => return s.to_string(),
    };
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escaped = &rest[at + 1..];
        match escaped.as_bytes() {
            [a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7', ..] => {
                let code = (a - b'0') * 64 + (b - b'0') * 8 + (c - b'0');
                out.push(char::from(code));
                rest = &escaped[3..];
            }
            _ => match escaped.chars().next() {
                Some(c) if c != '\n' => {
                    out.push(c);
                    rest = &escaped[c.len_utf8()..];
                }
                _ => {
                    out.push('\\');
                    rest = escaped;
                }
            },
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(header: &str) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = parse_cookie(header).into_iter().collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn tornado_parse_cookie_cases() {
        // Tornado's ParseCookieTest (from Django and CPython).
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                "chips=ahoy; vienna=finger",
                &[("chips", "ahoy"), ("vienna", "finger")],
            ),
            (
                "keebler=\"E=mc2; L=\\\"Loves\\\"; fudge=\\012;\"",
                &[
                    ("", "\""),
                    ("L", "\\\"Loves\\\""),
                    ("fudge", "\\012"),
                    ("keebler", "\"E=mc2"),
                ],
            ),
            ("keebler=E=mc2", &[("keebler", "E=mc2")]),
            ("key:term=value:term", &[("key:term", "value:term")]),
            (
                "a=b; c=[; d=r; f=h",
                &[("a", "b"), ("c", "["), ("d", "r"), ("f", "h")],
            ),
            (
                "a=b; Domain=example.com",
                &[("Domain", "example.com"), ("a", "b")],
            ),
            ("a=b; h=i; a=c", &[("a", "c"), ("h", "i")]),
            ("a=b; \"; c=d", &[("", "\""), ("a", "b"), ("c", "d")]),
            ("a b c=d e = f; gh=i", &[("a b c", "d e = f"), ("gh", "i")]),
            (
                "a   b,c<>@:/[]?{}=d  \"  =e,f g",
                &[("a   b,c<>@:/[]?{}", "d  \"  =e,f g")],
            ),
            ("saint=André Bessette", &[("saint", "André Bessette")]),
            ("  =  b  ;  ;  =  ;   c  =  ;  ", &[("", "b"), ("c", "")]),
            ("a=1; b=\"q\"; c", &[("", "c"), ("a", "1"), ("b", "q")]),
            ("", &[]),
            (";;;", &[]),
            ("\u{a0}a\x1c=\u{85}1\u{a0}", &[("a", "1")]),
        ];
        for (header, want) in cases {
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            assert_eq!(sorted(header), want, "{header:?}");
        }
    }

    #[test]
    fn quoted_values_unescape_like_python() {
        // CPython's test_http_cookies unquote cases, via Tornado.
        let cases: &[(&str, &str)] = &[
            (r#"a="b=\"""#, "b=\""),
            (r#"a="b=\\""#, "b=\\"),
            (r#"a="b=\=""#, "b=="),
            (r#"a="b=\n""#, "b=n"),
            (r#"a="b=\042""#, "b=\""),
            (r#"a="b=\134""#, "b=\\"),
            (r#"a="b=\377""#, "b=\u{ff}"),
            (r#"a="b=\400""#, "b=400"),
            (r#"a="b=\42""#, "b=42"),
            (r#"a="b=\\042""#, "b=\\042"),
            (r#"a="b=\\134""#, "b=\\134"),
            (r#"a="b=\\\"""#, "b=\\\""),
            (r#"a="b=\\\042""#, "b=\\\""),
            (r#"a="b=\134\"""#, "b=\\\""),
            (r#"a="b=\134\042""#, "b=\\\""),
            ("a=\"x\\\ny\"", "x\\\ny"),
            ("a=\"x\\\"", "x\\"),
            ("a=\"\\é\"", "é"),
            ("a=\"", "\""),
            ("a=\"\"", ""),
        ];
        for (header, want) in cases {
            assert_eq!(parse_cookie(header)["a"], *want, "{header:?}");
        }
    }

    #[test]
    fn long_escaped_values_are_linear() {
        // Tornado's test_unquote_large.
        for escaped in [r"\\", r"\134"] {
            let header = format!("a=\"b={}\"", escaped.repeat(100_000));
            let value = &parse_cookie(&header)["a"];
            assert_eq!(value.len(), 100_002);
            assert!(value.starts_with("b=\\") && value.ends_with("\\\\\\"));
        }
    }

    #[test]
    fn legal_names() {
        for name in ["a", "A-b_c.d", "key:term", "!#$%&'*+-.^_`|~:"] {
            assert!(is_legal_cookie_name(name), "{name}");
        }
        for name in ["", "a b", "a,b", "é", "a=b", "a\"b", "[x]"] {
            assert!(!is_legal_cookie_name(name), "{name}");
        }
    }
}
