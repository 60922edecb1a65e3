//! The original shell wanmon: every cycle it measures each interface in turn with five
//! `ping -c 1 -W 2` to one host, scores it, averages the last five scores, and moves the route
//! when another interface beats the current one by the hysteresis; then it sleeps `interval`.
//!
//! Its figures, as its code computes them: latency is the *middle element of the unsorted*
//! replies (whole ms), jitter the mean absolute deviation from that, loss 20 % per missing reply;
//! at 80 % loss or more the score is the dead score 99999, otherwise `latency + jitter +
//! loss² / 10 + bias`. An interface that is down counts as 100 % loss.
//!
//! Source: github.com/ng256/WanMonitor (`wm-state.sh`, `wm-select.sh`; interval 60 s as shipped,
//! 10 s as the code's default; hysteresis 20; smoothing over 5 scores) and its article in
//! `../shared/seed/`. The bias is the link's configured bias (the shell takes it from the
//! interface metric).

use super::{Outcome, World};
use std::collections::VecDeque;

const PINGS: usize = 5;
const PING_TIMEOUT_S: f64 = 2.0;
const HARD_LOSS_PERCENT: f64 = 80.0;
const DEAD_SCORE: f64 = 99_999.0;
const LOSS_DIVISOR: f64 = 10.0;
const SMOOTH_WINDOW: usize = 5;
const HYSTERESIS: f64 = 20.0;
/// Busybox `ping` with its default 56-byte payload: 84-byte IP packets each way.
const BYTES_PER_PROBE: u64 = 2 * 84;

/// One interface's score from its replies in arrival order (whole ms) out of five pings.
pub fn score(replies: &[f64], bias: f64) -> f64 {
    let loss = (PINGS - replies.len()) as f64 * 100.0 / PINGS as f64;
    if loss >= HARD_LOSS_PERCENT {
        return DEAD_SCORE;
    }
    let latency = replies[replies.len() / 2];
    let jitter = replies.iter().map(|r| (r - latency).abs()).sum::<f64>() / replies.len() as f64;
    latency + jitter + loss * loss / LOSS_DIVISOR + bias
}

/// Five pings to the host through `link` from `t_s`: the replies, and when the last ended.
fn measure(world: &mut World, link: usize, t_s: f64) -> (Vec<f64>, f64) {
    let mut t = t_s;
    let mut replies = Vec::with_capacity(PINGS);
    if !world.carrier_up(link, t) {
        return (replies, t);
    }
    for _ in 0..PINGS {
        match world.ping(link, 0, t).filter(|rtt| *rtt < PING_TIMEOUT_S * 1000.0) {
            Some(rtt) => {
                replies.push(rtt.floor());
                t += rtt / 1000.0;
            }
            None => t += PING_TIMEOUT_S,
        }
    }
    (replies, t)
}

/// The link to use: the best smoothed score, unless the current one is within the hysteresis.
pub fn choose(current: Option<usize>, smoothed: &[f64]) -> usize {
    let best =
        (0..smoothed.len()).min_by(|a, b| smoothed[*a].total_cmp(&smoothed[*b])).unwrap_or(0);
    match current {
        Some(current) if smoothed[current] - smoothed[best] < HYSTERESIS => current,
        _ => best,
    }
}

pub fn run(world: &mut World, end_s: f64, interval_s: f64) -> Outcome {
    let links = world.links();
    let mut outcome = Outcome::new(links, BYTES_PER_PROBE);
    let mut history: Vec<VecDeque<f64>> = vec![VecDeque::new(); links];
    let mut current = None;
    let mut t = 0.0;
    while t < end_s {
        for (link, scores) in history.iter_mut().enumerate() {
            let (replies, ended) = measure(world, link, t);
            t = ended;
            scores.push_back(score(&replies, world.bias(link)));
            if scores.len() > SMOOTH_WINDOW {
                scores.pop_front();
            }
        }
        let smoothed: Vec<f64> =
            history.iter().map(|s| s.iter().sum::<f64>() / s.len() as f64).collect();
        let chosen = choose(current, &smoothed);
        current = Some(chosen);
        outcome.route_to(t, chosen);
        t += interval_s;
    }
    world.finish(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_middle_reply_is_taken_unsorted() {
        // Replies 10, 90, 12, 11: the middle element (index 2) is 12, not the median 11.5;
        // deviations 2, 78, 0, 1 average 20.25; one lost: 20 %² / 10 = 40; bias 100.
        assert_eq!(score(&[10.0, 90.0, 12.0, 11.0], 100.0), 12.0 + 20.25 + 40.0 + 100.0);
        assert_eq!(score(&[10.0], 0.0), DEAD_SCORE, "80 % lost is dead");
    }

    #[test]
    fn the_route_moves_only_past_the_hysteresis() {
        assert_eq!(choose(None, &[50.0, 40.0]), 1);
        assert_eq!(choose(Some(0), &[50.0, 31.0]), 0, "19 better is not enough");
        assert_eq!(choose(Some(0), &[50.0, 30.0]), 1);
    }
}
