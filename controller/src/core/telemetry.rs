//! Telemetry: each target's recent probe outcomes, and what they say about the path with how sure
//! they are of it.
//!
//! Latency is the median RTT and jitter the median absolute difference of consecutive RTTs: one
//! 800 ms reply among twenty moves neither (a mean would move by 40 ms). Both come from the paced
//! probes only (bursts stand in only where there is no paced reply yet): a burst sent because
//! something looked wrong must not outvote the quiet seconds around it. Loss is the share of lost probes among the resolved ones, bursts included, over a
//! window three times longer than latency's, because loss needs more samples to be known; a
//! short window of the newest outcomes shows a loss that just began. Every figure comes with
//! bounds: the order statistics around the median (a distribution-free interval), and Wilson's
//! interval for loss. Windows are by time, with a least number of samples, so a link probed
//! rarely still has figures. Everything is integer: microseconds, basis points.

use super::limits::{MAX_TARGETS, MAX_WINDOW};
use super::time::{Instant, Micros};

/// Marks a lost probe in a window.
const LOST: u32 = u32::MAX;

/// Basis points in 100 %.
pub const FULL_LOSS: u32 = 10_000;

/// The z of the bounds, in thousandths: 1.282, a one-sided 90 % interval. A switch tests the
/// difference of two scores at a surer z (`score::doubt`).
pub(super) const Z_MILLI: u64 = 1_282;
/// The z of the newest outcomes' loss bounds. So few outcomes make a run of luck look like a
/// change often enough that only strong evidence may count: 4 (one-sided 99.997 %) for the
/// lower bound, which lifts a score at once; 2.576 (99.5 %) for the upper, which only lets the
/// loss window forget a regime that is over (a failback still waits for its hold).
const RECENT_LOW_Z_MILLI: u64 = 4_000;
const RECENT_HIGH_Z_MILLI: u64 = 2_576;

/// A figure with the interval it is known to.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    pub value: u32,
    pub low: u32,
    pub high: u32,
}

impl Estimate {
    /// A figure known exactly (or shown without its bounds).
    pub fn exactly(value: u32) -> Estimate {
        Estimate { value, low: value, high: value }
    }
}

/// What a window, or a link's set of targets, says about the path.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Telemetry {
    /// Median round-trip time, µs.
    pub latency_us: u32,
    /// Median absolute difference of consecutive RTTs, µs.
    pub jitter_us: u32,
    /// Lost / (answered + lost), in basis points (10 000 = 100 %).
    pub loss_bp: u32,
}

/// Telemetry with bounds, and the counts the loss figures come from.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub latency: Estimate,
    pub jitter: Estimate,
    /// Basis points, over the loss window.
    pub loss: Estimate,
    pub lost: u32,
    pub resolved: u32,
    /// Basis points, over the newest outcomes only: a loss that began seconds ago.
    pub recent_loss: Estimate,
}

/// Samples a window keeps whatever its time span: delays from the last four paced replies, loss
/// from the last forty outcomes, so a rarely probed link still has figures (and a loss bound
/// narrow enough to be chosen on).
const LEAST_REPLIES: usize = 4;
const LEAST_OUTCOMES: usize = 100;
/// Outcomes in the recent-loss window.
const RECENT_OUTCOMES: usize = 16;

impl Stats {
    pub fn telemetry(&self) -> Telemetry {
        Telemetry {
            latency_us: self.latency.value,
            jitter_us: self.jitter.value,
            loss_bp: self.loss.value,
        }
    }
}

/// One probe outcome with when its probe was sent.
#[derive(Copy, Clone, Debug)]
struct Sample {
    sent: Instant,
    rtt: u32,
    /// Sent in the link's rhythm, not in a burst.
    paced: bool,
}

/// The last outcomes of one target, oldest first; allocated once, never per probe.
#[derive(Clone, Debug)]
pub struct Window {
    samples: Box<[Sample]>,
    len: usize,
    /// Where the next outcome goes.
    next: usize,
}

impl Window {
    pub fn new() -> Window {
        let empty = Sample { sent: Instant::ZERO, rtt: LOST, paced: true };
        Window { samples: vec![empty; MAX_WINDOW].into_boxed_slice(), len: 0, next: 0 }
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
        let newest = self.iter().last().filter(|s| s.rtt != LOST);
        self.clear();
        if let Some(sample) = newest {
            self.push(sample);
        }
    }

