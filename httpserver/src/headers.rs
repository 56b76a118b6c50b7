//! [`HttpHeaders`]: case-insensitive, multi-valued, order-preserving header
//! fields (Tornado's `httputil.HTTPHeaders`).

use std::borrow::Cow;
use std::fmt;

/// Why a header field could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// A line without a colon.
    MissingColon,
    /// A name that is empty or holds a character outside the `token` set
    /// (including whitespace before the colon).
    InvalidName,
    /// A value holding NUL, CR, LF or another control character.
    InvalidValue,
    /// An obsolete line folding (a line starting with whitespace); RFC 9112
    /// §5.2 lets a server reject it, and we do.
    ObsoleteFold,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderError::MissingColon => "a header line has no colon",
            HeaderError::InvalidName => "a header name is not a valid token",
            HeaderError::InvalidValue => "a header value holds a control character",
            HeaderError::ObsoleteFold => "a header uses obsolete line folding",
        })
    }
}

impl std::error::Error for HeaderError {}

/// Bytes as Latin-1 text: ASCII copied as it is, other bytes one char each.
fn latin1(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.is_ascii() => text.to_owned(),
        _ => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// Whether `b` may appear in a `token` (RFC 9110 §5.6.2).
pub(crate) fn is_token_byte(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Whether `name` is a valid field name.
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_token_byte)
}

/// Whether `value` is a valid field value: no control character but
/// horizontal tab (so no CR/LF header injection).
pub fn is_valid_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Header fields of a request or response.
///
/// Names compare case-insensitively and keep the case they were added with;
/// a name may repeat; iteration is in insertion order.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::HttpHeaders;
///
/// let mut h = HttpHeaders::new();
/// h.add("Set-Cookie", "a=1");
/// h.add("set-cookie", "b=2");
/// h.insert("Content-Type", "text/plain");
/// assert_eq!(h.get("content-type"), Some("text/plain"));
/// assert_eq!(h.get_all("SET-COOKIE").collect::<Vec<_>>(), ["a=1", "b=2"]);
/// assert_eq!(h.get_joined("set-cookie").as_deref(), Some("a=1,b=2"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpHeaders {
    /// `(name, value)` in insertion order.
    entries: Vec<(String, String)>,
}

impl HttpHeaders {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// No headers, with room for `n` fields.
    pub fn with_capacity(n: usize) -> Self {
        HttpHeaders {
            entries: Vec::with_capacity(n),
        }
    }

    /// Parses a header block: `Name: value` lines separated by CRLF or LF,
    /// optionally ended by an empty line. Values are decoded as Latin-1, as
    /// HTTP/1.1 allows (Tornado does the same). Tornado: `HTTPHeaders.parse`.
    ///
    /// # Errors
    ///
    /// A [`HeaderError`] for the first malformed line.
    pub fn parse(block: &[u8]) -> Result<HttpHeaders, HeaderError> {
        let mut headers = HttpHeaders::new();
        for line in block.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            headers.parse_line(line)?;
        }
        Ok(headers)
    }

    /// Adds one `Name: value` line.
    pub(crate) fn parse_line(&mut self, line: &[u8]) -> Result<(), HeaderError> {
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(HeaderError::ObsoleteFold);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HeaderError::MissingColon)?;
        self.add_raw(&line[..colon], &line[colon + 1..])
    }

    /// Adds a field from its raw name and value bytes (value not yet
    /// trimmed), checking both as [`parse`](Self::parse) does.
    pub(crate) fn add_raw(&mut self, name: &[u8], value: &[u8]) -> Result<(), HeaderError> {
        if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
            return Err(HeaderError::InvalidName);
        }
        let value = trim_ows(value);
        if !value
            .iter()
            .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        {
            return Err(HeaderError::InvalidValue);
        }
        // Names are ASCII tokens; values are Latin-1, one char per byte
        // (ASCII, the usual case, is copied as it is).
        let name = latin1(name);
        let value = latin1(value);
        self.entries.push((name, value));
        Ok(())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order. Tornado: `get_list`.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` joined with commas, as Tornado's `headers[name]`
    /// returns them.
    pub fn get_joined<'a>(&'a self, name: &'a str) -> Option<Cow<'a, str>> {
        let mut values = self.get_all(name);
        let first = values.next()?;
        match values.next() {
            None => Some(Cow::Borrowed(first)),
            Some(second) => {
                let mut joined = format!("{first},{second}");
                for v in values {
                    joined.push(',');
                    joined.push_str(v);
                }
                Some(Cow::Owned(joined))
            }
        }
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Adds a value, keeping existing ones (Tornado: `add`).
    ///
    /// # Panics
    ///
    /// If `name` is not a token or `value` holds a control character (CR/LF
    /// would let a caller inject headers); check with
    /// [`is_valid_header_name`]/[`is_valid_header_value`] or use
    /// [`try_add`](HttpHeaders::try_add) for untrusted input.
    pub fn add(&mut self, name: impl Into<String>, value: impl Into<String>) {
        if let Err(e) = self.try_add(name, value) {
            panic!("invalid header: {e}");
        }
    }

    /// Adds a value, or returns why it is invalid.
    ///
    /// # Errors
    ///
    /// [`HeaderError::InvalidName`] or [`HeaderError::InvalidValue`].
    pub fn try_add(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), HeaderError> {
        let (name, value) = (name.into(), value.into());
        if !is_valid_header_name(&name) {
            return Err(HeaderError::InvalidName);
        }
        if !is_valid_header_value(&value) {
            return Err(HeaderError::InvalidValue);
        }
        self.entries.push((name, value));
        Ok(())
    }

    /// Replaces every value of `name` with `value` (Tornado: `headers[name] =
    /// value`). The field keeps the position of its first occurrence.
    ///
    /// # Panics
    ///
    /// As [`add`](HttpHeaders::add).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        assert!(is_valid_header_name(&name), "invalid header name {name:?}");
        assert!(
            is_valid_header_value(&value),
            "invalid header value for {name}"
        );
        match self
            .entries
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(at) => {
                self.entries[at].1 = value;
                let mut i = at + 1;
                while i < self.entries.len() {
                    if self.entries[i].0.eq_ignore_ascii_case(&name) {
                        self.entries.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            None => self.entries.push((name, value)),
        }
    }

    /// Removes every value of `name`; returns whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.entries.len() != before
    }

    /// Every `(name, value)` pair in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of fields (a repeated name counts each time).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Trims optional whitespace (spaces and tabs) at both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

