//! The decision benchmark: scenario families generated from parameters, many seeds each, run in
//! the replay against wanmon and against models of the peers, side by side. For each family and
//! policy it reports how long the route took to leave a failing link (median and 95th
//! percentile over the seeds), how often it moved when it should not have (per simulated day),
//! how long it sat on a bad link, and what the probes of a healthy standby cost.

use crate::peers::{self, Outcome, World};
use crate::replay;
use crate::scenario::Scenario;
use std::fmt::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every family runs this long before its fault, so the standby's figures are those of a link
/// that has been up for a while, as on a router.
pub const WARM_UP_S: f64 = 120.0;

/// The two links every family starts from: a wired primary and a hotspot backup.
const LINKS: &str = "links:
  - { name: wan, latency_ms: 15, jitter_ms: 2 }
  - { name: wwan, latency_ms: 45, jitter_ms: 6, loss_percent: 0.5, config: { bias: 20 } }
";

/// The same links, every target of both answering 10 echo requests a second at most.
const LIMITED_LINKS: &str = "links:
  - { name: wan, latency_ms: 15, jitter_ms: 2, echo_limit_per_s: 10 }
  - { name: wwan, latency_ms: 45, jitter_ms: 6, loss_percent: 0.5, echo_limit_per_s: 10, config: { bias: 20 } }
";

/// What a family checks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// The primary fails at `WARM_UP_S`: how long until the route leaves it; the goal in s.
    Fault { goal_s: Option<f64> },
    /// Nothing a user would call a failure happens: every route change is a false switch.
    Healthy,
}

#[derive(Clone, Copy, Debug)]
pub struct Family {
    pub name: &'static str,
    pub what: &'static str,
    pub kind: Kind,
    /// Seconds after the warm-up.
    pub horizon_s: f64,
    /// Timeline entries (YAML), at `WARM_UP_S` and after.
    timeline: &'static str,
    /// The links, as they are from the start.
    links: &'static str,
}

const fn fault(
    name: &'static str,
    what: &'static str,
    goal_s: Option<f64>,
    timeline: &'static str,
) -> Family {
    Family { name, what, kind: Kind::Fault { goal_s }, horizon_s: 300.0, timeline, links: LINKS }
}

/// The families, in the order of the table.
pub const FAMILIES: &[Family] = &[
    fault(
        "outage",
        "primary passes nothing for a minute (goal: from its first lost probe)",
        Some(1.0),
        "  - { at_s: 120, link: wan, outage: true, last_s: 60 }\n",
    ),
    fault(
        "carrier",
        "cable pulled (NO-CARRIER)",
        Some(0.1),
        "  - { at_s: 120, link: wan, carrier: down }\n",
    ),
    fault("loss-10", "10 % loss", Some(15.0), "  - { at_s: 120, link: wan, loss_percent: 10 }\n"),
    fault("loss-30", "30 % loss", Some(5.0), "  - { at_s: 120, link: wan, loss_percent: 30 }\n"),
    fault("loss-50", "50 % loss", Some(5.0), "  - { at_s: 120, link: wan, loss_percent: 50 }\n"),
    fault(
        "bursty-loss",
        "loss in bursts (~12 % in runs of 5)",
        None,
        "  - { at_s: 120, link: wan, bursts: { enter_percent: 3, leave_percent: 20 } }\n",
    ),
    fault(
        "calls-break",
        "8 % loss with 150 ms jitter",
        Some(15.0),
        "  - { at_s: 120, link: wan, loss_percent: 8, jitter_ms: 150 }\n",
    ),
    fault(
        "latency-step",
        "latency 15 → 300 ms",
        Some(10.0),
        "  - { at_s: 120, link: wan, latency_ms: 300 }\n",
    ),
    fault(
        "latency-ramp",
        "latency 15 → 400 ms over a minute",
        None,
        "  - { at_s: 120, link: wan, latency_ms: 400, ramp_s: 60 }\n",
    ),
    fault(
        "brownout",
        "40 % loss and 150 ms for a minute",
        None,
        "  - { at_s: 120, link: wan, loss_percent: 40, latency_ms: 150, last_s: 60 }\n",
    ),
    fault(
        "flapping",
        "2 s down, 2 s up, for a minute",
        Some(8.0),
        "  - { at_s: 120, link: wan, outage: true, last_s: 2, repeat: { every_s: 4, times: 15 } }\n",
    ),
    Family {
        name: "loss-5",
        what: "5 % loss (not worth leaving a 30 ms faster link for)",
        kind: Kind::Healthy,
        // An hour, as its moves are rare: over 100 seeds of ten minutes (half a simulated day)
        // a rate of a few a day showed as none in one run and as two moves in the next.
        horizon_s: 3600.0,
        timeline: "  - { at_s: 120, link: wan, loss_percent: 5 }\n",
        links: LINKS,
    },
    Family {
        name: "spikes",
        what: "an 800 ms spike for 1 s every 20 s",
        kind: Kind::Healthy,
        horizon_s: 3600.0,
        timeline: "  - { at_s: 120, link: wan, spikes: { every_s: 20, last_s: 1, extra_ms: 800 } }\n",
        links: LINKS,
    },
    Family {
        name: "filtered",
        what: "one of two targets filtered",
        kind: Kind::Healthy,
        horizon_s: 3600.0,
        timeline: "  - { at_s: 120, link: wan, unreachable_targets: [1] }\n",
        links: LINKS,
    },
    Family {
        name: "echo-limited",
        what: "1 % loss, each target answering 10 echo requests a second at most",
        kind: Kind::Healthy,
        horizon_s: 3600.0,
        timeline: "  - { at_s: 120, link: wan, loss_percent: 1 }\n",
        links: LIMITED_LINKS,
    },
    Family {
        name: "echo-limited-lossy",
        what: "4 % loss, each target answering 10 echo requests a second at most",
        kind: Kind::Healthy,
        horizon_s: 3600.0,
        timeline: "  - { at_s: 120, link: wan, loss_percent: 4 }\n",
        links: LIMITED_LINKS,
    },
    Family {
        name: "noisy-day",
        what: "1–2 % loss, jitter, spikes, a filtered target",
        kind: Kind::Healthy,
        horizon_s: 86_400.0,
        // The spikes begin ten seconds after the filter: begun at the same instant, the
        // answering target's first spike and the filtered target's first silence are an outage
        // for 0.9 s (nothing answers), which the outage goal says to leave.
        timeline: "  - { at_s: 120, link: wan, loss_percent: 1, jitter_ms: 5, unreachable_targets: [1] }\n  - { at_s: 120, link: wwan, loss_percent: 2, jitter_ms: 12 }\n  - { at_s: 130, link: wan, spikes: { every_s: 20, last_s: 1, extra_ms: 800 } }\n",
        links: LINKS,
    },
];

