//! Scenario files: links with their conditions, a timeline of changes, controller config
//! overrides and expectations, read from YAML and checked with file, line and key in every error.

pub use crate::condition::{Bursts, Carrier, Change, Condition, Spikes, Tail};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::fmt;
use std::path::{Path, PathBuf};
use wanmon::core::Config;

/// Probe targets, in the documentation ranges: every simulated link reaches the same "internet".
pub const TARGETS: [&str; 3] = ["192.0.2.1", "198.51.100.1", "203.0.113.1"];

/// Controller config keys the simulator sets itself from the scenario's links.
const SIMULATOR_KEYS: [&str; 4] = ["links", "targets", "name", "device"];

/// The longest scenario: one simulated day.
const MAX_DURATION_S: f64 = 31.0 * 86_400.0;

/// One mistake in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: PathBuf,
    /// 0 when the parser could not say.
    pub line: u64,
    pub path: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    #[serde(default = "default_seed")]
    seed: u64,
    duration_s: Spanned<f64>,
    #[serde(default)]
    config: Option<Spanned<serde_json::Map<String, serde_json::Value>>>,
    links: Spanned<Vec<RawLink>>,
    #[serde(default)]
    timeline: Vec<Spanned<RawPhase>>,
    #[serde(default)]
    expect: Vec<Spanned<RawExpectation>>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    name: Spanned<String>,
    latency_ms: Spanned<f64>,
    #[serde(default)]
    jitter_ms: Option<Spanned<f64>>,
    #[serde(default)]
    loss_percent: Option<Spanned<f64>>,
    #[serde(default)]
    return_loss_percent: Option<Spanned<f64>>,
    #[serde(default)]
    bursts: Option<Spanned<Bursts>>,
    #[serde(default)]
    spikes: Option<Spanned<Spikes>>,
    #[serde(default)]
    delay_tail: Option<Spanned<Tail>>,
    #[serde(default)]
    target_latency_ms: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    echo_limit_per_s: Option<Spanned<f64>>,
    #[serde(default)]
    targets: Option<Spanned<usize>>,
    #[serde(default)]
    config: Option<Spanned<serde_json::Map<String, serde_json::Value>>>,
}

/// A phase repeated: `times` occurrences, `every_s` apart.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepeat {
    every_s: Spanned<f64>,
    times: Spanned<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    at_s: Spanned<f64>,
    link: Spanned<String>,
    latency_ms: Option<Spanned<f64>>,
    jitter_ms: Option<Spanned<f64>>,
    loss_percent: Option<Spanned<f64>>,
    return_loss_percent: Option<Spanned<f64>>,
    bursts: Option<Spanned<Option<Bursts>>>,
    spikes: Option<Spanned<Option<Spikes>>>,
    delay_tail: Option<Spanned<Option<Tail>>>,
    target_latency_ms: Option<Spanned<Vec<f64>>>,
    outage: Option<bool>,
    carrier: Option<Carrier>,
    unreachable_targets: Option<Spanned<Vec<usize>>>,
    echo_limit_per_s: Option<Spanned<f64>>,
    restore: Option<bool>,
    /// The numeric fields move there linearly over this many seconds, in one-second steps.
    ramp_s: Option<Spanned<f64>>,
    /// The change ends after this many seconds: its fields go back to the link's base values.
    last_s: Option<Spanned<f64>>,
    repeat: Option<Spanned<RawRepeat>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum RawExpectation {
    Switch { to: Spanned<String>, after_s: Spanned<f64>, within_s: Spanned<f64> },
    NoSwitch { from_s: Option<Spanned<f64>>, until_s: Option<Spanned<f64>> },
    Initial(Spanned<String>),
    Final(Spanned<String>),
    MaxSwitches(u32),
    NeverOn(Spanned<String>),
    MaxBadLinkS(Spanned<f64>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct LinkSpec {
    pub name: String,
    pub base: Condition,
    pub targets: usize,
}

/// From `at_s` on, a link's condition changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub at_s: f64,
    pub link: usize,
    pub change: Change,
}

/// What must happen, checked against the decisions of a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Expectation {
    /// A route change to `to` at a time in `(after_s, after_s + within_s]`.
    Switch { to: String, after_s: f64, within_s: f64 },
    /// No route change (after the first choice) between the two times.
    NoSwitch { from_s: f64, until_s: f64 },
    /// The first choice.
    Initial(String),
    /// The link carrying the route at the end.
    Final(String),
    /// At most this many route changes after the first choice.
    MaxSwitches(u32),
    /// The route is never on this link.
    NeverOn(String),
    /// At most this many seconds on a link that was down or clearly worse than another.
    MaxBadLinkS(f64),
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Switch { to, after_s, within_s } => {
                write!(f, "switch to {to} within {within_s} s after t={after_s} s")
            }
            Expectation::NoSwitch { from_s, until_s } => {
                write!(f, "no switch from t={from_s} s to t={until_s} s")
            }
            Expectation::Initial(link) => write!(f, "first choice {link}"),
            Expectation::Final(link) => write!(f, "ends on {link}"),
            Expectation::MaxSwitches(n) => write!(f, "at most {n} switches"),
            Expectation::NeverOn(link) => write!(f, "never on {link}"),
            Expectation::MaxBadLinkS(s) => write!(f, "at most {s} s on a bad link"),
        }
    }
}

