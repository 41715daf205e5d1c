//! Checks a borrowed descriptor and duplicates it for a writer or reader (contracts C9, C12).
//!
//! Every backend starts here, so "not a connected stream socket" and "closed descriptor" are
//! refused the same way by all of them, before any backend-specific setup.

use std::os::fd::{BorrowedFd, OwnedFd};

use socket2::{Domain, SockRef, Socket, Type};

use crate::Error;

/// Checks that `fd` is a connected TCP or Unix stream socket and returns a duplicate owned by the
/// caller (closed exactly once, when dropped).
pub fn adopt(fd: BorrowedFd<'_>) -> Result<Socket, Error> {
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
    sock.peer_addr().map_err(|e| describe("not connected", e))?;
    let owned: OwnedFd = fd
        .try_clone_to_owned()
        .map_err(|e| describe("cannot duplicate", e))?;
    Ok(Socket::from(owned))
}
