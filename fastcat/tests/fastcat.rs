//! fastcat end to end: every available backend, against `socat` and `nc` at the other end, data
//! compared by SHA-256; plus loopback (and its check catching a corrupted byte), a vanishing peer
//! and a bad option.
//!
//! Cargo builds the fastcat binary for this test (`CARGO_BIN_EXE_fastcat`). A missing
//! `socat` or `nc` prints `skipped: <reason>`, and fails instead when `FAST_IO_REQUIRE_TOOLS`
//! names the tool (CI installs both and requires them); an unavailable backend likewise fails
//! when `FAST_IO_REQUIRE` names it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::thread;

mod support;

use support::{
    await_listening, backends, fastcat, finish, free_port, have, input, scratch, sha256, spawn,
};

/// The loopback pattern itself, compiled into this test so its promises are checked directly.
#[path = "../src/pattern.rs"]
mod pattern;

use pattern::{PERIOD, Pattern};

/// The listening side (`listen`) is started first and gets the port; then fastcat or the tool
/// connects (`connect`); the listener's output file must equal the input byte for byte.
fn interop(
    name: &str,
    listen: impl Fn(u16, &Path) -> Command,
    connect: impl Fn(u16, &Path) -> Command,
) {
    for backend in backends() {
        let dir = scratch(&format!("{name}-{backend}"));
        let input = input(&dir, (3 << 20) + 12_345);
        let output = dir.join("output.bin");
        let port = free_port();
        let mut listen_cmd = listen(port, &output);
        listen_cmd.env("FAST_IO_BACKEND", backend);
        let listener = spawn(&mut listen_cmd);
        await_listening(port, name);
        let mut connect_cmd = connect(port, &input);
        connect_cmd.env("FAST_IO_BACKEND", backend);
        let sender = finish(spawn(&mut connect_cmd), "the sender");
        assert!(
            sender.status.success(),
            "{name}/{backend} sender: {}",
            String::from_utf8_lossy(&sender.stderr)
        );
        let receiver = finish(listener, "the receiver");
        assert!(
            receiver.status.success(),
            "{name}/{backend} receiver: {}",
            String::from_utf8_lossy(&receiver.stderr)
        );
        assert_eq!(
            sha256(&input),
            sha256(&output),
            "{name}/{backend}: the copy differs"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn send_to_socat_gives_identical_bytes() {
    if !have("socat") {
        return;
    }
    interop(
        "send-socat",
        |port, out| {
            let mut cmd = Command::new("socat");
            cmd.args([
                "-u",
                &format!("TCP-LISTEN:{port},reuseaddr"),
                &format!("CREATE:{}", out.display()),
            ]);
            cmd
        },
        |port, input| {
            let mut cmd = Command::new(fastcat());
            cmd.args([
                "send",
                &input.display().to_string(),
                &format!("127.0.0.1:{port}"),
            ]);
            cmd
        },
    );
}

#[test]
fn socat_to_recv_gives_identical_bytes() {
    if !have("socat") {
        return;
    }
    interop(
        "socat-recv",
        |port, out| {
            let mut cmd = Command::new(fastcat());
            cmd.args(["recv", &port.to_string(), "-o", &out.display().to_string()]);
            cmd
        },
        |port, input| {
            let mut cmd = Command::new("socat");
            cmd.args([
                "-u",
                &format!("FILE:{}", input.display()),
                &format!("TCP:127.0.0.1:{port}"),
            ]);
            cmd
        },
    );
}

#[test]
fn send_to_nc_gives_identical_bytes() {
    if !have("nc") {
        return;
    }
    interop(
        "send-nc",
        |port, out| {
            // -d: never read stdin, so nc exits when the sender's end of stream arrives. The
            // shell redirects, because the test pipes stdout (and reads it only at exit).
            let mut cmd = Command::new("sh");
            cmd.args([
                "-c",
                &format!("exec nc -d -l 127.0.0.1 {port} > '{}'", out.display()),
            ]);
            cmd
        },
        |port, input| {
            let mut cmd = Command::new(fastcat());
            cmd.args([
                "send",
                &input.display().to_string(),
                &format!("127.0.0.1:{port}"),
            ]);
            cmd
        },
    );
}

#[test]
fn nc_to_recv_gives_identical_bytes() {
    if !have("nc") {
        return;
    }
    interop(
        "nc-recv",
        |port, out| {
            let mut cmd = Command::new(fastcat());
            cmd.args(["recv", &port.to_string(), "-o", &out.display().to_string()]);
            cmd
        },
        |port, input| {
            // -N: shut down the write half at end of input, so fastcat sees end of stream.
            let mut cmd = Command::new("nc");
            cmd.args(["-N", "127.0.0.1", &port.to_string()]);
            cmd.stdin(std::fs::File::open(input).unwrap());
            cmd
        },
    );
}

#[test]
fn loopback_checks_every_byte_on_every_backend() {
    for backend in backends() {
        let out = finish(
            spawn(Command::new(fastcat()).args([
                "loopback",
                "--size",
                "48MiB",
                "--backend",
                backend,
            ])),
            "fastcat loopback",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{backend}: {stderr}");
        assert!(stderr.contains("every byte checked"), "{backend}: {stderr}");
        assert!(
            stderr.contains(&format!("backend {backend}")),
            "{backend}: {stderr}"
        );
        assert!(
            stderr.contains("looped back 50331648 bytes"),
            "{backend}: {stderr}"
        );
    }
}

/// Runs loopback on `backend` with the byte at `offset` flipped by the receiver's test hook.
fn loopback_corrupted_at(backend: &str, size: &str, offset: u64) -> Output {
    finish(
        spawn(
            Command::new(fastcat())
                .args(["loopback", "--size", size, "--backend", backend])
                .env("FASTCAT_CORRUPT_AT", offset.to_string()),
        ),
        "fastcat loopback with a corrupted byte",
    )
}

#[test]
fn loopback_names_the_offset_of_a_corrupted_byte() {
    // 48 MiB + 7: the last byte is not on a run or period boundary. Offsets: the first byte,
    // one in the middle of a read, one just past a pattern period (1_048_573 bytes), the last.
    let size = (48u64 << 20) + 7;
    for backend in backends() {
        for offset in [0, 20_000_017, 1_048_573, size - 1] {
            let out = loopback_corrupted_at(backend, &size.to_string(), offset);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{backend}@{offset}: {stderr}");
            assert!(
                stderr.contains(&format!("byte {offset} differs from what was sent")),
                "{backend}@{offset}: {stderr}"
            );
            assert!(
                !stderr.contains("every byte checked"),
                "{backend}@{offset}: {stderr}"
            );
        }
    }
}

#[test]
fn loopback_ignores_a_corruption_offset_past_the_end() {
    // The hook flips nothing outside the stream, so a clean run still passes with it set: the
    // failures above come from the flipped byte, not from the hook being set.
    for backend in backends() {
        let out = loopback_corrupted_at(backend, "1MiB", 1 << 20);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{backend}: {stderr}");
        assert!(stderr.contains("every byte checked"), "{backend}: {stderr}");
    }
}

#[test]
fn loopback_rejects_a_corruption_offset_that_is_not_a_number() {
    let out = finish(
        spawn(
            Command::new(fastcat())
                .args(["loopback", "--size", "1MiB"])
                .env("FASTCAT_CORRUPT_AT", "the middle"),
        ),
        "fastcat loopback with a bad hook value",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("FASTCAT_CORRUPT_AT"), "{stderr}");
}

#[test]
fn pattern_runs_are_the_stream_from_any_offset() {
    // A run starting anywhere, across the period's end or not, is the stream byte for byte: the
    // tail that makes runs contiguous repeats the start of the period exactly.
    let run = 1 << 20;
    let pattern = Pattern::new(run);
    let byte = |at: u64| pattern.run(at, 1)[0];
    for at in [
        0,
        1,
        PERIOD as u64 - 1000,
        PERIOD as u64 - 1,
        5 * PERIOD as u64 + 3,
    ] {
        let bytes = pattern.run(at, run);
        assert!(
            bytes
                .iter()
                .enumerate()
                .all(|(i, &b)| b == byte(at + i as u64)),
            "the run from {at} is not the stream"
        );
        assert_eq!(pattern.check(at, bytes), Ok(()));
    }
}

#[test]
fn pattern_shows_any_lost_or_repeated_run_within_a_few_bytes() {
    // A lost (or repeated) run of k bytes makes the receiver see the stream from o + k (or
    // o - k) where it expects o. Every shift short of a period must show at once, whatever k.
    let pattern = Pattern::new(64);
    for o in [0u64, 777_777] {
        for k in 1..PERIOD as u64 {
            let shifted = pattern.run(o + k, 64);
            match pattern.check(o, shifted) {
                Err(bad) => assert!(bad - o < 8, "a shift of {k} at {o} showed only at {bad}"),
                Ok(()) => panic!("a shift of {k} bytes at {o} went unnoticed"),
            }
        }
        // The one blind spot: a shift by a whole period is the same bytes.
        assert_eq!(pattern.check(o, pattern.run(o + PERIOD as u64, 64)), Ok(()));
    }
}

#[test]
fn pattern_check_names_the_first_differing_byte() {
    let pattern = Pattern::new(4096);
    let at = 3 * PERIOD as u64 - 100;
    // Offsets either side of a period boundary (at + 100), with a later difference too: the
    // first one is named.
    for i in [0, 1, 99, 100, 4094] {
        let mut got = pattern.run(at, 4096).to_vec();
        got[i] ^= 1;
        got[4095] ^= 0x80;
        assert_eq!(
            pattern.check(at, &got),
            Err(at + i as u64),
            "flipped byte {i}"
        );
    }
    let mut got = pattern.run(at, 4096).to_vec();
    got[4095] ^= 0x80;
    assert_eq!(pattern.check(at, &got), Err(at + 4095), "the last byte");
}

#[test]
fn a_peer_that_goes_silent_is_reported_not_waited_on() {
    for backend in backends() {
        let port = free_port();
        let child = spawn(Command::new(fastcat()).args([
            "recv",
            &port.to_string(),
            "--timeout",
            "0.5",
            "--backend",
            backend,
        ]));
        await_listening(port, "silent peer");
        let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        peer.write_all(b"some bytes, then silence").unwrap();
        let out = finish(child, "fastcat recv from a silent peer");
        drop(peer);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{backend}: a silent peer must fail the transfer"
        );
        assert!(
            stderr.contains("made no progress") && stderr.contains("after 24 bytes"),
            "{backend}: {stderr}"
        );
    }
}

#[test]
fn a_peer_that_closes_mid_transfer_is_reported() {
    for backend in backends() {
        let dir = scratch(&format!("closing-{backend}"));
        // More than loopback socket buffers can hold, so the sender is mid-transfer when
        // the peer goes.
        let input = input(&dir, 64 << 20);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let closer = thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut some = [0u8; 1000];
            sock.read_exact(&mut some).unwrap();
            // Unread data makes the close a reset: the sender must report it, not hang.
        });
        let out = finish(
            spawn(Command::new(fastcat()).args([
                "send",
                &input.display().to_string(),
                &format!("127.0.0.1:{port}"),
                "--backend",
                backend,
            ])),
            "fastcat send to a closing peer",
        );
        closer.join().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{backend}: {stderr}");
        assert!(
            stderr.contains("the peer reset the connection")
                || stderr.contains("the peer closed the connection"),
            "{backend}: {stderr}"
        );
        assert_eq!(
            stderr
                .lines()
                .filter(|l| !l.starts_with("fastcat: backend"))
                .count(),
            1,
            "one line: {stderr}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_bad_backend_name_is_one_clear_line() {
    let out = finish(
        spawn(Command::new(fastcat()).args(["loopback", "--backend", "uring"])),
        "bad backend",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("expected one of auto, io_uring, epoll, std"),
        "{stderr}"
    );
}
