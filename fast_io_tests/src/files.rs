//! Test files for the file transfers (C16), shared by the conformance and the group tests: a
//! scratch file unlinked as soon as it is made (it lives while open), and a file holding a
//! [`Pattern`] at its own offsets, so byte `x` of the file is byte `x` of the stream and a range
//! sent from offset `o` must arrive as the pattern from `o`.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::pattern::Pattern;

/// A new empty file in `dir`, readable, and writable (or, with `append`, opened `O_APPEND`),
/// already unlinked.
pub fn scratch_file(dir: &Path, append: bool) -> File {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "fast_io_c16_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = File::options()
        .read(true)
        .write(!append)
        .append(append)
        .create_new(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .unwrap_or_else(|err| panic!("creating {}: {err}", path.display()));
    std::fs::remove_file(&path).expect("unlink the scratch file");
    file
}

/// A file of `len` bytes in `dir` holding `pattern` at its own offsets.
pub fn pattern_file(dir: &Path, pattern: Pattern, len: u64) -> File {
    let file = scratch_file(dir, false);
    let mut at = 0;
    while at < len {
        let n = (len - at).min(1 << 20) as usize;
        file.write_all_at(&pattern.bytes(at, n), at)
            .expect("write the test file");
        at += n as u64;
    }
    file
}
