//! `multipart/form-data` request bodies, built the way `requests` builds
//! them from `data=` and `files=`: [`Multipart`], streamed by
//! [`MultipartStream`].
//!
//! Tornado has no builder (its users hand-write an
//! `encode_multipart_formdata` with a fixed boundary, as the seed does);
//! this is the counterpart of `requests`' `files=`/`data=` and urllib3's
//! `encode_multipart_formdata`, with three things they lack:
//!
//! - the random boundary is **checked against the content**: in-memory
//!   parts when they are added (a collision picks a new boundary), files
//!   while they are streamed (a collision is an error item, see
//!   [`MultipartError::BoundaryInFile`]);
//! - files are **streamed from disk** in pieces of at most
//!   [`MULTIPART_CHUNK_SIZE`] bytes, never read whole, and the body's
//!   length is known up front ([`Multipart::content_length`], from file
//!   metadata), so an upload carries a `Content-Length`;
//! - a file that changes after its length was measured makes the stream
//!   fail ([`MultipartError::FileChanged`]) instead of sending a body that
//!   disagrees with that length.
//!
//! A [`Multipart`] can be streamed any number of times with the same
//! bytes (files are re-opened), so a 307/308 redirect can re-send it.
//!
//! # Examples
//!
//! ```
//! use whirl_httpclient::multipart::Multipart;
//! use whirl_httpserver::{parse_body_arguments, ParseBodyConfig};
//!
//! # fn main() -> std::io::Result<()> {
//! let form = Multipart::new()
//!     .field("api_key", "k1")
//!     .file("image", "photo.png", b"\x89PNG\r\n\x1a\n".to_vec());
//! assert!(form.content_type().starts_with("multipart/form-data; boundary=whirl-"));
//!
//! let body = form.to_bytes()?;
//! assert_eq!(body.len() as u64, form.content_length()?);
//!
//! // What a server (here whirl's own parser) reads back.
//! let parsed =
//!     parse_body_arguments(&form.content_type(), &body, None, &ParseBodyConfig::default())
//!         .unwrap();
//! assert_eq!(parsed.arguments["api_key"], [b"k1".to_vec()]);
//! let image = &parsed.files["image"][0];
//! assert_eq!((image.filename.as_str(), image.content_type.as_str()), ("photo.png", "image/png"));
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::iter::FusedIterator;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Most bytes in one piece yielded by a [`MultipartStream`], and in one read
/// from a file: 64 KiB, whirl's read chunk.
pub const MULTIPART_CHUNK_SIZE: usize = 64 * 1024;

/// The content type of a file whose name says nothing (browsers and
/// `mimetypes` agree).
const OCTET_STREAM: &str = "application/octet-stream";

/// Bytes that `filename*=UTF-8''…` percent-encodes: all but RFC 5987's
/// `attr-char`.
const ATTR_CHAR_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// The content of a file part: bytes in memory, or a file on disk that is
/// read in [`MULTIPART_CHUNK_SIZE`] pieces each time the form is streamed.
///
/// Converts from `Vec<u8>`, `&[u8]`, `&[u8; N]` and `&Vec<u8>` (bytes) and
/// from `PathBuf`, `&Path` and `&PathBuf` (a file). There is deliberately no
/// conversion from `&str`: say which you mean with `.as_bytes()` or
/// `Path::new(…)`.
#[derive(Clone, PartialEq, Eq)]
pub enum FileSource {
    /// The file's bytes.
    Bytes(Vec<u8>),
    /// A regular file, opened and read while the body is streamed.
    Path(PathBuf),
}

impl fmt::Debug for FileSource {
    /// Shows the length of in-memory bytes, not the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileSource::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            FileSource::Path(path) => f.debug_tuple("Path").field(path).finish(),
        }
    }
}

impl From<Vec<u8>> for FileSource {
    fn from(bytes: Vec<u8>) -> Self {
        FileSource::Bytes(bytes)
    }
}

impl From<&Vec<u8>> for FileSource {
    fn from(bytes: &Vec<u8>) -> Self {
        FileSource::Bytes(bytes.clone())
    }
}

