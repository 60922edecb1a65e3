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
use std::cell::Cell;

/// Marks a lost probe in a window.
const LOST: u32 = u32::MAX;

/// Basis points in 100 %.
pub const FULL_LOSS: u32 = 10_000;

/// The z of the bounds, in thousandths: 1.282, a one-sided 90 % interval. A switch tests the
/// difference of two scores at a surer z (`score::doubt`).
pub(super) const Z_MILLI: u64 = 1_282;
/// The z of the newest outcomes' loss bounds. So few outcomes make a run of luck look like a
/// change often enough that only strong evidence may count: 4.25 (one-sided 99.999 %) for the
/// lower bound, which lifts a score at once; 2.576 (99.5 %) for the upper, which only lets the
/// loss window forget a regime that is over (a failback still waits for its hold).
const RECENT_LOW_Z_MILLI: u64 = 4_250;
const RECENT_HIGH_Z_MILLI: u64 = 2_576;
/// The z of the bounds the newest outcomes are tested against: those of the window's older
/// outcomes. Those bounds once came from the whole window, the newest included, which pulled
/// them toward the newest: after half a minute of uptime, with few older outcomes, a loss that
/// had begun took a second longer to show (30 % loss: 3.4 s median, 5.8 s at the 95th
/// percentile, against 2.6 / 4.5 s after two minutes). Without the newest, at 1.282 they were
/// tested against narrower bounds than before, and a run of bad luck among them was taken for
/// a change 15 times as often (`loss-5`, 40 moves a simulated day): 3.0 keeps that near what
/// it was (3.5 moves a day against 2.6, over 1,000 seeds) and `loss-30` at 4.6 s (was 5.2).
///
/// The upper bound, which a loss that began must pass, is surer still: bursts make a link at
/// 5 % loss some 50,000 outcomes an hour, so its newest 32 lose 10 (once in 440,000 windows)
/// a few times in a hundred hours; passing 3.0, the window was cut to them, the link scored
/// as at 31 % loss and the route moved (traced: most of `loss-5`'s moves). At 3.5 a loss that
/// began needs one more lost outcome against a clean past (under 0.1 s at 30 % loss while
/// burst) and 12 of 32 against a 5 % one: `loss-5` 1.4 -> 0.6 moves a simulated day,
/// `loss-30` 2.08 / 3.77 -> 2.14 / 4.06 s (1,000 seeds); at 4.0, 0.2 a day but 4.3 s (300).
/// With bursts twice as dense such runs came twice as often, and a loss that began must now be
/// borne out by the outcomes after it too ([`loss_began_verdict`]); 3.0 then gave `loss-5` 0.5
/// moves a day against 0.3 at 3.5, for `loss-30` 1.89 / 3.82 s against 2.06 / 4.27.
const EARLIER_Z_MILLI: u64 = 3_000;
const EARLIER_HIGH_Z_MILLI: u64 = 3_500;

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
    /// Basis points, over the window's outcomes older than the newest: the regime they are
    /// tested against (the newest in it would pull its bounds toward themselves).
    pub earlier_loss: Estimate,
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
    /// The earliest send time of this outcome and of every newer one. Outcomes enter in the
    /// order they resolve, not in the order sent (a lost probe resolves a timeout late), and
    /// this is what makes "the newest outcomes back to the first one sent before a time" a
    /// bisection instead of a walk.
    earliest_onward: Instant,
    rtt: u32,
    /// Lost outcomes pushed before this one (wrapping): the losses among the newest outcomes
    /// are a difference. Sixteen bits hold any difference within a window, and keep a sample
    /// at 24 bytes.
    losses_before: u16,
    /// Sent in the link's rhythm, not in a burst.
    paced: bool,
}

impl Sample {
    fn new(sent: Instant, rtt: u32, paced: bool) -> Sample {
        Sample { sent, earliest_onward: sent, rtt, losses_before: 0, paced }
    }
}

