//! What a simulated link's path does at some moment, and the changes a scenario's timeline makes
//! to it. Every engine reads a `Condition` the same way: the replay draws each probe's fate from
//! it, the relay and netem impair real packets by it.

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Carrier {
    Up,
    Down,
}

/// Bursty loss (Gilbert–Elliott): per packet, the path enters a bad state with one chance and
/// leaves it with another; in the bad state it loses `loss_percent` of the packets.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bursts {
    pub enter_percent: f64,
    pub leave_percent: f64,
    #[serde(default = "all")]
    pub loss_percent: f64,
}

fn all() -> f64 {
    100.0
}

/// Periodic delay spikes: every `every_s` seconds (from `at_s` into each period), the path is
/// `extra_ms` slower for `last_s` seconds.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spikes {
    pub every_s: f64,
    pub last_s: f64,
    pub extra_ms: f64,
    #[serde(default)]
    pub at_s: f64,
}

impl Spikes {
    /// The extra delay at time `t_s`.
    pub fn extra_at(&self, t_s: f64) -> f64 {
        let into = (t_s - self.at_s).rem_euclid(self.every_s);
        if into < self.last_s { self.extra_ms } else { 0.0 }
    }
}

/// A heavy tail of delay: `percent` of the packets are late by a Pareto-distributed amount
/// (shape 1.5) of scale `scale_ms`: mostly a little, now and then a lot.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tail {
    pub percent: f64,
    pub scale_ms: f64,
}

impl Tail {
    /// The delay a packet in the tail gets, from a uniform draw in (0, 1].
    pub fn delay(&self, uniform: f64) -> f64 {
        self.scale_ms * (uniform.max(1e-9).powf(-1.0 / 1.5) - 1.0)
    }
}

/// What a link's path does at some moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The round-trip time, half each way.
    pub latency_ms: f64,
    /// The spread of the round-trip time (a normal distribution's standard deviation).
    pub jitter_ms: f64,
    /// Loss on the way out (router to target).
    pub loss_percent: f64,
    /// Loss on the way back (the replies), on top of the loss out.
    pub return_loss_percent: f64,
    pub bursts: Option<Bursts>,
    pub spikes: Option<Spikes>,
    pub delay_tail: Option<Tail>,
    /// Extra round-trip time of each target (by index); missing ones have none.
    pub target_latency_ms: Vec<f64>,
    /// Every packet dropped on the ISP side; the link itself stays up.
    pub outage: bool,
    pub carrier: Carrier,
    /// Indexes of targets that do not answer on this link.
    pub unreachable_targets: Vec<usize>,
    /// Echo requests each target answers a second at most, as a target's ICMP rate limiter
    /// does: a token bucket holding a second's worth; what finds it empty goes unanswered.
    pub echo_limit_per_s: Option<f64>,
}

impl Condition {
    /// A working link with this latency, jitter and loss: carrier up, no outage, every target
    /// answering, no bursts, spikes or tail.
    pub fn new(latency_ms: f64, jitter_ms: f64, loss_percent: f64) -> Condition {
        Condition {
            latency_ms,
            jitter_ms,
            loss_percent,
            return_loss_percent: 0.0,
            bursts: None,
            spikes: None,
            delay_tail: None,
            target_latency_ms: Vec::new(),
            outage: false,
            carrier: Carrier::Up,
            unreachable_targets: Vec::new(),
            echo_limit_per_s: None,
        }
    }

    /// Extra round-trip time of target `index`.
    pub fn target_extra_ms(&self, index: usize) -> f64 {
        self.target_latency_ms.get(index).copied().unwrap_or(0.0)
    }

    /// Whether the kernel's netem can impair a link like this (it cannot tell targets apart,
    /// and its delay distributions are not these).
    pub fn netem_can(&self) -> Result<(), &'static str> {
        if self.target_latency_ms.iter().any(|t| *t != 0.0) {
            return Err("target_latency_ms (netem cannot tell targets apart)");
        }
        if self.spikes.is_some() {
            return Err("spikes (a timed change netem is not told of)");
        }
        if self.echo_limit_per_s.is_some() {
            return Err("echo_limit_per_s (netem has no per-target rate limiter)");
        }
        if self.delay_tail.is_some() {
            return Err("delay_tail (netem's distributions have no such tail)");
        }
        Ok(())
    }
}

/// From some moment on, some fields of a link's condition change.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Change {
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_percent: Option<f64>,
    pub return_loss_percent: Option<f64>,
    /// `Some(None)` turns bursts off.
    pub bursts: Option<Option<Bursts>>,
    pub spikes: Option<Option<Spikes>>,
    pub delay_tail: Option<Option<Tail>>,
    pub target_latency_ms: Option<Vec<f64>>,
    pub outage: Option<bool>,
    pub carrier: Option<Carrier>,
    pub unreachable_targets: Option<Vec<usize>>,
    /// `Some(None)`: no limiter (what a change's undo puts back on a link that had none).
    pub echo_limit_per_s: Option<Option<f64>>,
    /// Back to the link's base condition first, then the other fields.
    pub restore: bool,
}

