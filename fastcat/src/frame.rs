//! The framing of `--streams N`: how one file is cut into N ranges, the header that opens each
//! connection, and the receiver's check that the ranges fit together.
//!
//! The file of `total` bytes is cut into N contiguous ranges, range `i` being
//! `[total·i/N, total·(i+1)/N)`; connection `i` carries a 48-byte header and then exactly the
//! bytes of range `i`, and ends with a half-close. The header, integers big-endian:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..8 | magic `FASTCAT1` (the `1` is the format's version) |
//! | 8..16 | transfer id: the same on every connection of one `send` |
//! | 16..20 | range index `i` |
//! | 20..24 | range count N |
//! | 24..32 | the file's size `total` |
//! | 32..40 | the range's offset in the file |
//! | 40..48 | the range's length |
//!
//! The receiver writes each range at its offset (spliced there by the group's receive rounds),
//! so the connections may deliver in any order and interleave. It accepts the transfer only when
//! N connections of one transfer id each brought a different index below N, the offset and
//! length that index must have, and exactly that many bytes before their end of stream: every
//! range once, nothing missing.
//! One stream (`N = 1`) has no header at all: plain TCP bytes, as `nc` and `socat` send.

/// The header's first bytes: the format and its version.
pub const MAGIC: [u8; 8] = *b"FASTCAT1";

/// The header's length in bytes.
pub const HEADER_LEN: usize = 48;

/// The header that opens each connection of a `--streams N` transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub id: u64,
    pub index: u32,
    pub count: u32,
    pub total: u64,
    pub offset: u64,
    pub length: u64,
}

impl Header {
    /// The header of range `index` of `count` of a file of `total` bytes.
    pub fn new(id: u64, index: u32, count: u32, total: u64) -> Header {
        let (offset, length) = range(total, count, index);
        Header {
            id,
            index,
            count,
            total,
            offset,
            length,
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..16].copy_from_slice(&self.id.to_be_bytes());
        out[16..20].copy_from_slice(&self.index.to_be_bytes());
        out[20..24].copy_from_slice(&self.count.to_be_bytes());
        out[24..32].copy_from_slice(&self.total.to_be_bytes());
        out[32..40].copy_from_slice(&self.offset.to_be_bytes());
        out[40..48].copy_from_slice(&self.length.to_be_bytes());
        out
    }

    /// The header in `bytes` (`HEADER_LEN` of them), or what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<Header, String> {
        if bytes.len() != HEADER_LEN || !starts_like_a_header(bytes) {
            return Err(NOT_A_HEADER.into());
        }
        let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8"));
        Ok(Header {
            id: u64_at(8),
            index: u32_at(16),
            count: u32_at(20),
            total: u64_at(24),
            offset: u64_at(32),
            length: u64_at(40),
        })
    }
}

/// What the receiver says of a connection that does not open with a header.
pub const NOT_A_HEADER: &str = "a connection did not open with a --streams header (the sender must be fastcat send --streams N)";

/// Whether the first bytes of a connection could be a header: they agree with [`MAGIC`] as far
/// as they go.
fn starts_like_a_header(bytes: &[u8]) -> bool {
    let n = bytes.len().min(MAGIC.len());
    bytes[..n] == MAGIC[..n]
}

/// Range `index` of `count` of a file of `total` bytes, as (offset, length): the file in
/// `count` contiguous pieces whose lengths differ by at most one byte.
pub fn range(total: u64, count: u32, index: u32) -> (u64, u64) {
    let at = |i: u32| (u128::from(total) * u128::from(i) / u128::from(count)) as u64;
    let start = at(index);
    (start, at(index + 1) - start)
}

/// The receiver's account of which ranges arrived, for one transfer of `count` ranges.
#[derive(Debug)]
pub struct Plan {
    count: u32,
    /// The transfer id and the file's size, from the first header.
    first: Option<(u64, u64)>,
    seen: Vec<bool>,
}

impl Plan {
    pub fn new(count: u32) -> Plan {
        Plan {
            count,
            first: None,
            seen: vec![false; count as usize],
        }
    }

