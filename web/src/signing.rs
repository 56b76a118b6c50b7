//! Signed, timestamped values, byte-compatible with Tornado's: what
//! `set_signed_cookie` writes and `get_signed_cookie` reads
//! (`tornado.web.create_signed_value` / `decode_signed_value`).
//!
//! A version 2 value (the default) is a version number followed by
//! length-prefixed fields, all separated by pipes, and a hex HMAC-SHA256 of
//! everything before it:
//!
//! ```text
//! 2|1:0|10:1700000000|4:user|8:YWxpY2U=|625e353f…2aca
//!   key version, timestamp, name, base64 value, signature
//! ```
//!
//! Version 1 (`base64value|timestamp|hex HMAC-SHA1`) is still read, so old
//! cookies keep working, and can be written for old readers. A cookie
//! signed by Python Tornado decodes here and the other way round; the tests
//! hold vectors made by Tornado 6.6.1.
//!
//! Functions ending in `_at` take the current time as an argument, so they
//! are pure; the others read the system clock.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use whirl_web::signing::{
//!     create_signed_value_at, decode_signed_value_at, SecretKeys, SignedValueVersion,
//! };
//!
//! let secret = SecretKeys::single("secret");
//! let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let signed = create_signed_value_at(&secret, "user", b"alice", now);
//! assert_eq!(
//!     signed,
//!     "2|1:0|10:1700000000|4:user|8:YWxpY2U=|\
//!      625e353ffbe75bfe6bf85c804055953dd5ee49762f0b4717197c3fe832cb2aca"
//! );
//! let decoded = decode_signed_value_at(&secret, "user", &signed, 31.0, SignedValueVersion::V1, now);
//! assert_eq!(decoded.as_deref(), Some(&b"alice"[..]));
//! // Another name, or one changed byte, and it is refused.
//! assert_eq!(decode_signed_value_at(&secret, "admin", &signed, 31.0, SignedValueVersion::V1, now), None);
//! ```

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// How long a signed value stays valid when the caller does not say:
/// 31 days. Tornado: the `max_age_days=31` default of `get_signed_cookie`.
pub const DEFAULT_MAX_AGE_DAYS: f64 = 31.0;

/// How far in the future a version 1 timestamp may lie before the value is
/// refused as tampered: 31 days. Tornado: `_decode_signed_value_v1`.
const V1_FUTURE_TOLERANCE_SECS: f64 = 31.0 * 86_400.0;

/// Seconds in a day, for `max_age_days`.
const SECS_PER_DAY: f64 = 86_400.0;

/// A format of signed value. Tornado: the `version` / `min_version`
/// arguments (`DEFAULT_SIGNED_VALUE_VERSION` is 2,
/// `DEFAULT_SIGNED_VALUE_MIN_VERSION` is 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignedValueVersion {
    /// `value|timestamp|signature`, HMAC-SHA1, no key versions. Tornado
    /// before 3.2.1; read for compatibility.
    V1 = 1,
    /// Length-prefixed fields with a key version, HMAC-SHA256. Tornado's
    /// default since 3.2.1.
    V2 = 2,
}

/// Why a [`SecretKeys`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningError {
    /// The key version chosen for signing has no key in the map. Tornado
    /// raises `KeyError` when it first signs.
    MissingCurrentKey {
        /// The key version that was asked for.
        current: i32,
    },
}

impl fmt::Display for SigningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningError::MissingCurrentKey { current } => write!(
                f,
                "the signing key version {current} has no key in the secret map"
            ),
        }
    }
}

impl std::error::Error for SigningError {}

/// The secret(s) values are signed with. Tornado: the `cookie_secret`
/// setting — one key, or a dict of key versions with `key_version` naming
/// the one used for signing.
///
/// With versioned keys a value records the key version that signed it, so
/// keys can be rotated: sign with the new version while values signed by
/// older ones still verify. `Debug` shows the key versions, never the keys.
#[derive(Clone)]
pub struct SecretKeys {
    /// The keys; for `Versioned`, `current` is always a key of `keys`.
    repr: KeysRepr,
}

