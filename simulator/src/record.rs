//! What a run of a scenario produced, whichever engine ran it: decisions, route changes (the
//! ground truth), sampled telemetry; and how it measured up to the scenario's expectations.

use crate::scenario::{Carrier, Condition, Expectation, Scenario};
use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DecisionRecord {
    pub t_ms: u64,
    pub from: Option<String>,
    pub to: String,
    pub changes_route: bool,
    pub reason: String,
}

/// The default route moved: from the engine's decisions (replay) or the routing table (netns).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RouteChange {
    pub t_ms: u64,
    pub from: Option<String>,
    pub to: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LinkSample {
    pub name: String,
    /// The condition the scenario set at that moment.
    pub condition: ConditionRecord,
    pub state: String,
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_percent: Option<f64>,
    pub score: Option<f64>,
    pub carries_route: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ConditionRecord {
    pub latency_ms: f64,
    pub jitter_ms: f64,
    pub loss_percent: f64,
    pub outage: bool,
    pub carrier_up: bool,
    pub unreachable_targets: Vec<usize>,
}

impl From<&Condition> for ConditionRecord {
    fn from(c: &Condition) -> ConditionRecord {
        ConditionRecord {
            latency_ms: c.latency_ms,
            jitter_ms: c.jitter_ms,
            loss_percent: c.loss_percent,
            outage: c.outage,
            carrier_up: c.carrier == Carrier::Up,
            unreachable_targets: c.unreachable_targets.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Sample {
    pub t_s: f64,
    pub links: Vec<LinkSample>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Verdict {
    pub expectation: String,
    pub met: bool,
    pub detail: String,
}

/// One run of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub scenario: String,
    pub file: String,
    pub engine: String,
    /// What impaired the links of a real run (`netem` or `relay`); none for the replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impairment: Option<String>,
    pub seed: u64,
    pub duration_s: f64,
    pub links: Vec<String>,
    pub decisions: Vec<DecisionRecord>,
    pub route_changes: Vec<RouteChange>,
    pub samples: Vec<Sample>,
    pub verdicts: Vec<Verdict>,
    /// Seconds from the `after_s` of the first `switch` expectation to the switch.
    pub time_to_switch_s: Option<f64>,
    /// Route changes after the first choice.
    pub switches: usize,
    /// Seconds the route spent on a link that was down or clearly worse than another.
    pub bad_link_s: f64,
    /// Simulated seconds per wall-clock second.
    pub speed: f64,
}

impl RunRecord {
    /// The record of a finished run of `scenario`, judged against its expectations.
    pub fn judged(
        scenario: &Scenario,
        engine: &str,
        decisions: Vec<DecisionRecord>,
        route_changes: Vec<RouteChange>,
        samples: Vec<Sample>,
        speed: f64,
    ) -> RunRecord {
        let mut record = RunRecord {
            scenario: scenario.name.clone(),
            file: scenario.file.display().to_string(),
            engine: engine.to_string(),
            impairment: None,
            seed: scenario.seed,
            duration_s: scenario.duration_s,
            links: scenario.links.iter().map(|l| l.name.clone()).collect(),
            decisions,
            route_changes,
            samples,
            verdicts: Vec::new(),
            time_to_switch_s: None,
            switches: 0,
            bad_link_s: 0.0,
            speed,
        };
        record.judge(scenario);
        record
    }

    /// The expectations not met, each as "expectation: what happened".
    pub fn unmet(&self) -> Vec<String> {
        self.verdicts
            .iter()
            .filter(|v| !v.met)
            .map(|v| format!("{}: {}", v.expectation, v.detail))
            .collect()
    }

    pub fn all_met(&self) -> bool {
        self.verdicts.iter().all(|v| v.met)
    }

    /// The links the route went to, in order, the first choice included.
    pub fn switch_sequence(&self) -> Vec<&str> {
        self.route_changes.iter().map(|c| c.to.as_str()).collect()
    }

    /// How this run and another of the same scenario (a real run and its replay) switched
    /// differently, or `None` when they went to the same links in the same order.
    pub fn disagreement_with(&self, other: &RunRecord) -> Option<String> {
        let (mine, theirs) = (self.switch_sequence(), other.switch_sequence());
        (mine != theirs).then(|| {
            format!(
                "{}: {} switched to {mine:?}, {} to {theirs:?}",
                self.scenario, self.engine, other.engine
            )
        })
    }

    /// Fills in the verdicts and figures from the route changes and samples.
    fn judge(&mut self, scenario: &Scenario) {
        self.switches = self.route_changes.iter().filter(|c| c.from.is_some()).count();
        let route: Vec<(f64, usize)> = self
            .route_changes
            .iter()
            .filter_map(|c| {
                let link = scenario.links.iter().position(|l| l.name == c.to)?;
                Some((seconds(c.t_ms), link))
            })
            .collect();
        self.bad_link_s = bad_link_seconds(scenario, &route, 0.0);
        self.verdicts = scenario
            .expectations
            .iter()
            .map(|e| judge(e, &self.route_changes, self.bad_link_s))
            .collect();
        self.time_to_switch_s = scenario.expectations.iter().find_map(|e| match e {
            Expectation::Switch { to, after_s, within_s } => first_switch(
                &self.route_changes,
                to,
                *after_s,
                after_s + within_s.max(scenario.duration_s),
            )
            .map(|t| t - after_s),
            _ => None,
        });
    }
}

fn seconds(t_ms: u64) -> f64 {
    t_ms as f64 / 1000.0
}

fn first_switch(changes: &[RouteChange], to: &str, after_s: f64, until_s: f64) -> Option<f64> {
    changes
        .iter()
        .filter(|c| c.from.is_some())
        .map(|c| (seconds(c.t_ms), c))
        .find(|(t, c)| c.to == to && *t > after_s && *t <= until_s)
        .map(|(t, _)| t)
}

fn list(changes: &[&RouteChange]) -> String {
    if changes.is_empty() {
        return "none".into();
    }
    changes
        .iter()
        .map(|c| {
            format!("{}->{} at {:.1} s", c.from.as_deref().unwrap_or("none"), c.to, seconds(c.t_ms))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn judge(expectation: &Expectation, changes: &[RouteChange], bad_link_s: f64) -> Verdict {
    let switches: Vec<&RouteChange> = changes.iter().filter(|c| c.from.is_some()).collect();
    let (met, detail) = match expectation {
        Expectation::Switch { to, after_s, within_s } => {
            match first_switch(changes, to, *after_s, after_s + within_s) {
                Some(t) => (true, format!("switched at {t:.1} s, {:.1} s after", t - after_s)),
                None => (
                    false,
                    format!(
                        "no switch to {to} in ({after_s}, {}] s; switches: {}",
                        after_s + within_s,
                        list(&switches)
                    ),
                ),
            }
        }
        Expectation::NoSwitch { from_s, until_s } => {
            let inside: Vec<&RouteChange> = switches
                .iter()
                .copied()
                .filter(|c| (*from_s..=*until_s).contains(&seconds(c.t_ms)))
                .collect();
            (inside.is_empty(), format!("switches in the window: {}", list(&inside)))
        }
        Expectation::Initial(link) => {
            let first = changes.first().map(|c| c.to.as_str());
            (first == Some(link.as_str()), format!("first choice: {}", first.unwrap_or("none")))
        }
        Expectation::Final(link) => {
            let last = changes.last().map(|c| c.to.as_str());
            (last == Some(link.as_str()), format!("ends on {}", last.unwrap_or("none")))
        }
        Expectation::MaxSwitches(n) => (
            switches.len() <= *n as usize,
            format!("{} switches: {}", switches.len(), list(&switches)),
        ),
        Expectation::NeverOn(link) => {
            let onto: Vec<&RouteChange> = changes.iter().filter(|c| c.to == *link).collect();
            (onto.is_empty(), format!("route changes onto {link}: {}", list(&onto)))
        }
        Expectation::MaxBadLinkS(limit) => {
            (bad_link_s <= *limit, format!("{bad_link_s:.1} s on a bad link"))
        }
    };
    Verdict { expectation: expectation.to_string(), met, detail }
}

/// The score a link's configured condition deserves (`None`: it cannot carry traffic), with
/// bursts at their long-run loss and spikes at their mean delay: what "bad" is judged by.
fn ideal_score(scenario: &Scenario, link: usize, c: &Condition) -> Option<f64> {
    let usable = !c.outage
        && c.carrier == Carrier::Up
        && c.unreachable_targets.len() < scenario.links[link].targets;
    let bursts = c
        .bursts
        .map_or(0.0, |b| b.loss_percent * b.enter_percent / (b.enter_percent + b.leave_percent));
    let spikes = c.spikes.map_or(0.0, |x| x.extra_ms * x.last_s / x.every_s);
    let loss = c.loss_percent + c.return_loss_percent + bursts;
    let config = &scenario.config;
    let loss_term = loss * loss * 100.0 / config.loss_divisor_centi as f64;
    let bias = config.links[link].bias as f64;
    usable.then_some(c.latency_ms + c.jitter_ms + spikes + loss_term + bias)
}

/// Seconds from `from_s` on that the route spent on a bad link: one that is down, or whose
/// configured score is worse than a usable link's by more than the hysteresis. Exact: walked
/// from one change (of a condition or of the route, `(t_s, link)`) to the next, whichever engine
/// ran.
pub fn bad_link_seconds(scenario: &Scenario, route: &[(f64, usize)], from_s: f64) -> f64 {
    let mut times: Vec<f64> = scenario.timeline.iter().map(|p| p.at_s).collect();
    times.extend(route.iter().map(|(t, _)| *t));
    times.extend([from_s, scenario.duration_s]);
    times.retain(|t| (from_s..=scenario.duration_s).contains(t));
    times.sort_by(f64::total_cmp);
    times.dedup();
    let mut conditions: Vec<Condition> = scenario.links.iter().map(|l| l.base.clone()).collect();
    let mut phases = scenario.timeline.iter().peekable();
    let mut bad = 0.0;
    for pair in times.windows(2) {
        let (t, next) = (pair[0], pair[1]);
        while let Some(phase) = phases.next_if(|p| p.at_s <= t) {
            phase.change.apply(&mut conditions[phase.link], &scenario.links[phase.link].base);
        }
        let Some(&(_, on)) = route.iter().take_while(|(at, _)| *at <= t).last() else {
            continue;
        };
        let scores: Vec<Option<f64>> =
            conditions.iter().enumerate().map(|(i, c)| ideal_score(scenario, i, c)).collect();
        let best = scores.iter().flatten().copied().fold(f64::INFINITY, f64::min);
        let is_bad = match scores[on] {
            None => best.is_finite(),
            Some(score) => score > best + scenario.config.hysteresis as f64,
        };
        if is_bad {
            bad += next - t;
        }
    }
    bad
}
