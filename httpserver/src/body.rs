//! Body framing: the pure [`Decoder`] and [`Encoder`] for `Content-Length`,
//! chunked and close-delimited bodies (RFC 9112 §6–7).
//!
//! No I/O: the decoder reads framing from a byte slice the caller owns and
//! hands back the body bytes as sub-slices of it (no copy); the encoder
//! produces the framing around each piece the caller writes.

use std::fmt;
use std::ops::Range;

use crate::headers::HttpHeaders;

/// Most bytes of chunk extensions on one chunk-size line (they are ignored).
pub const MAX_CHUNK_EXTENSION: usize = 4 * 1024;
/// Most bytes of trailer fields after the last chunk.
pub const MAX_TRAILER_SIZE: usize = 16 * 1024;
/// Most trailer fields after the last chunk.
pub const MAX_TRAILERS: usize = 100;

/// Why a body could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// A chunk-size line that is not hexadecimal.
    InvalidChunkSize,
    /// A chunk size too large to represent (a smuggling attempt).
    ChunkSizeOverflow,
    /// Chunk data not followed by CRLF.
    MissingChunkTerminator,
    /// Chunk extensions longer than [`MAX_CHUNK_EXTENSION`].
    ChunkExtensionTooLong,
    /// Trailers over [`MAX_TRAILER_SIZE`] bytes or [`MAX_TRAILERS`] fields.
    TrailersTooLarge,
    /// A malformed trailer field.
    BadTrailer(crate::headers::HeaderError),
    /// The body exceeds the limit it was decoded with.
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// More bytes written than the declared `Content-Length`.
    LengthExceeded,
    /// Fewer bytes written than the declared `Content-Length`.
    LengthShort {
        /// Bytes still owed.
        missing: u64,
    },
}

impl BodyError {
    /// The status a server answers a request body error with: 413 or 400.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::InvalidChunkSize => f.write_str("invalid chunk size"),
            BodyError::ChunkSizeOverflow => f.write_str("chunk size overflows"),
            BodyError::MissingChunkTerminator => f.write_str("chunk data is not followed by CRLF"),
            BodyError::ChunkExtensionTooLong => f.write_str("chunk extensions are too long"),
            BodyError::TrailersTooLarge => f.write_str("chunked trailers are too large"),
            BodyError::BadTrailer(e) => write!(f, "malformed trailer: {e}"),
            BodyError::TooLarge { max } => write!(f, "the body is larger than {max} bytes"),
            BodyError::LengthExceeded => {
                f.write_str("more bytes written than the declared Content-Length")
            }
            BodyError::LengthShort { missing } => {
                write!(f, "{missing} bytes short of the declared Content-Length")
            }
        }
    }
}

impl std::error::Error for BodyError {}

/// How a body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    CloseDelimited,
}

/// What one [`Decoder::decode`] call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of the input used up (framing and data).
    pub consumed: usize,
    /// Where in the input the body bytes are (may be empty).
    pub data: Range<usize>,
    /// Whether the body is complete.
    pub done: bool,
}

/// Where a chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading hex digits of a size; holds the value so far and digits seen.
    Size { value: u64, digits: u8 },
    /// Skipping extensions (or whitespace) up to the line end; holds the size
    /// and the bytes skipped.
    Extension { size: u64, skipped: usize },
    /// Expecting LF after a CR on the size line.
    SizeLf { size: u64 },
    /// Inside chunk data; bytes left.
    Data { left: u64 },
    /// Expecting CRLF (or LF) after data; `true` once CR was seen.
    DataEnd { cr: bool },
    /// Reading trailer lines (the current one is in `trailer_line`).
    Trailers,
    /// Finished.
    Done,
}