/// The two shapes of [`SecretKeys`].
#[derive(Clone)]
enum KeysRepr {
    /// One key, used for every value whatever key version it names.
    Single(Vec<u8>),
    /// Keys by version; `current` signs new values.
    Versioned {
        /// Every key that may verify a value, by key version.
        keys: HashMap<i32, Vec<u8>>,
        /// The key version new values are signed with; present in `keys`.
        current: i32,
    },
}

impl SecretKeys {
    /// One secret for signing and verifying. Tornado:
    /// `cookie_secret="..."`.
    pub fn single(key: impl Into<Vec<u8>>) -> Self {
        SecretKeys {
            repr: KeysRepr::Single(key.into()),
        }
    }

    /// Secrets by key version, signing with `current`. Tornado:
    /// `cookie_secret={0: "...", 1: "..."}` with `key_version=1`.
    ///
    /// # Errors
    ///
    /// [`SigningError::MissingCurrentKey`] if `current` is not among the
    /// keys.
    pub fn versioned<K: Into<Vec<u8>>>(
        keys: impl IntoIterator<Item = (i32, K)>,
        current: i32,
    ) -> Result<Self, SigningError> {
        let keys: HashMap<i32, Vec<u8>> = keys.into_iter().map(|(v, k)| (v, k.into())).collect();
        if !keys.contains_key(&current) {
            return Err(SigningError::MissingCurrentKey { current });
        }
        Ok(SecretKeys {
            repr: KeysRepr::Versioned { keys, current },
        })
    }

    /// The key version new values are signed with: `None` for a single
    /// secret (whose values say key version 0). Tornado: the `key_version`
    /// setting.
    pub fn current_key_version(&self) -> Option<i32> {
        match &self.repr {
            KeysRepr::Single(_) => None,
            KeysRepr::Versioned { current, .. } => Some(*current),
        }
    }

    /// The key version written into new values and the key that signs them.
    fn signing_key(&self) -> (i32, &[u8]) {
        match &self.repr {
            KeysRepr::Single(key) => (0, key),
            KeysRepr::Versioned { keys, current } => {
                (*current, keys.get(current).map_or(&[][..], Vec::as_slice))
            }
        }
    }

    /// The key that verifies a value naming `key_version`. A single secret
    /// verifies every key version, as in Tornado.
    fn verifying_key(&self, key_version: i32) -> Option<&[u8]> {
        match &self.repr {
            KeysRepr::Single(key) => Some(key),
            KeysRepr::Versioned { keys, .. } => keys.get(&key_version).map(Vec::as_slice),
        }
    }
}

impl fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            KeysRepr::Single(_) => f.write_str("SecretKeys::Single(<redacted>)"),
            KeysRepr::Versioned { keys, current } => {
                let mut versions: Vec<i32> = keys.keys().copied().collect();
                versions.sort_unstable();
                f.debug_struct("SecretKeys::Versioned")
                    .field("versions", &versions)
                    .field("current", current)
                    .finish_non_exhaustive()
            }
        }
    }
}

/// Signs and timestamps a value in version 2 format, at the current time.
/// Tornado: `create_signed_value(secret, name, value)`.
///
/// See [`create_signed_value_at`].
pub fn create_signed_value(secret: &SecretKeys, name: &str, value: &[u8]) -> String {
    create_signed_value_at(secret, name, value, SystemTime::now())
}

/// Signs and timestamps a value in version 2 format with `now` as its
/// timestamp. Tornado: `create_signed_value(secret, name, value, clock=...)`.
///
/// The name is written as is and should be ASCII (a cookie name always
/// is): like Tornado, its length prefix counts characters, so a
/// non-ASCII name yields a value that neither Tornado nor whirl accepts.
pub fn create_signed_value_at(
    secret: &SecretKeys,
    name: &str,
    value: &[u8],
    now: SystemTime,
) -> String {
    let (key_version, key) = secret.signing_key();
    let key_version = key_version.to_string();
    let timestamp = unix_timestamp(now).to_string();
    let value = BASE64.encode(value);
    let mut signed = String::with_capacity(name.len() + value.len() + 100);
    signed.push('2');
    for field in [
        key_version.as_str(),
        timestamp.as_str(),
        name,
        value.as_str(),
    ] {
        // Writing to a `String` cannot fail.
        let _ = write!(signed, "|{}:{field}", field.chars().count());
    }
    signed.push('|');
    let signature = signature_v2(key, signed.as_bytes());
    signed.push_str(&signature);
    signed
}

