//! `recv_shapes [ROUNDS]`: the experiment behind issue 16's item 4 (multishot RECV with a
//! provided buffer ring), kept so the decision can be measured again on another kernel.
//!
//! A std sender writes 512 MiB in 64 KiB `write_all`s over loopback TCP; the receiver reads it
//! in 1 MiB reads, shaped four ways, in rounds whose order is shuffled (the first round is a
//! discarded warm-up):
//!
//! - `std`: a blocking `read`, one system call per read.
//! - `gated`: the io_uring reader's shape: a RECV with `MSG_DONTWAIT`, and after `-EAGAIN` one
//!   without it, linked to a 100 ms `LinkTimeout` (one `io_uring_enter` each).
//! - `multi_copy`: one multishot RECV armed for the whole transfer, into a provided buffer ring
//!   of 64 × 64 KiB; a read copies what the ring delivered into the caller's buffer and gives the
//!   buffers back, and enters the kernel only when nothing is waiting. This is what a
//!   `Read::read` on a multishot reader must do.
//! - `multi_borrow`: the same, but the delivered bytes are looked at where they lie and not
//!   copied: what a group's `Progress::Data(&[u8])` could do.
//!
//! It prints, per shape, the medians over the rounds of the per-round ratios to `std` of
//! throughput, the receiving thread's CPU per MiB and the process's, and `io_uring_enter`
//! calls (or `read`s) per MiB. The stream is a pattern whose first and last byte of every read
//! are checked against their offset, and the total must be exact. This is a measurement of
//! receive shapes, not a fast_io backend: nothing here is used by the library.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

use io_uring::{IoUring, cqueue, opcode, squeue, types};

const TOTAL: usize = 512 << 20;
const READ: usize = 1 << 20;
const SHAPES: [&str; 5] = [
    "std",
    "gated",
    "multi_copy",
    "multi_copy_coop",
    "multi_borrow",
];
/// The provided buffers: as many and as large as a reader's 4 MiB socket buffer.
const BUFFERS: u16 = 64;
const BUFFER: usize = 64 << 10;
const GROUP: u16 = 7;

/// The byte at stream offset `at`: a cycle of 251 (prime), so a shifted or repeated block shows.
fn pattern(at: usize) -> u8 {
    (at % 251) as u8
}

fn cpu(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn ring() -> IoUring {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(64)
        .expect("io_uring setup")
}

/// A ring any thread may enter: completions run as task work of the thread that submitted.
fn coop_ring() -> IoUring {
    IoUring::builder()
        .setup_coop_taskrun()
        .build(64)
        .expect("io_uring setup")
}

/// A receive shape: `read` returns bytes received (0 at end of stream); `entries` counts the
/// system calls made.
trait Shape {
    fn read(&mut self, buf: &mut [u8]) -> usize;
    fn entries(&self) -> u64;
}

struct Blocking(TcpStream, u64);

impl Shape for Blocking {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        self.1 += 1;
        self.0.read(buf).expect("read")
    }
    fn entries(&self) -> u64 {
        self.1
    }
}

struct Gated {
    ring: IoUring,
    fd: i32,
    empty: bool,
    entries: u64,
}

impl Shape for Gated {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        loop {
            let flags = if self.empty { 0 } else { libc::MSG_DONTWAIT };
            let recv = opcode::Recv::new(types::Fd(self.fd), buf.as_mut_ptr(), buf.len() as u32)
                .flags(flags)
                .build()
                .user_data(1);
            let slice = types::Timespec::new().nsec(100_000_000);
            let want = if self.empty { 2 } else { 1 };
            // SAFETY: `buf` and `slice` outlive the loop below, which reaps every CQE pushed.
            unsafe {
                let mut sq = self.ring.submission();
                if self.empty {
                    sq.push(&recv.flags(squeue::Flags::IO_LINK)).expect("room");
                    sq.push(&opcode::LinkTimeout::new(&slice).build().user_data(2))
                        .expect("room");
                } else {
                    sq.push(&recv).expect("room");
                }
            }
            let (mut reaped, mut result) = (0, 0);
            while reaped < want {
                self.entries += 1;
                self.ring.submit_and_wait(want - reaped).expect("enter");
                for cqe in self.ring.completion() {
                    reaped += 1;
                    if cqe.user_data() == 1 {
                        result = cqe.result();
                    }
                }
            }
            match result {
                n if n >= 0 => {
                    self.empty = false;
                    return n as usize;
                }
                n if n == -libc::EAGAIN => self.empty = true,
                n if n == -libc::ECANCELED => self.empty = false,
                n => panic!("RECV failed: {n}"),
            }
        }
    }
    fn entries(&self) -> u64 {
        self.entries
    }
}

