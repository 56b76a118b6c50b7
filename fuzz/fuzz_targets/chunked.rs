//! The chunked body `Decoder`, fed the same bytes whole and in random
//! splits.
//!
//! Input: one settings byte (bits 0–1 the body size limit, 2–7 seed the
//! splits), then the bytes after a request head.
//!
//! Checks: every call consumes no more than it was given and makes
//! progress unless the body is done (a caller looping on it cannot hang);
//! data ranges lie inside what was consumed; the body never passes the
//! limit; and the outcome — body, trailers, where it ended, or the error —
//! does not depend on how the bytes were split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whirl_fuzz::{split_points, XorShift};
use whirl_httpserver::{BodyError, Decoder, Framing, HttpHeaders};

/// What decoding a stream of bytes came to.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Body bytes, in order.
    body: Vec<u8>,
    /// Trailer fields (once done).
    trailers: HttpHeaders,
    /// Input bytes used up when the body ended, or `None` if it did not.
    end: Option<usize>,
    /// The error that stopped it.
    error: Option<BodyError>,
}

/// Feeds `input` to a fresh decoder in pieces ending at `ends`, keeping
/// unconsumed bytes in a buffer as a connection does.
fn decode(input: &[u8], ends: &[usize], max: u64) -> Outcome {
    let mut decoder = Decoder::new(Framing::Chunked, max);
    let mut outcome = Outcome {
        body: Vec::new(),
        trailers: HttpHeaders::new(),
        end: None,
        error: None,
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut used = 0;
    let mut start = 0;
    for &end in ends {
        pending.extend_from_slice(&input[start..end]);
        start = end;
        while !pending.is_empty() {
            let step = match decoder.decode(&pending) {
                Ok(step) => step,
                Err(e) => {
                    outcome.error = Some(e);
                    return outcome;
                }
            };
            assert!(step.consumed <= pending.len());
            assert!(step.data.start <= step.data.end && step.data.end <= step.consumed);
            assert!(step.consumed > 0 || step.done, "no progress on {pending:?}");
            outcome.body.extend_from_slice(&pending[step.data.clone()]);
            assert!(outcome.body.len() as u64 <= max);
            assert_eq!(decoder.total(), outcome.body.len() as u64);
            pending.drain(..step.consumed);
            used += step.consumed;
            if step.done {
                assert!(decoder.is_done());
                outcome.trailers = decoder.trailers().clone();
                outcome.end = Some(used);
                return outcome;
            }
        }
    }
    assert!(!decoder.is_done());
    outcome
}

fuzz_target!(|data: &[u8]| {
    let Some((&settings, input)) = data.split_first() else {
        return;
    };
    let max = [u64::MAX, 1 << 20, 16, 0][usize::from(settings & 3)];
    let whole = decode(input, &[input.len()], max);
    if let Some(end) = whole.end {
        assert!(end <= input.len());
    }
    let mut rng = XorShift::new(u64::from(settings >> 2) ^ (input.len() as u64) << 8);
    for _ in 0..3 {
        let ends = split_points(&mut rng, input.len());
        assert_eq!(decode(input, &ends, max), whole, "split at {ends:?}");
    }
    let bytewise: Vec<usize> = (1..=input.len()).collect();
    assert_eq!(decode(input, &bytewise, max), whole, "byte by byte");
});