/// Signs and timestamps a value in the old version 1 format, which has no
/// key versions. Tornado: `create_signed_value(secret, name, value,
/// version=1, clock=...)`.
///
/// Only for readers that predate Tornado 3.2.1; version 1 does not sign
/// the boundaries between its parts, which is why [`decode_signed_value_at`]
/// checks its timestamps more warily.
pub fn create_signed_value_v1(key: &[u8], name: &str, value: &[u8], now: SystemTime) -> String {
    let timestamp = unix_timestamp(now).to_string();
    let value = BASE64.encode(value);
    let signature = signature_v1(
        key,
        &[name.as_bytes(), value.as_bytes(), timestamp.as_bytes()],
    );
    format!("{value}|{timestamp}|{signature}")
}

/// Checks a signed value and returns what was signed, at the current time.
/// Tornado: `decode_signed_value(secret, name, value, max_age_days,
/// min_version=min_version)`.
///
/// See [`decode_signed_value_at`].
pub fn decode_signed_value(
    secret: &SecretKeys,
    name: &str,
    value: impl AsRef<[u8]>,
    max_age_days: f64,
    min_version: SignedValueVersion,
) -> Option<Vec<u8>> {
    decode_signed_value_at(
        secret,
        name,
        value,
        max_age_days,
        min_version,
        SystemTime::now(),
    )
}

/// Checks a signed value as of `now` and returns what was signed. Tornado:
/// `decode_signed_value(..., clock=...)`.
///
/// Returns `None` — never panics — when the value is empty or malformed,
/// its signature does not match (tampered, or another key), it was signed
/// for another `name`, its key version has no key, it is older than
/// `max_age_days` ([`DEFAULT_MAX_AGE_DAYS`] is Tornado's default), or its
/// format is older than `min_version`. Version 1 values are also refused
/// when dated more than 31 days ahead or when their timestamp starts with
/// `0`, and when the secret is versioned (Tornado asserts instead).
///
/// Numbers inside the value must be plain ASCII digits (a key version may
/// be negative); Python's `int()` would also take spaces, `+` or `_`, which
/// no signer writes.
pub fn decode_signed_value_at(
    secret: &SecretKeys,
    name: &str,
    value: impl AsRef<[u8]>,
    max_age_days: f64,
    min_version: SignedValueVersion,
    now: SystemTime,
) -> Option<Vec<u8>> {
    let value = value.as_ref();
    if value.is_empty() {
        return None;
    }
    let version = signed_value_version(value);
    if version < min_version as u32 {
        return None;
    }
    let now = unix_time_f64(now);
    match version {
        1 => decode_v1(secret, name, value, max_age_days, now),
        2 => decode_v2(secret, name, value, max_age_days, now),
        _ => None,
    }
}

/// The key version recorded in a version 2 signed value, without checking
/// its signature; `None` for version 1 or a malformed value. Tornado:
/// `get_signature_key_version`.
///
/// Use it to re-sign values made with an old key after a rotation.
pub fn get_signature_key_version(value: impl AsRef<[u8]>) -> Option<i32> {
    let value = value.as_ref();
    if signed_value_version(value) != 2 {
        return None;
    }
    decode_fields_v2(value).map(|fields| fields.key_version)
}

/// The format version a signed value claims. Tornado: `_get_version`.
///
/// A value without a version prefix is version 1, and so is any number
/// above 999 (version 1's base64 data can look like one).
fn signed_value_version(value: &[u8]) -> u32 {
    match version_prefix(value) {
        Some(v) if v <= 999 => v as u32,
        _ => 1,
    }
}