impl From<&[u8]> for FileSource {
    fn from(bytes: &[u8]) -> Self {
        FileSource::Bytes(bytes.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for FileSource {
    fn from(bytes: &[u8; N]) -> Self {
        FileSource::Bytes(bytes.to_vec())
    }
}

impl From<PathBuf> for FileSource {
    fn from(path: PathBuf) -> Self {
        FileSource::Path(path)
    }
}

impl From<&PathBuf> for FileSource {
    fn from(path: &PathBuf) -> Self {
        FileSource::Path(path.clone())
    }
}

impl From<&Path> for FileSource {
    fn from(path: &Path) -> Self {
        FileSource::Path(path.to_path_buf())
    }
}

/// Why a multipart body could not be sized or streamed. It reaches callers
/// inside an [`io::Error`] (whose kind is given per variant); get it back
/// with `err.get_ref().and_then(|e| e.downcast_ref::<MultipartError>())`.
#[derive(Debug)]
#[non_exhaustive]
pub enum MultipartError {
    /// A file part's file could not be measured, opened or read (the
    /// `io::Error` keeps the source's kind).
    File {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A file part names something other than a regular file (a directory,
    /// a pipe, a device), whose length cannot be known before reading it
    /// (kind `InvalidInput`).
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A file changed after its length was measured, so the body would not
    /// match the `Content-Length` already sent (kind `InvalidData`).
    FileChanged {
        /// The file.
        path: PathBuf,
        /// The length measured first, in bytes.
        expected: u64,
        /// What was found instead.
        change: FileChange,
    },
    /// A file holds `--` and the boundary, so the receiver would split the
    /// body there (kind `InvalidData`). Only a boundary known before the
    /// file was written can collide, such as the one of a form whose own
    /// body is attached to a clone of it; a new [`Multipart`] has a new
    /// boundary.
    BoundaryInFile {
        /// The file.
        path: PathBuf,
    },
}

/// How a file differed from its measured length; see
/// [`MultipartError::FileChanged`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileChange {
    /// Its metadata now gives this length in bytes.
    Length(u64),
    /// Its length is the same but its modification time is not.
    Modified,
    /// Reading it ended after this many bytes.
    EndedEarly(u64),
    /// Reading it gave more bytes than its length (as files in `/proc` do,
    /// whose metadata says 0).
    Longer,
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultipartError::File { path, source } => write!(
                f,
                "the file {} of a multipart body could not be read: {source}",
                path.display()
            ),
            MultipartError::NotAFile { path } => write!(
                f,
                "{} is not a regular file, so it cannot be part of a multipart body of known length",
                path.display()
            ),
            MultipartError::FileChanged {
                path,
                expected,
                change,
            } => {
                write!(
                    f,
                    "the file {} changed after its length ({expected} bytes) was measured for a multipart body: ",
                    path.display()
                )?;
                match change {
                    FileChange::Length(now) => write!(f, "it is now {now} bytes long"),
                    FileChange::Modified => f.write_str("its modification time differs"),
                    FileChange::EndedEarly(read) => write!(f, "it ended after {read} bytes"),
                    FileChange::Longer => f.write_str("it holds more bytes than that"),
                }
            }
            MultipartError::BoundaryInFile { path } => write!(
                f,
                "the file {} contains the multipart boundary, so it cannot be sent in this body",
                path.display()
            ),
        }
    }
}

impl std::error::Error for MultipartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MultipartError::File { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<MultipartError> for io::Error {
    fn from(err: MultipartError) -> Self {
        let kind = match &err {
            MultipartError::File { source, .. } => source.kind(),
            MultipartError::NotAFile { .. } => io::ErrorKind::InvalidInput,
            MultipartError::FileChanged { .. } | MultipartError::BoundaryInFile { .. } => {
                io::ErrorKind::InvalidData
            }
        };
        io::Error::new(kind, err)
    }
}

/// A `multipart/form-data` body: form fields and files, in the order they
/// were added. `requests`: `requests.post(url, data=…, files=…)`.
///
/// Build it with [`new`](Multipart::new) and the chaining
/// [`field`](Multipart::field), [`file`](Multipart::file),
/// [`file_with_type`](Multipart::file_with_type) and
/// [`file_from_path`](Multipart::file_from_path); send it with its
/// [`content_type`](Multipart::content_type),
/// [`content_length`](Multipart::content_length) and
/// [`stream`](Multipart::stream) (or [`to_bytes`](Multipart::to_bytes) for
/// small bodies). Cloning is cheap (the parts are shared) and a clone keeps
/// the boundary.
///
/// Each part is written as `requests` writes it, with `\r\n` line ends:
///
/// ```text
/// --whirl-<32 hex digits>
/// Content-Disposition: form-data; name="image"; filename="photo.png"
/// Content-Type: image/png
///
/// <content>
/// --whirl-<32 hex digits>--
/// ```
///
/// Names and file names are escaped as browsers and `requests` escape them
/// (the WHATWG HTML rule): `"` becomes `%22`, CR `%0D`, LF `%0A`; other
/// control characters, which no browser sends, become `%XX` too, so a name
/// can never end the header line. Servers do not undo this, so a name
/// `a"b` arrives as `a%22b`, as it would from a browser. Backslashes are
/// sent as they are (as browsers do), except at the end of a value, where
/// one would escape the closing quote and run the value on into the next
/// parameter: there they become `%5C`. A file name that this plain
/// parameter cannot carry exactly (non-ASCII, control characters, `"` or
/// `\`) also gets an RFC 5987 `filename*=UTF-8''…` parameter, which
/// servers that read it (Tornado, whirl, Go, Werkzeug, busboy) prefer;
/// RFC 7578 advises against `filename*`, so it is sent only then, after
/// the raw UTF-8 `filename` that the others read.
#[derive(Clone)]
pub struct Multipart {
    /// The boundary: never found (as `--boundary`) in any in-memory part,
    /// header block included.
    boundary: String,
    /// The parts in order, shared by clones and streams; a builder method
    /// copies them only if they are shared.
    parts: Arc<Vec<Part>>,
}

/// One part of the body.
#[derive(Clone)]
struct Part {
    /// The header block, ending in its blank line:
    /// `Content-Disposition: …\r\n[Content-Type: …\r\n]\r\n`.
    head: String,
    /// The content.
    body: Body,
}

/// The content of a part.
#[derive(Clone)]
enum Body {
    /// Bytes in memory (a field's value, or a file given as bytes).
    Bytes(Vec<u8>),
    /// A file on disk.
    File {
        /// Where it is.
        path: PathBuf,
        /// Its length and modification time when first measured; every
        /// later stream must find the same.
        stamp: OnceLock<FileStamp>,
    },
}

/// What is remembered of a file so that a change can be noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    /// Length in bytes.
    len: u64,
    /// Modification time, where the platform has one.
    modified: Option<SystemTime>,
}

impl FileStamp {
    fn of(meta: &Metadata) -> FileStamp {
        FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

impl fmt::Debug for Multipart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multipart")
            .field("boundary", &self.boundary)
            .field("parts", &self.parts)
            .finish()
    }
}

impl fmt::Debug for Part {
    /// Shows the header block and the content's size or path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut part = f.debug_struct("Part");
        part.field("head", &self.head);
        match &self.body {
            Body::Bytes(bytes) => part.field("len", &bytes.len()),
            Body::File { path, .. } => part.field("path", path),
        };
        part.finish()
    }
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

impl Multipart {
    /// An empty form with a fresh random boundary. Its body is only the
    /// closing delimiter, as `requests` sends for `files={}`.
    pub fn new() -> Multipart {
        Multipart {
            boundary: random_boundary(),
            parts: Arc::new(Vec::new()),
        }
    }

    /// A form with the given boundary, which the in-memory collision check
    /// may still replace.
    #[cfg(test)]
    fn with_boundary(boundary: &str) -> Multipart {
        Multipart {
            boundary: boundary.to_string(),
            parts: Arc::new(Vec::new()),
        }
    }

    /// Adds a form field. `requests`: an entry of `data=`.
    ///
    /// The value is any bytes (`&str`, `String`, `&[u8]`, `Vec<u8>`); it is
    /// sent as it is, without a `Content-Type`, as browsers send text
    /// fields.
    pub fn field(self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Multipart {
        let head = format!(
            "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
            escape_param(&name.into())
        );
        self.push(Part {
            head,
            body: Body::Bytes(value.into()),
        })
    }

    /// Adds a file, its content type guessed from `filename` (by
    /// `mime_guess`) or else `application/octet-stream`. `requests`: an
    /// entry of `files=` (`(filename, content)`), though `requests` sends
    /// no `Content-Type` when none is given and browsers always send one.
    ///
    /// `source` is bytes (`Vec<u8>`, `&[u8]`) or a path (`PathBuf`,
    /// `&Path`), see [`FileSource`]. A path is not touched here: it is
    /// measured by [`content_length`](Multipart::content_length) (or when
    /// first streamed) and read while streaming.
    pub fn file(
        self,
        name: impl Into<String>,
        filename: impl Into<String>,
        source: impl Into<FileSource>,
    ) -> Multipart {
        let filename = filename.into();
        let content_type = mime_guess::from_path(&filename)
            .first_raw()
            .unwrap_or(OCTET_STREAM);
        self.file_part(&name.into(), &filename, content_type, source.into())
    }

    /// Adds a file with the given content type. `requests`: an entry of
    /// `files=` as `(filename, content, content_type)`.
    ///
    /// An empty `content_type` leaves the `Content-Type` header out, as
    /// `requests` does without one. Control characters in it are sent as
    /// `%XX`, so it cannot add header lines.
    pub fn file_with_type(
        self,
        name: impl Into<String>,
        filename: impl Into<String>,
        content_type: impl Into<String>,
        source: impl Into<FileSource>,
    ) -> Multipart {
        self.file_part(
            &name.into(),
            &filename.into(),
            &content_type.into(),
            source.into(),
        )
    }

    /// Adds the file at `path`, named by its last component (as curl's
    /// `-F name=@path` and `requests`' `files={name: open(path, "rb")}`
    /// do), the content type guessed from that name.
    pub fn file_from_path(self, name: impl Into<String>, path: impl Into<PathBuf>) -> Multipart {
        let path = path.into();
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.file(name, filename, path)
    }

    /// The boundary, `whirl-` and 32 random hexadecimal digits (128 bits),
    /// which no in-memory part contains.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The value of the request's `Content-Type`:
    /// `multipart/form-data; boundary=…`.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The length of the body in bytes, from the in-memory parts and the
    /// files' metadata (files are not read), so a request can send
    /// `Content-Length` rather than chunks.
    ///
    /// A file's length is kept from the first time it is measured (here or
    /// by a stream); every stream then checks that the file still has it.
    ///
    /// # Errors
    ///
    /// An [`io::Error`] holding a [`MultipartError`]:
    /// [`File`](MultipartError::File) when a file cannot be measured,
    /// [`NotAFile`](MultipartError::NotAFile) when a path is not a regular
    /// file.
    pub fn content_length(&self) -> io::Result<u64> {
        let delimiter = self.boundary.len() as u64 + 4; // "--" boundary "\r\n"
        let mut total = self.boundary.len() as u64 + 6; // "--" boundary "--\r\n"
        for part in self.parts.iter() {
            let body = match &part.body {
                Body::Bytes(bytes) => bytes.len() as u64,
                Body::File { path, stamp } => match stamp.get() {
                    Some(stamp) => stamp.len,
                    None => commit(stamp, measure(path)?).len,
                },
            };
            total += delimiter + part.head.len() as u64 + body + 2;
        }
        Ok(total)
    }

    /// Streams the body, in pieces of at most [`MULTIPART_CHUNK_SIZE`]
    /// bytes. May be called again, for the same bytes (a redirect re-sends
    /// the body); each stream opens the files anew.
    pub fn stream(&self) -> MultipartStream {
        MultipartStream::new(&self.boundary, Arc::clone(&self.parts))
    }

    /// Streams the body, consuming the form. See
    /// [`stream`](Multipart::stream).
    pub fn into_stream(self) -> MultipartStream {
        self.stream()
    }

    /// The whole body in memory: for small forms and tests.
    ///
    /// # Errors
    ///
    /// As [`content_length`](Multipart::content_length) and the stream's
    /// error items ([`MultipartError`] inside an [`io::Error`]).
    pub fn to_bytes(&self) -> io::Result<Vec<u8>> {
        let length = self.content_length()?;
        let mut body = Vec::with_capacity(usize::try_from(length).unwrap_or(0).min(1 << 24));
        for piece in self.stream() {
            body.extend_from_slice(&piece?);
        }
        Ok(body)
    }

    /// Adds a file part with its header block.
    fn file_part(
        self,
        name: &str,
        filename: &str,
        content_type: &str,
        source: FileSource,
    ) -> Multipart {
        let mut head = format!(
            "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"",
            escape_param(name),
            escape_param(filename)
        );
        if needs_extended_filename(filename) {
            head.push_str("; filename*=UTF-8''");
            head.extend(utf8_percent_encode(filename, ATTR_CHAR_ESCAPES));
        }
        head.push_str("\r\n");
        if !content_type.is_empty() {
            head.push_str("Content-Type: ");
            head.push_str(&percent_escape(content_type, is_forbidden_control));
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let body = match source {
            FileSource::Bytes(bytes) => Body::Bytes(bytes),
            FileSource::Path(path) => Body::File {
                path,
                stamp: OnceLock::new(),
            },
        };
        self.push(Part { head, body })
    }

    /// Appends `part`, choosing a new boundary while any in-memory part
    /// contains the current one.
    fn push(mut self, part: Part) -> Multipart {
        let collides = |part: &Part, boundary: &str| {
            let needle = dash_boundary(boundary);
            contains(part.head.as_bytes(), &needle)
                || matches!(&part.body, Body::Bytes(bytes) if contains(bytes, &needle))
        };
        if collides(&part, &self.boundary) {
            // 128 random bits: a second try is all but certain to do.
            loop {
                self.boundary = random_boundary();
                if !collides(&part, &self.boundary)
                    && !self.parts.iter().any(|p| collides(p, &self.boundary))
                {
                    break;
                }
            }
        }
        Arc::make_mut(&mut self.parts).push(part);
        self
    }
}

/// The encoded body of a [`Multipart`], as an iterator of pieces of at most
/// [`MULTIPART_CHUNK_SIZE`] bytes. `requests`: the body that
/// `encode_multipart_formdata` builds whole.
///
/// Headers and small parts share pieces; files are read in pieces of at
/// most that size, so memory stays bounded whatever their length. Reading
/// is blocking file I/O, as Tornado's body producers do it.
///
/// An error item ends the stream (it is fused) before the closing
/// delimiter, so a receiver never takes a partial body for a whole one. The
/// errors ([`MultipartError`] inside [`io::Error`]) are: a file that cannot be
/// opened or read ([`File`](MultipartError::File)), is not a regular file
/// ([`NotAFile`](MultipartError::NotAFile)), changed since its length was
/// measured ([`FileChanged`](MultipartError::FileChanged): checked when it
/// is opened, by reading exactly that many bytes and one more, and again at
/// its end) or holds the boundary
/// ([`BoundaryInFile`](MultipartError::BoundaryInFile): files are searched
/// as they are read, since searching them beforehand would read each file
/// twice and still miss a change made in between).
pub struct MultipartStream {
    /// The form's parts.
    parts: Arc<Vec<Part>>,
    /// What to send, in order.
    pieces: Vec<Piece>,
    /// The piece being sent.
    index: usize,
    /// Bytes of an in-memory piece already sent.
    offset: usize,
    /// The file being sent, when the current piece is a file.
    file: Option<OpenFile>,
    /// `--boundary`, searched for in files.
    needle: Vec<u8>,
    /// Whether the stream has ended (finished or failed).
    done: bool,
}

/// One stretch of the body.
#[derive(Debug)]
enum Piece {
    /// Delimiter lines and header blocks.
    Text(Vec<u8>),
    /// The content of the part with this index.
    Content(usize),
}

/// A file being streamed.
#[derive(Debug)]
struct OpenFile {
    /// The open file.
    file: File,
    /// What it must still be.
    stamp: FileStamp,
    /// Bytes read so far, at most `stamp.len`.
    read: u64,
    /// The last bytes read (fewer than `--boundary`), to find a boundary
    /// split between two reads.
    carry: Vec<u8>,
}

impl fmt::Debug for MultipartStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultipartStream")
            .field("pieces", &self.pieces.len())
            .field("index", &self.index)
            .field("done", &self.done)
            .finish()
    }
}

impl MultipartStream {
    fn new(boundary: &str, parts: Arc<Vec<Part>>) -> MultipartStream {
        let mut pieces = Vec::with_capacity(parts.len() * 2 + 1);
        let mut text = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            text.extend_from_slice(b"--");
            text.extend_from_slice(boundary.as_bytes());
            text.extend_from_slice(b"\r\n");
            text.extend_from_slice(part.head.as_bytes());
            pieces.push(Piece::Text(std::mem::take(&mut text)));
            pieces.push(Piece::Content(index));
            text.extend_from_slice(b"\r\n");
        }
        text.extend_from_slice(b"--");
        text.extend_from_slice(boundary.as_bytes());
        text.extend_from_slice(b"--\r\n");
        pieces.push(Piece::Text(text));
        MultipartStream {
            parts,
            pieces,
            index: 0,
            offset: 0,
            file: None,
            needle: dash_boundary(boundary),
            done: false,
        }
    }

    /// Appends to `chunk` until it holds [`MULTIPART_CHUNK_SIZE`] bytes or
    /// the body ends.
    fn fill(&mut self, chunk: &mut Vec<u8>) -> Result<(), MultipartError> {
        // A handle of our own, so a file's kept stamp can be borrowed while
        // `self` changes.
        let parts = Arc::clone(&self.parts);
        while chunk.len() < MULTIPART_CHUNK_SIZE {
            let room = MULTIPART_CHUNK_SIZE - chunk.len();
            let bytes: &[u8] = match self.pieces.get(self.index) {
                None => return Ok(()),
                Some(Piece::Text(text)) => text,
                Some(Piece::Content(part)) => match &parts[*part].body {
                    Body::Bytes(bytes) => bytes,
                    Body::File { path, stamp } => {
                        if self.read_file(path, stamp, chunk, room)? {
                            self.index += 1;
                        }
                        continue;
                    }
                },
            };
            let end = bytes.len().min(self.offset + room);
            chunk.extend_from_slice(&bytes[self.offset..end]);
            self.offset = end;
            if end == bytes.len() {
                self.index += 1;
                self.offset = 0;
            }
        }
        Ok(())
    }

    /// Reads up to `room` bytes of the file at `path` into `chunk`,
    /// opening it first. Returns whether the file is finished (and
    /// checked).
    fn read_file(
        &mut self,
        path: &Path,
        stamp: &OnceLock<FileStamp>,
        chunk: &mut Vec<u8>,
        room: usize,
    ) -> Result<bool, MultipartError> {
        let file_error = |source| MultipartError::File {
            path: path.to_path_buf(),
            source,
        };
        // Step 1: open it, and check it is what was measured.
        let open = match &mut self.file {
            Some(open) => open,
            None => {
                // Checked before opening: opening a pipe would block.
                measure(path)?;
                let file = File::open(path).map_err(file_error)?;
                let now = file_stamp(path, &file)?;
                let expected = commit(stamp, now);
                check_stamp(path, expected, now)?;
                self.file.insert(OpenFile {
                    file,
                    stamp: expected,
                    read: 0,
                    carry: Vec::new(),
                })
            }
        };
        // Step 2: read what is left, up to `room`.
        let left = open.stamp.len - open.read;
        if left > 0 {
            let want = usize::try_from(left).map_or(room, |left| left.min(room));
            let start = chunk.len();
            chunk.resize(start + want, 0);
            let read = read_retrying(&mut open.file, &mut chunk[start..]);
            let n = read.map_err(file_error)?;
            chunk.truncate(start + n);
            if n == 0 {
                return Err(MultipartError::FileChanged {
                    path: path.to_path_buf(),
                    expected: open.stamp.len,
                    change: FileChange::EndedEarly(open.read),
                });
            }
            open.read += n as u64;
            if open.scan(&chunk[start..], &self.needle) {
                return Err(MultipartError::BoundaryInFile {
                    path: path.to_path_buf(),
                });
            }
            if open.read < open.stamp.len {
                return Ok(false);
            }
        }
        // Step 3: at the measured length the file must end, unchanged.
        let mut probe = [0u8; 1];
        if read_retrying(&mut open.file, &mut probe).map_err(file_error)? > 0 {
            return Err(MultipartError::FileChanged {
                path: path.to_path_buf(),
                expected: open.stamp.len,
                change: FileChange::Longer,
            });
        }
        let now = file_stamp(path, &open.file)?;
        check_stamp(path, open.stamp, now)?;
        self.file = None;
        Ok(true)
    }
}

impl OpenFile {
    /// Whether `--boundary` is in `new`, or split between the bytes before
    /// it and `new`; keeps the tail of `new` for the next call.
    fn scan(&mut self, new: &[u8], needle: &[u8]) -> bool {
        let keep = needle.len() - 1;
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(&new[..new.len().min(keep)]);
        if contains(&window, needle) || contains(new, needle) {
            return true;
        }
        if new.len() >= keep {
            window.clear();
            window.extend_from_slice(&new[new.len() - keep..]);
        } else {
            window.drain(..window.len().saturating_sub(keep));
        }
        self.carry = window;
        false
    }
}

impl Iterator for MultipartStream {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        if self.done {
            return None;
        }
        let mut chunk = Vec::new();
        match self.fill(&mut chunk) {
            Err(err) => {
                self.done = true;
                self.file = None;
                Some(Err(err.into()))
            }
            Ok(()) if chunk.is_empty() => {
                self.done = true;
                None
            }
            Ok(()) => Some(Ok(chunk)),
        }
    }
}

