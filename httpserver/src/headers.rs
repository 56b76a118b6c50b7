//! [`HttpHeaders`]: case-insensitive, multi-valued, order-preserving header
//! fields (Tornado's `httputil.HTTPHeaders`).

use std::borrow::Cow;
use std::cell::RefCell;
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

/// Appends bytes as Latin-1 text: ASCII copied as it is, other bytes one
/// char each.
fn push_latin1(text: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(ascii) if ascii.is_ascii() => text.push_str(ascii),
        _ => text.extend(bytes.iter().map(|&b| b as char)),
    }
}

/// A byte table: ASCII letters and digits, and the bytes of `extra`.
pub(crate) const fn alnum_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    let mut b = 0;
    while b < 256 {
        if (b as u8).is_ascii_alphanumeric() {
            table[b] = true;
        }
        b += 1;
    }
    table
}

/// Bytes allowed in a `token` (RFC 9110 §5.6.2), as a table: one load per
/// byte instead of a chain of comparisons.
static TOKEN: [bool; 256] = alnum_and(b"!#$%&'*+-.^_`|~");

/// Whether `b` may appear in a `token` (RFC 9110 §5.6.2).
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Whether `name` is a valid field name.
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().fold(true, |ok, b| ok & is_token_byte(b))
}

/// Whether `b` may appear in a field value: anything but a control
/// character, horizontal tab excepted.
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// Whether `value` is a valid field value: no control character but
/// horizontal tab (so no CR/LF header injection).
pub fn is_valid_header_value(value: &str) -> bool {
    all_value_bytes(value.as_bytes())
}

/// Whether every byte may appear in a field value. A fold without early
/// exit, so the compiler checks many bytes per instruction.
fn all_value_bytes(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| ok & is_value_byte(b))
}

/// A field that must appear once appeared more than once
/// ([`HttpHeaders::get_once`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Repeated;

/// Header fields of a request or response.
///
/// Names compare case-insensitively and keep the case they were added with;
/// a name may repeat; iteration is in insertion order.
///
/// The text of every field lives in one buffer, so a head costs two
/// allocations however many fields it has (and none for an empty one).
/// A dropped map of a usual size leaves its two buffers to the next map
/// made on the same thread, so a server answering request after request
/// allocates none for its headers.
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
#[derive(Default)]
pub struct HttpHeaders {
    /// Every name and value, back to back (replaced and removed fields
    /// leave their text behind until [`compact`](Self::compact)).
    text: String,
    /// The fields in insertion order: where each one's text lies.
    fields: Vec<Field>,
    /// Bytes of `text` still used by a field.
    live: usize,
    /// Bit `n % 64` set when a field whose name is `n` bytes long may be
    /// present: most lookups are for fields a message does not have
    /// (`Transfer-Encoding`, `Expect`, `Date`…), and this answers them
    /// without a scan. Never cleared by a removal (a stale bit only costs
    /// the scan).
    name_lengths: u64,
}

/// One field: its name at `text[start..name_end]`, its value at
/// `text[value..end]` (right after the name, until a replacement appends
/// a new value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    /// Where the name starts.
    start: u32,
    /// Where the name ends.
    name_end: u32,
    /// Where the value starts.
    value: u32,
    /// Where the value ends.
    end: u32,
}

impl Field {
    /// Bytes of text the field uses.
    fn size(&self) -> usize {
        (self.name_end - self.start + self.end - self.value) as usize
    }
}

/// Whether `field` (a field of `text`) is named `name`, case-insensitively
/// (lengths compared first: most fields are told apart without reading
/// their text).
#[inline(always)]
fn field_named(text: &str, field: &Field, name: &str) -> bool {
    // Inlined into every scan: the length test is a compare, and only a
    // field of the same length pays for a call comparing text.
    (field.name_end - field.start) as usize == name.len() && same_name(text, field, name)
}

/// Whether a field's name, of `name`'s length, is `name` in any case.
fn same_name(text: &str, field: &Field, name: &str) -> bool {
    let stored = &text.as_bytes()[field.start as usize..field.name_end as usize];
    // Mostly both are written the usual way (`Content-Length`): a plain
    // comparison settles it; the case-blind one only runs when it fails.
    stored == name.as_bytes() || stored.eq_ignore_ascii_case(name.as_bytes())
}

