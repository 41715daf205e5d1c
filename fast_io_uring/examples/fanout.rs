//! Fan-out: many connections × a few MiB each, sent by one io_uring group on ONE thread, against
//! the std idiom for many sockets, a thread per connection (`fast_io::StdBackend` writers), side
//! by side in one run.
//!
//! `cargo run --release -p fast_io_uring --example fanout -- [connections] [MiB each] [rounds]
//! [group batch KiB]` (defaults: 256 connections, 4 MiB each, 3 rounds, the default
//! `Config::batch_bytes` of 64 KiB per member).
//!
//! Both contenders send the same bytes (one precomputed 64 KiB block, repeated: std in
//! `write_all`s of 64 KiB, the group by filling each member's buffer and flushing) over loopback
//! TCP with default socket buffers, to identical receivers: one plain std thread per receiving
//! connection, reading into 256 KiB until end of stream. Runs are interleaved (round 1: std,
//! group; round 2: ...) and the median of the rounds is printed:
//!
//! - throughput: every connection's bytes over the wall time from the first send to the last
//!   receiver's end of stream;
//! - CPU per GiB of the whole process: user + system time from `getrusage(RUSAGE_SELF)` before
//!   and after, so the receivers are included (the same code for both contenders);
//! - CPU per GiB of the senders alone: the scheduler's exact run time of each sending thread
//!   (`/proc/thread-self/schedstat`, read at its end): the group's one thread, or the sum over
//!   std's threads. On loopback the kernel does part of a sender's work (pushing queued segments
//!   when an ACK opens the window) in whichever thread handles the ACK, often a receiver, so the
//!   process figure is the one to compare;
//! - system calls per MiB made by the senders (the group: `totals().kernel_entries`, every
//!   `io_uring_enter` of its shared ring plus one `shutdown(2)` per member; std: the writers'
//!   `send`/`shutdown` count), and the receivers' `read` calls per MiB (how finely the data
//!   arrived, which drives the receivers' share of the CPU).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fast_io::{Availability, Config, SocketBackend, StdBackend};
use fast_io_uring::UringBackend;

const BLOCK: usize = 64 << 10;

/// User + system time of the whole process.
fn process_cpu() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we own; an all-zero `rusage` is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Run time of the calling thread, kept exactly by the scheduler.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let ns = text.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(ns)
}

struct Run {
    wall: Duration,
    process_cpu: Duration,
    sender_cpu: Duration,
    sender_syscalls: u64,
    receiver_reads: u64,
}

/// `n` connected loopback pairs, and a receiving thread per server end that counts bytes and
/// `read` calls until end of stream.
fn connections(n: usize) -> (Vec<TcpStream>, Vec<JoinHandle<(u64, u64)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut clients = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..n {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        clients.push(client);
        receivers.push(thread::spawn(move || {
            let mut buf = vec![0u8; 256 << 10];
            let mut got = 0u64;
            let mut reads = 0u64;
            loop {
                let n = server.read(&mut buf).unwrap();
                reads += 1;
                if n == 0 {
                    return (got, reads);
                }
                got += n as u64;
            }
        }));
    }
    (clients, receivers)
}

/// Joins the receivers, checking each got `each` bytes; returns their `read` calls.
fn finish(receivers: Vec<JoinHandle<(u64, u64)>>, each: u64) -> u64 {
    let mut reads = 0;
    for receiver in receivers {
        let (got, calls) = receiver.join().unwrap();
        assert_eq!(got, each, "a receiver got the wrong count");
        reads += calls;
    }
    reads
}

fn run_std(n: usize, each: u64, block: &Arc<Vec<u8>>) -> Run {
    let (clients, receivers) = connections(n);
    let cpu = process_cpu();
    let started = Instant::now();
    let senders: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let block = block.clone();
            thread::spawn(move || {
                let mut writer = StdBackend
                    .writer(client.as_fd(), &Config::default())
                    .unwrap();
                let mut sent = 0u64;
                while sent < each {
                    let n = BLOCK.min((each - sent) as usize);
                    writer.write_all(&block[..n]).unwrap();
                    sent += n as u64;
                }
                writer.shutdown().unwrap();
                (thread_cpu(), writer.stats().kernel_entries)
            })
        })
        .collect();
    let mut sender_cpu = Duration::ZERO;
    let mut sender_syscalls = 0;
    for sender in senders {
        let (cpu, calls) = sender.join().unwrap();
        sender_cpu += cpu;
        sender_syscalls += calls;
    }
    let receiver_reads = finish(receivers, each);
    Run {
        wall: started.elapsed(),
        process_cpu: process_cpu() - cpu,
        sender_cpu,
        sender_syscalls,
        receiver_reads,
    }
}

