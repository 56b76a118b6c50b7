//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every target reads its first byte (or two) as settings — limits, flags,
//! the seed of the splits it tries — and the rest as the hostile input, so
//! a seed made from a test vector is the vector with a zero byte in front.

/// A xorshift64* generator: deterministic, so a crash reproduces from its
/// input alone.
#[derive(Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Cuts `len` bytes into pieces: the end offsets of each, ascending, the
/// last being `len`. Pieces are mostly short (one to a few bytes, where
/// state machines break) with a few long ones.
pub fn split_points(rng: &mut XorShift, len: usize) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while at < len {
        let step = match rng.below(4) {
            0 => 1,
            1 => 1 + rng.below(4),
            2 => 1 + rng.below(32),
            _ => 1 + rng.below(len),
        };
        at = (at + step).min(len);
        ends.push(at);
    }
    ends
}

/// A few distinct cut positions inside `0..len` (for "a prefix of this is
/// still incomplete" checks), always including `len - 1` when `len > 0`.
pub fn some_prefixes(rng: &mut XorShift, len: usize, count: usize) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    let mut cuts: Vec<usize> = (0..count).map(|_| rng.below(len)).collect();
    cuts.push(len - 1);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}