/// The last outcomes of one target, oldest first; allocated once, never per probe.
#[derive(Clone, Debug)]
pub struct Window {
    samples: Box<[Sample]>,
    len: usize,
    /// Where the next outcome goes.
    next: usize,
    /// Replies, and paced replies, among the samples: whether there are delays at all, and
    /// whether bursts must stand in, are known without a scan.
    replies: usize,
    paced_replies: usize,
    /// Lost outcomes ever pushed (wrapping).
    losses: u16,
    /// Changes with every outcome pushed and every clearing: what `delays_memo` was computed on.
    version: u32,
    delays_memo: Cell<Option<DelaysMemo>>,
}

/// The delays a window last computed, and the bounds of the `since` they hold for. Between two
/// outcomes of a rarely probed target its stats are recomputed every second as time moves on,
/// mostly to the same figures: two sorts saved.
#[derive(Copy, Clone, Debug)]
struct DelaysMemo {
    version: u32,
    /// The earliest send time among the replies taken beyond the least number: a later `since`
    /// would leave one out.
    earliest_beyond_least: Instant,
    /// The send time of the reply the walk stopped at, if any: a `since` at or before it would
    /// take it in.
    stopped_at: Option<Instant>,
    delays: Option<(Estimate, Estimate)>,
}

impl DelaysMemo {
    fn holds_for(&self, version: u32, since: Instant) -> bool {
        self.version == version
            && since <= self.earliest_beyond_least
            && self.stopped_at.is_none_or(|sent| sent < since)
    }
}

