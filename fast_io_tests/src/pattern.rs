//! The payload of the conformance tests and its check: [`Pattern`] is a byte stream that depends
//! on its seed and on each byte's offset, never contains the prefill [`MARKER`], and so shows a
//! lost, repeated, reordered or foreign run of bytes at its first byte; [`Expect`] checks received
//! bytes against it and says what went wrong. [`Rng`] is the seeded generator of the tests' random
//! sizes and pauses, so every run makes the same choices.
//!
//! The sockets these bytes travel through are in [`crate::fixtures`].

/// The byte [`saturate`](crate::fixtures::saturate) fills send buffers with. [`Pattern`] never
/// produces it, so a marker inside a payload (or a payload byte inside the prefill) is caught at
/// once.
pub const MARKER: u8 = 0xFF;

/// splitmix64's finaliser: a cheap bijection whose output bits all depend on every input bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The payload: byte `at` of stream `seed` is a byte of `mix(seed, at / 8)` with its lowest bit
/// cleared, so it is never [`MARKER`] (odd) and a byte out of place matches the expected one
/// with probability 1/128 — a lost, repeated, reordered or foreign run shows at its first bytes.
/// Give each stream of a test its own seed, so bytes that cross between connections show too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    seed: u64,
}

impl Pattern {
    /// The stream with this seed.
    pub fn new(seed: u64) -> Pattern {
        Pattern {
            seed: mix(seed.wrapping_add(0x9E37_79B9_7F4A_7C15)),
        }
    }

    fn word(self, index: u64) -> [u8; 8] {
        (mix(self.seed.wrapping_add(index)) & 0xFEFE_FEFE_FEFE_FEFE).to_le_bytes()
    }

    /// The byte at stream offset `at`.
    pub fn byte(self, at: u64) -> u8 {
        self.word(at / 8)[(at % 8) as usize]
    }

    /// Fills `out` with the bytes at stream offsets `at..at + out.len()`.
    pub fn fill(self, at: u64, out: &mut [u8]) {
        let mut pos = at;
        let mut i = 0;
        while i < out.len() {
            let word = self.word(pos / 8);
            let start = (pos % 8) as usize;
            let n = (8 - start).min(out.len() - i);
            out[i..i + n].copy_from_slice(&word[start..start + n]);
            i += n;
            pos += n as u64;
        }
    }

    /// The bytes at stream offsets `at..at + len`.
    pub fn bytes(self, at: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.fill(at, &mut out);
        out
    }
}

/// Checks a received stream against a [`Pattern`], byte for byte, from offset 0.
#[derive(Debug)]
pub struct Expect {
    what: String,
    pattern: Pattern,
    at: u64,
    scratch: Vec<u8>,
}

impl Expect {
    /// A check of the stream `pattern`, named `what` in failure messages.
    pub fn new(what: impl Into<String>, pattern: Pattern) -> Expect {
        Expect {
            what: what.into(),
            pattern,
            at: 0,
            scratch: Vec::new(),
        }
    }

    /// The same check of a stream whose first `at` bytes were taken elsewhere: the next byte
    /// expected is byte `at` of the pattern, and [`Expect::received`] counts from `at`.
    pub fn from_offset(mut self, at: u64) -> Expect {
        self.at = at;
        self
    }

    /// Payload bytes checked so far.
    pub fn received(&self) -> u64 {
        self.at
    }

    /// Checks the next `got.len()` bytes of the stream; fails the test at the first wrong byte,
    /// saying whether it looks like bytes were skipped, repeated or the prefill leaked in.
    pub fn check(&mut self, got: &[u8]) {
        self.scratch.resize(got.len(), 0);
        self.pattern.fill(self.at, &mut self.scratch);
        if got != &self.scratch[..] {
            let i = got
                .iter()
                .zip(&self.scratch)
                .position(|(a, b)| a != b)
                .expect("slices differ");
            let offset = self.at + i as u64;
            panic!(
                "{}: byte {offset} is {:#04x}, expected {:#04x}{}",
                self.what,
                got[i],
                self.scratch[i],
                self.diagnose(offset, &got[i..])
            );
        }
        self.at += got.len() as u64;
    }

