//! The pure parts of Tornado's `StaticFileHandler`: turning a URL path into a
//! file inside the static root, byte ranges, ETags and `If-Modified-Since`,
//! content types, versioned URLs and a bounded-memory chunk reader.
//!
//! Nothing here writes a response; the handler in the web layer calls these
//! functions in the order Tornado's `StaticFileHandler.get` does:
//!
//! 1. [`resolve_path`] — the matched URL path to a regular file inside the
//!    root, or a [`StaticError`] whose [`status`](StaticError::status) is the
//!    answer (403, 404, 400); a directory is [`ResolvedPath::Directory`].
//! 2. [`VersionCache::version`] → [`etag`], [`modified_time`],
//!    [`content_type`], [`cache_time`] — the headers.
//! 3. [`should_return_304`] — `If-None-Match` / `If-Modified-Since`.
//! 4. [`parse_range`] → [`resolve_range`] — 200, 206 with
//!    [`content_range_header`], or 416 with [`unsatisfiable_content_range`].
//! 5. [`ChunkReader`] — the body, at most [`CHUNK_SIZE`] bytes at a time.
//!
//! # Examples
//!
//! ```
//! use whirl_web::static_files::{
//!     content_range_header, etag, if_none_match_matches, parse_range, resolve_range,
//!     RangeOutcome,
//! };
//!
//! // `Range: bytes=-5` on a 100-byte file: the last five bytes.
//! let range = parse_range("bytes=-5").unwrap();
//! assert_eq!(resolve_range(range, 100), RangeOutcome::Partial { start: 95, end: 99 });
//! assert_eq!(content_range_header(95, 99, 100), "bytes 95-99/100");
//!
//! // A cached copy with the same version gets a 304.
//! let tag = etag("abc123");
//! assert_eq!(tag, "\"abc123\"");
//! assert!(if_none_match_matches("W/\"zzz\", W/\"abc123\"", &tag));
//! ```

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use sha2::{Digest, Sha512};
use whirl_httpserver::{parse_http_date, parse_qsl_bytes};

/// How long a versioned static URL may be cached: ten years, in seconds.
/// Tornado: `StaticFileHandler.CACHE_MAX_AGE`.
pub const CACHE_MAX_AGE: u64 = 86_400 * 365 * 10;

/// The largest file [`VersionCache`] will hash; larger files get no version
/// (no `?v=`, no ETag), so a `static_url` call cannot stall the loop for
/// long. Tornado: `StaticFileHandler.MAX_VERSION_CONTENT_SIZE` (64 MiB).
pub const MAX_VERSION_CONTENT_SIZE: u64 = 64 * 1024 * 1024;

/// How many versions a [`VersionCache`] keeps before it forgets the least
/// recently used. Tornado: `StaticFileHandler.MAX_CACHED_VERSIONS`.
pub const MAX_CACHED_VERSIONS: usize = 10_000;

/// The most bytes a [`ChunkReader`] yields at once, and the read size used
/// when hashing. Tornado: the `64 * 1024` in `StaticFileHandler.get_content`.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// How many hex digits of the version go into a static URL's `?v=`.
/// Tornado puts all 128 digits of the SHA-512 there; 32 (128 bits) are as
/// good a cache key and keep URLs short. The ETag keeps the whole hash.
pub const URL_VERSION_LEN: usize = 32;

/// Bytes escaped when a file path is written into a static URL: controls,
/// space, and the characters that end or confuse a URL path.
const URL_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Why a static path cannot be served; [`status`](Self::status) is the
/// answer to send. Tornado raises `HTTPError(403/404/400)` from
/// `StaticFileHandler.get_absolute_path`/`validate_absolute_path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticError {
    /// The path leaves the root, as written (`..`, an absolute path, a
    /// backslash, NUL) or through a symlink (403).
    OutsideRoot,
    /// The path names something that is neither a regular file nor a
    /// directory — a FIFO, a socket, a device (403).
    NotAFile,
    /// The file system refused to look (403).
    PermissionDenied,
    /// Nothing exists at the path (404).
    NotFound,
    /// The percent-decoded path is not UTF-8 (400).
    InvalidEncoding,
}

impl StaticError {
    /// The HTTP status to answer with. Tornado: the status of the
    /// `HTTPError` the static handler raises.
    ///
    /// # Examples
    ///
    /// ```
    /// use whirl_web::static_files::StaticError;
    ///
    /// assert_eq!(StaticError::OutsideRoot.status(), 403);
    /// assert_eq!(StaticError::NotFound.status(), 404);
    /// ```
    pub fn status(self) -> u16 {
        match self {
            StaticError::OutsideRoot | StaticError::NotAFile | StaticError::PermissionDenied => 403,
            StaticError::NotFound => 404,
            StaticError::InvalidEncoding => 400,
        }
    }

    /// The error for a failed `canonicalize` or `stat`: 403 when permission
    /// was denied, otherwise 404 (Tornado answers 404 whenever `os.stat`
    /// fails).
    fn from_io(err: &io::Error) -> StaticError {
        match err.kind() {
            io::ErrorKind::PermissionDenied => StaticError::PermissionDenied,
            _ => StaticError::NotFound,
        }
    }
}

impl fmt::Display for StaticError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StaticError::OutsideRoot => "the path is not in the root static directory",
            StaticError::NotAFile => "the path is not a regular file",
            StaticError::PermissionDenied => "permission to read the path was denied",
            StaticError::NotFound => "no file exists at the path",
            StaticError::InvalidEncoding => "the path is not UTF-8 once percent-decoded",
        })
    }
}

impl std::error::Error for StaticError {}

/// Where a static path led: a regular file, or a directory the caller may
/// serve an index for. Tornado: `StaticFileHandler.absolute_path` after
/// `validate_absolute_path`.
#[derive(Debug, Clone)]
pub enum ResolvedPath {
    /// A regular file inside the root, with the metadata read while
    /// checking it (so size and mtime describe the file that was checked).
    File {
        /// The canonical path of the file (symlinks resolved).
        path: PathBuf,
        /// The file's metadata, from the same `stat` that saw a regular file.
        metadata: Metadata,
    },
    /// A directory inside the root (canonical path). Tornado redirects a
    /// directory URL without a trailing `/` (answering 403 when the URL path
    /// starts with `//`), then serves `default_filename` from it through
    /// [`resolve_default_file`]; without a default file it answers 403.
    Directory(PathBuf),
}

