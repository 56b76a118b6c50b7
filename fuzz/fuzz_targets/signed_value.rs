//! Signed-cookie decoding: `whirl_web::signing::decode_signed_value`.
//!
//! Input: one settings byte (bits 0–1 pick the secret, bit 2 the oldest
//! format accepted, bits 3–4 `max_age_days`), one byte giving the length
//! of the cookie name (up to 31), the name, then the value — decoded as
//! sent, and also signed and decoded back.
//!
//! Checks: decoding arbitrary bytes never panics and never accepts a value
//! that was not signed with the secret (the input's bytes are not signed,
//! short of an HMAC collision, unless the fuzzer reproduced a signature we
//! made — so anything accepted must decode to a value we can sign back to
//! the same text); a value we sign decodes to what was signed, under its
//! own name only; any one changed byte makes it fail; the key version read
//! back is the one that signed.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use whirl_web::signing::{
    create_signed_value_at, create_signed_value_v1, decode_signed_value, decode_signed_value_at,
    get_signature_key_version, SecretKeys, SignedValueVersion,
};

/// The fixed clock the values are signed and checked at.
const NOW: u64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let &[settings, name_byte, ref rest @ ..] = data else {
        return;
    };
    let secret = match settings & 3 {
        0 => SecretKeys::single("secret"),
        1 => SecretKeys::single(&b"\x00\xffbin"[..]),
        2 => SecretKeys::versioned([(0, "k0"), (1, "k1")], 1).expect("1 is a version"),
        _ => SecretKeys::versioned([(0, "secret")], 0).expect("0 is a version"),
    };
    let min_version = if settings & 4 == 0 {
        SignedValueVersion::V1
    } else {
        SignedValueVersion::V2
    };
    let max_age_days = [31.0, 0.0, 1e9, f64::NAN][usize::from(settings >> 3 & 3)];
    let name_len = usize::from(name_byte % 32).min(rest.len());
    let (name, value) = rest.split_at(name_len);
    // Cookie names are printable ASCII (the format counts characters, and
    // a newline stops its version prefix matching, as in Tornado).
    let name: String = name.iter().map(|&b| char::from(b'!' + b % 94)).collect();
    let now = UNIX_EPOCH + Duration::from_secs(NOW);

    // Step 1. The input as a signed value someone sent.
    let _ = decode_signed_value(&secret, &name, value, max_age_days, min_version);
    let _ = get_signature_key_version(value);
    if let Some(decoded) =
        decode_signed_value_at(&secret, &name, value, max_age_days, min_version, now)
    {
        // Only our own signatures pass, and the fuzzer cannot forge one: it
        // can only have kept one from a seed, so the text must be exactly
        // what the secret signs for that value, time and key version.
        let at = signed_at(value);
        let ours = match get_signature_key_version(value) {
            Some(version) => {
                let key = key_of(settings, version).expect("a key verified it");
                let signer = SecretKeys::versioned([(version, key)], version).expect("has it");
                create_signed_value_at(&signer, &name, &decoded, at)
            }
            None => {
                let key = key_of(settings, 0).filter(|_| settings & 3 < 2);
                create_signed_value_v1(key.expect("a single secret"), &name, &decoded, at)
            }
        };
        assert_eq!(
            ours.as_bytes(),
            value,
            "accepted a value not signed with the secret"
        );
    }

    // Step 2. The input's bytes signed by us come back, under that name only.
    let signed = create_signed_value_at(&secret, &name, value, now);
    let decode = |text: &[u8], name: &str| {
        decode_signed_value_at(&secret, name, text, 31.0, SignedValueVersion::V2, now)
    };
    assert_eq!(decode(signed.as_bytes(), &name).as_deref(), Some(value));
    assert_eq!(decode(signed.as_bytes(), &format!("{name}x")), None);
    assert_eq!(
        get_signature_key_version(&signed),
        Some(secret.current_key_version().unwrap_or(0))
    );
    let at = usize::from(name_byte) * 7919 % signed.len();
    let mut tampered = signed.clone().into_bytes();
    tampered[at] ^= 1 << (settings >> 5);
    assert_eq!(
        decode(&tampered, &name),
        None,
        "changed byte {at} of {signed:?}"
    );

    // Step 3. Version 1, for a single secret.
    if let Some(key) = key_of(settings, 0).filter(|_| settings & 3 < 2) {
        let signed = create_signed_value_v1(key, &name, value, now);
        let decoded =
            decode_signed_value_at(&secret, &name, &signed, 31.0, SignedValueVersion::V1, now);
        assert_eq!(decoded.as_deref(), Some(value));
    }
});

/// The key the secret of `settings` verifies `version` with; for a single
/// secret, every version.
fn key_of(settings: u8, version: i32) -> Option<&'static [u8]> {
    match (settings & 3, version) {
        (0, _) => Some(b"secret"),
        (1, _) => Some(b"\x00\xffbin"),
        (2, 0) => Some(b"k0"),
        (2, 1) => Some(b"k1"),
        (3, 0) => Some(b"secret"),
        _ => None,
    }
}

/// The time a signed value says it was made, read loosely (version 2's
/// second field or version 1's second part), for re-signing it.
fn signed_at(value: &[u8]) -> SystemTime {
    let text = String::from_utf8_lossy(value);
    let field = if text.starts_with("2|") {
        text.split('|').nth(2).and_then(|f| f.split(':').nth(1))
    } else {
        text.split('|').nth(1)
    };
    let secs: i64 = field.and_then(|f| f.parse().ok()).unwrap_or(0);
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}
