//! The byte pattern `fastcat loopback` sends and checks, built so that neither side spends
//! anything per byte: the sender hands slices of it to the writer as they are, and the receiver
//! compares what arrives against the matching slice with one slice equality (a `memcmp`),
//! looking for the first differing byte only once a comparison has failed.
//!
//! The stream byte at offset `o` is `period[o % PERIOD]`, where `period` is `PERIOD` seeded
//! pseudo-random bytes. The stored buffer repeats the period's first `max_run` bytes after its
//! end, so the `len ≤ max_run` stream bytes from any offset are one contiguous slice.
//!
//! Why a prime period catches a lost or repeated run of bytes of any length short of a multiple
//! of `PERIOD`: such a fault leaves everything after it shifted by the run's length `k`, so from
//! there on the receiver compares the stream at `o + k` with the stream at `o`. Those agree on
//! `PERIOD` consecutive bytes only if they agree everywhere, that is only if `k` is a period of
//! the stream. Every period of the stream is a multiple of its smallest one, which divides
//! `PERIOD`; with `PERIOD` prime that is 1 (which would make all bytes equal, and they are not) or
//! `PERIOD` itself. So the difference shows within `PERIOD` bytes of the fault for certain, and
//! with these random bytes within a few (the test suite checks every shift); a fault too near the
//! end to show one still changes the byte count, which loopback checks too. A run moved elsewhere
//! with the count kept is compared over its own length `L` only, so it escapes only if its bytes
//! happen to equal those it displaced: a chance of 256^-L for random bytes. A period of 1 MiB also
//! keeps the pattern within this machine's caches (1 MiB of L2 per core, 32 MiB of L3), so the
//! comparison runs far faster than the socket.

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