/// The number before the first `|`, if the text has the shape Tornado
/// gives versioned signed values and XSRF tokens; a number too large for
/// `u64` is `u64::MAX`. Tornado: `_signed_value_version_re`.
///
/// Mirrors the pattern `^([1-9][0-9]*)\|(.*)$`, where `.` stops at a
/// newline and `$` allows one final newline.
pub(crate) fn version_prefix(value: &[u8]) -> Option<u64> {
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || value.first() == Some(&b'0') || value.get(digits) != Some(&b'|') {
        return None;
    }
    let tail = &value[digits + 1..];
    let tail = tail.strip_suffix(b"\n").unwrap_or(tail);
    if tail.contains(&b'\n') {
        return None;
    }
    Some(parse_decimal(&value[..digits]).unwrap_or(u64::MAX))
}

/// The parts of a version 2 signed value, borrowed from it.
#[derive(Debug)]
struct FieldsV2<'a> {
    /// Which key signed it.
    key_version: i32,
    /// Seconds since the epoch, still text.
    timestamp: &'a [u8],
    /// The name it was signed for.
    name: &'a [u8],
    /// The signed value, base64.
    value: &'a [u8],
    /// The hex signature: everything after the last field.
    signature: &'a [u8],
}

/// Splits a version 2 value into its fields. Tornado: `_decode_fields_v2`.
fn decode_fields_v2(value: &[u8]) -> Option<FieldsV2<'_>> {
    let rest = value.get(2..)?;
    let (key_version, rest) = consume_field(rest)?;
    let (timestamp, rest) = consume_field(rest)?;
    let (name, rest) = consume_field(rest)?;
    let (value, signature) = consume_field(rest)?;
    Some(FieldsV2 {
        key_version: i32::try_from(parse_signed(key_version)?).ok()?,
        timestamp,
        name,
        value,
        signature,
    })
}

/// Takes one `length:bytes|` field off the front of `s`, returning the
/// bytes and what follows the pipe.
fn consume_field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = s.iter().position(|&b| b == b':')?;
    let len = usize::try_from(parse_decimal(&s[..colon])?).ok()?;
    let rest = &s[colon + 1..];
    if rest.get(len) != Some(&b'|') {
        return None;
    }
    Some((&rest[..len], &rest[len + 1..]))
}

/// Tornado's `_decode_signed_value_v2`; `now` in seconds since the epoch.
fn decode_v2(
    secret: &SecretKeys,
    name: &str,
    value: &[u8],
    max_age_days: f64,
    now: f64,
) -> Option<Vec<u8>> {
    let fields = decode_fields_v2(value)?;
    let signed = &value[..value.len() - fields.signature.len()];
    let key = secret.verifying_key(fields.key_version)?;
    let expected = signature_v2(key, signed);
    if !constant_time_eq(fields.signature, expected.as_bytes()) {
        return None;
    }
    if fields.name != name.as_bytes() {
        return None;
    }
    let timestamp = parse_signed(fields.timestamp)?;
    if (timestamp as f64) < now - max_age_days * SECS_PER_DAY {
        return None;
    }
    BASE64.decode(fields.value).ok()
}

