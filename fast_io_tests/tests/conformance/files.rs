//! Files (C16): `send_file` sends a file range after the bytes written before it, byte for byte,
//! from tmpfs and from disk, past 4 GiB in a sparse file, through a saturated socket, up to the
//! end of a short file, and fails at a dead peer or a deadline as a write does (C5, C7);
//! `recv_to_file` is the mirror. One body per test, generic over the backend (from its
//! [`Trial`]); `main.rs` runs them once per backend.
//!
//! Every file is made for the test and unlinked at once (it lives while open). Files hold the
//! pattern at their own offsets (byte `x` of the file is byte `x` of the stream), so a range sent
//! from offset `o` must arrive as the pattern from `o`. A filesystem the machine does not have
//! makes its half of a test print `skipped: <reason>`.
//!
//! The send tests are in `files/send.rs`, the receive tests in `files/recv.rs`; the files,
//! filesystems and peers both use are here.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread;

use fast_io_tests::files::{pattern_file, scratch_file};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::Pattern;
use fast_io_tests::peers::spawn;
use socket2::Socket;

use crate::not_applicable;

mod recv;
mod send;

pub use recv::*;
pub use send::*;

/// 4 GiB: offsets past it need a 64-bit `off_t` all the way down.
const GIB4: u64 = 4 << 30;
/// The size of a sparse file, and the offset the tests use in it.
const SPARSE_LEN: u64 = 5 << 30;
const SPARSE_AT: u64 = GIB4 + 123;

/// The kind of filesystem a test file lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Tmpfs,
    Disk,
}

impl Place {
    const ALL: [Place; 2] = [Place::Tmpfs, Place::Disk];

    /// A directory on this kind of filesystem, or why the machine has none.
    fn dir(self) -> Result<PathBuf, String> {
        match self {
            Place::Tmpfs => {
                let shm = PathBuf::from("/dev/shm");
                match fs_type(&shm) {
                    Some(kind) if kind == "tmpfs" => Ok(shm),
                    Some(kind) => Err(format!("/dev/shm is {kind}, not tmpfs")),
                    None => Err("this machine has no /dev/shm".into()),
                }
            }
            Place::Disk => [env!("CARGO_TARGET_TMPDIR"), "/var/tmp"]
                .into_iter()
                .map(PathBuf::from)
                .find(|dir| fs_type(dir).is_some_and(|kind| kind != "tmpfs" && kind != "ramfs"))
                .ok_or_else(|| {
                    "neither the target directory nor /var/tmp is on a disk filesystem".into()
                }),
        }
    }

    /// [`Place::dir`], or `None` after printing why the test skips this place.
    fn dir_or_skip(self) -> Option<PathBuf> {
        match self.dir() {
            Ok(dir) => Some(dir),
            Err(reason) => {
                println!("skipped: {self:?} files: {reason}");
                None
            }
        }
    }
}

/// The type of the filesystem mounted where `path` is (the longest mount point that holds it).
/// Whether a "done before its deadline check" test applies: under `FAST_IO_FAULTS` its one step
/// may be answered with a transient result, after which the call must wait, and a deadline that
/// has passed allows no wait. Prints why not when it does not.
fn done_in_one_step_applies(t: &Trial) -> bool {
    if fast_io::faults::any() {
        not_applicable(
            t,
            "a call done in its first step completing after its deadline",
            "FAST_IO_FAULTS may answer that step with a transient result, after which the call \
             must wait, and a deadline that has passed allows no wait",
        );
        return false;
    }
    true
}

fn fs_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let point = PathBuf::from(fields.next()?.replace("\\040", " "));
            let kind = fields.next()?.to_string();
            path.starts_with(&point).then_some((point, kind))
        })
        .max_by_key(|(point, _)| point.as_os_str().len())
        .map(|(_, kind)| kind)
}

/// A sparse file of [`SPARSE_LEN`] bytes with `len` pattern bytes at [`SPARSE_AT`].
fn sparse_file(dir: &Path, pattern: Pattern, len: usize) -> File {
    let file = scratch_file(dir, false);
    file.set_len(SPARSE_LEN)
        .expect("set_len of the sparse file");
    file.write_all_at(&pattern.bytes(SPARSE_AT, len), SPARSE_AT)
        .expect("write past 4 GiB");
    file
}

/// Reads `sock` to end of stream, with plain blocking reads.
fn read_all(sock: Socket) -> Vec<u8> {
    let mut got = Vec::new();
    (&sock).read_to_end(&mut got).expect("the peer's read");
    got
}

/// Checks that `got` is `pattern` from stream offset `at`, naming the first wrong byte.
fn assert_pattern(what: &str, got: &[u8], pattern: Pattern, at: u64) {
    let want = pattern.bytes(at, got.len());
    if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
        panic!(
            "{what}: byte {} (offset {}) is {:#04x}, expected {:#04x}",
            i,
            at + i as u64,
            got[i],
            want[i]
        );
    }
}

/// A peer thread that reads `server` to end of stream.
fn reading_peer(what: String, server: Socket) -> thread::JoinHandle<Vec<u8>> {
    spawn(what, move || read_all(server))
}
