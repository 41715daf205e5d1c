//! Fan-out: many connections × a few MiB each, sent by one io_uring group on ONE thread, against
//! the std idiom for many sockets, a thread per connection (`fast_io::StdBackend` writers), side
//! by side in one run.
//!
//! `cargo run --release -p fast_io_uring --example fanout -- [connections] [MiB each] [rounds]`
//! (defaults: 256 connections, 4 MiB each, 3 rounds).
//!
//! Both contenders send the same bytes (one precomputed 64 KiB block, repeated) over loopback TCP
//! with default socket buffers, to identical receivers: one plain std thread per receiving
//! connection, counting bytes until end of stream. Runs are interleaved (round 1: std, group;
//! round 2: ...) and the median of the rounds is printed:
//!
//! - throughput: every connection's bytes over the wall time from the first send to the last
//!   receiver's end of stream;
//! - CPU per GiB, twice: the whole process (user + system of `getrusage(RUSAGE_SELF)` before and
//!   after, so receivers included — they are the same for both), and the senders alone
//!   (`getrusage(RUSAGE_THREAD)` at the end of each sending thread: the group's one thread, or the
//!   sum over std's threads);
//! - system calls per MiB made by the senders (the group's `totals().kernel_entries`: every
//!   `io_uring_enter` of its shared ring; std: the writers' `send`/`shutdown` count).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fast_io::{Availability, Config, SocketBackend, StdBackend};
use fast_io_uring::UringBackend;

const BLOCK: usize = 64 << 10;

fn usage(who: i32) -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we own; an all-zero `rusage` is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

struct Run {
    wall: Duration,
    process_cpu: Duration,
    sender_cpu: Duration,
    sender_syscalls: u64,
}

/// `n` connected loopback pairs, and a receiving thread per server end that counts bytes until
/// end of stream.
fn connections(n: usize) -> (Vec<TcpStream>, Vec<JoinHandle<u64>>) {
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
            loop {
                let n = server.read(&mut buf).unwrap();
                if n == 0 {
                    return got;
                }
                got += n as u64;
            }
        }));
    }
    (clients, receivers)
}

fn finish(receivers: Vec<JoinHandle<u64>>, each: u64) {
    for receiver in receivers {
        assert_eq!(
            receiver.join().unwrap(),
            each,
            "a receiver got the wrong count"
        );
    }
}

fn run_std(n: usize, each: u64, block: &Arc<Vec<u8>>) -> Run {
    let (clients, receivers) = connections(n);
    let cpu = usage(libc::RUSAGE_SELF);
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
                let stats = writer.stats();
                (usage(libc::RUSAGE_THREAD), stats.kernel_entries)
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
    finish(receivers, each);
    Run {
        wall: started.elapsed(),
        process_cpu: usage(libc::RUSAGE_SELF) - cpu,
        sender_cpu,
        sender_syscalls,
    }
}

fn run_group(n: usize, each: u64, block: &Arc<Vec<u8>>) -> Run {
    let (clients, receivers) = connections(n);
    let mut group = UringBackend.group(&Config::default()).unwrap();
    let members: Vec<_> = clients
        .iter()
        .map(|client| group.join(client.as_fd()).unwrap())
        .collect();
    let block = block.clone();
    let cpu = usage(libc::RUSAGE_SELF);
    let started = Instant::now();
    let sender = thread::spawn(move || {
        let thread_cpu = usage(libc::RUSAGE_THREAD);
        let entries = group.totals().kernel_entries;
        let mut sent = vec![0u64; members.len()];
        let mut rounds = 0;
        loop {
            let mut more = false;
            for (member, sent) in members.iter().zip(&mut sent) {
                if *sent < each {
                    let n = BLOCK.min((each - *sent) as usize);
                    *sent += group.write(*member, &block[..n]).unwrap() as u64;
                    more = true;
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
        (usage(libc::RUSAGE_THREAD) - thread_cpu, calls, rounds)
    });
    let (sender_cpu, sender_syscalls, rounds) = sender.join().unwrap();
    finish(receivers, each);
    let wall = started.elapsed();
    drop(clients);
    eprintln!("  group: {rounds} rounds, {sender_syscalls} kernel entries");
    Run {
        wall,
        process_cpu: usage(libc::RUSAGE_SELF) - cpu,
        sender_cpu,
        sender_syscalls,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().unwrap());
    let n = args.next().unwrap_or(256) as usize;
    let each = args.next().unwrap_or(4) << 20;
    let rounds = args.next().unwrap_or(3) as usize;
    if let Availability::Unavailable(reason) = UringBackend.availability() {
        println!("skipped: {reason}");
        return;
    }
    let block: Arc<Vec<u8>> = Arc::new((0..BLOCK).map(|i| (i * 7 + i / 251) as u8).collect());
    let total = n as u64 * each;
    let gib = total as f64 / (1u64 << 30) as f64;
    let mib = total as f64 / (1u64 << 20) as f64;
    println!(
        "{n} connections x {} MiB = {:.2} GiB per run, {rounds} interleaved rounds, medians",
        each >> 20,
        gib
    );
    let mut results: Vec<(&str, Vec<Run>)> = vec![
        ("std thread/conn", Vec::new()),
        ("uring group, 1 thread", Vec::new()),
    ];
    for round in 0..rounds {
        eprintln!("round {}", round + 1);
        results[0].1.push(run_std(n, each, &block));
        results[1].1.push(run_group(n, each, &block));
    }
    println!(
        "{:<24} {:>10} {:>16} {:>16} {:>16}",
        "contender", "GiB/s", "process CPU s/GiB", "sender CPU s/GiB", "sender calls/MiB"
    );
    for (name, runs) in &results {
        let gbps = median(runs.iter().map(|r| gib / r.wall.as_secs_f64()).collect());
        let process = median(
            runs.iter()
                .map(|r| r.process_cpu.as_secs_f64() / gib)
                .collect(),
        );
        let sender = median(
            runs.iter()
                .map(|r| r.sender_cpu.as_secs_f64() / gib)
                .collect(),
        );
        let calls = median(
            runs.iter()
                .map(|r| r.sender_syscalls as f64 / mib)
                .collect(),
        );
        println!("{name:<24} {gbps:>10.2} {process:>16.3} {sender:>16.3} {calls:>16.2}");
    }
}
