//! fastcat's file path: `send FILE` and `recv -o FILE` of one stream move a regular file with
//! the writer's `send_file` and the reader's `recv_to_file` (contract C16), in calls of a few
//! MiB, and say `zero_copy` exactly when the backend's path skipped the user-space copy. Every
//! available backend; the bytes compared by SHA-256; `nc` at the other end shows the stream is
//! still plain TCP.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod support;

use support::{
    Announced, await_listening, backends, fastcat, finish, free_port, have, input, scratch, sha256,
    spawn,
};

/// More than two of fastcat's 8 MiB file calls and a piece, and a multiple of no chunk size in
/// play (8 MiB calls, 256 KiB buffers, 64 KiB pipes and copies, 4 KiB pages): a call that
/// dropped or repeated a piece, or an end of stream taken for a short count, shows.
const SIZE: usize = (21 << 20) + 7;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The one JSON line among `lines`.
fn json_line(lines: &str) -> Value {
    let found: Vec<&str> = lines.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(found.len(), 1, "one JSON line: {lines}");
    serde_json::from_str(found[0]).unwrap_or_else(|e| panic!("{e}: {}", found[0]))
}

/// Runs `fastcat send FILE 127.0.0.1:PORT --json --backend B` to the end.
fn send(file: &Path, port: u16, backend: &str) -> Output {
    let out = finish(
        spawn(Command::new(fastcat()).args([
            "send",
            &file.display().to_string(),
            &format!("127.0.0.1:{port}"),
            "--json",
            "--backend",
            backend,
        ])),
        "fastcat send",
    );
    assert!(out.status.success(), "{backend}: {}", text(&out.stderr));
    out
}

#[test]
fn a_file_goes_to_recv_o_byte_exact_and_says_whether_it_was_copied() {
    let dir = scratch("files");
    let file = input(&dir, SIZE);
    let out = dir.join("copy.bin");
    for backend in backends() {
        // A stale copy longer than the stream: recv must truncate it, not write over its start.
        std::fs::write(&out, vec![0xAA; SIZE + 4096]).unwrap();
        let receiver = Announced::start(Command::new(fastcat()).args([
            "recv",
            "0",
            "-o",
            &out.display().to_string(),
            "--json",
            "--backend",
            backend,
        ]));
        let sent = send(&file, receiver.port, backend);
        let (received, stderr) = receiver.finish("fastcat recv -o");
        assert!(received.status.success(), "{backend}: {stderr}");
        assert_eq!(sha256(&file), sha256(&out), "{backend}: the copy differs");
        let sent = json_line(&text(&sent.stdout));
        let received = json_line(&text(&received.stdout));
        assert_eq!(sent["bytes"].as_u64(), Some(SIZE as u64), "{sent}");
        assert_eq!(received["bytes"].as_u64(), Some(SIZE as u64), "{received}");
        // Every built-in writer sends a file without a copy (std and epoll with sendfile(2),
        // io_uring with SPLICE). std's reader has only C16's copying default; epoll's and
        // io_uring's (without read-ahead, fastcat's setting) splice.
        assert_eq!(sent["zero_copy"], true, "{backend}: {sent}");
        assert_eq!(
            received["zero_copy"],
            backend != "std",
            "{backend}: {received}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_human_summary_says_zero_copy_only_when_it_was() {
    let dir = scratch("files-human");
    let file = input(&dir, 1 << 20);
    let out = dir.join("copy.bin");
    for backend in backends() {
        let receiver = Announced::start(Command::new(fastcat()).args([
            "recv",
            "0",
            "-o",
            &out.display().to_string(),
            "--backend",
            backend,
        ]));
        let port = receiver.port;
        let sent = finish(
            spawn(Command::new(fastcat()).args([
                "send",
                &file.display().to_string(),
                &format!("127.0.0.1:{port}"),
                "--backend",
                backend,
            ])),
            "fastcat send",
        );
        let (received, recv_err) = receiver.finish("fastcat recv -o");
        let send_err = text(&sent.stderr);
        assert!(
            sent.status.success() && received.status.success(),
            "{send_err}{recv_err}"
        );
        assert!(
            send_err.contains(", zero-copy (sendfile/splice)"),
            "{send_err}"
        );
        assert_eq!(
            recv_err.contains("zero-copy"),
            backend != "std",
            "{backend}: {recv_err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stdin_and_stdout_are_copied_and_say_so() {
    let dir = scratch("files-stdio");
    let file = input(&dir, (3 << 20) + 1);
    for backend in backends() {
        let receiver = Announced::start(Command::new(fastcat()).args([
            "recv",
            "0",
            "--json",
            "--backend",
            backend,
        ]));
        let sent = finish(
            spawn(
                Command::new(fastcat())
                    .args([
                        "send",
                        "-",
                        &format!("127.0.0.1:{}", receiver.port),
                        "--json",
                        "--backend",
                        backend,
                    ])
                    .stdin(std::fs::File::open(&file).unwrap()),
            ),
            "fastcat send -",
        );
        assert!(sent.status.success(), "{backend}: {}", text(&sent.stderr));
        let (received, stderr) = receiver.finish("fastcat recv to stdout");
        assert!(received.status.success(), "{backend}: {stderr}");
        assert!(
            received.stdout == std::fs::read(&file).unwrap(),
            "{backend}"
        );
        assert_eq!(json_line(&text(&sent.stdout))["zero_copy"], false);
        assert_eq!(json_line(&stderr)["zero_copy"], false);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_sent_without_a_copy_is_plain_tcp_to_nc() {
    if !have("nc") {
        return;
    }
    let dir = scratch("files-nc");
    let file = input(&dir, SIZE);
    let out = dir.join("copy.bin");
    for backend in backends() {
        let port = free_port();
        // -d: never read stdin, so nc exits at the sender's end of stream.
        let listener = spawn(Command::new("sh").args([
            "-c",
            &format!("exec nc -d -l 127.0.0.1 {port} > '{}'", out.display()),
        ]));
        await_listening(port, "nc -l");
        let sent = send(&file, port, backend);
        let nc = finish(listener, "nc -l");
        assert!(nc.status.success(), "{backend}: {}", text(&nc.stderr));
        assert_eq!(sha256(&file), sha256(&out), "{backend}: the copy differs");
        let sent = json_line(&text(&sent.stdout));
        assert_eq!(sent["bytes"].as_u64(), Some(SIZE as u64), "{sent}");
        assert_eq!(sent["zero_copy"], true, "{backend}: {sent}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn recv_o_reports_a_silent_peer_with_the_bytes_it_wrote() {
    // recv_to_file's deadline bounds a whole call, and a call that timed out after taking
    // some bytes has written them: they count, and only a call that took nothing ends it.
    let dir = scratch("files-silent");
    let out = dir.join("copy.bin");
    for backend in backends() {
        let port = free_port();
        let child = spawn(Command::new(fastcat()).args([
            "recv",
            &port.to_string(),
            "-o",
            &out.display().to_string(),
            "--timeout",
            "0.5",
            "--backend",
            backend,
        ]));
        await_listening(port, "silent peer");
        let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        peer.write_all(b"some bytes, then silence").unwrap();
        let got = finish(child, "fastcat recv -o from a silent peer");
        drop(peer);
        let stderr = text(&got.stderr);
        assert!(!got.status.success(), "{backend}: {stderr}");
        assert!(
            stderr.contains("made no progress") && stderr.contains("after 24 bytes"),
            "{backend}: {stderr}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"some bytes, then silence");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
