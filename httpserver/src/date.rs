//! The `Date` response header, rendered at most once per second per thread
//! (nginx and hyper do the same): formatting a date costs far more than
//! copying 29 bytes, and every response needs one.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::httputil::format_timestamp;

/// Length of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for every year
/// from 1970 to 9999.
const DATE_LEN: usize = 29;

/// One thread's rendered date.
struct CachedDate {
    /// The Unix second `bytes` was rendered for (`u64::MAX` before the first).
    second: u64,
    /// `format_timestamp` of that second.
    bytes: [u8; DATE_LEN],
}

thread_local! {
    /// The date this thread last rendered; each loop thread has its own.
    static CACHE: RefCell<CachedDate> = const {
        RefCell::new(CachedDate { second: u64::MAX, bytes: [0; DATE_LEN] })
    };
}

/// Appends `Date: <IMF-fixdate of now>\r\n` to `head`, re-rendering the date
/// only when the Unix second changed since this thread last did.
pub(crate) fn append_date_header(head: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    head.extend_from_slice(b"Date: ");
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.second != second {
            let rendered = format_timestamp(now);
            match <[u8; DATE_LEN]>::try_from(rendered.as_bytes()) {
                Ok(bytes) => {
                    cache.bytes = bytes;
                    cache.second = second;
                }
                // Not reachable for years 1970..=9999; write it uncached.
                Err(_) => {
                    head.extend_from_slice(rendered.as_bytes());
                    head.extend_from_slice(b"\r\n");
                    return;
                }
            }
        }
        head.extend_from_slice(&cache.bytes);
        head.extend_from_slice(b"\r\n");
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::httputil::parse_http_date;

    #[test]
    fn appends_one_well_formed_header_line() {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        append_date_header(&mut head);
        let text = std::str::from_utf8(&head).unwrap();
        let line = text.strip_prefix("HTTP/1.1 200 OK\r\nDate: ").unwrap();
        let value = line.strip_suffix("\r\n").unwrap();
        assert_eq!(value.len(), DATE_LEN);
        assert!(value.ends_with(" GMT"));
        let when = parse_http_date(value).unwrap();
        let skew = SystemTime::now().duration_since(when).unwrap();
        assert!(skew.as_secs() <= 2, "{value} is not now");
    }

    #[test]
    fn a_second_call_in_the_same_second_reuses_the_rendering() {
        let mut first = Vec::new();
        append_date_header(&mut first);
        let second_before = CACHE.with(|c| c.borrow().second);
        let mut second = Vec::new();
        append_date_header(&mut second);
        let second_after = CACHE.with(|c| c.borrow().second);
        // Unless the clock ticked in between, the same bytes come back.
        if second_before == second_after {
            assert_eq!(first, second);
        }
        assert_ne!(second_after, u64::MAX);
    }
}
