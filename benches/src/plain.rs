//! The `blocking` contender: plain blocking `send`/`recv` on the socket, no timeouts, no
//! gate, no buffering — what a program does with `TcpStream::write_all` and `read`.
//!
//! The std backend waits in `poll(2)` between non-blocking tries (it may not put timeouts or
//! flags on a socket it is lent, C12), and that costs a failed try and a `poll` before each wait.
//! This contender keeps the cost of the plain blocking calls in the same rounds, so std's ratio
//! against it shows what never hanging and never touching the caller's socket costs. It is a
//! benchmark contender only: it can wait for ever on a peer that stops reading.

use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;

use fast_io::socket::adopt;
use fast_io::{
    Availability, BackendKind, Config, Error, SocketBackend, SocketReader, SocketWriter, Stats,
    StatsHandle,
};
use socket2::Socket;

/// The name of this contender in reports.
pub const NAME: &str = "blocking";

/// Hands out plain blocking writers and readers (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainBackend;

impl SocketBackend for PlainBackend {
    /// Reported as std, whose calls it makes without the poll between them; reports name it
    /// [`NAME`].
    fn kind(&self) -> BackendKind {
        BackendKind::Std
    }

    fn availability(&self) -> Availability {
        Availability::Available
    }

    fn writer(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketWriter>, Error> {
        config.validate()?;
        Ok(Box::new(Plain::new(socket)?))
    }

    fn reader(
        &self,
        socket: BorrowedFd<'_>,
        config: &Config,
    ) -> Result<Box<dyn SocketReader>, Error> {
        config.validate()?;
        Ok(Box::new(Plain::new(socket)?))
    }
}

/// One blocking socket and its counters.
#[derive(Debug)]
struct Plain {
    sock: Socket,
    stats: StatsHandle,
}

impl Plain {
    fn new(socket: BorrowedFd<'_>) -> Result<Plain, Error> {
        Ok(Plain {
            sock: adopt(socket)?,
            stats: StatsHandle::new(),
        })
    }

    fn count(&self, moved: &io::Result<usize>) {
        let counters = self.stats.counters();
        counters.kernel_entries.add(1);
        counters.ops_submitted.add(1);
        counters.completions.add(1);
        if let Ok(n) = moved {
            counters.bytes.add(*n as u64);
        }
    }
}

impl Write for Plain {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let sent = self.sock.send_with_flags(buf, libc::MSG_NOSIGNAL);
        self.count(&sent);
        sent
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Plain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = (&self.sock).read(buf);
        self.count(&got);
        got
    }
}

impl SocketWriter for Plain {
    fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }

    fn buffered(&self) -> usize {
        0
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.sock.shutdown(std::net::Shutdown::Write)
    }
}

impl SocketReader for Plain {
    fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }
}
