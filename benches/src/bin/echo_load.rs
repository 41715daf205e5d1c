//! `echo_load`: the `echo` scenario's load generator, one process the same in every round and
//! for every server, checking every byte of every reply.
//!
//! ```text
//! echo_load ADDR CONNECTIONS SIZE DEPTH MILLIS
//! ```
//!
//! It opens CONNECTIONS connections to ADDR (`TCP_NODELAY`), prints `ready` on stdout and waits
//! for a line on stdin; then each connection keeps DEPTH requests of SIZE bytes in flight for
//! MILLIS milliseconds: a reply completed is answered by the next request. Then no new request
//! is made, every outstanding reply is awaited, and one line goes to stdout:
//!
//! ```text
//! requests=N wall_ns=W p50_ns=A p99_ns=B cpu_ns=C
//! ```
//!
//! `wall_ns` runs from the go to the last reply; `cpu_ns` is this process's CPU over the same
//! span. Then the connections are closed (a FIN each) and it exits; any error exits 1 with one
//! line on stderr.
//!
//! It drives its connections from two threads (one per core here), each through its own
//! io_uring: a RECV armed per connection at all times (the kernel waits for data, not the
//! thread), a SEND per connection whenever requests are due, and one `io_uring_enter` per batch
//! of completions, so its own cost per request is the kernel's TCP work plus a little
//! bookkeeping. On loopback that work is most of a request's cost on either side (each side's
//! send delivers into the other's socket), and server and load share two cores: the machine is
//! busy whichever server runs, so a server that needs less CPU per request leaves more to the
//! load, which then makes more requests. The bench reports this process's CPU per request beside
//! the server's, and the `bare` server (see `echo_server`) as the floor.
//!
//! Each connection's requests are one byte stream, `PATTERN` read from an offset of its own, so
//! every byte of every reply is checked against what was sent at that place of the stream (an
//! echo keeps order). The SENDs point into the pattern itself: nothing is copied to send.

