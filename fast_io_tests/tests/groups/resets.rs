//! Group resets: a connection the peer reset before it joined, with its bytes still queued, may
//! join, delivers those bytes and then reports the reset, for that member (C9, C8, G5). One body
//! per test, generic over the backend (from its [`Trial`]); `main.rs` runs it once per backend
//! that has groups.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use fast_io::{Config, Received};
use fast_io_tests::fixtures::Transport;
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::reset_with_bytes_queued;

use crate::rules::new_group;

/// **G5** (a member's failure is reported for that member, and keeps being reported), with C9
/// (a connection reset with bytes queued is connected), C8 and C1: over TCP v4 and v6, the peer
/// sends 64 KiB and resets the connection before the socket joins; the test waits until the
/// bytes are queued and the reset has arrived. The socket must be able to join; group reads
/// (with a 5 s read deadline, so a lost reset fails rather than hangs) report its 64 KiB byte
/// for byte, then `Failed` with `ConnectionReset`, and the next read `Failed` with
/// `ConnectionReset` again.
pub fn g5_reset_after_data(t: &Trial) {
    const SENT: usize = 64 * 1024;
    let config = Config {
        read_deadline: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    for transport in [Transport::Tcp4, Transport::Tcp6] {
        let label = format!("{transport} member joined after the reset");
        let pattern = Pattern::new(94);
        let sock = reset_with_bytes_queued(transport, &pattern.bytes(0, SENT));
        let mut group = new_group(t, &config);
        let member = match group.join(sock.as_fd()) {
            Ok(member) => member,
            Err(err) => panic!(
                "{label}: C9: 64 KiB of a reset connection are still queued, so it counts as \
                 connected, yet it could not join: {err}"
            ),
        };
        let mut expect = Expect::new(label.clone(), pattern);
        let mut failures = Vec::new();
        while failures.len() < 2 {
            group
                .read(&mut |who, received| {
                    assert_eq!(who, member, "{label}: the group's only member");
                    match received {
                        Received::Data(bytes) => {
                            assert!(failures.is_empty(), "{label}: data after the member failed");
                            expect.check(bytes);
                        }
                        Received::Eof => panic!(
                            "{label}: C7/C8: end of stream after {} bytes, but the peer reset \
                             the connection",
                            expect.received()
                        ),
                        Received::Failed(err) => failures.push(err.kind()),
                    }
                })
                .unwrap_or_else(|err| {
                    panic!(
                        "{label}: the group read failed after {} of {SENT} bytes: {err}",
                        expect.received()
                    )
                });
        }
        assert_eq!(
            expect.received(),
            SENT as u64,
            "{label}: C8: every queued byte comes before the reset"
        );
        assert_eq!(
            failures,
            [io::ErrorKind::ConnectionReset; 2],
            "{label}: G5/C7: the reset, reported and then reported again"
        );
        drop(group);
    }
}
