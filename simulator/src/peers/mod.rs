//! Models of the peers wanmon is measured against, each from its documented defaults and its
//! source (see docs/judge.md): mwan3 as OpenWrt ships it, dpinger as pfSense configures it, the
//! original shell wanmon, and wanmon's own v0.1 engine; and for the loss families, the best a
//! test as sure as wanmon's could do with its probes (`ideal`). Each model probes the same
//! simulated network the replay does (a [`World`]) and returns where it put the route and when.

pub mod dpinger;
pub mod ideal;
pub mod mwan3;
pub mod shell;
pub mod v01;

use crate::condition::{Carrier, Condition};
use crate::network::Path;
use crate::scenario::Scenario;

/// What a policy did in a run: each change of the route (the first choice included), and the
/// probes it sent per link.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// `(scenario time in s, link index)`, in time order.
    pub route: Vec<(f64, usize)>,
    pub probes: Vec<u64>,
    /// IP bytes of one probe and its reply, both ways.
    pub bytes_per_probe: u64,
    /// When the first probe of the first link was lost after the world's `watch_from_s`.
    pub first_lost_s: Option<f64>,
}

impl Outcome {
    pub fn new(links: usize, bytes_per_probe: u64) -> Outcome {
        Outcome { route: Vec::new(), probes: vec![0; links], bytes_per_probe, first_lost_s: None }
    }

    /// Puts the route on `link` at `t_s`, if it is not there already.
    pub fn route_to(&mut self, t_s: f64, link: usize) {
        if self.route.last().is_none_or(|(_, current)| *current != link) {
            self.route.push((t_s, link));
        }
    }

    /// Where the route is at `t_s`.
    pub fn route_at(&self, t_s: f64) -> Option<usize> {
        self.route.iter().take_while(|(t, _)| *t <= t_s).last().map(|(_, link)| *link)
    }
}

/// The scenario's network as a peer's probes meet it: each link's path, its conditions moved on
/// along the timeline as that link's clock passes them. Each link keeps its own clock, so
/// models whose links are probed by separate processes may run one link ahead of another.
#[derive(Debug)]
pub struct World<'a> {
    scenario: &'a Scenario,
    paths: Vec<Path>,
    /// Per link: the next timeline entry not yet applied.
    cursors: Vec<usize>,
    pub probes: Vec<u64>,
    /// Lost probes of the first link are watched for from this scenario time on.
    pub watch_from_s: f64,
    pub first_lost_s: Option<f64>,
}