/// A checked scenario, ready for any engine.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub file: PathBuf,
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub duration_s: f64,
    pub links: Vec<LinkSpec>,
    /// Sorted by time; phases at the same time keep their file order.
    pub timeline: Vec<Phase>,
    pub expectations: Vec<Expectation>,
    /// The controller config the scenario runs with, as JSON text.
    pub config_json: String,
    pub config: Config,
}

struct Checker<'a> {
    file: &'a Path,
    errors: Vec<ScenarioError>,
}

/// A ramp written out: one-second steps from the link's condition when the ramp starts (after
/// every earlier phase) to the ramp's values.
fn ramp_steps(
    timeline: &[Phase],
    links: &[LinkSpec],
    ramp: &Phase,
    ramp_s: f64,
    duration_s: f64,
) -> Vec<Phase> {
    let base = &links[ramp.link].base;
    let mut from = base.clone();
    for phase in timeline.iter().filter(|p| p.link == ramp.link && p.at_s <= ramp.at_s) {
        phase.change.apply(&mut from, base);
    }
    let steps = ramp_s.ceil() as u32;
    (1..=steps)
        .map(|k| {
            let fraction = f64::from(k) / f64::from(steps);
            Phase {
                at_s: ramp.at_s + ramp_s * fraction,
                link: ramp.link,
                change: ramp.change.ramp_step(&from, fraction),
            }
        })
        .filter(|p| p.at_s <= duration_s)
        .collect()
}

