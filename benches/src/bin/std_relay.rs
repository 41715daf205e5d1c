//! `std_relay LISTEN TARGET --count N`: the `relay` scenario's std baseline, a TCP relay as a
//! plain program writes one with the standard library alone.
//!
//! It accepts `N` connections on LISTEN (`ADDR:PORT`), connects each to TARGET, and copies
//! both ways with a thread per direction: blocking `read` into a 64 KiB buffer, `write_all` to
//! the other end, and on end of stream a half-close (`shutdown(Write)`) of the other end, so
//! each side sees the other's end of stream as fastcat's relay forwards it. It exits once every
//! connection ended in both directions, which makes it a whole process measured as the other
//! relays are (by `RUSAGE_CHILDREN` once waited for). A failed direction is reported on stderr
//! and makes the exit status non-zero.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;

/// The copy buffer of each direction.
const BUFFER: usize = 64 << 10;

/// Copies `from` to `to` until end of stream, then half-closes `to`.
fn copy(mut from: TcpStream, mut to: TcpStream) -> std::io::Result<u64> {
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
    to.shutdown(Shutdown::Write)?;
    Ok(total)
}

/// Listens on `listen` with a backlog of 4096, as every relay of the bench does: std's
/// `TcpListener::bind` allows 128, and the 1000-connection case connects all at once (the
/// kernel would drop SYNs past the backlog, and TCP retries them only a second later).
fn bind(listen: &str) -> std::io::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let addr = listen
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{listen} names no address")))?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

fn run(listen: &str, target: &str, count: usize) -> Result<(), String> {
    let listener = bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let mut directions = Vec::with_capacity(2 * count);
    for id in 1..=count {
        let (client, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        let upstream =
            TcpStream::connect(target).map_err(|e| format!("#{id}: connect to {target}: {e}"))?;
        for sock in [&client, &upstream] {
            sock.set_nodelay(true)
                .map_err(|e| format!("#{id}: nodelay: {e}"))?;
        }
        let pairs = [
            ("to target", &client, &upstream),
            ("to client", &upstream, &client),
        ];
        for (what, from, to) in pairs {
            let from = from.try_clone().map_err(|e| e.to_string())?;
            let to = to.try_clone().map_err(|e| e.to_string())?;
            let handle = thread::Builder::new()
                .name(format!("relay #{id} {what}"))
                .spawn(move || copy(from, to))
                .map_err(|e| format!("#{id}: cannot start a thread: {e}"))?;
            directions.push((id, what, handle));
        }
    }
    let mut failed = Vec::new();
    for (id, what, handle) in directions {
        match handle.join() {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => failed.push(format!("#{id} {what}: {err}")),
            Err(_) => failed.push(format!("#{id} {what}: the thread panicked")),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [listen, target, flag, count] if flag == "--count" => count
            .parse()
            .ok()
            .filter(|&n: &usize| n > 0)
            .map(|n| (listen, target, n)),
        _ => None,
    };
    let Some((listen, target, count)) = parsed else {
        eprintln!("usage: std_relay LISTEN_ADDR:PORT TARGET_ADDR:PORT --count N");
        return ExitCode::from(2);
    };
    match run(listen, target, count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("std_relay: {message}");
            ExitCode::FAILURE
        }
    }
}