impl<'a> World<'a> {
    /// The same paths, seeded the same way, as the replay gives the controller.
    pub fn new(scenario: &'a Scenario) -> World<'a> {
        let paths = scenario
            .links
            .iter()
            .enumerate()
            .map(|(i, l)| Path::new(l.base.clone(), scenario.seed.wrapping_mul(1000) + i as u64))
            .collect();
        let links = scenario.links.len();
        World {
            scenario,
            paths,
            cursors: vec![0; links],
            probes: vec![0; links],
            watch_from_s: f64::INFINITY,
            first_lost_s: None,
        }
    }

    pub fn links(&self) -> usize {
        self.paths.len()
    }

    pub fn targets(&self, link: usize) -> usize {
        self.scenario.links[link].targets
    }

    /// Link `link`'s condition at `t_s` (never earlier than it was last asked for).
    pub fn condition(&mut self, link: usize, t_s: f64) -> &Condition {
        let timeline = &self.scenario.timeline;
        while let Some(phase) = timeline.get(self.cursors[link]).filter(|p| p.at_s <= t_s) {
            if phase.link == link {
                let base = &self.scenario.links[link].base;
                phase.change.apply(&mut self.paths[link].condition, base);
            }
            self.cursors[link] += 1;
        }
        &self.paths[link].condition
    }

    /// One echo to target `target` (modulo the link's targets) of `link`, sent at `t_s`: its
    /// round trip in ms, or `None` if it or its reply is lost.
    pub fn ping(&mut self, link: usize, target: usize, t_s: f64) -> Option<f64> {
        self.condition(link, t_s);
        self.probes[link] += 1;
        let target = target % self.targets(link).max(1);
        let rtt = self.paths[link].round_trip(target, t_s);
        if rtt.is_none() && link == 0 && t_s >= self.watch_from_s {
            self.first_lost_s = Some(self.first_lost_s.map_or(t_s, |first| first.min(t_s)));
        }
        rtt
    }

    pub fn carrier_up(&mut self, link: usize, t_s: f64) -> bool {
        self.condition(link, t_s).carrier == Carrier::Up
    }

    /// When the carrier of `link` changes, from the timeline: `(t_s, up)`.
    pub fn carrier_changes(&self, link: usize) -> Vec<(f64, bool)> {
        let base = &self.scenario.links[link].base;
        let mut condition = base.clone();
        let mut changes = Vec::new();
        for phase in self.scenario.timeline.iter().filter(|p| p.link == link) {
            let before = condition.carrier;
            phase.change.apply(&mut condition, base);
            if condition.carrier != before {
                changes.push((phase.at_s, condition.carrier == Carrier::Up));
            }
        }
        changes
    }

    /// The config the scenario gives wanmon.
    pub fn config(&self) -> &wanmon::core::Config {
        &self.scenario.config
    }

    /// Link `link`'s condition as the scenario starts it.
    pub fn base(&self, link: usize) -> Condition {
        self.scenario.links[link].base.clone()
    }

    pub fn bias(&self, link: usize) -> f64 {
        self.scenario.config.links[link].bias as f64
    }

    pub fn into_probes(self) -> Vec<u64> {
        self.probes
    }
}

impl World<'_> {
    /// What the world counted (probes sent, the first lost probe) written into `outcome`.
    pub fn finish(&self, mut outcome: Outcome) -> Outcome {
        outcome.probes = self.probes.clone();
        outcome.first_lost_s = self.first_lost_s;
        outcome
    }
}

/// A policy that judges each link on its own (`watch` gives when it is usable and when not)
/// and routes by the config's order, as mwan3 and pfSense's gateway groups do.
pub fn run_per_link(
    world: &mut World,
    end_s: f64,
    bytes_per_probe: u64,
    watch: fn(&mut World, usize, f64) -> Vec<(f64, bool)>,
) -> Outcome {
    let links = world.links();
    let per_link: Vec<_> = (0..links).map(|link| watch(world, link, end_s)).collect();
    let mut outcome = Outcome::new(links, bytes_per_probe);
    route_by_order(&per_link, links, &mut outcome);
    world.finish(outcome)
}

/// A policy's per-link verdicts `(t_s, usable)` merged into a route: the first usable link in
/// the config's order; with none usable, the route stays where it is.
pub fn route_by_order(per_link: &[Vec<(f64, bool)>], links: usize, outcome: &mut Outcome) {
    let mut events: Vec<(f64, usize, bool)> = per_link
        .iter()
        .enumerate()
        .flat_map(|(link, changes)| changes.iter().map(move |(t, up)| (*t, link, *up)))
        .collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut usable = vec![true; links];
    outcome.route_to(0.0, 0);
    for (t, link, up) in events {
        usable[link] = up;
        if let Some(first) = usable.iter().position(|u| *u) {
            outcome.route_to(t, first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_follows_the_first_usable_link() {
        let mut outcome = Outcome::new(2, 0);
        let wan = vec![(10.0, false), (50.0, true)];
        let wwan = vec![(20.0, false), (30.0, true)];
        route_by_order(&[wan, wwan], 2, &mut outcome);
        // Both down at 20 s: the route stays on wwan, where it was.
        assert_eq!(outcome.route, [(0.0, 0), (10.0, 1), (50.0, 0)]);
        assert_eq!(outcome.route_at(25.0), Some(1));
        assert_eq!(outcome.route_at(60.0), Some(0));
    }
}
