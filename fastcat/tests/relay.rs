//! `fastcat relay` end to end, on every backend with groups: `nc` and `socat` peers and test
//! threads at both ends, data compared by SHA-256 both ways; one connection and 100 at once,
//! copied, spliced and the default (`--splice auto`); a
//! peer that half-closes, one that resets, one that stops reading, one that goes silent; the
//! connection limit; and the std backend's clear refusal.

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::{
    GUARD, Guarded, await_listening, backends, fastcat, finish, free_port, have, input, scratch,
    sha256, sha256_of, spawn, xorshift_bytes,
};

/// The backends whose relay can run: those with groups (std has none, and says so).
fn group_backends() -> Vec<&'static str> {
    backends()
        .into_iter()
        .filter(|&backend| backend != "std")
        .collect()
}

/// Starts `fastcat relay PORT 127.0.0.1:TARGET --backend BACKEND` with `extra` arguments and
/// waits until it listens; returns it and its port.
fn relay(backend: &str, target: u16, extra: &[&str]) -> (Guarded, u16) {
    let port = free_port();
    let child = Guarded::spawn(
        Command::new(fastcat())
            .args([
                "relay",
                &port.to_string(),
                &format!("127.0.0.1:{target}"),
                "--backend",
                backend,
            ])
            .args(extra),
    );
    await_listening(port, "fastcat relay");
    (child, port)
}

/// The relay's stderr once it exited successfully (it was started with `--count`).
fn relay_output(child: Guarded, what: &str) -> String {
    let out = child.finish(what);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {stderr}");
    stderr
}

/// `len` pseudo-random bytes, different for every `seed`.
fn data(seed: u64, len: usize) -> Vec<u8> {
    xorshift_bytes(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, len)
}

/// Connects to the relay with a read timeout as a deadlock guard.
fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the relay");
    stream.set_read_timeout(Some(GUARD)).unwrap();
    stream.set_write_timeout(Some(GUARD)).unwrap();
    stream
}

/// Accepts one connection on `listener`, with the same guards.
fn accept(listener: &TcpListener) -> TcpStream {
    let (stream, _) = listener.accept().expect("accept the relay's connection");
    stream.set_read_timeout(Some(GUARD)).unwrap();
    stream.set_write_timeout(Some(GUARD)).unwrap();
    stream
}

/// Sends `out` on `stream` (then half-closes) while reading it to end of stream; returns what
/// was read.
fn exchange(stream: TcpStream, out: Vec<u8>) -> Vec<u8> {
    let mut writer = stream.try_clone().unwrap();
    let sending = thread::spawn(move || {
        writer.write_all(&out).expect("send through the relay");
        writer.shutdown(Shutdown::Write).expect("half-close");
    });
    let mut got = Vec::new();
    (&stream)
        .read_to_end(&mut got)
        .expect("read through the relay");
    sending.join().expect("the sending thread");
    got
}

