//! The request head parser, `parse_request_head`, under tight and default
//! limits.
//!
//! Input: one settings byte (bits 0–1 the head size limit, 2–3 the request
//! line limit, 4–5 the header count limit, 6–7 seed the prefixes tried),
//! then the bytes a client sent.
//!
//! Checks: a complete head consumed no more than it was given nor than the
//! limits allow, holds only valid names and values, and parses the same
//! from exactly its own bytes; every shorter prefix of it is "need more"
//! (a request is never refused for arriving in pieces); errors map to one
//! of the statuses a server sends. A head that becomes an
//! `HttpServerRequest` reads back its method and target as sent, a path and
//! query from inside the target (or `/` for an absolute form without a
//! path), and a host name that is the host's, lowercased; one refused
//! gives its head back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whirl_fuzz::{some_prefixes, XorShift};
use whirl_httpserver::{
    is_valid_header_name, is_valid_header_value, parse_request_head, HeadLimits, HttpServerRequest,
    RequestHead,
};

/// The checks on a head made into a request (see the file's doc).
fn check_request(head: RequestHead) {
    let before = head.clone();
    match HttpServerRequest::from_head(head, None, "http") {
        Ok(request) => {
            let target = before.start_line.target.as_str();
            assert_eq!(request.method(), before.start_line.method);
            assert_eq!(request.uri(), target);
            if target.starts_with('/') {
                // Origin form: the target is the path, then `?` and the
                // query if it has a `?`.
                let rebuilt = if target.contains('?') {
                    format!("{}?{}", request.path(), request.query())
                } else {
                    request.path().to_string()
                };
                assert_eq!(rebuilt, target);
                let host = before.headers.get("Host").unwrap_or("127.0.0.1");
                assert_eq!(request.host(), host);
            } else {
                assert!(target.contains(request.path()) || request.path() == "/");
                assert!(target.contains(request.query()));
            }
            let host = request.host().to_ascii_lowercase();
            assert!(host.starts_with(request.host_name()), "{host:?}");
            assert_eq!(
                request.host_name(),
                request.host_name().to_ascii_lowercase()
            );
        }
        Err(refused) => assert_eq!(*refused.head, before),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&settings, buf)) = data.split_first() else {
        return;
    };
    let limits = HeadLimits {
        max_header_size: [64 * 1024, 64, 256, 1024][usize::from(settings & 3)],
        max_request_line: [8 * 1024, 16, 64, 512][usize::from(settings >> 2 & 3)],
        // 200 takes the parser's heap path for header slots.
        max_headers: [100, 0, 3, 200][usize::from(settings >> 4 & 3)],
    };
    match parse_request_head(buf, &limits) {
        Ok(Some((head, consumed))) => {
            assert!(consumed <= buf.len());
            assert!(consumed <= limits.max_header_size);
            assert!(head.headers.len() <= limits.max_headers);
            assert!(is_valid_header_name(&head.start_line.method));
            assert!(!head.start_line.target.is_empty());
            for (name, value) in head.headers.iter() {
                assert!(is_valid_header_name(name), "{name:?}");
                // Values are Latin-1 text: each char one byte of the input.
                assert!(value.chars().all(|c| u32::from(c) <= 0xff), "{value:?}");
                assert!(is_valid_header_value(value), "{value:?}");
                assert!(value == value.trim_matches([' ', '\t']), "{value:?}");
            }
            let again = parse_request_head(&buf[..consumed], &limits);
            assert_eq!(again, Ok(Some((head.clone(), consumed))));
            check_request(head);
            let mut rng = XorShift::new(u64::from(settings >> 6) ^ buf.len() as u64);
            for cut in some_prefixes(&mut rng, consumed, 6) {
                let partial = parse_request_head(&buf[..cut], &limits);
                assert_eq!(partial, Ok(None), "prefix of {cut} of {consumed} bytes");
            }
        }
        Ok(None) => {
            assert!(buf.len() <= limits.max_header_size);
        }
        Err(e) => {
            assert!(
                matches!(e.status(), 400 | 414 | 431 | 505),
                "{e:?} -> {}",
                e.status()
            );
        }
    }
});
