//! XSRF token decoding: `whirl_web::xsrf::decode_xsrf_token` and the
//! check built on it.
//!
//! Input: one settings byte (seeds the mask and picks the timestamp of
//! the round trip: bits 5–7 an extreme or a random one), then a cookie or form value (as text; invalid UTF-8 is
//! replaced), which is also used as a raw token.
//!
//! Checks: a decoded token is never empty and has version 1 or 2; any
//! token, masked (version 2) or plain hex (version 1), decodes back to
//! itself with its timestamp, and passes the check against itself while a
//! different token fails it.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use whirl_fuzz::XorShift;
use whirl_web::xsrf::{
    check_xsrf_token, decode_xsrf_token, decode_xsrf_token_at, encode_xsrf_token_v1,
    encode_xsrf_token_with_mask, tokens_match,
};

fuzz_target!(|data: &[u8]| {
    let Some((&settings, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);

    // Step 1. The input as a submitted token.
    let _ = decode_xsrf_token(&text);
    if let Some(decoded) = decode_xsrf_token_at(&text, now) {
        assert!(!decoded.token.is_empty());
        assert!(matches!(decoded.version, Some(1 | 2)));
        if decoded.version == Some(1) {
            assert_eq!(decoded.timestamp, 1_700_000_000);
        }
        assert_eq!(check_xsrf_token(Some(&text), &decoded.token), Ok(()));
    }

    // Step 2. The input's bytes as a token, encoded and read back.
    let token = rest;
    if token.is_empty() {
        return;
    }
    let mut rng = XorShift::new(u64::from(settings) ^ (token.len() as u64) << 8);
    let mask = rng.next_u64().to_le_bytes();
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    let timestamp = match settings >> 5 {
        0 => i64::MIN,
        1 => i64::MAX,
        2 => -1,
        3 => 0,
        _ => rng.next_u64() as i64 >> (settings & 31),
    };
    let masked = encode_xsrf_token_with_mask(token, mask, timestamp);
    let back = decode_xsrf_token_at(&masked, now).expect("a masked token decodes");
    assert_eq!(
        (back.version, back.token.as_slice(), back.timestamp),
        (Some(2), token, timestamp)
    );
    assert_eq!(check_xsrf_token(Some(&masked), token), Ok(()));
    let mut other = token.to_vec();
    other[0] ^= 1;
    assert!(check_xsrf_token(Some(&masked), &other).is_err());
    assert!(!tokens_match(token, &other));

    let plain = encode_xsrf_token_v1(token);
    let back = decode_xsrf_token_at(&plain, now).expect("a hex token decodes");
    assert_eq!((back.version, back.token.as_slice()), (Some(1), token));
});