struct Multishot {
    ring: IoUring,
    fd: i32,
    copy: bool,
    entries: u64,
    /// The buffer ring the kernel takes buffers from (its own mmap'd pages).
    entries_mem: *mut types::BufRingEntry,
    tail: u16,
    buffers: Vec<u8>,
    armed: bool,
    /// Buffers delivered and not yet consumed: (id, consumed up to, filled up to).
    delivered: VecDeque<(u16, usize, usize)>,
    eof: bool,
    /// Bytes consumed so far: the stream offset a borrowed buffer is checked against.
    offset: usize,
}

impl Multishot {
    fn new(fd: i32, copy: bool, ring: IoUring) -> Multishot {
        let bytes = usize::from(BUFFERS) * size_of::<types::BufRingEntry>();
        // SAFETY: an anonymous private mapping; no existing memory is touched.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes.max(4096),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(mem, libc::MAP_FAILED, "mmap of the buffer ring");
        // SAFETY: `mem` holds `BUFFERS` entries, page-aligned, and is never unmapped: the
        // process exits after the experiment (a few pages per shape run are leaked on purpose,
        // so the kernel can never see them freed).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(mem as u64, BUFFERS, GROUP, 0)
                .expect("IORING_REGISTER_PBUF_RING");
        }
        let mut shape = Multishot {
            ring,
            fd,
            copy,
            entries: 1,
            entries_mem: mem.cast(),
            tail: 0,
            buffers: vec![0; usize::from(BUFFERS) * BUFFER],
            armed: false,
            delivered: VecDeque::new(),
            eof: false,
            offset: 0,
        };
        for id in 0..BUFFERS {
            shape.provide(id);
        }
        shape.publish();
        shape
    }

    /// Puts buffer `id` back in the ring (seen by the kernel after `publish`).
    fn provide(&mut self, id: u16) {
        // SAFETY: the index is masked into the ring's `BUFFERS` entries (a power of two), and
        // the kernel reads entries only up to the published tail, which this one is past.
        let entry = unsafe { &mut *self.entries_mem.add(usize::from(self.tail & (BUFFERS - 1))) };
        entry.set_addr(self.buffers.as_ptr() as u64 + u64::from(id) * BUFFER as u64);
        entry.set_len(BUFFER as u32);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lies inside the ring's first entry, valid for the process.
        let tail = unsafe { types::BufRingEntry::tail(self.entries_mem) }.cast::<AtomicU16>();
        // SAFETY: as above; the kernel reads it concurrently, hence the atomic release store.
        unsafe { (*tail).store(self.tail, Ordering::Release) };
    }

    fn reap(&mut self) {
        for cqe in self.ring.completion() {
            if !cqueue::more(cqe.flags()) {
                self.armed = false;
            }
            match cqe.result() {
                0 => self.eof = true,
                n if n > 0 => {
                    let id = cqueue::buffer_select(cqe.flags()).expect("a provided buffer");
                    self.delivered.push_back((id, 0, n as usize));
                }
                // Every buffer was taken: re-armed once some are given back.
                n if n == -libc::ENOBUFS => {}
                n => panic!("multishot RECV failed: {n}"),
            }
        }
    }
}

impl Shape for Multishot {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        loop {
            if !self.delivered.is_empty() {
                return self.consume(buf);
            }
            if self.eof {
                return 0;
            }
            if !self.armed {
                let recv = opcode::RecvMulti::new(types::Fd(self.fd), GROUP)
                    .build()
                    .user_data(9);
                // SAFETY: the RECV writes only into provided buffers, which live as long as
                // `self`, and `self` is dropped only after the stream ended (no CQE pending).
                unsafe { self.ring.submission().push(&recv).expect("room") };
                self.armed = true;
            }
            self.entries += 1;
            self.ring.submit_and_wait(1).expect("enter");
            self.reap();
        }
    }
    fn entries(&self) -> u64 {
        self.entries
    }
}

