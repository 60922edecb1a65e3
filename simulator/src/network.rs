//! A simulated link's path, packet by packet: what its `Condition` does to one probe's round
//! trip (the replay) or to one packet in one direction (the relay). Seeded: the same draws give
//! the same fates on every machine, and every packet takes the same number of draws, so one
//! change does not shift every later draw.

use crate::condition::{Carrier, Condition};

/// splitmix64: tiny, seedable, and the same on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly standard normal: four uniforms summed and scaled (Irwin–Hall), cut off at ±3.5σ.
    pub fn normal(&mut self) -> f64 {
        ((0..4).map(|_| self.unit()).sum::<f64>() - 2.0) * 3.0_f64.sqrt()
    }
}

/// The numbers one packet's fate is drawn from, always all of them.
struct Draws {
    lost: f64,
    burst: f64,
    state: f64,
    spread: f64,
    in_tail: f64,
    tail: f64,
}

/// One link's path: its condition, the state of its bursty loss, and its random numbers.
#[derive(Clone, Debug)]
pub struct Path {
    pub condition: Condition,
    /// In the bad state of the Gilbert–Elliott model.
    bad: bool,
    rng: Rng,
    /// Each target's rate limiter: tokens left, and when they were counted (scenario seconds).
    limiters: Vec<(f64, f64)>,
}

impl Path {
    pub fn new(condition: Condition, seed: u64) -> Path {
        Path { condition, bad: false, rng: Rng::new(seed), limiters: Vec::new() }
    }

    /// Whether `target`'s rate limiter lets an echo request through at `t_s` (it takes a token).
    /// Draws nothing: the limiter changes no other packet's draws.
    fn limiter_passes(&mut self, target: usize, t_s: f64) -> bool {
        let Some(limit) = self.condition.echo_limit_per_s else { return true };
        if self.limiters.len() <= target {
            self.limiters.resize(target + 1, (limit, t_s));
        }
        let (tokens, at_s) = &mut self.limiters[target];
        *tokens = (*tokens + (t_s - *at_s).max(0.0) * limit).min(limit);
        *at_s = t_s;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }

    fn draws(&mut self) -> Draws {
        Draws {
            lost: self.rng.unit(),
            burst: self.rng.unit(),
            state: self.rng.unit(),
            spread: self.rng.normal(),
            in_tail: self.rng.unit(),
            tail: self.rng.unit(),
        }
    }

    /// Moves the bursty loss one packet on; true if the packet is lost to it.
    fn burst_loss(&mut self, draws: &Draws) -> bool {
        let Some(bursts) = self.condition.bursts else {
            self.bad = false;
            return false;
        };
        let flip = if self.bad { bursts.leave_percent } else { bursts.enter_percent };
        if draws.state * 100.0 < flip {
            self.bad = !self.bad;
        }
        self.bad && draws.burst * 100.0 < bursts.loss_percent
    }

    /// Extra delay of this packet: spikes (at scenario time `t_s`) and the heavy tail.
    fn extra_ms(&self, draws: &Draws, t_s: f64) -> f64 {
        let spike = self.condition.spikes.map_or(0.0, |s| s.extra_at(t_s));
        let tail = match self.condition.delay_tail {
            Some(tail) if draws.in_tail * 100.0 < tail.percent => tail.delay(draws.tail),
            _ => 0.0,
        };
        spike + tail
    }

    fn blocked(&self, target: Option<usize>) -> bool {
        let c = &self.condition;
        c.outage
            || c.carrier == Carrier::Down
            || target.is_some_and(|t| c.unreachable_targets.contains(&t))
    }

    /// One probe to `target` at scenario time `t_s`: its round-trip time in ms, or `None` when
    /// it or its reply is lost.
    pub fn round_trip(&mut self, target: usize, t_s: f64) -> Option<f64> {
        let out = self.draws();
        let back_lost = self.rng.unit();
        let burst = self.burst_loss(&out);
        let lost_out =
            self.blocked(Some(target)) || burst || out.lost * 100.0 < self.condition.loss_percent;
        // A request that reaches the target takes a token, whether or not its reply comes back.
        if lost_out || !self.limiter_passes(target, t_s) {
            return None;
        }
        let c = &self.condition;
        if back_lost * 100.0 < c.return_loss_percent {
            return None;
        }
        let rtt = c.latency_ms + c.target_extra_ms(target) + out.spread * c.jitter_ms;
        Some((rtt + self.extra_ms(&out, t_s)).max(0.05))
    }

