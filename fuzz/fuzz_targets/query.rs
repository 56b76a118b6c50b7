//! Query-string and URL decoding: `parse_qsl_bytes`, `parse_qs_bytes` and
//! `whirl_web::escape::url_unescape`.
//!
//! Input: one settings byte (bit 0 `keep_blank_values`, bit 1 `plus`, bits
//! 2–3 the field limit), then a query string or URL component.
//!
//! Checks: decoding never grows a field (each `%XX` is one byte, `+` one
//! space), so the pairs together are no larger than the input; the field
//! limit holds; blank values appear only when asked for; `parse_qs_bytes`
//! agrees with `parse_qsl_bytes`; `url_unescape` fails exactly when the
//! decoded bytes are not UTF-8; and escaping then unescaping gives back
//! any text (and any list of pairs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use whirl_httpserver::{parse_qs_bytes, parse_qsl_bytes, Arguments, DEFAULT_MAX_FIELDS};
use whirl_web::escape::{url_escape, url_unescape, url_unescape_lossy, url_unescape_to_bytes};

fuzz_target!(|data: &[u8]| {
    let Some((&settings, qs)) = data.split_first() else {
        return;
    };
    let keep_blank = settings & 1 != 0;
    let plus = settings & 2 != 0;
    let max_fields =
        [None, Some(0), Some(3), Some(DEFAULT_MAX_FIELDS)][usize::from(settings >> 2 & 3)];

    // Step 1. The query-string parser.
    let pairs = parse_qsl_bytes(qs, keep_blank, max_fields);
    if let Ok(pairs) = &pairs {
        if let Some(max) = max_fields {
            assert!(pairs.len() <= max);
        }
        let size: usize = pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
        assert!(size <= qs.len(), "{size} decoded bytes from {}", qs.len());
        if !keep_blank {
            assert!(pairs.iter().all(|(_, v)| !v.is_empty()));
        }
    }
    let grouped = parse_qs_bytes(qs, keep_blank);
    match parse_qsl_bytes(qs, keep_blank, Some(DEFAULT_MAX_FIELDS)) {
        Ok(pairs) => {
            let mut want = Arguments::new();
            for (name, value) in pairs {
                want.entry(name).or_default().push(value);
            }
            assert_eq!(grouped, Ok(want));
        }
        Err(e) => assert_eq!(grouped, Err(e)),
    }

    // Step 2. `url_unescape` on the same bytes as text.
    let text = String::from_utf8_lossy(qs);
    let bytes = url_unescape_to_bytes(&text, plus);
    assert!(bytes.len() <= text.len());
    match url_unescape(&text, plus) {
        Ok(s) => assert_eq!(s.as_bytes(), bytes.as_slice()),
        Err(_) => assert!(std::str::from_utf8(&bytes).is_err()),
    }
    assert_eq!(
        url_unescape_lossy(&text, plus),
        String::from_utf8_lossy(&bytes)
    );

    // Step 3. Round trips: any text survives escaping; so do pairs, one per
    // line of the text, split at their first `=`.
    assert_eq!(
        url_unescape(&url_escape(&text, plus), plus).as_deref(),
        Ok(&*text)
    );
    let lines: Vec<(&str, &str)> = text
        .split('\n')
        .map(|line| line.split_once('=').unwrap_or((line, "")))
        .collect();
    let encoded: Vec<String> = lines
        .iter()
        .map(|(n, v)| format!("{}={}", url_escape(n, true), url_escape(v, true)))
        .collect();
    let decoded = parse_qsl_bytes(encoded.join("&").as_bytes(), true, None)
        .expect("names from text are UTF-8");
    let want: Vec<(String, Vec<u8>)> = lines
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(decoded, want);
});