/// Resolves a URL path matched by a static route to a file under `root`.
/// Tornado: `StaticFileHandler.get_absolute_path` + `validate_absolute_path`.
///
/// `requested` is the path **as it appears in the URL**, still
/// percent-encoded; it is decoded here exactly once (the caller must not
/// decode it first, or `%2525` would become `%`). After decoding, the path
/// is refused with [`StaticError::OutsideRoot`] if it contains a `..`
/// segment (so `%2e%2e` too), a backslash, a NUL or, on Windows, a colon,
/// or if it is absolute. Empty and `.` segments are ignored. The joined path
/// is then canonicalized (symlinks resolved) and must still lie inside the
/// canonicalized `root`: a symlink that points out of the root is
/// [`StaticError::OutsideRoot`] as well. Tornado is a little more lenient
/// with `..` that stays inside the root (`a/../b`); here any `..` is refused.
///
/// Both `root` and the file are canonicalized on each call: a handful of
/// `stat`s, no reads.
///
/// # Errors
///
/// [`StaticError::InvalidEncoding`] (400) when the decoded path is not
/// UTF-8; [`StaticError::OutsideRoot`] (403) as above;
/// [`StaticError::NotFound`] (404) when nothing is there, or the root itself
/// does not exist; [`StaticError::PermissionDenied`] (403);
/// [`StaticError::NotAFile`] (403) for FIFOs, sockets and devices.
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// use whirl_web::static_files::{resolve_path, StaticError};
///
/// let root = std::env::temp_dir();
/// assert_eq!(resolve_path(&root, "../etc/passwd").unwrap_err(), StaticError::OutsideRoot);
/// assert_eq!(resolve_path(&root, "%2e%2e/etc/passwd").unwrap_err().status(), 403);
/// ```
pub fn resolve_path(root: &Path, requested: &str) -> Result<ResolvedPath, StaticError> {
    let decoded = percent_decode_str(requested)
        .decode_utf8()
        .map_err(|_| StaticError::InvalidEncoding)?;
    resolve_relative(root, &decoded)
}

/// Resolves `default_filename` (such as `index.html`) inside a directory
/// that [`resolve_path`] returned, with the same checks: the result must be
/// a regular file inside `root`, even if `default_filename` is a symlink.
/// Tornado: the `default_filename` branch of
/// `StaticFileHandler.validate_absolute_path`.
///
/// # Errors
///
/// As [`resolve_path`], except that `default_filename` is not
/// percent-decoded. A `default_filename` that is itself a directory comes
/// back as [`ResolvedPath::Directory`].
pub fn resolve_default_file(
    root: &Path,
    directory: &Path,
    default_filename: &str,
) -> Result<ResolvedPath, StaticError> {
    let relative = relative_path(default_filename)?;
    resolve_joined(root, &directory.join(relative))
}

/// Resolves a path that is already decoded (a template name, the argument
/// of `static_url`) with [`resolve_path`]'s checks.
pub(crate) fn resolve_relative(root: &Path, path: &str) -> Result<ResolvedPath, StaticError> {
    let relative = relative_path(path)?;
    resolve_joined(root, &root.join(relative))
}

/// Turns a decoded `a/b/c` into a relative path, refusing anything that
/// could leave the directory it is joined to.
fn relative_path(path: &str) -> Result<PathBuf, StaticError> {
    if path.contains(['\\', '\0']) || path.starts_with('/') {
        return Err(StaticError::OutsideRoot);
    }
    let mut relative = PathBuf::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(StaticError::OutsideRoot),
            // On Windows a colon names a drive (`C:x`) or an NTFS stream
            // (`file.txt:name`); neither belongs in a static URL.
            s if cfg!(windows) && s.contains(':') => return Err(StaticError::OutsideRoot),
            s => relative.push(s),
        }
    }
    Ok(relative)
}

/// Canonicalizes `joined`, checks it is inside the canonical `root`, and
/// sorts it into file / directory / neither.
fn resolve_joined(root: &Path, joined: &Path) -> Result<ResolvedPath, StaticError> {
    let root = root.canonicalize().map_err(|e| StaticError::from_io(&e))?;
    let path = joined
        .canonicalize()
        .map_err(|e| StaticError::from_io(&e))?;
    if !path.starts_with(&root) {
        return Err(StaticError::OutsideRoot);
    }
    let metadata = fs::metadata(&path).map_err(|e| StaticError::from_io(&e))?;
    if metadata.is_file() {
        Ok(ResolvedPath::File { path, metadata })
    } else if metadata.is_dir() {
        Ok(ResolvedPath::Directory(path))
    } else {
        Err(StaticError::NotAFile)
    }
}

/// A single byte range as written in a `Range` header: the first and last
/// byte positions (inclusive), either of which may be absent — `(None,
/// Some(n))` is the suffix form "the last `n` bytes". Tornado: the tuple
/// `httputil._parse_request_range` returns (there in slice form).
pub type ByteRange = (Option<u64>, Option<u64>);

/// Parses a `Range` header holding a single byte range. Tornado:
/// `httputil._parse_request_range`.
///
/// Returns the positions **as written** (inclusive), not Tornado's slice
/// indexes: `bytes=0-0` → `(Some(0), Some(0))`, `bytes=5-` →
/// `(Some(5), None)`, the suffix form `bytes=-5` → `(None, Some(5))` ("the
/// last five bytes"), and `bytes=` → `(None, None)` (the whole file).
/// `None` — ignore the header and serve the whole file, as RFC 9110 §14.2
/// allows — for another unit, several ranges (`bytes=0-1,3-4`), or anything
/// that is not digits. The unit is matched without regard to case.
///
/// # Examples
///
/// ```
/// use whirl_web::static_files::parse_range;
///
/// assert_eq!(parse_range("bytes=1-2"), Some((Some(1), Some(2))));
/// assert_eq!(parse_range("bytes=-6"), Some((None, Some(6))));
/// assert_eq!(parse_range("bytes=1-2,6-10"), None);
/// ```
pub fn parse_range(header: &str) -> Option<ByteRange> {
    let (unit, value) = header.split_once('=').unwrap_or((header, ""));
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let value = value.trim();
    if value.is_empty() {
        return Some((None, None));
    }
    let (first, last) = value.split_once('-')?;
    Some((position(first)?, position(last)?))
}

/// One side of a byte range: `Some(None)` when empty, `None` when not a
/// plain decimal number.
fn position(s: &str) -> Option<Option<u64>> {
    let s = s.trim();
    if s.is_empty() {
        return Some(None);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().map(Some)
}

/// What to send for a parsed range on a file of a given size. Tornado: the
/// range arithmetic in `StaticFileHandler.get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Send the whole file with 200 (no range, or one that covers it all —
    /// Chrome refuses to play audio answered `bytes=0-` with a 206).
    Full,
    /// Send bytes `start..=end` with 206 and [`content_range_header`].
    Partial {
        /// The first byte to send.
        start: u64,
        /// The last byte to send (inclusive), always below the size.
        end: u64,
    },
    /// Answer 416 with [`unsatisfiable_content_range`].
    Unsatisfiable,
}

