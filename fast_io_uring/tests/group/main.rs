//! Groups (G1–G8): many sockets driven by one thread through the shared ring of a `UringGroup`.
//!
//! Every test runs its body inside a generous deadlock guard (a failure, never a hang), checks
//! data byte for byte with the stream pattern, and holds `SERIAL` so that the descriptor count
//! of `g6_drop_group_in_flight` is not disturbed by another test opening sockets meanwhile.
//!
//! The tests are in one binary, split by idea: `isolation` (one member's stuck or failed peer
//! leaves the others alone: G1, G5), `batching` (many sockets byte-exact, one kernel entry per
//! round, writes that only buffer: G2, G3), `deadlines` (a flush or read that ends at its
//! deadline: G4, C5), and `in_flight` (gates in flight when the group is dropped, changes its
//! members or moves to another thread: G6, G7). This file holds the helpers they share; the
//! helpers shared with the crate's other test binaries are in `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod batching;
mod deadlines;
mod in_flight;
mod isolation;

use std::io::Read;
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use fast_io::{Config, Member, SocketGroup};
use fast_io_uring::{UringBackend, UringGroup};
use support::{MARKER, check, fill};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn group(config: &Config) -> UringGroup {
    UringBackend.new_group(config).unwrap()
}

/// Reads `sock` until end of stream, checking `skip` marker bytes and then the pattern from 0;
/// returns the pattern bytes received.
fn drain(mut sock: TcpStream, skip: usize) -> JoinHandle<u64> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 256 << 10];
        let mut at = 0u64;
        let mut skipped = 0;
        loop {
            let n = sock.read(&mut buf).unwrap();
            if n == 0 {
                assert_eq!(skipped, skip, "end of stream inside the prefill");
                return at;
            }
            let mut data = &buf[..n];
            if skipped < skip {
                let k = data.len().min(skip - skipped);
                assert!(data[..k].iter().all(|&b| b == MARKER), "prefill corrupted");
                skipped += k;
                data = &data[k..];
            }
            check(data, at);
            at += data.len() as u64;
        }
    })
}

/// Writes up to `limit` pattern bytes into `member`'s buffer from stream offset `*at`.
fn top_up(
    group: &mut dyn SocketGroup,
    member: Member,
    at: &mut u64,
    limit: u64,
    scratch: &mut [u8],
) {
    if *at >= limit {
        return;
    }
    let n = scratch.len().min((limit - *at) as usize);
    fill(&mut scratch[..n], *at);
    let took = group.write(member, &scratch[..n]).unwrap();
    *at += took as u64;
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
