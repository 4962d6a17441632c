//! Decoding fuzz input: parameters from the front of the byte slice, and a
//! seeded generator for schedules (read sizes, write sizes, clock steps).
//!
//! Every byte string decodes to something: past the end the reader yields
//! zeros. That keeps every input meaningful to the fuzzer, and lets a seed
//! file be a short header followed by plain protocol text.

/// Reads parameters off the front of a fuzz input.
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over the whole input.
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    /// The next byte, or 0 past the end.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// True once every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// xorshift64*: small, fast and deterministic, so a seed byte from the input
/// fixes a whole schedule and a saved crash replays exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for this seed (any value, zero included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// The size of the next read out of `left` bytes (at least 1 when `left` is
/// not 0): mostly tiny reads, which put split points everywhere, some
/// pipe-sized ones, and now and then everything that is left.
pub fn next_chunk(rng: &mut Rng, left: usize) -> usize {
    let size = match rng.below(10) {
        0..=4 => 1 + rng.below(8),
        5..=7 => 1 + rng.below(512),
        _ => 1 + rng.below(left as u64),
    };
    (size as usize).clamp(1, left.max(1)).min(left)
}
