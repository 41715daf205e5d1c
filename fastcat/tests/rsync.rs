//! A real client through `fastcat relay`: rsync pushes a tree (a few thousand small files and
//! one large one) to an `rsync --daemon` through the relay, then pulls it back, on every backend
//! with groups, and every file must arrive byte for byte. rsync's protocol talks both ways at
//! every step (file lists, checksums, data and acknowledgements interleaved), the shape the
//! relay exists for.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Guarded, await_listening, backends, fastcat, finish, free_port, have, scratch};

/// Small files in the tree, spread over directories, and the size of the large one.
const SMALL_FILES: usize = 3000;
const DIRS: usize = 30;
const LARGE: usize = 24 << 20;

/// A seeded generator, so a failing tree can be made again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Writes the tree under `root`: `SMALL_FILES` files of 0 to 8 KiB in `DIRS` directories, and
/// one large file.
fn make_tree(root: &Path) {
    let mut rng = Rng(0x5EED_2026_1206_0001);
    for i in 0..SMALL_FILES {
        let dir = root.join(format!("d{:02}", i % DIRS));
        fs::create_dir_all(&dir).unwrap();
        let len = (rng.next() % (8 << 10)) as usize;
        fs::write(dir.join(format!("f{i:04}.bin")), rng.bytes(len)).unwrap();
    }
    fs::write(root.join("large.bin"), rng.bytes(LARGE)).unwrap();
}

/// Every regular file under `root`, as paths relative to it, sorted.
fn files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}

/// Fails unless `copy` holds exactly the files of `original`, byte for byte.
fn assert_same_tree(original: &Path, copy: &Path, what: &str) {
    let (want, got) = (files(original), files(copy));
    assert_eq!(want.len(), SMALL_FILES + 1, "{what}: the original tree");
    assert_eq!(want, got, "{what}: the file lists differ");
    for path in &want {
        let (a, b) = (
            fs::read(original.join(path)).unwrap(),
            fs::read(copy.join(path)).unwrap(),
        );
        assert!(a == b, "{what}: {} differs", path.display());
    }
}

/// Runs an rsync client; fails with its output unless it succeeds.
fn rsync(args: &[&str], what: &str) {
    let out = finish(
        support::spawn(Command::new("rsync").args(args)),
        &format!("rsync {what}"),
    );
    assert!(
        out.status.success(),
        "rsync {what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Bytes to the target and to the client of connection `id`, from its summary line, which
/// must say it closed cleanly.
fn relayed(stderr: &str, id: u64) -> (u64, u64) {
    let prefix = format!("fastcat: relay #{id} from ");
    let line = stderr
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no summary of connection {id}: {stderr}"));
    assert!(line.ends_with(", closed"), "{line}");
    let words: Vec<&str> = line.split_whitespace().collect();
    let count = |unit: &str| -> u64 {
        let at = words
            .windows(4)
            .position(|w| w[1..3] == ["bytes", "to"] && w[3].trim_end_matches(',') == unit)
            .unwrap_or_else(|| panic!("{line}"));
        words[at].parse().unwrap()
    };
    (count("target"), count("client"))
}

#[test]
fn rsync_pushes_and_pulls_a_tree_through_the_relay() {
    if !have("rsync") {
        return;
    }
    let dir = scratch("rsync");
    let source = dir.join("source");
    make_tree(&source);
    let module = dir.join("module");
    fs::create_dir_all(&module).unwrap();
    let daemon_port = free_port();
    // Run as root, the daemon would switch to `nobody` for the module; keep it the test's user.
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let config = dir.join("rsyncd.conf");
    fs::write(
        &config,
        format!(
            "use chroot = no\n{}[m]\n  path = {}\n  read only = false\n",
            if root { "uid = root\ngid = root\n" } else { "" },
            module.display()
        ),
    )
    .unwrap();
    let _daemon = Guarded::spawn(Command::new("rsync").args([
        "--daemon",
        "--no-detach",
        &format!("--config={}", config.display()),
        "--address=127.0.0.1",
        &format!("--port={daemon_port}"),
        &format!("--log-file={}", dir.join("rsyncd.log").display()),
    ]));
    await_listening(daemon_port, "rsync --daemon");
    for backend in backends().into_iter().filter(|&b| b != "std") {
        let port = free_port();
        let relay = Guarded::spawn(Command::new(fastcat()).args([
            "relay",
            &format!("127.0.0.1:{port}"),
            &format!("127.0.0.1:{daemon_port}"),
            "--backend",
            backend,
            "--count",
            "2",
        ]));
        await_listening(port, "fastcat relay");
        let url = format!("rsync://127.0.0.1:{port}/m/{backend}/");
        rsync(
            &["-a", &format!("{}/", source.display()), &url],
            &format!("push through the {backend} relay"),
        );
        assert_same_tree(&source, &module.join(backend), &format!("{backend} push"));
        let pulled = dir.join(format!("pulled-{backend}"));
        rsync(
            &["-a", &url, &format!("{}/", pulled.display())],
            &format!("pull through the {backend} relay"),
        );
        assert_same_tree(&source, &pulled, &format!("{backend} pull"));
        let out = relay.finish("fastcat relay");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{backend}: {stderr}");
        // The bytes went through the relay: the push's large file towards the daemon, the
        // pull's back towards the client, and both connections closed cleanly.
        let (pushed, _) = relayed(&stderr, 1);
        let (_, pulled) = relayed(&stderr, 2);
        assert!(pushed >= LARGE as u64, "{backend}: {stderr}");
        assert!(pulled >= LARGE as u64, "{backend}: {stderr}");
    }
    let _ = fs::remove_dir_all(&dir);
}