impl RangeOutcome {
    /// The `(offset, length)` of the bytes to send — for `Content-Length`
    /// and [`ChunkReader::new`] — or `None` for [`Unsatisfiable`].
    /// Tornado: the `content_length` computation in `StaticFileHandler.get`.
    ///
    /// [`Unsatisfiable`]: RangeOutcome::Unsatisfiable
    ///
    /// # Examples
    ///
    /// ```
    /// use whirl_web::static_files::RangeOutcome;
    ///
    /// assert_eq!(RangeOutcome::Full.span(10), Some((0, 10)));
    /// assert_eq!(RangeOutcome::Partial { start: 2, end: 4 }.span(10), Some((2, 3)));
    /// ```
    pub fn span(self, size: u64) -> Option<(u64, u64)> {
        match self {
            RangeOutcome::Full => Some((0, size)),
            RangeOutcome::Partial { start, end } => Some((start, end - start + 1)),
            RangeOutcome::Unsatisfiable => None,
        }
    }
}

/// Decides how to answer a parsed `Range` on a file of `size` bytes.
/// Tornado: `StaticFileHandler.get`.
///
/// As in Tornado: a first byte at or past the end, a last byte before the
/// first, a zero-length suffix (`bytes=-0`), or any range of an empty file
/// is [`RangeOutcome::Unsatisfiable`]; a last byte past the end is capped
/// to the end; a suffix longer than the file is the whole file; a range
/// covering the whole file is [`RangeOutcome::Full`].
///
/// # Examples
///
/// ```
/// use whirl_web::static_files::{resolve_range, RangeOutcome};
///
/// assert_eq!(resolve_range((Some(5), None), 10), RangeOutcome::Partial { start: 5, end: 9 });
/// assert_eq!(resolve_range((Some(0), None), 10), RangeOutcome::Full);
/// assert_eq!(resolve_range((Some(10), Some(5)), 10), RangeOutcome::Unsatisfiable);
/// ```
pub fn resolve_range(range: ByteRange, size: u64) -> RangeOutcome {
    let (start, end_exclusive) = match range {
        (None, None) => return RangeOutcome::Full,
        (None, Some(0)) => return RangeOutcome::Unsatisfiable,
        (None, Some(suffix)) => (size.saturating_sub(suffix), size),
        (Some(first), last) => {
            let end_exclusive = match last {
                Some(last) if last < first => return RangeOutcome::Unsatisfiable,
                Some(last) => last.saturating_add(1).min(size),
                None => size,
            };
            (first, end_exclusive)
        }
    };
    if start >= size {
        RangeOutcome::Unsatisfiable
    } else if start == 0 && end_exclusive == size {
        RangeOutcome::Full
    } else {
        RangeOutcome::Partial {
            start,
            end: end_exclusive - 1,
        }
    }
}

/// The `Content-Range` value for a 206: `bytes 95-99/100`. Tornado:
/// `httputil._get_content_range`. `end` is inclusive.
///
/// # Examples
///
/// ```
/// use whirl_web::static_files::content_range_header;
///
/// assert_eq!(content_range_header(0, 0, 4), "bytes 0-0/4");
/// ```
pub fn content_range_header(start: u64, end: u64, size: u64) -> String {
    format!("bytes {start}-{end}/{size}")
}

/// The `Content-Range` value for a 416: `bytes */100`. Tornado: the
/// `f"bytes */{size}"` in `StaticFileHandler.get`.
///
/// # Examples
///
/// ```
/// use whirl_web::static_files::unsatisfiable_content_range;
///
/// assert_eq!(unsatisfiable_content_range(100), "bytes */100");
/// ```
pub fn unsatisfiable_content_range(size: u64) -> String {
    format!("bytes */{size}")
}

/// The version of a file: the lowercase hex SHA-512 of its content, read
/// [`CHUNK_SIZE`] bytes at a time (never the whole file in memory).
/// Tornado: `StaticFileHandler.get_content_version`.
///
/// This hashes files of any size; [`VersionCache`] is what refuses files
/// over [`MAX_VERSION_CONTENT_SIZE`].
///
/// # Errors
///
/// Any error opening or reading the file.
pub fn content_version(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha512::new();
    let mut buf = vec![0; CHUNK_SIZE];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(to_hex(&hasher.finalize()))
}

/// Lowercase hex of `bytes`.
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The `Etag` header value for a version: the version in double quotes.
/// Tornado: `StaticFileHandler.compute_etag`.
///
/// # Examples
///
/// ```
/// assert_eq!(whirl_web::static_files::etag("v1"), "\"v1\"");
/// ```
pub fn etag(version: &str) -> String {
    format!("\"{version}\"")
}

/// Whether an `If-None-Match` header matches `etag` (so a 304 is due).
/// Tornado: `RequestHandler.check_etag_header`.
///
/// The header is scanned for `*` and for quoted entity tags, weak (`W/"…"`)
/// or strong, anywhere in the value; anything else is skipped. A leading
/// `*` matches any ETag; otherwise tags are compared weakly (a `W/` prefix
/// on either side is ignored). An empty `etag` never matches.
///
/// # Examples
///
/// ```
/// use whirl_web::static_files::if_none_match_matches;
///
/// assert!(if_none_match_matches("*", "\"a\""));
/// assert!(if_none_match_matches("\"x\", W/\"a\"", "\"a\""));
/// assert!(!if_none_match_matches("\"x\"", "\"a\""));
/// ```
pub fn if_none_match_matches(header: &str, etag: &str) -> bool {
    if etag.is_empty() {
        return false;
    }
    let tags = entity_tags(header);
    match tags.first() {
        None => false,
        Some(&"*") => true,
        Some(_) => {
            let mine = strip_weak(etag);
            tags.iter().any(|tag| strip_weak(tag) == mine)
        }
    }
}

/// Every `*`, `"…"` and `W/"…"` in `header`, in order — what Tornado's
/// `re.findall(rb'\*|(?:W/)?"[^"]*"', …)` finds.
fn entity_tags(header: &str) -> Vec<&str> {
    let bytes = header.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'*' {
            tags.push(&header[i..=i]);
            i += 1;
            continue;
        }
        let open = if header[i..].starts_with("W/\"") {
            i + 2
        } else if bytes[i] == b'"' {
            i
        } else {
            i += 1;
            continue;
        };
        match header[open + 1..].find('"') {
            Some(len) => {
                let close = open + 1 + len;
                tags.push(&header[i..=close]);
                i = close + 1;
            }
            None => i += 1,
        }
    }
    tags
}

