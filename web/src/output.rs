//! The response on the wire: headers once, body pieces, gzip, `Etag` and
//! 304, `Content-Length` — Tornado's `RequestHandler.flush`/`finish` and
//! its `GZipContentEncoding` output transform.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use sha1::{Digest, Sha1};
use whirl_httpserver::{Decimal, ResponseStartLine, Version};
use whirl_iostream::WriteFuture;

use crate::context::Context;
use crate::error::HttpError;
use crate::static_files::if_none_match_matches;

/// Bodies shorter than this are not worth compressing when the whole
/// response is known at once (Tornado's `GZipContentEncoding.MIN_LENGTH`).
pub const GZIP_MIN_LENGTH: usize = 1024;

/// What has been sent of a response.
#[derive(Default)]
pub(crate) struct Output {
    /// Whether the head went out.
    headers_written: bool,
    /// The compressor, when the body is sent gzipped.
    gzip: Option<Box<GzEncoder<Vec<u8>>>>,
}

impl Output {
    /// Whether the head went out.
    pub(crate) fn headers_written(&self) -> bool {
        self.headers_written
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("headers_written", &self.headers_written)
            .field("gzip", &self.gzip.is_some())
            .finish()
    }
}

impl Context {
    /// Sends what is buffered: the head first if it has not gone out, then
    /// the body piece; with `finishing`, ends the response. Returns the
    /// future of the last write.
    pub(crate) fn send(&mut self, finishing: bool) -> Result<Option<WriteFuture>, HttpError> {
        let mut chunk = std::mem::take(&mut self.buffer);
        let connection = self.connection.clone();
        let mut last = None;
        if !self.output.headers_written {
            // Step 1. A finished GET 200 gets an Etag; a match answers 304.
            if finishing {
                self.apply_etag(&chunk);
                if self.status == 304 {
                    chunk.clear();
                }
            }
            let bodiless = matches!(self.status, 100..=199 | 204 | 304);
            if bodiless {
                if !chunk.is_empty() {
                    log::error!("a {} response cannot have a body: dropped", self.status);
                    chunk.clear();
                }
                // No representation, so no representation headers
                // (Tornado's `_clear_representation_headers`, for 1xx, 204
                // and 304 alike).
                for name in ["Content-Encoding", "Content-Language", "Content-Type"] {
                    self.headers.remove(name);
                }
            }
            // Step 2. Compression, decided on the first piece.
            if self.app.settings().compress_response {
                self.start_gzip(finishing, chunk.len());
            }
            if let Some(gzip) = self.output.gzip.as_mut() {
                chunk = compress(gzip, &chunk, finishing)?;
                if !finishing {
                    self.headers.remove("Content-Length");
                }
                if finishing {
                    self.output.gzip = None;
                }
            }
            // Step 3. A finished body has a known length: the usual
            // response goes out whole, its length said by the connection.
            if finishing
                && !self.headers.contains("Content-Length")
                && !self.headers.contains("Transfer-Encoding")
            {
                let start_line = ResponseStartLine {
                    version: Version::Http11,
                    code: self.status,
                    reason: self.reason.clone().unwrap_or_default(),
                };
                let last = connection.respond_with(&start_line, &self.headers, chunk)?;
                self.output.headers_written = true;
                return Ok(Some(last));
            }
            if finishing && !bodiless && !self.headers.contains("Content-Length") {
                self.headers
                    .insert("Content-Length", Decimal::from(chunk.len()));
            }
            // No copy of a standard reason: an empty one means it.
            let start_line = ResponseStartLine {
                version: Version::Http11,
                code: self.status,
                reason: self.reason.clone().unwrap_or_default(),
            };
            last = Some(connection.write_headers(&start_line, &self.headers)?);
            self.output.headers_written = true;
        } else if let Some(gzip) = self.output.gzip.as_mut() {
            chunk = compress(gzip, &chunk, finishing)?;
        }
        // Step 4. The body piece, then the end.
        if !chunk.is_empty() {
            last = Some(connection.write(chunk)?);
        }
        if finishing {
            last = Some(connection.finish()?);
        }
        Ok(last)
    }

