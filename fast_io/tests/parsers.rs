//! Property tests of what parses user input: `Policy::from_str` and `Config::validate` never
//! panic, accept exactly what they document, and say what they reject. (A proptest with many
//! cases stands in for `cargo fuzz`, which needs a nightly toolchain this machine does not have.)

use std::time::Duration;

use fast_io::{
    Config, Error, MAX_BATCH_BYTES, MAX_READ_AHEAD, MAX_RING_ENTRIES, MIN_DUPLEX_INPUT, Policy,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Any text either names a policy (ignoring case and surrounding space) or is rejected with
    /// the accepted names; never a panic, never a silent default.
    #[test]
    fn policy_parsing_accepts_exactly_the_names(text in ".{0,24}") {
        let names = ["auto", "io_uring", "epoll", "std"];
        let wanted = text.trim().to_ascii_lowercase();
        match text.parse::<Policy>() {
            Ok(policy) => {
                prop_assert!(names.contains(&wanted.as_str()), "{text:?} parsed as {policy}");
                prop_assert_eq!(policy.to_string(), wanted);
            }
            Err(err) => {
                prop_assert!(!names.contains(&wanted.as_str()), "{text:?} was rejected: {err}");
                let is_unknown_policy = matches!(err, Error::UnknownPolicy { .. });
                prop_assert!(is_unknown_policy);
                prop_assert!(err.to_string().contains("auto, io_uring, epoll, std"));
            }
        }
    }

    /// Mixed-case and padded spellings of the names parse to the same policy.
    #[test]
    fn policy_names_parse_in_any_case(index in 0usize..4, upper in any::<u8>(), pad in "[ \t]{0,3}") {
        let policy = Policy::ALL[index];
        let name: String = policy
            .to_string()
            .chars()
            .enumerate()
            .map(|(i, c)| if upper >> (i % 8) & 1 == 1 { c.to_ascii_uppercase() } else { c })
            .collect();
        prop_assert_eq!(format!("{pad}{name}{pad}").parse::<Policy>().unwrap(), policy);
    }

    /// Any config is accepted exactly when every value is in its documented range.
    #[test]
    fn config_validation_matches_the_documented_ranges(
        gate_nanos in prop_oneof![Just(0u64), 1u64..10_000_000_000],
        write_nanos in proptest::option::of(prop_oneof![Just(0u64), 1u64..10_000_000_000]),
        read_nanos in proptest::option::of(prop_oneof![Just(0u64), 1u64..10_000_000_000]),
        batch in prop_oneof![Just(0usize), 1usize..=4096, Just(MAX_BATCH_BYTES), Just(MAX_BATCH_BYTES + 1), any::<usize>()],
        ops in prop_oneof![Just(0usize), 1usize..1024, any::<usize>()],
        entries in prop_oneof![Just(0u32), 1u32..=MAX_RING_ENTRIES, any::<u32>()],
        ahead in prop_oneof![Just(0usize), 1usize..=(1 << 20), Just(MAX_READ_AHEAD), Just(MAX_READ_AHEAD + 1), any::<usize>()],
        input in prop_oneof![Just(0usize), 1usize..=(1 << 20), Just(MIN_DUPLEX_INPUT), Just(MAX_READ_AHEAD), Just(MAX_READ_AHEAD + 1), any::<usize>()],
        idle_nanos in proptest::option::of(prop_oneof![Just(0u64), 1u64..10_000_000_000]),
    ) {
        let config = Config {
            write_deadline: write_nanos.map(Duration::from_nanos),
            read_deadline: read_nanos.map(Duration::from_nanos),
            gate_slice: Duration::from_nanos(gate_nanos),
            batch_bytes: batch,
            max_ops_per_submit: ops,
            ring_entries: entries,
            read_ahead: ahead,
            duplex_input: input,
            idle_timeout: idle_nanos.map(Duration::from_nanos),
            ..Config::default()
        };
        let valid = gate_nanos > 0
            && write_nanos != Some(0)
            && read_nanos != Some(0)
            && (1..=MAX_BATCH_BYTES).contains(&batch)
            && ops > 0
            && (1..=MAX_RING_ENTRIES).contains(&entries)
            && ahead <= MAX_READ_AHEAD
            && (MIN_DUPLEX_INPUT..=MAX_READ_AHEAD).contains(&input)
            && idle_nanos != Some(0);
        match config.validate() {
            Ok(()) => prop_assert!(valid, "{config:?} was accepted"),
            Err(err) => {
                prop_assert!(!valid, "{config:?} was rejected: {err}");
                prop_assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            }
        }
    }
}
