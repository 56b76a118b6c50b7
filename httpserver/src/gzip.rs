//! [`GzipDecompressor`]: a streaming gzip decoder with a bound on its output,
//! pure (bytes in, bytes out, no I/O) — the codec behind `decompress_request`.
//!
//! The deflate data is inflated by `flate2`; the gzip framing around it
//! (RFC 1952: header, CRC-32 and length trailer, concatenated members) is
//! parsed here, a byte at a time where it must be, so nothing is buffered but
//! a few fixed fields. Output comes in pieces no larger than the caller asks
//! for, and the running total is checked against a limit before more is
//! inflated: a gzip bomb is refused after `max + 1` bytes, not after all of
//! them.

use std::fmt;

use flate2::{Crc, Decompress, FlushDecompress, Status};

/// Flag bit: the header has an extra field.
const FEXTRA: u8 = 0x04;
/// Flag bit: the header has a zero-terminated file name.
const FNAME: u8 = 0x08;
/// Flag bit: the header has a zero-terminated comment.
const FCOMMENT: u8 = 0x10;
/// Flag bit: the header ends with a CRC-16 of itself.
const FHCRC: u8 = 0x02;
/// Flag bits RFC 1952 reserves; a header with any set is refused.
const FRESERVED: u8 = 0xe0;

/// Why a gzip body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GzipError {
    /// The bytes do not start a gzip member (wrong magic, a compression
    /// method other than deflate, reserved flags, a wrong header CRC).
    InvalidHeader,
    /// The deflate data is malformed.
    Corrupt,
    /// A member's CRC-32 or length differs from its trailer.
    ChecksumMismatch,
    /// The body ended inside a member.
    Truncated,
    /// The decompressed size went over the limit (413).
    TooLarge {
        /// The limit, in decompressed bytes.
        max: u64,
    },
}

impl GzipError {
    /// The status a server answers with: 413 for [`GzipError::TooLarge`],
    /// 400 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            GzipError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}

impl fmt::Display for GzipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GzipError::InvalidHeader => f.write_str("the body is not gzip data"),
            GzipError::Corrupt => f.write_str("the gzip body holds malformed deflate data"),
            GzipError::ChecksumMismatch => {
                f.write_str("the gzip body does not match its checksum or length")
            }
            GzipError::Truncated => f.write_str("the gzip body ends in the middle of a member"),
            GzipError::TooLarge { max } => {
                write!(f, "the decompressed body is over the {max}-byte limit")
            }
        }
    }
}

impl std::error::Error for GzipError {}

/// Where in a member the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The 10 fixed header bytes.
    Fixed,
    /// The 2-byte length of the extra field.
    ExtraLength,
    /// The extra field (`remaining` bytes to skip).
    Extra,
    /// The zero-terminated file name.
    Name,
    /// The zero-terminated comment.
    Comment,
    /// The header's CRC-16.
    HeaderCrc,
    /// The deflate data.
    Body,
    /// The 8-byte trailer: CRC-32 and length.
    Trailer,
    /// Between members (or before the first, when `started` is false).
    End,
}

/// A streaming gzip decoder that stops at a size limit. Tornado:
/// `util.GzipDecompressor` (which has no limit of its own).
///
/// Feed it the body as it arrives; each call returns the bytes it decoded
/// (at most `max_piece`) and how much input it consumed — call again with
/// the rest. Concatenated members decode as one body, as `gzip -d` does;
/// a truncated body or a wrong checksum is an error (Tornado's zlib object
/// lets both pass).
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use whirl_httpserver::{GzipDecompressor, GzipError};
///
/// let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
/// encoder.write_all(&[b'a'; 10_000]).unwrap();
/// let gz = encoder.finish().unwrap();
///
/// // Decoded in pieces of at most 4 KiB.
/// let mut decoder = GzipDecompressor::new(100_000);
/// let (mut body, mut at) = (Vec::new(), 0);
/// loop {
///     let (piece, consumed) = decoder.decompress(&gz[at..], 4096).unwrap();
///     at += consumed;
///     if piece.is_empty() && consumed == 0 {
///         break;
///     }
///     assert!(piece.len() <= 4096);
///     body.extend(piece);
/// }
/// decoder.finish().unwrap();
/// assert_eq!(body, [b'a'; 10_000]);
///
/// // With a 1,000-byte limit the same body is refused.
/// let mut small = GzipDecompressor::new(1_000);
/// assert_eq!(small.decompress(&gz, 4096), Err(GzipError::TooLarge { max: 1_000 }));
/// ```
pub struct GzipDecompressor {
    /// The part of the member being read.
    stage: Stage,
    /// The fixed header (10 bytes), extra length (2), header CRC (2) or
    /// trailer (8) read so far; `have` bytes of it are valid.
    field: [u8; 10],
    /// Bytes of `field` read so far.
    have: usize,
    /// The header's flag byte.
    flags: u8,
    /// Bytes of the extra field still to skip.
    extra_left: usize,
    /// CRC-32 of the header bytes so far (for `FHCRC`), then of the
    /// member's decompressed bytes (for the trailer).
    crc: Crc,
    /// The raw deflate decoder of the current member.
    inflate: Decompress,
    /// Decompressed bytes so far, all members.
    total_out: u64,
    /// Most decompressed bytes allowed.
    max: u64,
    /// Whether any byte was fed (an empty body is a valid empty body).
    started: bool,
}