/// Decodes a body's framing, incrementally.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::{Decoder, Framing};
///
/// let mut d = Decoder::new(Framing::Chunked, u64::MAX);
/// let input = b"5\r\nhello\r\n0\r\n\r\n";
/// let step = d.decode(input).unwrap();
/// assert_eq!(&input[step.data.clone()], b"hello");
/// let rest = d.decode(&input[step.consumed..]).unwrap();
/// assert!(rest.done);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    /// The framing being decoded.
    framing: Framing,
    /// For `Length`: bytes left.
    left: u64,
    /// For `Chunked`: the state.
    chunk: Chunk,
    /// Body bytes seen so far.
    total: u64,
    /// Most body bytes accepted.
    max: u64,
    /// Trailer fields, once complete.
    trailers: HttpHeaders,
    /// The trailer line being read.
    trailer_line: Vec<u8>,
    /// Trailer bytes seen.
    trailer_bytes: usize,
}

impl Decoder {
    /// A decoder for `framing` that fails with [`BodyError::TooLarge`] past
    /// `max` body bytes (checked on a `Content-Length` up front and on each
    /// chunk size before its data).
    pub fn new(framing: Framing, max: u64) -> Decoder {
        Decoder {
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            chunk: Chunk::Size {
                value: 0,
                digits: 0,
            },
            total: 0,
            max,
            trailers: HttpHeaders::new(),
            trailer_line: Vec::new(),
            trailer_bytes: 0,
        }
    }

