//! `echo_server`: the `echo` scenario's servers that are not fast_io's (those are `fastcat echo`).
//!
//! ```text
//! echo_server KIND        # KIND: std, tokio, compio or bare
//! ```
//!
//! Each listens on 127.0.0.1 (an ephemeral port, backlog 4096), says `listening on ADDR` on
//! stderr, and answers every connection's bytes with the same bytes until it is killed; every
//! buffer is 64 KiB and every accepted socket gets `TCP_NODELAY`.
//!
//! - `std`: a thread per connection, blocking `read` and `write_all`.
//! - `tokio`: a current-thread runtime, a task per connection.
//! - `compio`: one compio runtime (io_uring), a task per connection.
//! - `bare`: the floor: one thread, one io_uring, a RECV per connection and a SEND of what it
//!   brought, no framing, no checks, no readiness gates (a SEND may wait in the kernel: fine for
//!   an echo whose client always reads). It shows what a server costs that does nothing but the
//!   kernel's work, so the load generator is seen not to be the limit.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::thread;

use io_uring::{IoUring, opcode, types};
use socket2::{Domain, Socket, Type};

/// Every server's buffer per connection.
const BUFFER: usize = 64 << 10;

fn listen() -> io::Result<TcpListener> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    sock.listen(4096)?;
    let listener: TcpListener = sock.into();
    eprintln!("listening on {}", listener.local_addr()?);
    Ok(listener)
}

fn std_server(listener: TcpListener) -> io::Result<()> {
    loop {
        let (mut sock, _) = listener.accept()?;
        sock.set_nodelay(true)?;
        thread::Builder::new().stack_size(64 << 10).spawn(move || {
            let mut buf = vec![0; BUFFER];
            loop {
                match sock.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if sock.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        })?;
    }
}

fn tokio_server(listener: TcpListener) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (mut sock, _) = listener.accept().await?;
            sock.set_nodelay(true)?;
            tokio::spawn(async move {
                let mut buf = vec![0; BUFFER];
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if sock.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}

fn compio_server(listener: TcpListener) -> io::Result<()> {
    use compio::BufResult;
    use compio::io::{AsyncRead, AsyncWriteExt};
    let runtime = compio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = compio::net::TcpListener::from_std(listener)?;
        loop {
            let (sock, _) = listener.accept().await?;
            sock.set_nodelay(true)?;
            compio::runtime::spawn(async move {
                let mut sock = sock;
                let mut buf = Vec::with_capacity(BUFFER);
                loop {
                    let BufResult(result, back) = sock.read(buf).await;
                    buf = back;
                    match result {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let BufResult(result, back) = sock.write_all(buf).await;
                    buf = back;
                    if result.is_err() {
                        return;
                    }
                    buf.clear();
                }
            })
            .detach();
        }
    })
}

/// `bare`'s operations, the low two bits of their user data (the slot is the rest).
const ACCEPT: u64 = 0;
const RECV: u64 = 1;
const SEND: u64 = 2;

/// One `bare` connection: its socket, its buffer, and how much of the buffer is still to send.
struct Bare {
    sock: OwnedFd,
    buf: Box<[u8]>,
    from: usize,
    to: usize,
}

fn bare_server(listener: TcpListener) -> io::Result<()> {
    let mut ring: IoUring = IoUring::builder().setup_cqsize(1 << 16).build(8192)?;
    let mut conns: Vec<Option<Bare>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let listen_fd = listener.as_raw_fd();
    let accept = opcode::Accept::new(
        types::Fd(listen_fd),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
    .build()
    .user_data(ACCEPT);
    let mut queue = vec![accept];
    loop {
        for entry in queue.drain(..) {
            // SAFETY: every buffer an entry points to is a connection's `buf`, a boxed slice
            // that stays put and lives until the connection's slot is emptied, which happens
            // only on its RECV's or SEND's own completion (one operation per connection at a
            // time), so never while the kernel holds it.
            while unsafe { ring.submission().push(&entry) }.is_err() {
                ring.submit()?;
            }
        }
        ring.submit_and_wait(1)?;
        let done: Vec<(u64, i32)> = ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result()))
            .collect();
        for (data, result) in done {
            let slot = (data >> 2) as usize;
            match data & 3 {
                ACCEPT => {
                    queue.push(
                        opcode::Accept::new(
                            types::Fd(listen_fd),
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                        )
                        .build()
                        .user_data(ACCEPT),
                    );
                    if result < 0 {
                        continue;
                    }
                    // SAFETY: a successful accept returns a new descriptor nobody else owns.
                    let sock = unsafe { OwnedFd::from_raw_fd(result) };
                    socket2::SockRef::from(&sock).set_tcp_nodelay(true)?;
                    let slot = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    let conn = conns[slot].insert(Bare {
                        sock,
                        buf: vec![0; BUFFER].into_boxed_slice(),
                        from: 0,
                        to: 0,
                    });
                    queue.push(recv(conn, slot));
                }
                RECV | SEND => {
                    let conn = conns[slot].as_mut().expect("an open connection");
                    if result <= 0 {
                        conns[slot] = None;
                        free.push(slot);
                        continue;
                    }
                    if data & 3 == RECV {
                        (conn.from, conn.to) = (0, result as usize);
                    } else {
                        conn.from += result as usize;
                    }
                    if conn.from < conn.to {
                        let entry = opcode::Send::new(
                            types::Fd(conn.sock.as_raw_fd()),
                            conn.buf[conn.from..].as_ptr(),
                            (conn.to - conn.from) as u32,
                        )
                        .flags(libc::MSG_NOSIGNAL)
                        .build()
                        .user_data(((slot as u64) << 2) | SEND);
                        queue.push(entry);
                    } else {
                        queue.push(recv(conn, slot));
                    }
                }
                _ => unreachable!("no other operation is made"),
            }
        }
    }
}

fn recv(conn: &mut Bare, slot: usize) -> io_uring::squeue::Entry {
    opcode::Recv::new(
        types::Fd(conn.sock.as_raw_fd()),
        conn.buf.as_mut_ptr(),
        conn.buf.len() as u32,
    )
    .build()
    .user_data(((slot as u64) << 2) | RECV)
}

fn main() -> ExitCode {
    let kind = std::env::args().nth(1).unwrap_or_default();
    let served = listen().and_then(|listener| match kind.as_str() {
        "std" => std_server(listener),
        "tokio" => tokio_server(listener),
        "compio" => compio_server(listener),
        "bare" => bare_server(listener),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown server {other:?}: std, tokio, compio or bare"),
        )),
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("echo_server: {err}");
            ExitCode::FAILURE
        }
    }
}
