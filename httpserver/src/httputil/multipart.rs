//! `multipart/form-data` bodies: [`parse_multipart_form_data`] (Tornado's
//! `httputil.parse_multipart_form_data`), written as one forward scan.

use memchr::memmem::Finder;

use super::error::FormError;
use super::form::{BodyArguments, HttpFile, ParseBodyConfig};
use super::params::parse_header;
use crate::headers::is_token_byte;

/// Parses a `multipart/form-data` body into arguments and files. Tornado:
/// `httputil.parse_multipart_form_data`.
///
/// `boundary` is the `boundary` parameter of the `Content-Type`, quoted or
/// not. A part whose `Content-Disposition` has a non-empty `filename` (or
/// `filename*=UTF-8''…`, RFC 5987, which wins) becomes an [`HttpFile`]; any
/// other part an argument — so an empty file input, which browsers send with
/// `filename=""`, is an empty argument, as in Tornado.
///
/// The body is read as RFC 2046 lays it out, which Tornado mostly agrees
/// with:
/// - a delimiter is `--boundary` at the start of a line, then optional
///   spaces or tabs and a line end, or `--` for the closing one; the text
///   before the first is a preamble and after the closing one an epilogue,
///   both ignored (Tornado refuses a preamble);
/// - line ends are CRLF, or bare LF if the first delimiter line ends in a
///   bare LF (Tornado knows only CRLF);
/// - a part is a header block, a blank line, and content up to the line end
///   before the next delimiter; a part with only headers (the blank line
///   running into the delimiter) has empty content, as in Tornado;
/// - `--boundary` inside content, not at the start of a line or followed
///   by other text on its line, is content; a delimiter line right after
///   another gives an empty part, skipped as in Tornado but counted towards
///   `max_parts`;
/// - part headers are UTF-8 (so raw UTF-8 file names work); a control
///   character in a value, a line without a colon, a continuation line or a
///   second `Content-Disposition` is an error;
/// - the disposition type `form-data` is matched ignoring case.
///
/// More than `config.max_parts` parts is an error (Tornado's limit counts
/// the preamble too, so it allows one part fewer). The scan only moves
/// forward, finding delimiters with `memchr::memmem`, so the time is linear
/// in the body; the one copy made is of each part's content.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::{parse_multipart_form_data, ParseBodyConfig};
///
/// let body = b"--1234\r\n\
///     Content-Disposition: form-data; name=\"files\"; filename*=UTF-8''%e2%82%ac.txt\r\n\
///     \r\n\
///     Foo\r\n\
///     --1234--\r\n";
/// let form = parse_multipart_form_data(b"1234", body, &ParseBodyConfig::default()).unwrap();
/// let file = &form.files["files"][0];
/// assert_eq!(file.filename, "€.txt");
/// assert_eq!(file.content_type, "application/unknown");
/// assert_eq!(file.body, b"Foo");
/// ```
///
/// # Errors
///
/// A [`FormError`] for a malformed body — among them
/// [`MissingBoundary`](FormError::MissingBoundary),
/// [`BodyTooShort`](FormError::BodyTooShort),
/// [`NoFinalBoundary`](FormError::NoFinalBoundary),
/// [`UnterminatedPart`](FormError::UnterminatedPart),
/// [`MissingPartHeaders`](FormError::MissingPartHeaders),
/// [`MissingName`](FormError::MissingName) and
/// [`TooManyParts`](FormError::TooManyParts).
pub fn parse_multipart_form_data(
    boundary: &[u8],
    data: &[u8],
    config: &ParseBodyConfig,
) -> Result<BodyArguments, FormError> {
    if !config.multipart_enabled {
        return Err(FormError::MultipartDisabled);
    }
    // Step 1: the delimiter, and a cheap check that the body can be whole.
    let boundary = match boundary {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    };
    if boundary.is_empty() {
        return Err(FormError::MissingBoundary);
    }
    let dash = [b"--", boundary].concat();
    let closing = [&dash[..], b"--"].concat();
    if data.len() < closing.len() {
        return Err(FormError::BodyTooShort);
    }
    if memchr::memmem::rfind(data, &closing).is_none() {
        return Err(FormError::NoFinalBoundary);
    }
    let scanner = Scanner::new(data, &dash);

    // Step 2: the first delimiter line fixes the line end.
    let Some((first, nl)) = scanner.first_delimiter() else {
        return Err(FormError::NoFinalBoundary);
    };
    let mut part_start = match first {
        Line::Close => return Ok(BodyArguments::default()),
        Line::Open { next } => next,
    };
    let pattern = nl.delimiter(&dash);
    let next_delimiter = Finder::new(&pattern);

    // Step 3: one part per delimiter line until the closing one.
    let mut form = BodyArguments::default();
    let mut parts = 0;
    loop {
        parts += 1;
        if parts > config.max_parts {
            return Err(FormError::TooManyParts {
                limit: config.max_parts,
            });
        }
        // A delimiter line straight after another: an empty part.
        if let Some(after) = scanner.delimiter_line_at(part_start, nl) {
            match after {
                Line::Close => return Ok(form),
                Line::Open { next } => {
                    part_start = next;
                    continue;
                }
            }
        }
        let (end, after) = scanner
            .next_delimiter(part_start, nl, &next_delimiter)
            .ok_or(FormError::UnterminatedPart)?;
        add_part(&mut form, data, part_start, end, nl, config)?;
        match after {
            Line::Close => return Ok(form),
            Line::Open { next } => part_start = next,
        }
    }
}