impl GzipDecompressor {
    /// A decoder that refuses to produce more than `max` bytes in all.
    pub fn new(max: u64) -> GzipDecompressor {
        GzipDecompressor {
            stage: Stage::End,
            field: [0; 10],
            have: 0,
            flags: 0,
            extra_left: 0,
            crc: Crc::new(),
            inflate: Decompress::new(false),
            total_out: 0,
            max,
            started: false,
        }
    }

    /// Decompressed bytes produced so far.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    /// Decodes from `input`; returns the decoded bytes (at most `max_piece`,
    /// taken as 1 if 0) and how many bytes of `input` were consumed. Output may remain
    /// pending after all input is consumed: call again (with empty input)
    /// until a call returns nothing and consumes nothing.
    ///
    /// # Errors
    ///
    /// A [`GzipError`]; the decoder is then unusable.
    pub fn decompress(
        &mut self,
        input: &[u8],
        max_piece: usize,
    ) -> Result<(Vec<u8>, usize), GzipError> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.stage {
                Stage::End => {
                    if rest.is_empty() {
                        break;
                    }
                    // A new member starts.
                    self.started = true;
                    self.stage = Stage::Fixed;
                    self.have = 0;
                    self.crc.reset();
                }
                Stage::Fixed => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = self.fill(rest, 10);
                    self.crc.update(&rest[..take]);
                    pos += take;
                    self.check_fixed_prefix()?;
                    if self.have == 10 {
                        self.flags = self.field[3];
                        if self.flags & FRESERVED != 0 {
                            return Err(GzipError::InvalidHeader);
                        }
                        self.advance_header(Stage::Fixed);
                    }
                }
                Stage::ExtraLength => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = self.fill(rest, 2);
                    self.crc.update(&rest[..take]);
                    pos += take;
                    if self.have == 2 {
                        self.extra_left =
                            usize::from(u16::from_le_bytes([self.field[0], self.field[1]]));
                        self.stage = Stage::Extra;
                    }
                }
                Stage::Extra => {
                    let take = rest.len().min(self.extra_left);
                    self.crc.update(&rest[..take]);
                    pos += take;
                    self.extra_left -= take;
                    if self.extra_left > 0 {
                        break;
                    }
                    self.advance_header(Stage::Extra);
                }
                Stage::Name | Stage::Comment => match memchr::memchr(0, rest) {
                    Some(nul) => {
                        self.crc.update(&rest[..=nul]);
                        pos += nul + 1;
                        self.advance_header(self.stage);
                    }
                    None => {
                        self.crc.update(rest);
                        pos = input.len();
                        break;
                    }
                },
                Stage::HeaderCrc => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = self.fill(rest, 2);
                    pos += take;
                    if self.have == 2 {
                        let expected = u16::from_le_bytes([self.field[0], self.field[1]]);
                        if (self.crc.sum() & 0xffff) as u16 != expected {
                            return Err(GzipError::InvalidHeader);
                        }
                        self.advance_header(Stage::HeaderCrc);
                    }
                }
                Stage::Body => {
                    // Never inflate past max + 1 bytes: one more than allowed
                    // is enough to know the body is too large.
                    let allowed = self.max.saturating_sub(self.total_out).saturating_add(1);
                    let room = usize::try_from(allowed)
                        .unwrap_or(usize::MAX)
                        .min(max_piece.max(1).saturating_sub(out.len()));
                    if room == 0 {
                        break;
                    }
                    let start = out.len();
                    out.resize(start + room, 0);
                    let (in_before, out_before) =
                        (self.inflate.total_in(), self.inflate.total_out());
                    let status = self
                        .inflate
                        .decompress(rest, &mut out[start..], FlushDecompress::None)
                        .map_err(|_| GzipError::Corrupt)?;
                    let consumed = (self.inflate.total_in() - in_before) as usize;
                    let produced = (self.inflate.total_out() - out_before) as usize;
                    out.truncate(start + produced);
                    pos += consumed;
                    self.crc.update(&out[start..]);
                    self.total_out += produced as u64;
                    if self.total_out > self.max {
                        return Err(GzipError::TooLarge { max: self.max });
                    }
                    match status {
                        Status::StreamEnd => {
                            self.stage = Stage::Trailer;
                            self.have = 0;
                        }
                        Status::Ok | Status::BufError if consumed == 0 && produced == 0 => break,
                        Status::Ok | Status::BufError => {}
                    }
                }
                Stage::Trailer => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = self.fill(rest, 8);
                    pos += take;
                    if self.have == 8 {
                        let f = &self.field;
                        let crc = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
                        let size = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
                        if crc != self.crc.sum() || size != self.crc.amount() {
                            return Err(GzipError::ChecksumMismatch);
                        }
                        self.stage = Stage::End;
                    }
                }
            }
        }
        Ok((out, pos))
    }

    /// Checks that the body ended between members (an empty body counts).
    ///
    /// # Errors
    ///
    /// [`GzipError::Truncated`] if it ended inside one.
    pub fn finish(&self) -> Result<(), GzipError> {
        if self.stage == Stage::End {
            Ok(())
        } else {
            Err(GzipError::Truncated)
        }
    }

    /// Copies bytes of `rest` into `field` until it holds `len`; returns how
    /// many were taken.
    fn fill(&mut self, rest: &[u8], len: usize) -> usize {
        let take = rest.len().min(len - self.have);
        self.field[self.have..self.have + take].copy_from_slice(&rest[..take]);
        self.have += take;
        take
    }

    /// Refuses a fixed header whose bytes so far are not gzip's: magic
    /// `1f 8b`, method 8 (deflate).
    fn check_fixed_prefix(&self) -> Result<(), GzipError> {
        const PREFIX: [u8; 3] = [0x1f, 0x8b, 8];
        let known = self.have.min(PREFIX.len());
        if self.field[..known] == PREFIX[..known] {
            Ok(())
        } else {
            Err(GzipError::InvalidHeader)
        }
    }

    /// Moves past header part `done` to the next part the flags ask for,
    /// or to the deflate data.
    fn advance_header(&mut self, done: Stage) {
        let order = [
            (Stage::ExtraLength, FEXTRA),
            (Stage::Name, FNAME),
            (Stage::Comment, FCOMMENT),
            (Stage::HeaderCrc, FHCRC),
        ];
        let after = match done {
            Stage::Fixed => 0,
            Stage::Extra => 1,
            Stage::Name => 2,
            Stage::Comment => 3,
            _ => 4,
        };
        self.have = 0;
        self.stage = order[after..]
            .iter()
            .find(|(_, flag)| self.flags & flag != 0)
            .map_or(Stage::Body, |(stage, _)| *stage);
        if self.stage == Stage::Body {
            self.inflate.reset(false);
            self.crc.reset();
        }
    }
}

