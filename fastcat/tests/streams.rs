//! `send --streams N` and `recv --streams N` end to end, on every backend with groups: a file of
//! odd size over 4 connections comes back byte for byte, and the receiver refuses what does not
//! make up exactly one whole file (a range twice, a range cut short, another stream count, a
//! plain sender). The fake senders write the header as `frame.rs` documents it, so the wire
//! format is checked as documented, not only fastcat against itself.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use support::{Announced, backends, fastcat, finish, input, scratch, sha256, spawn};

/// The backends that have groups (std has none, and says so).
fn group_backends() -> Vec<&'static str> {
    backends().into_iter().filter(|&b| b != "std").collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `recv 0 -o OUT --streams N` on `backend`, with its port.
fn receiver(backend: &str, out: &std::path::Path, streams: u32) -> Announced {
    Announced::start(Command::new(fastcat()).args([
        "recv",
        "0",
        "-o",
        &out.display().to_string(),
        "--streams",
        &streams.to_string(),
        "--timeout",
        "10",
        "--backend",
        backend,
    ]))
}

#[test]
fn four_streams_carry_a_file_of_odd_size_byte_for_byte() {
    let dir = scratch("streams4");
    let size = (3 << 20) + 123;
    let file = input(&dir, size);
    let out = dir.join("copy.bin");
    for backend in group_backends() {
        let _ = std::fs::remove_file(&out);
        let recv = receiver(backend, &out, 4);
        let send = finish(
            spawn(Command::new(fastcat()).args([
                "send",
                &file.display().to_string(),
                &format!("127.0.0.1:{}", recv.port),
                "--streams",
                "4",
                "--json",
                "--backend",
                backend,
            ])),
            "fastcat send --streams 4",
        );
        let (got, stderr) = recv.finish("fastcat recv --streams 4");
        assert!(send.status.success(), "{backend}: {}", text(&send.stderr));
        assert!(got.status.success(), "{backend}: {stderr}");
        assert_eq!(
            std::fs::metadata(&out).unwrap().len(),
            size as u64,
            "{backend}"
        );
        assert_eq!(sha256(&file), sha256(&out), "{backend}: the copy differs");
        let json: serde_json::Value = serde_json::from_slice(&send.stdout).unwrap();
        assert_eq!(json["streams"].as_u64(), Some(4), "{json}");
        assert_eq!(json["bytes"].as_u64(), Some(size as u64), "{json}");
        // The ranges went by the group's file rounds, by sendfile(2), not through fastcat.
        assert_eq!(json["zero_copy"].as_bool(), Some(true), "{backend}: {json}");
        // The receiver spliced every range into the file.
        assert!(stderr.contains("zero-copy"), "{backend}: {stderr}");
        assert!(
            stderr.contains(&format!("received {size} bytes")) && stderr.contains("over 4 streams"),
            "{backend}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A header as `frame.rs` documents it: magic, id, index, count, total, offset, length.
fn header(id: u64, index: u32, count: u32, total: u64, offset: u64, length: u64) -> Vec<u8> {
    let mut out = b"FASTCAT1".to_vec();
    out.extend(id.to_be_bytes());
    out.extend(index.to_be_bytes());
    out.extend(count.to_be_bytes());
    out.extend(total.to_be_bytes());
    out.extend(offset.to_be_bytes());
    out.extend(length.to_be_bytes());
    out
}

/// Runs a `recv --streams N` against connections that each send `bytes` and close; returns its
/// end.
fn fake_sender(backend: &str, streams: u32, connections: &[Vec<u8>]) -> (Output, String) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let dir = scratch(&format!("fake-{backend}-{run}"));
    let recv = receiver(backend, &dir.join("copy.bin"), streams);
    let mut open = Vec::new();
    for bytes in connections {
        let mut conn = TcpStream::connect(("127.0.0.1", recv.port)).unwrap();
        // The receiver may already have refused the transfer and gone: that is its answer.
        let _ = conn.write_all(bytes);
        let _ = conn.shutdown(std::net::Shutdown::Write);
        open.push(conn);
    }
    let done = recv.finish("fastcat recv from a fake sender");
    drop(open);
    let _ = std::fs::remove_dir_all(&dir);
    done
}

#[test]
fn the_receiver_takes_the_documented_wire_format() {
    // Two ranges of a 10-byte file: 0..5 and 5..10, sent in reverse order.
    for backend in group_backends() {
        let second = [header(9, 1, 2, 10, 5, 5), b"56789".to_vec()].concat();
        let first = [header(9, 0, 2, 10, 0, 5), b"01234".to_vec()].concat();
        let (out, stderr) = fake_sender(backend, 2, &[second, first]);
        assert!(out.status.success(), "{backend}: {stderr}");
        assert!(stderr.contains("received 10 bytes"), "{backend}: {stderr}");
    }
}

#[test]
fn the_receiver_refuses_what_is_not_one_whole_file() {
    let cases: [(&str, u32, Vec<Vec<u8>>, &str); 5] = [
        (
            "a range twice",
            2,
            vec![
                [header(9, 0, 2, 10, 0, 5), b"01234".to_vec()].concat(),
                [header(9, 0, 2, 10, 0, 5), b"01234".to_vec()].concat(),
            ],
            "range 0 arrived twice",
        ),
        (
            "a range cut short",
            2,
            vec![
                [header(9, 0, 2, 10, 0, 5), b"01234".to_vec()].concat(),
                [header(9, 1, 2, 10, 5, 5), b"567".to_vec()].concat(),
            ],
            "range 1 ended after 3 of its 5 bytes",
        ),
        (
            "a range too long",
            2,
            vec![
                [header(9, 0, 2, 10, 0, 5), b"0123456".to_vec()].concat(),
                [header(9, 1, 2, 10, 5, 5), b"56789".to_vec()].concat(),
            ],
            "range 0 brought more than its 5 bytes",
        ),
        (
            "another stream count",
            2,
            vec![[header(9, 0, 3, 10, 0, 3), b"012".to_vec()].concat()],
            "the same --streams",
        ),
        (
            "a plain sender",
            2,
            vec![vec![b'x'; 100]],
            "did not open with a --streams header",
        ),
    ];
    for backend in group_backends() {
        for (what, streams, connections, says) in &cases {
            let (out, stderr) = fake_sender(backend, *streams, connections);
            assert_eq!(out.status.code(), Some(1), "{backend}, {what}: {stderr}");
            assert!(stderr.contains(says), "{backend}, {what}: {stderr}");
            assert!(!stderr.contains("received"), "{backend}, {what}: {stderr}");
        }
    }
}

#[test]
fn std_refuses_streams_before_listening() {
    let dir = scratch("streams-std");
    let out = finish(
        spawn(Command::new(fastcat()).args([
            "recv",
            "0",
            "-o",
            &dir.join("copy.bin").display().to_string(),
            "--streams",
            "2",
            "--backend",
            "std",
        ])),
        "fastcat recv --streams 2 on std",
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--streams 2 drives its connections through one socket group"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
