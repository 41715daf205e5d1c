//! fastcat as a tool people run: `--help` on stdout with exit 0, usage errors with exit 2 and
//! the usage on stderr, shell completions, the `--json` summary line (on stdout, or on stderr
//! when stdout carries the data), `recv` on port 0 printing its port and reached over IPv6 and
//! IPv4, an unwritable output refused before listening, and the summary of a zero-byte send.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{Announced, backends, fastcat, finish, input, scratch, sha256, spawn};

/// Runs fastcat with `args` to the end (within the guard).
fn run(args: &[&str]) -> Output {
    finish(spawn(Command::new(fastcat()).args(args)), "fastcat")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The one JSON object among `lines` (the only line that starts with `{`).
fn json_line(lines: &str) -> Value {
    let found: Vec<&str> = lines.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(found.len(), 1, "one JSON line: {lines}");
    serde_json::from_str(found[0]).unwrap_or_else(|e| panic!("{e}: {}", found[0]))
}

#[test]
fn help_is_printed_on_stdout_with_exit_0() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["recv", "--help"],
        &["help", "send"],
    ] {
        let out = run(args);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(stdout.contains("Usage: fastcat"), "{args:?}: {stdout}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
    let top = text(&run(&["--help"]).stdout);
    for word in ["send", "recv", "loopback", "relay", "completions", "--json"] {
        assert!(top.contains(word), "--help lacks {word}: {top}");
    }
    let send = text(&run(&["send", "--help"]).stdout);
    assert!(send.contains("--streams"), "{send}");
    assert!(send.contains("fastcat recv --streams"), "{send}");
}

#[test]
fn usage_errors_exit_2_with_the_usage_on_stderr() {
    for args in [
        &[][..],
        &["send", "only-a-file"],
        &["recv", "not-a-port"],
        &["loopback", "--size", "1TiB"],
        &["loopback", "--no-such-flag"],
        &["relay", "9000", "host:1", "--count", "0"],
        &["send", "file", "host:1", "--streams", "0"],
        // --streams needs a file at both ends: these are refused before anything runs.
        &["recv", "0", "--streams", "2"],
        &["recv", "0", "-o", "-", "--streams", "2"],
        &["send", "-", "host:1", "--streams", "2"],
        &["completions", "tcsh"],
    ] {
        let out = run(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage: fastcat"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        assert!(
            !stderr.contains("fastcat: backend"),
            "{args:?} ran: {stderr}"
        );
    }
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, mark) in [
        ("bash", "complete -F _fastcat"),
        ("zsh", "#compdef fastcat"),
        ("fish", "complete -c fastcat"),
    ] {
        let out = run(&["completions", shell]);
        let script = text(&out.stdout);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        assert!(script.contains(mark), "{shell}: {script}");
        assert!(script.contains("--streams"), "{shell}: {script}");
    }
}

/// Whether `send` of a regular file on `backend` sends without a user-space copy: every
/// built-in writer does (std and epoll with `sendfile(2)`, io_uring with `SPLICE`).
fn sends_zero_copy(_backend: &str) -> bool {
    true
}

/// Whether `recv -o FILE` on `backend` receives without a user-space copy: std's reader reads
/// and writes (C16's copying default); epoll and io_uring (without read-ahead) splice.
fn receives_zero_copy(backend: &str) -> bool {
    backend != "std"
}

/// The fields every summary has, checked against what the test knows.
fn check_summary(
    json: &Value,
    (command, bytes): (&str, u64),
    backend: &str,
    streams: u64,
    zero_copy: bool,
) {
    assert_eq!(json["command"], command, "{json}");
    assert_eq!(json["bytes"].as_u64(), Some(bytes), "{json}");
    assert_eq!(json["backend"], backend, "{json}");
    assert_eq!(json["streams"].as_u64(), Some(streams), "{json}");
    assert_eq!(json["zero_copy"], zero_copy, "{json}");
    assert!(json["seconds"].as_f64().is_some_and(|s| s >= 0.0), "{json}");
    assert!(
        json["mib_per_s"].as_f64().is_some_and(|r| r >= 0.0),
        "{json}"
    );
    for counter in [
        "kernel_entries",
        "operations",
        "readiness_waits",
        "short_transfers",
    ] {
        assert!(json[counter].as_u64().is_some(), "{counter}: {json}");
    }
    if bytes > 0 {
        assert!(json["kernel_entries"].as_u64() > Some(0), "{json}");
    }
}

