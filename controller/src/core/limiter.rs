//! Targets that rate-limit echo requests: found by a calibration burst, then left out of bursts.
//!
//! A burst sends a target 90 probes a second while it lasts; many targets answer fewer (a router's
//! control plane, a firewall's limit on echo requests), and what their limiter drops would read as
//! loss on the link. Loss on the path treats a probe alike whatever the rate; a limiter does not.
//! So now and then, while the link is calm, a burst is sent only to compare: if its probes to a
//! target are lost far more often than the paced probes of the minutes before, the target limits,
//! and bursts leave it out until a later calibration finds otherwise. A burst started because
//! something looked wrong could not tell: a loss that just began, or loss that comes in runs, is
//! what started it. Calibration outcomes are only compared, never counted as the link's loss: a
//! limiter's drops would move the route while the calibration is still under way.
//!
//! A fault that begins during a calibration loses what a limiter would, while the paced probes
//! before it lost nothing: the calibration alone cannot tell the two apart. What can is what
//! follows: a limiter answers the paced probes after it as before, a fault loses them too. So a
//! verdict that a target limits is on probation for the link's next paced probes, and three of
//! them lost (more where the link loses some anyway) take every target's back at once (their
//! bursts resume) and ask for another calibration soon.

use super::telemetry::isqrt;
use super::time::Micros;

/// Probes a calibration sends each target: more than a limiter's bucket can hide (a second's
/// worth at ten a second), and enough for the test to tell.
pub const CALIBRATION_PROBES: u32 = 40;
/// How often a link is calibrated: carrying the route, and as a healthy standby (whose probes may
/// be metered: 80 probes every six hours is 0.3 B/s).
pub const CALIBRATE_ACTIVE_EVERY: Micros = 600_000_000;
pub const CALIBRATE_STANDBY_EVERY: Micros = 21_600_000_000;
/// How long a link is up before its first calibration: its first bursts (a link just up is
/// burst to learn its figures) are over, and its paced probes are what a calibration is
/// compared with. Not 30 s, when the scenario library's faults begin: a fault that begins
/// during a calibration shows a few seconds later than otherwise (an engine test bounds it),
/// which is not what those scenarios measure (at 30 s, `loss-30` took 6.4 s on namespaces).
pub const CALIBRATE_AFTER_UP: Micros = 45_000_000;
/// How long after its burst a calibration's paced probes are not counted: a limiter's bucket,
/// emptied by the burst, takes this long to answer them again.
pub const BUCKET_REFILL: Micros = 1_000_000;
/// Calibration outcomes of a target before its test may find a limiter.
const LEAST_CALIBRATION: u32 = 20;
/// Paced outcomes a target needs before a calibration: the comparison's other side.
pub const LEAST_PACED: u32 = 16;
/// Paced outcomes kept before halving (the lost rounded up: rounded down, a link of 4 % loss
/// read as none too often): the last half-minute or so of a link in use.
const PACED_CAP: u32 = 32;
/// Paced outcomes of the link (per target) after a calibration that found a limiter, three of
/// them lost, on any target, taking every verdict back: a fault is on the path, so every target
/// shows it. At 1 % loss a limiter keeps its verdict 9,995 times in 10,000; at two lost, 99 in
/// 100 was a move every day or so (`echo-limited`), as the bursts went back to the limiter, and at
/// one, 85 in 100. A fault of 30 % loss that began during the calibration takes it back within
/// ten paced probes, on average.
pub const PROBATION: u32 = 8;
pub const PROBATION_LOSSES: u32 = 3;
/// Paced probes lost in a probation of `probes` that take a verdict back, on a link whose paced
/// probes lost `lost` of `resolved` before: at least [`PROBATION_LOSSES`], and more than the
/// link's own loss would lose in all but about one probation of a hundred (the expected count
/// and 2.33 of its standard deviations, as for a Poisson count, then the next whole number). At
/// a fixed three of sixteen, a limiter on a link of 4 % loss lost its verdict once in 40
/// probations, and as its bursts went back to the limiter the route moved: `echo-limited-lossy`
/// 1.1 moves a simulated day, 0.1 now (1,000 seeds of an hour).
pub fn probation_losses(probes: u32, (lost, resolved): (u32, u32)) -> u32 {
    // Laplace's estimate: a few lost in a few dozen is not taken for none.
    let (lost, resolved) = (u64::from(lost) + 1, u64::from(resolved) + 2);
    let expected_milli = u64::from(probes) * lost * 1000 / resolved;
    let spread_milli = isqrt(expected_milli * 1000) * 233 / 100;
    let losses = (expected_milli + spread_milli) / 1000 + 2;
    (losses as u32).max(PROBATION_LOSSES)
}

/// The test's z, squared: three standard errors (one-sided 99.87 %, looked at up to 20 times in
/// a calibration), as a limiter wrongly found costs a target its bursts until the next one. At
/// four, a bucket of ten at ten a second needed more outcomes than the target's 16 probes in
/// flight let a calibration have in time.
const Z_SQUARED: u64 = 9;

/// One target's tallies and verdict, `(lost, resolved)` each.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limiter {
    paced: (u32, u32),
    /// The calibration under way; `None` once it told (outcomes still coming are not counted).
    calibration: Option<(u32, u32)>,
    /// The last calibration found the target dropping what a burst sends.
    pub limits: bool,
}

/// What a calibration outcome told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Undecided,
    Limits,
    DoesNotLimit,
}