/// The policies compared, in the order of the table's columns.
pub const POLICIES: &[&str] =
    &["wanmon", "wanmon v0.1", "mwan3", "dpinger", "shell 60 s", "shell 10 s", IDEAL];

/// The yardstick of the loss families (`peers::ideal`): not a policy anyone runs.
pub const IDEAL: &str = "ideal test";

/// Whether `policy` answers for `family`: every one does, but the yardstick only for the
/// families whose primary only loses packets.
pub fn applies(policy: &str, family: &Family) -> bool {
    policy != IDEAL || peers::ideal::FAMILIES.contains(&family.name)
}

impl Family {
    /// The family's scenario for one seed; `days` stretches a healthy day-long family.
    pub fn scenario(&self, seed: u64, days: f64) -> Scenario {
        let horizon = if self.name == "noisy-day" { self.horizon_s * days } else { self.horizon_s };
        let text = format!(
            "name: {}\nseed: {seed}\nduration_s: {}\n{}timeline:\n{}expect:\n  - initial: wan\n",
            self.name,
            WARM_UP_S + horizon,
            self.links,
            self.timeline
        );
        Scenario::parse(Path::new(self.name), &text)
            .unwrap_or_else(|e| panic!("family {}: {e:?}", self.name))
    }
}

/// Runs one policy on one scenario.
pub fn run_policy(policy: &str, scenario: &Scenario) -> Outcome {
    let end = scenario.duration_s;
    let mut world = World::new(scenario);
    world.watch_from_s = WARM_UP_S;
    match policy {
        "wanmon" => run_wanmon(scenario),
        "wanmon v0.1" => peers::v01::run(&mut world, end),
        "mwan3" => peers::mwan3::run(&mut world, end),
        "dpinger" => peers::dpinger::run(&mut world, end),
        "shell 60 s" => peers::shell::run(&mut world, end, 60.0),
        "shell 10 s" => peers::shell::run(&mut world, end, 10.0),
        IDEAL => peers::ideal::run(&mut world, end),
        other => panic!("no policy {other:?}"),
    }
}

