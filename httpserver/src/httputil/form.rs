//! Form bodies: [`parse_body_arguments`] for
//! `application/x-www-form-urlencoded` and `multipart/form-data`, and the
//! types they fill — [`Arguments`], [`Files`], [`HttpFile`] (Tornado's
//! `httputil.parse_body_arguments` and `HTTPFile`).

use std::collections::HashMap;
use std::fmt;

use super::error::FormError;
use super::multipart::parse_multipart_form_data;
use super::url::{parse_qsl_bytes, DEFAULT_MAX_FIELDS};
use crate::headers::HttpHeaders;

/// Arguments by name, each with every value in order. Names are text; values
/// are bytes, decoded by whoever asks for them (Tornado: `dict[str,
/// list[bytes]]`, decoded in `RequestHandler.decode_argument`).
pub type Arguments = HashMap<String, Vec<Vec<u8>>>;

/// Uploaded files by form field name, each with every file in order
/// (Tornado: `dict[str, list[HTTPFile]]`).
pub type Files = HashMap<String, Vec<HttpFile>>;

/// Default most parts in a `multipart/form-data` body: 100 (Tornado 6.5.5's
/// `ParseMultipartConfig.max_parts`).
pub const DEFAULT_MAX_PARTS: usize = 100;

/// Default most bytes in one part's header block: 10 KiB (Tornado 6.5.5's
/// `ParseMultipartConfig.max_part_header_size`).
pub const DEFAULT_MAX_PART_HEADER_SIZE: usize = 10 * 1024;

/// A file uploaded through a form. Tornado: `httputil.HTTPFile`.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpFile {
    /// The file name the client sent (`filename*=` decoded when present).
    pub filename: String,
    /// The part's `Content-Type`, or `application/unknown` when it had none.
    pub content_type: String,
    /// The file's bytes.
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpFile {
    /// Shows at most the first 64 bytes of the body, and its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.body[..self.body.len().min(64)];
        f.debug_struct("HttpFile")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("body", &String::from_utf8_lossy(shown))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Limits for parsing request bodies. Tornado: `httputil.ParseBodyConfig`
/// and `ParseMultipartConfig` (6.5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseBodyConfig {
    /// Most fields in an urlencoded body. Default is [`DEFAULT_MAX_FIELDS`]
    /// (1,000).
    pub max_arguments: usize,
    /// Whether `multipart/form-data` is parsed at all. Default is `true`.
    pub multipart_enabled: bool,
    /// Most parts in a multipart body. Default is [`DEFAULT_MAX_PARTS`]
    /// (100).
    pub max_parts: usize,
    /// Most bytes in one part's header block. Default is
    /// [`DEFAULT_MAX_PART_HEADER_SIZE`] (10 KiB).
    pub max_part_header_size: usize,
}

impl Default for ParseBodyConfig {
    fn default() -> Self {
        ParseBodyConfig {
            max_arguments: DEFAULT_MAX_FIELDS,
            multipart_enabled: true,
            max_parts: DEFAULT_MAX_PARTS,
            max_part_header_size: DEFAULT_MAX_PART_HEADER_SIZE,
        }
    }
}

/// What a form body holds: arguments and uploaded files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyArguments {
    /// Form fields (multipart parts without a file name, or urlencoded
    /// fields).
    pub arguments: Arguments,
    /// Multipart parts with a file name.
    pub files: Files,
}

/// Parses a form body by its `Content-Type`. Tornado:
/// `httputil.parse_body_arguments`.
///
/// - `application/x-www-form-urlencoded` (any parameters): fields as in
///   [`parse_qsl_bytes`](crate::parse_qsl_bytes), blank values kept, at most
///   `config.max_arguments`.
/// - `multipart/form-data; boundary=…`: see
///   [`parse_multipart_form_data`](crate::parse_multipart_form_data).
/// - anything else, or no type: no arguments, and not an error.
///
/// Media types compare case-insensitively (Tornado compares them exactly).
/// Compressed bodies are not decoded here: for the two form types a
/// `Content-Encoding` in `headers` other than `identity` is an error, as in
/// Tornado (`decompress_request` removes the header once it has decoded the
/// body).
///
/// Unlike Tornado, which fills the dictionaries it is given, this returns a
/// fresh [`BodyArguments`], so nothing is half-filled when parsing fails.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::{parse_body_arguments, ParseBodyConfig};
///
/// let body = b"--xyz\r\n\
///     Content-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n\
///     --xyz\r\n\
///     Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
///     Content-Type: text/plain\r\n\r\nfile body\r\n\
///     --xyz--\r\n";
/// let form = parse_body_arguments(
///     "multipart/form-data; boundary=xyz", body, None, &ParseBodyConfig::default(),
/// ).unwrap();
/// assert_eq!(form.arguments["title"], [b"hello".to_vec()]);
/// let file = &form.files["file"][0];
/// assert_eq!((file.filename.as_str(), file.body.as_slice()), ("a.txt", &b"file body"[..]));
/// ```
///
/// # Errors
///
/// A [`FormError`] (answered with 400) for a malformed body of either form
/// type.
pub fn parse_body_arguments(
    content_type: &str,
    body: &[u8],
    headers: Option<&HttpHeaders>,
    config: &ParseBodyConfig,
) -> Result<BodyArguments, FormError> {
    let (media_type, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    let media_type = media_type.trim();
    if media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        check_content_encoding(headers)?;
        let mut form = BodyArguments::default();
        for (name, value) in parse_qsl_bytes(body, true, Some(config.max_arguments))? {
            form.arguments.entry(name).or_default().push(value);
        }
        Ok(form)
    } else if starts_with_ignore_case(media_type, "multipart/form-data") {
        check_content_encoding(headers)?;
        if media_type.len() != "multipart/form-data".len() {
            return Err(FormError::InvalidContentType);
        }
        let boundary = params
            .split(';')
            .filter_map(|param| param.split_once('='))
            .find(|(key, value)| {
                key.trim().eq_ignore_ascii_case("boundary") && !value.trim().is_empty()
            })
            .map(|(_, value)| value.trim())
            .ok_or(FormError::MissingBoundary)?;
        parse_multipart_form_data(boundary.as_bytes(), body, config)
    } else {
        Ok(BodyArguments::default())
    }
}

