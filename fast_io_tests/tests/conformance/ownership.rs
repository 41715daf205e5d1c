//! Ownership across threads: a writer or reader belongs to no thread, so it may be moved to
//! another between calls and keeps working there (C11), and nothing it opened outlives it (C12).
//! One body per test, generic over the backend (from its [`Trial`]); `main.rs` runs it once per
//! backend, alone in its process so the descriptor count is its own.

use fast_io::{Config, SocketReader, SocketWriter};
use fast_io_tests::fixtures::{
    Transport, expect_end, open_descriptors, receive, send_pattern, small_pair,
};
use fast_io_tests::harness::Trial;
use fast_io_tests::pattern::{Expect, Pattern};
use fast_io_tests::peers::{join, spawn};

/// **C11** (a writer or reader may be moved to another thread between calls), with C12 and C1:
/// over 4 KiB TCP buffers, so that gates are armed and waited on, a writer and a reader are
/// handed to a new pair of threads three times in turn; each pair moves 1 MiB, the writer's
/// thread flushing before it hands the writer back. A fourth thread (the test body) then shuts
/// the writer down, sees end of stream on the reader and drops both. Every byte arrives in order,
/// the counters add up, and the process has exactly the descriptors it had before.
pub fn c11_moved_between_threads(t: &Trial) {
    const EACH: u64 = 1 << 20;
    const THREADS: u64 = 3;
    let before = open_descriptors();
    {
        let backend = t.backend();
        let config = Config::default();
        let (client, server) = small_pair(Transport::Tcp4);
        let mut writer: Box<dyn SocketWriter> = t.writer(&*backend, &client, &config, "writer");
        let mut reader: Box<dyn SocketReader> = t.reader(&*backend, &server, &config, "reader");
        drop((client, server));
        let pattern = Pattern::new(111);
        let mut expect = Expect::new("payload across threads", pattern);
        for turn in 0..THREADS {
            let writing = spawn(format!("c11 writer, thread {turn}"), move || {
                send_pattern(&mut *writer, pattern, turn * EACH, EACH, 64 * 1024 + 7)
                    .unwrap_or_else(|err| panic!("C11: writing on thread {turn}: {err}"));
                writer
                    .flush()
                    .unwrap_or_else(|err| panic!("C11: flushing on thread {turn}: {err}"));
                writer
            });
            let reading = spawn(format!("c11 reader, thread {turn}"), move || {
                receive(&mut *reader, &mut expect, EACH);
                (reader, expect)
            });
            writer = join(writing);
            (reader, expect) = join(reading);
        }
        writer
            .shutdown()
            .expect("C11/C13: shutdown on yet another thread");
        expect_end(&mut *reader);
        assert_eq!(
            writer.stats().bytes,
            THREADS * EACH,
            "writer's byte count (C15)"
        );
        assert_eq!(
            reader.stats().bytes,
            THREADS * EACH,
            "reader's byte count (C15)"
        );
        drop((writer, reader, backend));
    }
    let after = open_descriptors();
    assert_eq!(
        after, before,
        "C11/C12: a writer and a reader moved between threads left descriptors behind"
    );
}
