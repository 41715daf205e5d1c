//! Loopback TCP pairs for the scenarios, optionally with small socket buffers.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, PoisonError};

use socket2::{Domain, Socket, Type};

/// One listener per buffer size, kept for the whole process: a bench makes tens of thousands of
/// connections, and a listener bound afresh for each would hold a port of its own in TIME_WAIT
/// besides the client's, running the ephemeral range dry within a minute.
static LISTENERS: Mutex<Option<HashMap<Option<usize>, Socket>>> = Mutex::new(None);

/// A connected loopback TCP pair `(client, server)`. With `buffer`, both sockets get
/// `SO_SNDBUF`/`SO_RCVBUF` of that size, set before `listen`/`connect`: shrinking a connected
/// loopback socket stalls TCP on zero-window probes for up to seconds (KERNEL-NOTES).
pub fn tcp_pair(buffer: Option<usize>) -> io::Result<(TcpStream, TcpStream)> {
    let shrink = |sock: &Socket| -> io::Result<()> {
        if let Some(size) = buffer {
            sock.set_send_buffer_size(size)?;
            sock.set_recv_buffer_size(size)?;
        }
        Ok(())
    };
    // Held across connect and accept, so two threads making pairs never take each other's.
    let mut listeners = LISTENERS.lock().unwrap_or_else(PoisonError::into_inner);
    let listeners = listeners.get_or_insert_with(HashMap::new);
    let listener = match listeners.entry(buffer) {
        std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
        std::collections::hash_map::Entry::Vacant(entry) => {
            let addr: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
            let listener = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            shrink(&listener)?;
            listener.bind(&addr.into())?;
            listener.listen(1024)?;
            entry.insert(listener)
        }
    };
    let local = listener.local_addr()?;
    let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    shrink(&client)?;
    client.set_tcp_nodelay(true)?;
    client.connect(&local)?;
    let (server, _) = listener.accept()?;
    server.set_tcp_nodelay(true)?;
    Ok((client.into(), server.into()))
}
