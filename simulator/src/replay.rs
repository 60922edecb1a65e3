//! The `replay` engine: a scenario in virtual time against the controller alone. Probe outcomes
//! are drawn from the scenario's conditions by each link's seeded path model, so a run is
//! deterministic to the bit, needs no root, and a simulated day takes well under a second. The
//! controller's probe rhythm starts at a phase drawn from the seed, so a change does not always
//! fall on the same side of a probe.

use crate::network::{Path, Rng};
use crate::record::{DecisionRecord, LinkSample, RouteChange, RunRecord, Sample};
use crate::scenario::{Carrier, Scenario};
use wanmon::core::virtual_time::{PathModel, VirtualRun};
use wanmon::core::{Decision, Instant, LinkEvent, Micros, Probe};

/// The scenario's network as the controller's probes meet it: one path per link. Times are
/// the scenario's, `phase` earlier than the controller's clock.
#[derive(Debug)]
pub struct ScenarioPaths {
    pub paths: Vec<Path>,
    phase_us: u64,
    /// Probes sent per link, for the probe traffic each costs.
    pub probes: Vec<u64>,
    /// The first lost probe of the first link sent at or after `watch_from_s` (scenario time).
    pub watch_from_s: f64,
    pub first_lost_s: Option<f64>,
}

impl PathModel for ScenarioPaths {
    fn round_trip(&mut self, probe: &Probe, now: Instant) -> Option<Micros> {
        self.probes[probe.link] += 1;
        let t_s = now.as_micros().saturating_sub(self.phase_us) as f64 / 1e6;
        let rtt = self.paths[probe.link].round_trip(probe.target, t_s);
        if rtt.is_none() && probe.link == 0 && t_s >= self.watch_from_s {
            self.first_lost_s.get_or_insert(t_s);
        }
        Some((rtt? * 1000.0) as Micros)
    }
}

/// Where in its probe rhythm the controller stands when the scenario begins: drawn from the seed,
/// within a second, so a change does not always fall on the same side of a probe.
pub fn phase_us(seed: u64) -> u64 {
    Rng::new(seed ^ 0x5eed_9a5e).next_u64() % 1_000_000
}

fn record_decision(decision: &Decision, phase_us: u64) -> DecisionRecord {
    DecisionRecord {
        t_ms: decision.at.as_micros().saturating_sub(phase_us) / 1000,
        from: decision.from.map(|f| f.to_string()),
        to: decision.to.to_string(),
        changes_route: decision.changes_route(),
        reason: decision.to_string(),
    }
}

/// A scenario run in virtual time, as far as it has got.
pub type Replay = VirtualRun<ScenarioPaths>;

/// Starts a scenario's replay: the controller, and each link's path seeded from the scenario.
pub fn start(scenario: &Scenario) -> (Replay, u64) {
    let phase = phase_us(scenario.seed);
    let paths = scenario
        .links
        .iter()
        .enumerate()
        .map(|(i, link)| Path::new(link.base.clone(), scenario.seed.wrapping_mul(1000) + i as u64))
        .collect();
    let model = ScenarioPaths {
        paths,
        phase_us: phase,
        probes: vec![0; scenario.links.len()],
        watch_from_s: f64::INFINITY,
        first_lost_s: None,
    };
    (VirtualRun::new(&scenario.config, model, Instant::ZERO), phase)
}

/// Applies the timeline's phases due by scenario time `t_s`, with the carrier events they make.
pub fn apply_phases<'a>(
    run: &mut Replay,
    scenario: &Scenario,
    phases: &mut std::iter::Peekable<impl Iterator<Item = &'a crate::scenario::Phase>>,
    t_s: f64,
) {
    while let Some(phase) = phases.next_if(|p| p.at_s <= t_s) {
        let condition = &mut run.path_mut().paths[phase.link].condition;
        let before = condition.carrier;
        phase.change.apply(condition, &scenario.links[phase.link].base);
        match (before, condition.carrier) {
            (Carrier::Up, Carrier::Down) => run.link_event(phase.link, LinkEvent::Down),
            (Carrier::Down, Carrier::Up) => run.link_event(phase.link, LinkEvent::Up),
            _ => {}
        }
    }
}

/// Runs a scenario, sampling telemetry every `sample_every_s` seconds.
pub fn run(scenario: &Scenario, sample_every_s: f64) -> RunRecord {
    let wall = std::time::Instant::now();
    let (mut run, phase) = start(scenario);
    let at = |t_s: f64| Instant::from_micros((t_s * 1e6) as u64 + phase);
    let mut samples = Vec::new();
    let mut phases = scenario.timeline.iter().peekable();
    let mut next_sample = 0.0;
    let end = scenario.duration_s;
    loop {
        let next_phase = phases.peek().map_or(f64::INFINITY, |p| p.at_s);
        let t = next_phase.min(next_sample);
        if t > end {
            break;
        }
        run.run_until(at(t));
        apply_phases(&mut run, scenario, &mut phases, t);
        if t >= next_sample {
            samples.push(sample(&mut run, t));
            next_sample += sample_every_s;
        }
    }
    run.run_until(at(end));
    let decisions: Vec<DecisionRecord> =
        run.decisions().iter().map(|d| record_decision(d, phase)).collect();
    let route_changes = decisions
        .iter()
        .filter(|d| d.changes_route)
        .map(|d| RouteChange { t_ms: d.t_ms, from: d.from.clone(), to: d.to.clone() })
        .collect();
    let elapsed = wall.elapsed().as_secs_f64().max(1e-9);
    RunRecord::judged(
        scenario,
        "replay",
        decisions,
        route_changes,
        samples,
        scenario.duration_s / elapsed,
    )
}

fn sample(run: &mut Replay, t_s: f64) -> Sample {
    let conditions: Vec<_> = run.path_mut().paths.iter().map(|p| p.condition.clone()).collect();
    let engine = run.engine();
    let current = engine.current().map(|l| l.name());
    let links = engine
        .links()
        .iter()
        .zip(&conditions)
        .map(|(link, condition)| {
            let telemetry = link.telemetry();
            LinkSample {
                name: link.name().to_string(),
                condition: condition.into(),
                state: link.state().word().to_string(),
                latency_ms: telemetry.map(|t| f64::from(t.latency_us) / 1000.0),
                jitter_ms: telemetry.map(|t| f64::from(t.jitter_us) / 1000.0),
                loss_percent: telemetry.map(|t| f64::from(t.loss_bp) / 100.0),
                score: link.score().map(|s| s.0 as f64 / 1000.0),
                carries_route: Some(link.name()) == current,
            }
        })
        .collect();
    Sample { t_s, links }
}
