//! The rest of Tornado's `httputil`: query strings, form bodies, multipart
//! uploads, cookies and dates — pure functions over bytes, no I/O.
//!
//! Every parser here takes hostile bytes from the network: none panics, each
//! runs in time linear in its input, and each failure is a [`FormError`]
//! that a server answers with 400.

mod cookies;
mod date;
mod error;
mod form;
mod multipart;
mod params;
mod url;

pub(crate) use cookies::is_legal_cookie_name;
pub use cookies::parse_cookie;
pub use date::{format_timestamp, format_unix_timestamp, parse_http_date};
pub use error::FormError;
pub use form::{
    parse_body_arguments, Arguments, BodyArguments, Files, HttpFile, ParseBodyConfig,
    DEFAULT_MAX_PARTS, DEFAULT_MAX_PART_HEADER_SIZE,
};
pub use multipart::parse_multipart_form_data;
pub use url::{parse_qs, parse_qs_bytes, parse_qsl_bytes, url_concat, DEFAULT_MAX_FIELDS};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::RequestHead;
    use crate::headers::HttpHeaders;
    use crate::request::HttpServerRequest;
    use crate::start_line::{RequestStartLine, Version};

    /// A xorshift64* generator: deterministic, so a failure reproduces.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Pieces that steer random input into the parsers' deeper paths.
    const TOKENS: &[&[u8]] = &[
        b"--B",
        b"--B--",
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"Content-Disposition: form-data",
        b"Content-Type: text/plain",
        b"; name=",
        b"; filename=",
        b"filename*=UTF-8''",
        b"f*0*=",
        b"f*1=",
        b"\"",
        b"\\",
        b";",
        b"=",
        b"&",
        b"+",
        b"%",
        b"%4",
        b"%41",
        b"%FF",
        b"%C3%A9",
        b" ",
        b"\t",
        b"a",
        b"\0",
        b"\xff",
        b"\xc3\xa9",
        b"Sun, 06 Nov 1994 08:49:37 GMT",
        b"Sunday, 06-Nov-94 ",
        b"Sun Nov  6 ",
        b"http://",
        b"?",
        b"#",
        b":80",
        b"[::1]",
        b"'",
    ];

    /// A third of the time raw bytes, a third a soup of [`TOKENS`], a third
    /// a well-formed multipart body with a few bytes changed.
    fn random_input(rng: &mut XorShift) -> Vec<u8> {
        let len = rng.below(200);
        let mut out = Vec::with_capacity(len * 4);
        match rng.below(3) {
            0 => out.extend((0..len).map(|_| rng.next() as u8)),
            1 => {
                for _ in 0..len / 4 {
                    if rng.below(8) == 0 {
                        out.push(rng.next() as u8);
                    } else {
                        out.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
                    }
                }
            }
            _ => {
                for i in 0..rng.below(4) {
                    out.extend_from_slice(b"--B\r\nContent-Disposition: form-data; name=n");
                    out.extend_from_slice(format!("{i}").as_bytes());
                    if rng.below(2) == 0 {
                        out.extend_from_slice(b"; filename*=UTF-8''%C3%A9.txt");
                    }
                    out.extend_from_slice(b"\r\n\r\n");
                    out.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"--B--\r\n");
                for _ in 0..rng.below(4) {
                    let at = rng.below(out.len());
                    match rng.below(3) {
                        0 => out[at] = rng.next() as u8,
                        1 => out.truncate(at),
                        _ => out.insert(at, TOKENS[rng.below(TOKENS.len())][0]),
                    }
                    if out.is_empty() {
                        break;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn no_parser_panics_on_random_input() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let small = ParseBodyConfig {
            max_parts: 5,
            max_part_header_size: 64,
            max_arguments: 10,
            ..Default::default()
        };
        for _ in 0..10_000 {
            let input = random_input(&mut rng);
            let text = String::from_utf8_lossy(&input);
            let _ = parse_qsl_bytes(&input, true, Some(50));
            let _ = parse_qsl_bytes(&input, false, None);
            let _ = parse_qs_bytes(&input, true);
            let _ = parse_qs(&text, false);
            let _ = url_concat(&text, [("k", text.as_ref())]);
            let _ = parse_cookie(&text);
            let _ = parse_http_date(&text);
            let _ = params::parse_header(&text);
            for config in [&ParseBodyConfig::default(), &small] {
                let _ = parse_multipart_form_data(b"B", &input, config);
                let _ = parse_multipart_form_data(b"\"B\"", &input, config);
                let _ = parse_body_arguments(&text, &input, None, config);
                let _ =
                    parse_body_arguments("multipart/form-data; boundary=B", &input, None, config);
                let _ =
                    parse_body_arguments("application/x-www-form-urlencoded", &input, None, config);
            }
            // Random bytes as a boundary too.
            if !input.is_empty() {
                let cut = rng.below(input.len());
                let _ = parse_multipart_form_data(&input[..cut], &input[cut..], &small);
            }
            // A request whose target, Host and Cookie are the random text.
            let mut headers = HttpHeaders::new();
            let _ = headers.try_add("Host", text.as_ref());
            let _ = headers.try_add("Cookie", text.as_ref());
            let _ = headers.try_add("Content-Type", "multipart/form-data; boundary=B");
            let head = RequestHead {
                start_line: RequestStartLine {
                    method: "POST".into(),
                    target: text.to_string(),
                    version: Version::Http11,
                },
                headers,
            };
            if let Ok(mut request) = HttpServerRequest::new(head, None, "http") {
                request.body = input.clone();
                let _ = request.parse_body();
                let _ = request.cookies();
                let _ = request.full_url();
            }
        }
    }
}
