//! Responses sent piece by piece, each piece flushed to the client before
//! the next: `/stream/<n>`, `/stream-bytes/<n>`, `/drip` and
//! `/range/<n>`. Pauses are timers on the loop, never a blocked thread.

use std::time::Instant;

use whirl::ioloop::{sleep, sleep_until};
use whirl::web::{Context, HandlerResult};

use crate::dynamic::{seconds, source, MAX_BYTES};
use crate::inspect::{get_dict, header_pairs, number_arg, path_number, query_ignoring_case, Field};
use crate::json::one_line;
use crate::status::{answer_status, bad_request};

/// The most lines `/stream` sends (httpbin's cap).
const MAX_LINES: u64 = 100;
/// The most bytes `/drip` sends (httpbin's cap).
const MAX_DRIP: u64 = 10 * 1024 * 1024;
/// Default piece size of `/stream-bytes` and `/range`.
const CHUNK_SIZE: usize = 10 * 1024;

/// `/stream/<n>`: `n` lines (at most 100), each `/get`'s answer on one
/// line with an `id`, flushed one by one.
pub async fn stream(cx: &mut Context) -> HandlerResult {
    let n = path_number(cx, 0).min(MAX_LINES);
    let dict = get_dict(cx, &[Field::Url, Field::Args, Field::Origin]);
    // Python's json.dumps keeps the dicts' order: url, args, headers,
    // origin, id; headers as they came.
    let headers: Vec<String> = header_pairs(cx)
        .into_iter()
        .map(|(name, value)| format!("{}: {}", one_line(&name.into()), one_line(&value.into())))
        .collect();
    let head = format!(
        "\"url\": {}, \"args\": {}, \"headers\": {{{}}}, \"origin\": {}",
        one_line(&dict["url"]),
        one_line(&dict["args"]),
        headers.join(", "),
        one_line(&dict["origin"]),
    );
    cx.set_header("Content-Type", "application/json")?;
    for id in 0..n {
        cx.write(format!("{{{head}, \"id\": {id}}}\n"));
        cx.flush().await?;
    }
    Ok(())
}

/// The `chunk_size` argument (at least 1).
fn chunk_size(cx: &Context) -> Result<usize, whirl::web::HttpError> {
    Ok(number_arg(cx, "chunk_size", CHUNK_SIZE as i64)?.max(1) as usize)
}

/// `/stream-bytes/<n>`: `n` random bytes (at most 100 KiB) in pieces of
/// `chunk_size`, chunked; `seed` makes them reproducible.
pub async fn stream_bytes(cx: &mut Context) -> HandlerResult {
    let mut left = path_number(cx, 0).min(MAX_BYTES) as usize;
    let chunk_size = chunk_size(cx)?;
    let mut source = source(cx)?;
    cx.set_header("Content-Type", "application/octet-stream")?;
    while left > 0 {
        let mut chunk = vec![0u8; left.min(chunk_size)];
        source.fill(&mut chunk);
        left -= chunk.len();
        cx.write(chunk);
        cx.flush().await?;
    }
    Ok(())
}

/// `/drip?duration=2&numbytes=10&code=200&delay=0`: waits `delay`, then
/// sends `numbytes` asterisks spread evenly over `duration` seconds, with
/// a `Content-Length` and status `code`.
pub async fn drip(cx: &mut Context) -> HandlerResult {
    let duration = seconds(&query_ignoring_case(cx, "duration").unwrap_or("2".into()))?;
    let delay = seconds(&query_ignoring_case(cx, "delay").unwrap_or("0".into()))?;
    let numbytes: i64 = number_arg(cx, "numbytes", 10)?;
    let code: u16 = number_arg(cx, "code", 200)?;
    if numbytes <= 0 {
        return bad_request(cx, "number of bytes must be positive");
    }
    if !(200..=999).contains(&code) {
        return bad_request(cx, "Invalid status code");
    }
    let numbytes = (numbytes as u64).min(MAX_DRIP);
    sleep(delay).await;
    if matches!(code, 204 | 304) {
        // Statuses that cannot carry the bytes.
        return answer_status(cx, code);
    }
    cx.set_status(code);
    cx.set_header("Content-Type", "application/octet-stream")?;
    cx.set_header("Content-Length", numbytes)?;
    // Byte i is due at start + i × pause; each turn sends what is due.
    let pause = duration.div_f64(numbytes as f64);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < numbytes {
        let due = if pause.is_zero() {
            numbytes
        } else {
            let elapsed = start.elapsed().as_secs_f64() / pause.as_secs_f64();
            (elapsed as u64 + 1).min(numbytes)
        };
        cx.write(vec![b'*'; (due - sent) as usize]);
        cx.flush().await?;
        sent = due;
        sleep_until(start + pause.mul_f64(sent as f64)).await;
    }
    Ok(())
}