    pub fn push_reply(&mut self, sent: Instant, rtt_us: Micros, paced: bool) {
        // An RTT this long is a lost probe in all but name; LOST stays unambiguous.
        let rtt = rtt_us.min(u64::from(LOST - 1)) as u32;
        self.push(Sample { sent, rtt, paced });
    }

    pub fn push_lost(&mut self, sent: Instant, paced: bool) {
        self.push(Sample { sent, rtt: LOST, paced });
    }

    fn push(&mut self, sample: Sample) {
        self.samples[self.next] = sample;
        self.next = (self.next + 1) % self.samples.len();
        self.len = (self.len + 1).min(self.samples.len());
    }

    /// The outcomes in two runs, the older then the newer, each oldest first. Until the ring
    /// first fills, `next` is `len` and the older run is empty; the slices spare the replay a
    /// division per sample.
    fn runs(&self) -> (&[Sample], &[Sample]) {
        let older = if self.len == self.samples.len() { &self.samples[self.next..] } else { &[] };
        (older, &self.samples[..self.next])
    }

    fn iter(&self) -> impl Iterator<Item = Sample> + '_ {
        let (older, newer) = self.runs();
        older.iter().chain(newer).copied()
    }

    /// Newest first.
    fn newest_first(&self) -> impl Iterator<Item = Sample> + '_ {
        let (older, newer) = self.runs();
        newer.iter().rev().chain(older.iter().rev()).copied()
    }

    /// Outcomes sent since `since`, oldest first: `Some(rtt)` or `None` for a lost probe.
    pub fn outcomes(&self, since: Instant) -> impl Iterator<Item = Option<u32>> + '_ {
        self.iter().filter(move |s| s.sent >= since).map(|s| (s.rtt != LOST).then_some(s.rtt))
    }

    /// `(lost, resolved)` among the probes sent since `since`, or among the last `least` if
    /// fewer were; never any sent before `floor`.
    pub fn loss_counts(&self, since: Instant, least: usize, floor: Instant) -> (u32, u32) {
        self.newest_first()
            .enumerate()
            .take_while(|(i, s)| s.sent >= floor && (s.sent >= since || *i < least))
            .fold((0, 0), |(lost, all), (_, s)| (lost + u32::from(s.rtt == LOST), all + 1))
    }

    /// `(lost, resolved)` over the loss window (since `since`, not before `floor`) and over the
    /// newest outcomes.
    pub fn loss(&self, since: Instant, floor: Instant) -> ((u32, u32), (u32, u32)) {
        let recent = self.loss_counts(Instant::NEVER, RECENT_OUTCOMES, Instant::ZERO);
        (self.loss_counts(since, LEAST_OUTCOMES, floor), recent)
    }

    /// When the oldest of the newest outcomes was sent: where a new regime of loss begins, as
    /// far as they can tell.
    pub fn recent_from(&self) -> Option<Instant> {
        self.newest_first().take(RECENT_OUTCOMES).last().map(|s| s.sent)
    }

    /// Latency and jitter with bounds from the paced replies sent since `since` (at least the
    /// last few); `None` without one.
    pub fn delays(&self, since: Instant) -> Option<(Estimate, Estimate)> {
        let mut chosen = [0u32; MAX_WINDOW];
        let mut replies = 0;
        // Burst replies stand in only where no paced one exists (a link just back from the
        // dead, whose first answers came in a burst): some figures beat none.
        let any_paced = self.iter().any(|s| s.paced && s.rtt != LOST);
        let counted = |s: &Sample| (s.paced || !any_paced) && s.rtt != LOST;
        for sample in self.newest_first().filter(counted) {
            if sample.sent < since && replies >= LEAST_REPLIES {
                break;
            }
            chosen[replies] = sample.rtt;
            replies += 1;
        }
        chosen[..replies].reverse();
        let mut rtts = [0u32; MAX_WINDOW];
        let mut steps = [0u32; MAX_WINDOW];
        let mut differences = 0;
        let mut previous: Option<u32> = None;
        for (i, &rtt) in chosen[..replies].iter().enumerate() {
            rtts[i] = rtt;
            if let Some(previous) = previous {
                steps[differences] = rtt.abs_diff(previous);
                differences += 1;
            }
            previous = Some(rtt);
        }
        if replies == 0 {
            return None;
        }
        let jitter = if differences == 0 {
            Estimate::default()
        } else {
            median_with_bounds(&mut steps[..differences])
        };
        Some((median_with_bounds(&mut rtts[..replies]), jitter))
    }
}

