//! Loopback TCP pairs for the scenarios, optionally with small socket buffers.

use std::io;
use std::net::{SocketAddr, TcpStream};

use socket2::{Domain, Socket, Type};

/// A connected loopback TCP pair `(client, server)`. With `buffer`, both sockets get
/// `SO_SNDBUF`/`SO_RCVBUF` of that size, set before `listen`/`connect`: shrinking a connected
/// loopback socket stalls TCP on zero-window probes for up to seconds (KERNEL-NOTES).
pub fn tcp_pair(buffer: Option<usize>) -> io::Result<(TcpStream, TcpStream)> {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
    let shrink = |sock: &Socket| -> io::Result<()> {
        if let Some(size) = buffer {
            sock.set_send_buffer_size(size)?;
            sock.set_recv_buffer_size(size)?;
        }
        Ok(())
    };
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    shrink(&listener)?;
    listener.bind(&addr.into())?;
    listener.listen(1024)?;
    let local = listener.local_addr()?;
    let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    shrink(&client)?;
    client.set_tcp_nodelay(true)?;
    client.connect(&local)?;
    let (server, _) = listener.accept()?;
    server.set_tcp_nodelay(true)?;
    Ok((client.into(), server.into()))
}
