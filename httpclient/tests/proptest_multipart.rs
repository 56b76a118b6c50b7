//! Property tests of multipart bodies: what [`Multipart`] builds, whirl's
//! server parser ([`parse_body_arguments`], [`parse_multipart_form_data`])
//! reads back — every field and file, in order, byte for byte, with names
//! escaped as browsers escape them and file names exact.
//!
//! Case counts are modest so `cargo test` stays fast; set `PROPTEST_CASES`
//! for a longer run.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::sample::select;
use whirl_httpclient::multipart::Multipart;
use whirl_httpserver::{
    parse_body_arguments, parse_multipart_form_data, BodyArguments, HttpFile, ParseBodyConfig,
};

/// `cases` cases, or `PROPTEST_CASES` when set.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig::with_cases(cases)
}

/// One part of a form.
#[derive(Debug, Clone)]
enum Part {
    /// `Multipart::field(name, value)`.
    Field { name: String, value: Vec<u8> },
    /// `Multipart::file_with_type(name, filename, content_type, body)`.
    File {
        name: String,
        filename: String,
        content_type: String,
        body: Vec<u8>,
    },
}

/// A field name: any text, with quotes, `;`, `=`, spaces, control and
/// non-ASCII characters, and maybe backslashes at the end (which the
/// builder escapes, lest they escape the closing quote). Backslashes
/// elsewhere go out as they are, as browsers send them, and a server that
/// unescapes `\\` in quoted strings (as Tornado and whirl do) reads a pair
/// of them as one, so they are left out.
fn name() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => select(b"abcXYZ019_-.".to_vec()).prop_map(char::from),
        1 => select(vec!['"', ';', '=', ' ', '\t', '%', '\r', '\n', '\0', '\'', '*']),
        1 => any::<char>().prop_filter("a backslash", |&c| c != '\\'),
    ];
    (prop::collection::vec(c, 1..16), 0..3usize).prop_map(|(chars, backslashes)| {
        let mut name = String::from_iter(chars);
        name.extend(std::iter::repeat_n('\\', backslashes));
        name
    })
}

/// A file name: any text at all, but not empty (an empty one makes the
/// part a field, as in browsers), and not wrapped whole in double quotes:
/// the server strips one more pair of quotes from every parameter, as
/// Tornado's `_parse_header` does, so `""` reads as empty (a field).
fn filename() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => select(b"abc.XYZ019_- ".to_vec()).prop_map(char::from),
        1 => select(vec!['"', '\\', ';', '=', '%', '\r', '\n', '\t', '/', '*', '\'']),
        1 => any::<char>(),
    ];
    prop::collection::vec(c, 1..16)
        .prop_map(String::from_iter)
        .prop_filter("wrapped in quotes", |f| {
            !(f.len() >= 2 && f.starts_with('"') && f.ends_with('"'))
        })
}

/// A content type, or none.
fn content_type() -> impl Strategy<Value = String> {
    select(vec![
        "",
        "text/plain",
        "image/png",
        "application/octet-stream",
        "text/html; charset=utf-8",
        "multipart/mixed; boundary=\"x\"",
    ])
    .prop_map(str::to_string)
}

/// Content: random bytes, or bytes made of line ends and dashes, which
/// look like delimiters to a careless parser.
fn content() -> impl Strategy<Value = Vec<u8>> {
    let tricky = prop_oneof![
        Just(&b"\r\n"[..]),
        Just(&b"\n"[..]),
        Just(&b"--"[..]),
        Just(&b"\r\n--"[..]),
        Just(&b"--whirl-"[..]),
        Just(&b"\r\n\r\n"[..]),
        Just(&b"x"[..]),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(tricky, 0..32).prop_map(|pieces| pieces.concat()),
    ]
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        (name(), content()).prop_map(|(name, value)| Part::Field { name, value }),
        (name(), filename(), content_type(), content()).prop_map(
            |(name, filename, content_type, body)| Part::File {
                name,
                filename,
                content_type,
                body,
            }
        ),
    ]
}

/// A name as the server receives it: `"`, CR, LF and other control
/// characters but tab sent as `%XX` (the WHATWG rule), and so are
/// backslashes at the end; none decoded back.
fn escaped(name: &str) -> String {
    let body = name.trim_end_matches('\\');
    let mut out = String::new();
    for c in body.chars() {
        if c == '"' || (c.is_ascii_control() && c != '\t') {
            out.push_str(&format!("%{:02X}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out + &"%5C".repeat(name.len() - body.len())
}

/// What the server should read from a form of `parts`.
fn expected(parts: &[Part]) -> BodyArguments {
    let mut want = BodyArguments::default();
    for part in parts {
        match part {
            Part::Field { name, value } => want
                .arguments
                .entry(escaped(name))
                .or_default()
                .push(value.clone()),
            Part::File {
                name,
                filename,
                content_type,
                body,
            } => want.files.entry(escaped(name)).or_default().push(HttpFile {
                filename: filename.clone(),
                content_type: match content_type.as_str() {
                    "" => "application/unknown".to_string(),
                    other => other.to_string(),
                },
                body: body.clone(),
            }),
        }
    }
    want
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn multipart_forms_round_trip(parts in prop::collection::vec(part(), 0..12)) {
        let mut form = Multipart::new();
        for part in &parts {
            form = match part.clone() {
                Part::Field { name, value } => form.field(name, value),
                Part::File { name, filename, content_type, body } => {
                    form.file_with_type(name, filename, content_type, body)
                }
            };
        }
        let body = form.to_bytes().expect("in memory");
        prop_assert_eq!(body.len() as u64, form.content_length().expect("in memory"));

        let config = ParseBodyConfig::default();
        let parsed = parse_body_arguments(&form.content_type(), &body, None, &config);
        prop_assert_eq!(&parsed, &Ok(expected(&parts)));
        let direct = parse_multipart_form_data(form.boundary().as_bytes(), &body, &config);
        prop_assert_eq!(&direct, &parsed);
    }

    #[test]
    fn multipart_fields_keep_their_order_per_name(
        values in prop::collection::vec(content(), 1..12),
        names in prop::collection::vec(select(vec!["a", "b", "c"]), 12),
    ) {
        let mut form = Multipart::new();
        let mut want: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        for (value, name) in values.iter().zip(&names) {
            form = form.field(*name, value.clone());
            want.entry(name.to_string()).or_default().push(value.clone());
        }
        let body = form.to_bytes().expect("in memory");
        let parsed = parse_body_arguments(&form.content_type(), &body, None, &ParseBodyConfig::default())
            .expect("a valid body");
        prop_assert_eq!(parsed.arguments, want);
        prop_assert!(parsed.files.is_empty());
    }
}
