//! Connecting and listening: a client tries every address a name resolves to, and `recv`
//! listens dual-stack, so a sender reaches it over IPv6 (`::1`) and IPv4 (`127.0.0.1`) alike.
//! The servers' acceptors (`relay`, `echo`) bound how many connections are open at once
//! ([`Admission`]).

use std::io;
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Connects to `peer` (HOST:PORT), trying each address it resolves to within `timeout`.
pub fn connect(peer: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = peer
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {peer}: {e}"))?;
    let mut last = format!("{peer} resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) => last = format!("cannot connect to {addr}: {err}"),
        }
    }
    Err(last)
}

/// Listens on `port` of every address, IPv6 and IPv4 (`[::]` with `IPV6_V6ONLY` off); on a
/// machine without IPv6, on every IPv4 address. Port 0 picks a free port: ask the listener.
pub fn listen(port: u16) -> Result<TcpListener, String> {
    let failed = |e: io::Error| format!("cannot listen on port {port}: {e}");
    match dual_stack(port) {
        Ok(listener) => Ok(listener),
        // No IPv6 here (disabled, or not built in): IPv4 alone still serves the user.
        Err(err) if err.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            TcpListener::bind(("0.0.0.0", port)).map_err(failed)
        }
        Err(err) => Err(failed(err)),
    }
}

fn dual_stack(port: u16) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// Listens on `addr` (`ADDR:PORT`, the first address it resolves to; `[::]` dual-stack) with
/// room for `backlog` connections not yet accepted. std's `TcpListener::bind` allows 128: a
/// relay that many clients reach at once would have the kernel drop their SYNs, which TCP
/// retries only a second later.
pub fn bind(addr: &str, backlog: usize) -> io::Result<TcpListener> {
    let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr} names no address"),
        )
    })?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    // The kernel caps it at net.core.somaxconn.
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Accepts one connection; with `within`, fails once that long passed without one. The peer's
/// address comes back in its plain form (an IPv4 client of a dual-stack listener is shown as
/// `127.0.0.1`, not `::ffff:127.0.0.1`).
pub fn accept(
    listener: &TcpListener,
    within: Option<Duration>,
) -> Result<(TcpStream, SocketAddr), String> {
    // SO_RCVTIMEO bounds accept(2) too: it fails with EAGAIN once the time passed.
    socket2::SockRef::from(listener)
        .set_read_timeout(within)
        .map_err(|e| format!("cannot set the accept timeout: {e}"))?;
    match listener.accept() {
        Ok((stream, from)) => Ok((
            stream,
            SocketAddr::new(from.ip().to_canonical(), from.port()),
        )),
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!(
                "no connection came within {:.1} s",
                within.unwrap_or_default().as_secs_f64()
            ))
        }
        Err(err) => Err(format!("accept failed: {err}")),
    }
}

/// Connections accepted and not yet ended, at most `max` at once: the acceptor threads of
/// `relay` and `echo` count one up per client they hand over, and the serving thread sends a
/// `()` on `ended` for each connection it closes.
pub struct Admission {
    open: usize,
    max: usize,
    ended: Receiver<()>,
}

impl Admission {
    pub fn new(max: usize, ended: Receiver<()>) -> Admission {
        Admission {
            open: 0,
            max: max.max(1),
            ended,
        }
    }

    /// The next client of `listener`, once fewer than `max` are open (waiting for one to end
    /// first); `None` when the serving thread is gone. A failed `accept` is reported and tried
    /// again 100 ms later.
    pub fn next(&mut self, listener: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
        while self.open >= self.max {
            self.ended.recv().ok()?;
            self.open -= 1;
        }
        while self.ended.try_recv().is_ok() {
            self.open -= 1;
        }
        loop {
            match listener.accept() {
                Ok(accepted) => return Some(accepted),
                Err(err) => {
                    eprintln!("fastcat: accept failed: {err}");
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// A client was handed to the serving thread.
    pub fn admitted(&mut self) {
        self.open += 1;
    }
}