/// The byte range a `Range` header asks of `size` bytes, as httpbin reads
/// it (one range; a malformed header means all of it): `None` when it
/// cannot be satisfied.
fn requested_range(header: Option<&str>, size: u64) -> Option<(u64, u64)> {
    let (mut first, mut last) = (None, None);
    if let Some(spec) = header.map(str::trim).filter(|h| h.starts_with("bytes")) {
        let parts: Vec<&str> = spec.split('=').collect();
        if let [_, range] = parts[..] {
            let mut ends = range.split('-');
            first = ends.next().and_then(|s| s.trim().parse::<i64>().ok());
            last = ends.next().and_then(|s| s.trim().parse::<i64>().ok());
        }
    }
    let size = size as i64;
    let (first, last) = match (first, last) {
        (None, None) => (0, size - 1),
        (None, Some(suffix)) => ((size - suffix).max(0), size - 1),
        (Some(first), None) => (first, size - 1),
        (Some(first), Some(last)) => (first, last),
    };
    let valid = first <= last && (0..size).contains(&first) && (0..size).contains(&last);
    valid.then_some((first as u64, last as u64))
}

/// `/range/<n>`: `n` bytes (`abc…z` repeating, at most 100 KiB) that
/// honour a `Range` header: 206 with `Content-Range` for a part, 416 for
/// a range outside them. `duration` spreads the body over that many
/// seconds, in pieces of `chunk_size`.
pub async fn range(cx: &mut Context) -> HandlerResult {
    let size = path_number(cx, 0);
    cx.set_header("ETag", format!("range{size}"))?;
    cx.set_header("Accept-Ranges", "bytes")?;
    if size == 0 || size > MAX_BYTES {
        cx.set_status(404);
        cx.set_header("Content-Type", "text/plain; charset=utf-8")?;
        cx.write("number of bytes must be in the range (0, 102400]");
        return Ok(());
    }
    let chunk_size = chunk_size(cx)?;
    let duration = seconds(&query_ignoring_case(cx, "duration").unwrap_or("0".into()))?;
    let Some((first, last)) = requested_range(cx.request().headers.get("Range"), size) else {
        cx.set_status(416);
        cx.set_header("Content-Type", "text/plain; charset=utf-8")?;
        return cx.set_header("Content-Range", format!("bytes */{size}"));
    };
    let whole = first == 0 && last == size - 1;
    cx.set_status(if whole { 200 } else { 206 });
    cx.set_header("Content-Type", "application/octet-stream")?;
    cx.set_header("Content-Length", last + 1 - first)?;
    cx.set_header("Content-Range", format!("bytes {first}-{last}/{size}"))?;
    let body: Vec<u8> = (first..=last).map(|i| b'a' + (i % 26) as u8).collect();
    if duration.is_zero() {
        cx.write(body);
        return Ok(());
    }
    let pause_per_byte = duration.div_f64(size as f64);
    for chunk in body.chunks(chunk_size) {
        cx.write(chunk);
        cx.flush().await?;
        sleep(pause_per_byte * chunk.len() as u32).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::requested_range;

    #[test]
    fn ranges_are_read_as_httpbin_reads_them() {
        let cases = [
            (None, Some((0, 99))),
            (Some("bytes=10-19"), Some((10, 19))),
            (Some("bytes=90-"), Some((90, 99))),
            (Some("bytes=-5"), Some((95, 99))),
            (Some("bytes=-500"), Some((0, 99))),
            (Some("bytes=10-200"), None),
            (Some("bytes=20-10"), None),
            (Some("bytes=-0"), None),
            (Some("items=1-2"), Some((0, 99))),
            (Some("bytes=1-2=3"), Some((0, 99))),
        ];
        for (header, expected) in cases {
            assert_eq!(requested_range(header, 100), expected, "{header:?}");
        }
    }
}