use std::collections::VecDeque;
use std::io::{self, BufRead, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use benches::cpu::process_cpu;
use io_uring::{IoUring, opcode, types};

/// The length of the stream's repeating part: a prime, so that connections' offsets differ.
const PERIOD: usize = 65_521;
/// The most bytes one SEND or RECV covers: eight requests of the largest size.
const MAX_BURST: usize = 8 * (64 << 10);

/// The byte at place `i` of the pattern: pseudo-random, so that a shifted reply never matches.
fn pattern_byte(i: usize) -> u8 {
    ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// Threads, each with its own ring and a share of the connections: as many as this machine's
/// cores (2), so that the machine is busy whichever server runs, and a server that costs less
/// CPU per request leaves more of it to the load, which then makes more requests.
const THREADS: usize = 2;

/// Which operation a completion belongs to: the low bit of its user data.
const RECV: u64 = 0;
const SEND: u64 = 1;

struct Conn {
    sock: TcpStream,
    /// Where this connection's stream starts in the pattern.
    start: usize,
    /// Requests made (their bytes queued to send), and bytes of them the kernel took.
    issued: u64,
    sent: u64,
    sending: bool,
    /// Reply bytes received and checked.
    received: u64,
    rx: Box<[u8]>,
    /// When each outstanding request was made, oldest first.
    stamps: VecDeque<Instant>,
}

struct Load {
    ring: IoUring,
    conns: Vec<Conn>,
    pattern: Vec<u8>,
    size: usize,
    depth: u64,
    latencies: Vec<u32>,
    completed: u64,
    last_reply: Instant,
    in_flight: usize,
}

impl Load {
    /// Queues one SQE, submitting what is queued first when the queue is full.
    fn push(&mut self, entry: &io_uring::squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every buffer an entry points to (a connection's `rx`, or the pattern)
            // lives in `self` until the ring has returned that entry's completion: `run` reaps
            // every operation in flight before returning, and `self` is not dropped before.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                self.in_flight += 1;
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    fn arm_recv(&mut self, c: usize) -> io::Result<()> {
        let conn = &mut self.conns[c];
        let entry = opcode::Recv::new(
            types::Fd(conn.sock.as_raw_fd()),
            conn.rx.as_mut_ptr(),
            conn.rx.len() as u32,
        )
        .build()
        .user_data(((c as u64) << 1) | RECV);
        self.push(&entry)
    }

    /// Makes requests up to the depth (when `more`), and sends what is made and not yet sent.
    fn pump_send(&mut self, c: usize, more: bool) -> io::Result<()> {
        let size = self.size as u64;
        let conn = &mut self.conns[c];
        if conn.sending {
            return Ok(());
        }
        if more {
            let outstanding = conn.issued - conn.received / size;
            let now = Instant::now();
            for _ in outstanding..self.depth {
                conn.issued += 1;
                conn.stamps.push_back(now);
            }
        }
        let due = (conn.issued * size - conn.sent) as usize;
        if due == 0 {
            return Ok(());
        }
        conn.sending = true;
        let at = (conn.start + conn.sent as usize) % PERIOD;
        let entry = opcode::Send::new(
            types::Fd(conn.sock.as_raw_fd()),
            self.pattern[at..].as_ptr(),
            due as u32,
        )
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(((c as u64) << 1) | SEND);
        self.push(&entry)
    }

    /// Checks `n` received bytes of connection `c` and retires the requests they complete.
    fn received(&mut self, c: usize, n: usize) -> io::Result<()> {
        let size = self.size as u64;
        let conn = &mut self.conns[c];
        let at = (conn.start + conn.received as usize) % PERIOD;
        if conn.rx[..n] != self.pattern[at..at + n] {
            return Err(io::Error::other(format!(
                "connection {c}: a reply differs from its request at stream byte {}",
                conn.received
            )));
        }
        let before = conn.received / size;
        conn.received += n as u64;
        if conn.received > conn.issued * size {
            return Err(io::Error::other(format!(
                "connection {c}: {} bytes came back, only {} were sent",
                conn.received,
                conn.issued * size
            )));
        }
        let now = Instant::now();
        for _ in before..conn.received / size {
            let made = conn
                .stamps
                .pop_front()
                .expect("a stamp per outstanding request");
            let nanos = now.duration_since(made).as_nanos();
            self.latencies
                .push(u32::try_from(nanos).unwrap_or(u32::MAX));
            self.completed += 1;
            self.last_reply = now;
        }
        Ok(())
    }

    /// Runs until `until`, then until every outstanding reply came back.
    fn run(&mut self, until: Instant) -> io::Result<()> {
        for c in 0..self.conns.len() {
            self.arm_recv(c)?;
            self.pump_send(c, true)?;
        }
        let size = self.size as u64;
        let mut running = true;
        loop {
            if running && Instant::now() >= until {
                running = false;
            }
            let outstanding = self
                .conns
                .iter()
                .any(|conn| conn.received < conn.issued * size);
            if !running && !outstanding {
                break;
            }
            self.ring.submit_and_wait(1)?;
            let done: Vec<(u64, i32)> = self
                .ring
                .completion()
                .map(|cqe| (cqe.user_data(), cqe.result()))
                .collect();
            for (data, result) in done {
                self.in_flight -= 1;
                let c = (data >> 1) as usize;
                if result < 0 {
                    return Err(io::Error::from_raw_os_error(-result));
                }
                let n = result as usize;
                if data & 1 == SEND {
                    let conn = &mut self.conns[c];
                    conn.sent += n as u64;
                    conn.sending = false;
                    self.pump_send(c, false)?;
                } else {
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("connection {c}: the server closed it"),
                        ));
                    }
                    self.received(c, n)?;
                    self.arm_recv(c)?;
                    self.pump_send(c, running)?;
                }
            }
        }
        Ok(())
    }

    /// Cancels what is in flight (the armed RECVs) and reaps every completion.
    fn reap_all(&mut self) -> io::Result<()> {
        if self.in_flight == 0 {
            return Ok(());
        }
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(u64::MAX);
        self.push(&cancel)?;
        while self.in_flight > 0 {
            self.ring.submit_and_wait(1)?;
            let reaped = self.ring.completion().count();
            self.in_flight -= reaped;
        }
        Ok(())
    }
}

fn percentile(sorted: &[u32], p: usize) -> u32 {
    sorted[(sorted.len() - 1) * p / 100]
}

fn load(args: &[String]) -> io::Result<String> {
    let [addr, conns, size, depth, millis] = args else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: echo_load ADDR CONNECTIONS SIZE DEPTH MILLIS",
        ));
    };
    let number = |text: &str, what: &str| -> io::Result<usize> {
        text.parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad {what}")))
    };
    let (count, size, depth) = (
        number(conns, "CONNECTIONS")?,
        number(size, "SIZE")?,
        number(depth, "DEPTH")?,
    );
    let millis = number(millis, "MILLIS")?;
    if size * depth > MAX_BURST {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("SIZE × DEPTH is over {MAX_BURST}"),
        ));
    }
    let pattern: Vec<u8> = (0..PERIOD + MAX_BURST)
        .map(|i| pattern_byte(i % PERIOD))
        .collect();
    let threads = count.min(THREADS);
    let mut shares: Vec<Vec<Conn>> = (0..threads).map(|_| Vec::new()).collect();
    for c in 0..count {
        let sock = TcpStream::connect(addr.as_str())?;
        sock.set_nodelay(true)?;
        shares[c % threads].push(Conn {
            sock,
            start: (c * 977) % PERIOD,
            issued: 0,
            sent: 0,
            sending: false,
            received: 0,
            rx: vec![0; (size * depth).max(4096)].into_boxed_slice(),
            stamps: VecDeque::with_capacity(depth),
        });
    }
    let mut loads = Vec::with_capacity(threads);
    for conns in shares {
        // Two operations per connection at most, and room for the completions of all of them.
        let entries = (2 * conns.len() + 8).next_power_of_two().min(32_768) as u32;
        let ring = IoUring::builder()
            .setup_cqsize(entries * 2)
            .build(entries)?;
        loads.push(Load {
            ring,
            conns,
            pattern: pattern.clone(),
            size,
            depth: depth as u64,
            latencies: Vec::with_capacity(1 << 18),
            completed: 0,
            last_reply: Instant::now(),
            in_flight: 0,
        });
    }
    println!("ready");
    io::stdout().flush()?;
    let mut go = String::new();
    io::stdin().lock().read_line(&mut go)?;
    let cpu = process_cpu();
    let started = Instant::now();
    let until = started + Duration::from_millis(millis as u64);
    let done: Vec<io::Result<Load>> = thread::scope(|scope| {
        let running: Vec<_> = loads
            .into_iter()
            .map(|mut load| {
                scope.spawn(move || {
                    let result = load.run(until);
                    // Reaped before the buffers go, whatever happened.
                    load.reap_all()?;
                    result.map(|()| load)
                })
            })
            .collect();
        running
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a thread panicked")))
            })
            .collect()
    });
    let cpu = process_cpu().saturating_sub(cpu);
    let mut latencies = Vec::new();
    let (mut completed, mut last) = (0, started);
    for load in done {
        let load = load?;
        completed += load.completed;
        last = last.max(load.last_reply);
        latencies.extend_from_slice(&load.latencies);
    }
    if latencies.is_empty() {
        return Err(io::Error::other("no reply came back"));
    }
    latencies.sort_unstable();
    Ok(format!(
        "requests={completed} wall_ns={} p50_ns={} p99_ns={} cpu_ns={}",
        last.duration_since(started).as_nanos(),
        percentile(&latencies, 50),
        percentile(&latencies, 99),
        cpu.as_nanos()
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match load(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("echo_load: {err}");
            ExitCode::FAILURE
        }
    }
}