/// wanmon itself: the replay engine, the decision core as the daemon runs it.
fn run_wanmon(scenario: &Scenario) -> Outcome {
    let (mut run, phase) = replay::start(scenario);
    run.path_mut().watch_from_s = WARM_UP_S;
    let mut phases = scenario.timeline.iter().peekable();
    let at = |t_s: f64| wanmon::core::Instant::from_micros((t_s * 1e6) as u64 + phase);
    while let Some(next) = phases.peek().map(|p| p.at_s) {
        run.run_until(at(next));
        replay::apply_phases(&mut run, scenario, &mut phases, next);
    }
    run.run_until(at(scenario.duration_s));
    let mut outcome = Outcome::new(scenario.links.len(), 2 * 36);
    for decision in run.decisions().iter().filter(|d| d.changes_route()) {
        let t = decision.at.as_micros().saturating_sub(phase) as f64 / 1e6;
        if let Some(link) = scenario.links.iter().position(|l| l.name == decision.to.as_str()) {
            outcome.route_to(t, link);
        }
    }
    outcome.probes = run.path_mut().probes.clone();
    outcome.first_lost_s = run.path_mut().first_lost_s;
    outcome
}

/// What one run of one policy showed.
#[derive(Clone, Debug, PartialEq)]
pub struct Measure {
    /// From the fault to the route leaving the primary; `None` if it never did.
    pub to_switch_s: Option<f64>,
    /// From the first probe of the primary lost after the fault to the route leaving it.
    pub after_first_loss_s: Option<f64>,
    /// From the fault to the route's return to the primary after it left.
    pub back_s: Option<f64>,
    /// Route changes after the warm-up.
    pub switches: usize,
    /// Seconds on a link that was down or worse than another by more than the hysteresis.
    pub bad_link_s: f64,
    /// Probe bytes a second of the backup link, over the run.
    pub backup_bytes_per_s: f64,
}

pub fn measure(scenario: &Scenario, outcome: &Outcome) -> Measure {
    let after_fault = outcome.route.iter().filter(|(t, _)| *t >= WARM_UP_S);
    let to_switch_s = after_fault.clone().find(|(_, link)| *link != 0).map(|(t, _)| t - WARM_UP_S);
    let back_s = to_switch_s.and_then(|left| {
        let mut later = after_fault.clone().filter(|(t, _)| *t > WARM_UP_S + left);
        later.find(|(_, link)| *link == 0).map(|(t, _)| t - WARM_UP_S)
    });
    let bytes = outcome.probes.get(1).copied().unwrap_or(0) * outcome.bytes_per_probe;
    let after_first_loss_s =
        to_switch_s.zip(outcome.first_lost_s).map(|(t, lost)| (t + WARM_UP_S - lost).max(0.0));
    Measure {
        to_switch_s,
        after_first_loss_s,
        back_s,
        switches: after_fault.count(),
        bad_link_s: crate::record::bad_link_seconds(scenario, &outcome.route, WARM_UP_S),
        backup_bytes_per_s: bytes as f64 / scenario.duration_s,
    }
}

/// The measures of every seed of one family under one policy.
#[derive(Clone, Debug)]
pub struct Cell {
    pub family: Family,
    pub policy: &'static str,
    pub measures: Vec<Measure>,
    pub simulated_s: f64,
}

/// How big a judge run is.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub seeds: u64,
    /// Days of the `noisy-day` family per seed.
    pub days: f64,
    pub threads: usize,
}

