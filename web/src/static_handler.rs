//! [`StaticFileHandler`]: files from a directory, with ETags, 304s, ranges
//! and bounded memory — Tornado's `StaticFileHandler.get`, in its order
//! (the pure steps are in [`static_files`](crate::static_files)).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use whirl_httpserver::format_timestamp;

use crate::context::Context;
use crate::error::HttpError;
use crate::handler::{HandlerResult, RequestHandler};
use crate::static_files::{
    cache_time, content_range_header, content_type, etag, modified_time, parse_range,
    resolve_default_file, resolve_path, resolve_range, should_return_304,
    unsatisfiable_content_range, ChunkReader, RangeOutcome, ResolvedPath,
};

/// Serves the files under a root directory; the route's first group is the
/// path inside it. Tornado: `StaticFileHandler`.
///
/// With the `static_path` setting the application adds one for
/// `static_url_prefix` itself; add others with a route such as
/// `Route::new(r"/files/(.*)", move || StaticFileHandler::new(root.clone()))`.
///
/// Paths cannot leave the root (`..`, `%2e%2e`, backslashes, absolute paths
/// and symlinks out of it answer 403; missing files 404). Responses carry
/// `Etag` (the content's SHA-512), `Last-Modified`, `Content-Type` from the
/// extension and `Accept-Ranges`; `If-None-Match`/`If-Modified-Since`
/// answer 304; one `Range` answers 206 (416 when unsatisfiable; several
/// ranges get the whole file). A URL with `?v=` (from
/// [`Context::static_url`]) may be cached for ten years. Bodies are read
/// and sent 64 KiB at a time, each piece flushed before the next is read,
/// so a file of any size is served with bounded memory.
///
/// # Examples
///
/// ```
/// use whirl_web::{Route, StaticFileHandler};
///
/// let route = Route::new(r"/files/(.*)", || {
///     StaticFileHandler::new("/srv/files").default_filename("index.html")
/// });
/// # let _ = route;
/// ```
#[derive(Debug, Clone)]
pub struct StaticFileHandler {
    /// The directory served.
    root: PathBuf,
    /// The file served for a directory URL (`index.html`), if any.
    default_filename: Option<String>,
}

impl StaticFileHandler {
    /// A handler serving the files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> StaticFileHandler {
        StaticFileHandler {
            root: root.into(),
            default_filename: None,
        }
    }

    /// Serves `name` for a directory URL. Tornado: `default_filename`.
    /// Default is none (403 for directories).
    pub fn default_filename(mut self, name: impl Into<String>) -> StaticFileHandler {
        self.default_filename = Some(name.into());
        self
    }

    /// Tornado's `StaticFileHandler.get(path, include_body)`.
    async fn serve(&mut self, cx: &mut Context, include_body: bool) -> HandlerResult {
        // Step 1. The file, safely inside the root.
        // The resolver decodes the path itself (exactly once), so it gets
        // the group as it appears in the URL.
        let raw = cx
            .path
            .raw_args
            .first()
            .cloned()
            .flatten()
            .unwrap_or_default();
        let (path, metadata) = match resolve_path(&self.root, &raw) {
            Ok(ResolvedPath::File { path, metadata }) => (path, metadata),
            Ok(ResolvedPath::Directory(directory)) => {
                let url_path = cx.request().path().to_string();
                if !url_path.ends_with('/') {
                    if url_path.starts_with("//") {
                        return Err(HttpError::new(403).log_message("cannot redirect //path"));
                    }
                    return cx.redirect(&format!("{url_path}/"), true);
                }
                let Some(default) = &self.default_filename else {
                    return Err(HttpError::new(403).log_message("is a directory"));
                };
                match resolve_default_file(&self.root, &directory, default) {
                    Ok(ResolvedPath::File { path, metadata }) => (path, metadata),
                    Ok(ResolvedPath::Directory(_)) => return Err(HttpError::new(403)),
                    Err(e) => return Err(HttpError::new(e.status()).log_message(e.to_string())),
                }
            }
            Err(e) => return Err(HttpError::new(e.status()).log_message(e.to_string())),
        };

        // Step 2. The validators and the caching headers.
        let versions = cx.application().static_versions();
        let tag = versions.version(&path, &metadata).map(|v| etag(&v));
        let modified = modified_time(&metadata);
        let size = metadata.len();
        cx.set_header("Accept-Ranges", "bytes")?;
        if let Some(tag) = &tag {
            cx.set_header("Etag", tag)?;
        }
        if let Some(modified) = modified {
            cx.set_header("Last-Modified", format_timestamp(modified))?;
        }
        cx.set_header("Content-Type", content_type(&path))?;
        let max_age = cache_time(cx.request().query());
        if max_age > 0 {
            let expires = SystemTime::now() + Duration::from_secs(max_age);
            cx.set_header("Expires", format_timestamp(expires))?;
            cx.set_header("Cache-Control", format!("max-age={max_age}"))?;
        }

        // Step 3. A cached copy that is still good.
        let headers = &cx.request().headers;
        if should_return_304(
            headers.get("If-None-Match"),
            headers.get("If-Modified-Since"),
            tag.as_deref(),
            modified,
        ) {
            cx.set_status(304);
            return Ok(());
        }

        // Step 4. The range asked for.
        let range = headers.get("Range").and_then(parse_range);
        let (start, length) = match range.map(|r| resolve_range(r, size)) {
            None | Some(RangeOutcome::Full) => (0, size),
            Some(RangeOutcome::Partial { start, end }) => {
                cx.set_status(206);
                cx.set_header("Content-Range", content_range_header(start, end, size))?;
                (start, end - start + 1)
            }
            Some(RangeOutcome::Unsatisfiable) => {
                cx.set_status(416);
                cx.set_header("Content-Type", "text/plain")?;
                cx.set_header("Content-Range", unsatisfiable_content_range(size))?;
                return Ok(());
            }
        };
        cx.set_header("Content-Length", length)?;

        // Step 5. The body, a piece at a time.
        if include_body {
            for piece in ChunkReader::open(&path, start, length)? {
                cx.write(piece?);
                cx.flush().await?;
            }
        }
        Ok(())
    }
}

impl RequestHandler for StaticFileHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET", "HEAD"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        self.serve(cx, true).await
    }

    async fn head(&mut self, cx: &mut Context) -> HandlerResult {
        self.serve(cx, false).await
    }
}
