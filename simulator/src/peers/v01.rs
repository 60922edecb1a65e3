//! wanmon v0.1's engine, compact: each target probed once a second (the link's targets in turn),
//! a probe lost after 800 ms; per target over its last 10 outcomes the median RTT, the *mean*
//! absolute difference of consecutive RTTs as jitter, and the share lost; a link's figures the
//! median of its answering targets'; `score = latency + jitter + loss² / 10 + bias`, smoothed
//! over 4 s. The route moves at once off a link silent for 3 s (or without carrier), and to a
//! link whose smoothed score is lower by the hysteresis 20 for 5 s (30 s for a failback).
//!
//! Source: this repository at the v0.1 engine (commit 91fc0ce: `controller/src/core/engine.rs`,
//! `telemetry.rs`, `score.rs`, and the defaults in `config.rs`). Stepped every 50 ms, so its
//! times are exact to that step.

use super::{Outcome, World};
use std::collections::VecDeque;

const INTERVAL_S: f64 = 1.0;
const TIMEOUT_S: f64 = 0.8;
const WINDOW: usize = 10;
const DEAD_AFTER_S: f64 = 3.0;
const SMOOTHING_S: f64 = 4.0;
const HYSTERESIS: f64 = 20.0;
const SWITCH_HOLD_S: f64 = 5.0;
const FAILBACK_HOLD_S: f64 = 30.0;
const LOSS_DIVISOR: f64 = 10.0;
const STEP_S: f64 = 0.05;
/// v0.1 sent 16-byte ICMP echoes: 36-byte IP packets each way.
const BYTES_PER_PROBE: u64 = 2 * 36;

#[derive(Clone, Default)]
struct Target {
    window: VecDeque<Option<f64>>,
    /// The window's figures, computed as it changes: the model rescores every 50 ms step, its
    /// windows change once a second.
    figures: Option<(f64, f64, f64)>,
    last_reply: Option<f64>,
}

impl Target {
    fn push(&mut self, outcome: Option<f64>) {
        self.window.push_back(outcome);
        if self.window.len() > WINDOW {
            self.window.pop_front();
        }
        self.figures = figures(self.window.make_contiguous());
    }

    fn clear(&mut self) {
        self.window.clear();
        self.figures = None;
    }
}