impl fmt::Debug for HttpHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a HttpHeaders {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_block_with_crlf_or_lf() {
        let h =
            HttpHeaders::parse(b"Host: a\r\nX-A:  1 \r\nx-a: 2\nContent-Length:3\r\n\r\n").unwrap();
        assert_eq!(h.get("host"), Some("a"));
        assert_eq!(h.get_all("X-A").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(h.get("content-length"), Some("3"));
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn malformed_lines_are_rejected() {
        let cases: &[(&[u8], HeaderError)] = &[
            (b"NoColon\r\n", HeaderError::MissingColon),
            (b"Bad Name: x\r\n", HeaderError::InvalidName),
            (b"Name : x\r\n", HeaderError::InvalidName),
            (b": x\r\n", HeaderError::InvalidName),
            (b"X: a\0b\r\n", HeaderError::InvalidValue),
            (b"X: a\rb\r\n", HeaderError::InvalidValue),
            (b"X: 1\r\n 2\r\n", HeaderError::ObsoleteFold),
            (b"X: 1\r\n\t2\r\n", HeaderError::ObsoleteFold),
        ];
        for (block, want) in cases {
            assert_eq!(
                HttpHeaders::parse(block).unwrap_err(),
                *want,
                "{:?}",
                String::from_utf8_lossy(block)
            );
        }
    }

    #[test]
    fn latin1_values_survive() {
        let h = HttpHeaders::parse(b"X: caf\xe9\r\n").unwrap();
        assert_eq!(h.get("x"), Some("caf\u{e9}"));
    }

    #[test]
    fn insert_replaces_all_and_keeps_position() {
        let mut h = HttpHeaders::new();
        h.add("A", "1");
        h.add("B", "2");
        h.add("a", "3");
        h.insert("A", "9");
        assert_eq!(h.iter().collect::<Vec<_>>(), [("A", "9"), ("B", "2")]);
        assert!(h.remove("b"));
        assert!(!h.remove("b"));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn injection_is_refused() {
        let mut h = HttpHeaders::new();
        assert_eq!(
            h.try_add("X", "a\r\nEvil: 1"),
            Err(HeaderError::InvalidValue)
        );
        assert_eq!(h.try_add("X Y", "a"), Err(HeaderError::InvalidName));
        assert!(h.is_empty());
    }

    #[test]
    fn get_joined_joins_with_commas() {
        let h = HttpHeaders::parse(b"A: 1\r\nA: 2\r\nA: 3\r\n").unwrap();
        assert_eq!(h.get_joined("a").as_deref(), Some("1,2,3"));
        assert_eq!(h.get_joined("missing"), None);
    }
}