#[test]
fn json_summary_is_one_line_with_the_real_byte_count() {
    let size = (5u64 << 20) + 7;
    for backend in backends() {
        let out = run(&[
            "loopback",
            "--size",
            &size.to_string(),
            "--json",
            "--backend",
            backend,
        ]);
        assert!(out.status.success(), "{backend}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert_eq!(stdout.lines().count(), 1, "{backend}: {stdout}");
        check_summary(&json_line(&stdout), ("loopback", size), backend, 1, false);
        assert!(
            !text(&out.stderr).contains("looped back"),
            "{backend}: JSON replaces it"
        );
    }
}

/// `recv 0 RECV_EXTRA` and `send FILE HOST:PORT SEND_EXTRA` on `backend`; returns the
/// receiver's output and stderr, and the sender's output.
fn send_and_recv(
    backend: &str,
    file: &Path,
    host: &str,
    recv_extra: &[&str],
    send_extra: &[&str],
) -> ((Output, String), Output) {
    let receiver = Announced::start(
        Command::new(fastcat())
            .args(["recv", "0", "--backend", backend])
            .args(recv_extra),
    );
    let peer = format!("{host}:{}", receiver.port);
    let file = file.display().to_string();
    let mut args = vec!["send", &file, &peer, "--backend", backend];
    args.extend(send_extra);
    let sender = run(&args);
    // The sender first: if it failed, the receiver would wait for it until the guard (it is
    // killed when dropped).
    assert!(
        sender.status.success(),
        "{backend} {peer}: {}",
        text(&sender.stderr)
    );
    let received = receiver.finish("fastcat recv");
    assert!(
        received.0.status.success(),
        "{backend} {peer}: {}",
        received.1
    );
    (received, sender)
}

#[test]
fn json_goes_to_stderr_when_stdout_carries_the_data() {
    let dir = scratch("json");
    let size = (1 << 20) + 321;
    let file = input(&dir, size);
    let out = dir.join("copy.bin");
    for backend in backends() {
        // With -o the receiver's JSON is on stdout, like the sender's.
        let ((recv, _), send) = send_and_recv(
            backend,
            &file,
            "127.0.0.1",
            &["--json", "-o", &out.display().to_string()],
            &["--json"],
        );
        check_summary(
            &json_line(&text(&send.stdout)),
            ("send", size as u64),
            backend,
            1,
            sends_zero_copy(backend),
        );
        check_summary(
            &json_line(&text(&recv.stdout)),
            ("recv", size as u64),
            backend,
            1,
            receives_zero_copy(backend),
        );
        assert_eq!(sha256(&file), sha256(&out), "{backend}");
        // Without -o stdout is the data, byte for byte, and the JSON line is on stderr.
        let ((recv, stderr), _) = send_and_recv(backend, &file, "127.0.0.1", &["--json"], &[]);
        assert!(
            recv.stdout == std::fs::read(&file).unwrap(),
            "{backend}: stdout is not the file"
        );
        // stdout is no file: the bytes are copied through a buffer.
        check_summary(
            &json_line(&stderr),
            ("recv", size as u64),
            backend,
            1,
            false,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn recv_on_port_0_prints_its_port_and_takes_ipv6_and_ipv4() {
    let dir = scratch("port0");
    let file = input(&dir, (1 << 20) + 3);
    let out = dir.join("copy.bin");
    for backend in backends() {
        for host in ["[::1]", "127.0.0.1"] {
            let _ = std::fs::remove_file(&out);
            let ((_, stderr), _) = send_and_recv(
                backend,
                &file,
                host,
                &["-o", &out.display().to_string()],
                &[],
            );
            assert!(stderr.contains("fastcat: listening on [::]:"), "{stderr}");
            assert_eq!(sha256(&file), sha256(&out), "{backend} over {host}");
            // An IPv4 client of the dual-stack listener is named as IPv4.
            let from = if host == "127.0.0.1" {
                "from 127.0.0.1:"
            } else {
                "from [::1]:"
            };
            assert!(stderr.contains(from), "{backend} over {host}: {stderr}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_output_fails_before_listening() {
    let dir = scratch("unwritable");
    let a_file = input(&dir, 10);
    let under_a_file = a_file.join("x").display().to_string();
    for path in ["/proc/nonexistent/x", &under_a_file] {
        for streams in ["1", "3"] {
            // Without the early check this would listen and wait for a sender forever (the
            // guard fails it); with it, it exits at once.
            let out = run(&["recv", "0", "-o", path, "--streams", streams]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{path}: {stderr}");
            assert!(
                stderr.contains(&format!("cannot create {path}")),
                "{stderr}"
            );
            assert!(!stderr.contains("listening"), "{path}: {stderr}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_zero_byte_send_has_a_sensible_summary() {
    let dir = scratch("zero");
    let empty = dir.join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    let out = dir.join("copy.bin");
    for backend in backends() {
        let ((recv, recv_err), send) = send_and_recv(
            backend,
            &empty,
            "127.0.0.1",
            &["-o", &out.display().to_string()],
            &[],
        );
        assert!(recv.stdout.is_empty());
        assert_eq!(std::fs::metadata(&out).unwrap().len(), 0);
        let send_err = text(&send.stderr);
        assert!(
            recv_err.contains("fastcat: received 0 bytes in "),
            "{recv_err}"
        );
        assert!(send_err.contains("fastcat: sent 0 bytes in "), "{send_err}");
        // No rate of nothing, and no cost per MiB of no MiB.
        for said in [&recv_err, &send_err] {
            for nonsense in ["per MiB", "/s)", "GB/s", "inf", "NaN"] {
                assert!(!said.contains(nonsense), "{backend}: {said}");
            }
        }
        let ((_, _), send) = send_and_recv(backend, &empty, "127.0.0.1", &[], &["--json"]);
        check_summary(
            &json_line(&text(&send.stdout)),
            ("send", 0),
            backend,
            1,
            sends_zero_copy(backend),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