    /// The framing being decoded.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Body bytes decoded so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Trailer fields of a chunked body (empty until it is done).
    pub fn trailers(&self) -> &HttpHeaders {
        &self.trailers
    }

    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        match self.framing {
            Framing::Empty => true,
            Framing::Length(_) => self.left == 0,
            Framing::Chunked => self.chunk == Chunk::Done,
            Framing::CloseDelimited => false,
        }
    }

    /// Decodes from `input`: consumes framing and returns at most one run of
    /// body bytes. Call again with the rest of the input.
    ///
    /// # Errors
    ///
    /// A [`BodyError`] for malformed framing or a body over the limit.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, BodyError> {
        match self.framing {
            Framing::Empty => Ok(Decoded {
                consumed: 0,
                data: 0..0,
                done: true,
            }),
            Framing::Length(n) => {
                if n > self.max {
                    return Err(BodyError::TooLarge { max: self.max });
                }
                let take = (input.len() as u64).min(self.left) as usize;
                self.left -= take as u64;
                self.total += take as u64;
                Ok(Decoded {
                    consumed: take,
                    data: 0..take,
                    done: self.left == 0,
                })
            }
            Framing::CloseDelimited => {
                self.total += input.len() as u64;
                if self.total > self.max {
                    return Err(BodyError::TooLarge { max: self.max });
                }
                Ok(Decoded {
                    consumed: input.len(),
                    data: 0..input.len(),
                    done: false,
                })
            }
            Framing::Chunked => self.decode_chunked(input),
        }
    }

    /// Signals end of input (the connection closed): completes a
    /// close-delimited body; other framings are then incomplete.
    pub fn finish_on_eof(&mut self) -> bool {
        self.framing == Framing::CloseDelimited || self.is_done()
    }

    /// The chunked state machine.
    fn decode_chunked(&mut self, input: &[u8]) -> Result<Decoded, BodyError> {
        let mut pos = 0;
        while pos < input.len() {
            let b = input[pos];
            match self.chunk {
                Chunk::Size { value, digits } => {
                    match hex_digit(b) {
                        Some(d) => {
                            if digits >= 16 || value > (u64::MAX >> 4) {
                                return Err(BodyError::ChunkSizeOverflow);
                            }
                            self.chunk = Chunk::Size {
                                value: (value << 4) | d,
                                digits: digits + 1,
                            };
                        }
                        None if digits == 0 => return Err(BodyError::InvalidChunkSize),
                        None => match b {
                            b';' | b' ' | b'\t' => {
                                self.chunk = Chunk::Extension {
                                    size: value,
                                    skipped: 0,
                                }
                            }
                            b'\r' => self.chunk = Chunk::SizeLf { size: value },
                            b'\n' => self.start_chunk(value)?,
                            _ => return Err(BodyError::InvalidChunkSize),
                        },
                    }
                    pos += 1;
                }
                Chunk::Extension { size, skipped } => {
                    match b {
                        b'\r' => self.chunk = Chunk::SizeLf { size },
                        b'\n' => self.start_chunk(size)?,
                        // Extensions are accepted and ignored (RFC 9112 §7.1.1);
                        // control characters in them are not.
                        0..=8 | 10..=31 | 127 => return Err(BodyError::InvalidChunkSize),
                        _ if skipped >= MAX_CHUNK_EXTENSION => {
                            return Err(BodyError::ChunkExtensionTooLong)
                        }
                        _ => {
                            self.chunk = Chunk::Extension {
                                size,
                                skipped: skipped + 1,
                            }
                        }
                    }
                    pos += 1;
                }
                Chunk::SizeLf { size } => {
                    if b != b'\n' {
                        return Err(BodyError::InvalidChunkSize);
                    }
                    pos += 1;
                    self.start_chunk(size)?;
                }
                Chunk::Data { left } => {
                    let take = ((input.len() - pos) as u64).min(left) as usize;
                    let left = left - take as u64;
                    self.total += take as u64;
                    self.chunk = if left == 0 {
                        Chunk::DataEnd { cr: false }
                    } else {
                        Chunk::Data { left }
                    };
                    return Ok(Decoded {
                        consumed: pos + take,
                        data: pos..pos + take,
                        done: false,
                    });
                }
                Chunk::DataEnd { cr } => {
                    match (cr, b) {
                        (false, b'\r') => self.chunk = Chunk::DataEnd { cr: true },
                        (_, b'\n') => {
                            self.chunk = Chunk::Size {
                                value: 0,
                                digits: 0,
                            }
                        }
                        _ => return Err(BodyError::MissingChunkTerminator),
                    }
                    pos += 1;
                }
                Chunk::Trailers => {
                    pos += 1;
                    self.trailer_bytes += 1;
                    if self.trailer_bytes > MAX_TRAILER_SIZE {
                        return Err(BodyError::TrailersTooLarge);
                    }
                    if b != b'\n' {
                        self.trailer_line.push(b);
                        continue;
                    }
                    let line = std::mem::take(&mut self.trailer_line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    if line.is_empty() {
                        self.chunk = Chunk::Done;
                        return Ok(Decoded {
                            consumed: pos,
                            data: pos..pos,
                            done: true,
                        });
                    }
                    if self.trailers.len() >= MAX_TRAILERS {
                        return Err(BodyError::TrailersTooLarge);
                    }
                    self.trailers
                        .parse_line(line)
                        .map_err(BodyError::BadTrailer)?;
                }
                Chunk::Done => {
                    return Ok(Decoded {
                        consumed: pos,
                        data: pos..pos,
                        done: true,
                    })
                }
            }
        }
        Ok(Decoded {
            consumed: pos,
            data: pos..pos,
            done: self.chunk == Chunk::Done,
        })
    }

    /// Begins a chunk of `size` bytes (0: the last chunk, trailers follow).
    fn start_chunk(&mut self, size: u64) -> Result<(), BodyError> {
        if size == 0 {
            self.chunk = Chunk::Trailers;
            return Ok(());
        }
        if self.total.saturating_add(size) > self.max {
            return Err(BodyError::TooLarge { max: self.max });
        }
        self.chunk = Chunk::Data { left: size };
        Ok(())
    }
}

/// The value of a hex digit.
fn hex_digit(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some((b - b'0') as u64),
        b'a'..=b'f' => Some((b - b'a' + 10) as u64),
        b'A'..=b'F' => Some((b - b'A' + 10) as u64),
        _ => None,
    }
}

