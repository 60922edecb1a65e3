//! Monotonic time as the decision core sees it: handed in by the caller, never read from a clock.

use crate::text::Show;

/// Microseconds, the core's one unit of duration.
pub type Micros = u64;

/// A point on the caller's monotonic clock, in microseconds from an origin the caller chooses
/// (the daemon's start, or zero in a simulation).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);
    /// Later than any real time: the deadline of something that never happens.
    pub const NEVER: Instant = Instant(u64::MAX);

    pub const fn from_micros(micros: u64) -> Instant {
        Instant(micros)
    }

    pub const fn from_millis(millis: u64) -> Instant {
        Instant(millis.saturating_mul(1000))
    }

    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, zero if `earlier` is not earlier.
    // Out of line on the 32-bit router: saturating 64-bit arithmetic is a dozen instructions,
    // inlined at some 70 places it cost 0.7 KB of the packed binary (with `after`).
    #[cfg_attr(target_arch = "mips", inline(never))]
    pub const fn since(self, earlier: Instant) -> Micros {
        self.0.saturating_sub(earlier.0)
    }

    #[cfg_attr(target_arch = "mips", inline(never))]
    pub const fn after(self, duration: Micros) -> Instant {
        Instant(self.0.saturating_add(duration))
    }
}

/// Shows a duration in the unit a person reads best: "850 ms", "3.2 s".
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ShowDuration(pub Micros);

impl Show for ShowDuration {
    fn show(&self, out: &mut String) {
        let millis = self.0 / 1000;
        if millis < 1000 {
            put!(out, millis, " ms");
        } else if millis < 60_000 {
            put!(out, millis / 1000, ".", (millis % 1000) / 100, " s");
        } else {
            put!(out, millis / 1000, " s");
        }
    }
}

crate::display_by_show!(ShowDuration);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t.as_micros(), 5000);
        assert_eq!(Instant::ZERO.since(t), 0);
        assert_eq!(t.since(Instant::ZERO), 5000);
        assert_eq!(Instant::NEVER.after(1), Instant::NEVER);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(ShowDuration(850_000).to_string(), "850 ms");
        assert_eq!(ShowDuration(3_250_000).to_string(), "3.2 s");
        assert_eq!(ShowDuration(1_000_000).to_string(), "1.0 s");
        assert_eq!(ShowDuration(0).to_string(), "0 ms");
        assert_eq!(ShowDuration(90_000_000).to_string(), "90 s");
    }
}
