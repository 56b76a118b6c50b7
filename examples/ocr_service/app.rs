//! The OCR stand-in's application: one handler on `POST /` that checks the
//! API key and secret and describes the image it was sent. `main.rs` runs
//! it; the integration tests build it in-process.

use std::rc::Rc;

use serde_json::json;
use sha2::{Digest, Sha256};
use whirl::web::{Application, Context, HandlerResult, HttpError, RequestHandler, Route};

/// The demo API key, shared with the `async_patterns` example's default.
pub const DEMO_API_KEY: &str = "whirl-demo-key";
/// The demo API secret, shared with the `async_patterns` example's default.
pub const DEMO_API_SECRET: &str = "whirl-demo-secret";

/// The credentials a caller must send.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Expected `api_key`.
    pub api_key: String,
    /// Expected `api_secret`.
    pub api_secret: String,
}

/// The application: `POST /`.
pub fn application(credentials: Credentials) -> Application {
    let credentials = Rc::new(credentials);
    Application::new(vec![Route::new("/", move || {
        OcrHandler(credentials.clone())
    })])
}

/// `POST /` with multipart `api_key`, `api_secret` and an `image` file:
/// 401 for wrong credentials, 400 without an image, else JSON with the
/// image's byte count, SHA-256 and content type.
struct OcrHandler(Rc<Credentials>);

impl RequestHandler for OcrHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["POST"];

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        let key = cx.get_body_argument_or("api_key", "")?;
        let secret = cx.get_body_argument_or("api_secret", "")?;
        // Both compared in full, whatever the first says (no early exit
        // that would time which one was wrong).
        let key_ok = same(key.as_bytes(), self.0.api_key.as_bytes());
        let secret_ok = same(secret.as_bytes(), self.0.api_secret.as_bytes());
        if !(key_ok & secret_ok) {
            return Err(HttpError::new(401).log_message("wrong api_key or api_secret"));
        }
        let image = cx
            .request()
            .files
            .get("image")
            .and_then(|files| files.first())
            .ok_or_else(|| HttpError::new(400).log_message("no file in field \"image\""))?;
        let digest = Sha256::digest(&image.body);
        let sha256: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let answer = json!({
            "filename": image.filename,
            "content_type": image.content_type,
            "bytes": image.body.len(),
            "sha256": sha256,
            "text": "",
        });
        cx.write(answer);
        Ok(())
    }
}

/// Whether `a` equals `b`, looking at every byte of both (constant time
/// for equal lengths).
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (x, y) in a.iter().zip(b) {
        diff |= usize::from(x ^ y);
    }
    diff == 0
}