/// Runs every family under every policy for every seed, in parallel.
pub fn judge(size: Size, families: &[Family], policies: &[&'static str]) -> Vec<Cell> {
    let jobs: Vec<(usize, usize, u64)> = (0..families.len())
        .flat_map(|f| {
            (0..policies.len())
                .filter(move |p| applies(policies[*p], &families[f]))
                .flat_map(move |p| (1..=size.seeds).map(move |s| (f, p, s)))
        })
        .collect();
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..size.threads.max(1) {
            scope.spawn(|| {
                while let Some(&(f, p, seed)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let scenario = families[f].scenario(seed, size.days);
                    let outcome = run_policy(policies[p], &scenario);
                    let measured = measure(&scenario, &outcome);
                    results.lock().expect("no thread panicked").push((
                        f,
                        p,
                        seed,
                        measured,
                        scenario.duration_s,
                    ));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("no thread panicked");
    results.sort_by_key(|(f, p, seed, _, _)| (*f, *p, *seed));
    let mut cells: Vec<Cell> = Vec::new();
    for (f, p, _, measured, duration) in results {
        match cells.last_mut() {
            Some(cell) if cell.family.name == families[f].name && cell.policy == policies[p] => {
                cell.measures.push(measured);
                cell.simulated_s += duration;
            }
            _ => cells.push(Cell {
                family: families[f],
                policy: policies[p],
                measures: vec![measured],
                simulated_s: duration,
            }),
        }
    }
    cells
}

/// The `q`-quantile (nearest rank) of times to switch, a never-switched run counting as longer
/// than any; `None` if that rank never switched.
pub fn quantile(times: &[Option<f64>], q: f64) -> Option<f64> {
    let mut times: Vec<f64> = times.iter().map(|t| t.unwrap_or(f64::INFINITY)).collect();
    times.sort_by(f64::total_cmp);
    let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len().max(1));
    times.get(rank - 1).copied().filter(|t| t.is_finite())
}

impl Cell {
    /// Each seed's time to switch, from the fault.
    pub fn times(&self) -> Vec<Option<f64>> {
        self.measures.iter().map(|m| m.to_switch_s).collect()
    }

    /// The times the family's goal is about: from the fault, but for the outage from the
    /// primary's first lost probe (the fault may fall between two probes).
    pub fn goal_times(&self) -> Vec<Option<f64>> {
        if self.family.name != "outage" {
            return self.times();
        }
        self.measures.iter().map(|m| m.after_first_loss_s).collect()
    }

    /// The `q`-quantile of the goal's times.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.goal_times(), q)
    }

    /// The table's entry: time to switch (median / p95) for a fault, and for the outage also
    /// from its first lost probe; switches per day when healthy.
    pub fn entry(&self) -> String {
        let show = |t: Option<f64>| match t {
            None => "never".into(),
            Some(t) if t < 10.0 => format!("{t:.2}"),
            Some(t) => format!("{t:.1}"),
        };
        let pair = |times: &[Option<f64>]| {
            format!("{} / {}", show(quantile(times, 0.5)), show(quantile(times, 0.95)))
        };
        match self.family.kind {
            Kind::Fault { .. } if self.family.name == "outage" => {
                format!(
                    "{} ({} after the first lost probe)",
                    pair(&self.times()),
                    pair(&self.goal_times())
                )
            }
            Kind::Fault { .. } => pair(&self.times()),
            Kind::Healthy => self.false_switches(),
        }
    }

    /// The median time back on the primary, as "t s (k returned early)".
    pub fn back(&self) -> String {
        let mut times: Vec<f64> = self.measures.iter().filter_map(|m| m.back_s).collect();
        if times.is_empty() {
            return "never".into();
        }
        times.sort_by(f64::total_cmp);
        format!("{:.0} ({} of {})", times[times.len() / 2], times.len(), self.measures.len())
    }

    /// Switches per day, with enough digits that a rare one does not read as none.
    pub fn false_switches(&self) -> String {
        let per_day = self.switches_per_day();
        match self.switches() {
            0 => "0/day".into(),
            _ if per_day < 0.1 => format!("{per_day:.3}/day"),
            _ => format!("{per_day:.1}/day"),
        }
    }

    pub fn switches(&self) -> usize {
        self.measures.iter().map(|m| m.switches).sum()
    }

    pub fn switches_per_day(&self) -> f64 {
        let switches = self.switches();
        let days = (self.simulated_s - WARM_UP_S * self.measures.len() as f64) / 86_400.0;
        switches as f64 / days.max(1e-9)
    }

    pub fn bad_link_s(&self) -> f64 {
        self.measures.iter().map(|m| m.bad_link_s).sum::<f64>() / self.measures.len().max(1) as f64
    }

    pub fn backup_bytes_per_s(&self) -> f64 {
        self.measures.iter().map(|m| m.backup_bytes_per_s).sum::<f64>()
            / self.measures.len().max(1) as f64
    }
}

fn find<'a>(cells: &'a [Cell], family: &str, policy: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| c.family.name == family && c.policy == policy)
}

/// The report in markdown: the switching table, bad-link seconds, and the standby's traffic.
pub fn markdown(cells: &[Cell], size: Size) -> String {
    let policies: Vec<&str> =
        POLICIES.iter().copied().filter(|p| cells.iter().any(|c| c.policy == *p)).collect();
    let families: Vec<Family> = FAMILIES
        .iter()
        .copied()
        .filter(|f| cells.iter().any(|c| c.family.name == f.name))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Time to leave the failing primary, median / 95th percentile over {} seeds (s), or false switches per simulated day; {WARM_UP_S:.0} s of warm-up before each fault.\n",
        size.seeds
    );
    let _ = writeln!(out, "| family | what | goal | {} |", policies.join(" | "));
    let _ = writeln!(out, "|---|---|---|{}", "---|".repeat(policies.len()));
    for family in &families {
        let goal = match family.kind {
            Kind::Fault { goal_s: Some(g) } => format!("≤ {g} s"),
            Kind::Fault { goal_s: None } => "-".into(),
            Kind::Healthy => "0".into(),
        };
        let entries: Vec<String> = policies
            .iter()
            .map(|p| find(cells, family.name, p).map_or("-".into(), Cell::entry))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {goal} | {} |",
            family.name,
            family.what,
            entries.join(" | ")
        );
    }
    let _ = writeln!(
        out,
        "\nBack on the primary, median seconds after the fault (outage and brownout: healthy again at 60 s; flapping: stable from 58 s; a 30 s failback hold returns 30 s later at the earliest):\n"
    );
    let _ = writeln!(out, "| family | {} |", policies.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(policies.len()));
    for family in families.iter().filter(|f| matches!(f.name, "brownout" | "flapping" | "outage")) {
        let entries: Vec<String> = policies
            .iter()
            .map(|p| find(cells, family.name, p).map_or("-".into(), Cell::back))
            .collect();
        let _ = writeln!(out, "| {} | {} |", family.name, entries.join(" | "));
    }
    let _ = writeln!(out, "\nSeconds on a bad link after the fault (mean):\n");
    let _ = writeln!(out, "| family | {} |", policies.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(policies.len()));
    for family in &families {
        let entries: Vec<String> = policies
            .iter()
            .map(|p| {
                find(cells, family.name, p).map_or("-".into(), |c| format!("{:.0}", c.bad_link_s()))
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", family.name, entries.join(" | "));
    }
    if !families.iter().any(|f| f.name == "noisy-day") {
        return out;
    }
    let _ = writeln!(
        out,
        "\nProbe traffic of the healthy standby (`noisy-day`, IP bytes both ways):\n"
    );
    let _ = writeln!(out, "| {} |", policies.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(policies.len()));
    let traffic: Vec<String> = policies
        .iter()
        .map(|p| {
            find(cells, "noisy-day", p).map_or("-".into(), |c| {
                let per_s = c.backup_bytes_per_s();
                format!("{per_s:.1} B/s ({:.0} MB/30 days)", per_s * 30.0 * 86_400.0 / 1e6)
            })
        })
        .collect();
    let _ = writeln!(out, "| {} |", traffic.join(" | "));
    out
}

const COLOURS: [&str; 7] =
    ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#7f7f7f"];

/// Each fault family's times to switch, one dot per seed, one colour per policy, on a log scale
/// from 0.05 to 500 s; runs that never switched sit at the right edge.
pub fn svg(cells: &[Cell]) -> String {
    let families: Vec<Family> = FAMILIES
        .iter()
        .copied()
        .filter(|f| {
            matches!(f.kind, Kind::Fault { .. }) && cells.iter().any(|c| c.family.name == f.name)
        })
        .collect();
    let (left, width, row) = (150.0, 700.0, 34.0);
    let height = 60.0 + row * families.len() as f64 + 40.0;
    let x = |t: f64| left + width * ((t.clamp(0.05, 500.0) / 0.05).log10() / 4.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        left + width + 30.0
    );
    let _ = writeln!(
        out,
        "<text x=\"10\" y=\"20\" font-size=\"14\">Time to leave the failing link (s, log scale), one dot per seed</text>"
    );
    for (i, tick) in [0.1, 1.0, 10.0, 100.0].iter().enumerate() {
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"40\" x2=\"{0}\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{0}\" y=\"{2}\" text-anchor=\"middle\">{tick}</text>",
            x(*tick),
            height - 30.0,
            height - 15.0 + (i as f64 * 0.0)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">never</text>",
        x(500.0),
        height - 15.0
    );
    for (i, policy) in POLICIES.iter().enumerate() {
        let _ = writeln!(
            out,
            "<circle cx=\"{}\" cy=\"32\" r=\"4\" fill=\"{}\"/><text x=\"{}\" y=\"36\">{policy}</text>",
            160.0 + i as f64 * 100.0,
            COLOURS[i],
            168.0 + i as f64 * 100.0
        );
    }
    for (f, family) in families.iter().enumerate() {
        let y = 60.0 + row * f as f64;
        let _ = writeln!(out, "<text x=\"10\" y=\"{}\">{}</text>", y + 14.0, family.name);
        for (p, policy) in POLICIES.iter().enumerate() {
            let Some(cell) = find(cells, family.name, policy) else { continue };
            for time in cell.goal_times() {
                let t = time.unwrap_or(500.0);
                let _ = writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\" fill-opacity=\"0.6\"/>",
                    x(t),
                    y + 4.0 + p as f64 * 4.0,
                    COLOURS[p]
                );
            }
        }
    }
    out.push_str("</svg>\n");
    out
}