/// Tornado's `_decode_signed_value_v1`; `now` in seconds since the epoch.
fn decode_v1(
    secret: &SecretKeys,
    name: &str,
    value: &[u8],
    max_age_days: f64,
    now: f64,
) -> Option<Vec<u8>> {
    let KeysRepr::Single(key) = &secret.repr else {
        return None;
    };
    let mut parts = value.split(|&b| b == b'|');
    let (encoded, timestamp_text, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let expected = signature_v1(key, &[name.as_bytes(), encoded, timestamp_text]);
    if !constant_time_eq(signature, expected.as_bytes()) {
        log::warn!("invalid signature on a version 1 signed value for {name:?}");
        return None;
    }
    let timestamp = parse_signed(timestamp_text)? as f64;
    if timestamp < now - max_age_days * SECS_PER_DAY {
        log::warn!("expired version 1 signed value for {name:?}");
        return None;
    }
    // The signature does not cover the pipes, so digits could have been
    // moved between the value and the timestamp; these two checks catch it.
    if timestamp > now + V1_FUTURE_TOLERANCE_SECS {
        log::warn!(
            "version 1 signed value for {name:?} is dated in the future; possible tampering"
        );
        return None;
    }
    if timestamp_text.starts_with(b"0") {
        log::warn!("tampered version 1 signed value for {name:?}");
        return None;
    }
    BASE64.decode(encoded).ok()
}

/// Lower-case hex HMAC-SHA256 of `message`. Tornado: `_create_signature_v2`.
fn signature_v2(key: &[u8], message: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    hex_encode(&mac.finalize().into_bytes())
}

/// Lower-case hex HMAC-SHA1 of the parts, concatenated. Tornado:
/// `_create_signature_v1`.
fn signature_v1(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    hex_encode(&mac.finalize().into_bytes())
}

/// Compares two byte strings without stopping at the first difference, so
/// the time taken says nothing about where they differ (only whether the
/// lengths differ). Tornado: `hmac.compare_digest`.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Lower-case hex of some bytes. Python: `binascii.b2a_hex`.
pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// A non-empty run of ASCII digits as a number; `None` for anything else
/// or on overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// ASCII digits with an optional leading `-`, as an `i64`.
pub(crate) fn parse_signed(text: &[u8]) -> Option<i64> {
    match text.strip_prefix(b"-") {
        Some(digits) => 0i64.checked_sub_unsigned(parse_decimal(digits)?),
        None => i64::try_from(parse_decimal(text)?).ok(),
    }
}

/// Whole seconds since the epoch, truncated toward zero as Python's
/// `int(time.time())` does; negative before 1970.
pub(crate) fn unix_timestamp(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Seconds since the epoch with the fraction, like Python's `time.time()`.
fn unix_time_f64(now: SystemTime) -> f64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The vectors' signing time.
    const T: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn secret() -> SecretKeys {
        SecretKeys::single("secret")
    }

    /// `create_signed_value("secret", "user", "alice", clock=lambda: T)`,
    /// Tornado 6.6.1.
    const V2_ALICE: &str = "2|1:0|10:1700000000|4:user|8:YWxpY2U=|\
        625e353ffbe75bfe6bf85c804055953dd5ee49762f0b4717197c3fe832cb2aca";
    /// The same with `{0: "k0", 1: "k1"}` and `key_version=1`.
    const V2_KEY_VERSION_1: &str = "2|1:1|10:1700000000|4:user|8:YWxpY2U=|\
        82e9bd0aa9450e013479960b9a8f36e642fa419b5f7ab791bb58a68696091709";
    /// The same as `V2_ALICE` with `version=1`.
    const V1_ALICE: &str = "YWxpY2U=|1700000000|201c23bd238b6e964a57ba7973dbd35d4b6f9909";
    /// Name `data`, value `b"a|b \xc3\xa9\x00\xc3\xbf\xff\x00"` (pipe,
    /// UTF-8, NUL, a byte that is not UTF-8).
    const V2_BINARY: &str = "2|1:0|10:1700000000|4:data|16:YXxiIMOpAMO//wA=|\
        d9a7edb8a41032239d8a254ddf86cf5216fa1615522e28c10fcff04f8d4ce3f9";
    const BINARY: &[u8] = b"a|b \xc3\xa9\x00\xc3\xbf\xff\x00";
    /// Name `data`, value `"a|b é"`, `version=1`.
    const V1_UTF8: &str = "YXxiIMOp|1700000000|3bce2d75f429d72e6449dbab979a2dec705cab1f";
    /// Name `user`, empty value.
    const V2_EMPTY: &str = "2|1:0|10:1700000000|4:user|0:|\
        c3df5b41ed0adc24093d03374a8c5cff11d0f83daf050c24e206e5c370550e1e";
    /// Secret `b"\x00\xffbin"`, name `"né"` (length prefix counts characters).
    const V2_NON_ASCII_NAME: &str = "2|1:0|10:1700000000|2:n\u{e9}|4:dg==|\
        e637120714afd17ca40b3f263f2e2602981d6e95eb9f1d5fbef5226655ac3a7e";

    fn decode(secret: &SecretKeys, name: &str, value: &str, now: u64) -> Option<Vec<u8>> {
        decode_signed_value_at(
            secret,
            name,
            value,
            DEFAULT_MAX_AGE_DAYS,
            SignedValueVersion::V1,
            at(now),
        )
    }

    #[test]
    fn produces_tornado_values_byte_for_byte() {
        let k01 = SecretKeys::versioned([(0, "k0"), (1, "k1")], 1).unwrap();
        let cases: [(&SecretKeys, &str, &[u8], &str); 4] = [
            (&secret(), "user", b"alice", V2_ALICE),
            (&k01, "user", b"alice", V2_KEY_VERSION_1),
            (&secret(), "data", BINARY, V2_BINARY),
            (&secret(), "user", b"", V2_EMPTY),
        ];
        for (keys, name, value, want) in cases {
            assert_eq!(create_signed_value_at(keys, name, value, at(T)), want);
        }
        let odd_secret = SecretKeys::single(&b"\x00\xffbin"[..]);
        assert_eq!(
            create_signed_value_at(&odd_secret, "n\u{e9}", b"v", at(T)),
            V2_NON_ASCII_NAME
        );
        assert_eq!(
            create_signed_value_v1(b"secret", "user", b"alice", at(T)),
            V1_ALICE
        );
        assert_eq!(
            create_signed_value_v1(b"secret", "data", "a|b \u{e9}".as_bytes(), at(T)),
            V1_UTF8
        );
    }

    #[test]
    fn decodes_tornado_values() {
        let k01 = SecretKeys::versioned([(0, "k0"), (1, "k1")], 0).unwrap();
        let cases: [(&SecretKeys, &str, &str, &[u8]); 5] = [
            (&secret(), "user", V2_ALICE, b"alice"),
            (&k01, "user", V2_KEY_VERSION_1, b"alice"),
            (&secret(), "user", V1_ALICE, b"alice"),
            (&secret(), "data", V2_BINARY, BINARY),
            (&secret(), "data", V1_UTF8, "a|b \u{e9}".as_bytes()),
        ];
        for (keys, name, value, want) in cases {
            assert_eq!(
                decode(keys, name, value, T).as_deref(),
                Some(want),
                "{value}"
            );
        }
        assert_eq!(decode(&secret(), "user", V2_EMPTY, T), Some(Vec::new()));
    }

    #[test]
    fn non_ascii_names_never_verify_as_in_tornado() {
        let odd_secret = SecretKeys::single(&b"\x00\xffbin"[..]);
        assert_eq!(decode(&odd_secret, "n\u{e9}", V2_NON_ASCII_NAME, T), None);
    }

    /// Outcomes checked against Tornado 6.6.1's `decode_signed_value`.
    #[test]
    fn refuses_what_tornado_refuses() {
        let day = 86_400;
        let tampered_sig = V2_ALICE.replace("625e", "625f");
        let tampered_value = V2_ALICE.replace("YWxpY2U=", "YWxpY2X=");
        let cases: [(&str, &str, &str, u64, bool); 14] = [
            ("ok", V2_ALICE, "user", T, true),
            ("just within 31 days", V2_ALICE, "user", T + 31 * day, true),
            ("expired", V2_ALICE, "user", T + 31 * day + 1, false),
            (
                "v2 has no future limit",
                V2_ALICE,
                "user",
                T - 365 * day,
                true,
            ),
            ("modified name", V2_ALICE, "admin", T, false),
            ("tampered signature", &tampered_sig, "user", T, false),
            ("tampered value", &tampered_value, "user", T, false),
            (
                "trailing newline",
                "2|1:0|10:1700000000|4:user|8:YWxpY2U=|625e\n",
                "user",
                T,
                false,
            ),
            ("v1 ok", V1_ALICE, "user", T, true),
            ("v1 expired", V1_ALICE, "user", T + 31 * day + 1, false),
            (
                "v1 too far ahead",
                V1_ALICE,
                "user",
                T - 31 * day - 1,
                false,
            ),
            ("v1 just ahead enough", V1_ALICE, "user", T - 31 * day, true),
            ("v1 modified name", V1_ALICE, "admin", T, false),
            ("empty", "", "user", T, false),
        ];
        for (what, value, name, now, ok) in cases {
            assert_eq!(decode(&secret(), name, value, now).is_some(), ok, "{what}");
        }
    }

    #[test]
    fn max_age_days_may_be_fractional() {
        let half_day = |now| {
            decode_signed_value_at(
                &secret(),
                "user",
                V2_ALICE,
                0.5,
                SignedValueVersion::V1,
                at(now),
            )
        };
        assert!(half_day(T + 43_200).is_some());
        assert!(half_day(T + 43_201).is_none());
    }

    #[test]
    fn wrong_or_missing_key_is_refused() {
        let other = SecretKeys::single("other");
        assert_eq!(decode(&other, "user", V2_ALICE, T), None);
        assert_eq!(decode(&other, "user", V1_ALICE, T), None);
        // A map: key version 0 verifies V2_ALICE, a map without 0 cannot.
        let has_0 = SecretKeys::versioned([(0, "secret")], 0).unwrap();
        let lacks_0 = SecretKeys::versioned([(1, "secret")], 1).unwrap();
        assert_eq!(
            decode(&has_0, "user", V2_ALICE, T).as_deref(),
            Some(&b"alice"[..])
        );
        assert_eq!(decode(&lacks_0, "user", V2_ALICE, T), None);
        // Version 1 has no key version; Tornado asserts, whirl refuses.
        assert_eq!(decode(&has_0, "user", V1_ALICE, T), None);
        // A single secret verifies any key version (V2_KEY_VERSION_1 under "k1").
        let k1 = SecretKeys::single("k1");
        assert!(decode(&k1, "user", V2_KEY_VERSION_1, T).is_some());
    }

    #[test]
    fn min_version_refuses_older_formats() {
        let v2_only = |value| {
            decode_signed_value_at(
                &secret(),
                "user",
                value,
                31.0,
                SignedValueVersion::V2,
                at(T),
            )
        };
        assert!(v2_only(V2_ALICE).is_some());
        assert!(v2_only(V1_ALICE).is_none());
    }

    /// Version 1 does not sign the pipes: moving digits from the timestamp
    /// into the value keeps the signature. The leading-zero check stops it.
    #[test]
    fn v1_digit_shifting_is_caught() {
        let genuine = create_signed_value_v1(b"secret", "n", b"abc", at(1_000_000_000));
        assert!(genuine.starts_with("YWJj|1000000000|"));
        let shifted = genuine.replacen("YWJj|1000", "YWJj1000|", 1);
        let forever = |value: &str| {
            decode_signed_value_at(&secret(), "n", value, 1e9, SignedValueVersion::V1, at(T))
        };
        assert!(forever(&genuine).is_some());
        assert_eq!(forever(&shifted), None);
    }

    #[test]
    fn rotation_verifies_old_keys_and_signs_with_current() {
        let old = SecretKeys::versioned([(1, "one")], 1).unwrap();
        let new = SecretKeys::versioned([(1, "one"), (2, "two")], 2).unwrap();
        let signed_old = create_signed_value_at(&old, "s", b"v", at(T));
        let signed_new = create_signed_value_at(&new, "s", b"v", at(T));
        assert_eq!(get_signature_key_version(&signed_old), Some(1));
        assert_eq!(get_signature_key_version(&signed_new), Some(2));
        assert!(decode(&new, "s", &signed_old, T).is_some());
        assert!(decode(&old, "s", &signed_new, T).is_none());
        assert_eq!(new.current_key_version(), Some(2));
        assert_eq!(secret().current_key_version(), None);
    }

    #[test]
    fn versioned_keys_need_the_current_key() {
        let err = SecretKeys::versioned([(0, "k0")], 3).unwrap_err();
        assert_eq!(err, SigningError::MissingCurrentKey { current: 3 });
        assert_eq!(
            err.to_string(),
            "the signing key version 3 has no key in the secret map"
        );
    }

    #[test]
    fn debug_hides_the_keys() {
        let keys = SecretKeys::versioned([(1, "hunter2"), (0, "hunter3")], 1).unwrap();
        let shown = format!("{keys:?} {:?}", SecretKeys::single("hunter2"));
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(shown.contains("versions: [0, 1]"), "{shown}");
    }

    /// Values from Tornado 6.6.1's `get_signature_key_version`.
    #[test]
    fn key_version_matches_tornado() {
        let cases: [(&str, Option<i32>); 6] = [
            (V2_ALICE, Some(0)),
            (V2_KEY_VERSION_1, Some(1)),
            (V1_ALICE, None),
            ("2|x", None),
            ("2|2:-3|1:1|1:n|0:|sig", Some(-3)),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(get_signature_key_version(value), want, "{value}");
        }
    }

    #[test]
    fn version_detection_matches_tornado() {
        let cases: [(&[u8], u32); 9] = [
            (b"2|anything", 2),
            (b"2|ends with newline\n", 2),
            (b"2|inner\nnewline", 1),
            (b"02|x", 1),
            (b"999|x", 999),
            (b"1000|x", 1),
            (b"99999999999999999999999|x", 1),
            (b"YWxp|1|sig", 1),
            (b"3", 1),
        ];
        for (value, want) in cases {
            assert_eq!(signed_value_version(value), want, "{value:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let keys = SecretKeys::versioned([(0, "a")], 0).unwrap();
        let garbage = [
            "2",
            "2|",
            "2|:",
            "2|1:",
            "2|1:0",
            "2|1:0|",
            "2|99:0|",
            "2|-1:0|",
            "2|1:0|10:1700000000|4:user|8:YWxpY2U=",
            "2|1:x|1:1|1:n|1:v|s",
            "2|1:0|1:x|4:user|0:|sig",
            "2|1:0|1:1|4:user|4:!!!!|",
            "2|18446744073709551616:0|",
            "2|1:0|10:1700000000|4:us",
            "|||",
            "||",
            "a|b|c",
            "a|-|c",
            "3|1:0|1:1|1:n|0:|s",
            "\u{e9}|\u{e9}",
            "2|\u{e9}:",
        ];
        for value in garbage {
            for keys in [&keys, &secret()] {
                assert_eq!(decode(keys, "user", value, T), None, "{value:?}");
            }
            let _ = get_signature_key_version(value);
        }
    }

    #[test]
    fn before_the_epoch_timestamps_are_negative() {
        let before = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(unix_timestamp(before), -1);
        assert_eq!(unix_timestamp(at(T)), T as i64);
        let signed = create_signed_value_at(&secret(), "n", b"v", before);
        assert!(signed.starts_with("2|1:0|2:-1|1:n|"));
    }

    #[test]
    fn helpers() {
        assert_eq!(hex_encode(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(parse_signed(b"-12"), Some(-12));
        assert_eq!(parse_signed(b"+12"), None);
        assert_eq!(parse_signed(b""), None);
        assert_eq!(parse_signed(b"-"), None);
        assert_eq!(parse_signed(b"99999999999999999999"), None);
    }

    /// Regression (found by the `xsrf_token` fuzz target): `-9223372036854775808`
    /// was refused, since its digits overflow `i64` before the sign is
    /// applied, so an XSRF token encoded with timestamp `i64::MIN` did not
    /// decode.
    #[test]
    fn parse_signed_refused_i64_min() {
        assert_eq!(parse_signed(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_signed(b"-9223372036854775809"), None);
        assert_eq!(parse_signed(b"9223372036854775808"), None);
        assert_eq!(parse_signed(b"-0"), Some(0));
        let token = crate::xsrf::encode_xsrf_token_with_mask(b"t", [1, 2, 3, 4], i64::MIN);
        let decoded = crate::xsrf::decode_xsrf_token(&token).expect("it decodes");
        assert_eq!(decoded.timestamp, i64::MIN);
    }

    #[test]
    fn clock_wrappers_round_trip() {
        let signed = create_signed_value(&secret(), "n", b"now");
        let back = decode_signed_value(&secret(), "n", &signed, 1.0, SignedValueVersion::V2);
        assert_eq!(back.as_deref(), Some(&b"now"[..]));
    }
}