/// A text offset as stored in a [`Field`].
fn offset(at: usize) -> u32 {
    u32::try_from(at).expect("header text past 4 GiB")
}

/// The bit of [`HttpHeaders::name_lengths`] for a name `len` bytes long.
fn length_bit(len: usize) -> u64 {
    1 << (len % 64)
}

/// Room for the first field's text: enough for a typical response head.
const FIRST_TEXT: usize = 256;
/// Room for the first fields.
const FIRST_FIELDS: usize = 8;
/// Most spare buffer pairs one thread keeps.
const SPARE_STORAGE: usize = 64;
/// Largest text buffer kept as a spare (a head with long cookies is freed).
const SPARE_TEXT_MAX: usize = 2048;
/// Most fields a spare field table holds.
const SPARE_FIELDS_MAX: usize = 32;

thread_local! {
    /// Storage of dropped header maps, emptied, for the next ones: a server
    /// builds two maps per request (the request's, the response's) and this
    /// spares their four allocations. Bounded in count and size.
    static SPARE: RefCell<Vec<(String, Vec<Field>)>> = const { RefCell::new(Vec::new()) };
}

/// Empty storage from this thread's spares, if there is one.
fn spare_storage() -> Option<(String, Vec<Field>)> {
    SPARE
        .try_with(|spare| spare.borrow_mut().pop())
        .ok()
        .flatten()
}

impl HttpHeaders {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// No headers, with room for `n` fields.
    pub fn with_capacity(n: usize) -> Self {
        let mut headers = HttpHeaders::new();
        if n > 0 {
            headers.reserve_first(n * 24);
            headers.fields.reserve(n);
        }
        headers
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
        let value = checked_field(name, value)?;
        // Names are ASCII tokens; values are Latin-1, one char per byte
        // (ASCII, the usual case, is copied as it is).
        self.reserve_first(name.len() + value.len());
        let start = self.text.len();
        push_latin1(&mut self.text, name);
        let middle = self.text.len();
        push_latin1(&mut self.text, value);
        self.push_field(start, middle);
        Ok(())
    }

    /// Adds a field as httparse parsed it, from a head that is all ASCII
    /// (checked whole, so no UTF-8 check per field), without checking it
    /// again: httparse let through only a token for its name and, for its
    /// value, tab, space, visible ASCII and obs-text, trimmed of whitespace
    /// at both ends — what [`add_raw`](Self::add_raw) checks for. (Debug
    /// builds check again, so a test run would catch an httparse that
    /// stopped doing so; re-checking costs ~220 instructions a field.)
    pub(crate) fn add_parsed_ascii(&mut self, name: &str, value: &str) {
        debug_assert!(
            checked_field(name.as_bytes(), value.as_bytes())
                .is_ok_and(|checked| checked.len() == value.len()),
            "httparse let through {name:?}: {value:?}"
        );
        self.push(name, value);
    }

    /// Before the first field: the storage of a dropped map from this
    /// thread's spares if there is one, and room for a typical head at once,
    /// rather than growing the buffers a few bytes at a time.
    fn reserve_first(&mut self, bytes: usize) {
        if self.text.capacity() == 0 {
            if self.fields.capacity() == 0 {
                if let Some((text, fields)) = spare_storage() {
                    (self.text, self.fields) = (text, fields);
                }
            }
            self.text.reserve(bytes.max(FIRST_TEXT));
        }
        if self.fields.capacity() == 0 {
            self.fields.reserve(FIRST_FIELDS);
        }
    }

    /// Records the field whose name is `text[start..middle]` and whose value
    /// runs from `middle` to the end of the text.
    fn push_field(&mut self, start: usize, middle: usize) {
        let end = self.text.len();
        self.fields.push(Field {
            start: offset(start),
            name_end: offset(middle),
            value: offset(middle),
            end: offset(end),
        });
        self.live += end - start;
        self.name_lengths |= length_bit(middle - start);
    }

    /// Appends a field already checked.
    fn push(&mut self, name: &str, value: &str) {
        self.reserve_first(name.len() + value.len());
        let start = self.text.len();
        self.text.push_str(name);
        let middle = self.text.len();
        self.text.push_str(value);
        self.push_field(start, middle);
    }

    /// A field's name.
    fn name_of(&self, field: &Field) -> &str {
        &self.text[field.start as usize..field.name_end as usize]
    }