impl fmt::Debug for GzipDecompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GzipDecompressor")
            .field("stage", &self.stage)
            .field("total_out", &self.total_out)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// Decodes `input` fed `step` bytes at a time, in pieces of `piece`.
    fn decode(input: &[u8], max: u64, step: usize, piece: usize) -> Result<Vec<u8>, GzipError> {
        let mut decoder = GzipDecompressor::new(max);
        let mut body = Vec::new();
        for chunk in input.chunks(step) {
            let mut at = 0;
            loop {
                let (out, consumed) = decoder.decompress(&chunk[at..], piece)?;
                assert!(out.len() <= piece);
                at += consumed;
                if out.is_empty() && consumed == 0 {
                    break;
                }
                body.extend(out);
            }
            assert_eq!(at, chunk.len(), "input left unconsumed");
        }
        decoder.finish()?;
        Ok(body)
    }

    fn sample() -> Vec<u8> {
        (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn round_trips_at_every_feed_and_piece_size() {
        let data = sample();
        let gz = gzip(&data);
        for (step, piece) in [(1, 7), (3, 1), (10, 100), (4096, 65536), (usize::MAX, 16)] {
            let step = step.min(gz.len());
            assert_eq!(
                decode(&gz, u64::MAX, step, piece).unwrap(),
                data,
                "{step}/{piece}"
            );
        }
    }

    #[test]
    fn an_empty_body_is_an_empty_body() {
        assert_eq!(decode(b"", 10, 1, 10).unwrap(), b"");
        assert_eq!(decode(&gzip(b""), 10, 1, 10).unwrap(), b"");
    }

    #[test]
    fn concatenated_members_decode_as_one_body() {
        let mut gz = gzip(b"hello, ");
        gz.extend(gzip(b"world"));
        assert_eq!(decode(&gz, 100, 2, 3).unwrap(), b"hello, world");
    }

    #[test]
    fn optional_header_fields_are_skipped_and_the_header_crc_checked() {
        let mut gz = flate2::GzBuilder::new()
            .filename("a.txt")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4])
            .write(Vec::new(), flate2::Compression::default());
        gz.write_all(b"payload").unwrap();
        let plain = gz.finish().unwrap();
        assert_eq!(decode(&plain, 100, 1, 100).unwrap(), b"payload");

        // The same member with FHCRC: a CRC-16 of the header appended to it.
        let header_len = plain.len() - gzip_tail_len(&plain);
        let mut with_hcrc = plain[..header_len].to_vec();
        with_hcrc[3] |= FHCRC;
        let mut crc = Crc::new();
        crc.update(&with_hcrc);
        with_hcrc.extend(((crc.sum() & 0xffff) as u16).to_le_bytes());
        let mut bad = with_hcrc.clone();
        with_hcrc.extend(&plain[header_len..]);
        assert_eq!(decode(&with_hcrc, 100, 1, 100).unwrap(), b"payload");
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        bad.extend(&plain[header_len..]);
        assert_eq!(decode(&bad, 100, 3, 100), Err(GzipError::InvalidHeader));
    }

    /// Bytes after the header of a member written by `GzBuilder` with a
    /// file name, comment and extra field: found by the comment's NUL.
    fn gzip_tail_len(member: &[u8]) -> usize {
        let comment_end = member
            .windows(10)
            .position(|w| w == b"a comment\0")
            .unwrap()
            + 10;
        member.len() - comment_end
    }

    #[test]
    fn malformed_input_is_refused() {
        let gz = gzip(b"some text to compress, some text to compress");
        let cases: Vec<(Vec<u8>, GzipError)> = vec![
            (b"plain text".to_vec(), GzipError::InvalidHeader),
            (vec![0x1f, 0x8b, 7], GzipError::InvalidHeader),
            (
                [&gz[..3], &[0xe0], &gz[4..]].concat(),
                GzipError::InvalidHeader,
            ),
            ([&gz[..10], &[0xff; 20]].concat(), GzipError::Corrupt),
            (gz[..gz.len() - 3].to_vec(), GzipError::Truncated),
            (gz[..5].to_vec(), GzipError::Truncated),
            (
                [&gz[..gz.len() - 8], &[0, 0, 0, 0], &gz[gz.len() - 4..]].concat(),
                GzipError::ChecksumMismatch,
            ),
            (
                [&gz[..gz.len() - 4], &[0, 0, 0, 0]].concat(),
                GzipError::ChecksumMismatch,
            ),
            (
                [&gz[..], b"trailing garbage"].concat(),
                GzipError::InvalidHeader,
            ),
        ];
        for (input, want) in cases {
            for step in [1, 5, input.len()] {
                assert_eq!(
                    decode(&input, 1000, step, 64),
                    Err(want.clone()),
                    "{input:?}"
                );
            }
        }
    }

    #[test]
    fn a_bomb_is_refused_after_the_limit_not_after_inflating_it_all() {
        // 256 members of 1 MiB of zeros: 256 MiB from about 256 KiB.
        let bomb = gzip(&vec![0u8; 1 << 20]).repeat(256);
        let mut decoder = GzipDecompressor::new(1 << 20);
        let mut at = 0;
        let err = loop {
            match decoder.decompress(&bomb[at..], 64 * 1024) {
                Ok((_, consumed)) => at += consumed,
                Err(e) => break e,
            }
        };
        assert_eq!(err, GzipError::TooLarge { max: 1 << 20 });
        assert_eq!(decoder.total_out(), (1 << 20) + 1);
        assert!(at < bomb.len() / 100, "read {at} of {} bytes", bomb.len());
    }

    #[test]
    fn exactly_the_limit_is_allowed() {
        let data = vec![7u8; 5000];
        assert_eq!(decode(&gzip(&data), 5000, 100, 1024).unwrap(), data);
        assert_eq!(
            decode(&gzip(&data), 4999, 100, 1024),
            Err(GzipError::TooLarge { max: 4999 })
        );
    }
}