    /// Names the likely fault behind a mismatch at `offset`, where `rest` was received.
    fn diagnose(&self, offset: u64, rest: &[u8]) -> String {
        if rest[0] == MARKER {
            return " (a prefill marker byte inside the payload)".into();
        }
        let probe = &rest[..rest.len().min(16)];
        if probe.len() < 4 {
            return String::new();
        }
        let matches_at = |start: u64| self.pattern.bytes(start, probe.len()) == probe;
        for shift in 1..=(1u64 << 16) {
            if matches_at(offset + shift) {
                return format!(
                    " ({shift} bytes were skipped: the stream resumes at {})",
                    offset + shift
                );
            }
            if shift <= offset && matches_at(offset - shift) {
                return format!(
                    " ({shift} bytes were repeated: the stream went back to {})",
                    offset - shift
                );
            }
        }
        " (not this stream's bytes nearby: corrupted, or from another stream)".into()
    }
}

/// A small seeded generator (splitmix64), so random sizes and pauses are the same on every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// A size in `1..=max` spread evenly over the powers of two, so tiny and huge sizes are
    /// both common.
    pub fn size_up_to(&mut self, max: usize) -> usize {
        let bits = usize::BITS - max.leading_zeros();
        let exponent = self.between(0, u64::from(bits) - 1);
        let low = 1u64 << exponent;
        let size = self.between(low, low * 2 - 1);
        usize::try_from(size).unwrap_or(max).min(max)
    }
}

#[cfg(test)]
mod tests {
    use std::panic;

    use super::*;

    #[test]
    fn the_pattern_never_holds_the_marker_and_differs_between_seeds() {
        let a = Pattern::new(1).bytes(3, 1 << 16);
        assert!(!a.contains(&MARKER));
        assert_ne!(a, Pattern::new(2).bytes(3, 1 << 16));
        let mut piecewise = vec![0u8; 1000];
        for (i, byte) in piecewise.iter_mut().enumerate() {
            *byte = Pattern::new(1).byte(3 + i as u64);
        }
        assert_eq!(&a[..1000], &piecewise[..]);
    }

    #[test]
    fn expect_accepts_the_stream_in_any_pieces() {
        let pattern = Pattern::new(9);
        let data = pattern.bytes(0, 10_000);
        let mut expect = Expect::new("stream", pattern);
        for piece in data.chunks(7) {
            expect.check(piece);
        }
        assert_eq!(expect.received(), 10_000);
    }

    fn failure_of(got: &[u8]) -> String {
        let mut expect = Expect::new("stream", Pattern::new(5));
        let payload = panic::catch_unwind(panic::AssertUnwindSafe(|| expect.check(got)))
            .expect_err("the check should fail");
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn expect_names_a_skipped_a_repeated_and_a_marker_byte() {
        let data = Pattern::new(5).bytes(0, 4096);
        let mut skipped = data.clone();
        skipped.remove(100);
        assert!(failure_of(&skipped).contains("1 bytes were skipped"));
        let mut repeated = data[..200].to_vec();
        repeated.extend_from_slice(&data[190..400]);
        assert!(failure_of(&repeated).contains("10 bytes were repeated"));
        let mut marked = data;
        marked[50] = MARKER;
        assert!(failure_of(&marked).contains("marker"));
    }

    #[test]
    fn sizes_cover_the_whole_range() {
        let mut rng = Rng::new(1);
        let sizes: Vec<usize> = (0..2000).map(|_| rng.size_up_to(1 << 20)).collect();
        assert!(sizes.iter().all(|&s| (1..=1 << 20).contains(&s)));
        assert!(sizes.iter().any(|&s| s < 16));
        assert!(sizes.iter().any(|&s| s > 1 << 19));
    }
}
