//! Limits: every `Duration` a [`Config`] can hold, up to `Duration::MAX`, is either refused by
//! name or taken as it is, without a panic, an overflow or a spin (C9, with C5). One body per
//! test, generic over the backend (from its [`Trial`]); `main.rs` runs it once per backend.

use std::io::Write;
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fast_io::{BackendKind, Config, Error, MAX_GATE_SLICE, Stats};
use fast_io_tests::fixtures::{
    Transport, blocking, drain, pair, receive, saturate, shortages_injected, small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{join, spawn};

/// How long the peer of the waiting calls keeps them waiting.
const PEER_DELAY: Duration = Duration::from_millis(300);

/// The most system calls a call may make while it waits [`PEER_DELAY`] in slices of 100 ms: a
/// few per slice is what waiting costs, and a backend that turned a huge duration into a zero
/// timeout would spin through thousands in that time.
const NO_SPIN: u64 = 1000;

/// Whether `err` is the refusal of a too-long `gate_slice`: `InvalidInput`, naming the field and
/// its limit.
fn refuses_gate_slice(err: &Error) -> bool {
    let text = err.to_string();
    matches!(err, Error::InvalidConfig(_))
        && err.kind() == std::io::ErrorKind::InvalidInput
        && text.contains("gate_slice")
        && (text.contains("MAX_GATE_SLICE") || text.contains("3600"))
}

/// **C9** (bad input: every `Duration` up to `Duration::MAX` is refused by name or taken as it
/// is), with C5 and C1. `gate_slice` above [`MAX_GATE_SLICE`] (just above, and `Duration::MAX`)
/// is refused by `writer()`, `reader()` and `group()` with `InvalidInput` naming the field and
/// its limit; `MAX_GATE_SLICE` itself is taken, and such a reader still wakes when data arrives
/// (not checked under injected shortages, each of which would wait out an hour-long slice).
/// `write_deadline` and `read_deadline` of `Duration::MAX` are taken and never pass: a writer on
/// a full socket whose peer drains after 0.3 s completes, and so does a read that waits 0.3 s for
/// data, each byte for byte and without spinning (its system calls are counted). No call panics.
pub fn c9_duration_limits(t: &Trial) {
    let backend = t.backend();
    let (client, server) = pair(Transport::Tcp4);
    for (what, gate_slice) in [
        ("gate_slice Duration::MAX", Duration::MAX),
        (
            "gate_slice one nanosecond above MAX_GATE_SLICE",
            MAX_GATE_SLICE + Duration::from_nanos(1),
        ),
    ] {
        let config = Config {
            gate_slice,
            ..Config::default()
        };
        let refusals = [
            ("writer", backend.writer(client.as_fd(), &config).map(drop)),
            ("reader", backend.reader(server.as_fd(), &config).map(drop)),
            ("group", backend.group(&config).map(drop)),
        ];
        for (side, result) in refusals {
            match result {
                Err(err) if refuses_gate_slice(&err) => {}
                Err(err) => panic!(
                    "C9: {side} with {what}: expected InvalidInput naming gate_slice and its \
                     limit, got {err:?}"
                ),
                Ok(()) => panic!("C9: a {side} was built with {what}"),
            }
        }
    }

    // The longest slice allowed is taken, and readiness, not the slice, ends a wait.
    let longest = Config {
        gate_slice: MAX_GATE_SLICE,
        ..Config::default()
    };
    match (backend.group(&longest), backend.kind()) {
        (Ok(_), BackendKind::IoUring | BackendKind::Epoll) => {}
        (Err(err), BackendKind::Std) if err.kind() == std::io::ErrorKind::Unsupported => {}
        (outcome, kind) => panic!("C9: {kind}: group() with MAX_GATE_SLICE: {outcome:?}"),
    }
    if shortages_injected() {
        // A shortage is waited out for one gate slice (C4): an hour, with this slice.
        println!(
            "not applicable under injected shortages: transfers with MAX_GATE_SLICE (each \
             shortage would wait an hour)"
        );
    } else {
        let pattern = Pattern::new(90);
        let mut writer = t.writer(&*backend, &client, &longest, "writer, MAX_GATE_SLICE");
        let mut reader = t.reader(&*backend, &server, &longest, "reader, MAX_GATE_SLICE");
        let mut expect = Expect::new("MAX_GATE_SLICE payload", pattern);
        writer
            .write_all(&pattern.bytes(0, 1000))
            .and_then(|()| writer.flush())
            .expect("C9: a writer with MAX_GATE_SLICE writes");
        receive(&mut *reader, &mut expect, 1000);
        let later = spawn("c9 late writer", move || {
            thread::sleep(PEER_DELAY);
            writer
                .write_all(&pattern.bytes(1000, 1000))
                .and_then(|()| writer.flush())
                .expect("C9: a writer with MAX_GATE_SLICE writes");
            writer
        });
        receive(&mut *reader, &mut expect, 1000);
        let writer = join(later);
        no_spin("reader with MAX_GATE_SLICE", reader.stats());
        drop((writer, reader, client, server));
    }

    // Deadlines of Duration::MAX are taken, and never pass.
    let forever = Config {
        write_deadline: Some(Duration::MAX),
        read_deadline: Some(Duration::MAX),
        ..Config::default()
    };
    let (client, server) = small_pair(Transport::Tcp4);
    let prefill = saturate(&client);
    let pattern = Pattern::new(91);
    let mut writer = t.writer(
        &*backend,
        &client,
        &forever,
        "writer, Duration::MAX deadline",
    );
    let peer = spawn("c9 delayed peer", move || {
        thread::sleep(PEER_DELAY);
        let mut peer = blocking(&server);
        drain(&mut peer, prefill);
        let mut expect = Expect::new("payload after a Duration::MAX write", pattern);
        receive(&mut peer, &mut expect, 64 * 1024);
        server
    });
    writer
        .write_all(&pattern.bytes(0, 64 * 1024))
        .and_then(|()| writer.flush())
        .expect("C5/C9: a write deadline of Duration::MAX never passes");
    let server = join(peer);
    no_spin("writer with a Duration::MAX deadline", writer.stats());
    drop(writer);

    let mut reader = t.reader(
        &*backend,
        &server,
        &forever,
        "reader, Duration::MAX deadline",
    );
    let pattern = Pattern::new(92);
    let late = spawn("c9 delayed sender", move || {
        thread::sleep(PEER_DELAY);
        (&client)
            .write_all(&pattern.bytes(0, 1000))
            .expect("the peer writes");
        client
    });
    let mut expect = Expect::new("payload of a Duration::MAX read", pattern);
    receive(&mut *reader, &mut expect, 1000);
    let client = join(late);
    no_spin("reader with a Duration::MAX deadline", reader.stats());
    drop((reader, client, server));
}

/// A call that waited [`PEER_DELAY`] made a handful of system calls, not a spin's thousands.
fn no_spin(what: &str, stats: Stats) {
    assert!(
        stats.kernel_entries < NO_SPIN,
        "C9: the {what} waited {PEER_DELAY:?} and made {} system calls: a huge duration turned \
         into a busy loop: {stats}",
        stats.kernel_entries
    );
}
