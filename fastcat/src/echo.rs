//! `fastcat echo LISTEN`: answers every connection's bytes with the same bytes, every connection
//! on one thread through one socket group (rule G8): the `echo` benchmark's fast_io server, and a
//! peer to try `nc` or `socat` against by hand.
//!
//! The serving thread owns the group and drives it with `poll` alone: what a member receives is
//! lent to the step's callback (`Progress::Data`), kept in the connection's backlog, and written
//! to the member's write buffer once the step returned, so the next step sends it together with
//! every other member's replies and receives (one `io_uring_enter` on io_uring). A connection
//! whose client does not read its replies holds at most one write buffer and one backlog: once
//! the write buffer cannot take the backlog, the member's read interest goes off, its client's
//! requests wait in the kernel, and it comes back on when the backlog went out. A connection
//! ends when its client's stream ended and every reply went out (the group closes the socket: a
//! FIN), or when it failed. An acceptor thread accepts and wakes the serving thread through a
//! socket pair whose far end is a member of the group, as the relay does.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Config, Member, Progress, SocketGroup};

use crate::Context;
use crate::net::Admission;

/// Each member's write buffer (and receive buffer): 64 KiB, the buffer of every other server of
/// the `echo` benchmark.
const ECHO_BUFFER: usize = 64 << 10;

/// The echo server's settings.
pub struct Echo {
    pub listen: String,
    pub max_connections: usize,
    /// Stop after this many connections ended (`None`: serve forever).
    pub count: Option<u64>,
}

/// One client's connection.
struct Conn {
    member: Member,
    /// Bytes received and not yet taken by the member's write buffer, in order.
    backlog: Vec<u8>,
    reading: bool,
    /// The client's stream ended: close once every reply went out.
    ended: bool,
    failed: bool,
}

/// What the serving loop counts, for the totals line.
#[derive(Default)]
struct Served {
    connections: u64,
    failed: u64,
}

/// Runs the echo server until `count` connections ended (or forever).
pub fn run(cx: &Context, echo: &Echo) -> Result<(), String> {
    let config = Config {
        batch_bytes: ECHO_BUFFER,
        ..cx.config.clone()
    };
    let mut group = cx
        .selection
        .backend()
        .group(&config)
        .map_err(|e| e.to_string())?;
    let listen = if echo.listen.contains(':') {
        echo.listen.clone()
    } else {
        format!("[::]:{}", echo.listen)
    };
    let listener = crate::net::bind(&listen, echo.max_connections.max(128))
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("fastcat: echo on {bound}");
    let (wake_tx, wake_rx) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let (free_tx, free_rx) = mpsc::channel();
    let admission = Admission::new(echo.max_connections, free_rx);
    thread::Builder::new()
        .name("fastcat acceptor".into())
        .spawn(move || accept(listener, admission, tx, wake_tx))
        .map_err(|e| format!("cannot start the acceptor: {e}"))?;
    let waker = group.join(wake_rx.as_fd()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let served = serve(&mut *group, waker, &rx, &free_tx, echo.count)?;
    totals(&*group, &served, started.elapsed());
    Ok(())
}

/// The acceptor: accepts a client (at most `max` open at once), hands it to the serving thread
/// and wakes it.
fn accept(
    listener: TcpListener,
    mut admission: Admission,
    tx: Sender<TcpStream>,
    mut wake: UnixStream,
) {
    while let Some((client, _)) = admission.next(&listener) {
        let _ = client.set_nodelay(true);
        if tx.send(client).is_err() {
            return;
        }
        admission.admitted();
        // One byte per connection: the serving thread's waker member reports it as data.
        if wake.write_all(&[1]).is_err() {
            return;
        }
    }
}

/// The serving loop: takes new connections, makes a progress step, writes what arrived back,
/// and closes connections that are done. Returns what it served once `count` connections ended.
fn serve(
    group: &mut dyn SocketGroup,
    waker: Member,
    rx: &Receiver<TcpStream>,
    free: &Sender<()>,
    count: Option<u64>,
) -> Result<Served, String> {
    // Connections by their member's slot in the group: a report finds its connection with one
    // indexing, no hashing.
    let mut conns: Vec<Option<Conn>> = Vec::new();
    // Slots of connections something happened to in the last step, each once.
    let mut touched: Vec<usize> = Vec::new();
    let mut served = Served::default();
    let mut woken = false;
    loop {
        if std::mem::take(&mut woken) {
            while let Ok(client) = rx.try_recv() {
                let member = group.join_owned(client.into()).map_err(|e| e.to_string())?;
                if conns.len() <= member.index() {
                    conns.resize_with(member.index() + 1, || None);
                }
                conns[member.index()] = Some(Conn {
                    member,
                    backlog: Vec::new(),
                    reading: true,
                    ended: false,
                    failed: false,
                });
            }
        }
        for slot in touched.drain(..) {
            let Some(conn) = conns[slot].as_mut() else {
                continue;
            };
            if answer(group, conn) {
                let conn = conns[slot].take().expect("a finished connection");
                let _ = group.leave(conn.member);
                served.connections += 1;
                served.failed += u64::from(conn.failed);
                let _ = free.send(());
            }
        }
        if count.is_some_and(|count| served.connections >= count) {
            return Ok(served);
        }
        group
            .poll(None, &mut |member, progress| {
                if member == waker {
                    woken = true;
                    return;
                }
                let Some(Some(conn)) = conns.get_mut(member.index()) else {
                    return;
                };
                match progress {
                    Progress::Data(bytes) => conn.backlog.extend_from_slice(bytes),
                    Progress::Sent(_) | Progress::Forwarded(_) => {}
                    Progress::Eof => conn.ended = true,
                    Progress::Failed(_) => conn.failed = true,
                }
                // A member is reported at most once per kind; `Sent` and `Data` of one step
                // would name it twice.
                if touched.last() != Some(&member.index()) {
                    touched.push(member.index());
                }
            })
            .map_err(|e| format!("the echo group failed: {e}"))?;
    }
}

/// Writes what `conn` received back, switching its read interest by whether its write buffer
/// took everything; returns whether the connection is done (ended and answered, or failed).
fn answer(group: &mut dyn SocketGroup, conn: &mut Conn) -> bool {
    if conn.failed {
        return true;
    }
    if !conn.backlog.is_empty() {
        match group.write(conn.member, &conn.backlog) {
            Ok(taken) => {
                conn.backlog.drain(..taken);
            }
            Err(_) => {
                conn.failed = true;
                return true;
            }
        }
    }
    let reading = conn.backlog.is_empty();
    if reading != conn.reading && !conn.ended {
        if group.set_reading(conn.member, reading).is_err() {
            conn.failed = true;
            return true;
        }
        conn.reading = reading;
    }
    conn.ended && conn.backlog.is_empty() && group.buffered(conn.member).is_ok_and(|n| n == 0)
}

/// One line on stderr: the connections served, the bytes echoed, and what they cost the kernel
/// (the `echo` benchmark reads the kernel entries from it).
fn totals(group: &dyn SocketGroup, served: &Served, elapsed: Duration) {
    let stats = group.totals();
    // `bytes` counts every byte twice: received, then sent back.
    let echoed = stats.bytes / 2;
    eprintln!(
        "fastcat: echo totals: {} connections ({} failed) in {:.3} s, {echoed} bytes echoed; \
         {} kernel entries, {} operations, {} readiness waits",
        served.connections,
        served.failed,
        elapsed.as_secs_f64(),
        stats.kernel_entries,
        stats.ops_submitted,
        stats.readiness_waits,
    );
}
