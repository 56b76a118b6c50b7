//! The multipart parser, `parse_multipart_form_data`, and
//! `parse_body_arguments` in front of it.
//!
//! Input: one settings byte (bits 0–1 pick the limits), one byte giving
//! the boundary's length (up to 70, RFC 2046's most), the boundary, then
//! the body.
//!
//! Checks: never more parts than the limit; every value and file is a copy
//! of bytes of the body, so together they are no larger than it (nothing is
//! sized from a number in the input); file names are not empty; parsing
//! through `parse_body_arguments` with the boundary in a `Content-Type`
//! gives the same answer; the urlencoded parser on the same body keeps to
//! its field limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whirl_httpserver::{parse_body_arguments, parse_multipart_form_data, ParseBodyConfig};

fuzz_target!(|data: &[u8]| {
    let &[settings, boundary_len, ref rest @ ..] = data else {
        return;
    };
    let config = match settings & 3 {
        0 => ParseBodyConfig::default(),
        1 => ParseBodyConfig {
            max_parts: 3,
            max_part_header_size: 64,
            max_arguments: 4,
            ..ParseBodyConfig::default()
        },
        2 => ParseBodyConfig {
            max_parts: 1,
            max_part_header_size: 16,
            max_arguments: 1,
            ..ParseBodyConfig::default()
        },
        _ => ParseBodyConfig {
            max_parts: 10_000,
            ..ParseBodyConfig::default()
        },
    };
    let boundary_len = usize::from(boundary_len % 71).min(rest.len());
    let (boundary, body) = rest.split_at(boundary_len);

    let parsed = parse_multipart_form_data(boundary, body, &config);
    if let Ok(form) = &parsed {
        let values = form.arguments.values().flatten();
        let files = form.files.values().flatten();
        assert!(values.clone().count() + files.clone().count() <= config.max_parts);
        let mut total = 0;
        for value in values {
            total += value.len();
        }
        for file in files {
            assert!(!file.filename.is_empty());
            total += file.body.len();
        }
        assert!(
            total <= body.len(),
            "{total} bytes out of a {}-byte body",
            body.len()
        );
        for name in form.arguments.keys().chain(form.files.keys()) {
            assert!(name.len() <= body.len());
        }
    }

    // The same boundary as a `Content-Type` parameter, where it can be one
    // (no `;`, no surrounding whitespace, printable ASCII).
    if let Ok(text) = std::str::from_utf8(boundary) {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
            let content_type = format!("multipart/form-data; boundary={text}");
            assert_eq!(
                parse_body_arguments(&content_type, body, None, &config),
                parsed
            );
        }
    }

    if let Ok(form) = parse_body_arguments("application/x-www-form-urlencoded", body, None, &config)
    {
        let fields = form.arguments.values().flatten().count();
        assert!(fields <= config.max_arguments);
        assert!(form.files.is_empty());
    }
});
