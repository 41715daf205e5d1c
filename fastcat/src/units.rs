//! Human units for the summary: sizes in B, KiB, MiB, GiB or TiB, rates scaled the same way per
//! second, and durations in µs, ms or s, each with three significant digits, so a slow transfer
//! reads "12.3 KiB/s" rather than "0.00 GB/s".

/// The binary units, each 1024 times the one before.
const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];

/// `value` bytes in the largest unit that keeps it at 1 or more: `512 B`, `3.00 MiB`.
pub fn size(bytes: u64) -> String {
    scaled(bytes as f64, "")
}

/// A rate of `bytes_per_sec`, scaled like [`size`]: `12.3 KiB/s`, `2.41 GiB/s`.
pub fn rate(bytes_per_sec: f64) -> String {
    scaled(bytes_per_sec, "/s")
}

/// A duration of `secs` seconds: `512 µs`, `12.3 ms`, `1.50 s`, `93.2 s`.
pub fn duration(secs: f64) -> String {
    if secs < 1e-3 {
        format!("{} µs", three_digits(secs * 1e6))
    } else if secs < 1.0 {
        format!("{} ms", three_digits(secs * 1e3))
    } else {
        format!("{} s", three_digits(secs))
    }
}

fn scaled(value: f64, suffix: &str) -> String {
    let mut value = value.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        // Whole bytes have no fractions to show.
        return format!("{value:.0} B{suffix}");
    }
    format!("{} {}{suffix}", three_digits(value), UNITS[unit])
}

/// `value` with three significant digits (at least the integer part): 1.23, 12.3, 123, 1023.
fn three_digits(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_the_largest_unit_that_stays_above_one() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.00 KiB");
        assert_eq!(size((3 << 20) + 123), "3.00 MiB");
        assert_eq!(size(48 << 20), "48.0 MiB");
        assert_eq!(size(1 << 30), "1.00 GiB");
        assert_eq!(size(300 << 30), "300 GiB");
        assert_eq!(size(u64::MAX), "16777216 TiB");
    }

    #[test]
    fn slow_rates_are_not_rounded_to_zero() {
        assert_eq!(rate(0.0), "0 B/s");
        assert_eq!(rate(500.0), "500 B/s");
        assert_eq!(rate(12.6 * 1024.0), "12.6 KiB/s");
        assert_eq!(rate(2.5 * (1u64 << 30) as f64), "2.50 GiB/s");
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(duration(0.000_512), "512 µs");
        assert_eq!(duration(0.0123), "12.3 ms");
        assert_eq!(duration(1.5), "1.50 s");
        assert_eq!(duration(93.24), "93.2 s");
    }
}
