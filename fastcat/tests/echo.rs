//! `fastcat echo` end to end, on every backend with groups: `nc` and `socat` by hand, 200
//! clients at once with requests and replies checked byte for byte, a client that sends
//! megabytes before reading a byte (the server must stop reading it, not buffer without bound,
//! and still answer everything), a client that resets, and the std backend's clear refusal.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::thread;

use support::{
    GUARD, Guarded, await_listening, backends, fastcat, free_port, have, xorshift_bytes,
};

/// The backends with groups (std has none).
fn group_backends() -> Vec<&'static str> {
    backends()
        .into_iter()
        .filter(|&backend| backend != "std")
        .collect()
}

/// Starts `fastcat echo 127.0.0.1:PORT --backend BACKEND --count COUNT` and waits until it
/// listens.
fn echo(backend: &str, count: usize) -> (Guarded, u16) {
    let port = free_port();
    let child = Guarded::spawn(Command::new(fastcat()).args([
        "echo",
        &format!("127.0.0.1:{port}"),
        "--backend",
        backend,
        "--count",
        &count.to_string(),
    ]));
    await_listening(port, "fastcat echo");
    (child, port)
}

/// The server's stderr once it exited, which it must have done successfully.
fn finished(child: Guarded, what: &str) -> String {
    let out = child.finish(what);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {stderr}");
    stderr
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to fastcat echo");
    stream.set_read_timeout(Some(GUARD)).unwrap();
    stream.set_write_timeout(Some(GUARD)).unwrap();
    stream
}

#[test]
fn echo_answers_nc_and_socat() {
    for backend in group_backends() {
        let (server, port) = echo(backend, 2);
        for (tool, args) in [
            (
                "nc",
                vec!["-N".to_owned(), "127.0.0.1".into(), port.to_string()],
            ),
            (
                "socat",
                vec!["-".to_owned(), format!("TCP:127.0.0.1:{port}")],
            ),
        ] {
            if !have(tool) {
                // Stand in for the tool, so that the server's count is still reached.
                let mut sock = connect(port);
                sock.shutdown(Shutdown::Write).unwrap();
                let _ = sock.read_to_end(&mut Vec::new());
                continue;
            }
            let out = Command::new("sh")
                .args([
                    "-c",
                    &format!(
                        "printf 'hello, {tool}\\n' | timeout 30 {tool} {}",
                        args.join(" ")
                    ),
                ])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("hello, {tool}\n"),
                "{backend}: {tool}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stderr = finished(server, "fastcat echo");
        assert!(
            stderr.contains("echo totals: 2 connections (0 failed)"),
            "{backend}: {stderr}"
        );
    }
}

#[test]
fn echo_answers_200_clients_at_once_request_by_request() {
    const CLIENTS: usize = 200;
    const REQUESTS: usize = 50;
    for backend in group_backends() {
        let (server, port) = echo(backend, CLIENTS);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                thread::spawn(move || {
                    let mut sock = connect(port);
                    sock.set_nodelay(true).unwrap();
                    let stream = xorshift_bytes(c as u64 + 1, REQUESTS * 300);
                    let mut at = 0;
                    for r in 0..REQUESTS {
                        // Requests of 1 to 600 bytes.
                        let len = (r * 37 + c) % 600 + 1;
                        let len = len.min(stream.len() - at);
                        let request = &stream[at..at + len];
                        sock.write_all(request).unwrap();
                        let mut reply = vec![0; len];
                        sock.read_exact(&mut reply).unwrap();
                        assert_eq!(reply, request, "client {c}, request {r}");
                        at += len;
                    }
                    sock.shutdown(Shutdown::Write).unwrap();
                    let mut rest = Vec::new();
                    sock.read_to_end(&mut rest).unwrap();
                    assert!(rest.is_empty(), "client {c}: {} bytes too many", rest.len());
                })
            })
            .collect();
        for client in clients {
            client.join().expect("a client");
        }
        let stderr = finished(server, "fastcat echo");
        assert!(
            stderr.contains(&format!("echo totals: {CLIENTS} connections (0 failed)")),
            "{backend}: {stderr}"
        );
    }
}

/// The peak resident set of process `pid`, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("a VmHWM line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_client_that_reads_nothing_until_it_sent_everything_gets_everything_back() {
    const TOTAL: usize = 64 << 20;
    for backend in group_backends() {
        let (server, port) = echo(backend, 2);
        let sock = connect(port);
        let data = xorshift_bytes(77, TOTAL);
        let mut writer = sock.try_clone().unwrap();
        let sent = data.clone();
        // The client sends before it reads: the server's buffers and both sockets' fill long
        // before the end, so the server must stop reading this client until it reads.
        let sending = thread::spawn(move || {
            writer.write_all(&sent).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        // Meanwhile another client is served at once.
        let mut other = connect(port);
        other.write_all(b"still served").unwrap();
        let mut reply = [0; 12];
        other.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"still served", "{backend}");
        drop(other);
        thread::sleep(std::time::Duration::from_millis(300));
        let mut got = vec![0; TOTAL];
        let mut at = 0;
        let mut peak = 0;
        while at < TOTAL {
            let n = (&sock).read(&mut got[at..]).unwrap();
            assert!(
                n > 0,
                "{backend}: end of stream after {at} bytes of {TOTAL}"
            );
            at += n;
            if peak == 0 && at >= TOTAL / 2 {
                // Half the replies are still to come, so the server is still running.
                peak = peak_rss_kib(server.id());
            }
        }
        sending.join().expect("the sender");
        assert!(
            got == data,
            "{backend}: the replies differ from the requests"
        );
        assert_eq!(
            (&sock).read(&mut [0; 8]).unwrap(),
            0,
            "{backend}: then a FIN"
        );
        // Bounded by a write buffer and a backlog per connection (64 KiB each), not by what
        // the client sent (64 MiB).
        assert!(
            peak < 24 << 10,
            "{backend}: the server peaked at {peak} KiB"
        );
        finished(server, "fastcat echo");
    }
}

#[test]
fn a_client_that_resets_ends_only_its_own_connection() {
    for backend in group_backends() {
        let (server, port) = echo(backend, 2);
        let mut kept = connect(port);
        let reset = connect(port);
        socket2::SockRef::from(&reset)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        (&reset).write_all(b"bye").unwrap();
        drop(reset);
        kept.write_all(b"still here").unwrap();
        let mut reply = [0; 10];
        kept.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"still here", "{backend}");
        kept.shutdown(Shutdown::Write).unwrap();
        assert_eq!(
            kept.read(&mut [0; 8]).unwrap(),
            0,
            "{backend}: a FIN after the replies"
        );
        let stderr = finished(server, "fastcat echo");
        assert!(
            stderr.contains("echo totals: 2 connections"),
            "{backend}: {stderr}"
        );
    }
}

#[test]
fn echo_on_std_is_refused_before_listening() {
    let out = Command::new(fastcat())
        .args(["echo", "127.0.0.1:0", "--backend", "std"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("echo on") && stderr.contains("group"),
        "{stderr}"
    );
}