    /// Whether a field is named `name` (lengths compared first: most
    /// fields are told apart without reading their text).
    #[inline(always)]
    fn is_named(&self, field: &Field, name: &str) -> bool {
        field_named(&self.text, field, name)
    }

    /// A field's value.
    fn value_of(&self, field: &Field) -> &str {
        &self.text[field.value as usize..field.end as usize]
    }

    /// Whether a field named `name` may be present (false: surely not).
    #[inline(always)]
    fn may_have(&self, name: &str) -> bool {
        self.name_lengths & length_bit(name.len()) != 0
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        if !self.may_have(name) {
            return None;
        }
        self.fields
            .iter()
            .find(|f| self.is_named(f, name))
            .map(|f| self.value_of(f))
    }

    /// Every value of `name`, in order. Tornado: `get_list`.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let fields = if self.may_have(name) {
            &self.fields[..]
        } else {
            &[]
        };
        fields
            .iter()
            .filter(move |f| self.is_named(f, name))
            .map(|f| self.value_of(f))
    }

    /// The value of `name` when it appears at most once (`None`: not at
    /// all); [`Repeated`] when it appears more than once — what a field
    /// that must not repeat (`Host`, `Content-Length`) is read with.
    pub(crate) fn get_once(&self, name: &str) -> Result<Option<&str>, Repeated> {
        if !self.may_have(name) {
            return Ok(None);
        }
        let mut found = None;
        for field in &self.fields {
            if self.is_named(field, name) {
                if found.is_some() {
                    return Err(Repeated);
                }
                found = Some(field);
            }
        }
        Ok(found.map(|field| self.value_of(field)))
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
    #[inline]
    pub fn contains(&self, name: &str) -> bool {
        // Inlined, the length test settles most lookups (a response's
        // headers asked for `Content-Length`, `Transfer-Encoding`…) without
        // a call.
        self.may_have(name) && self.get(name).is_some()
    }

    /// Adds a value, keeping existing ones (Tornado: `add`).
    ///
    /// # Panics
    ///
    /// If `name` is not a token or `value` holds a control character (CR/LF
    /// would let a caller inject headers); check with
    /// [`is_valid_header_name`]/[`is_valid_header_value`] or use
    /// [`try_add`](HttpHeaders::try_add) for untrusted input.
    pub fn add(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
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
        name: impl AsRef<str>,
        value: impl AsRef<str>,
    ) -> Result<(), HeaderError> {
        let (name, value) = (name.as_ref(), value.as_ref());
        if !is_valid_header_name(name) {
            return Err(HeaderError::InvalidName);
        }
        if !is_valid_header_value(value) {
            return Err(HeaderError::InvalidValue);
        }
        self.push(name, value);
        Ok(())
    }

    /// Replaces every value of `name` with `value` (Tornado: `headers[name] =
    /// value`). The field keeps the position of its first occurrence.
    ///
    /// # Panics
    ///
    /// As [`add`](HttpHeaders::add).
    pub fn insert(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        let (name, value) = (name.as_ref(), value.as_ref());
        assert!(is_valid_header_name(name), "invalid header name {name:?}");
        assert!(
            is_valid_header_value(value),
            "invalid header value for {name}"
        );
        let Some(at) = self.position(name) else {
            self.push(name, value);
            return;
        };
        let start = self.text.len();
        self.text.push_str(value);
        self.replace_value(at, name, start);
    }

    /// As [`insert`](HttpHeaders::insert), the value formatted from a
    /// `Display` straight into the map (no string made for it first), or
    /// why it is invalid: then the map is as it was.
    ///
    /// # Errors
    ///
    /// [`HeaderError::InvalidName`] or [`HeaderError::InvalidValue`].
    pub fn try_insert_display(
        &mut self,
        name: &str,
        value: impl fmt::Display,
    ) -> Result<(), HeaderError> {
        self.append_display(name, value, true)
    }

    /// As [`try_add`](HttpHeaders::try_add), the value formatted from a
    /// `Display` straight into the map; on an error the map is as it was.
    ///
    /// # Errors
    ///
    /// [`HeaderError::InvalidName`] or [`HeaderError::InvalidValue`].
    pub fn try_add_display(
        &mut self,
        name: &str,
        value: impl fmt::Display,
    ) -> Result<(), HeaderError> {
        self.append_display(name, value, false)
    }

    /// Formats `value` at the end of the text — as the new value of the
    /// first field named `name` when `replace` finds one, else after `name`
    /// as a new field — and records it once its bytes proved valid; else
    /// cuts it off.
    fn append_display(
        &mut self,
        name: &str,
        value: impl fmt::Display,
        replace: bool,
    ) -> Result<(), HeaderError> {
        if !is_valid_header_name(name) {
            return Err(HeaderError::InvalidName);
        }
        let found = if replace { self.position(name) } else { None };
        self.reserve_first(name.len() + 16);
        let start = self.text.len();
        if found.is_none() {
            self.text.push_str(name);
        }
        let middle = self.text.len();
        // Writing to a `String` cannot fail.
        let _ = fmt::Write::write_fmt(&mut self.text, format_args!("{value}"));
        if !all_value_bytes(&self.text.as_bytes()[middle..]) {
            self.text.truncate(start);
            return Err(HeaderError::InvalidValue);
        }
        match found {
            None => self.push_field(start, middle),
            Some(at) => self.replace_value(at, name, middle),
        }
        Ok(())
    }

    /// Where the first field named `name` is.
    fn position(&self, name: &str) -> Option<usize> {
        if !self.may_have(name) {
            return None;
        }
        self.fields.iter().position(|f| self.is_named(f, name))
    }

    /// Makes `text[start..]` (just appended) the value of field `at`, named
    /// `name`, and removes the later fields of that name: the first
    /// occurrence keeps its name as first written (the old value is left as
    /// garbage until a compaction: no bytes move).
    fn replace_value(&mut self, at: usize, name: &str, start: usize) {
        let old = self.fields[at];
        let end = self.text.len();
        self.fields[at].value = offset(start);
        self.fields[at].end = offset(end);
        self.live += end - start;
        self.live -= (old.end - old.value) as usize;
        let mut i = at + 1;
        while i < self.fields.len() {
            if self.is_named(&self.fields[i], name) {
                let gone = self.fields.remove(i);
                self.live -= gone.size();
            } else {
                i += 1;
            }
        }
        self.compact_if_sparse();
    }

    /// Removes every value of `name`; returns whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        if !self.may_have(name) {
            return false;
        }
        let before = self.fields.len();
        let mut gone = 0;
        let text = &self.text;
        self.fields.retain(|f| {
            let keep = !field_named(text, f, name);
            if !keep {
                gone += f.size();
            }
            keep
        });
        self.live -= gone;
        self.compact_if_sparse();
        self.fields.len() != before
    }

    /// Rewrites the text without the bytes of replaced and removed fields
    /// once they are most of it.
    fn compact_if_sparse(&mut self) {
        if self.text.len() <= 2 * self.live + FIRST_TEXT {
            return;
        }
        let mut text = String::with_capacity(self.live);
        for f in &mut self.fields {
            let start = text.len();
            text.push_str(&self.text[f.start as usize..f.name_end as usize]);
            let middle = text.len();
            text.push_str(&self.text[f.value as usize..f.end as usize]);
            *f = Field {
                start: offset(start),
                name_end: offset(middle),
                value: offset(middle),
                end: offset(text.len()),
            };
        }
        self.text = text;
    }

    /// Every `(name, value)` pair in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|f| (self.name_of(f), self.value_of(f)))
    }

    /// Number of fields (a repeated name counts each time).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl Clone for HttpHeaders {
    /// A copy, in spare storage when this thread has some (so a map of
    /// default headers copied per response costs no allocation).
    fn clone(&self) -> Self {
        let mut copy = HttpHeaders::new();
        if !self.fields.is_empty() {
            copy.reserve_first(self.text.len());
            copy.text.push_str(&self.text);
            copy.fields.extend_from_slice(&self.fields);
        }
        copy.live = self.live;
        copy.name_lengths = self.name_lengths;
        copy
    }
}