    /// Takes a connection's header: it must belong to this transfer and name a range not seen
    /// before, placed where its index says.
    pub fn admit(&mut self, header: &Header) -> Result<(), String> {
        if header.count != self.count {
            return Err(format!(
                "the sender cut the file into {} streams, this receiver expects {}: give both \
                 the same --streams",
                header.count, self.count
            ));
        }
        let (id, total) = *self.first.get_or_insert((header.id, header.total));
        if header.id != id || header.total != total {
            return Err(format!(
                "range {} belongs to another transfer (id {:x}, {} bytes; expected id {id:x}, \
                 {total} bytes)",
                header.index, header.id, header.total
            ));
        }
        let Some(seen) = self.seen.get_mut(header.index as usize) else {
            return Err(format!(
                "range index {} is out of bounds for {} streams",
                header.index, self.count
            ));
        };
        if *seen {
            return Err(format!("range {} arrived twice", header.index));
        }
        if (header.offset, header.length) != range(total, self.count, header.index) {
            return Err(format!(
                "range {} claims bytes {}..{} of {total}, which is not its place",
                header.index,
                header.offset,
                header.offset.saturating_add(header.length)
            ));
        }
        *seen = true;
        Ok(())
    }

    /// The file's size once every range was admitted; else which ones are missing.
    pub fn complete(&self) -> Result<u64, String> {
        let missing: Vec<String> = (0..self.count)
            .filter(|&i| !self.seen[i as usize])
            .map(|i| i.to_string())
            .collect();
        match self.first {
            Some((_, total)) if missing.is_empty() => Ok(total),
            _ => Err(format!("ranges {} never arrived", missing.join(", "))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_header_decodes_to_itself() {
        let header = Header::new(0xDEAD_BEEF_0BAD_F00D, 2, 4, (3 << 20) + 123);
        assert_eq!(Header::decode(&header.encode()), Ok(header));
        let mut bad = header.encode();
        bad[7] = b'2';
        assert!(Header::decode(&bad).is_err(), "another version");
        assert!(!starts_like_a_header(b"FASTCAT2"));
        assert!(starts_like_a_header(b"FAST"));
        assert!(!starts_like_a_header(b"hello"));
    }

    #[test]
    fn the_plan_takes_every_range_once_and_in_any_order() {
        let total = (3 << 20) + 123;
        let mut plan = Plan::new(4);
        for index in [2, 0, 3] {
            plan.admit(&Header::new(7, index, 4, total)).unwrap();
        }
        assert_eq!(plan.complete(), Err("ranges 1 never arrived".into()));
        let again = plan.admit(&Header::new(7, 2, 4, total)).unwrap_err();
        assert!(again.contains("range 2 arrived twice"), "{again}");
        let other = plan.admit(&Header::new(8, 1, 4, total)).unwrap_err();
        assert!(other.contains("another transfer"), "{other}");
        let count = plan.admit(&Header::new(7, 1, 3, total)).unwrap_err();
        assert!(count.contains("the same --streams"), "{count}");
        let mut moved = Header::new(7, 1, 4, total);
        moved.offset += 1;
        assert!(plan.admit(&moved).unwrap_err().contains("not its place"));
        let out = plan.admit(&Header {
            index: 4,
            ..Header::new(7, 3, 4, total)
        });
        assert!(out.unwrap_err().contains("out of bounds"));
        plan.admit(&Header::new(7, 1, 4, total)).unwrap();
        assert_eq!(plan.complete(), Ok(total));
    }

    proptest! {
        /// The ranges cover the file exactly, in order, with lengths one byte apart at most.
        #[test]
        fn ranges_cover_the_file_exactly(total in prop_oneof![0u64..10_000, any::<u64>()], count in 1u32..=1024) {
            let mut next = 0;
            let mut lengths = Vec::new();
            for index in 0..count {
                let (offset, length) = range(total, count, index);
                prop_assert_eq!(offset, next);
                next = offset + length;
                lengths.push(length);
            }
            prop_assert_eq!(next, total);
            let (min, max) = (lengths.iter().min().unwrap(), lengths.iter().max().unwrap());
            prop_assert!(max - min <= 1);
        }
    }
}