impl Window {
    pub fn new() -> Window {
        let samples = vec![Sample::new(Instant::ZERO, LOST, true); MAX_WINDOW].into_boxed_slice();
        Window {
            samples,
            len: 0,
            next: 0,
            replies: 0,
            paced_replies: 0,
            losses: 0,
            version: 0,
            delays_memo: Cell::new(None),
        }
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
        self.replies = 0;
        self.paced_replies = 0;
        self.version = self.version.wrapping_add(1);
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

    /// Forgets the burst outcomes and keeps the paced ones in their order: the bursts to a
    /// target whose rate limiter dropped them told of the limiter, not of the path.
    pub fn keep_paced(&mut self) {
        let mut kept = [Sample::new(Instant::ZERO, LOST, true); MAX_WINDOW];
        let mut count = 0;
        for sample in self.iter().filter(|s| s.paced) {
            kept[count] = sample;
            count += 1;
        }
        self.clear();
        for sample in &kept[..count] {
            self.push(*sample);
        }
    }

    pub fn push_reply(&mut self, sent: Instant, rtt_us: Micros, paced: bool) {
        // An RTT this long is a lost probe in all but name; LOST stays unambiguous.
        let rtt = rtt_us.min(u64::from(LOST - 1)) as u32;
        self.push(Sample::new(sent, rtt, paced));
    }

    pub fn push_lost(&mut self, sent: Instant, paced: bool) {
        self.push(Sample::new(sent, LOST, paced));
    }

    /// The lost outcome of the probe sent at `sent` becomes a reply after `rtt_us` (it was
    /// overtaken, not lost). Returns how many outcomes came after it; `None` if it is not here.
    pub fn revive(&mut self, sent: Instant, rtt_us: Micros) -> Option<usize> {
        let newer = (0..self.len).find(|n| {
            let sample = &self.samples[self.slot(*n)];
            sample.sent == sent && sample.rtt == LOST
        })?;
        for n in 0..newer {
            let slot = self.slot(n);
            self.samples[slot].losses_before = self.samples[slot].losses_before.wrapping_sub(1);
        }
        let slot = self.slot(newer);
        let sample = &mut self.samples[slot];
        sample.rtt = rtt_us.min(u64::from(LOST - 1)) as u32;
        self.replies += 1;
        self.paced_replies += usize::from(sample.paced);
        self.losses = self.losses.wrapping_sub(1);
        self.version = self.version.wrapping_add(1);
        Some(newer)
    }

    fn push(&mut self, sample: Sample) {
        let reply = |s: &Sample| usize::from(s.rtt != LOST);
        let paced_reply = |s: &Sample| usize::from(s.paced && s.rtt != LOST);
        let full = self.len == self.samples.len();
        if full {
            self.replies -= reply(&self.samples[self.next]);
            self.paced_replies -= paced_reply(&self.samples[self.next]);
        }
        self.replies += reply(&sample);
        self.paced_replies += paced_reply(&sample);
        self.version = self.version.wrapping_add(1);
        // The older outcomes sent after this one now have an earlier send onward. Outcomes
        // resolve nearly in the order sent, so this stops within a few.
        for newest_first in 0..self.len - usize::from(full) {
            let slot = self.slot(newest_first);
            if self.samples[slot].earliest_onward <= sample.sent {
                break;
            }
            self.samples[slot].earliest_onward = sample.sent;
        }
        let lost = u16::from(sample.rtt == LOST);
        let sample = Sample { earliest_onward: sample.sent, losses_before: self.losses, ..sample };
        self.losses = self.losses.wrapping_add(lost);
        self.samples[self.next] = sample;
        self.next = if self.next + 1 == self.samples.len() { 0 } else { self.next + 1 };
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

    /// The ring slot of the outcome `newest_first` places from the newest (below `len`).
    fn slot(&self, newest_first: usize) -> usize {
        // `next` and `newest_first` are below the capacity: one wrap at most, and no division.
        let capacity = self.samples.len();
        let slot = self.next + capacity - 1 - newest_first;
        if slot >= capacity { slot - capacity } else { slot }
    }

    /// How many of the newest outcomes come before the first sent before `time`, newest first.
    fn sent_since(&self, time: Instant) -> usize {
        // `earliest_onward` only falls from the newest outcome back.
        let (mut low, mut high) = (0, self.len);
        while low < high {
            let middle = (low + high) / 2;
            if self.samples[self.slot(middle)].earliest_onward >= time {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }

    /// `(lost, resolved)` among the probes sent since `since`, or among the last `least` if
    /// fewer were; never any sent before `floor`. The newest outcomes back to the first that
    /// breaks one of these.
    pub fn loss_counts(&self, since: Instant, least: usize, floor: Instant) -> (u32, u32) {
        let mut resolved = self.sent_since(since);
        if resolved < least {
            // The least number reach behind `since`; past them, the first sent before it ends.
            let sent_before = |i: &usize| self.samples[self.slot(*i)].sent < since;
            resolved = (least..self.len).find(sent_before).unwrap_or(self.len);
        }
        if floor > Instant::ZERO {
            resolved = resolved.min(self.sent_since(floor));
        }
        self.newest_counts(resolved)
    }

    /// `(lost, resolved)` among the newest `count` outcomes (at most `len`).
    fn newest_counts(&self, count: usize) -> (u32, u32) {
        let lost = match count {
            0 => 0,
            n => u32::from(self.losses.wrapping_sub(self.samples[self.slot(n - 1)].losses_before)),
        };
        (lost, count as u32)
    }

    /// `(lost, resolved)` over the loss window (since `since`, not before `floor`) and over the
    /// newest outcomes.
    pub fn loss(&self, since: Instant, floor: Instant) -> ((u32, u32), (u32, u32)) {
        let recent = self.newest_counts(self.len.min(RECENT_OUTCOMES));
        (self.loss_counts(since, LEAST_OUTCOMES, floor), recent)
    }

    /// When the oldest of the newest outcomes was sent: where a new regime of loss begins, as
    /// far as they can tell.
    pub fn recent_from(&self) -> Option<Instant> {
        let oldest = self.len.min(RECENT_OUTCOMES).checked_sub(1)?;
        Some(self.samples[self.slot(oldest)].sent)
    }

    /// Latency and jitter with bounds from the paced replies sent since `since` (at least the
    /// last few); `None` without one.
    pub fn delays(&self, since: Instant) -> Option<(Estimate, Estimate)> {
        if self.replies == 0 {
            return None;
        }
        let memo = self.delays_memo.get();
        if let Some(memo) = memo.filter(|m| m.holds_for(self.version, since)) {
            return memo.delays;
        }
        // Burst replies stand in only where no paced one exists (a link just back from the
        // dead, whose first answers came in a burst): some figures beat none.
        let counted = |s: &Sample| s.rtt != LOST && (s.paced || self.paced_replies == 0);
        let mut rtts = [0u32; MAX_WINDOW];
        let mut replies = 0;
        let (mut earliest_beyond_least, mut stopped_at) = (Instant::NEVER, None);
        for sample in self.newest_first().filter(counted) {
            if sample.sent < since && replies >= LEAST_REPLIES {
                stopped_at = Some(sample.sent);
                break;
            }
            if replies >= LEAST_REPLIES {
                earliest_beyond_least = earliest_beyond_least.min(sample.sent);
            }
            rtts[replies] = sample.rtt;
            replies += 1;
        }
        let delays = (replies > 0).then(|| delay_figures(&mut rtts[..replies]));
        let version = self.version;
        let memo = DelaysMemo { version, earliest_beyond_least, stopped_at, delays };
        self.delays_memo.set(Some(memo));
        delays
    }
}

/// Latency and jitter of some replies' RTTs, newest first (at least one); sorts them in place.
fn delay_figures(rtts: &mut [u32]) -> (Estimate, Estimate) {
    // The steps between consecutive replies, newest first: a median does not mind the order.
    let mut steps = [0u32; MAX_WINDOW];
    for (step, pair) in steps.iter_mut().zip(rtts.windows(2)) {
        *step = pair[0].abs_diff(pair[1]);
    }
    let jitter = match rtts.len() - 1 {
        0 => Estimate::default(),
        differences => median_with_bounds(&mut steps[..differences]),
    };
    (median_with_bounds(rtts), jitter)
}

impl Stats {
    /// Whether the newest outcomes contradict the window's older ones: the link's loss
    /// changed, and the window still holds the old regime.
    pub fn loss_changed(&self) -> bool {
        let (recent, earlier) = (self.recent_loss, self.earlier_loss);
        recent.high < earlier.low || recent.low > earlier.high
    }
}

impl Default for Window {
    fn default() -> Window {
        Window::new()
    }
}

/// The integer square root (floor). Called several times per outcome and per wakeup: on the
/// router digit by digit (shifts and adds; a division of 64-bit numbers is a library call on its
/// MIPS32 core, and it has no FPU), on a host from the FPU's square root, corrected to the exact
/// floor. Both give the same answers (tested), so the replay is the same everywhere.
pub fn isqrt(n: u64) -> u64 {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    return isqrt_by_fpu(n);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return isqrt_by_digits(n);
}

/// Correctly rounded, the square root of `n` as a double is within one of the floor (`n` itself
/// is rounded above 2⁵³): one step either way makes it exact.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", test))]
fn isqrt_by_fpu(n: u64) -> u64 {
    let root = (n as f64).sqrt() as u64;
    if root.checked_mul(root).is_none_or(|square| square > n) {
        root - 1
    } else if (root + 1).checked_mul(root + 1).is_some_and(|square| square <= n) {
        root + 1
    } else {
        root
    }
}

#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), allow(dead_code))]
fn isqrt_by_digits(mut n: u64) -> u64 {
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
    let p = u64::from(lost.min(resolved)) * 1_000_000 / n;
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

/// Whether a loss that began, shown by `shown_by` outcomes `(lost, resolved)`, is borne out by
/// the outcomes since (`counts` are all of them): `None` while too few have come, `Some(false)`
/// once it is not. Confirmed when as many again as showed it lose more than the old regime's
/// upper bound, at the bounds' usual z (the change itself was tested far more surely); taken
/// back as soon as all of them together no longer pass that bound at the old regime's z.
pub fn loss_began_verdict(
    (lost, resolved): (u32, u32),
    shown_by: (u32, u32),
    earlier_high: u32,
) -> Option<bool> {
    if wilson(lost, resolved, EARLIER_Z_MILLI).low <= earlier_high {
        return Some(false);
    }
    let since = (lost.saturating_sub(shown_by.0), resolved.saturating_sub(shown_by.1));
    (since.1 >= shown_by.1).then(|| wilson(since.0, since.1, Z_MILLI).low > earlier_high)
}

/// The loss of the window's outcomes older than the newest, with the bounds the newest are
/// tested against.
fn earlier_estimate(lost: u32, resolved: u32) -> Estimate {
    let high = wilson(lost, resolved, EARLIER_HIGH_Z_MILLI).high;
    Estimate { high, ..wilson(lost, resolved, EARLIER_Z_MILLI) }
}

/// The intervals of a link's pooled loss, kept with the counts they come from. The link's stats
/// are pooled again whenever a target's change, but in a steady window the counts stay the same
/// for many poolings in a row, and each interval costs several 64-bit divisions.
#[derive(Copy, Clone, Debug, Default)]
pub struct LossIntervals {
    counts: PooledLoss,
    intervals: Option<[Estimate; 3]>,
}

impl LossIntervals {
    /// The loss, the loss of the newest outcomes and that of the window's older ones, with
    /// their bounds.
    fn of(&mut self, counts: PooledLoss) -> [Estimate; 3] {
        if let Some(known) = self.intervals.filter(|_| self.counts == counts) {
            return known;
        }
        let PooledLoss { window: (lost, resolved), newest, earlier } = counts;
        let recent_loss = Estimate {
            low: wilson(newest.0, newest.1, RECENT_LOW_Z_MILLI).low,
            high: wilson(newest.0, newest.1, RECENT_HIGH_Z_MILLI).high,
            value: loss_value(newest.0, newest.1),
        };
        let earlier = earlier_estimate(earlier.0, earlier.1);
        let intervals = [loss_estimate(lost, resolved), recent_loss, earlier];
        *self = LossIntervals { counts, intervals: Some(intervals) };
        intervals
    }
}

/// `(lost, resolved)` pooled over a link's targets: over the loss window, over the newest
/// outcomes, and over the window's outcomes older than the newest.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct PooledLoss {
    window: (u32, u32),
    newest: (u32, u32),
    earlier: (u32, u32),
}

impl PooledLoss {
    fn add(&mut self, window: (u32, u32), newest: (u32, u32)) {
        // Both are suffixes of one target's outcomes, so one holds the other. The older part is
        // taken per target: a floor may cut one target's window shorter than its newest and not
        // another's, and pooled counts would then subtract one target's newest from another's
        // window (more lost than resolved).
        let earlier = if window.1 >= newest.1 {
            (window.0.saturating_sub(newest.0), window.1 - newest.1)
        } else {
            (0, 0)
        };
        let sum = |a: (u32, u32), b: (u32, u32)| (a.0 + b.0, a.1 + b.1);
        self.window = sum(self.window, window);
        self.newest = sum(self.newest, newest);
        self.earlier = sum(self.earlier, earlier);
    }
}

/// A link's stats from its targets': the median of each delay figure (so one target that
/// misbehaves cannot decide for the link), loss pooled over them (more samples, tighter
/// bounds). `recent` are each target's newest `(lost, resolved)`, pooled the same way.
pub fn consensus(
    targets: impl Iterator<Item = (Stats, (u32, u32))>,
    intervals: &mut LossIntervals,
) -> Option<Stats> {
    let mut figures = [[Estimate::default(); MAX_TARGETS]; 2];
    let (mut count, mut pooled) = (0, PooledLoss::default());
    for (stats, newest) in targets.take(MAX_TARGETS) {
        figures[0][count] = stats.latency;
        figures[1][count] = stats.jitter;
        pooled.add((stats.lost, stats.resolved), newest);
        count += 1;
    }
    (count > 0).then(|| {
        let [loss, recent_loss, earlier_loss] = intervals.of(pooled);
        let (lost, resolved) = pooled.window;
        Stats {
            latency: median_estimate(&mut figures[0][..count]),
            jitter: median_estimate(&mut figures[1][..count]),
            loss,
            lost,
            resolved,
            recent_loss,
            earlier_loss,
        }
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

    #[test]
    fn a_sample_stays_small() {
        // 160 of them per target, on a router with 64 MB.
        assert_eq!(std::mem::size_of::<Sample>(), 24);
    }

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
    fn keeping_the_paced_outcomes_forgets_the_bursts_and_keeps_the_counts_true() {
        let mut w = Window::new();
        for i in 0..MAX_WINDOW as u64 + 40 {
            let sent = Instant::from_millis(i * 10);
            match (i % 4 == 0, i % 3 == 0) {
                (true, _) => w.push_reply(sent, 20_000, true),
                (false, true) => w.push_lost(sent, false),
                (false, false) => w.push_reply(sent, 900_000, false),
            }
        }
        w.keep_paced();
        assert_eq!(w.len(), MAX_WINDOW / 4);
        let since = Instant::ZERO;
        assert_eq!(w.loss_counts(since, 0, since), (0, (MAX_WINDOW / 4) as u32));
        let (latency, _) = w.delays(since).expect("paced replies");
        assert_eq!(latency.value, 20_000);
    }

    #[test]
    fn a_loss_that_began_is_confirmed_or_taken_back_by_the_outcomes_since() {
        // 10 of 32 lost against a past whose upper bound is 9.4 %.
        let (shown_by, earlier_high) = ((10, 32), 940);
        let verdict = |lost, resolved| loss_began_verdict((lost, resolved), shown_by, earlier_high);
        assert_eq!(verdict(10, 32), None, "what showed it passes");
        assert_eq!(verdict(10, 37), None, "five more outcomes are too few to tell");
        // 32 more at the past's 5 %: taken back, as soon as all together fall to the bound.
        assert_eq!(verdict(12, 64), Some(false));
        assert_eq!(verdict(10, 48), Some(false));
        // 32 more at 30 %: confirmed.
        assert_eq!(verdict(20, 64), Some(true));
        // 32 more losing 4: all together still pass, those since alone do not.
        assert_eq!(verdict(14, 64), Some(false));
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
    fn a_revived_outcome_is_a_reply_in_every_count() {
        let mut w = window(&[Some(10_000), None, Some(10_000), None, Some(10_000)]);
        assert_eq!(w.loss(Instant::ZERO, Instant::ZERO), ((2, 5), (2, 5)));
        assert_eq!(w.revive(Instant::from_millis(1_000), 400_000), Some(3), "three came after");
        assert_eq!(w.loss(Instant::ZERO, Instant::ZERO), ((1, 5), (1, 5)));
        assert_eq!(w.loss_counts(Instant::from_millis(2_000), 0, Instant::ZERO), (1, 3));
        let outcomes: Vec<_> = w.outcomes(Instant::ZERO).collect();
        assert_eq!(outcomes[1], Some(400_000));
        assert_eq!(w.revive(Instant::from_millis(1_000), 400_000), None, "revived once");
        assert_eq!(w.revive(Instant::from_millis(2_000), 9), None, "a reply already");
        assert_eq!(w.revive(Instant::from_millis(3_000), 20_000), Some(1));
        assert_eq!(w.loss(Instant::ZERO, Instant::ZERO), ((0, 5), (0, 5)));
        assert_eq!(w.delays(Instant::ZERO).unwrap().0.value, 10_000);
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
                ..Stats::default()
            };
            (stats, (lost.min(4), 4))
        };
        let mut intervals = LossIntervals::default();
        let targets = [stats(10, 0), stats(30, 10), stats(20, 2)];
        let link = consensus(targets.into_iter(), &mut intervals).unwrap();
        assert_eq!(link.latency.value, 20);
        assert_eq!((link.lost, link.resolved, link.loss.value), (12, 30, 4_000));
        assert_eq!(link.recent_loss.value, 5_000, "6 of the 12 newest");
        assert_eq!(link.loss, loss_estimate(12, 30));
        assert_eq!(consensus(targets.into_iter(), &mut intervals), Some(link), "kept intervals");
        let fewer = consensus(targets[..2].iter().copied(), &mut intervals).unwrap();
        assert_eq!((fewer.loss, fewer.recent_loss.value), (loss_estimate(10, 20), 5_000));
        assert_eq!(consensus(std::iter::empty(), &mut intervals), None);
    }

    #[test]
    fn the_newest_outcomes_are_tested_against_the_older_ones_alone() {
        // Half a minute of uptime: 40 older outcomes all answered, then 12 of the 16 newest
        // lost. Counted with the newest, the window's bound (12 of 56, up to 29.2 %) would take
        // in the newest's least loss (27.5 %); against the 40 older ones (up to 23.4 %) it
        // cannot.
        let link = |lost: u32, resolved: u32, newest: (u32, u32)| {
            let stats = Stats { lost, resolved, ..Stats::default() };
            consensus([(stats, newest)].into_iter(), &mut LossIntervals::default()).unwrap()
        };
        let began = link(12, 56, (12, 16));
        assert_eq!(began.earlier_loss, earlier_estimate(0, 40));
        assert!(began.recent_loss.low <= began.loss.high, "{began:?}");
        assert!(began.loss_changed(), "{began:?}");
        // The same luck at 5 % over a longer past is a loss that did not change.
        assert!(!link(9, 176, (3, 16)).loss_changed());
        // It ended: none of the newest lost after a past of 50 %.
        assert!(link(60, 136, (0, 16)).loss_changed());
        // A window no longer than the newest has no older outcomes to contradict.
        assert!(!link(16, 16, (16, 16)).loss_changed());
    }

    #[test]
    fn a_window_cut_shorter_than_the_newest_leaves_no_older_outcomes_of_that_target() {
        // A floor cut the first target's window to 2 outcomes, under its 8 newest; the second's
        // 10 hold its 3 newest. Pooled first, the older part would be 5 lost of 1 resolved.
        let target =
            |lost, resolved, newest| (Stats { lost, resolved, ..Stats::default() }, newest);
        let targets = [target(0, 2, (0, 8)), target(5, 10, (0, 3))];
        let link = consensus(targets.into_iter(), &mut LossIntervals::default()).unwrap();
        assert_eq!((link.lost, link.resolved), (5, 12));
        assert_eq!(link.earlier_loss, earlier_estimate(5, 7), "only the second's older 7");
        assert_eq!(link.recent_loss.value, 0);
        // However its counts come, an interval stays within 0..=100 %.
        assert_eq!(wilson(5, 1, Z_MILLI), wilson(1, 1, Z_MILLI));
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

    /// The walk, outcome by outcome, that the bisection and the loss counters stand for.
    fn walked_loss_counts(w: &Window, since: Instant, least: usize, floor: Instant) -> (u32, u32) {
        w.newest_first()
            .enumerate()
            .take_while(|(i, s)| s.sent >= floor && (s.sent >= since || *i < least))
            .fold((0, 0), |(lost, all), (_, s)| (lost + u32::from(s.rtt == LOST), all + 1))
    }

    /// The walk and the sorts that the reply counters and the memo stand for.
    fn walked_delays(w: &Window, since: Instant) -> Option<(Estimate, Estimate)> {
        let any_paced = w.iter().any(|s| s.paced && s.rtt != LOST);
        let counted = |s: &Sample| (s.paced || !any_paced) && s.rtt != LOST;
        let mut chosen = Vec::new();
        for sample in w.newest_first().filter(counted) {
            if sample.sent < since && chosen.len() >= LEAST_REPLIES {
                break;
            }
            chosen.push(sample.rtt);
        }
        chosen.reverse();
        let mut steps: Vec<u32> = chosen.windows(2).map(|p| p[1].abs_diff(p[0])).collect();
        let jitter =
            if steps.is_empty() { Estimate::default() } else { median_with_bounds(&mut steps) };
        (!chosen.is_empty()).then(|| (median_with_bounds(&mut chosen), jitter))
    }

    proptest::proptest! {
        /// Outcomes resolve out of the order sent (a loss a timeout late), bursts mix with paced
        /// probes, windows wrap and restart; every way of asking gives what the walks give.
        #[test]
        fn bisection_counters_and_memo_give_what_the_walks_give(
            outcomes in proptest::collection::vec(
                (0u64..2_500, proptest::option::of(1u64..900_000), proptest::bool::ANY, 0u8..40),
                1..420,
            ),
            sinces in proptest::collection::vec((0u64..200_000, 0u64..200_000), 4),
        ) {
            let mut w = Window::new();
            for (i, (late_ms, rtt, paced, action)) in outcomes.into_iter().enumerate() {
                // Resolved in turn every 250 ms, sent up to 2.5 s before.
                let sent = Instant::from_millis((i as u64 * 250 + 10_000).saturating_sub(late_ms));
                match rtt {
                    Some(rtt) => w.push_reply(sent, rtt, paced),
                    None => w.push_lost(sent, paced),
                }
                if action == 0 {
                    w.restart();
                }
                let newest = w.newest_first().take(RECENT_OUTCOMES).last().map(|s| s.sent);
                proptest::prop_assert_eq!(w.recent_from(), newest);
                for &(since_ms, floor_ms) in &sinces {
                    let (since, floor) = (Instant::from_millis(since_ms), Instant::from_millis(floor_ms));
                    for least in [0, 4, RECENT_OUTCOMES, LEAST_OUTCOMES, MAX_WINDOW + 1] {
                        let walked = walked_loss_counts(&w, since, least, floor);
                        proptest::prop_assert_eq!(w.loss_counts(since, least, floor), walked);
                    }
                    // Asked again with the same and with other times: the memo holds or yields.
                    proptest::prop_assert_eq!(w.delays(since), walked_delays(&w, since));
                    proptest::prop_assert_eq!(w.delays(since), walked_delays(&w, since));
                }
            }
        }
    }

    proptest::proptest! {
        /// Targets whose windows a floor cuts at different points (one shorter than its newest
        /// outcomes, another not): the pooled intervals stay sound, never more lost than sent.
        #[test]
        fn pooled_intervals_stay_within_their_counts(
            targets in proptest::collection::vec(
                (proptest::collection::vec(proptest::bool::ANY, 0..140), 0u64..40_000),
                1..=MAX_TARGETS,
            ),
        ) {
            let windows: Vec<Window> = targets.iter().map(|(lost, _)| {
                let mut w = Window::new();
                for (i, &lost) in lost.iter().enumerate() {
                    let sent = Instant::from_millis(i as u64 * 250);
                    if lost { w.push_lost(sent, true) } else { w.push_reply(sent, 20_000, true) }
                }
                w
            }).collect();
            let stats = windows.iter().zip(&targets).map(|(w, (_, floor_ms))| {
                let (window, newest) = w.loss(Instant::from_millis(0), Instant::from_millis(*floor_ms));
                (Stats { lost: window.0, resolved: window.1, ..Stats::default() }, newest)
            });
            let link = consensus(stats, &mut LossIntervals::default()).unwrap();
            for e in [link.loss, link.recent_loss, link.earlier_loss] {
                proptest::prop_assert!(e.low <= e.value && e.value <= e.high && e.high <= FULL_LOSS, "{link:?}");
            }
        }
    }

    #[test]
    fn isqrt_is_the_floor() {
        let numbers =
            (0..2_000u64).chain([1 << 40, (1 << 32) - 1, 1 << 32, u64::MAX - 1, u64::MAX]);
        let squares = (0..64).map(|b| 1u64 << b).chain((1..=u64::from(u32::MAX)).step_by(9_973));
        let near_squares = squares.flat_map(|r| {
            let square = r.saturating_mul(r);
            [square - 1, square, square.saturating_add(1)]
        });
        for n in numbers.chain(near_squares) {
            assert_eq!(isqrt_by_digits(n), n.isqrt(), "{n}");
            assert_eq!(isqrt_by_fpu(n), n.isqrt(), "{n}");
        }
    }
}
