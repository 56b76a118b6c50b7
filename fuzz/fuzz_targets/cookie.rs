//! The `Cookie` header parser, `parse_cookie`, and the request's
//! `cookies()` built on it.
//!
//! Input: the header value (as text; invalid UTF-8 is replaced).
//!
//! Checks: no more cookies than `;`-separated pairs; names are trimmed
//! and hold no `;`; unquoting never grows a value; the request's cookies
//! are those of `parse_cookie` with a legal name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whirl_httpserver::{
    is_valid_header_value, parse_cookie, HttpHeaders, HttpServerRequest, RequestHead,
    RequestStartLine, Version,
};

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    let cookies = parse_cookie(&header);
    assert!(cookies.len() <= header.matches(';').count() + 1);
    for (name, value) in &cookies {
        // (A quoted value may hold `\073`, an escaped `;`.)
        assert!(!name.contains(';'));
        assert_eq!(name.trim(), name);
        assert!(name.len() + value.len() <= header.len());
    }

    if !is_valid_header_value(&header) {
        return;
    }
    let mut headers = HttpHeaders::new();
    headers.add("Host", "example.com");
    headers.add("Cookie", header.as_ref());
    let head = RequestHead {
        start_line: RequestStartLine {
            method: "GET".into(),
            target: "/".into(),
            version: Version::Http11,
        },
        headers,
    };
    let Ok(request) = HttpServerRequest::new(head, None, "http") else {
        return;
    };
    for (name, value) in request.cookies() {
        assert!(!name.is_empty());
        assert_eq!(cookies.get(&name), Some(&value));
    }
});