    /// Tornado's `compute_etag` + `check_etag_header` for a finished
    /// response: a `GET`/`HEAD` 200 without an `Etag` gets one (the body's
    /// SHA-1), and becomes 304 when `If-None-Match` matches the `Etag`.
    fn apply_etag(&mut self, body: &[u8]) {
        let method = self.request.method();
        if self.status != 200 || !(method == "GET" || method == "HEAD") {
            return;
        }
        // A tag made here is matched as made, not looked up again.
        let mut quoted = [b'"'; 42];
        let made = if self.headers.contains("Etag") {
            None
        } else {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for (i, byte) in Sha1::digest(body).into_iter().enumerate() {
                quoted[1 + 2 * i] = HEX[usize::from(byte >> 4)];
                quoted[2 + 2 * i] = HEX[usize::from(byte & 0xf)];
            }
            // Hex digits between quotes: always text. Added, not inserted:
            // there is none to replace.
            let tag = std::str::from_utf8(&quoted).unwrap_or("\"\"");
            self.headers.add("Etag", tag);
            Some(tag)
        };
        let matches = match (self.request.headers.get("If-None-Match"), made) {
            (None, _) => false,
            (Some(header), Some(tag)) => if_none_match_matches(header, tag),
            (Some(header), None) => self
                .headers
                .get("Etag")
                .is_some_and(|etag| if_none_match_matches(header, etag)),
        };
        if matches {
            self.set_status(304);
        }
    }

    /// Decides whether to gzip this response (Tornado's
    /// `GZipContentEncoding.transform_first_chunk`): the client accepts it,
    /// the type is compressible, the status allows a body (never 206), no
    /// other encoding is set, and a whole body is at least
    /// [`GZIP_MIN_LENGTH`]. `Vary: Accept-Encoding` either way.
    fn start_gzip(&mut self, finishing: bool, length: usize) {
        match self.headers.get_joined("Vary") {
            Some(vary) if vary.to_ascii_lowercase().contains("accept-encoding") => {}
            Some(vary) => {
                let vary = format!("{vary}, Accept-Encoding");
                self.headers.insert("Vary", vary);
            }
            None => self.headers.insert("Vary", "Accept-Encoding"),
        }
        let accepts = self
            .request
            .headers
            .get_all("Accept-Encoding")
            .flat_map(|v| v.split(','))
            .any(|coding| {
                let mut parts = coding.split(';');
                let name = parts.next().unwrap_or("").trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
                });
                name.eq_ignore_ascii_case("gzip") && !refused
            });
        let content_type = self.headers.get("Content-Type").unwrap_or("");
        let gzipping = accepts
            && compressible(content_type)
            && !matches!(self.status, 100..=199 | 204 | 206 | 304)
            && self.request.method() != "HEAD"
            && (!finishing || length >= GZIP_MIN_LENGTH)
            && !self.headers.contains("Content-Encoding");
        if gzipping {
            self.headers.insert("Content-Encoding", "gzip");
            self.headers.remove("Content-Length");
            self.output.gzip = Some(Box::new(GzEncoder::new(Vec::new(), Compression::new(6))));
        }
    }
}

/// Compresses `chunk`; with `finishing`, ends the gzip stream, else flushes
/// so the client can decode what was sent so far.
fn compress(
    gzip: &mut GzEncoder<Vec<u8>>,
    chunk: &[u8],
    finishing: bool,
) -> Result<Vec<u8>, HttpError> {
    gzip.write_all(chunk)?;
    if finishing {
        gzip.try_finish()?;
    } else {
        gzip.flush()?;
    }
    Ok(std::mem::take(gzip.get_mut()))
}

/// Whether a `Content-Type` is worth compressing (Tornado's
/// `GZipContentEncoding.CONTENT_TYPES`, plus any `text/*`).
fn compressible(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime.starts_with("text/")
        || matches!(
            mime.as_str(),
            "application/javascript"
                | "application/x-javascript"
                | "application/xml"
                | "application/atom+xml"
                | "application/json"
                | "application/xhtml+xml"
                | "image/svg+xml"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_types_follow_tornado() {
        assert!(compressible("text/html; charset=UTF-8"));
        assert!(compressible("application/json"));
        assert!(compressible("image/svg+xml"));
        assert!(!compressible("image/png"));
        assert!(!compressible(""));
    }

    #[test]
    fn flushed_pieces_decode_to_the_whole() {
        let mut gzip = GzEncoder::new(Vec::new(), Compression::new(6));
        let mut wire = compress(&mut gzip, b"hello ", false).unwrap();
        wire.extend(compress(&mut gzip, b"world", true).unwrap());
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&wire[..]), &mut out)
            .unwrap();
        assert_eq!(out, "hello world");
    }
}