    /// One packet in one direction at scenario time `t_s` (`target` is where an outbound packet
    /// goes): its delay in ms, or `None` when it is lost. Half the round trip each way, the
    /// jitter split so a round trip has it all; loss out on the way out, return loss on the way
    /// back; spikes and the tail on the way out, so a round trip gets them once.
    pub fn one_way(&mut self, target: Option<usize>, outbound: bool, t_s: f64) -> Option<f64> {
        let draws = self.draws();
        let c = self.condition.clone();
        let half = |ms: f64| ms / 2.0;
        let spread = draws.spread * c.jitter_ms / std::f64::consts::SQRT_2;
        if outbound {
            let burst = self.burst_loss(&draws);
            if self.blocked(target) || burst || draws.lost * 100.0 < c.loss_percent {
                return None;
            }
            if target.is_some_and(|t| !self.limiter_passes(t, t_s)) {
                return None;
            }
            let target_extra = target.map_or(0.0, |t| c.target_extra_ms(t));
            let delay = half(c.latency_ms) + target_extra + spread + self.extra_ms(&draws, t_s);
            return Some(delay.max(0.0));
        }
        if self.blocked(None) || draws.lost * 100.0 < c.return_loss_percent {
            return None;
        }
        Some((half(c.latency_ms) + spread).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::{Bursts, Spikes};

    fn share_lost(path: &mut Path, n: usize) -> f64 {
        (0..n).filter(|i| path.round_trip(0, *i as f64).is_none()).count() as f64 / n as f64
    }

    #[test]
    fn loss_out_and_back_add_up() {
        let mut condition = Condition::new(20.0, 0.0, 10.0);
        condition.return_loss_percent = 10.0;
        let lost = share_lost(&mut Path::new(condition, 1), 20_000);
        assert!((0.17..0.21).contains(&lost), "{lost}");
    }

    #[test]
    fn bursty_loss_comes_in_runs() {
        let mut condition = Condition::new(20.0, 0.0, 0.0);
        condition.bursts =
            Some(Bursts { enter_percent: 1.0, leave_percent: 20.0, loss_percent: 100.0 });
        let mut path = Path::new(condition, 2);
        let lost: Vec<bool> = (0..50_000).map(|i| path.round_trip(0, i as f64).is_none()).collect();
        let share = lost.iter().filter(|l| **l).count() as f64 / lost.len() as f64;
        // In the bad state 1/(1+20) of the time: about 4.8 % lost, in runs averaging 5.
        assert!((0.035..0.06).contains(&share), "{share}");
        let runs = lost.windows(2).filter(|w| w[1] && !w[0]).count();
        let mean_run = lost.iter().filter(|l| **l).count() as f64 / runs as f64;
        assert!((4.0..6.5).contains(&mean_run), "{mean_run}");
    }

    #[test]
    fn spikes_target_latency_and_blocking() {
        let mut condition = Condition::new(20.0, 0.0, 0.0);
        condition.spikes = Some(Spikes { every_s: 20.0, last_s: 1.0, extra_ms: 800.0, at_s: 0.0 });
        condition.target_latency_ms = vec![0.0, 100.0];
        let mut path = Path::new(condition, 3);
        assert_eq!(path.round_trip(0, 0.5), Some(820.0));
        assert_eq!(path.round_trip(1, 5.0), Some(120.0));
        path.condition.unreachable_targets = vec![1];
        assert_eq!(path.round_trip(1, 5.0), None);
        assert!(path.round_trip(0, 5.0).is_some());
        path.condition.carrier = Carrier::Down;
        assert_eq!(path.one_way(Some(0), true, 5.0), None);
        assert_eq!(path.one_way(None, false, 5.0), None);
    }

    #[test]
    fn a_rate_limited_target_answers_its_rate_and_a_second_saved_up() {
        let mut condition = Condition::new(20.0, 0.0, 0.0);
        condition.echo_limit_per_s = Some(10.0);
        let mut path = Path::new(condition, 5);
        // Thirty a second for two seconds: the second's worth saved up, then ten a second over
        // the 1.97 s from the first to the last.
        let answered = (0..60).filter(|i| path.round_trip(0, f64::from(*i) / 30.0).is_some());
        assert_eq!(answered.count(), 10 + 19);
        // Each target has its own bucket; one a second always passes.
        assert!(path.round_trip(1, 2.0).is_some());
        assert!((3..10).all(|s| path.round_trip(0, f64::from(s)).is_some()));
        assert!(path.one_way(Some(1), true, 2.01).is_some());
    }

    #[test]
    fn one_way_is_half_a_round_trip() {
        let mut path = Path::new(Condition::new(50.0, 0.0, 0.0), 4);
        assert_eq!(path.one_way(Some(0), true, 0.0), Some(25.0));
        assert_eq!(path.one_way(None, false, 0.0), Some(25.0));
    }
}