/// Frames a body being written.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::{Encoder, Framing};
///
/// let mut e = Encoder::new(Framing::Chunked);
/// let (head, tail) = e.frame(5).unwrap();
/// assert_eq!((head.as_slice(), tail), (b"5\r\n".as_slice(), b"\r\n".as_slice()));
/// assert_eq!(e.finish().unwrap(), b"0\r\n\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct Encoder {
    /// The framing produced.
    framing: Framing,
    /// For `Length`: bytes still owed.
    left: u64,
    /// Whether `finish` was called.
    finished: bool,
}

/// The framing bytes that go before one piece of body data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChunkHead {
    /// Hex size and CRLF, left-aligned.
    bytes: [u8; 18],
    /// How many of `bytes` are used.
    len: u8,
}

impl ChunkHead {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for ChunkHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ChunkHead({:?})",
            String::from_utf8_lossy(self.as_slice())
        )
    }
}

impl Encoder {
    /// An encoder for `framing`.
    pub fn new(framing: Framing) -> Encoder {
        Encoder {
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            finished: false,
        }
    }

    /// The framing produced.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The framing for `len` bytes of body: what to send before them and
    /// after them. An empty piece gets no framing (an empty chunk would end
    /// the body).
    ///
    /// # Errors
    ///
    /// [`BodyError::LengthExceeded`] if the piece goes past the declared
    /// length (nothing of it may be sent: the connection must be aborted).
    pub fn frame(&mut self, len: usize) -> Result<(ChunkHead, &'static [u8]), BodyError> {
        let empty = ChunkHead {
            bytes: [0; 18],
            len: 0,
        };
        match self.framing {
            Framing::Chunked if len > 0 => {
                let mut head = empty;
                let hex = format!("{len:x}\r\n");
                head.bytes[..hex.len()].copy_from_slice(hex.as_bytes());
                head.len = hex.len() as u8;
                Ok((head, b"\r\n"))
            }
            Framing::Length(_) => {
                if len as u64 > self.left {
                    return Err(BodyError::LengthExceeded);
                }
                self.left -= len as u64;
                Ok((empty, b""))
            }
            Framing::Empty if len > 0 => Err(BodyError::LengthExceeded),
            _ => Ok((empty, b"")),
        }
    }

