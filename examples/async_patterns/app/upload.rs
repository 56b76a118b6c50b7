//! `POST /upload`: the seed's upload handler — a multipart `file` (and a
//! `type` argument) saved under `--upload-dir`, then forwarded to the OCR
//! service as multipart with the client's builder, as simply as
//! `requests.post(url, data=…, files=…)`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use whirl::httpclient::{HttpRequest, Multipart};
use whirl::ioloop::run_in_executor;
use whirl::web::{Context, HandlerResult, HttpError, RequestHandler};

use super::{upstream_error, Shared};

/// Uploads named so far in this process, to make each name unique.
static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// Saves an upload and asks the OCR service about it. Tornado: the seed's
/// `ApiAccountUploadHandler`.
pub struct UploadHandler(pub Rc<Shared>);

impl RequestHandler for UploadHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["POST"];

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        let config = &self.0.config;
        let upload_type = cx.get_argument_or("type", "")?;
        // Step 1. The file, taken out of the request (no copy).
        let file = cx
            .request_mut()
            .files
            .get_mut("file")
            .and_then(|files| files.pop())
            .ok_or_else(|| HttpError::new(400).log_message("no file in field \"file\""))?;
        check_filename(&file.filename)?;

        // Step 2. Saved under a name of ours, on a pool thread: the client's
        // name never becomes a path.
        let name = generated_name(&file.filename);
        let path = config.upload_dir.join(&name);
        let target = path.clone();
        let body = file.body;
        let size = body.len();
        run_in_executor(move || save(&target, &body))
            .await
            .map_err(|e| HttpError::new(500).log_message(e.to_string()))??;
        log::info!(
            "upload {:?} ({size} bytes, type {upload_type:?}) saved as {name}",
            file.filename
        );

        // Step 3. Forwarded as multipart; the file is streamed from disk.
        let form = Multipart::new()
            .field("api_key", config.api_key.as_str())
            .field("api_secret", config.api_secret.as_str());
        let form = if file.content_type == "application/unknown" {
            form.file("image", name.as_str(), path)
        } else {
            form.file_with_type("image", name.as_str(), file.content_type, path)
        };
        let request = HttpRequest::post(config.ocr_url.clone())
            .multipart(form)
            .connect_timeout(config.upstream_timeout)
            .request_timeout(config.upstream_timeout)
            .raise_error(false);
        let response = self
            .0
            .client
            .fetch(request)
            .await
            .map_err(|e| upstream_error(&e))?;

        // Step 4. The OCR service's JSON, or 502 if it said no.
        if !response.is_success() {
            return Err(HttpError::new(502).log_message(format!(
                "the OCR service answered {}: {}",
                response.code,
                response.text()
            )));
        }
        cx.set_header("X-Saved-As", &name)?;
        cx.set_header("Content-Type", "application/json; charset=UTF-8")?;
        cx.write(response.body);
        Ok(())
    }
}

/// Refuses a file name that tries to be a path (`../../etc/passwd`,
/// `a/b`, `C:\x`): 400. The name is only ever logged, but a client that
/// sends one is up to no good.
fn check_filename(filename: &str) -> Result<(), HttpError> {
    let bad = filename.is_empty()
        || filename.contains(['/', '\\', '\0'])
        || filename == "."
        || filename == ".."
        || filename.contains(':');
    if bad {
        return Err(HttpError::new(400).log_message(format!("refused file name {filename:?}")));
    }
    Ok(())
}

/// A fresh name: `upload-<ms since 1970>-<n>`, plus the client's extension
/// when it is 1 to 8 ASCII letters or digits.
fn generated_name(filename: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let n = UPLOADS.fetch_add(1, Ordering::Relaxed) + 1;
    let extension = filename
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| {
            (1..=8).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .map(|ext| format!(".{}", ext.to_ascii_lowercase()))
        .unwrap_or_default();
    format!("upload-{millis}-{n}{extension}")
}

/// Writes `body` to a new file at `path` (never over an existing one).
fn save(path: &PathBuf, body: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(body)
}
