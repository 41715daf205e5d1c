//! io_uring against the std baseline (and epoll when it is available), side by side in one run.
//!
//! `cargo run --release -p fast_io_uring --example uring_vs_std -- [rounds] [bulk MiB]`
//!
//! Two scenarios over loopback TCP, each a writer thread and a reader thread of the same
//! backend: `bulk` (default 1 GiB in 64 KiB `write_all`s) and `small` (100 000 writes of 64 bytes,
//! then `flush`). Runs are interleaved (round 1: std, io_uring, epoll; round 2: ...), so a
//! machine that slows down mid-run slows every backend alike, and the median of the rounds is
//! printed with the CPU time (user + system of the whole process, from `getrusage`) and the
//! writer's and reader's kernel entries per MiB.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use fast_io::{Availability, Config, SocketBackend, Stats, StdBackend};
use fast_io_poll::PollBackend;
use fast_io_uring::UringBackend;

#[derive(Clone, Copy)]
enum Scenario {
    /// `total` bytes in `write_all`s of `block` bytes.
    Bulk { total: u64, block: usize },
    /// `count` writes of `size` bytes, then one flush.
    Small { count: u64, size: usize },
}

impl Scenario {
    fn total(self) -> u64 {
        match self {
            Scenario::Bulk { total, .. } => total,
            Scenario::Small { count, size } => count * size as u64,
        }
    }

    fn name(self) -> String {
        match self {
            Scenario::Bulk { total, block } => {
                format!("bulk {} MiB in {} KiB writes", total >> 20, block >> 10)
            }
            Scenario::Small { count, size } => format!("{count} writes of {size} B + flush"),
        }
    }
}

struct Run {
    wall: Duration,
    cpu: Duration,
    writer: Stats,
    reader: Stats,
}

fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we own; an all-zero `rusage` is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn run(backend: &dyn SocketBackend, scenario: Scenario) -> Run {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let config = Config::default();
    let mut writer = backend.writer(client.as_fd(), &config).unwrap();
    let mut reader = backend.reader(server.as_fd(), &config).unwrap();
    let total = scenario.total();
    let cpu_before = cpu_time();
    let started = Instant::now();
    let receiving = thread::spawn(move || {
        let mut buf = vec![0u8; 256 << 10];
        let mut got = 0u64;
        while got < total {
            let n = reader.read(&mut buf).unwrap();
            assert!(n > 0, "end of stream after {got} of {total} bytes");
            got += n as u64;
        }
        reader.stats()
    });
    match scenario {
        Scenario::Bulk { total, block } => {
            let data: Vec<u8> = (0..block).map(|i| i as u8).collect();
            let mut sent = 0u64;
            while sent < total {
                let n = block.min((total - sent) as usize);
                writer.write_all(&data[..n]).unwrap();
                sent += n as u64;
            }
        }
        Scenario::Small { count, size } => {
            let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
            for _ in 0..count {
                writer.write_all(&data).unwrap();
            }
        }
    }
    writer.flush().unwrap();
    let reader_stats = receiving.join().unwrap();
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    Run {
        wall,
        cpu,
        writer: writer.stats(),
        reader: reader_stats,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(5, |a| a.parse().expect("rounds"));
    let bulk_mib: u64 = args.next().map_or(1024, |a| a.parse().expect("bulk MiB"));
    let mut backends: Vec<Box<dyn SocketBackend>> = vec![Box::new(StdBackend)];
    for candidate in [
        Box::new(UringBackend) as Box<dyn SocketBackend>,
        Box::new(PollBackend),
    ] {
        match candidate.availability() {
            Availability::Available => backends.push(candidate),
            Availability::Unavailable(reason) => {
                println!("{}: skipped: {reason}", candidate.kind());
            }
        }
    }
    let scenarios = [
        Scenario::Bulk {
            total: bulk_mib << 20,
            block: 64 << 10,
        },
        Scenario::Small {
            count: 100_000,
            size: 64,
        },
    ];
    for scenario in scenarios {
        let mut runs: Vec<Vec<Run>> = backends.iter().map(|_| Vec::new()).collect();
        for _ in 0..rounds {
            for (i, backend) in backends.iter().enumerate() {
                runs[i].push(run(&**backend, scenario));
            }
        }
        let mib = scenario.total() as f64 / (1 << 20) as f64;
        println!(
            "\n{} — median of {rounds} interleaved rounds",
            scenario.name()
        );
        println!(
            "{:<9} {:>10} {:>9} {:>11} {:>12} {:>12} {:>9} {:>9}",
            "backend",
            "MB/s",
            "vs std",
            "CPU s/GiB",
            "w entries/MiB",
            "r entries/MiB",
            "w ops",
            "w waits"
        );
        let mut std_rate = 0.0;
        for (backend, runs) in backends.iter().zip(&runs) {
            let rate = median(
                runs.iter()
                    .map(|r| scenario.total() as f64 / r.wall.as_secs_f64() / 1e6)
                    .collect(),
            );
            if backend.kind() == fast_io::BackendKind::Std {
                std_rate = rate;
            }
            let cpu = median(
                runs.iter()
                    .map(|r| r.cpu.as_secs_f64() * 1024.0 / mib)
                    .collect(),
            );
            let w_entries = median(
                runs.iter()
                    .map(|r| r.writer.kernel_entries as f64 / mib)
                    .collect(),
            );
            let r_entries = median(
                runs.iter()
                    .map(|r| r.reader.kernel_entries as f64 / mib)
                    .collect(),
            );
            let ops = median(runs.iter().map(|r| r.writer.ops_submitted as f64).collect());
            let waits = median(
                runs.iter()
                    .map(|r| r.writer.readiness_waits as f64)
                    .collect(),
            );
            println!(
                "{:<9} {:>10.0} {:>8.2}x {:>11.3} {:>12.2} {:>12.2} {:>9.0} {:>9.0}",
                backend.kind().name(),
                rate,
                rate / std_rate,
                cpu,
                w_entries,
                r_entries,
                ops,
                waits
            );
        }
    }
}