    /// Ends the body: the bytes to send last.
    ///
    /// # Errors
    ///
    /// [`BodyError::LengthShort`] if fewer bytes than declared were written.
    pub fn finish(&mut self) -> Result<&'static [u8], BodyError> {
        self.finished = true;
        match self.framing {
            Framing::Chunked => Ok(b"0\r\n\r\n"),
            Framing::Length(_) if self.left > 0 => {
                Err(BodyError::LengthShort { missing: self.left })
            }
            _ => Ok(b""),
        }
    }

    /// Whether `finish` was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns the body.
    fn decode_all(
        framing: Framing,
        input: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, bool), BodyError> {
        let mut d = Decoder::new(framing, 1 << 20);
        let mut body = Vec::new();
        let mut buf = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                let got = d.decode(&buf)?;
                body.extend_from_slice(&buf[got.data.clone()]);
                buf.drain(..got.consumed);
                if got.done {
                    return Ok((body, true));
                }
                if got.consumed == 0 || buf.is_empty() {
                    break;
                }
            }
        }
        Ok((body, d.is_done()))
    }

    #[test]
    fn content_length() {
        let (body, done) = decode_all(Framing::Length(5), b"helloEXTRA", 3).unwrap();
        assert_eq!((body.as_slice(), done), (b"hello".as_slice(), true));
        assert_eq!(
            Decoder::new(Framing::Length(10), 5)
                .decode(b"x")
                .unwrap_err(),
            BodyError::TooLarge { max: 5 }
        );
    }

    #[test]
    fn chunked_in_every_split() {
        let input = b"5\r\nhello\r\nA;ext=1;q=\"x\"\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        for step in 1..input.len() {
            let (body, done) = decode_all(Framing::Chunked, input, step).unwrap();
            assert_eq!(body, b"hello0123456789", "step {step}");
            assert!(done, "step {step}");
        }
    }

    #[test]
    fn chunked_bare_lf_and_trailers() {
        let mut d = Decoder::new(Framing::Chunked, 100);
        let input = b"3\nabc\n0\nA: 1\nB: 2\n\n";
        let mut pos = 0;
        let mut body = Vec::new();
        loop {
            let got = d.decode(&input[pos..]).unwrap();
            body.extend_from_slice(&input[pos..][got.data.clone()]);
            pos += got.consumed;
            if got.done {
                break;
            }
        }
        assert_eq!(body, b"abc");
        assert_eq!(d.trailers().get("b"), Some("2"));
        assert_eq!(pos, input.len());
    }

    #[test]
    fn chunked_errors() {
        let cases: &[(&[u8], BodyError)] = &[
            (b"1_a\r\n", BodyError::InvalidChunkSize),
            (b"\r\n", BodyError::InvalidChunkSize),
            (b"-1\r\n", BodyError::InvalidChunkSize),
            (b"3\r\nabcX", BodyError::MissingChunkTerminator),
            (b"3\r\nabc\rX", BodyError::MissingChunkTerminator),
            (b"11111111111111111\r\n", BodyError::ChunkSizeOverflow),
            (
                b"ffffffffffffffff\r\n",
                BodyError::TooLarge { max: 1 << 20 },
            ),
            (b"3\rX", BodyError::InvalidChunkSize),
            (
                b"0\r\nBad Trailer\r\n\r\n",
                BodyError::BadTrailer(crate::headers::HeaderError::MissingColon),
            ),
        ];
        for (input, want) in cases {
            let got = decode_all(Framing::Chunked, input, input.len());
            assert_eq!(
                got.unwrap_err(),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn chunked_total_is_bounded() {
        let mut d = Decoder::new(Framing::Chunked, 8);
        let input = b"5\r\nhello\r\n5\r\nworld\r\n";
        let first = d.decode(input).unwrap();
        assert_eq!(first.data.len(), 5);
        assert_eq!(
            d.decode(&input[first.consumed..]).unwrap_err(),
            BodyError::TooLarge { max: 8 }
        );
    }

    #[test]
    fn long_extensions_and_trailers_are_bounded() {
        let mut ext = b"1;".to_vec();
        ext.resize(MAX_CHUNK_EXTENSION + 10, b'a');
        assert_eq!(
            decode_all(Framing::Chunked, &ext, 64).unwrap_err(),
            BodyError::ChunkExtensionTooLong
        );
        let mut trailers = b"0\r\n".to_vec();
        for i in 0..200 {
            trailers.extend_from_slice(format!("T{i}: v\r\n").as_bytes());
        }
        assert_eq!(
            decode_all(Framing::Chunked, &trailers, 64).unwrap_err(),
            BodyError::TrailersTooLarge
        );
    }

    #[test]
    fn encoder_round_trip() {
        let mut e = Encoder::new(Framing::Chunked);
        let mut wire = Vec::new();
        for piece in [
            b"hello".as_slice(),
            b"",
            b" world, this is longer than 16 bytes",
        ] {
            let (head, tail) = e.frame(piece.len()).unwrap();
            wire.extend_from_slice(head.as_slice());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(tail);
        }
        wire.extend_from_slice(e.finish().unwrap());
        let (body, done) = decode_all(Framing::Chunked, &wire, 7).unwrap();
        assert!(done);
        assert_eq!(body, b"hello world, this is longer than 16 bytes");
    }

    #[test]
    fn encoder_enforces_content_length() {
        let mut e = Encoder::new(Framing::Length(4));
        e.frame(3).unwrap();
        assert_eq!(e.frame(2).unwrap_err(), BodyError::LengthExceeded);
        assert_eq!(
            e.finish().unwrap_err(),
            BodyError::LengthShort { missing: 1 }
        );
        let mut e = Encoder::new(Framing::Empty);
        assert_eq!(e.frame(1).unwrap_err(), BodyError::LengthExceeded);
    }
}