impl Stats {
    /// Whether the newest outcomes contradict the loss window: the link's loss changed, and
    /// the window still holds the old regime.
    pub fn loss_changed(&self) -> bool {
        self.recent_loss.high < self.loss.low || self.recent_loss.low > self.loss.high
    }
}

impl Default for Window {
    fn default() -> Window {
        Window::new()
    }
}

/// The integer square root (floor), digit by digit: shifts and adds only. Called several times
/// per outcome; a division of 64-bit numbers is a library call on the router's MIPS32 core.
pub fn isqrt(mut n: u64) -> u64 {
    let mut root = 0u64;
    // The highest power of four at or below `n`.
    let mut bit = if n == 0 { 0 } else { 1u64 << ((63 - n.leading_zeros()) & !1) };
    while bit != 0 {
        if n >= root + bit {
            n -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root
}

/// The median of a small slice (mean of the middle two for an even count) and the order
/// statistics that bound it: ranks `(n ∓ z·√n) / 2`, the distribution-free interval of a median.
/// Sorts in place.
pub fn median_with_bounds(values: &mut [u32]) -> Estimate {
    values.sort_unstable();
    let n = values.len();
    let mid = n / 2;
    let value = if n % 2 == 1 {
        values[mid]
    } else {
        ((u64::from(values[mid - 1]) + u64::from(values[mid])) / 2) as u32
    };
    // z·√n / 2 ranks from the middle, at least one.
    let spread = ((Z_MILLI * isqrt(n as u64 * 1_000_000) / 1_000_000 / 2) as usize).max(1);
    let low = values[mid.saturating_sub(spread)];
    let high = values[(mid + spread).min(n - 1)];
    Estimate { value, low: low.min(value), high: high.max(value) }
}

/// Loss in basis points, without bounds.
pub fn loss_value(lost: u32, resolved: u32) -> u32 {
    if resolved == 0 {
        0
    } else {
        (u64::from(lost) * u64::from(FULL_LOSS) / u64::from(resolved)) as u32
    }
}

/// Loss in basis points with Wilson's interval at the module's z: sound for few samples and for
/// shares near 0 or 100 %, unlike the normal approximation.
pub fn loss_estimate(lost: u32, resolved: u32) -> Estimate {
    wilson(lost, resolved, Z_MILLI)
}

/// Wilson's interval of `lost` in `resolved` at the z of `z_milli` thousandths.
fn wilson(lost: u32, resolved: u32, z_milli: u64) -> Estimate {
    if resolved == 0 {
        return Estimate { value: 0, low: 0, high: FULL_LOSS };
    }
    // In millionths: p = lost / n, z² = z_milli² / 10⁶.
    let n = u64::from(resolved);
    let p = u64::from(lost) * 1_000_000 / n;
    let z2 = z_milli * z_milli; // z² in millionths
    let denominator = 1_000_000 + z2 / n; // 1 + z²/n, millionths
    let centre = p + z2 / (2 * n); // p + z²/2n, millionths
    // z·√(p(1−p)/n + z²/4n²), millionths.
    let variance = p * (1_000_000 - p) / n + z2 * 1_000_000 / (4 * n * n);
    let margin = z_milli * isqrt(variance) / 1_000;
    let bound = |x: u64| (x * 1_000_000 / denominator / 100).min(u64::from(FULL_LOSS)) as u32;
    let value = (p / 100) as u32;
    let low = bound(centre.saturating_sub(margin)).min(value);
    let high = bound(centre + margin).max(value);
    Estimate { value, low, high }
}

/// A link's stats from its targets': the median of each delay figure (so one target that
/// misbehaves cannot decide for the link), loss pooled over them (more samples, tighter
/// bounds). `recent` are each target's newest `(lost, resolved)`, pooled the same way.
pub fn consensus(targets: impl Iterator<Item = (Stats, (u32, u32))>) -> Option<Stats> {
    let mut figures = [[Estimate::default(); MAX_TARGETS]; 2];
    let (mut count, mut lost, mut resolved, mut recent_lost, mut recent) = (0, 0, 0, 0, 0);
    for (stats, (lost_now, resolved_now)) in targets.take(MAX_TARGETS) {
        figures[0][count] = stats.latency;
        figures[1][count] = stats.jitter;
        lost += stats.lost;
        resolved += stats.resolved;
        recent_lost += lost_now;
        recent += resolved_now;
        count += 1;
    }
    (count > 0).then(|| Stats {
        latency: median_estimate(&mut figures[0][..count]),
        jitter: median_estimate(&mut figures[1][..count]),
        loss: loss_estimate(lost, resolved),
        lost,
        resolved,
        recent_loss: Estimate {
            low: wilson(recent_lost, recent, RECENT_LOW_Z_MILLI).low,
            high: wilson(recent_lost, recent, RECENT_HIGH_Z_MILLI).high,
            value: loss_value(recent_lost, recent),
        },
    })
}

/// The median of each part of a few estimates.
fn median_estimate(estimates: &mut [Estimate]) -> Estimate {
    let part = |pick: fn(&Estimate) -> u32| {
        let mut values = [0u32; MAX_TARGETS];
        for (slot, e) in values.iter_mut().zip(estimates.iter()) {
            *slot = pick(e);
        }
        let values = &mut values[..estimates.len()];
        values.sort_unstable();
        let mid = values.len() / 2;
        if values.len() % 2 == 1 {
            values[mid]
        } else {
            ((u64::from(values[mid - 1]) + u64::from(values[mid])) / 2) as u32
        }
    };
    Estimate { value: part(|e| e.value), low: part(|e| e.low), high: part(|e| e.high) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(outcomes: &[Option<u32>]) -> Window {
        let mut w = Window::new();
        for (i, outcome) in outcomes.iter().enumerate() {
            let sent = Instant::from_millis(i as u64 * 1000);
            match outcome {
                Some(rtt) => w.push_reply(sent, u64::from(*rtt), true),
                None => w.push_lost(sent, true),
            }
        }
        w
    }

    #[test]
    fn an_empty_or_all_lost_window_has_no_delays() {
        assert_eq!(Window::new().delays(Instant::ZERO), None);
        assert_eq!(window(&[None, None]).delays(Instant::ZERO), None);
    }

    #[test]
    fn latency_and_jitter_are_medians_that_one_outlier_cannot_move() {
        let calm: Vec<Option<u32>> = (0..20).map(|i| Some(20_000 + (i % 2) * 2_000)).collect();
        let (latency, jitter) = window(&calm).delays(Instant::ZERO).unwrap();
        let mut spiked = calm.clone();
        spiked[10] = Some(800_000);
        let (latency_spiked, jitter_spiked) = window(&spiked).delays(Instant::ZERO).unwrap();
        assert_eq!(latency.value, 21_000);
        assert_eq!(latency_spiked.value, 22_000, "the median moves by one rank at most");
        assert_eq!(jitter.value, 2_000);
        assert_eq!(jitter_spiked.value, 2_000, "two huge steps among nineteen do not count");
    }

    #[test]
    fn bounds_hold_the_value_and_narrow_with_samples() {
        let few: Vec<Option<u32>> = (0..5).map(|i| Some(10_000 + i * 1_000)).collect();
        let many: Vec<Option<u32>> = (0..60).map(|i| Some(10_000 + (i % 5) * 1_000)).collect();
        let (few, _) = window(&few).delays(Instant::ZERO).unwrap();
        let (many, _) = window(&many).delays(Instant::ZERO).unwrap();
        assert!(few.low <= few.value && few.value <= few.high);
        assert_eq!((few.low, few.value, few.high), (11_000, 12_000, 13_000));
        assert!(many.high - many.low < few.high - few.low, "{many:?} vs {few:?}");
    }

    #[test]
    fn the_window_is_by_time_with_a_least_number_of_samples() {
        let mut outcomes = vec![Some(100_000); 6];
        outcomes.extend([Some(10_000), Some(10_000), Some(10_000), Some(10_000), None]);
        let w = window(&outcomes);
        let (latency, _) = w.delays(Instant::from_millis(6_000)).unwrap();
        assert_eq!(latency.value, 10_000, "only what was sent since 6 s counts");
        let z = Instant::ZERO;
        assert_eq!(w.loss_counts(Instant::from_millis(6_000), 0, z), (1, 5));
        assert_eq!(w.loss_counts(Instant::ZERO, 0, z), (1, 11));
        // Never fewer than the least: the last four replies whatever their age.
        let (latency, _) = w.delays(Instant::from_millis(9_000)).unwrap();
        assert_eq!(latency.value, 10_000);
        assert_eq!(w.loss_counts(Instant::NEVER, 3, z), (1, 3));
        // Not even the least number reaches behind the floor.
        assert_eq!(w.loss_counts(Instant::NEVER, 8, Instant::from_millis(7_000)), (1, 4));
        assert_eq!(w.recent_from(), Some(Instant::ZERO), "fewer than the newest 16: all");
    }

    #[test]
    fn burst_replies_count_for_loss_not_for_delays() {
        let mut w = Window::new();
        for i in 0..10 {
            w.push_reply(Instant::from_millis(i * 1000), 20_000, true);
        }
        for i in 0..10 {
            w.push_reply(Instant::from_millis(9_000 + i * 10), 800_000, false);
        }
        w.push_lost(Instant::from_millis(9_200), false);
        let (latency, _) = w.delays(Instant::ZERO).unwrap();
        assert_eq!(latency.value, 20_000, "the burst does not outvote the paced seconds");
        assert_eq!(w.loss_counts(Instant::ZERO, 0, Instant::ZERO), (1, 21));
    }

    #[test]
    fn wilson_bounds_are_sound_at_the_edges() {
        let none = loss_estimate(0, 20);
        assert_eq!((none.low, none.value), (0, 0));
        assert!(none.high > 0 && none.high < 1_500, "{none:?}");
        let all = loss_estimate(20, 20);
        assert_eq!((all.value, all.high), (FULL_LOSS, FULL_LOSS));
        assert!(all.low > 8_500, "{all:?}");
        let third = loss_estimate(30, 100);
        assert_eq!(third.value, 3_000);
        assert!(
            (2_300..2_500).contains(&third.low) && (3_500..3_700).contains(&third.high),
            "{third:?}"
        );
        assert_eq!(loss_estimate(0, 0), Estimate { value: 0, low: 0, high: FULL_LOSS });
    }

    #[test]
    fn restart_keeps_only_a_newest_reply() {
        let mut w = window(&[None, None, Some(7)]);
        w.restart();
        assert_eq!(w.outcomes(Instant::ZERO).collect::<Vec<_>>(), [Some(7)]);
        let mut w = window(&[Some(7), None]);
        w.restart();
        assert!(w.is_empty());
    }

    #[test]
    fn the_consensus_is_the_median_of_delays_and_the_pool_of_loss() {
        let stats = |latency: u32, lost: u32| {
            let stats = Stats {
                latency: Estimate { value: latency, low: latency, high: latency },
                jitter: Estimate::default(),
                loss: loss_estimate(lost, 10),
                lost,
                resolved: 10,
                recent_loss: Estimate::default(),
            };
            (stats, (lost.min(4), 4))
        };
        let link = consensus([stats(10, 0), stats(30, 10), stats(20, 2)].into_iter()).unwrap();
        assert_eq!(link.latency.value, 20);
        assert_eq!((link.lost, link.resolved, link.loss.value), (12, 30, 4_000));
        assert_eq!(link.recent_loss.value, 5_000, "6 of the 12 newest");
        assert_eq!(consensus(std::iter::empty()), None);
    }

    #[test]
    fn a_full_window_keeps_the_newest_in_order_across_its_wrap() {
        let mut w = Window::new();
        let outcome = |i: u64| Instant::from_millis(i * 100);
        for i in 0..(MAX_WINDOW as u64 + 7) {
            w.push_reply(outcome(i), i, true);
            let sent: Vec<_> = w.iter().map(|s| s.sent).collect();
            let first = (i + 1).saturating_sub(MAX_WINDOW as u64);
            assert_eq!(sent, (first..=i).map(outcome).collect::<Vec<_>>(), "after {i}");
            assert!(w.newest_first().map(|s| s.sent).eq(sent.iter().rev().copied()));
        }
        w.restart();
        assert_eq!(w.iter().map(|s| s.rtt).collect::<Vec<_>>(), [MAX_WINDOW as u32 + 6]);
    }

    #[test]
    fn isqrt_is_the_floor() {
        let numbers =
            (0..2_000u64).chain([1 << 40, (1 << 32) - 1, 1 << 32, u64::MAX - 1, u64::MAX]);
        for n in numbers.chain((0..64).map(|b| 1u64 << b)) {
            assert_eq!(isqrt(n), n.isqrt(), "{n}");
        }
    }
}