impl Change {
    pub fn apply(&self, condition: &mut Condition, base: &Condition) {
        if self.restore {
            *condition = base.clone();
        }
        fn set<T: Clone>(field: &mut T, value: &Option<T>) {
            if let Some(value) = value {
                *field = value.clone();
            }
        }
        set(&mut condition.latency_ms, &self.latency_ms);
        set(&mut condition.jitter_ms, &self.jitter_ms);
        set(&mut condition.loss_percent, &self.loss_percent);
        set(&mut condition.return_loss_percent, &self.return_loss_percent);
        set(&mut condition.bursts, &self.bursts);
        set(&mut condition.spikes, &self.spikes);
        set(&mut condition.delay_tail, &self.delay_tail);
        set(&mut condition.target_latency_ms, &self.target_latency_ms);
        set(&mut condition.outage, &self.outage);
        set(&mut condition.carrier, &self.carrier);
        set(&mut condition.unreachable_targets, &self.unreachable_targets);
        set(&mut condition.echo_limit_per_s, &self.echo_limit_per_s);
    }

    /// The change that puts back the base values of every field this one sets: the end of a
    /// change that lasts a while.
    pub fn undo(&self, base: &Condition) -> Change {
        fn back<T: Clone, U>(field: &Option<U>, base: T) -> Option<T> {
            field.as_ref().map(|_| base)
        }
        Change {
            latency_ms: back(&self.latency_ms, base.latency_ms),
            jitter_ms: back(&self.jitter_ms, base.jitter_ms),
            loss_percent: back(&self.loss_percent, base.loss_percent),
            return_loss_percent: back(&self.return_loss_percent, base.return_loss_percent),
            bursts: back(&self.bursts, base.bursts),
            spikes: back(&self.spikes, base.spikes),
            delay_tail: back(&self.delay_tail, base.delay_tail),
            target_latency_ms: back(&self.target_latency_ms, base.target_latency_ms.clone()),
            outage: back(&self.outage, base.outage),
            carrier: back(&self.carrier, base.carrier),
            unreachable_targets: back(&self.unreachable_targets, base.unreachable_targets.clone()),
            echo_limit_per_s: back(&self.echo_limit_per_s, base.echo_limit_per_s),
            restore: self.restore,
        }
    }

    /// The numeric fields (latency, jitter, losses) moved a share `fraction` of the way from
    /// `from` to this change's values: one step of a ramp.
    pub fn ramp_step(&self, from: &Condition, fraction: f64) -> Change {
        let step = |to: Option<f64>, from: f64| to.map(|to| from + (to - from) * fraction);
        Change {
            latency_ms: step(self.latency_ms, from.latency_ms),
            jitter_ms: step(self.jitter_ms, from.jitter_ms),
            loss_percent: step(self.loss_percent, from.loss_percent),
            return_loss_percent: step(self.return_loss_percent, from.return_loss_percent),
            ..Change::default()
        }
    }

    /// Only numeric fields: what a ramp can move.
    pub fn is_numeric(&self) -> bool {
        let numeric = Change {
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            loss_percent: self.loss_percent,
            return_loss_percent: self.return_loss_percent,
            ..Change::default()
        };
        numeric == *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_sets_only_its_fields_and_its_undo_puts_the_base_back() {
        let base = Condition::new(20.0, 2.0, 0.0);
        let change = Change { latency_ms: Some(300.0), outage: Some(true), ..Change::default() };
        let mut now = base.clone();
        change.apply(&mut now, &base);
        assert_eq!((now.latency_ms, now.jitter_ms, now.outage), (300.0, 2.0, true));
        change.undo(&base).apply(&mut now, &base);
        assert_eq!(now, base);
    }

    #[test]
    fn a_ramp_step_moves_the_numbers_part_of_the_way() {
        let from = Condition::new(20.0, 2.0, 0.0);
        let to = Change { latency_ms: Some(320.0), loss_percent: Some(10.0), ..Change::default() };
        let half = to.ramp_step(&from, 0.5);
        assert_eq!(
            (half.latency_ms, half.loss_percent, half.jitter_ms),
            (Some(170.0), Some(5.0), None)
        );
        assert!(to.is_numeric());
        assert!(!Change { outage: Some(true), ..Change::default() }.is_numeric());
    }

    #[test]
    fn spikes_repeat_and_the_tail_is_heavy() {
        let spikes = Spikes { every_s: 20.0, last_s: 1.0, extra_ms: 800.0, at_s: 10.0 };
        assert_eq!(spikes.extra_at(10.5), 800.0);
        assert_eq!(spikes.extra_at(11.5), 0.0);
        assert_eq!(spikes.extra_at(30.2), 800.0);
        let tail = Tail { percent: 1.0, scale_ms: 100.0 };
        assert_eq!(tail.delay(1.0), 0.0);
        assert!(tail.delay(0.001) > 9_000.0, "one in a thousand: over 9 s");
    }
}
