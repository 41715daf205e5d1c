//! Deadlines (G4, C5): a flush that reaches its write deadline returns the members still pending
//! with exact counts, and a read with nothing to read times out at its read deadline, then
//! reports data and end of stream. Slices are counted as a lone writer or reader counts them
//! (C15), and no gate outlives the call that timed out.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use fast_io::{Config, Error, Member, Received, SocketGroup};

use crate::support::{check, fill, guard, pair, saturate, uring};
use crate::{drain, group, serial};

/// G4: at the write deadline a flush returns the members still pending, with the bytes each had
/// accepted during that flush and the bytes still buffered; the others completed meanwhile.
#[test]
fn g4_deadline_reports_pending() {
    const PAYLOAD: usize = 60_000;
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(30), || {
        let deadline = Duration::from_millis(200);
        let config = Config {
            write_deadline: Some(deadline),
            ..Config::default()
        };
        let mut group = group(&config);
        let mut stuck = Vec::new();
        let mut free = Vec::new();
        for i in 0..6 {
            let (client, server) = pair(Some(4096));
            let member = group.join(client.as_fd()).unwrap();
            if i % 2 == 0 {
                let prefill = saturate(&client);
                stuck.push((member, client, server, prefill));
            } else {
                free.push((member, client, drain(server, 0)));
            }
        }
        let mut payload = vec![0u8; PAYLOAD];
        fill(&mut payload, 0);
        for &(member, ..) in &stuck {
            assert_eq!(group.write(member, &payload).unwrap(), PAYLOAD);
        }
        for (member, ..) in &free {
            assert_eq!(group.write(*member, &payload).unwrap(), PAYLOAD);
        }
        let started = Instant::now();
        let report = group.flush().unwrap();
        let took = started.elapsed();
        assert!(
            took >= deadline - Duration::from_millis(5),
            "returned after {took:?}"
        );
        assert!(
            took < deadline + Duration::from_secs(2),
            "returned after {took:?}"
        );
        assert!(report.failed.is_empty());
        let mut pending: Vec<Member> = report.pending.iter().map(|p| p.member).collect();
        pending.sort();
        let mut expected: Vec<Member> = stuck.iter().map(|s| s.0).collect();
        expected.sort();
        assert_eq!(pending, expected, "{report:?}");
        for p in &report.pending {
            assert_eq!(p.accepted as usize + p.buffered, PAYLOAD, "{p:?}");
            assert_eq!(group.buffered(p.member).unwrap(), p.buffered);
            let stats = group.stats(p.member).unwrap();
            assert_eq!(stats.bytes, p.accepted);
            // C15, as a lone writer counts: 100 ms slices in 200 ms, the second shortened to end
            // at the deadline, so 2 waits and 1 expiry; and a SEND after each of them but the last.
            assert_eq!(
                (stats.readiness_waits, stats.gate_expiries),
                (2, 1),
                "{stats}"
            );
            assert_eq!(stats.ops_submitted, 2, "{stats}");
        }
        for (member, ..) in &free {
            assert_eq!(group.buffered(*member).unwrap(), 0);
        }
        // Every gate ended by the deadline and was reaped: none outlives its flush. Now the stuck
        // peers drain and a flush completes.
        assert_eq!(group.in_flight(), 0, "{group:?}");
        let readers: Vec<_> = stuck
            .iter()
            .map(|(_, _, server, prefill)| drain(server.try_clone().unwrap(), *prefill))
            .collect();
        let started = Instant::now();
        loop {
            let report = group.flush().unwrap();
            if report.is_complete() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{report:?}");
        }
        for (member, ..) in &stuck {
            group.shutdown(*member).unwrap();
        }
        for (member, ..) in &free {
            group.shutdown(*member).unwrap();
        }
        for reader in readers {
            assert_eq!(reader.join().unwrap(), PAYLOAD as u64);
        }
        for (_, _, reader) in free {
            assert_eq!(reader.join().unwrap(), PAYLOAD as u64);
        }
    });
}

/// Reads: a read with nothing to read times out at the read deadline (C5), reports data as it
/// comes, and end of stream after the last byte (C8), again on every read until the member leaves.
#[test]
fn group_read_deadline_data_and_eof() {
    let Some(_) = uring() else { return };
    let _serial = serial();
    guard(Duration::from_secs(30), || {
        let config = Config {
            read_deadline: Some(Duration::from_millis(150)),
            gate_slice: Duration::from_millis(40),
            ..Config::default()
        };
        let mut group = group(&config);
        let (client, server) = pair(None);
        let member = group.join(server.as_fd()).unwrap();
        let started = Instant::now();
        let err = group
            .read(&mut |_, _| panic!("nothing was sent"))
            .unwrap_err();
        assert!(matches!(err, Error::TimedOut { accepted: 0, .. }), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(145));
        // C15, as a lone reader counts: 40 ms slices in 150 ms end at 40, 80, 120 and 150 (the
        // last shortened to the deadline), so 4 waits and 3 expiries, with a RECV before each.
        let stats = group.stats(member).unwrap();
        assert_eq!(
            (stats.readiness_waits, stats.gate_expiries),
            (4, 3),
            "{stats}"
        );
        assert_eq!(stats.ops_submitted, 4, "{stats}");
        // The last slice ended at the deadline and was reaped: no gate outlives a timed-out read.
        assert_eq!(group.in_flight(), 0, "{group:?}");
        let mut block = vec![0u8; 5000];
        fill(&mut block, 0);
        (&client).write_all(&block).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut at = 0u64;
        let mut eofs = 0;
        while eofs < 2 {
            let n = group
                .read(&mut |m, received| {
                    assert_eq!(m, member);
                    match received {
                        Received::Data(data) => {
                            check(data, at);
                            at += data.len() as u64;
                        }
                        Received::Eof => {
                            assert_eq!(at, 5000);
                            eofs += 1;
                        }
                        Received::Failed(err) => panic!("{err}"),
                    }
                })
                .unwrap();
            assert_eq!(n, 1);
        }
        assert_eq!(group.leave(member).unwrap(), 0);
        assert_eq!(group.read(&mut |_, _| panic!("no members")).unwrap(), 0);
    });
}
