//! Telemetry: a sliding window of probe outcomes per target, and the consensus of a link's targets.
//!
//! Latency is the median RTT (one slow reply does not move it), jitter the mean absolute
//! difference of consecutive RTTs (RFC 3550's |D|, averaged over the window instead of filtered),
//! loss the share of lost probes among the resolved ones: a probe still in flight is not in the
//! window yet. Everything is integer: microseconds and basis points (1/100 of a percent).

use super::limits::{MAX_TARGETS, MAX_WINDOW};

/// Marks a lost probe in a window.
const LOST: u32 = u32::MAX;

/// Basis points in 100 %.
pub const FULL_LOSS: u32 = 10_000;

/// What a window, or a link's set of targets, says about the path.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Telemetry {
    /// Median round-trip time, µs.
    pub latency_us: u32,
    /// Mean absolute difference of consecutive RTTs, µs.
    pub jitter_us: u32,
    /// Lost / (answered + lost), in basis points (10 000 = 100 %).
    pub loss_bp: u32,
}

/// The last N outcomes of one target, oldest first; allocated once, never per probe.
#[derive(Clone, Debug)]
pub struct Window {
    samples: Box<[u32]>,
    len: usize,
    /// Where the next outcome goes.
    next: usize,
}

impl Window {
    pub fn new(capacity: usize) -> Window {
        let capacity = capacity.clamp(1, MAX_WINDOW);
        Window { samples: vec![LOST; capacity].into_boxed_slice(), len: 0, next: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.samples.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
    }

    /// Forgets everything but the newest outcome, and that only if it is a reply: a fresh start
    /// that keeps the reply that proved the path alive.
    pub fn restart(&mut self) {
        let newest = self.outcomes().last().flatten();
        self.clear();
        if let Some(rtt) = newest {
            self.push(rtt);
        }
    }

    pub fn push_reply(&mut self, rtt_us: u64) {
        // An RTT this long is a lost probe in all but name; LOST stays unambiguous.
        self.push(rtt_us.min(u64::from(LOST - 1)) as u32);
    }

    pub fn push_lost(&mut self) {
        self.push(LOST);
    }

    fn push(&mut self, sample: u32) {
        self.samples[self.next] = sample;
        self.next = (self.next + 1) % self.samples.len();
        self.len = (self.len + 1).min(self.samples.len());
    }

    /// Outcomes from oldest to newest: `Some(rtt)` or `None` for a lost probe.
    pub fn outcomes(&self) -> impl Iterator<Item = Option<u32>> + '_ {
        let start = (self.next + self.samples.len() - self.len) % self.samples.len();
        (0..self.len).map(move |i| {
            let sample = self.samples[(start + i) % self.samples.len()];
            (sample != LOST).then_some(sample)
        })
    }

    /// The same outcomes in a window of another size, keeping the newest.
    pub fn resized(&self, capacity: usize) -> Window {
        let mut window = Window::new(capacity);
        let skip = self.len.saturating_sub(window.capacity());
        for outcome in self.outcomes().skip(skip) {
            window.push(outcome.unwrap_or(LOST));
        }
        window
    }

    /// `None` while no probe in the window was answered: there is no latency to speak of.
    pub fn telemetry(&self) -> Option<Telemetry> {
        let mut rtts = [0u32; MAX_WINDOW];
        let mut answered = 0;
        let mut jitter_sum: u64 = 0;
        let mut previous: Option<u32> = None;
        for rtt in self.outcomes().flatten() {
            rtts[answered] = rtt;
            answered += 1;
            if let Some(previous) = previous {
                jitter_sum += u64::from(rtt.abs_diff(previous));
            }
            previous = Some(rtt);
        }
        if answered == 0 {
            return None;
        }
        let lost = self.len - answered;
        Some(Telemetry {
            latency_us: median(&mut rtts[..answered]),
            jitter_us: if answered > 1 { (jitter_sum / (answered as u64 - 1)) as u32 } else { 0 },
            loss_bp: (lost as u32 * FULL_LOSS) / self.len as u32,
        })
    }
}

/// Median of a small slice (mean of the middle two for an even count); sorts in place.
fn median(values: &mut [u32]) -> u32 {
    values.sort_unstable();
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        ((u64::from(values[mid - 1]) + u64::from(values[mid])) / 2) as u32
    }
}