/// Refuses a body that is still encoded.
fn check_content_encoding(headers: Option<&HttpHeaders>) -> Result<(), FormError> {
    match headers.and_then(|h| h.get("Content-Encoding")) {
        Some(enc) if !enc.trim().eq_ignore_ascii_case("identity") => {
            Err(FormError::UnsupportedContentEncoding(enc.to_string()))
        }
        _ => Ok(()),
    }
}

/// Whether `s` starts with the ASCII `prefix`, ignoring case.
fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(content_type: &str, body: &[u8]) -> Result<BodyArguments, FormError> {
        parse_body_arguments(content_type, body, None, &ParseBodyConfig::default())
    }

    #[test]
    fn urlencoded_bodies_keep_blank_values() {
        for ct in [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "Application/X-WWW-Form-URLEncoded",
        ] {
            let form = parse(ct, b"a=1&b=&a=%FF&c").unwrap();
            assert_eq!(
                form.arguments["a"],
                [b"1".to_vec(), b"\xff".to_vec()],
                "{ct}"
            );
            assert_eq!(form.arguments["b"], [b"".to_vec()]);
            assert_eq!(form.arguments["c"], [b"".to_vec()]);
            assert!(form.files.is_empty());
        }
        assert_eq!(
            parse("application/x-www-form-urlencoded", b"").unwrap(),
            BodyArguments::default()
        );
    }

    #[test]
    fn urlencoded_limits_and_names() {
        let body = vec![b'&'; 1000];
        assert_eq!(
            parse("application/x-www-form-urlencoded", &body).unwrap_err(),
            FormError::TooManyArguments { limit: 1000 }
        );
        let config = ParseBodyConfig {
            max_arguments: 2,
            ..Default::default()
        };
        let ct = "application/x-www-form-urlencoded";
        assert!(parse_body_arguments(ct, b"a=1&b=2", None, &config).is_ok());
        assert!(parse_body_arguments(ct, b"a=1&b=2&c=3", None, &config).is_err());
        assert_eq!(
            parse(ct, b"%FF=1").unwrap_err(),
            FormError::InvalidArgumentName
        );
    }

    #[test]
    fn unknown_content_types_give_no_arguments() {
        for ct in [
            "",
            "text/plain",
            "application/json",
            "multipart/mixed; boundary=x",
        ] {
            assert_eq!(
                parse(ct, b"a=1").unwrap(),
                BodyArguments::default(),
                "{ct:?}"
            );
        }
    }

    #[test]
    fn content_type_errors() {
        let cases: &[(&str, FormError)] = &[
            ("multipart/form-data", FormError::MissingBoundary),
            ("multipart/form-data; boundary=", FormError::MissingBoundary),
            (
                "multipart/form-data; charset=utf-8",
                FormError::MissingBoundary,
            ),
            (
                "multipart/form-dataxyz; boundary=a",
                FormError::InvalidContentType,
            ),
        ];
        for (ct, want) in cases {
            assert_eq!(parse(ct, b"--a--").unwrap_err(), *want, "{ct:?}");
        }
        // The boundary parameter may come anywhere, in any case, quoted.
        let body = b"--a b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--a b--";
        for ct in [
            "multipart/form-data; boundary=\"a b\"",
            "Multipart/Form-Data; charset=utf-8; BOUNDARY = \"a b\" ",
        ] {
            assert_eq!(
                parse(ct, body).unwrap().arguments["x"],
                [b"1".to_vec()],
                "{ct:?}"
            );
        }
    }

    #[test]
    fn content_encoding_is_refused_for_forms() {
        let mut headers = HttpHeaders::new();
        headers.add("Content-Encoding", "gzip");
        let config = ParseBodyConfig::default();
        for ct in [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=a",
        ] {
            assert_eq!(
                parse_body_arguments(ct, b"a=1", Some(&headers), &config).unwrap_err(),
                FormError::UnsupportedContentEncoding("gzip".into())
            );
        }
        assert!(parse_body_arguments("text/plain", b"x", Some(&headers), &config).is_ok());
        headers.insert("Content-Encoding", "identity");
        let ct = "application/x-www-form-urlencoded";
        assert!(parse_body_arguments(ct, b"a=1", Some(&headers), &config).is_ok());
    }

    #[test]
    fn file_debug_is_short() {
        let file = HttpFile {
            filename: "a.bin".into(),
            content_type: "application/octet-stream".into(),
            body: vec![b'x'; 1000],
        };
        let shown = format!("{file:?}");
        assert!(shown.contains("body_len: 1000"), "{shown}");
        assert!(shown.len() < 200, "{shown}");
    }
}
