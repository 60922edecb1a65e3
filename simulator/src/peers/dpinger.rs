//! dpinger as pfSense runs it for each gateway: an echo to the monitor IP every 500 ms, a probe
//! lost once unanswered for 2 s, and every second the mean latency and the loss over the last
//! 60 s. A gateway is down at the "down" thresholds (loss 20 %, latency 500 ms); a gateway group
//! with the default trigger "Member Down" uses the first tier that is not down, with no hold in
//! either direction beyond the averaging.
//!
//! Source: docs.netgate.com, pfSense "Gateway Settings" (probe interval 500 ms, loss interval
//! 2000 ms, time period 60000 ms, alert interval 1000 ms, latency thresholds 200/500 ms, packet
//! loss thresholds 10/20 %, data payload 1 byte) and "Gateway Groups" (tiers, trigger level).
//! One monitor IP per gateway: the link's first target.

use super::{Outcome, World};
use std::collections::VecDeque;

const SEND_EVERY_S: f64 = 0.5;
const LOSS_AFTER_S: f64 = 2.0;
const PERIOD_S: f64 = 60.0;
const ALERT_EVERY_S: f64 = 1.0;
const DOWN_LOSS_PERCENT: f64 = 20.0;
const DOWN_LATENCY_MS: f64 = 500.0;
/// A 1-byte payload: 29-byte IP packets each way.
const BYTES_PER_PROBE: u64 = 2 * 29;

/// The probes of the last period: `(sent, round trip in ms or None)`.
#[derive(Debug, Default)]
pub struct Monitor {
    probes: VecDeque<(f64, Option<f64>)>,
}

impl Monitor {
    pub fn sent(&mut self, t_s: f64, rtt_ms: Option<f64>) {
        self.probes.push_back((t_s, rtt_ms.filter(|rtt| *rtt < LOSS_AFTER_S * 1000.0)));
        while self.probes.front().is_some_and(|(sent, _)| *sent < t_s - PERIOD_S) {
            self.probes.pop_front();
        }
    }

    /// Whether the gateway is down at `t_s`: mean latency and loss over the period, counting
    /// only probes answered by now or old enough to be lost.
    pub fn down(&self, t_s: f64) -> bool {
        let (mut replies, mut total_ms, mut lost) = (0u32, 0.0, 0u32);
        for (sent, rtt) in self.probes.iter().filter(|(sent, _)| *sent >= t_s - PERIOD_S) {
            match rtt {
                Some(rtt) if sent + rtt / 1000.0 <= t_s => {
                    replies += 1;
                    total_ms += rtt;
                }
                None if sent + LOSS_AFTER_S <= t_s => lost += 1,
                _ => {}
            }
        }
        let resolved = replies + lost;
        let loss = if resolved == 0 { 0.0 } else { f64::from(lost) * 100.0 / f64::from(resolved) };
        let latency = if replies == 0 { 0.0 } else { total_ms / f64::from(replies) };
        loss >= DOWN_LOSS_PERCENT || latency >= DOWN_LATENCY_MS
    }
}

/// When `link` is up and down until `end_s`.
fn watch(world: &mut World, link: usize, end_s: f64) -> Vec<(f64, bool)> {
    let mut monitor = Monitor::default();
    let mut changes = Vec::new();
    let mut down = false;
    let (mut next_send, mut next_alert) = (0.0, ALERT_EVERY_S);
    while next_alert <= end_s {
        while next_send <= next_alert {
            let rtt = world.ping(link, 0, next_send);
            monitor.sent(next_send, rtt);
            next_send += SEND_EVERY_S;
        }
        let now_down = monitor.down(next_alert);
        if now_down != down {
            down = now_down;
            changes.push((next_alert, !down));
        }
        next_alert += ALERT_EVERY_S;
    }
    changes
}

pub fn run(world: &mut World, end_s: f64) -> Outcome {
    super::run_per_link(world, end_s, BYTES_PER_PROBE, watch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifth_of_the_period_lost_is_down() {
        // Hand count: 120 probes a minute. At t = 60 + k into a total outage that follows a clean
        // minute, the probes sent in the last 2 s are pending: 2k − 3 lost and 120 − 2k answered,
        // 117 resolved. Down once (2k − 3) / 117 ≥ 20 %, k ≥ 13.2: at k = 13.5, the first
        // half second after.
        let mut monitor = Monitor::default();
        let mut t = 0.0;
        while t < 60.0 {
            monitor.sent(t, Some(20.0));
            t += SEND_EVERY_S;
        }
        let mut down_at = None;
        while t < 120.0 {
            monitor.sent(t, None);
            t += SEND_EVERY_S;
            if down_at.is_none() && monitor.down(t) {
                down_at = Some(t);
            }
        }
        assert_eq!(down_at, Some(73.5));
    }

    #[test]
    fn a_slow_mean_is_down_too() {
        let mut monitor = Monitor::default();
        for i in 0..120 {
            monitor.sent(f64::from(i) * 0.5, Some(if i % 2 == 0 { 100.0 } else { 900.0 }));
        }
        assert!(monitor.down(61.0), "a mean of 500 ms");
    }
}