impl Limiter {
    pub fn count_paced(&mut self, answered: bool) {
        self.paced = (self.paced.0 + u32::from(!answered), self.paced.1 + 1);
        if self.paced.1 >= PACED_CAP {
            self.paced = (self.paced.0.div_ceil(2), self.paced.1 / 2);
        }
    }

    /// The paced outcomes counted, `(lost, resolved)`.
    pub fn paced(&self) -> (u32, u32) {
        self.paced
    }

    /// Whether there are paced outcomes enough to compare a calibration with.
    pub fn ready(&self) -> bool {
        self.paced.1 >= LEAST_PACED
    }

    pub fn start_calibration(&mut self) {
        self.calibration = Some((0, 0));
    }

    /// Takes the verdict that the target limits back: a fault, not a limiter, lost the
    /// calibration's probes (the link's probation found it).
    pub fn take_back(&mut self) {
        self.limits = false;
    }

    pub fn calibrating(&self) -> bool {
        self.calibration.is_some()
    }

    /// Stops the calibration under way without a verdict: its outcomes still coming are not
    /// counted.
    pub fn abandon_calibration(&mut self) {
        self.calibration = None;
    }

    /// Counts one calibration outcome. A limiter is found as soon as the test tells; its
    /// absence only once the whole calibration is in.
    pub fn count_calibration(&mut self, answered: bool) -> Verdict {
        let Some((lost, resolved)) = self.calibration else { return Verdict::Undecided };
        let (lost, resolved) = (lost + u32::from(!answered), resolved + 1);
        self.calibration = Some((lost, resolved));
        let verdict = if resolved >= LEAST_CALIBRATION && self.loses_more(lost, resolved) {
            Verdict::Limits
        } else if resolved >= CALIBRATION_PROBES {
            Verdict::DoesNotLimit
        } else {
            return Verdict::Undecided;
        };
        self.limits = verdict == Verdict::Limits;
        self.calibration = None;
        verdict
    }

    /// Whether the calibration lost more than the paced probes by over three standard errors (a
    /// two-proportion test with the pooled share, in integers).
    fn loses_more(&self, lost: u32, resolved: u32) -> bool {
        let (lp, np) = (u64::from(self.paced.0), u64::from(self.paced.1));
        let (lc, nc) = (u64::from(lost), u64::from(resolved));
        if np == 0 || lc * np <= lp * nc {
            return false;
        }
        let (lost, all) = (lp + lc, np + nc);
        let difference = lc * np - lp * nc;
        difference * difference * all > Z_SQUARED * lost * (all - lost) * nc * np
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paced(lost: u32, answered: u32) -> Limiter {
        let mut limiter = Limiter::default();
        (0..lost).for_each(|_| limiter.count_paced(false));
        (0..answered).for_each(|_| limiter.count_paced(true));
        limiter
    }

    fn calibrate(limiter: &mut Limiter, answers: impl Iterator<Item = bool>) -> Verdict {
        limiter.start_calibration();
        let mut verdict = Verdict::Undecided;
        for answered in answers {
            verdict = limiter.count_calibration(answered);
            if verdict != Verdict::Undecided {
                break;
            }
        }
        verdict
    }

    #[test]
    fn a_bucket_of_ten_at_ten_a_second_is_found_within_the_calibration() {
        // Thirty a second: the first ten answered, then one in three.
        let mut limiter = paced(0, 30);
        let answers = (0..CALIBRATION_PROBES).map(|i| i < 10 || i % 3 == 0);
        assert_eq!(calibrate(&mut limiter, answers), Verdict::Limits);
        assert!(limiter.limits);
    }

    #[test]
    fn loss_that_treats_every_probe_alike_is_no_limiter() {
        // 30 % lost, paced and calibration alike (every third and a bit), and none at all.
        let mut limiter = paced(9, 21);
        let answers = (0..CALIBRATION_PROBES).map(|i| i % 10 >= 3);
        assert_eq!(calibrate(&mut limiter, answers), Verdict::DoesNotLimit);
        let mut clean = paced(0, 30);
        assert_eq!(calibrate(&mut clean, std::iter::repeat(true)), Verdict::DoesNotLimit);
        assert!(!clean.limits);
    }

    #[test]
    fn a_later_calibration_clears_the_verdict_and_the_paced_tally_follows_the_target() {
        let mut limiter = paced(0, 30);
        assert_eq!(calibrate(&mut limiter, (0..40).map(|i| i < 10)), Verdict::Limits);
        assert_eq!(calibrate(&mut limiter, std::iter::repeat(true)), Verdict::DoesNotLimit);
        assert!(!limiter.limits);
        let limiter = paced(100, 100);
        assert!(limiter.paced.1 < PACED_CAP && limiter.ready());
        assert!(!paced(0, LEAST_PACED - 1).ready());
    }

    #[test]
    fn halving_the_paced_tally_keeps_a_lone_loss() {
        let limiter = paced(1, PACED_CAP - 1);
        assert_eq!(limiter.paced(), (1, PACED_CAP / 2));
    }

    #[test]
    fn a_lossy_link_needs_more_lost_paced_probes_to_take_a_verdict_back() {
        // Sixteen paced probes (two targets); what was lost of 64 paced probes before.
        assert_eq!(probation_losses(16, (0, 64)), PROBATION_LOSSES);
        // ~4.7 % (Laplace): 5 or more of 16 is 1 in ~490 probations at that loss.
        assert_eq!(probation_losses(16, (3, 64)), 5);
        // ~10.6 %: 6 or more of 16 is 1 in ~225.
        assert_eq!(probation_losses(16, (6, 64)), 6);
        // Every probe lost before: never more than the probation has.
        assert!(probation_losses(16, (64, 64)) > 16);
    }
}