fn run_group(n: usize, each: u64, block: &Arc<Vec<u8>>, batch_bytes: usize) -> Run {
    let (clients, receivers) = connections(n);
    let config = Config {
        batch_bytes,
        ..Config::default()
    };
    let mut group = UringBackend.group(&config).unwrap();
    let members: Vec<_> = clients
        .iter()
        .map(|client| group.join(client.as_fd()).unwrap())
        .collect();
    let block = block.clone();
    let cpu = process_cpu();
    let started = Instant::now();
    let sender = thread::spawn(move || {
        let entries = group.totals().kernel_entries;
        let mut sent = vec![0u64; members.len()];
        let mut rounds = 0;
        loop {
            let mut more = false;
            for (member, sent) in members.iter().zip(&mut sent) {
                // Fill the member's buffer with the same bytes std sends, block after block.
                while *sent < each {
                    more = true;
                    let n = BLOCK.min((each - *sent) as usize);
                    let took = group.write(*member, &block[..n]).unwrap();
                    if took == 0 {
                        break;
                    }
                    *sent += took as u64;
                }
            }
            let report = group.flush().unwrap();
            assert!(report.is_complete(), "{report:?}");
            rounds += report.rounds;
            if !more {
                break;
            }
        }
        for &member in &members {
            group.shutdown(member).unwrap();
        }
        let calls = group.totals().kernel_entries - entries;
        (thread_cpu(), calls, rounds)
    });
    let (sender_cpu, sender_syscalls, rounds) = sender.join().unwrap();
    let receiver_reads = finish(receivers, each);
    let wall = started.elapsed();
    drop(clients);
    eprintln!("  group: {rounds} rounds, {sender_syscalls} kernel entries");
    Run {
        wall,
        process_cpu: process_cpu() - cpu,
        sender_cpu,
        sender_syscalls,
        receiver_reads,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().expect("numbers"));
    let n = args.next().unwrap_or(256) as usize;
    let each = args.next().unwrap_or(4) << 20;
    let rounds = args.next().unwrap_or(3) as usize;
    let batch_bytes = args
        .next()
        .map_or(Config::default().batch_bytes, |kib| kib as usize * 1024);
    if let Availability::Unavailable(reason) = UringBackend.availability() {
        println!("skipped: {reason}");
        return;
    }
    let block: Arc<Vec<u8>> = Arc::new((0..BLOCK).map(|i| (i * 7 + i / 251) as u8).collect());
    let total = n as u64 * each;
    let gib = total as f64 / (1u64 << 30) as f64;
    let mib = total as f64 / (1u64 << 20) as f64;
    println!(
        "{n} connections x {} MiB = {gib:.2} GiB per run, {rounds} interleaved rounds, medians; \
         group batch_bytes {} KiB",
        each >> 20,
        batch_bytes >> 10
    );
    let mut results: [(&str, Vec<Run>); 2] = [
        ("std, thread/connection", Vec::new()),
        ("uring group, 1 thread", Vec::new()),
    ];
    for round in 0..rounds {
        eprintln!("round {}", round + 1);
        results[0].1.push(run_std(n, each, &block));
        results[1].1.push(run_group(n, each, &block, batch_bytes));
    }
    println!(
        "{:<24} {:>7} {:>18} {:>17} {:>17} {:>18}",
        "contender",
        "GiB/s",
        "process CPU s/GiB",
        "sender CPU s/GiB",
        "sender calls/MiB",
        "receiver reads/MiB"
    );
    for (name, runs) in &results {
        let of = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let gbps = of(&|r| gib / r.wall.as_secs_f64());
        let process = of(&|r| r.process_cpu.as_secs_f64() / gib);
        let sender = of(&|r| r.sender_cpu.as_secs_f64() / gib);
        let calls = of(&|r| r.sender_syscalls as f64 / mib);
        let reads = of(&|r| r.receiver_reads as f64 / mib);
        println!(
            "{name:<24} {gbps:>7.2} {process:>18.3} {sender:>17.3} {calls:>17.2} {reads:>18.2}"
        );
    }
    std::io::stdout().flush().unwrap();
}