/// Latency, jitter and loss (%) of one window.
pub fn figures(window: &[Option<f64>]) -> Option<(f64, f64, f64)> {
    let mut replies: Vec<f64> = window.iter().flatten().copied().collect();
    if replies.is_empty() {
        return None;
    }
    let steps: Vec<f64> = replies.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let jitter =
        if steps.is_empty() { 0.0 } else { steps.iter().sum::<f64>() / steps.len() as f64 };
    let loss = (window.len() - replies.len()) as f64 * 100.0 / window.len() as f64;
    Some((median(&mut replies), jitter, loss))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

#[derive(Clone, Default)]
struct Link {
    targets: Vec<Target>,
    next_probe: f64,
    cursor: usize,
    last_reply: Option<f64>,
    dead: bool,
    score: Option<f64>,
    scored_at: f64,
    better_since: Option<f64>,
}

impl Link {
    /// The raw score from the targets that answered within `DEAD_AFTER_S`.
    fn raw_score(&self, now: f64, bias: f64) -> Option<f64> {
        let answering =
            self.targets.iter().filter(|t| t.last_reply.is_some_and(|r| now - r <= DEAD_AFTER_S));
        let all: Vec<(f64, f64, f64)> = answering.filter_map(|t| t.figures).collect();
        if all.is_empty() {
            return None;
        }
        let mut values = Vec::with_capacity(all.len());
        let mut part = |pick: fn(&(f64, f64, f64)) -> f64| {
            values.clear();
            values.extend(all.iter().map(pick));
            median(&mut values)
        };
        let (latency, jitter, loss) = (part(|f| f.0), part(|f| f.1), part(|f| f.2));
        Some(latency + jitter + loss * loss / LOSS_DIVISOR + bias)
    }

    fn rescore(&mut self, now: f64, bias: f64) {
        let raw = self.raw_score(now, bias);
        self.score = match (raw, self.score) {
            (Some(raw), Some(old)) => {
                let dt = now - self.scored_at;
                Some(old + (raw - old) * dt / (SMOOTHING_S + dt))
            }
            (raw, _) => raw,
        };
        self.scored_at = now;
    }
}

/// The state of the whole run: links, probes in flight, the route.
struct Run {
    links: Vec<Link>,
    biases: Vec<f64>,
    /// `(resolves at, link, target, sent, round trip if answered)`.
    in_flight: Vec<(f64, usize, usize, f64, Option<f64>)>,
    current: Option<usize>,
}

impl Run {
    fn send_due(&mut self, world: &mut World, now: f64) {
        for (index, link) in self.links.iter_mut().enumerate() {
            let alive = world.carrier_up(index, now);
            while link.next_probe <= now {
                let target = link.cursor % link.targets.len();
                link.cursor += 1;
                let sent = link.next_probe;
                link.next_probe += INTERVAL_S / link.targets.len() as f64;
                let rtt = if alive { world.ping(index, target, sent) } else { None };
                let rtt = rtt.filter(|r| *r < TIMEOUT_S * 1000.0);
                let resolves = sent + rtt.map_or(TIMEOUT_S, |r| r / 1000.0);
                self.in_flight.push((resolves, index, target, sent, rtt));
            }
            if !alive && !link.dead {
                link.dead = true;
            }
        }
    }

    fn resolve_due(&mut self, now: f64) {
        let mut i = 0;
        while i < self.in_flight.len() {
            let (at, link, target, _, rtt) = self.in_flight[i];
            if at > now {
                i += 1;
                continue;
            }
            self.in_flight.swap_remove(i);
            let l = &mut self.links[link];
            let t = &mut l.targets[target];
            if rtt.is_some() {
                if l.dead {
                    // Back: a fresh window.
                    l.dead = false;
                    for t in &mut l.targets {
                        t.clear();
                    }
                }
                let t = &mut l.targets[target];
                t.last_reply = Some(at);
                l.last_reply = Some(at);
                t.push(rtt);
            } else {
                t.push(None);
            }
        }
    }

    fn decide(&mut self, now: f64, outcome: &mut Outcome) {
        for (index, link) in self.links.iter_mut().enumerate() {
            if link.last_reply.is_none_or(|r| now - r >= DEAD_AFTER_S) && now >= DEAD_AFTER_S {
                link.dead = true;
            }
            link.rescore(now, self.biases[index]);
        }
        let live = |l: &Link| !l.dead && l.score.is_some();
        let best = (0..self.links.len()).filter(|i| live(&self.links[*i])).min_by(|a, b| {
            self.links[*a].score.unwrap_or(0.0).total_cmp(&self.links[*b].score.unwrap_or(0.0))
        });
        let Some(best) = best else { return };
        let Some(current) = self.current else {
            if now >= DEAD_AFTER_S || self.links.iter().all(|l| l.last_reply.is_some()) {
                self.current = Some(best);
                outcome.route_to(now, best);
            }
            return;
        };
        if !live(&self.links[current]) {
            self.current = Some(best);
            outcome.route_to(now, best);
            return;
        }
        self.hold_and_switch(now, current, outcome);
    }

    fn hold_and_switch(&mut self, now: f64, current: usize, outcome: &mut Outcome) {
        let current_score = self.links[current].score.unwrap_or(f64::INFINITY);
        for index in 0..self.links.len() {
            let link = &mut self.links[index];
            let better = index != current
                && !link.dead
                && link.score.is_some_and(|s| s <= current_score - HYSTERESIS);
            if !better {
                link.better_since = None;
                continue;
            }
            let since = *link.better_since.get_or_insert(now);
            let hold =
                if index < current { FAILBACK_HOLD_S.max(SWITCH_HOLD_S) } else { SWITCH_HOLD_S };
            if now - since >= hold {
                self.current = Some(index);
                outcome.route_to(now, index);
                for link in &mut self.links {
                    link.better_since = None;
                }
                return;
            }
        }
    }
}

pub fn run(world: &mut World, end_s: f64) -> Outcome {
    let links = world.links();
    let mut run = Run {
        links: (0..links)
            .map(|i| Link { targets: vec![Target::default(); world.targets(i)], ..Link::default() })
            .collect(),
        biases: (0..links).map(|i| world.bias(i)).collect(),
        in_flight: Vec::new(),
        current: None,
    };
    let mut outcome = Outcome::new(links, BYTES_PER_PROBE);
    let mut now = 0.0;
    while now <= end_s {
        run.send_due(world, now);
        run.resolve_due(now);
        run.decide(now, &mut outcome);
        now += STEP_S;
    }
    world.finish(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_outlier_lifts_the_mean_jitter() {
        // Nine replies of 20 ms and one of 800 ms in the middle: two steps of 780 ms among nine,
        // a jitter of 173.3 ms; the median stays 20.
        let mut window = vec![Some(20.0); 10];
        window[5] = Some(800.0);
        let (latency, jitter, loss) = figures(&window).unwrap();
        assert_eq!((latency, loss), (20.0, 0.0));
        assert!((jitter - 1560.0 / 9.0).abs() < 1e-9, "{jitter}");
        window[0] = None;
        assert_eq!(figures(&window).unwrap().2, 10.0);
    }
}
