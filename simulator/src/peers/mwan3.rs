//! mwan3 as OpenWrt ships it: one `mwan3track` per interface pings its track IPs one after
//! another (`ping -c 1 -W 4`, stopping once `reliability` answered), then sleeps `interval`. A
//! round with fewer than `reliability` answers counts down from `down + up` (a good round puts it
//! back at the top); at `up` the interface goes offline. Offline, `up` good rounds in a row bring it back. `check_quality` is
//! off, so latency and loss below total never count. An `ifdown` (the carrier lost) takes the
//! interface out at once; `ifup` brings it back online. The route is on the first online
//! interface by metric (the config's order here).
//!
//! Source: openwrt/packages `net/mwan3/files/usr/sbin/mwan3track` (defaults: reliability 1, count
//! 1, timeout 4 s, interval 10 s, down 5, up 5, size 56) and the shipped `/etc/config/mwan3`,
//! whose `wan` has four track IPs and reliability 2.

use super::{Outcome, World};

const TRACK_IPS: usize = 4;
const RELIABILITY: usize = 2;
const TIMEOUT_S: f64 = 4.0;
const INTERVAL_S: f64 = 10.0;
const DOWN: u32 = 5;
const UP: u32 = 5;
/// `ping -s 56`: 84-byte IP packets each way.
const BYTES_PER_PROBE: u64 = 2 * 84;

/// One interface's tracker: its score and whether it counts as online.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tracker {
    score: u32,
    pub online: bool,
}

impl Default for Tracker {
    fn default() -> Tracker {
        Tracker { score: DOWN + UP, online: true }
    }
}

impl Tracker {
    /// One round's result (`answered` track IPs); returns whether `online` changed.
    pub fn round(&mut self, answered: usize) -> bool {
        let was = self.online;
        if answered < RELIABILITY {
            self.score = self.score.saturating_sub(1);
            if self.score < UP {
                self.score = 0;
            }
            if self.score == UP {
                self.online = false;
                self.score = 0;
            }
        } else {
            self.score += 1;
            if self.score > UP {
                self.score = DOWN + UP;
            } else if self.score == UP {
                self.online = true;
                self.score = DOWN + UP;
            }
        }
        self.online != was
    }
}

/// One round of pings from `t_s`: how many track IPs answered, and when the round ended.
fn round(world: &mut World, link: usize, t_s: f64) -> (usize, f64) {
    let (mut answered, mut t) = (0, t_s);
    for ip in 0..TRACK_IPS {
        if answered >= RELIABILITY {
            break;
        }
        match world.ping(link, ip, t).filter(|rtt| *rtt < TIMEOUT_S * 1000.0) {
            Some(rtt) => {
                answered += 1;
                t += rtt / 1000.0;
            }
            None => t += TIMEOUT_S,
        }
    }
    (answered, t)
}

/// When `link` is online and offline until `end_s`.
fn track(world: &mut World, link: usize, end_s: f64) -> Vec<(f64, bool)> {
    let mut carrier = world.carrier_changes(link).into_iter().peekable();
    let mut changes = Vec::new();
    let mut tracker = Tracker::default();
    let mut t = 0.0;
    while t < end_s {
        if let Some((down_at, _)) = carrier.next_if(|(at, up)| *at <= t && !*up) {
            // ifdown: out at once; tracking starts again, online, at the ifup.
            changes.push((down_at, false));
            let Some((up_at, _)) = carrier.next() else { break };
            changes.push((up_at, true));
            tracker = Tracker::default();
            t = up_at;
            continue;
        }
        let (answered, ended) = round(world, link, t);
        if tracker.round(answered) {
            changes.push((ended, tracker.online));
        }
        t = ended + INTERVAL_S;
    }
    changes
}

pub fn run(world: &mut World, end_s: f64) -> Outcome {
    super::run_per_link(world, end_s, BYTES_PER_PROBE, track)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failed_rounds_take_it_offline_and_five_good_ones_bring_it_back() {
        let mut tracker = Tracker::default();
        let flips: Vec<bool> = (0..5).map(|_| tracker.round(1)).collect();
        assert_eq!(flips, [false, false, false, false, true]);
        assert!(!tracker.online);
        // Online, one good round puts the count back to the top: the failures must be in a row.
        let mut shaky = Tracker::default();
        for answered in [0, 0, 0, 0, 2, 0, 0, 0, 0] {
            assert!(!shaky.round(answered));
        }
        assert!(shaky.round(0), "the fifth failure in a row");
        let back: Vec<bool> = (0..5).map(|_| tracker.round(2)).collect();
        assert_eq!(back, [false, false, false, false, true]);
        assert!(tracker.online);
    }

    #[test]
    fn a_hard_outage_takes_five_rounds_of_four_timeouts() {
        // Hand count: each failed round pings all four IPs (4 s each), then sleeps 10 s: 26 s a
        // round; the fifth ends 4 × 26 + 16 = 120 s after the outage began at a round's start.
        let text = "duration_s: 400\nlinks:\n  - { name: wan, latency_ms: 10 }\n  - { name: wwan, latency_ms: 40 }\ntimeline:\n  - { at_s: 0, link: wan, outage: true }\nexpect:\n  - final: wwan\n";
        let scenario =
            crate::scenario::Scenario::parse(std::path::Path::new("t.yaml"), text).unwrap();
        let mut world = World::new(&scenario);
        let changes = track(&mut world, 0, 400.0);
        assert_eq!(changes[0], (120.0, false));
    }
}
