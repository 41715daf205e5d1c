//! The byte pattern `fastcat loopback` sends and checks, built so that neither side spends
//! anything per byte: the sender hands slices of it to the writer as they are, and the receiver
//! compares what arrives against the matching slice with one slice equality (a `memcmp`),
//! looking for the first differing byte only once a comparison has failed.
//!
//! The stream byte at offset `o` is `period[o % PERIOD]`, where `period` is `PERIOD` seeded
//! pseudo-random bytes. The stored buffer repeats the period's first `max_run` bytes after its
//! end, so the `len ≤ max_run` stream bytes from any offset are one contiguous slice.
//!
//! Why a prime period catches a lost, repeated or moved run of bytes: such a fault shifts what
//! follows it by some `k` bytes against where it belongs, and the receiver then compares the
//! pattern shifted by `k` with itself. A periodic sequence equals its own shift only when `k` is a
//! multiple of its smallest period, and every period of `period` repeated divides `PERIOD`: with
//! `PERIOD` prime that is 1 (impossible, the bytes are not all equal) or `PERIOD` itself. So any
//! shift short of a multiple of `PERIOD` (about 1 MiB) differs within one period, and with random
//! bytes in practice within a few bytes; a fault too near the end to show a difference still
//! changes the byte count, which loopback checks as well. A shift of exactly a multiple of
//! `PERIOD` that also keeps the count would need the transport to drop and repeat whole periods at
//! once, which is not a failure TCP or a backend has a reason to make.
//!
//! Why about 1 MiB: the period and one receive buffer stay within this machine's caches (1 MiB of
//! L2 per core, 32 MiB of L3), so the comparison runs at cache speed, far above the socket's.

/// The period in bytes: the largest prime below 2^20.
pub const PERIOD: usize = 1_048_573;

/// The seeded pattern, with a tail so that runs of up to `max_run` bytes are contiguous.
#[derive(Debug)]
pub struct Pattern {
    bytes: Vec<u8>,
    max_run: usize,
}

impl Pattern {
    /// The pattern, for runs of at most `max_run` bytes.
    pub fn new(max_run: usize) -> Pattern {
        // splitmix64: cheap, and its bytes are far from periodic, so every shift shows.
        let mut state = 0x5EED_FA57_CA75_0001u64;
        let mut bytes = Vec::with_capacity(PERIOD + max_run + 8);
        while bytes.len() < PERIOD {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        bytes.truncate(PERIOD);
        // The tail repeats the start, possibly more than once if max_run exceeds the period.
        while bytes.len() < PERIOD + max_run {
            let more = (PERIOD + max_run - bytes.len()).min(PERIOD);
            bytes.extend_from_within(..more);
        }
        Pattern { bytes, max_run }
    }

    /// The `len` stream bytes from offset `at`.
    ///
    /// # Panics
    /// If `len` exceeds the `max_run` the pattern was built for.
    pub fn run(&self, at: u64, len: usize) -> &[u8] {
        assert!(
            len <= self.max_run,
            "a run of {len} bytes exceeds the pattern's tail"
        );
        let start = (at % PERIOD as u64) as usize;
        &self.bytes[start..start + len]
    }

    /// Checks that `got` is what the stream carries from offset `at`; if not, the stream offset of
    /// the first byte that differs. The equality is one `memcmp`; the byte-by-byte search runs only
    /// on the failure path.
    pub fn check(&self, at: u64, got: &[u8]) -> Result<(), u64> {
        let want = self.run(at, got.len());
        if got == want {
            return Ok(());
        }
        let first = got
            .iter()
            .zip(want)
            .position(|(g, w)| g != w)
            .expect("unequal slices of equal length differ somewhere");
        Err(at + first as u64)
    }
}