#[test]
fn relay_between_nc_peers_is_byte_exact_both_ways() {
    if !have("nc") {
        return;
    }
    for backend in group_backends() {
        let dir = scratch(&format!("relay-nc-{backend}"));
        let client_in = input(&dir, (3 << 20) + 777);
        let target_in = dir.join("target-in.bin");
        std::fs::write(&target_in, data(9, (2 << 20) + 333)).unwrap();
        let (client_out, target_out) = (dir.join("client-out.bin"), dir.join("target-out.bin"));
        let target_port = free_port();
        // -N: shut down the write half at end of input; nc exits at the network's end too.
        let target = Guarded::spawn(Command::new("sh").args([
            "-c",
            &format!(
                "exec nc -N -l 127.0.0.1 {target_port} < '{}' > '{}'",
                target_in.display(),
                target_out.display()
            ),
        ]));
        await_listening(target_port, "nc -l");
        let (relay, port) = relay(backend, target_port, &["--count", "1"]);
        let client = Guarded::spawn(Command::new("sh").args([
            "-c",
            &format!(
                "exec nc -N 127.0.0.1 {port} < '{}' > '{}'",
                client_in.display(),
                client_out.display()
            ),
        ]));
        let client = client.finish("the client nc");
        assert!(client.status.success(), "{backend}: client nc failed");
        let target = target.finish("the target nc");
        assert!(target.status.success(), "{backend}: target nc failed");
        let stderr = relay_output(relay, "fastcat relay");
        assert_eq!(
            sha256(&client_in),
            sha256(&target_out),
            "{backend}: to target"
        );
        assert_eq!(
            sha256(&target_in),
            sha256(&client_out),
            "{backend}: to client"
        );
        let summary = format!(
            "{} bytes to target, {} bytes to client",
            (3 << 20) + 777,
            (2 << 20) + 333
        );
        assert!(
            stderr.contains(&summary) && stderr.contains("closed"),
            "{backend}: {stderr}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Runs `connections` clients at once through a relay (`--splice splice`) to a `socat` echo
/// server, each sending `each` bytes of its own while reading the echo; every echo must equal
/// what was sent.
fn through_socat_echo(connections: usize, each: usize, splice: &str) {
    if !have("socat") {
        return;
    }
    for backend in group_backends() {
        let target_port = free_port();
        // Killed when dropped, at the end or when the test fails.
        let _echo = Guarded::spawn(Command::new("socat").args([
            &format!("TCP-LISTEN:{target_port},reuseaddr,fork,backlog=256"),
            "EXEC:cat",
        ]));
        await_listening(target_port, "socat");
        let count = connections.to_string();
        let (relay, port) = relay(
            backend,
            target_port,
            &["--count", &count, "--splice", splice],
        );
        let clients: Vec<_> = (0..connections)
            .map(|i| {
                thread::spawn(move || {
                    let sent = data(100 + i as u64, each);
                    let want = sha256_of(&sent);
                    let got = exchange(connect(port), sent);
                    assert_eq!(got.len(), each, "connection {i}: echo length");
                    assert_eq!(sha256_of(&got), want, "connection {i}: echo bytes");
                })
            })
            .collect();
        for client in clients {
            client.join().expect("a client");
        }
        let stderr = relay_output(relay, "fastcat relay");
        let lines = stderr.lines().filter(|l| l.contains("relay #")).count();
        assert_eq!(lines, connections, "{backend}: one summary each: {stderr}");
        let closed = stderr
            .lines()
            .filter(|l| l.contains(&format!("{each} bytes to target, {each} bytes to client")))
            .count();
        assert_eq!(closed, connections, "{backend}: {stderr}");
    }
}

/// The default (`auto`: small traffic copies, bulk splices).
#[test]
fn relay_to_socat_echo_one_connection() {
    through_socat_echo(1, 16 << 20, "auto");
}

#[test]
fn relay_to_socat_echo_one_connection_copied() {
    through_socat_echo(1, 16 << 20, "copy");
}

#[test]
fn relay_to_socat_echo_one_connection_spliced() {
    through_socat_echo(1, 16 << 20, "splice");
}

#[test]
fn relay_to_socat_echo_100_connections_at_once() {
    through_socat_echo(100, 256 << 10, "auto");
}

#[test]
fn relay_to_socat_echo_100_connections_spliced() {
    through_socat_echo(100, 256 << 10, "splice");
}

#[test]
fn relay_forwards_a_half_close_each_way() {
    for backend in group_backends() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target_port = listener.local_addr().unwrap().port();
        let (relay, port) = relay(backend, target_port, &["--count", "2"]);
        let request = data(1, 1 << 20);

        // The client half-closes first: the target sees end of stream, then answers.
        let client = connect(port);
        let mut target = accept(&listener);
        (&client).write_all(&request).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        target
            .read_to_end(&mut got)
            .expect("the target reads to the end");
        assert_eq!(sha256_of(&got), sha256_of(&request), "{backend}: request");
        target.write_all(sha256_of(&got).as_bytes()).unwrap();
        drop(target);
        let mut answer = String::new();
        (&client).read_to_string(&mut answer).unwrap();
        assert_eq!(
            answer,
            sha256_of(&request),
            "{backend}: answer after half-close"
        );

        // The target half-closes first, while the client still sends.
        let client = connect(port);
        let target = accept(&listener);
        (&target).write_all(&request).unwrap();
        target.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        (&client)
            .read_to_end(&mut got)
            .expect("the client reads to the end");
        assert_eq!(sha256_of(&got), sha256_of(&request), "{backend}: reply");
        (&client).write_all(b"still talking").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut tail = Vec::new();
        (&target).read_to_end(&mut tail).unwrap();
        assert_eq!(
            tail, b"still talking",
            "{backend}: bytes after the other half closed"
        );
        relay_output(relay, "fastcat relay");
    }
}

/// Closes `stream` with a reset (`SO_LINGER` 0) instead of a FIN.
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// Reads until an error or end of stream; returns the error kind (`None` at end of stream).
fn read_until_failure(mut stream: &TcpStream) -> Option<io::ErrorKind> {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Some(err.kind()),
        }
    }
}

#[test]
fn relay_forwards_a_reset_as_a_reset() {
    for backend in group_backends() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target_port = listener.local_addr().unwrap().port();
        let (relay, port) = relay(backend, target_port, &["--count", "2"]);

        let client = connect(port);
        let target = accept(&listener);
        (&client).write_all(&[7; 1000]).unwrap();
        (&target).read_exact(&mut [0; 1000]).unwrap();
        reset(client);
        assert_eq!(
            read_until_failure(&target),
            Some(io::ErrorKind::ConnectionReset),
            "{backend}: the target must see the client's reset"
        );

        let client = connect(port);
        let target = accept(&listener);
        (&target).write_all(&[8; 1000]).unwrap();
        (&client).read_exact(&mut [0; 1000]).unwrap();
        reset(target);
        assert_eq!(
            read_until_failure(&client),
            Some(io::ErrorKind::ConnectionReset),
            "{backend}: the client must see the target's reset"
        );
        let stderr = relay_output(relay, "fastcat relay");
        assert!(
            stderr.contains("reset by the client") && stderr.contains("reset by the target"),
            "{backend}: {stderr}"
        );
    }
}