impl Checker<'_> {
    fn error(&mut self, line: u64, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ScenarioError {
            file: self.file.to_path_buf(),
            line,
            path: path.into(),
            message: message.into(),
        });
    }

    /// A number within a range, or an error naming it.
    fn range(&mut self, value: &Spanned<f64>, path: String, min: f64, max: f64, unit: &str) -> f64 {
        let v = value.value;
        if !(min..=max).contains(&v) {
            self.error(
                value.referenced.line(),
                path,
                format!("got {v}, expected {min} to {max}{unit}"),
            );
        }
        v.clamp(min, max)
    }

    fn optional(
        &mut self,
        value: &Option<Spanned<f64>>,
        path: String,
        max: f64,
        unit: &str,
    ) -> Option<f64> {
        value.as_ref().map(|v| self.range(v, path, 0.0, max, unit))
    }

    /// A rate limiter's echo requests a second: at least one, or no token would ever be whole.
    fn echo_limit(&mut self, value: &Option<Spanned<f64>>, path: String) -> Option<f64> {
        value.as_ref().map(|v| self.range(v, path, 1.0, 100_000.0, " echo requests a second"))
    }

    fn link_index(
        &mut self,
        names: &[String],
        name: &Spanned<String>,
        path: String,
    ) -> Option<usize> {
        let index = names.iter().position(|n| *n == name.value);
        if index.is_none() {
            let mut known: Vec<&str> = Vec::new();
            for n in names {
                if !known.contains(&n.as_str()) {
                    known.push(n);
                }
            }
            let message =
                format!("no link named {:?}; the links are {}", name.value, known.join(", "));
            self.error(name.referenced.line(), path, message);
        }
        index
    }

    /// The links: names checked (valid, not `lo`, unique), base conditions in range.
    fn links(&mut self, raw: &Spanned<Vec<RawLink>>) -> Vec<LinkSpec> {
        if raw.value.is_empty() || raw.value.len() > 8 {
            let message = format!("got {} links, expected 1 to 8", raw.value.len());
            self.error(raw.referenced.line(), "links", message);
        }
        let mut links: Vec<LinkSpec> = Vec::new();
        for (i, link) in raw.value.iter().enumerate() {
            let path = |key: &str| format!("links[{i}].{key}");
            let line = link.name.referenced.line();
            if let Err(expected) = wanmon::core::LinkName::new(&link.name.value) {
                self.error(
                    line,
                    path("name"),
                    format!("got {:?}, expected {expected}", link.name.value),
                );
            } else if link.name.value == "lo" {
                // The real runs name each link's device after it, next to the loopback.
                let message = "got \"lo\", expected another name: the loopback device has it";
                self.error(line, path("name"), message);
            } else if links.iter().any(|l| l.name == link.name.value) {
                self.error(
                    line,
                    path("name"),
                    format!("duplicate link name {:?}", link.name.value),
                );
            }
            let mut base = Condition::new(
                self.range(&link.latency_ms, path("latency_ms"), 0.0, 10_000.0, " ms"),
                self.optional(&link.jitter_ms, path("jitter_ms"), 5_000.0, " ms").unwrap_or(0.0),
                self.optional(&link.loss_percent, path("loss_percent"), 100.0, " %").unwrap_or(0.0),
            );
            base.return_loss_percent = self
                .optional(&link.return_loss_percent, path("return_loss_percent"), 100.0, " %")
                .unwrap_or(0.0);
            base.bursts = link
                .bursts
                .as_ref()
                .map(|b| self.bursts(b.value, b.referenced.line(), path("bursts")));
            base.spikes = link
                .spikes
                .as_ref()
                .map(|x| self.spikes(x.value, x.referenced.line(), path("spikes")));
            base.delay_tail = link
                .delay_tail
                .as_ref()
                .map(|t| self.tail(t.value, t.referenced.line(), path("delay_tail")));
            base.target_latency_ms = link
                .target_latency_ms
                .as_ref()
                .map(|t| self.target_latencies(t, path("target_latency_ms")))
                .unwrap_or_default();
            base.echo_limit_per_s =
                self.echo_limit(&link.echo_limit_per_s, path("echo_limit_per_s"));
            let targets = match &link.targets {
                Some(t) if !(1..=TARGETS.len()).contains(&t.value) => {
                    let message = format!("got {}, expected 1 to {}", t.value, TARGETS.len());
                    self.error(t.referenced.line(), path("targets"), message);
                    2
                }
                Some(t) => t.value,
                None => 2,
            };
            links.push(LinkSpec { name: link.name.value.clone(), base, targets });
        }
        links
    }

    /// The timeline, sorted by time (phases at the same time keep their file order): repeats,
    /// changes that last a while and ramps written out as plain phases.
    fn timeline(
        &mut self,
        raw: &[Spanned<RawPhase>],
        names: &[String],
        links: &[LinkSpec],
        duration_s: f64,
    ) -> Vec<Phase> {
        let mut timeline = Vec::new();
        let mut ramps = Vec::new();
        for (i, phase) in raw.iter().enumerate() {
            let p = &phase.value;
            let path = |key: &str| format!("timeline[{i}].{key}");
            let within = " seconds (within duration_s)";
            let at_s = self.range(&p.at_s, path("at_s"), 0.0, duration_s, within);
            let Some(link) = self.link_index(names, &p.link, path("link")) else {
                continue;
            };
            let change = self.change(i, phase, &names[link], links[link].targets);
            let last_s = p
                .last_s
                .as_ref()
                .map(|v| self.range(v, path("last_s"), 0.001, duration_s, " seconds"));
            let ramp_s = p
                .ramp_s
                .as_ref()
                .map(|v| self.range(v, path("ramp_s"), 1.0, duration_s, " seconds"));
            if ramp_s.is_some() && !change.is_numeric() {
                let message =
                    "a ramp moves only latency_ms, jitter_ms, loss_percent and return_loss_percent";
                self.error(phase.referenced.line(), path("ramp_s"), message);
            }
            for start in self.occurrences(p, at_s, last_s, duration_s, &path) {
                let piece = Phase { at_s: start, link, change: change.clone() };
                match ramp_s {
                    Some(ramp_s) => ramps.push((piece, ramp_s)),
                    None => timeline.push(piece),
                }
                if let Some(last_s) = last_s.filter(|l| start + l <= duration_s) {
                    let undo = change.undo(&links[link].base);
                    timeline.push(Phase { at_s: start + last_s, link, change: undo });
                }
            }
        }
        timeline.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        for (ramp, ramp_s) in ramps {
            let steps = ramp_steps(&timeline, links, &ramp, ramp_s, duration_s);
            timeline.extend(steps);
            timeline.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        }
        timeline
    }

    /// A phase's change, checked.
    fn change(
        &mut self,
        i: usize,
        phase: &Spanned<RawPhase>,
        name: &str,
        targets: usize,
    ) -> Change {
        let p = &phase.value;
        let path = |key: &str| format!("timeline[{i}].{key}");
        if let Some(unreachable) = &p.unreachable_targets
            && let Some(bad) = unreachable.value.iter().find(|t| **t >= targets)
        {
            let message = format!(
                "target {bad} does not exist: link {name} has targets 0 to {}",
                targets - 1
            );
            self.error(unreachable.referenced.line(), path("unreachable_targets"), message);
        }
        let change = Change {
            latency_ms: self.optional(&p.latency_ms, path("latency_ms"), 10_000.0, " ms"),
            jitter_ms: self.optional(&p.jitter_ms, path("jitter_ms"), 5_000.0, " ms"),
            loss_percent: self.optional(&p.loss_percent, path("loss_percent"), 100.0, " %"),
            return_loss_percent: self.optional(
                &p.return_loss_percent,
                path("return_loss_percent"),
                100.0,
                " %",
            ),
            bursts: p
                .bursts
                .as_ref()
                .map(|b| b.value.map(|v| self.bursts(v, b.referenced.line(), path("bursts")))),
            spikes: p
                .spikes
                .as_ref()
                .map(|x| x.value.map(|v| self.spikes(v, x.referenced.line(), path("spikes")))),
            delay_tail: p
                .delay_tail
                .as_ref()
                .map(|t| t.value.map(|v| self.tail(v, t.referenced.line(), path("delay_tail")))),
            target_latency_ms: p
                .target_latency_ms
                .as_ref()
                .map(|t| self.target_latencies(t, path("target_latency_ms"))),
            outage: p.outage,
            carrier: p.carrier,
            unreachable_targets: p.unreachable_targets.as_ref().map(|t| t.value.clone()),
            echo_limit_per_s: self
                .echo_limit(&p.echo_limit_per_s, path("echo_limit_per_s"))
                .map(Some),
            restore: p.restore.unwrap_or(false),
        };
        if change == Change::default() {
            let message = "changes nothing: expected at least one of latency_ms, jitter_ms, \
                           loss_percent, return_loss_percent, bursts, spikes, delay_tail, \
                           target_latency_ms, outage, carrier, unreachable_targets, \
                           echo_limit_per_s, restore";
            self.error(phase.referenced.line(), format!("timeline[{i}]"), message);
        }
        change
    }

    /// The start times of a phase: once, or `repeat.times` times `repeat.every_s` apart (those
    /// within the scenario).
    fn occurrences(
        &mut self,
        p: &RawPhase,
        at_s: f64,
        last_s: Option<f64>,
        duration_s: f64,
        path: &dyn Fn(&str) -> String,
    ) -> Vec<f64> {
        let Some(repeat) = &p.repeat else { return vec![at_s] };
        let every =
            self.range(&repeat.value.every_s, path("repeat.every_s"), 0.1, duration_s, " seconds");
        if last_s.is_some_and(|l| l >= every) {
            let message = format!(
                "got {}, expected less than repeat.every_s {every}: the occurrences would overlap",
                last_s.unwrap_or_default()
            );
            self.error(repeat.referenced.line(), path("last_s"), message);
        }
        let times = repeat.value.times.value;
        if !(1..=100_000).contains(&times) {
            let message = format!("got {times}, expected 1 to 100000");
            self.error(repeat.value.times.referenced.line(), path("repeat.times"), message);
            return vec![at_s];
        }
        (0..times).map(|k| at_s + f64::from(k) * every).take_while(|t| *t <= duration_s).collect()
    }

    /// One number of a nested value (bursts, spikes, a delay tail), named with its value.
    fn part(&mut self, line: u64, path: &str, key: &str, value: f64, ok: bool, expected: &str) {
        if !ok {
            let dot = if key.starts_with('[') { "" } else { "." };
            self.error(
                line,
                format!("{path}{dot}{key}"),
                format!("got {value}, expected {expected}"),
            );
        }
    }

    fn bursts(&mut self, b: Bursts, line: u64, path: String) -> Bursts {
        let percent = |v: f64| (0.0..=100.0).contains(&v);
        let whole = "0 to 100 %";
        self.part(line, &path, "enter_percent", b.enter_percent, percent(b.enter_percent), whole);
        let leaves = percent(b.leave_percent) && b.leave_percent > 0.0;
        let above = "above 0 and at most 100 % (a burst must end)";
        self.part(line, &path, "leave_percent", b.leave_percent, leaves, above);
        self.part(line, &path, "loss_percent", b.loss_percent, percent(b.loss_percent), whole);
        b
    }

    fn spikes(&mut self, x: Spikes, line: u64, path: String) -> Spikes {
        let every = x.every_s > 0.0 && x.every_s <= MAX_DURATION_S;
        self.part(line, &path, "every_s", x.every_s, every, "above 0 seconds, at most 31 days");
        let last = x.last_s > 0.0 && x.last_s < x.every_s;
        self.part(line, &path, "last_s", x.last_s, last, "above 0 and shorter than every_s");
        let extra = (0.0..=10_000.0).contains(&x.extra_ms);
        self.part(line, &path, "extra_ms", x.extra_ms, extra, "0 to 10000 ms");
        let at = (0.0..=MAX_DURATION_S).contains(&x.at_s);
        self.part(line, &path, "at_s", x.at_s, at, "0 seconds to 31 days");
        x
    }

    fn tail(&mut self, t: Tail, line: u64, path: String) -> Tail {
        let percent = (0.0..=100.0).contains(&t.percent);
        self.part(line, &path, "percent", t.percent, percent, "0 to 100 %");
        let scale = (0.0..=10_000.0).contains(&t.scale_ms);
        self.part(line, &path, "scale_ms", t.scale_ms, scale, "0 to 10000 ms");
        t
    }

    fn target_latencies(&mut self, raw: &Spanned<Vec<f64>>, path: String) -> Vec<f64> {
        let line = raw.referenced.line();
        if raw.value.len() > TARGETS.len() {
            let message = format!(
                "got {} values, expected at most {}, one per target",
                raw.value.len(),
                TARGETS.len()
            );
            self.error(line, path.clone(), message);
        }
        for (index, value) in raw.value.iter().enumerate() {
            let ok = (0.0..=10_000.0).contains(value);
            self.part(line, &path, &format!("[{index}]"), *value, ok, "0 to 10000 ms");
        }
        raw.value.clone()
    }

    fn expectations(
        &mut self,
        raw: &[Spanned<RawExpectation>],
        names: &[String],
        duration_s: f64,
    ) -> Vec<Expectation> {
        if raw.is_empty() {
            self.error(0, "expect", "missing: a scenario proves nothing without expectations");
        }
        raw.iter()
            .enumerate()
            .map(|(i, expectation)| self.expectation(i, expectation, names, duration_s))
            .collect()
    }

    fn expectation(
        &mut self,
        i: usize,
        expectation: &Spanned<RawExpectation>,
        names: &[String],
        duration_s: f64,
    ) -> Expectation {
        let path = |key: &str| format!("expect[{i}].{key}");
        let seconds = |checker: &mut Self, value: &Spanned<f64>, key: &str| {
            checker.range(value, path(key), 0.0, duration_s, " seconds")
        };
        match &expectation.value {
            RawExpectation::Switch { to, after_s, within_s } => {
                self.link_index(names, to, path("switch.to"));
                Expectation::Switch {
                    to: to.value.clone(),
                    after_s: seconds(self, after_s, "switch.after_s"),
                    within_s: seconds(self, within_s, "switch.within_s"),
                }
            }
            RawExpectation::NoSwitch { from_s, until_s } => {
                let from_s = from_s.as_ref().map_or(0.0, |v| seconds(self, v, "no_switch.from_s"));
                let until_s =
                    until_s.as_ref().map_or(duration_s, |v| seconds(self, v, "no_switch.until_s"));
                if from_s > until_s {
                    let message = format!("from_s {from_s} is after until_s {until_s}");
                    self.error(expectation.referenced.line(), path("no_switch"), message);
                }
                Expectation::NoSwitch { from_s, until_s }
            }
            RawExpectation::Initial(link) => {
                self.link_index(names, link, path("initial"));
                Expectation::Initial(link.value.clone())
            }
            RawExpectation::Final(link) => {
                self.link_index(names, link, path("final"));
                Expectation::Final(link.value.clone())
            }
            RawExpectation::MaxSwitches(n) => Expectation::MaxSwitches(*n),
            RawExpectation::NeverOn(link) => {
                self.link_index(names, link, path("never_on"));
                Expectation::NeverOn(link.value.clone())
            }
            RawExpectation::MaxBadLinkS(v) => {
                Expectation::MaxBadLinkS(seconds(self, v, "max_bad_link_s"))
            }
        }
    }

    /// Config overrides may not set what the simulator sets from the scenario's links.
    fn config_overrides(&mut self, raw: &RawScenario) {
        let per_link = raw
            .links
            .value
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("links[{i}].config"), &l.config));
        for (path, config) in std::iter::once(("config".to_string(), &raw.config)).chain(per_link) {
            let Some(config) = config else { continue };
            for key in SIMULATOR_KEYS {
                if config.value.contains_key(key) {
                    let message = "is set by the simulator from the scenario's links, not by a config override";
                    self.error(config.referenced.line(), format!("{path}.{key}"), message);
                }
            }
        }
    }
}