/// An entity tag without its `W/` weakness marker.
fn strip_weak(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// A file's modification time, truncated to whole seconds as HTTP dates
/// are; `None` when the platform does not record it. Tornado:
/// `StaticFileHandler.get_modified_time`.
pub fn modified_time(metadata: &Metadata) -> Option<SystemTime> {
    metadata.modified().ok().map(truncate_to_seconds)
}

/// `time` with its fraction of a second dropped (times before 1970 become
/// the epoch).
fn truncate_to_seconds(time: SystemTime) -> SystemTime {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Whether an `If-Modified-Since` header says the client's copy is current:
/// the header date is at or after `last_modified` (compared in whole
/// seconds). An unparsable date is ignored (`false`). Tornado: the
/// `If-Modified-Since` half of `StaticFileHandler.should_return_304`.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use whirl_web::static_files::not_modified_since;
///
/// let modified = UNIX_EPOCH + Duration::from_millis(784_111_777_500);
/// assert!(not_modified_since("Sun, 06 Nov 1994 08:49:37 GMT", modified));
/// assert!(!not_modified_since("Sun, 06 Nov 1994 08:49:36 GMT", modified));
/// assert!(!not_modified_since("garbage", modified));
/// ```
pub fn not_modified_since(if_modified_since: &str, last_modified: SystemTime) -> bool {
    match parse_http_date(if_modified_since) {
        Some(since) => since >= truncate_to_seconds(last_modified),
        None => false,
    }
}

/// Whether the conditional headers call for a 304. A non-empty
/// `If-None-Match` decides alone (against `etag`; no ETag means no match);
/// otherwise `If-Modified-Since` is checked against `last_modified`.
/// Tornado: `StaticFileHandler.should_return_304`.
///
/// # Examples
///
/// ```
/// use std::time::UNIX_EPOCH;
/// use whirl_web::static_files::should_return_304;
///
/// let when = "Thu, 01 Jan 1970 00:00:00 GMT";
/// assert!(should_return_304(None, Some(when), None, Some(UNIX_EPOCH)));
/// // If-None-Match wins over If-Modified-Since.
/// assert!(!should_return_304(Some("\"old\""), Some(when), Some("\"new\""), Some(UNIX_EPOCH)));
/// ```
pub fn should_return_304(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    etag: Option<&str>,
    last_modified: Option<SystemTime>,
) -> bool {
    if let Some(header) = if_none_match.filter(|h| !h.is_empty()) {
        return etag.is_some_and(|etag| if_none_match_matches(header, etag));
    }
    match (if_modified_since, last_modified) {
        (Some(header), Some(modified)) => not_modified_since(header, modified),
        _ => false,
    }
}

/// The `Content-Type` for a static file, guessed from its name. Tornado:
/// `StaticFileHandler.get_content_type`.
///
/// As in Tornado (which asks Python's `mimetypes`): a gzip-compressed file
/// (`.gz`, `.tgz`, `.svgz`, …) is `application/gzip` (RFC 6713); one in
/// another compression (`.bz2`, `.xz`, `.Z`, `.br`, …) is
/// `application/octet-stream`; otherwise the type is guessed from the
/// extension, and an unknown one is `application/octet-stream`. No charset
/// is added.
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// use whirl_web::static_files::content_type;
///
/// assert_eq!(content_type(Path::new("site.css")), "text/css");
/// assert_eq!(content_type(Path::new("dump.tar.gz")), "application/gzip");
/// assert_eq!(content_type(Path::new("README")), "application/octet-stream");
/// ```
pub fn content_type(path: &Path) -> String {
    const OCTET_STREAM: &str = "application/octet-stream";
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    // Python's `mimetypes.suffix_map` (case-insensitive) and
    // `encodings_map` (case-sensitive).
    match extension.to_ascii_lowercase().as_str() {
        "tgz" | "taz" | "tz" | "svgz" => return "application/gzip".to_string(),
        "tbz2" | "txz" => return OCTET_STREAM.to_string(),
        _ => {}
    }
    match extension {
        "gz" => "application/gzip".to_string(),
        "Z" | "bz2" | "xz" | "br" => OCTET_STREAM.to_string(),
        _ => mime_guess::from_path(path)
            .first_raw()
            .unwrap_or(OCTET_STREAM)
            .to_string(),
    }
}

/// Whether the query string carries a `v` argument (even an empty one),
/// which marks a versioned static URL. Tornado: the `"v" in
/// self.request.arguments` test in `StaticFileHandler.get_cache_time`.
///
/// # Examples
///
/// ```
/// use whirl_web::static_files::is_versioned_request;
///
/// assert!(is_versioned_request("v=0123abcd"));
/// assert!(!is_versioned_request("version=1"));
/// ```
pub fn is_versioned_request(query: &str) -> bool {
    parse_qsl_bytes(query.as_bytes(), true, None)
        .map(|pairs| pairs.iter().any(|(name, _)| name == "v"))
        .unwrap_or(false)
}

/// How many seconds a static response may be cached: [`CACHE_MAX_AGE`] for
/// a versioned request, else 0 (no `Expires`/`Cache-Control` sent). With a
/// positive value the handler sets `Cache-Control: max-age=N` and
/// `Expires` N seconds from now. Tornado: `StaticFileHandler.get_cache_time`.
///
/// # Examples
///
/// ```
/// use whirl_web::static_files::{cache_time, CACHE_MAX_AGE};
///
/// assert_eq!(cache_time("v=1"), CACHE_MAX_AGE);
/// assert_eq!(cache_time(""), 0);
/// ```
pub fn cache_time(query: &str) -> u64 {
    if is_versioned_request(query) {
        CACHE_MAX_AGE
    } else {
        0
    }
}

/// Content versions of static files, kept while a file's size and mtime
/// stay the same, for ETags and `static_url`. Tornado: the
/// `StaticFileHandler._static_hashes` cache behind `get_version` and
/// `static_url`.
///
/// Unlike Tornado's cache, which never notices a changed file, an entry is
/// recomputed when the file's size or modification time differs from when
/// it was hashed. At most [`MAX_CACHED_VERSIONS`] entries are kept (least
/// recently used goes first). Shareable between threads.
#[derive(Debug)]
pub struct VersionCache {
    /// Versions by canonical file path, and the use counter.
    inner: Mutex<CacheInner>,
    /// The most entries kept.
    max_entries: usize,
}

/// The mutable part of a [`VersionCache`].
#[derive(Debug, Default)]
struct CacheInner {
    /// Entry per canonical file path.
    entries: HashMap<PathBuf, CachedVersion>,
    /// Increases on every lookup; an entry's `last_used` is a past value.
    clock: u64,
}

/// A cached version and the file state it was computed from.
#[derive(Debug)]
struct CachedVersion {
    /// File size when hashed.
    len: u64,
    /// File mtime when hashed (`None` where the platform has none).
    modified: Option<SystemTime>,
    /// The hex SHA-512, or `None` when the file could not be hashed or is
    /// over [`MAX_VERSION_CONTENT_SIZE`].
    version: Option<String>,
    /// `CacheInner::clock` at the last lookup.
    last_used: u64,
}

impl Default for VersionCache {
    fn default() -> Self {
        VersionCache::new()
    }
}

impl VersionCache {
    /// An empty cache holding up to [`MAX_CACHED_VERSIONS`] versions.
    /// Tornado: the class-level `StaticFileHandler._static_hashes`.
    pub fn new() -> VersionCache {
        VersionCache::with_capacity(MAX_CACHED_VERSIONS)
    }

    /// An empty cache holding up to `max_entries` versions (at least one).
    /// Tornado: overriding `StaticFileHandler.MAX_CACHED_VERSIONS`.
    pub fn with_capacity(max_entries: usize) -> VersionCache {
        VersionCache {
            inner: Mutex::new(CacheInner::default()),
            max_entries: max_entries.max(1),
        }
    }

    /// The version (hex SHA-512) of a file [`resolve_path`] returned, from
    /// the cache when the file's size and mtime are unchanged. `None` when
    /// the file is over [`MAX_VERSION_CONTENT_SIZE`] or cannot be read (the
    /// error is logged). Tornado: `StaticFileHandler._get_cached_version`.
    pub fn version(&self, path: &Path, metadata: &Metadata) -> Option<String> {
        let len = metadata.len();
        let modified = metadata.modified().ok();
        {
            let mut inner = self.lock();
            inner.clock += 1;
            let now = inner.clock;
            if let Some(entry) = inner.entries.get_mut(path) {
                if entry.len == len && entry.modified == modified {
                    entry.last_used = now;
                    return entry.version.clone();
                }
            }
        }
        // Hash without holding the lock: it may take a while.
        let version = if len > MAX_VERSION_CONTENT_SIZE {
            log::warn!(
                "static file {} is over {MAX_VERSION_CONTENT_SIZE} bytes; it gets no version",
                path.display()
            );
            None
        } else {
            match content_version(path) {
                Ok(version) => Some(version),
                Err(e) => {
                    log::error!("could not open static file {}: {e}", path.display());
                    None
                }
            }
        };
        let mut inner = self.lock();
        if !inner.entries.contains_key(path) && inner.entries.len() >= self.max_entries {
            let oldest = inner
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(path, _)| path.clone());
            if let Some(oldest) = oldest {
                inner.entries.remove(&oldest);
            }
        }
        let last_used = inner.clock;
        inner.entries.insert(
            path.to_path_buf(),
            CachedVersion {
                len,
                modified,
                version: version.clone(),
                last_used,
            },
        );
        version
    }

    /// The URL of a static file, with `?v=` and the first
    /// [`URL_VERSION_LEN`] hex digits of its version when it has one.
    /// Tornado: `StaticFileHandler.make_static_url` (what
    /// `RequestHandler.static_url` calls).
    ///
    /// `path` is a file path relative to `static_path` (`css/site.css`), not
    /// a URL: it is percent-encoded into the URL where needed, so
    /// [`resolve_path`] decodes it back to the same file. A path that is
    /// missing, not a regular file, or outside `static_path` gets a URL
    /// without a version (and is logged), as in Tornado.
    ///
    /// # Examples
    ///
    /// ```
    /// use whirl_web::static_files::VersionCache;
    ///
    /// let cache = VersionCache::new();
    /// let root = std::env::temp_dir();
    /// assert_eq!(cache.static_url(&root, "/static/", "no such file.css"),
    ///            "/static/no%20such%20file.css");
    /// ```
    pub fn static_url(&self, static_path: &Path, prefix: &str, path: &str) -> String {
        let url = format!("{prefix}{}", utf8_percent_encode(path, URL_PATH));
        let version = match resolve_relative(static_path, path) {
            Ok(ResolvedPath::File { path, metadata }) => self.version(&path, &metadata),
            Ok(ResolvedPath::Directory(_)) => {
                log::error!("static_url({path:?}): {}", StaticError::NotAFile);
                None
            }
            Err(e) => {
                log::error!("static_url({path:?}): {e}");
                None
            }
        };
        match version {
            Some(version) => {
                let short = version.get(..URL_VERSION_LEN).unwrap_or(&version);
                format!("{url}?v={short}")
            }
            None => url,
        }
    }

    /// Forgets every cached version. Tornado: `StaticFileHandler.reset`.
    pub fn reset(&self) {
        self.lock().entries.clear();
    }

    /// How many versions are cached.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no versions are cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cache's state; a panic while it was held cannot leave it
    /// inconsistent (each update is one `insert`/`remove`), so a poisoned
    /// lock is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reads a byte range of a file as a sequence of pieces of at most
/// [`CHUNK_SIZE`] bytes, so a body of any size is sent with bounded memory.
/// Tornado: `StaticFileHandler.get_content`'s generator.
///
/// If the file turns out shorter than the range (it shrank after the
/// `stat`), the last item is an [`io::ErrorKind::UnexpectedEof`] error, so
/// the response fails instead of ending short unnoticed.
///
/// # Examples
///
/// ```
/// use std::io::Cursor;
/// use whirl_web::static_files::ChunkReader;
///
/// let reader = ChunkReader::new(Cursor::new(b"hello world".to_vec()), 6, 5).unwrap();
/// let pieces: Vec<Vec<u8>> = reader.collect::<Result<_, _>>().unwrap();
/// assert_eq!(pieces, [b"world".to_vec()]);
/// ```
#[derive(Debug)]
pub struct ChunkReader<R = File> {
    /// The source, positioned at the next byte to yield.
    reader: R,
    /// Bytes still to yield; 0 after the end or after an error.
    remaining: u64,
}

impl ChunkReader<File> {
    /// Opens `path` and reads `len` bytes from `offset`. Tornado:
    /// `StaticFileHandler.get_content(abspath, start, end)`.
    ///
    /// # Errors
    ///
    /// Any error opening the file or seeking in it.
    pub fn open(path: &Path, offset: u64, len: u64) -> io::Result<ChunkReader<File>> {
        ChunkReader::new(File::open(path)?, offset, len)
    }
}

impl<R: Read + Seek> ChunkReader<R> {
    /// Reads `len` bytes of `reader` from `offset`. Tornado:
    /// `StaticFileHandler.get_content`.
    ///
    /// # Errors
    ///
    /// Any error seeking to `offset`.
    pub fn new(mut reader: R, offset: u64, len: u64) -> io::Result<ChunkReader<R>> {
        reader.seek(SeekFrom::Start(offset))?;
        Ok(ChunkReader {
            reader,
            remaining: len,
        })
    }

    /// Bytes not yet yielded.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Fills `buf` completely, or fails with `UnexpectedEof`.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file ended before the range did (it shrank while being sent)",
                    ))
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: Read + Seek> Iterator for ChunkReader<R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        if self.remaining == 0 {
            return None;
        }
        let n = usize::try_from(self.remaining).map_or(CHUNK_SIZE, |r| r.min(CHUNK_SIZE));
        let mut buf = vec![0; n];
        match self.fill(&mut buf) {
            Ok(()) => {
                self.remaining -= n as u64;
                Some(Ok(buf))
            }
            Err(e) => {
                self.remaining = 0;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("whirl-web-static-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, name: &str, content: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).unwrap();
            }
            fs::write(&path, content).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A root `<tmp>/root` with files, next to a `<tmp>/secret.txt` outside it.
    fn static_tree(tag: &str) -> (TempDir, PathBuf) {
        let tmp = TempDir::new(tag);
        tmp.write("secret.txt", b"secret");
        tmp.write("root/hello.txt", b"hello");
        tmp.write("root/css/site.css", b"body{}");
        tmp.write("root/a b%.txt", b"odd name");
        tmp.write("root/sub/index.html", b"<p>index</p>");
        let root = tmp.0.join("root");
        (tmp, root)
    }

    fn file_of(resolved: Result<ResolvedPath, StaticError>) -> PathBuf {
        match resolved {
            Ok(ResolvedPath::File { path, .. }) => path,
            other => panic!("expected a file, got {other:?}"),
        }
    }

    #[test]
    fn resolve_path_outcomes() {
        let (_tmp, root) = static_tree("resolve");
        let canonical_root = root.canonicalize().unwrap();
        let cases: &[(&str, Result<&str, StaticError>)] = &[
            ("hello.txt", Ok("hello.txt")),
            ("css/site.css", Ok("css/site.css")),
            ("css//./site.css", Ok("css/site.css")),
            ("css%2fsite.css", Ok("css/site.css")),
            ("a%20b%25.txt", Ok("a b%.txt")),
            ("../secret.txt", Err(StaticError::OutsideRoot)),
            ("css/../../secret.txt", Err(StaticError::OutsideRoot)),
            ("css/../hello.txt", Err(StaticError::OutsideRoot)),
            ("%2e%2e/secret.txt", Err(StaticError::OutsideRoot)),
            ("%2E%2E%2Fsecret.txt", Err(StaticError::OutsideRoot)),
            ("..%5csecret.txt", Err(StaticError::OutsideRoot)),
            ("css\\site.css", Err(StaticError::OutsideRoot)),
            ("hello.txt%00.png", Err(StaticError::OutsideRoot)),
            ("/etc/passwd", Err(StaticError::OutsideRoot)),
            ("%2fetc/passwd", Err(StaticError::OutsideRoot)),
            ("missing.txt", Err(StaticError::NotFound)),
            ("hello.txt/x", Err(StaticError::NotFound)),
            ("%ff.txt", Err(StaticError::InvalidEncoding)),
        ];
        for (requested, want) in cases {
            let got = resolve_path(&root, requested);
            match want {
                Ok(rel) => assert_eq!(file_of(got), canonical_root.join(rel), "{requested}"),
                Err(e) => assert_eq!(got.unwrap_err(), *e, "{requested}"),
            }
        }
    }

    #[test]
    fn resolved_file_carries_its_metadata() {
        let (_tmp, root) = static_tree("metadata");
        match resolve_path(&root, "hello.txt").unwrap() {
            ResolvedPath::File { metadata, .. } => assert_eq!(metadata.len(), 5),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn directories_are_a_distinct_outcome() {
        let (_tmp, root) = static_tree("dir");
        let canonical_root = root.canonicalize().unwrap();
        for requested in ["", "sub", "sub/", "./sub", "%73ub"] {
            match resolve_path(&root, requested) {
                Ok(ResolvedPath::Directory(dir)) => {
                    let want = if requested.is_empty() {
                        canonical_root.clone()
                    } else {
                        canonical_root.join("sub")
                    };
                    assert_eq!(dir, want, "{requested:?}");
                }
                other => panic!("{requested:?}: {other:?}"),
            }
        }
        let dir = canonical_root.join("sub");
        let index = file_of(resolve_default_file(&root, &dir, "index.html"));
        assert_eq!(index, dir.join("index.html"));
        assert_eq!(
            resolve_default_file(&root, &dir, "missing.html").unwrap_err(),
            StaticError::NotFound
        );
        assert_eq!(
            resolve_default_file(&root, &dir, "../../secret.txt").unwrap_err(),
            StaticError::OutsideRoot
        );
    }

    #[test]
    fn missing_root_is_not_found() {
        let tmp = TempDir::new("noroot");
        let root = tmp.0.join("absent");
        assert_eq!(
            resolve_path(&root, "x.txt").unwrap_err(),
            StaticError::NotFound
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_may_not_leave_the_root() {
        use std::os::unix::fs::symlink;
        let (tmp, root) = static_tree("symlink");
        symlink(tmp.0.join("secret.txt"), root.join("out.txt")).unwrap();
        symlink(&tmp.0, root.join("outdir")).unwrap();
        symlink(root.join("hello.txt"), root.join("in.txt")).unwrap();
        symlink(tmp.0.join("nowhere"), root.join("dangling")).unwrap();
        assert_eq!(
            resolve_path(&root, "out.txt").unwrap_err(),
            StaticError::OutsideRoot
        );
        assert_eq!(
            resolve_path(&root, "outdir/secret.txt").unwrap_err(),
            StaticError::OutsideRoot
        );
        assert_eq!(
            resolve_path(&root, "outdir").unwrap_err(),
            StaticError::OutsideRoot
        );
        assert_eq!(
            resolve_path(&root, "dangling").unwrap_err(),
            StaticError::NotFound
        );
        // A link inside the root resolves to its target.
        let target = root.canonicalize().unwrap().join("hello.txt");
        assert_eq!(file_of(resolve_path(&root, "in.txt")), target);
        // A default file that links out is refused too.
        let dir = root.canonicalize().unwrap().join("sub");
        symlink(tmp.0.join("secret.txt"), dir.join("leak.html")).unwrap();
        assert_eq!(
            resolve_default_file(&root, &dir, "leak.html").unwrap_err(),
            StaticError::OutsideRoot
        );
        // The root itself may be reached through a symlink.
        let link_root = tmp.0.join("root-link");
        symlink(&root, &link_root).unwrap();
        assert_eq!(file_of(resolve_path(&link_root, "hello.txt")), target);
    }

    #[cfg(unix)]
    #[test]
    fn fifos_are_not_files() {
        let (_tmp, root) = static_tree("fifo");
        let fifo = root.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return; // no mkfifo on this system
        }
        assert_eq!(
            resolve_path(&root, "pipe").unwrap_err(),
            StaticError::NotAFile
        );
    }

    #[test]
    fn statuses() {
        let cases = [
            (StaticError::OutsideRoot, 403),
            (StaticError::NotAFile, 403),
            (StaticError::PermissionDenied, 403),
            (StaticError::NotFound, 404),
            (StaticError::InvalidEncoding, 400),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status, "{err}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn parse_range_forms() {
        let cases: &[(&str, Option<ByteRange>)] = &[
            ("bytes=0-0", Some((Some(0), Some(0)))),
            ("bytes=1-2", Some((Some(1), Some(2)))),
            ("bytes=-5", Some((None, Some(5)))),
            ("bytes=5-", Some((Some(5), None))),
            ("bytes=10-5", Some((Some(10), Some(5)))),
            ("bytes=-0", Some((None, Some(0)))),
            ("bytes=", Some((None, None))),
            ("bytes", Some((None, None))),
            (" bytes = 1 - 2 ", Some((Some(1), Some(2)))),
            ("Bytes=1-2", Some((Some(1), Some(2)))),
            ("bytes=0-1,3-4", None),
            ("bytes=1-2, 6-10", None),
            ("foo=42", None),
            ("bytes=5", None),
            ("bytes=a-b", None),
            ("bytes=+1-2", None),
            ("bytes=1--2", None),
            ("bytes=99999999999999999999999-", None),
            ("", None),
        ];
        for (header, want) in cases {
            assert_eq!(parse_range(header), *want, "{header:?}");
        }
    }

    #[test]
    fn resolve_range_outcomes() {
        use RangeOutcome::{Full, Partial, Unsatisfiable};
        let cases: &[(&str, u64, RangeOutcome)] = &[
            ("bytes=0-0", 10, Partial { start: 0, end: 0 }),
            ("bytes=-5", 10, Partial { start: 5, end: 9 }),
            ("bytes=-10", 10, Full),
            ("bytes=-20", 10, Full),
            ("bytes=5-", 10, Partial { start: 5, end: 9 }),
            ("bytes=0-", 10, Full),
            ("bytes=0-9", 10, Full),
            ("bytes=0-99", 10, Full),
            ("bytes=2-99", 10, Partial { start: 2, end: 9 }),
            ("bytes=3-3", 10, Partial { start: 3, end: 3 }),
            ("bytes=10-5", 10, Unsatisfiable),
            ("bytes=5-4", 10, Unsatisfiable),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=", 10, Full),
            ("bytes=0-18446744073709551615", 10, Full),
        ];
        for (header, size, want) in cases {
            let range = parse_range(header).unwrap();
            assert_eq!(resolve_range(range, *size), *want, "{header} on {size}");
        }
    }

    #[test]
    fn range_headers_and_spans() {
        assert_eq!(content_range_header(0, 0, 4), "bytes 0-0/4");
        assert_eq!(content_range_header(1, 2, 4), "bytes 1-2/4");
        assert_eq!(content_range_header(0, 3, 4), "bytes 0-3/4");
        assert_eq!(unsatisfiable_content_range(0), "bytes */0");
        assert_eq!(RangeOutcome::Full.span(0), Some((0, 0)));
        assert_eq!(
            RangeOutcome::Partial { start: 5, end: 9 }.span(10),
            Some((5, 5))
        );
        assert_eq!(RangeOutcome::Unsatisfiable.span(10), None);
    }

    #[test]
    fn content_version_is_sha512_hex() {
        let tmp = TempDir::new("hash");
        let empty = tmp.write("empty", b"");
        assert_eq!(
            content_version(&empty).unwrap(),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
             47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
        let abc = tmp.write("abc", b"abc");
        assert_eq!(
            content_version(&abc).unwrap(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        // More than one chunk hashes the same as the whole.
        let big: Vec<u8> = (0..CHUNK_SIZE * 2 + 7).map(|i| (i % 251) as u8).collect();
        let path = tmp.write("big", &big);
        assert_eq!(
            content_version(&path).unwrap(),
            to_hex(&Sha512::digest(&big))
        );
        assert!(content_version(&tmp.0.join("missing")).is_err());
    }

    #[test]
    fn etag_matching() {
        let tag = etag("abc");
        let cases: &[(&str, &str, bool)] = &[
            ("\"abc\"", "\"abc\"", true),
            ("W/\"abc\"", "\"abc\"", true),
            ("\"abc\"", "W/\"abc\"", true),
            ("\"x\", \"abc\"", "\"abc\"", true),
            ("\"x\",W/\"abc\"", "\"abc\"", true),
            ("\"x\", \"y\"", "\"abc\"", false),
            ("*", "\"abc\"", true),
            ("\"x\", *", "\"abc\"", false),
            ("", "\"abc\"", false),
            ("abc", "\"abc\"", false),
            ("\"abc", "\"abc\"", false),
            ("\"ab\"c\"", "\"abc\"", false),
            ("*", "", false),
            ("\"\"", "\"\"", true),
        ];
        assert_eq!(tag, "\"abc\"");
        for (header, etag, want) in cases {
            assert_eq!(
                if_none_match_matches(header, etag),
                *want,
                "{header:?} vs {etag:?}"
            );
        }
    }

    #[test]
    fn modified_since_compares_whole_seconds() {
        let base = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let modified = base + Duration::from_millis(900);
        let cases: &[(&str, bool)] = &[
            ("Sun, 06 Nov 1994 08:49:37 GMT", true),
            ("Sun, 06 Nov 1994 08:49:38 GMT", true),
            ("Sun, 06 Nov 1994 08:49:36 GMT", false),
            ("Sunday, 06-Nov-94 08:49:37 GMT", true),
            ("Sun Nov  6 08:49:37 1994", true),
            ("not a date", false),
            ("", false),
        ];
        for (header, want) in cases {
            assert_eq!(not_modified_since(header, modified), *want, "{header}");
        }
    }

    #[test]
    fn should_return_304_precedence() {
        let modified = Some(UNIX_EPOCH + Duration::from_secs(784_111_777));
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let old = "Sun, 06 Nov 1994 08:00:00 GMT";
        let tag = Some("\"v\"");
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, bool);
        let cases: &[Case] = &[
            (Some("\"v\""), None, tag, true),
            (Some("\"w\""), Some(date), tag, false),
            (Some("\"v\""), Some(old), tag, true),
            (Some("\"v\""), None, None, false),
            (Some(""), Some(date), tag, true),
            (None, Some(date), tag, true),
            (None, Some(old), tag, false),
            (None, None, tag, false),
        ];
        for (inm, ims, etag, want) in cases {
            assert_eq!(
                should_return_304(*inm, *ims, *etag, modified),
                *want,
                "{inm:?} {ims:?} {etag:?}"
            );
        }
        assert!(!should_return_304(None, Some(date), tag, None));
    }

    #[test]
    fn modified_time_truncates() {
        let tmp = TempDir::new("mtime");
        let path = tmp.write("f", b"x");
        let file = File::options().write(true).open(&path).unwrap();
        let when = UNIX_EPOCH + Duration::from_millis(1_000_000_500);
        file.set_modified(when).unwrap();
        let metadata = fs::metadata(&path).unwrap();
        assert_eq!(
            modified_time(&metadata),
            Some(UNIX_EPOCH + Duration::from_secs(1_000_000))
        );
    }

    #[test]
    fn content_types() {
        let cases: &[(&str, &str)] = &[
            ("a.html", "text/html"),
            ("a.css", "text/css"),
            ("a.png", "image/png"),
            ("a.json", "application/json"),
            ("A.PNG", "image/png"),
            ("a.gz", "application/gzip"),
            ("a.tar.gz", "application/gzip"),
            ("a.tgz", "application/gzip"),
            ("a.svgz", "application/gzip"),
            ("a.bz2", "application/octet-stream"),
            ("a.tar.xz", "application/octet-stream"),
            ("a.Z", "application/octet-stream"),
            ("a.br", "application/octet-stream"),
            ("a.unknownext", "application/octet-stream"),
            ("Makefile", "application/octet-stream"),
            ("", "application/octet-stream"),
        ];
        for (name, want) in cases {
            assert_eq!(content_type(Path::new(name)), *want, "{name}");
        }
    }

    #[test]
    fn versioned_requests_and_cache_time() {
        let cases: &[(&str, bool)] = &[
            ("v=abc", true),
            ("v=", true),
            ("v", true),
            ("x=1&v=2", true),
            ("%76=1", true),
            ("version=1", false),
            ("x=v", false),
            ("", false),
        ];
        for (query, want) in cases {
            assert_eq!(is_versioned_request(query), *want, "{query}");
            let want_time = if *want { CACHE_MAX_AGE } else { 0 };
            assert_eq!(cache_time(query), want_time, "{query}");
        }
        assert_eq!(CACHE_MAX_AGE, 315_360_000);
    }

    #[test]
    fn version_cache_recomputes_when_the_file_changes() {
        let (_tmp, root) = static_tree("vcache");
        let cache = VersionCache::new();
        let path = root.canonicalize().unwrap().join("hello.txt");
        let v1 = cache.version(&path, &fs::metadata(&path).unwrap()).unwrap();
        assert_eq!(v1, content_version(&path).unwrap());
        assert_eq!(cache.len(), 1);
        // Same size and mtime: the cached value is used even if the bytes
        // differ (proves the cache is hit).
        let before = fs::metadata(&path).unwrap();
        fs::write(&path, b"HELLO").unwrap();
        let file = File::options().write(true).open(&path).unwrap();
        file.set_modified(before.modified().unwrap()).unwrap();
        let same = cache.version(&path, &fs::metadata(&path).unwrap()).unwrap();
        assert_eq!(same, v1);
        // A new mtime: recomputed.
        file.set_modified(before.modified().unwrap() + Duration::from_secs(5))
            .unwrap();
        let v2 = cache.version(&path, &fs::metadata(&path).unwrap()).unwrap();
        assert_ne!(v2, v1);
        assert_eq!(v2, content_version(&path).unwrap());
        // A new size: recomputed.
        fs::write(&path, b"hello, world").unwrap();
        let v3 = cache.version(&path, &fs::metadata(&path).unwrap()).unwrap();
        assert_eq!(v3, content_version(&path).unwrap());
        assert_eq!(cache.len(), 1);
        cache.reset();
        assert!(cache.is_empty());
    }

    #[test]
    fn version_cache_is_bounded() {
        let tmp = TempDir::new("bounded");
        let cache = VersionCache::with_capacity(2);
        let paths: Vec<PathBuf> = ["a", "b", "c"]
            .iter()
            .map(|name| tmp.write(name, name.as_bytes()))
            .collect();
        let version = |p: &PathBuf| cache.version(p, &fs::metadata(p).unwrap());
        version(&paths[0]);
        version(&paths[1]);
        version(&paths[0]); // b is now least recently used
        version(&paths[2]);
        assert_eq!(cache.len(), 2);
        let inner = cache.lock();
        assert!(inner.entries.contains_key(&paths[0]));
        assert!(!inner.entries.contains_key(&paths[1]));
        assert!(inner.entries.contains_key(&paths[2]));
    }

    #[test]
    fn static_urls() {
        let (_tmp, root) = static_tree("url");
        let cache = VersionCache::new();
        let canonical = root.canonicalize().unwrap();
        let hash = |rel: &str| content_version(&canonical.join(rel)).unwrap()[..32].to_string();
        let cases: Vec<(&str, &str, String)> = vec![
            (
                "/static/",
                "css/site.css",
                format!("/static/css/site.css?v={}", hash("css/site.css")),
            ),
            (
                "/assets/",
                "hello.txt",
                format!("/assets/hello.txt?v={}", hash("hello.txt")),
            ),
            (
                "/static/",
                "a b%.txt",
                format!("/static/a%20b%25.txt?v={}", hash("a b%.txt")),
            ),
            ("/static/", "missing.js", "/static/missing.js".to_string()),
            ("/static/", "sub", "/static/sub".to_string()),
            (
                "/static/",
                "../secret.txt",
                "/static/../secret.txt".to_string(),
            ),
        ];
        for (prefix, path, want) in &cases {
            assert_eq!(cache.static_url(&root, prefix, path), *want, "{path}");
        }
        // The encoded URL path resolves back to the same file.
        let url = cache.static_url(&root, "/static/", "a b%.txt");
        let encoded = url
            .strip_prefix("/static/")
            .and_then(|u| u.split('?').next())
            .unwrap();
        assert_eq!(
            file_of(resolve_path(&root, encoded)),
            canonical.join("a b%.txt")
        );
    }

    #[test]
    fn version_cache_skips_files_over_the_limit() {
        let tmp = TempDir::new("huge");
        let path = tmp.write("huge.bin", b"");
        let file = File::options().write(true).open(&path).unwrap();
        file.set_len(MAX_VERSION_CONTENT_SIZE + 1).unwrap(); // sparse
        let cache = VersionCache::new();
        assert_eq!(cache.version(&path, &fs::metadata(&path).unwrap()), None);
    }

    #[test]
    fn chunk_reader_yields_bounded_pieces() {
        let data: Vec<u8> = (0..CHUNK_SIZE * 2 + 10).map(|i| (i % 256) as u8).collect();
        let total = data.len() as u64;
        let cases: &[(u64, u64, &[usize])] = &[
            (0, total, &[CHUNK_SIZE, CHUNK_SIZE, 10]),
            (5, 10, &[10]),
            (0, CHUNK_SIZE as u64, &[CHUNK_SIZE]),
            (3, CHUNK_SIZE as u64 + 1, &[CHUNK_SIZE, 1]),
            (total - 1, 1, &[1]),
            (7, 0, &[]),
        ];
        for (offset, len, sizes) in cases {
            let reader = ChunkReader::new(Cursor::new(data.clone()), *offset, *len).unwrap();
            assert_eq!(reader.remaining(), *len);
            let pieces: Vec<Vec<u8>> = reader.collect::<Result<_, _>>().unwrap();
            let got_sizes: Vec<usize> = pieces.iter().map(Vec::len).collect();
            assert_eq!(got_sizes, *sizes, "{offset}+{len}");
            let start = usize::try_from(*offset).unwrap();
            let end = start + usize::try_from(*len).unwrap();
            assert_eq!(pieces.concat(), data[start..end], "{offset}+{len}");
        }
    }

    #[test]
    fn chunk_reader_reports_a_short_file() {
        let mut reader = ChunkReader::new(Cursor::new(b"short".to_vec()), 2, 10).unwrap();
        let err = reader.next().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(reader.next().is_none());
    }

    #[test]
    fn chunk_reader_opens_files() {
        let tmp = TempDir::new("reader");
        let path = tmp.write("f.txt", b"0123456789");
        let outcome = resolve_range(parse_range("bytes=2-4").unwrap(), 10);
        let (offset, len) = outcome.span(10).unwrap();
        let body: Vec<u8> = ChunkReader::open(&path, offset, len)
            .unwrap()
            .collect::<io::Result<Vec<_>>>()
            .unwrap()
            .concat();
        assert_eq!(body, b"234");
    }
}