#[test]
fn relay_holds_back_only_the_connection_whose_client_stops_reading() {
    const FLOOD: usize = 256 << 20;
    const FLOW: usize = 8 << 20;
    for backend in group_backends() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target_port = listener.local_addr().unwrap().port();
        let (relay, port) = relay(backend, target_port, &["--count", "2"]);

        // Connection A: its client reads nothing while its target pushes until the relay stops
        // taking bytes (a write makes no progress for 2 s).
        let stuck = connect(port);
        let flood_target = accept(&listener);
        let flooding = thread::spawn(move || {
            flood_target
                .set_write_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let chunk = data(3, 64 << 10);
            let mut pushed = 0;
            while pushed < FLOOD {
                // The stream is `chunk` repeated: each write starts where the last one stopped.
                match (&flood_target).write(&chunk[pushed % chunk.len()..]) {
                    Ok(n) => pushed += n,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == io::ErrorKind::TimedOut => break,
                    Err(err) => panic!("flooding target: {err}"),
                }
            }
            (flood_target, pushed)
        });

        // Connection B flows both ways meanwhile.
        let flowing = connect(port);
        let flow_target = accept(&listener);
        let target_side = thread::spawn(move || exchange(flow_target, data(4, FLOW)));
        let got = exchange(flowing, data(5, FLOW));
        assert_eq!(
            sha256_of(&got),
            sha256_of(&data(4, FLOW)),
            "{backend}: B to client"
        );
        let got = target_side.join().unwrap();
        assert_eq!(
            sha256_of(&got),
            sha256_of(&data(5, FLOW)),
            "{backend}: B to target"
        );

        let (flood_target, pushed) = flooding.join().unwrap();
        assert!(
            pushed < FLOOD / 4,
            "{backend}: the relay took {pushed} bytes for a client that reads nothing: its \
             memory is not bounded"
        );
        // A reads now, and gets every byte pushed, in order.
        flood_target.shutdown(Shutdown::Write).unwrap();
        stuck.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        (&stuck).read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), pushed, "{backend}: A's bytes");
        let chunk = data(3, 64 << 10);
        assert!(
            got.chunks(64 << 10).all(|c| c == &chunk[..c.len()]),
            "{backend}: A's bytes"
        );
        drop(flood_target);
        relay_output(relay, "fastcat relay");
    }
}

#[test]
fn relay_closes_a_connection_idle_past_its_idle_limit() {
    for backend in group_backends() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target_port = listener.local_addr().unwrap().port();
        let (relay, port) = relay(backend, target_port, &["--count", "1", "--idle", "0.5"]);
        let client = connect(port);
        let target = accept(&listener);
        let started = Instant::now();
        assert_eq!(
            read_until_failure(&client),
            None,
            "{backend}: closed, not reset"
        );
        assert!(started.elapsed() < GUARD);
        assert_eq!(
            read_until_failure(&target),
            None,
            "{backend}: target side closed too"
        );
        let stderr = relay_output(relay, "fastcat relay");
        assert!(stderr.contains("timed out"), "{backend}: {stderr}");
    }
}

/// An interactive session may be quiet for long: `--timeout` (connecting to the target) does
/// not close it, and the default `--idle` is minutes away.
#[test]
fn relay_keeps_a_quiet_connection_past_the_timeout() {
    for backend in group_backends() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target_port = listener.local_addr().unwrap().port();
        let (relay, port) = relay(backend, target_port, &["--count", "1", "--timeout", "0.5"]);
        let client = connect(port);
        let target = accept(&listener);
        thread::sleep(Duration::from_millis(1500));
        (&client).write_all(b"still there?").unwrap();
        let mut got = [0u8; 12];
        (&target).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"still there?", "{backend}");
        (&target).write_all(b"yes").unwrap();
        let mut reply = [0u8; 3];
        (&client).read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"yes", "{backend}");
        drop(client);
        drop(target);
        let stderr = relay_output(relay, "fastcat relay");
        assert!(!stderr.contains("timed out"), "{backend}: {stderr}");
    }
}

#[test]
fn relay_serves_no_more_than_max_connections_at_once() {
    for backend in group_backends() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target_port = listener.local_addr().unwrap().port();
        let (relay, port) = relay(
            backend,
            target_port,
            &["--count", "2", "--max-connections", "1"],
        );
        let first = connect(port);
        let first_target = accept(&listener);
        // The second client connects (the kernel's backlog takes it) but is not relayed yet.
        let second = connect(port);
        listener.set_nonblocking(true).unwrap();
        thread::sleep(Duration::from_millis(300));
        assert!(
            matches!(listener.accept(), Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "{backend}: a second connection was relayed past --max-connections 1"
        );
        listener.set_nonblocking(false).unwrap();
        drop(first);
        drop(first_target);
        let second_target = accept(&listener);
        (&second).write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        (&second_target).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        drop(second);
        drop(second_target);
        relay_output(relay, "fastcat relay");
    }
}

#[test]
fn relay_on_the_std_backend_says_it_needs_groups() {
    let out = finish(
        spawn(Command::new(fastcat()).args(["relay", "0", "127.0.0.1:9", "--backend", "std"])),
        "fastcat relay on std",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("thread per connection"), "{stderr}");
}