/// The line end a body uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Newline {
    /// `\r\n`, as RFC 2046 asks.
    Crlf,
    /// A bare `\n`.
    Lf,
}

impl Newline {
    /// The bytes of the line end.
    fn bytes(self) -> &'static [u8] {
        match self {
            Newline::Crlf => b"\r\n",
            Newline::Lf => b"\n",
        }
    }

    /// The blank line that ends a header block.
    fn blank_line(self) -> &'static [u8] {
        match self {
            Newline::Crlf => b"\r\n\r\n",
            Newline::Lf => b"\n\n",
        }
    }

    /// A delimiter that follows content: line end, then `--boundary`.
    fn delimiter(self, dash: &[u8]) -> Vec<u8> {
        let mut pattern = self.bytes().to_vec();
        pattern.extend_from_slice(dash);
        pattern
    }
}

/// What a delimiter line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// `--boundary--`: the end of the parts.
    Close,
    /// `--boundary`: the next part starts at `next`.
    Open {
        /// Where the next part starts, just after the line end.
        next: usize,
    },
}

/// Finds delimiter lines in a body.
#[derive(Debug)]
struct Scanner<'a> {
    /// The whole body.
    data: &'a [u8],
    /// `--boundary`.
    dash: &'a [u8],
}

impl<'a> Scanner<'a> {
    fn new(data: &'a [u8], dash: &'a [u8]) -> Self {
        Scanner { data, dash }
    }

    /// Reads the rest of a delimiter line whose `--boundary` ends at `at`:
    /// `--`, or spaces and tabs and then a line end of kind `nl` (either
    /// kind when `nl` is `None`). Returns the line and the line end seen.
    fn rest_of_line(&self, at: usize, nl: Option<Newline>) -> Option<(Line, Newline)> {
        let rest = self.data.get(at..)?;
        if rest.starts_with(b"--") {
            return Some((Line::Close, nl.unwrap_or(Newline::Crlf)));
        }
        let padding = rest
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .unwrap_or(rest.len());
        let after = &rest[padding..];
        let seen = if after.starts_with(b"\r\n") {
            Newline::Crlf
        } else if after.starts_with(b"\n") {
            Newline::Lf
        } else {
            return None;
        };
        if nl.is_some_and(|nl| nl != seen) {
            return None;
        }
        let next = at + padding + seen.bytes().len();
        Some((Line::Open { next }, seen))
    }

    /// The first delimiter line: at the very start, or at the start of any
    /// later line (after a preamble).
    fn first_delimiter(&self) -> Option<(Line, Newline)> {
        if self.data.starts_with(self.dash) {
            if let Some(found) = self.rest_of_line(self.dash.len(), None) {
                return Some(found);
            }
        }
        let mut pattern = b"\n".to_vec();
        pattern.extend_from_slice(self.dash);
        memchr::memmem::find_iter(self.data, &pattern)
            .find_map(|at| self.rest_of_line(at + pattern.len(), None))
    }