impl Scenario {
    /// What of this scenario netem cannot do, at the first condition it cannot, if any.
    pub fn netem_refuses(&self) -> Option<String> {
        let mut conditions: Vec<Condition> = self.links.iter().map(|l| l.base.clone()).collect();
        let refusal = |link: &LinkSpec, condition: &Condition, at_s: f64| {
            condition
                .netem_can()
                .err()
                .map(|what| format!("link {} at {at_s} s: {what}", link.name))
        };
        for (link, condition) in self.links.iter().zip(&conditions) {
            if let Some(why) = refusal(link, condition, 0.0) {
                return Some(why);
            }
        }
        for phase in &self.timeline {
            let link = &self.links[phase.link];
            phase.change.apply(&mut conditions[phase.link], &link.base);
            if let Some(why) = refusal(link, &conditions[phase.link], phase.at_s) {
                return Some(why);
            }
        }
        None
    }

    pub fn load(file: &Path) -> Result<Scenario, Vec<ScenarioError>> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            vec![ScenarioError {
                file: file.to_path_buf(),
                line: 0,
                path: String::new(),
                message: format!("cannot read: {e}"),
            }]
        })?;
        Scenario::parse(file, &text)
    }

    /// Parses and checks a scenario; on failure, every mistake found.
    pub fn parse(file: &Path, text: &str) -> Result<Scenario, Vec<ScenarioError>> {
        let raw: RawScenario = serde_saphyr::from_str(text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            vec![ScenarioError {
                file: file.to_path_buf(),
                line,
                path: String::new(),
                message: yaml_message(&e.without_snippet().to_string(), text, line),
            }]
        })?;
        let mut checker = Checker { file, errors: Vec::new() };
        let duration_s =
            checker.range(&raw.duration_s, "duration_s".into(), 1.0, MAX_DURATION_S, " seconds");
        let errors_before_links = checker.errors.len();
        let links = checker.links(&raw.links);
        // The controller would repeat a bad link name in its own words: check it once, here.
        let names_ok = checker.errors.len() == errors_before_links;
        let names: Vec<String> = links.iter().map(|l| l.name.clone()).collect();
        let timeline = checker.timeline(&raw.timeline, &names, &links, duration_s);
        let expectations = checker.expectations(&raw.expect, &names, duration_s);
        checker.config_overrides(&raw);
        let config_json = controller_config(&raw, &links);
        let config = match Config::from_json(&config_json) {
            _ if !names_ok => None,
            Ok(config) => Some(config),
            Err(errors) => {
                for e in errors {
                    let (line, path) = config_location(&raw, &e.path);
                    checker.error(line, path, e.message);
                }
                None
            }
        };
        match (checker.errors.is_empty(), config) {
            (true, Some(config)) => Ok(Scenario {
                file: file.to_path_buf(),
                name: raw.name.unwrap_or_else(|| {
                    file.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned())
                }),
                description: raw.description.unwrap_or_default(),
                seed: raw.seed,
                duration_s,
                links,
                timeline,
                expectations,
                config_json,
                config,
            }),
            _ => {
                let mut errors = checker.errors;
                errors.sort_by_key(|e| e.line);
                Err(errors)
            }
        }
    }

    /// Every `.yaml` scenario in a directory, or the one file given; sorted by file name.
    pub fn load_all(path: &Path) -> Result<Vec<Scenario>, Vec<ScenarioError>> {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| {
                    vec![ScenarioError {
                        file: path.to_path_buf(),
                        line: 0,
                        path: String::new(),
                        message: format!("cannot read directory: {e}"),
                    }]
                })?
                .flatten()
                .map(|entry| entry.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            files.sort();
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut scenarios = Vec::new();
        let mut errors = Vec::new();
        for file in files {
            match Scenario::load(&file) {
                Ok(scenario) => scenarios.push(scenario),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() { Ok(scenarios) } else { Err(errors) }
    }
}

/// The parser's message without its own position prefix, with the offending line quoted so the
/// key is in view: the parser knows where, not which key.
fn yaml_message(message: &str, text: &str, line: u64) -> String {
    let first = message.lines().next().unwrap_or_default();
    let bare = first.strip_prefix("error: ").unwrap_or(first);
    let bare = match bare.split_once(": ") {
        Some((position, rest)) if position.starts_with("line ") => rest,
        _ => bare,
    };
    let source = (line > 0).then(|| text.lines().nth(line as usize - 1)).flatten().map(str::trim);
    match source {
        Some(source) if !source.is_empty() => format!("{bare}, in `{source}`"),
        _ => bare.to_string(),
    }
}

/// An override without the keys the simulator owns (they are reported as mistakes).
fn without_simulator_keys(
    config: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut config = config.clone();
    config.retain(|key, _| !SIMULATOR_KEYS.contains(&key.as_str()));
    config
}

/// The controller config: one link per scenario link (device = name), the scenario's overrides.
fn controller_config(raw: &RawScenario, links: &[LinkSpec]) -> String {
    let mut root = serde_json::Map::new();
    if let Some(config) = &raw.config {
        root.extend(without_simulator_keys(&config.value));
    }
    let link_values: Vec<serde_json::Value> = raw
        .links
        .value
        .iter()
        .zip(links)
        .map(|(raw_link, link)| {
            let mut object = serde_json::Map::new();
            object.insert("name".into(), link.name.clone().into());
            object.insert("device".into(), link.name.clone().into());
            let targets: Vec<serde_json::Value> =
                TARGETS[..link.targets].iter().map(|t| (*t).into()).collect();
            object.insert("targets".into(), targets.into());
            if let Some(config) = &raw_link.config {
                object.extend(without_simulator_keys(&config.value));
            }
            serde_json::Value::Object(object)
        })
        .collect();
    root.insert("links".into(), link_values.into());
    serde_json::to_string_pretty(&serde_json::Value::Object(root)).unwrap_or_default()
}

/// Where in the scenario a controller config error comes from: `links[1].bias` is the scenario's
/// `links[1].config.bias`, `hysteresis` its `config.hysteresis`.
fn config_location(raw: &RawScenario, config_path: &str) -> (u64, String) {
    if let Some(rest) = config_path.strip_prefix("links[") {
        let index: usize = rest.split(']').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let key = rest.split_once("].").map_or("", |(_, k)| k);
        if let Some(link) = raw.links.value.get(index) {
            let line =
                link.config.as_ref().map_or(link.name.referenced.line(), |c| c.referenced.line());
            return (line, format!("links[{index}].config.{key}"));
        }
    }
    let line = raw.config.as_ref().map_or(0, |c| c.referenced.line());
    (line, format!("config.{config_path}"))
}
