//! Randomness for `/uuid`, `/bytes`, `/stream-bytes` and `/status`: the
//! system's source, or — when the client passes `?seed=` — a small
//! seeded generator, so the same seed gives the same bytes (the same on
//! every run of whirl; not the bytes Python's `random.seed` would give).

/// Random bytes from the operating system.
pub fn fill(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        // No entropy left to ask for: a seeded generator keeps the demo
        // answering (nothing here guards a secret).
        log::warn!("the system's random source failed ({e}); using a clock-seeded generator");
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Seeded::new(seed).fill(buf);
    }
}

/// A float uniform in `[0, 1)`.
pub fn uniform() -> f64 {
    let mut bytes = [0u8; 8];
    fill(&mut bytes);
    // The top 53 bits make every representable step equally likely.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Bytes for `/bytes` and `/stream-bytes`: seeded when the query has a
/// `seed`.
pub enum Source {
    /// The operating system's.
    System,
    /// Reproducible from a seed.
    Seeded(Seeded),
}

impl Source {
    /// Fills `buf`.
    pub fn fill(&mut self, buf: &mut [u8]) {
        match self {
            Source::System => fill(buf),
            Source::Seeded(seeded) => seeded.fill(buf),
        }
    }
}

/// SplitMix64: tiny, fast, and good enough for test data. A byte stream:
/// the same seed gives the same bytes however they are split into pieces.
pub struct Seeded {
    /// The generator's state.
    state: u64,
    /// Bytes of the last word not handed out yet (low byte next).
    word: u64,
    /// How many bytes `word` still holds.
    left: u32,
}

impl Seeded {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Seeded {
        Seeded {
            state: seed,
            word: 0,
            left: 0,
        }
    }

    /// The next 64 random bits.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fills `buf`.
    fn fill(&mut self, buf: &mut [u8]) {
        for byte in buf {
            if self.left == 0 {
                self.word = self.next();
                self.left = 8;
            }
            *byte = self.word as u8;
            self.word >>= 8;
            self.left -= 1;
        }
    }
}