    /// The delimiter line starting exactly at `at`, if there is one.
    fn delimiter_line_at(&self, at: usize, nl: Newline) -> Option<Line> {
        if !self.data.get(at..)?.starts_with(self.dash) {
            return None;
        }
        self.rest_of_line(at + self.dash.len(), Some(nl))
            .map(|(line, _)| line)
    }

    /// The next delimiter line after content starting at `from`: where the
    /// content ends (the line end before `--boundary`) and what follows.
    fn next_delimiter(
        &self,
        from: usize,
        nl: Newline,
        finder: &Finder<'_>,
    ) -> Option<(usize, Line)> {
        let mut search = from;
        // Each candidate is tried once and the search moves past it, so the
        // whole scan is linear.
        while let Some(found) = finder.find(self.data.get(search..)?) {
            let end = search + found;
            let dash_end = end + finder.needle().len();
            if let Some((line, _)) = self.rest_of_line(dash_end, Some(nl)) {
                return Some((end, line));
            }
            search = end + 1;
        }
        None
    }
}

/// Parses the part in `data[start..end]` (end excludes the line end before
/// the next delimiter) and adds it to `form`.
fn add_part(
    form: &mut BodyArguments,
    data: &[u8],
    start: usize,
    end: usize,
    nl: Newline,
    config: &ParseBodyConfig,
) -> Result<(), FormError> {
    // Step 1: the blank line ending the headers. It may run into the line
    // end before the delimiter (a part with no content), so look up to
    // there, but no further than the header limit.
    let blank = nl.blank_line();
    if data[start..].starts_with(nl.bytes()) {
        return Err(FormError::MissingPartHeaders);
    }
    let region_end = end + nl.bytes().len();
    let limit = config.max_part_header_size;
    let search_end = region_end.min(start.saturating_add(limit).saturating_add(blank.len()));
    let header_len = match memchr::memmem::find(&data[start..search_end], blank) {
        Some(len) if len <= limit => len,
        Some(_) => return Err(FormError::PartHeaderTooLarge { limit }),
        None if search_end < region_end => return Err(FormError::PartHeaderTooLarge { limit }),
        None => return Err(FormError::MissingPartHeaders),
    };
    let content_start = (start + header_len + blank.len()).min(end);
    let content = &data[content_start..end];

    // Step 2: the headers we need.
    let headers = PartHeaders::parse(&data[start..start + header_len])?;
    let disposition = headers
        .content_disposition
        .ok_or(FormError::MissingContentDisposition)?;
    let (kind, mut params) = parse_header(disposition);
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(FormError::InvalidContentDisposition);
    }
    let name = match params.remove("name") {
        Some(name) if !name.is_empty() => name,
        _ => return Err(FormError::MissingName),
    };

    // Step 3: a file, or an argument.
    match params.remove("filename") {
        Some(filename) if !filename.is_empty() => {
            let content_type = headers
                .content_type
                .unwrap_or("application/unknown")
                .to_string();
            form.files.entry(name).or_default().push(HttpFile {
                filename,
                content_type,
                body: content.to_vec(),
            });
        }
        _ => form
            .arguments
            .entry(name)
            .or_default()
            .push(content.to_vec()),
    }
    Ok(())
}

/// The headers of one part that matter.
#[derive(Debug, Default)]
struct PartHeaders<'a> {
    /// The `Content-Disposition` value.
    content_disposition: Option<&'a str>,
    /// The first `Content-Type` value.
    content_type: Option<&'a str>,
}

