//! HTTP dates: [`format_timestamp`] (Tornado's `httputil.format_timestamp`)
//! and [`parse_http_date`] for `If-Modified-Since` and friends.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second `httpdate` can format: 9999-12-31 23:59:59 UTC.
const LAST_FORMATTABLE: u64 = 253_402_300_799;

/// Formats a time as an RFC 9110 IMF-fixdate, the form every HTTP date
/// header is sent in: `Sun, 06 Nov 1994 08:49:37 GMT`. Tornado:
/// `httputil.format_timestamp`.
///
/// Fractions of a second are dropped. Times before 1970 are written as
/// 1970-01-01 and times after 9999 as 9999-12-31 23:59:59, rather than
/// panicking.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use whirl_httpserver::format_timestamp;
///
/// let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
/// assert_eq!(format_timestamp(t), "Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn format_timestamp(time: SystemTime) -> String {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs(),
        Err(_) => 0,
    };
    format_secs(secs)
}

/// Formats seconds since the Unix epoch as [`format_timestamp`] does.
/// Tornado: `httputil.format_timestamp(1359312200)`.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::format_unix_timestamp;
///
/// assert_eq!(format_unix_timestamp(1_359_312_200), "Sun, 27 Jan 2013 18:43:20 GMT");
/// ```
pub fn format_unix_timestamp(secs: i64) -> String {
    format_secs(u64::try_from(secs).unwrap_or(0))
}

/// Formats whole seconds since the epoch, clamped to what can be written.
fn format_secs(secs: u64) -> String {
    let secs = secs.min(LAST_FORMATTABLE);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Parses an HTTP-date in any of the three forms RFC 9110 §5.6.7 asks a
/// recipient to accept: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
/// RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6
/// 08:49:37 1994`). Surrounding whitespace is ignored. Tornado's
/// `RequestHandler.check_etag_header`/`should_return_304` use Python's
/// `email.utils.parsedate_to_datetime` for this.
///
/// `None` when `s` is not a valid HTTP-date (a wrong weekday, a day that does
/// not exist, a year before 1970 or after 9999): RFC 9110 says a malformed
/// `If-Modified-Since` is ignored.
///
/// # Examples
///
/// ```
/// use whirl_httpserver::{format_timestamp, parse_http_date};
///
/// for s in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
///           "Sun Nov  6 08:49:37 1994"] {
///     let t = parse_http_date(s).unwrap();
///     assert_eq!(format_timestamp(t), "Sun, 06 Nov 1994 08:49:37 GMT");
/// }
/// assert_eq!(parse_http_date("yesterday"), None);
/// ```
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_imf_fixdate() {
        let cases: &[(i64, &str)] = &[
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (1_359_312_200, "Sun, 27 Jan 2013 18:43:20 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (-1, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (i64::MIN, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (i64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, want) in cases {
            assert_eq!(format_unix_timestamp(*secs), *want, "{secs}");
        }
        let before_epoch = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(
            format_timestamp(before_epoch),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        let fraction = UNIX_EPOCH + Duration::from_millis(1_999);
        assert_eq!(format_timestamp(fraction), "Thu, 01 Jan 1970 00:00:01 GMT");
    }

    #[test]
    fn parses_the_three_forms_and_nothing_else() {
        let nov_6 = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let good = [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "  Sun, 06 Nov 1994 08:49:37 GMT\t",
        ];
        for s in good {
            assert_eq!(parse_http_date(s), Some(nov_6), "{s:?}");
        }
        let bad = [
            "",
            "Sun, 06 Nov 1994 08:49:37",
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Thu, 01 Jan 1960 00:00:00 GMT",
            "Sun, 06 Nóv 1994 08:49:37 GMT",
            "1994-11-06T08:49:37Z",
            "784111777",
        ];
        for s in bad {
            assert_eq!(parse_http_date(s), None, "{s:?}");
        }
    }

    #[test]
    fn round_trips() {
        for secs in [
            0,
            1,
            86_399,
            86_400,
            1_000_000_000,
            4_102_444_800,
            LAST_FORMATTABLE,
        ] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_http_date(&format_timestamp(t)), Some(t), "{secs}");
        }
    }
}