impl FusedIterator for MultipartStream {}

/// Measures the file at `path` without opening it.
fn measure(path: &Path) -> Result<FileStamp, MultipartError> {
    let meta = fs::metadata(path).map_err(|source| MultipartError::File {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(MultipartError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(FileStamp::of(&meta))
}

/// Measures an open file.
fn file_stamp(path: &Path, file: &File) -> Result<FileStamp, MultipartError> {
    let meta = file.metadata().map_err(|source| MultipartError::File {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(MultipartError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(FileStamp::of(&meta))
}

/// Keeps `measured` as the file's stamp unless one is already kept, and
/// returns the kept one.
fn commit(stamp: &OnceLock<FileStamp>, measured: FileStamp) -> FileStamp {
    *stamp.get_or_init(|| measured)
}

/// Fails when a file no longer matches its kept stamp.
fn check_stamp(path: &Path, expected: FileStamp, now: FileStamp) -> Result<(), MultipartError> {
    let change = if now.len != expected.len {
        FileChange::Length(now.len)
    } else if now.modified != expected.modified {
        FileChange::Modified
    } else {
        return Ok(());
    };
    Err(MultipartError::FileChanged {
        path: path.to_path_buf(),
        expected: expected.len,
        change,
    })
}

/// `read`, retried when interrupted by a signal.
fn read_retrying(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `--boundary`, whose presence in content would end a part early.
fn dash_boundary(boundary: &str) -> Vec<u8> {
    [b"--", boundary.as_bytes()].concat()
}

/// Whether `needle` occurs in `haystack` (an empty needle always does).
/// Candidates are where the first byte matches; a `--whirl-…` needle fails
/// within a few bytes on almost any content, so the search is close to
/// linear without `memchr`, which this crate does not depend on.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    haystack.len() >= needle.len()
        && haystack[..=haystack.len() - needle.len()]
            .iter()
            .enumerate()
            .any(|(at, &b)| b == first && haystack[at + 1..].starts_with(rest))
}

/// A fresh boundary: `whirl-` and 32 hexadecimal digits from the operating
/// system's random source.
fn random_boundary() -> String {
    let mut bytes = [0u8; 16];
    if let Err(err) = getrandom::fill(&mut bytes) {
        // The boundary need not be secret, only unlikely in the content,
        // which is checked anyway; std's hasher keys are a fair stand-in.
        log::warn!("no random bytes for a multipart boundary ({err}); using std's hasher keys");
        fallback_random(&mut bytes);
    }
    let mut boundary = String::with_capacity(38);
    boundary.push_str("whirl-");
    for byte in bytes {
        boundary.push(char::from(HEX[usize::from(byte >> 4)]));
        boundary.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    boundary
}

/// Lowercase hexadecimal digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Fills `bytes` from std's randomly keyed hasher, a clock and a counter.
fn fallback_random(bytes: &mut [u8; 16]) {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for (half, out) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(count);
        hasher.write_u128(nanos);
        hasher.write_usize(half);
        out.copy_from_slice(&hasher.finish().to_le_bytes());
    }
}

/// Whether a control character must not appear raw in a header value
/// (tab may).
fn is_forbidden_control(c: char) -> bool {
    c.is_ascii_control() && c != '\t'
}

/// Escapes a quoted `name`/`filename` value as browsers and `requests` do
/// (`"` → `%22`, CR → `%0D`, LF → `%0A`), and any other control character
/// as `%XX`; backslashes ending the value as `%5C`, since `\"` does not
/// close a quoted string.
fn escape_param(value: &str) -> Cow<'_, str> {
    let body = value.trim_end_matches('\\');
    let escaped = percent_escape(body, |c| c == '"' || is_forbidden_control(c));
    if body.len() == value.len() {
        return escaped;
    }
    let mut escaped = escaped.into_owned();
    escaped.push_str(&"%5C".repeat(value.len() - body.len()));
    Cow::Owned(escaped)
}

/// Writes the characters `escape` picks (all ASCII) as `%XX`.
fn percent_escape(value: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !value.chars().any(&escape) {
        return Cow::Borrowed(value);
    }
    let mut escaped = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if escape(c) {
            escaped.push('%');
            escaped.push(char::from(HEX_UPPER[(c as usize >> 4) & 0xf]));
            escaped.push(char::from(HEX_UPPER[c as usize & 0xf]));
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// Uppercase hexadecimal digits, as percent-encoding writes them.
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Whether the plain `filename="…"` parameter cannot carry `filename`
/// exactly, so `filename*=` is added: non-ASCII, control characters, and
/// `"` and `\` (escaped, or unescaped by some servers).
fn needs_extended_filename(filename: &str) -> bool {
    filename
        .bytes()
        .any(|b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use whirl_httpserver::{parse_body_arguments, BodyArguments, HttpFile, ParseBodyConfig};

    /// A file in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &[u8]) -> TempFile {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "whirl-multipart-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::write(&path, contents).unwrap();
            TempFile(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }

    /// What whirl's server-side parser makes of the form.
    fn parse(form: &Multipart) -> BodyArguments {
        let body = form.to_bytes().unwrap();
        parse_body_arguments(
            &form.content_type(),
            &body,
            None,
            &ParseBodyConfig::default(),
        )
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&body)))
    }

    /// The stream's pieces, or its first error.
    fn pieces(form: &Multipart) -> io::Result<Vec<Vec<u8>>> {
        form.stream().collect()
    }

    /// The typed error inside an `io::Error`.
    fn typed(err: &io::Error) -> &MultipartError {
        err.get_ref()
            .and_then(|e| e.downcast_ref::<MultipartError>())
            .unwrap_or_else(|| panic!("not a MultipartError: {err}"))
    }

    fn file(filename: &str, content_type: &str, body: &[u8]) -> HttpFile {
        HttpFile {
            filename: filename.to_string(),
            content_type: content_type.to_string(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn round_trip_through_the_server_parser() {
        let mut binary: Vec<u8> = (0..=255u8).collect();
        binary.extend_from_slice(b"\r\n--\r\n--whirl\r\n\r\n\0\r");
        let on_disk = TempFile::new(b"from disk\r\nsecond line\r\n");
        let form = Multipart::new()
            .field("api_key", "k1")
            .field("note", "h\u{e9} \"quoted\"\r\nline two")
            .field("api_key", b"k2".to_vec())
            .field("blank", "")
            .file("image", "photo.png", binary.clone())
            .file("doc", "notes.txt", on_disk.path())
            .file("doc", "caf\u{e9} \u{20ac}.txt", &b"euro"[..])
            .file("empty", "empty.bin", Vec::new())
            .file("noext", "README", b"r")
            .file_with_type(
                "typed",
                "data.json",
                "application/json; charset=utf-8",
                b"{}",
            )
            .file("a\"b;c", "q\"x;y.txt", b"quotes")
            .file("slash", "C:\\dir\\f.txt", b"windows");
        let parsed = parse(&form);

        let args = &parsed.arguments;
        assert_eq!(args["api_key"], [b"k1".to_vec(), b"k2".to_vec()]);
        assert_eq!(args["note"], [b"h\xc3\xa9 \"quoted\"\r\nline two".to_vec()]);
        assert_eq!(args["blank"], [Vec::<u8>::new()]);
        assert_eq!(args.len(), 3);

        let files = &parsed.files;
        assert_eq!(files["image"], [file("photo.png", "image/png", &binary)]);
        assert_eq!(
            files["doc"],
            [
                file("notes.txt", "text/plain", b"from disk\r\nsecond line\r\n"),
                file("caf\u{e9} \u{20ac}.txt", "text/plain", b"euro"),
            ]
        );
        assert_eq!(
            files["empty"],
            [file("empty.bin", "application/octet-stream", b"")]
        );
        assert_eq!(
            files["noext"],
            [file("README", "application/octet-stream", b"r")]
        );
        assert_eq!(
            files["typed"],
            [file("data.json", "application/json; charset=utf-8", b"{}")]
        );
        // Names arrive escaped, as from a browser; the file name exactly,
        // through filename*.
        assert_eq!(
            files["a%22b;c"],
            [file("q\"x;y.txt", "text/plain", b"quotes")]
        );
        assert_eq!(
            files["slash"],
            [file("C:\\dir\\f.txt", "text/plain", b"windows")]
        );
        assert_eq!(files.len(), 7);
    }

    #[test]
    fn headers_escape_names_and_add_filename_star() {
        let cases = [
            // (name, filename, the Content-Disposition parameters)
            ("f", "a.txt", "name=\"f\"; filename=\"a.txt\""),
            (
                "a\"b",
                "a\"b.txt",
                "name=\"a%22b\"; filename=\"a%22b.txt\"; filename*=UTF-8''a%22b.txt",
            ),
            (
                "x\r\ny",
                "l\nf",
                "name=\"x%0D%0Ay\"; filename=\"l%0Af\"; filename*=UTF-8''l%0Af",
            ),
            ("n\0", "t\tab", "name=\"n%00\"; filename=\"t\tab\"; filename*=UTF-8''t%09ab"),
            (
                "\u{e9}",
                "\u{20ac} 1'2%.txt",
                "name=\"\u{e9}\"; filename=\"\u{20ac} 1'2%.txt\"; filename*=UTF-8''%E2%82%AC%201%272%25.txt",
            ),
            (
                "b",
                "a\\b",
                "name=\"b\"; filename=\"a\\b\"; filename*=UTF-8''a%5Cb",
            ),
            ("s", "!#$&+-.^_`|~", "name=\"s\"; filename=\"!#$&+-.^_`|~\""),
        ];
        for (name, filename, params) in cases {
            let form = Multipart::new().file_with_type(name, filename, "", b"x");
            let body = form.to_bytes().unwrap();
            let want = format!("\r\nContent-Disposition: form-data; {params}\r\n\r\nx\r\n");
            assert!(
                contains(&body, want.as_bytes()),
                "{name:?} {filename:?}: {:?}",
                String::from_utf8_lossy(&body)
            );
        }
        let injected = Multipart::new()
            .file_with_type("f", "a", "text/plain\r\nX-Evil: 1", b"x")
            .to_bytes()
            .unwrap();
        assert!(contains(
            &injected,
            b"\r\nContent-Type: text/plain%0D%0AX-Evil: 1\r\n\r\nx"
        ));
    }

    /// Regression (found by the multipart property test): a name or file
    /// name ending in a backslash was sent as `filename="a\"`, whose `\"`
    /// does not close the quoted string, so the server read the file name
    /// as `a\"; filename*=UTF-8''a%5C` and never saw `filename*`.
    #[test]
    fn a_trailing_backslash_swallowed_filename_star() {
        let form = Multipart::new()
            .file_with_type("n\\", "a\\", "", b"x")
            .file_with_type("m", "b\\\\", "", b"y");
        let body = form.to_bytes().unwrap();
        assert!(contains(
            &body,
            b"name=\"n%5C\"; filename=\"a%5C\"; filename*=UTF-8''a%5C\r\n"
        ));
        let parsed = parse(&form);
        assert_eq!(
            parsed.files["n%5C"],
            [file("a\\", "application/unknown", b"x")]
        );
        assert_eq!(
            parsed.files["m"],
            [file("b\\\\", "application/unknown", b"y")]
        );
    }

    #[test]
    fn same_bytes_as_requests() {
        // Python: requests 2.34.2 / urllib3 2.7.0, with
        // urllib3.filepost.choose_boundary patched to return the boundary:
        // requests.Request("POST", url, data={"api_key": "k1", "note": "hé"},
        //   files={"image": ("photo.png", b"\x89PNG\r\n\x1a\n", "image/png"),
        //          "doc": ("notes.txt", b"hello", "text/plain")}).prepare()
        let boundary = "whirl-0123456789abcdef0123456789abcdef";
        let requests: &[u8] = b"--whirl-0123456789abcdef0123456789abcdef\r\n\
            Content-Disposition: form-data; name=\"api_key\"\r\n\r\nk1\r\n\
            --whirl-0123456789abcdef0123456789abcdef\r\n\
            Content-Disposition: form-data; name=\"note\"\r\n\r\nh\xc3\xa9\r\n\
            --whirl-0123456789abcdef0123456789abcdef\r\n\
            Content-Disposition: form-data; name=\"image\"; filename=\"photo.png\"\r\n\
            Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n\
            --whirl-0123456789abcdef0123456789abcdef\r\n\
            Content-Disposition: form-data; name=\"doc\"; filename=\"notes.txt\"\r\n\
            Content-Type: text/plain\r\n\r\nhello\r\n\
            --whirl-0123456789abcdef0123456789abcdef--\r\n";
        let form = Multipart::with_boundary(boundary)
            .field("api_key", "k1")
            .field("note", "h\u{e9}")
            .file("image", "photo.png", b"\x89PNG\r\n\x1a\n")
            .file("doc", "notes.txt", b"hello");
        assert_eq!(
            String::from_utf8_lossy(&form.to_bytes().unwrap()),
            String::from_utf8_lossy(requests)
        );
        assert_eq!(form.content_length().unwrap(), 524);
        assert_eq!(
            form.content_type(),
            format!("multipart/form-data; boundary={boundary}")
        );
        // requests' files={} body: only the closing delimiter.
        let empty = Multipart::with_boundary("B");
        assert_eq!(empty.to_bytes().unwrap(), b"--B--\r\n");
        assert_eq!(empty.content_length().unwrap(), 7);
        assert_eq!(parse(&empty), BodyArguments::default());
    }

    #[test]
    fn random_boundaries() {
        let (a, b) = (Multipart::new(), Multipart::new());
        assert_ne!(a.boundary(), b.boundary());
        for form in [a, b] {
            let hex = form.boundary().strip_prefix("whirl-").unwrap();
            assert_eq!(hex.len(), 32);
            assert!(hex.bytes().all(|c| HEX.contains(&c)));
        }
        let mut fallback = [0u8; 16];
        fallback_random(&mut fallback);
        let mut again = [0u8; 16];
        fallback_random(&mut again);
        assert_ne!(fallback, again);
    }

    #[test]
    fn content_length_is_the_streamed_length() {
        let disk = TempFile::new(&vec![7u8; 200_000]);
        let empty = TempFile::new(b"");
        let forms = [
            Multipart::new(),
            Multipart::new().field("a", "1"),
            Multipart::new()
                .field("a", "1")
                .file("f", "big.bin", disk.path())
                .file("g", "empty", empty.path())
                .file("h", "\u{e9}.txt", vec![1u8; 70_000])
                .file_from_path("i", disk.path()),
        ];
        for form in forms {
            let streamed: usize = pieces(&form).unwrap().iter().map(Vec::len).sum();
            assert_eq!(form.content_length().unwrap(), streamed as u64);
        }
    }

    #[test]
    fn a_one_mib_file_streams_in_pieces_of_at_most_64_kib() {
        let content: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let disk = TempFile::new(&content);
        let form = Multipart::new()
            .field("a", "1")
            .file("f", "big.bin", disk.path());
        let pieces = pieces(&form).unwrap();
        assert!(pieces
            .iter()
            .all(|p| !p.is_empty() && p.len() <= MULTIPART_CHUNK_SIZE));
        // Full pieces but the last: 1 MiB and headers take 17.
        assert_eq!(pieces.len(), 17);
        let body = pieces.concat();
        assert_eq!(body.len() as u64, form.content_length().unwrap());
        assert_eq!(parse(&form).files["f"][0].body, content);
    }

    #[test]
    fn streams_replay_the_same_bytes() {
        let disk = TempFile::new(b"on disk");
        let form = Multipart::new()
            .field("a", "1")
            .file("f", "f.txt", disk.path());
        let first = form.to_bytes().unwrap();
        assert_eq!(form.to_bytes().unwrap(), first);
        assert_eq!(pieces(&form.clone()).unwrap().concat(), first);
        let clone = form.clone();
        assert_eq!(
            clone
                .into_stream()
                .collect::<io::Result<Vec<_>>>()
                .unwrap()
                .concat(),
            first
        );
        // Adding to a clone leaves the original as it was.
        let bigger = form.clone().field("b", "2");
        assert_eq!(form.to_bytes().unwrap(), first);
        assert_eq!(parse(&bigger).arguments["b"], [b"2".to_vec()]);
    }

    #[test]
    fn a_boundary_in_memory_picks_another() {
        let forced = "FORCED";
        let form = Multipart::with_boundary(forced).field("a", "x--FORCED y");
        assert_ne!(form.boundary(), forced);
        assert_eq!(parse(&form).arguments["a"], [b"x--FORCED y".to_vec()]);

        // A later part colliding with the boundary also re-checks the
        // earlier ones, and names count too.
        let form = Multipart::with_boundary(forced)
            .field("a", "1")
            .file("--FORCED", "f.bin", b"2");
        assert_ne!(form.boundary(), forced);
        assert_eq!(parse(&form).files["--FORCED"][0].body, b"2");

        // No collision, no change.
        let form = Multipart::with_boundary(forced).field("a", "-FORCED --FORCE");
        assert_eq!(form.boundary(), forced);
    }

    #[test]
    fn a_boundary_in_a_file_is_an_error_item() {
        // `--FORCED` split across the first two 64 KiB reads.
        let mut content = vec![b'x'; MULTIPART_CHUNK_SIZE * 2];
        let disk = TempFile::new(b"");
        let form = Multipart::with_boundary("FORCED").file("f", "f.bin", disk.path());
        // The first piece holds `--FORCED\r\n`, the header block, then the
        // file up to 64 KiB.
        let before = "--FORCED\r\n".len() + form.parts[0].head.len();
        let split = MULTIPART_CHUNK_SIZE - before - 3;
        content[split..split + 8].copy_from_slice(b"--FORCED");
        fs::write(disk.path(), &content).unwrap();

        let mut stream = form.stream();
        let first = stream.next().unwrap().unwrap();
        assert_eq!(first.len(), MULTIPART_CHUNK_SIZE);
        let err = stream.next().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            matches!(typed(&err), MultipartError::BoundaryInFile { path } if path == disk.path())
        );
        assert!(err.to_string().contains("contains the multipart boundary"));
        assert!(stream.next().is_none());

        // At the very start of the content, and alone in a short file.
        for content in [&b"--FORCED"[..], b"a\r\n--FORCED--\r\n"] {
            fs::write(disk.path(), content).unwrap();
            let form = Multipart::with_boundary("FORCED").file("f", "f.bin", disk.path());
            let err = form.to_bytes().unwrap_err();
            assert!(matches!(typed(&err), MultipartError::BoundaryInFile { .. }));
        }
        // Near misses are content.
        fs::write(disk.path(), b"--FORCE -FORCED --forced").unwrap();
        let form = Multipart::with_boundary("FORCED").file("f", "f.bin", disk.path());
        assert_eq!(parse(&form).files["f"][0].body, b"--FORCE -FORCED --forced");
    }

    #[test]
    fn a_file_that_changes_size_is_an_error_item() {
        let disk = TempFile::new(b"0123456789");
        let form = Multipart::new().file("f", "f.txt", disk.path());
        assert_eq!(
            form.content_length().unwrap(),
            form.clone().to_bytes().unwrap().len() as u64
        );

        // Grown after measuring: refused when opened.
        fs::write(disk.path(), b"0123456789ab").unwrap();
        let err = form.to_bytes().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(matches!(
            typed(&err),
            MultipartError::FileChanged {
                expected: 10,
                change: FileChange::Length(12),
                ..
            }
        ));
        assert!(err
            .to_string()
            .contains("changed after its length (10 bytes) was measured"));
        // The measured length stays: content_length does not follow the file.
        assert_eq!(
            form.content_length().unwrap(),
            form.content_length().unwrap()
        );

        // Shrunk.
        fs::write(disk.path(), b"0123").unwrap();
        let err = form.to_bytes().unwrap_err();
        assert!(matches!(
            typed(&err),
            MultipartError::FileChanged {
                change: FileChange::Length(4),
                ..
            }
        ));

        // Same length, touched.
        fs::write(disk.path(), b"abcdefghij").unwrap();
        let later = SystemTime::now() + Duration::from_secs(10);
        File::options()
            .write(true)
            .open(disk.path())
            .unwrap()
            .set_modified(later)
            .unwrap();
        let err = form.to_bytes().unwrap_err();
        assert!(matches!(
            typed(&err),
            MultipartError::FileChanged {
                change: FileChange::Modified,
                ..
            }
        ));
    }

    #[test]
    fn a_file_that_changes_while_streaming_is_an_error_item() {
        let content = vec![b'a'; 3 * MULTIPART_CHUNK_SIZE];
        let disk = TempFile::new(&content);
        let form = Multipart::new().file("f", "f.bin", disk.path());
        let length = form.content_length().unwrap();

        // Cut short after the first piece went out.
        let mut stream = form.stream();
        let mut sent = stream.next().unwrap().unwrap().len();
        File::options()
            .write(true)
            .open(disk.path())
            .unwrap()
            .set_len(MULTIPART_CHUNK_SIZE as u64)
            .unwrap();
        let err = loop {
            match stream.next().unwrap() {
                Ok(piece) => sent += piece.len(),
                Err(err) => break err,
            }
        };
        assert!(matches!(
            typed(&err),
            MultipartError::FileChanged {
                change: FileChange::EndedEarly(_),
                ..
            }
        ));
        assert!(stream.next().is_none());
        assert!((sent as u64) < length);

        // Grown after the first piece went out.
        fs::write(disk.path(), &content).unwrap();
        let form = Multipart::new().file("f", "f.bin", disk.path());
        let mut stream = form.stream();
        stream.next().unwrap().unwrap();
        let mut file = File::options().append(true).open(disk.path()).unwrap();
        file.write_all(b"more").unwrap();
        let err = stream.find_map(Result::err).unwrap();
        assert!(matches!(
            typed(&err),
            MultipartError::FileChanged {
                change: FileChange::Longer,
                ..
            }
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_longer_than_its_metadata_is_an_error_item() {
        // Files in /proc say they are empty and are not.
        let form = Multipart::new().file("f", "status", Path::new("/proc/self/status"));
        let empty_file_body = Multipart::new().file("f", "status", b"");
        assert_eq!(
            form.content_length().unwrap(),
            empty_file_body.content_length().unwrap()
        );
        let err = form.to_bytes().unwrap_err();
        assert!(matches!(
            typed(&err),
            MultipartError::FileChanged {
                expected: 0,
                change: FileChange::Longer,
                ..
            }
        ));
    }

    #[test]
    fn missing_files_and_directories_are_errors() {
        let missing = std::env::temp_dir().join("whirl-multipart-does-not-exist");
        let form = Multipart::new().file("f", "f", missing.as_path());
        let err = form.content_length().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(matches!(typed(&err), MultipartError::File { path, .. } if *path == missing));
        assert!(err.to_string().starts_with("the file "));
        let err = form.stream().next().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);

        let form = Multipart::new().file("d", "d", std::env::temp_dir());
        let err = form.content_length().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(matches!(typed(&err), MultipartError::NotAFile { .. }));
        assert!(form.to_bytes().is_err());
    }

    #[test]
    fn file_sources_convert() {
        let vec = vec![1u8, 2];
        assert_eq!(FileSource::from(&vec), FileSource::Bytes(vec.clone()));
        assert_eq!(FileSource::from(&vec[..]), FileSource::Bytes(vec.clone()));
        assert_eq!(
            FileSource::from(b"\x01\x02"),
            FileSource::Bytes(vec.clone())
        );
        let path = PathBuf::from("/a/b");
        assert_eq!(FileSource::from(&path), FileSource::Path(path.clone()));
        assert_eq!(
            FileSource::from(path.as_path()),
            FileSource::Path(path.clone())
        );
        assert_eq!(format!("{:?}", FileSource::from(vec)), "Bytes(2 bytes)");
        let form = Multipart::new().field("a", "1").file("f", "f.txt", path);
        let debug = format!("{form:?}");
        assert!(
            debug.contains("name=\\\"f\\\"") && debug.contains("/a/b"),
            "{debug}"
        );
        assert!(format!("{:?}", form.stream()).starts_with("MultipartStream"));
    }

    #[test]
    fn forms_and_streams_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Multipart>();
        send::<MultipartStream>();
        send_sync::<MultipartError>();
    }

    #[test]
    fn contains_finds_needles_anywhere() {
        assert!(contains(b"--B", b"--B"));
        assert!(contains(b"x--B", b"--B"));
        assert!(contains(b"---B", b"--B"));
        assert!(!contains(b"--", b"--B"));
        assert!(!contains(b"- -B", b"--B"));
        assert!(contains(b"anything", b""));
    }
}