/// A link's telemetry from its targets' telemetry: the median of each figure, so one target that
/// misbehaves (filtered, rate-limited, far away) cannot decide for the whole link on its own.
pub fn consensus(targets: impl Iterator<Item = Telemetry>) -> Option<Telemetry> {
    let mut latency = [0u32; MAX_TARGETS];
    let mut jitter = [0u32; MAX_TARGETS];
    let mut loss = [0u32; MAX_TARGETS];
    let mut count = 0;
    for telemetry in targets.take(MAX_TARGETS) {
        latency[count] = telemetry.latency_us;
        jitter[count] = telemetry.jitter_us;
        loss[count] = telemetry.loss_bp;
        count += 1;
    }
    (count > 0).then(|| Telemetry {
        latency_us: median(&mut latency[..count]),
        jitter_us: median(&mut jitter[..count]),
        loss_bp: median(&mut loss[..count]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(outcomes: &[Option<u32>]) -> Window {
        let mut w = Window::new(outcomes.len());
        for outcome in outcomes {
            match outcome {
                Some(rtt) => w.push_reply(u64::from(*rtt)),
                None => w.push_lost(),
            }
        }
        w
    }

    #[test]
    fn empty_or_all_lost_window_has_no_telemetry() {
        assert_eq!(Window::new(4).telemetry(), None);
        assert_eq!(window(&[None, None]).telemetry(), None);
    }

    #[test]
    fn latency_is_a_median_robust_to_one_outlier() {
        let t = window(&[Some(10_000), Some(12_000), Some(900_000), Some(11_000), Some(13_000)])
            .telemetry()
            .unwrap();
        assert_eq!(t.latency_us, 12_000);
        let even = window(&[Some(10_000), Some(20_000)]).telemetry().unwrap();
        assert_eq!(even.latency_us, 15_000);
    }

    #[test]
    fn jitter_is_mean_absolute_difference_of_consecutive_replies() {
        // |12-10| + |8-12| + |8-8| = 6 over 3 differences = 2 ms; the lost probe is skipped.
        let t = window(&[Some(10_000), Some(12_000), None, Some(8_000), Some(8_000)])
            .telemetry()
            .unwrap();
        assert_eq!(t.jitter_us, 2_000);
        assert_eq!(window(&[Some(10_000)]).telemetry().unwrap().jitter_us, 0);
    }

    #[test]
    fn loss_counts_only_resolved_probes() {
        let t = window(&[Some(1), None, Some(1), None]).telemetry().unwrap();
        assert_eq!(t.loss_bp, 5_000);
        let mut w = Window::new(10);
        w.push_reply(5);
        w.push_lost();
        w.push_lost();
        // Three resolved probes in a window of ten: 2/3, not 2/10.
        assert_eq!(w.telemetry().unwrap().loss_bp, 6_666);
    }

    #[test]
    fn window_slides_and_resizes_keeping_the_newest() {
        let mut w = Window::new(3);
        for rtt in [1, 2, 3, 4, 5] {
            w.push_reply(rtt);
        }
        assert_eq!(w.outcomes().collect::<Vec<_>>(), [Some(3), Some(4), Some(5)]);
        let smaller = w.resized(2);
        assert_eq!(smaller.outcomes().collect::<Vec<_>>(), [Some(4), Some(5)]);
        let larger = w.resized(5);
        assert_eq!(larger.outcomes().collect::<Vec<_>>(), [Some(3), Some(4), Some(5)]);
        w.clear();
        assert!(w.is_empty());
    }

    #[test]
    fn restart_keeps_only_a_newest_reply() {
        let mut w = window(&[None, None, Some(7)]);
        w.restart();
        assert_eq!(w.outcomes().collect::<Vec<_>>(), [Some(7)]);
        let mut w = window(&[Some(7), None]);
        w.restart();
        assert!(w.is_empty());
    }

    #[test]
    fn consensus_is_the_median_of_targets() {
        let a = Telemetry { latency_us: 10, jitter_us: 1, loss_bp: 0 };
        let b = Telemetry { latency_us: 30, jitter_us: 9, loss_bp: 10_000 };
        let c = Telemetry { latency_us: 20, jitter_us: 2, loss_bp: 100 };
        assert_eq!(
            consensus([a, b, c].into_iter()),
            Some(Telemetry { latency_us: 20, jitter_us: 2, loss_bp: 100 })
        );
        assert_eq!(consensus(std::iter::empty()), None);
    }
}