impl<'a> PartHeaders<'a> {
    /// Reads a header block (without its blank line), checking every line.
    fn parse(block: &'a [u8]) -> Result<Self, FormError> {
        let block = std::str::from_utf8(block).map_err(|_| FormError::InvalidPartHeader)?;
        let mut headers = PartHeaders::default();
        for line in block.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                return Err(FormError::InvalidPartHeader);
            }
            let (name, value) = line.split_once(':').ok_or(FormError::InvalidPartHeader)?;
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(FormError::InvalidPartHeader);
            }
            let value = value.trim_matches([' ', '\t']);
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(FormError::InvalidPartHeader);
            }
            if name.eq_ignore_ascii_case("content-disposition") {
                if headers.content_disposition.is_some() {
                    return Err(FormError::InvalidPartHeader);
                }
                headers.content_disposition = Some(value);
            } else if name.eq_ignore_ascii_case("content-type") && headers.content_type.is_none() {
                headers.content_type = Some(value);
            }
        }
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses with the default limits.
    fn parse(boundary: &[u8], data: &[u8]) -> Result<BodyArguments, FormError> {
        parse_multipart_form_data(boundary, data, &ParseBodyConfig::default())
    }

    /// `--1234` bodies in Tornado's tests are written with `\n`; this turns
    /// them into CRLF.
    fn crlf(body: &str) -> Vec<u8> {
        body.replace('\n', "\r\n").into_bytes()
    }

    /// One part with the given Content-Disposition parameters and content.
    fn part(params: &str, content: &str) -> String {
        format!("--1234\nContent-Disposition: form-data; {params}\n\n{content}\n")
    }

    #[test]
    fn files_and_arguments() {
        // (body with \n for CRLF, expected arguments, expected files as
        // (field, filename, content type, body))
        type Case = (
            String,
            Vec<(&'static str, &'static str)>,
            Vec<(&'static str, &'static str, &'static str, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            // Tornado's test_file_upload and test_unquoted_names.
            (part("name=\"files\"; filename=\"ab.txt\"", "Foo") + "--1234--", vec![], vec![("files", "ab.txt", "application/unknown", "Foo")]),
            (part("name=files; filename=ab.txt", "Foo") + "--1234--", vec![], vec![("files", "ab.txt", "application/unknown", "Foo")]),
            // test_non_ascii_filename_rfc5987 and _raw.
            (part("name=\"files\"; filename=\"ab.txt\"; filename*=UTF-8''%C3%A1b.txt", "Foo") + "--1234--", vec![], vec![("files", "áb.txt", "application/unknown", "Foo")]),
            (part("name=\"files\"; filename=\"测试.txt\"", "Foo") + "--1234--", vec![], vec![("files", "测试.txt", "application/unknown", "Foo")]),
            (part("name=\"f\"; filename*=UTF-8''%e2%82%ac.txt", "x") + "--1234--", vec![], vec![("f", "€.txt", "application/unknown", "x")]),
            // test_data_after_final_boundary: an epilogue is ignored.
            (part("name=\"files\"; filename=\"ab.txt\"", "Foo") + "--1234--\nepilogue\n--1234\n", vec![], vec![("files", "ab.txt", "application/unknown", "Foo")]),
            // test_multipart_config: headers only, the blank line running
            // into the delimiter, is an empty file.
            ("--1234\nContent-Disposition: form-data; name=\"files\"; filename=\"ab.txt\"\n\n--1234--".to_string(), vec![], vec![("files", "ab.txt", "application/unknown", "")]),
            // Arguments, repeated names in order, an empty file input.
            (part("name=\"a\"", "1") + &part("name=\"a\"", "2") + &part("name=\"e\"; filename=\"\"", "") + "--1234--", vec![("a", "1"), ("a", "2"), ("e", "")], vec![]),
            // Content type, and content holding line ends and NULs.
            ("--1234\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\nContent-Type: image/png\n\n\0\x01\n\n\n--1234--".to_string(), vec![], vec![("f", "a.bin", "image/png", "\0\u{1}\r\n\r\n")]),
            // No parts at all.
            ("--1234--".to_string(), vec![], vec![]),
            ("--1234--\n".to_string(), vec![], vec![]),
            // A preamble, transport padding, header names in any case.
            ("This is a preamble.\n".to_string() + &part("name=\"a\"", "1").replacen("--1234\n", "--1234 \t\n", 1) + "--1234--", vec![("a", "1")], vec![]),
            ("--1234\ncontent-disposition: FORM-DATA; NAME=a\n\nv\n--1234--".to_string(), vec![("a", "v")], vec![]),
            // Duplicated boundary lines are empty parts, skipped (Tornado).
            ("--1234\n--1234\n".to_string() + &part("name=\"a\"", "1") + "--1234\n--1234--", vec![("a", "1")], vec![]),
            // The boundary inside content, not as a delimiter line.
            (part("name=\"a\"", "x--1234 y") + "--1234--", vec![("a", "x--1234 y")], vec![]),
            (part("name=\"a\"", "x\n--1234x\n--12345\n-1234") + "--1234--", vec![("a", "x\r\n--1234x\r\n--12345\r\n-1234")], vec![]),
            // A closing delimiter line ends the body, even mid-"content".
            (part("name=\"a\"", "1\n--1234--\nContent-Disposition: form-data; name=b\n\n2") + "--1234--", vec![("a", "1")], vec![]),
        ];
        for (body, args, files) in cases {
            let form = parse(b"1234", &crlf(&body)).unwrap_or_else(|e| panic!("{body:?}: {e}"));
            let mut want = BodyArguments::default();
            for (name, value) in args {
                want.arguments
                    .entry(name.to_string())
                    .or_default()
                    .push(value.as_bytes().to_vec());
            }
            for (name, filename, content_type, body) in files {
                want.files
                    .entry(name.to_string())
                    .or_default()
                    .push(HttpFile {
                        filename: filename.to_string(),
                        content_type: content_type.to_string(),
                        body: body.as_bytes().to_vec(),
                    });
            }
            assert_eq!(form, want, "{body:?}");
        }
    }

    #[test]
    fn special_filenames() {
        // Tornado's test_special_filenames: escaped with \\ and \".
        let names = [
            "a;b.txt",
            "a\"b.txt",
            "a\";b.txt",
            "a;\"b.txt",
            "a\";\";.txt",
            "a\\\"b.txt",
            "a\\b.txt",
            "a b.txt",
            "a\tb.txt",
        ];
        for name in names {
            let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
            let body = part(&format!("name=\"files\"; filename=\"{escaped}\""), "Foo") + "--1234--";
            let form = parse(b"1234", &crlf(&body)).unwrap();
            assert_eq!(form.files["files"][0].filename, name);
            assert_eq!(form.files["files"][0].body, b"Foo");
        }
        // Tornado's test_invalid_chars: control characters in a header.
        for name in ["a\rb.txt", "a\0b.txt", "a\x08b.txt"] {
            let body = format!(
                "--1234\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\r\nFoo\r\n--1234--"
            );
            assert_eq!(
                parse(b"1234", body.as_bytes()).unwrap_err(),
                FormError::InvalidPartHeader,
                "{name:?}"
            );
        }
    }

    #[test]
    fn quoted_boundaries() {
        let body = crlf(&(part("name=\"a\"", "1") + "--1234--"));
        assert_eq!(
            parse(b"\"1234\"", &body).unwrap().arguments["a"],
            [b"1".to_vec()]
        );
        let body = b"--a b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--a b--";
        assert_eq!(
            parse(b"\"a b\"", body).unwrap().arguments["x"],
            [b"1".to_vec()]
        );
    }

    #[test]
    fn crlf_or_lf_but_not_both() {
        let lf = b"--B\nContent-Disposition: form-data; name=a\n\n1\n2\n--B\nContent-Disposition: form-data; name=f; filename=f.txt\n\nx\n--B--\n";
        let form = parse(b"B", lf).unwrap();
        assert_eq!(form.arguments["a"], [b"1\n2".to_vec()]);
        assert_eq!(form.files["f"][0].body, b"x");
        // LF delimiters, CRLF headers: the blank line is not "\n\n".
        let mixed = b"--B\nContent-Disposition: form-data; name=a\r\n\r\n1\n--B--";
        assert_eq!(
            parse(b"B", mixed).unwrap_err(),
            FormError::MissingPartHeaders
        );
        // CRLF first, then LF only: no CRLF delimiter closes the part.
        let mixed = b"--B\r\nContent-Disposition: form-data; name=a\n\n1\n--B--";
        assert_eq!(parse(b"B", mixed).unwrap_err(), FormError::UnterminatedPart);
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        let cases: Vec<(&[u8], String, FormError)> = vec![
            (b"", String::new(), FormError::MissingBoundary),
            (b"\"\"", "--1234--".into(), FormError::MissingBoundary),
            (b"1234", String::new(), FormError::BodyTooShort),
            (b"1234", "--1234".into(), FormError::BodyTooShort),
            // Truncated: the final boundary never comes.
            (b"1234", part("name=a", "Foo"), FormError::NoFinalBoundary),
            (
                b"1234",
                "just some text, long enough".into(),
                FormError::NoFinalBoundary,
            ),
            (b"1234", "x--1234--".into(), FormError::NoFinalBoundary),
            // test_line_does_not_end_with_correct_line_break.
            (
                b"1234",
                "--1234\nContent-Disposition: form-data; name=a\n\nFoo--1234--".into(),
                FormError::UnterminatedPart,
            ),
            (
                b"1234",
                part("name=a", "1")
                    + "--1234\nContent-Disposition: form-data; name=b\n\n2 --1234--",
                FormError::UnterminatedPart,
            ),
            // test_missing_headers, and no blank line at all.
            (
                b"1234",
                "--1234\n\nFoo\n--1234--".into(),
                FormError::MissingPartHeaders,
            ),
            (
                b"1234",
                "--1234\nContent-Disposition: form-data; name=a\nFoo\n--1234--".into(),
                FormError::MissingPartHeaders,
            ),
            (
                b"1234",
                "--1234\n\n--1234--".into(),
                FormError::MissingPartHeaders,
            ),
            // test_invalid_content_disposition, a missing one, and no name.
            (
                b"1234",
                "--1234\nContent-Disposition: invalid; name=\"files\"\n\nFoo\n--1234--".into(),
                FormError::InvalidContentDisposition,
            ),
            (
                b"1234",
                "--1234\nContent-Type: text/plain\n\nFoo\n--1234--".into(),
                FormError::MissingContentDisposition,
            ),
            (
                b"1234",
                part("filename=\"ab.txt\"", "Foo") + "--1234--",
                FormError::MissingName,
            ),
            (
                b"1234",
                part("name=\"\"", "Foo") + "--1234--",
                FormError::MissingName,
            ),
            // Malformed header lines.
            (
                b"1234",
                "--1234\nContent-Disposition form-data; name=a\n\nFoo\n--1234--".into(),
                FormError::InvalidPartHeader,
            ),
            (
                b"1234",
                "--1234\nContent-Disposition: form-data;\n name=a\n\nFoo\n--1234--".into(),
                FormError::InvalidPartHeader,
            ),
            (
                b"1234",
                "--1234\nBad Name: x\nContent-Disposition: form-data; name=a\n\nFoo\n--1234--"
                    .into(),
                FormError::InvalidPartHeader,
            ),
            (
                b"1234",
                part("name=a", "1").replacen(
                    "\n\n",
                    "\nContent-Disposition: form-data; name=b\n\n",
                    1,
                ) + "--1234--",
                FormError::InvalidPartHeader,
            ),
        ];
        for (boundary, body, want) in cases {
            assert_eq!(parse(boundary, &crlf(&body)).unwrap_err(), want, "{body:?}");
        }
        let latin1 = b"--B\r\nContent-Disposition: form-data; name=\"\xe9\"\r\n\r\nx\r\n--B--";
        assert_eq!(
            parse(b"B", latin1).unwrap_err(),
            FormError::InvalidPartHeader
        );
    }

    #[test]
    fn limits() {
        // Tornado's test_multipart_config.
        let body = crlf("--1234\nContent-Disposition: form-data; name=\"files\"; filename=\"ab.txt\"\n\n--1234--");
        let no_parts = ParseBodyConfig {
            max_parts: 0,
            ..Default::default()
        };
        let err = parse_multipart_form_data(b"1234", &body, &no_parts).unwrap_err();
        assert_eq!(err, FormError::TooManyParts { limit: 0 });
        assert!(err.to_string().contains("more than 0 parts"));
        let small_headers = ParseBodyConfig {
            max_part_header_size: 10,
            ..Default::default()
        };
        let err = parse_multipart_form_data(b"1234", &body, &small_headers).unwrap_err();
        assert_eq!(err, FormError::PartHeaderTooLarge { limit: 10 });
        let disabled = ParseBodyConfig {
            multipart_enabled: false,
            ..Default::default()
        };
        let err = parse_multipart_form_data(b"1234", &body, &disabled).unwrap_err();
        assert_eq!(err.to_string(), "multipart/form-data parsing is disabled");

        // A header block of exactly the limit is fine; one byte more is not.
        let header = "Content-Disposition: form-data; name=a";
        let body = crlf(&format!("--1234\n{header}\n\nv\n--1234--"));
        let exact = ParseBodyConfig {
            max_part_header_size: header.len(),
            ..Default::default()
        };
        assert!(parse_multipart_form_data(b"1234", &body, &exact).is_ok());
        let under = ParseBodyConfig {
            max_part_header_size: header.len() - 1,
            ..Default::default()
        };
        assert!(parse_multipart_form_data(b"1234", &body, &under).is_err());

        // 100 parts are fine, 101 are not.
        let parts = |n: usize| {
            crlf(
                &((0..n)
                    .map(|i| part(&format!("name=a{i}"), "v"))
                    .collect::<String>()
                    + "--1234--"),
            )
        };
        assert_eq!(parse(b"1234", &parts(100)).unwrap().arguments.len(), 100);
        assert_eq!(
            parse(b"1234", &parts(101)).unwrap_err(),
            FormError::TooManyParts { limit: 100 }
        );
    }

    // The inputs below would take hours with a quadratic scan (each is
    // megabytes of near-misses); with a linear one they take milliseconds.
    // They assert what comes out, never how long it took.

    #[test]
    fn ten_thousand_parts_stop_at_the_limit() {
        let body = crlf(&(part("name=a", "v").repeat(10_000) + "--1234--"));
        assert_eq!(
            parse(b"1234", &body).unwrap_err(),
            FormError::TooManyParts { limit: 100 }
        );
        let empty_parts = "--1234\r\n".repeat(10_000) + "--1234--";
        assert_eq!(
            parse(b"1234", empty_parts.as_bytes()).unwrap_err(),
            FormError::TooManyParts { limit: 100 }
        );
    }

    #[test]
    fn a_five_mib_file_in_one_pass() {
        let mut content = Vec::with_capacity(5 << 20);
        while content.len() < 5 << 20 {
            // Near-misses of the delimiter: line ends and boundary prefixes.
            content.extend_from_slice(b"\r\n--123\r\n--1234x\r\n-");
            content.extend((0u8..=255).filter(|&b| b != b'\r'));
        }
        let mut body =
            b"--1234\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big.bin\"\r\n\r\n"
                .to_vec();
        body.extend_from_slice(&content);
        body.extend_from_slice(b"\r\n--1234--\r\n");
        let form = parse(b"1234", &body).unwrap();
        assert_eq!(form.files["f"][0].body, content);
    }

    #[test]
    fn huge_adversarial_headers_and_padding() {
        // Megabytes without a blank line: stopped at the header limit.
        let body = format!(
            "--1234\r\nContent-Disposition: form-data; name=a{}\r\n--1234--",
            "x".repeat(5 << 20)
        );
        assert_eq!(
            parse(b"1234", body.as_bytes()).unwrap_err(),
            FormError::PartHeaderTooLarge { limit: 10 * 1024 }
        );
        // Megabytes of candidate delimiters followed by padding, none valid.
        let body = format!(
            "--1234\r\nContent-Disposition: form-data; name=a\r\n\r\n{}\r\n--1234--",
            "\r\n--1234  x".repeat(500_000)
        );
        assert_eq!(
            parse(b"1234", body.as_bytes()).unwrap().arguments["a"][0].len(),
            11 * 500_000
        );
        // Tornado's test_disposition_param_linear_performance, larger.
        let semis = ";".repeat(1 << 20);
        let body = format!("--1234\r\nContent-Disposition: form-data; x=\"{semis}\"; name=\"files\"; filename=\"a.txt\"\r\n\r\nFoo\r\n--1234--\r\n");
        let big_headers = ParseBodyConfig {
            max_part_header_size: 2 << 20,
            ..Default::default()
        };
        let form = parse_multipart_form_data(b"1234", body.as_bytes(), &big_headers).unwrap();
        assert_eq!(form.files["files"][0].filename, "a.txt");
        // A preamble of a million near-miss lines.
        let body = "\n--123".repeat(1_000_000)
            + "\n--1234\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--1234--";
        assert_eq!(
            parse(b"1234", body.as_bytes()).unwrap().arguments["a"],
            [b"1".to_vec()]
        );
    }
}
