//! What a browser makes of a redirect URL: the checks Tornado 6.6 runs on
//! redirects built from request data (`_normalize_url_like_browser`,
//! `_is_protocol_relative`, `_scheme_and_netloc` in `tornado/web.py`), so
//! `RedirectHandler` and relative redirects never send a user to another
//! host.

/// `url` as a browser cleans it before parsing (WHATWG URL): leading and
/// trailing C0 controls and spaces stripped, tabs and newlines removed
/// anywhere, backslashes read as slashes (as for `http`/`https`).
fn normalize_like_browser(url: &str) -> String {
    url.trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect()
}

/// Whether a browser would read `url` as protocol-relative (`//host/…`),
/// which names another host. Tornado: `_is_protocol_relative`.
pub(crate) fn is_protocol_relative(url: &str) -> bool {
    normalize_like_browser(url).starts_with("//")
}

/// The scheme and netloc (user info, host and port), lowercased, that a
/// browser would see in `url`; both empty for a relative URL. `None` for a
/// netloc Python's `urlsplit` refuses (an unbalanced `[` or `]`). Tornado:
/// `_scheme_and_netloc`.
pub(crate) fn scheme_and_netloc(url: &str) -> Option<(String, String)> {
    let url = normalize_like_browser(url);
    // Browsers skip any number of slashes before the host.
    let mut rest = url.as_str();
    if rest.starts_with("//") {
        rest = &rest[rest.len() - rest.trim_start_matches('/').len() - 2..];
    }
    // `urlsplit`: a scheme is letters first, then letters, digits, `+-.`.
    let mut scheme = "";
    if let Some(colon) = rest.find(':') {
        let candidate = &rest[..colon];
        let valid = candidate
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && candidate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if valid {
            scheme = candidate;
            rest = &rest[colon + 1..];
        }
    }
    let mut netloc = "";
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        netloc = &after[..end];
        if netloc.contains('[') != netloc.contains(']') {
            return None;
        }
    }
    Some((scheme.to_ascii_lowercase(), netloc.to_ascii_lowercase()))
}

/// Whether `url` has a character a header value cannot carry (Tornado's
/// `_FORBIDDEN_HEADER_CHARS_RE`: C0 controls but tab, and DEL).
pub(crate) fn has_forbidden_header_chars(url: &str) -> bool {
    url.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_relative_as_a_browser_reads_it() {
        for url in [
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/\t/evil.com",
            " //evil.com",
            "\x01//evil.com",
            "/\n/evil.com",
        ] {
            assert!(is_protocol_relative(url), "{url:?}");
        }
        for url in ["/", "/a//b", "/ /evil.com", "evil.com", "http://x/", ""] {
            assert!(!is_protocol_relative(url), "{url:?}");
        }
    }

    #[test]
    fn scheme_and_netloc_like_urlsplit() {
        let cases: &[(&str, (&str, &str))] = &[
            ("/a/b", ("", "")),
            ("", ("", "")),
            ("local/path", ("", "")),
            ("//evil.com/x", ("", "evil.com")),
            ("///evil.com", ("", "evil.com")),
            ("/\\evil.com", ("", "evil.com")),
            ("HTTPS://Example.COM/x", ("https", "example.com")),
            (
                "https://example.com.evil.com",
                ("https", "example.com.evil.com"),
            ),
            (
                "https://example.com@evil.com/",
                ("https", "example.com@evil.com"),
            ),
            ("https://example.com:8080/", ("https", "example.com:8080")),
            ("https:evil.com", ("https", "")),
            ("https:///evil.com", ("https", "")),
            ("javascript:alert(1)", ("javascript", "")),
            ("/a?next=//evil.com", ("", "")),
            ("1http://x", ("", "")),
        ];
        for (url, (scheme, netloc)) in cases {
            assert_eq!(
                scheme_and_netloc(url),
                Some((scheme.to_string(), netloc.to_string())),
                "{url:?}"
            );
        }
        assert_eq!(scheme_and_netloc("http://[::1/"), None);
    }

    #[test]
    fn forbidden_header_characters() {
        assert!(has_forbidden_header_chars("/a\r\nb"));
        assert!(has_forbidden_header_chars("/a\0"));
        assert!(has_forbidden_header_chars("/a\x7f"));
        assert!(!has_forbidden_header_chars("/a\tb/é"));
    }
}