impl Multishot {
    /// Hands over what was delivered, copied into `buf` or (borrowing) only looked at, and gives
    /// the used buffers back; returns the byte count.
    fn consume(&mut self, buf: &mut [u8]) -> usize {
        let mut filled = 0;
        while let Some(&(id, from, to)) = self.delivered.front() {
            let base = usize::from(id) * BUFFER;
            let bytes = &self.buffers[base + from..base + to];
            if self.copy {
                let take = bytes.len().min(buf.len() - filled);
                buf[filled..filled + take].copy_from_slice(&bytes[..take]);
                filled += take;
                if take < bytes.len() {
                    self.delivered[0].1 += take;
                    break;
                }
            } else {
                let (first, last) = (self.offset + filled, self.offset + filled + bytes.len() - 1);
                assert_eq!(bytes[0], pattern(first), "multi_borrow: byte {first}");
                assert_eq!(
                    bytes[bytes.len() - 1],
                    pattern(last),
                    "multi_borrow: byte {last}"
                );
                filled += bytes.len();
            }
            self.delivered.pop_front();
            self.provide(id);
            if filled == buf.len() {
                break;
            }
        }
        self.publish();
        self.offset += filled;
        filled
    }
}

fn connected_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// One transfer received through `shape`: (MiB/s, receiver ms/MiB, process ms/MiB, entries/MiB).
fn run(shape: &str) -> [f64; 4] {
    let (mut tx, rx) = connected_pair();
    let sender = std::thread::spawn(move || {
        // Every 64 KiB write is a window of one pattern block, starting where its offset says.
        let block: Vec<u8> = (0..(64 << 10) + 251).map(pattern).collect();
        for offset in (0..TOTAL).step_by(64 << 10) {
            let start = offset % 251;
            tx.write_all(&block[start..start + (64 << 10)])
                .expect("write");
        }
    });
    let fd = rx.as_raw_fd();
    let mut receiver: Box<dyn Shape> = match shape {
        "std" => Box::new(Blocking(rx.try_clone().expect("clone"), 0)),
        "gated" => Box::new(Gated {
            ring: ring(),
            fd,
            empty: false,
            entries: 0,
        }),
        "multi_copy" => Box::new(Multishot::new(fd, true, ring())),
        "multi_copy_coop" => Box::new(Multishot::new(fd, true, coop_ring())),
        _ => Box::new(Multishot::new(fd, false, ring())),
    };
    let mut buf = vec![0u8; READ];
    let (start, thread0, process0) = (
        Instant::now(),
        cpu(libc::CLOCK_THREAD_CPUTIME_ID),
        cpu(libc::CLOCK_PROCESS_CPUTIME_ID),
    );
    let mut received = 0;
    while received < TOTAL {
        let n = receiver.read(&mut buf);
        assert!(n > 0, "{shape}: end of stream after {received} bytes");
        if shape != "multi_borrow" {
            assert_eq!(buf[0], pattern(received), "{shape}: byte {received}");
            assert_eq!(
                buf[n - 1],
                pattern(received + n - 1),
                "{shape}: a read's last byte"
            );
        }
        received += n;
    }
    let secs = start.elapsed().as_secs_f64();
    let thread = cpu(libc::CLOCK_THREAD_CPUTIME_ID) - thread0;
    let process = cpu(libc::CLOCK_PROCESS_CPUTIME_ID) - process0;
    sender.join().expect("sender");
    assert_eq!(received, TOTAL, "{shape}: exact length");
    let mib = TOTAL as f64 / f64::from(1 << 20);
    [
        mib / secs,
        thread * 1e3 / mib,
        process * 1e3 / mib,
        receiver.entries() as f64 / mib,
    ]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(30, |arg| arg.parse().expect("ROUNDS is a number"));
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    // ratios[shape][figure]: per round, to std's (entries are absolute).
    let mut ratios = vec![[const { Vec::new() }; 4]; SHAPES.len()];
    for round in 0..=rounds {
        let mut order = SHAPES;
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        let figures: Vec<(&str, [f64; 4])> = order.iter().map(|&s| (s, run(s))).collect();
        if round == 0 {
            continue;
        }
        let of = |name: &str| figures.iter().find(|(s, _)| *s == name).expect("ran").1;
        let std = of("std");
        for (i, shape) in SHAPES.iter().enumerate() {
            let f = of(shape);
            for k in 0..3 {
                ratios[i][k].push(f[k] / std[k]);
            }
            ratios[i][3].push(f[3]);
        }
    }
    println!(
        "{rounds} rounds of 512 MiB (std sender, 64 KiB writes; 1 MiB reads); medians of per-round \
         ratios to std"
    );
    println!(
        "{:<13} {:>9} {:>14} {:>15} {:>12}",
        "receiver", "MB/s×std", "recv CPU×std", "process CPU×std", "entries/MiB"
    );
    for (i, shape) in SHAPES.iter().enumerate() {
        let [a, b, c, d] = ratios[i].clone().map(median);
        println!("{shape:<13} {a:>9.3} {b:>14.3} {c:>15.3} {d:>12.1}");
    }
}
