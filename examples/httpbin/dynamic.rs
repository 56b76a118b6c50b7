//! Generated data: `/uuid`, `/bytes/<n>`, `/base64/<value>` and
//! `/delay/<n>` — the one that shows the loop at work: it waits on a
//! timer (`whirl::ioloop::sleep`), so a thousand delayed requests cost
//! nothing while other requests go on.

use std::time::Duration;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::{alphabet, Engine};
use serde_json::{json, Value};
use whirl::ioloop::sleep;
use whirl::web::{Context, HandlerResult, HttpError};

use crate::inspect::{get_dict, number_arg, path_number, query_ignoring_case, Field};
use crate::json::send;
use crate::random::{self, Seeded, Source};

/// The longest `/delay` (httpbin's cap).
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// The most bytes `/bytes` and `/stream-bytes` send (httpbin's cap).
pub const MAX_BYTES: u64 = 100 * 1024;

/// A version 4 UUID, as text.
pub fn uuid4() -> String {
    let mut b = [0u8; 16];
    random::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `/uuid`.
pub async fn uuid(cx: &mut Context) -> HandlerResult {
    send(cx, json!({ "uuid": uuid4() }))
}

/// The byte source a request asks for: seeded by `?seed=` when given.
pub fn source(cx: &Context) -> Result<Source, HttpError> {
    if query_ignoring_case(cx, "seed").is_none() {
        return Ok(Source::System);
    }
    let seed: i64 = number_arg(cx, "seed", 0)?;
    Ok(Source::Seeded(Seeded::new(seed as u64)))
}

/// `/bytes/<n>`: `n` random bytes (at most 100 KiB).
pub async fn bytes(cx: &mut Context) -> HandlerResult {
    let n = path_number(cx, 0).min(MAX_BYTES) as usize;
    let mut body = vec![0u8; n];
    source(cx)?.fill(&mut body);
    cx.set_header("Content-Type", "application/octet-stream")?;
    cx.write(body);
    Ok(())
}

/// `/base64/<value>`: the value decoded (URL-safe alphabet, standard one
/// accepted too, other characters skipped, padding required — Python's
/// `urlsafe_b64decode`), or httpbin's hint when it is not base64 of UTF-8
/// text.
pub async fn base64(cx: &mut Context) -> HandlerResult {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let value = cx.path_arg(0).unwrap_or_default();
    let cleaned: String = value
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    let decoded = LENIENT
        .decode(cleaned)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    cx.write(
        decoded
            .unwrap_or_else(|| "Incorrect Base64 data try: SFRUUEJJTiBpcyBhd2Vzb21l".to_string()),
    );
    Ok(())
}

/// A number of seconds from the client, as a `Duration`.
pub fn seconds(text: &str) -> Result<Duration, HttpError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| HttpError::new(400).log_message(format!("{text:?} is not a duration")))
}

/// `/delay/<seconds>`: waits (at most 10 s) without holding up any other
/// request, then answers as `/post` would, minus `json`.
pub async fn delay(cx: &mut Context) -> HandlerResult {
    let delay = seconds(cx.path_arg(0).unwrap_or_default())?.min(MAX_DELAY);
    sleep(delay).await;
    let dict = get_dict(
        cx,
        &[
            Field::Url,
            Field::Args,
            Field::Form,
            Field::Data,
            Field::Origin,
            Field::Headers,
            Field::Files,
        ],
    );
    send(cx, Value::Object(dict))
}
