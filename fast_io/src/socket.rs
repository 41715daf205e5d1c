//! Checks a borrowed descriptor and duplicates it for a writer or reader (contracts C9, C12).
//!
//! Every backend starts here, so "not a connected stream socket" and "closed descriptor" are
//! refused the same way by all of them, before any backend-specific setup.
//!
//! "Connected" includes a connection the peer has already reset while bytes it sent are still
//! queued: TCP then reports the socket as not connected (`getpeername` fails with `ENOTCONN`),
//! yet every one of those bytes was acknowledged to the peer and must be delivered (C8). Such a
//! socket is told from one that never connected by a `recv` with `MSG_PEEK | MSG_DONTWAIT`: it
//! has bytes to read, which an unconnected socket never has. Peeking takes nothing from the
//! queue. A reset socket with nothing left to read is refused with `ConnectionReset`, which is
//! what its first read would have said.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use socket2::{Domain, SockRef, Socket, Type};

use crate::Error;

/// Checks that `fd` is a connected TCP or Unix stream socket and returns a duplicate owned by the
/// caller (closed exactly once, when dropped). The socket stays the lender's: nothing on it is
/// changed here.
pub fn adopt(fd: BorrowedFd<'_>) -> Result<Socket, Error> {
    check(fd)?;
    let owned: OwnedFd = fd
        .try_clone_to_owned()
        .map_err(|e| Error::InvalidSocket(format!("cannot duplicate: {e}")))?;
    Ok(Socket::from(owned))
}

/// [`adopt`] for a socket handed over for good: the same checks, and the descriptor itself is
/// kept (no `dup`); it is closed when the returned socket drops, also when a check refuses it.
pub fn adopt_owned(fd: OwnedFd) -> Result<Socket, Error> {
    check(fd.as_fd())?;
    Ok(Socket::from(fd))
}

/// Whether `fd` is a connected TCP or Unix stream socket (C9).
fn check(fd: BorrowedFd<'_>) -> Result<(), Error> {
    let describe = |what: &str, err: std::io::Error| Error::InvalidSocket(format!("{what}: {err}"));
    let sock = SockRef::from(&fd);
    let kind = sock.r#type().map_err(|e| describe("not a socket", e))?;
    if kind != Type::STREAM {
        return Err(Error::InvalidSocket(
            "not a stream socket (SOCK_STREAM is required)".into(),
        ));
    }
    let domain = sock
        .domain()
        .map_err(|e| describe("cannot read the socket domain", e))?;
    if ![Domain::IPV4, Domain::IPV6, Domain::UNIX].contains(&domain) {
        return Err(Error::InvalidSocket(format!(
            "unsupported socket domain {domain:?}"
        )));
    }
    if sock
        .is_listener()
        .map_err(|e| describe("cannot read SO_ACCEPTCONN", e))?
    {
        return Err(Error::InvalidSocket(
            "a listening socket cannot carry data".into(),
        ));
    }
    if let Err(err) = sock.peer_addr()
        && !reset_with_bytes_queued(&sock, &err)?
    {
        return Err(describe("not connected", err));
    }
    Ok(())
}

/// Whether a socket that `getpeername` calls unconnected (`not_connected`) is a connection the
/// peer reset with bytes still queued for us (see the module docs). `Err(PeerReset)` when it was
/// reset and nothing is left: the error its first read would return.
fn reset_with_bytes_queued(
    sock: &SockRef<'_>,
    not_connected: &std::io::Error,
) -> Result<bool, Error> {
    if not_connected.raw_os_error() != Some(libc::ENOTCONN) {
        return Ok(false);
    }
    let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match sock.recv_with_flags(&mut probe, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
        Ok(n) => Ok(n > 0),
        // The peek consumed the pending reset (`sock_error` clears it): report it here, since
        // no later call on this socket would see it again.
        Err(err) if err.raw_os_error() == Some(libc::ECONNRESET) => Err(Error::PeerReset),
        Err(_) => Ok(false),
    }
}