impl Drop for HttpHeaders {
    /// Gives the storage to this thread's spares when it is of a usual size.
    fn drop(&mut self) {
        if self.text.capacity() == 0
            || self.text.capacity() > SPARE_TEXT_MAX
            || self.fields.capacity() > SPARE_FIELDS_MAX
        {
            return;
        }
        let mut text = std::mem::take(&mut self.text);
        let mut fields = std::mem::take(&mut self.fields);
        text.clear();
        fields.clear();
        let _ = SPARE.try_with(move |spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_STORAGE {
                spare.push((text, fields));
            }
        });
    }
}

impl PartialEq for HttpHeaders {
    /// The same fields in the same order (names compared as written).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for HttpHeaders {}

/// A number as header text, formatted on the stack, so that
/// `headers.insert("Content-Length", Decimal::from(n))` costs no allocation
/// (`n.to_string()` would cost one per response).
///
/// ```
/// use whirl_httpserver::{Decimal, HttpHeaders};
///
/// let mut h = HttpHeaders::new();
/// h.insert("Content-Length", Decimal::from(1234_usize));
/// assert_eq!(h.get("content-length"), Some("1234"));
/// assert_eq!(Decimal::from(u64::MAX).as_ref(), u64::MAX.to_string());
/// ```
#[derive(Clone, Copy)]
pub struct Decimal {
    /// The digits, right-aligned.
    digits: [u8; 20],
    /// Where the first digit is.
    start: u8,
}

impl From<u64> for Decimal {
    fn from(mut n: u64) -> Decimal {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Decimal {
            digits,
            start: start as u8,
        }
    }
}

impl From<usize> for Decimal {
    fn from(n: usize) -> Decimal {
        Decimal::from(n as u64)
    }
}

impl Decimal {
    /// The digits as bytes, for writing them out (no UTF-8 check, which
    /// [`as_ref`](AsRef::as_ref) pays to make a `str`).
    ///
    /// ```
    /// assert_eq!(whirl_httpserver::Decimal::from(1234_u64).as_bytes(), b"1234");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.digits[usize::from(self.start)..]
    }
}

