//! The `Date` response header, rendered at most once per second per thread
//! (nginx and hyper do the same): formatting a date costs far more than
//! copying 29 bytes, and every response needs one. Whether the rendering
//! is still good is judged by the loop's clock ([`whirl_ioloop::loop_time`]),
//! so a response costs no clock read either: the wall clock is read once a
//! second, when the date is rendered again.

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::httputil::format_timestamp;

/// Length of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for every year
/// from 1970 to 9999.
const DATE_LEN: usize = 29;

/// Length of the whole line: `Date: `, the date, CRLF.
const LINE_LEN: usize = 6 + DATE_LEN + 2;

/// One thread's rendered date.
struct CachedDate {
    /// When the second `line` names ends, on the monotonic clock (`None`
    /// before the first rendering).
    until: Option<Instant>,
    /// `Date: <format_timestamp of that second>\r\n`, copied whole.
    line: [u8; LINE_LEN],
}

thread_local! {
    /// The date this thread last rendered; each loop thread has its own.
    static CACHE: RefCell<CachedDate> = const {
        RefCell::new(CachedDate { until: None, line: [0; LINE_LEN] })
    };
}

/// Appends `Date: <IMF-fixdate of now>\r\n` to `head`, re-rendering the date
/// only once the second this thread last rendered is over by the loop's
/// clock (which may lag real time by the loop's current iteration: a
/// response sent in the first moments of a second may still say the last).
pub(crate) fn append_date_header(head: &mut Vec<u8>) {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache
            .until
            .is_none_or(|until| whirl_ioloop::loop_time() >= until)
        {
            let now = SystemTime::now();
            let rendered = format_timestamp(now);
            let Ok(date) = <[u8; DATE_LEN]>::try_from(rendered.as_bytes()) else {
                // Not reachable for years 1970..=9999; write it uncached.
                head.extend_from_slice(b"Date: ");
                head.extend_from_slice(rendered.as_bytes());
                head.extend_from_slice(b"\r\n");
                return;
            };
            let into_second = now.duration_since(UNIX_EPOCH).map_or(Duration::ZERO, |d| {
                Duration::from_nanos(d.subsec_nanos().into())
            });
            cache.line[..6].copy_from_slice(b"Date: ");
            cache.line[6..6 + DATE_LEN].copy_from_slice(&date);
            cache.line[6 + DATE_LEN..].copy_from_slice(b"\r\n");
            cache.until = Instant::now().checked_add(Duration::from_secs(1) - into_second);
        }
        head.extend_from_slice(&cache.line);
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

    /// The rendered date and when it stops being good.
    fn cached() -> (Vec<u8>, Option<Instant>) {
        CACHE.with(|c| {
            let c = c.borrow();
            (c.line.to_vec(), c.until)
        })
    }

    /// The date a `Date` line names.
    fn date_of(line: &[u8]) -> SystemTime {
        let text = std::str::from_utf8(line).unwrap();
        let value = text
            .strip_prefix("Date: ")
            .unwrap()
            .strip_suffix("\r\n")
            .unwrap();
        parse_http_date(value).unwrap()
    }

    #[test]
    fn a_call_before_the_second_ends_reuses_the_rendering() {
        let mut first = Vec::new();
        append_date_header(&mut first);
        let (_, until) = cached();
        let until = until.expect("rendered");
        assert!(until <= Instant::now() + Duration::from_secs(1));
        let mut second = Vec::new();
        append_date_header(&mut second);
        if Instant::now() < until {
            assert_eq!(first, second);
        }
    }

    #[test]
    fn an_ended_second_is_rendered_again() {
        let mut line = Vec::new();
        append_date_header(&mut line);
        // Spoil the rendering and end its second: it must not be sent again.
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            c.line = [b'x'; LINE_LEN];
            c.until = Some(Instant::now());
        });
        let mut again = Vec::new();
        append_date_header(&mut again);
        assert!(
            !again.contains(&b'x'),
            "{}",
            String::from_utf8_lossy(&again)
        );
        assert_ne!(cached().0, vec![b'x'; LINE_LEN]);
    }

    #[test]
    fn the_rendering_ends_with_its_wall_clock_second() {
        let mut first = Vec::new();
        append_date_header(&mut first);
        let until = cached().1.expect("rendered");
        std::thread::sleep(
            until.saturating_duration_since(Instant::now()) + Duration::from_millis(5),
        );
        let mut next = Vec::new();
        append_date_header(&mut next);
        let step = date_of(&next).duration_since(date_of(&first)).unwrap();
        assert!(
            step >= Duration::from_secs(1),
            "the date did not move on: {step:?}"
        );
        let lag = SystemTime::now().duration_since(date_of(&next)).unwrap();
        assert!(
            lag < Duration::from_secs(2),
            "the date lags the clock by {lag:?}"
        );
    }
}
