//! The `replay` engine: a scenario in virtual time against the decision core alone. Probe
//! outcomes are drawn from the scenario's conditions with a seeded generator, so a run is
//! deterministic to the bit, needs no root, and a simulated day takes well under a second.

use crate::record::{DecisionRecord, LinkSample, RouteChange, RunRecord, Sample};
use crate::scenario::{Carrier, Condition, Scenario};
use wanmon::core::virtual_time::{PathModel, VirtualRun};
use wanmon::core::{Decision, Instant, LinkEvent, Micros, Probe};

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

    /// Roughly standard normal (Irwin–Hall of twelve uniforms).
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// The scenario's network as the engine's probes meet it.
#[derive(Debug)]
pub struct ScenarioPath {
    pub conditions: Vec<Condition>,
    rng: Rng,
}

impl PathModel for ScenarioPath {
    fn round_trip(&mut self, probe: &Probe, _now: Instant) -> Option<Micros> {
        let condition = &self.conditions[probe.link];
        // Draw every number for every probe, so one change does not shift all later draws.
        let lost = self.rng.unit() * 100.0 < condition.loss_percent;
        let spread = self.rng.normal() * condition.jitter_ms;
        if lost
            || condition.outage
            || condition.carrier == Carrier::Down
            || condition.unreachable_targets.contains(&probe.target)
        {
            return None;
        }
        Some(((condition.latency_ms + spread).max(0.05) * 1000.0) as Micros)
    }
}

fn record_decision(decision: &Decision) -> DecisionRecord {
    DecisionRecord {
        t_ms: decision.at.as_micros() / 1000,
        from: decision.from.map(|f| f.to_string()),
        to: decision.to.to_string(),
        changes_route: decision.changes_route(),
        reason: decision.to_string(),
    }
}

/// Runs a scenario, sampling telemetry every `sample_every_s` seconds.
pub fn run(scenario: &Scenario, sample_every_s: f64) -> RunRecord {
    let wall = std::time::Instant::now();
    let path = ScenarioPath {
        conditions: scenario.links.iter().map(|l| l.base.clone()).collect(),
        rng: Rng::new(scenario.seed),
    };
    let mut run = VirtualRun::new(&scenario.config, path, Instant::ZERO);
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
        run.run_until(Instant::from_micros((t * 1e6) as u64));
        while let Some(phase) = phases.next_if(|p| p.at_s <= t) {
            let before = run.path_mut().conditions[phase.link].carrier;
            let base = &scenario.links[phase.link].base;
            phase.change.apply(&mut run.path_mut().conditions[phase.link], base);
            match (before, run.path_mut().conditions[phase.link].carrier) {
                (Carrier::Up, Carrier::Down) => run.link_event(phase.link, LinkEvent::Down),
                (Carrier::Down, Carrier::Up) => run.link_event(phase.link, LinkEvent::Up),
                _ => {}
            }
        }
        if t >= next_sample {
            samples.push(sample(&mut run, t));
            next_sample += sample_every_s;
        }
    }
    run.run_until(Instant::from_micros((end * 1e6) as u64));
    let decisions: Vec<DecisionRecord> = run.decisions().iter().map(record_decision).collect();
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

fn sample(run: &mut VirtualRun<ScenarioPath>, t_s: f64) -> Sample {
    let conditions = run.path_mut().conditions.clone();
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