impl AsRef<str> for Decimal {
    fn as_ref(&self) -> &str {
        // Only ASCII digits were written.
        std::str::from_utf8(self.as_bytes()).unwrap_or("0")
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ref())
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ref())
    }
}

/// Checks a raw field: its name a token, its value (returned trimmed of
/// optional whitespace) free of control characters.
fn checked_field<'v>(name: &[u8], value: &'v [u8]) -> Result<&'v [u8], HeaderError> {
    if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
        return Err(HeaderError::InvalidName);
    }
    let value = trim_ows(value);
    if !all_value_bytes(value) {
        return Err(HeaderError::InvalidValue);
    }
    Ok(value)
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
    fn a_dropped_map_leaves_its_storage_to_the_next() {
        let mut first = HttpHeaders::new();
        first.add("Content-Type", "text/plain");
        let (text, fields) = (first.text.as_ptr(), first.fields.as_ptr());
        drop(first);
        let mut second = HttpHeaders::new();
        assert_eq!(second.text.capacity(), 0, "nothing taken before a field");
        second.add("Host", "example.com");
        assert_eq!(
            (second.text.as_ptr(), second.fields.as_ptr()),
            (text, fields)
        );
        assert_eq!(second.iter().collect::<Vec<_>>(), [("Host", "example.com")]);
        // A map grown past the kept size is freed, not kept.
        let mut large = HttpHeaders::new();
        large.add("X-Large", "x".repeat(SPARE_TEXT_MAX));
        drop(large);
        assert_eq!(SPARE.with(|spare| spare.borrow().len()), 0);
    }

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
    fn replacing_and_removing_keep_every_other_field() {
        let mut h = HttpHeaders::new();
        h.add("A", "1");
        h.add("B", "two");
        h.add("C", "3");
        h.add("b", "four");
        // Shorter or longer, the field keeps its place and its first name.
        h.insert("B", "2");
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [("A", "1"), ("B", "2"), ("C", "3")]
        );

        h.insert("a", "a much longer value");
        h.add("D", "4");
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [
                ("A", "a much longer value"),
                ("B", "2"),
                ("C", "3"),
                ("D", "4")
            ]
        );
        // Many replacements: the text is compacted, nothing lost.
        for i in 0..500 {
            h.insert("C", format!("value number {i}"));
            h.insert("A", format!("{i}"));
        }
        assert!(h.text.len() <= 2 * h.live + FIRST_TEXT, "{}", h.text.len());
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [
                ("A", "499"),
                ("B", "2"),
                ("C", "value number 499"),
                ("D", "4")
            ]
        );
        assert!(h.remove("b"));
        assert_eq!(h.get("D"), Some("4"));
        assert_eq!(h, {
            let mut other = HttpHeaders::new();
            other.add("A", "499");
            other.add("C", "value number 499");
            other.add("D", "4");
            other
        });
    }

    #[test]
    fn display_values_are_formatted_into_the_map_or_refused_leaving_it_as_it_was() {
        let mut h = HttpHeaders::new();
        h.add("A", "1");
        h.add("B", "2");
        h.add("a", "3");
        // Replaced (later values of the name go), added, new.
        assert_eq!(
            h.try_insert_display("a", format_args!("{}-{}", 4, "x")),
            Ok(())
        );
        assert_eq!(h.try_add_display("B", 22), Ok(()));
        assert_eq!(h.try_insert_display("Content-Length", 13), Ok(()));
        let fields = [
            ("A", "4-x"),
            ("B", "2"),
            ("B", "22"),
            ("Content-Length", "13"),
        ];
        assert_eq!(h.iter().collect::<Vec<_>>(), fields);
        // Refused, new field or replacement alike: nothing changes, and what
        // is added next reads as it should.
        let (snapshot, text_len) = (h.clone(), h.text.len());
        let evil = format_args!("{}\r\nSet-Cookie: x=1", "v");
        assert_eq!(
            h.try_insert_display("X-New", evil),
            Err(HeaderError::InvalidValue)
        );
        assert_eq!(
            h.try_insert_display("A", "nul\0"),
            Err(HeaderError::InvalidValue)
        );
        assert_eq!(
            h.try_add_display("B", "\x7f"),
            Err(HeaderError::InvalidValue)
        );
        assert_eq!(
            h.try_insert_display("X Y", 1),
            Err(HeaderError::InvalidName)
        );
        assert_eq!(h.try_add_display("", 1), Err(HeaderError::InvalidName));
        assert_eq!(h, snapshot);
        assert_eq!(h.text.len(), text_len, "the refused text was cut off");
        assert_eq!(h.iter().collect::<Vec<_>>(), fields);
        h.add("C", "c");
        assert_eq!(h.get("C"), Some("c"));
        assert_eq!(h.get("A"), Some("4-x"));
        // A long value in many pieces arrives whole; refused, whole too.
        let long = "é".repeat(200);
        h.try_insert_display("C", format_args!("{}{long}{}", 1, 2))
            .unwrap();
        assert_eq!(h.get("C"), Some(format!("1{long}2").as_str()));
        let tail = format_args!("{long}{}", "\nX-B: 1");
        assert_eq!(
            h.try_insert_display("C", tail),
            Err(HeaderError::InvalidValue)
        );
        assert_eq!(h.get("C"), Some(format!("1{long}2").as_str()));
        // Many replacements: compacted like `insert`'s, nothing lost.
        for i in 0..500 {
            h.try_insert_display("A", i).unwrap();
        }
        assert!(h.text.len() <= 2 * h.live + FIRST_TEXT, "{}", h.text.len());
        assert_eq!(h.get("A"), Some("499"));
        assert_eq!(h.len(), 5);
    }

    #[test]
    fn get_once_tells_a_repeated_field() {
        let mut h = HttpHeaders::new();
        assert_eq!(h.get_once("Host"), Ok(None));
        h.add("Date", "d"); // same length, other name
        assert_eq!(h.get_once("Host"), Ok(None));
        h.add("host", "a");
        assert_eq!(h.get_once("HOST"), Ok(Some("a")));
        h.add("Host", "b");
        assert_eq!(h.get_once("Host"), Err(Repeated));
        assert_eq!(h.get_once("Date"), Ok(Some("d")));
    }

    #[test]
    fn lookups_by_name_length_never_miss() {
        let long = "X".repeat(68); // 68 % 64 == 4, as "Host"
        let mut h = HttpHeaders::new();
        h.add(&long, "1");
        assert_eq!(h.get("Host"), None);
        assert_eq!(h.get("Date"), None);
        h.add("host", "a");
        assert_eq!(h.get("HOST"), Some("a"));
        assert_eq!(h.get(&long), Some("1"));
        assert!(h.remove("Host"));
        assert_eq!(h.get("host"), None);
        h.insert("Host", "b");
        assert_eq!(h.get_all("host").collect::<Vec<_>>(), ["b"]);
        assert_eq!(h.get("Content-Length"), None);
        assert_eq!(h.get_all("Content-Length").count(), 0);
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
