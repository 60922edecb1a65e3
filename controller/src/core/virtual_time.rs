//! Drives an [`Engine`] in virtual time against a model of the network: the event loop of the
//! daemon without sockets or clocks. The engine tests, the property tests, the benchmark and the
//! simulator's replay engine all run the core through it.

use super::Config;
use super::engine::{Decision, Engine, LinkEvent, LinkIndex, Mode, ModeError, Probe};
use super::time::{Instant, Micros};

/// What the network does to a probe.
pub trait PathModel {
    /// The probe's round-trip time, or `None` when it (or its reply) is lost.
    fn round_trip(&mut self, probe: &Probe, now: Instant) -> Option<Micros>;
}

impl<F: FnMut(&Probe, Instant) -> Option<Micros>> PathModel for F {
    fn round_trip(&mut self, probe: &Probe, now: Instant) -> Option<Micros> {
        self(probe, now)
    }
}

#[derive(Copy, Clone, Debug)]
struct Arrival {
    at: Instant,
    link: LinkIndex,
    target: usize,
    seq: u16,
}

/// An engine, a network model and a virtual clock.
#[derive(Debug)]
pub struct VirtualRun<P> {
    engine: Engine,
    path: P,
    now: Instant,
    in_transit: Vec<Arrival>,
    decisions: Vec<Decision>,
}

/// A loop that stops making progress means the engine keeps asking to be woken at a time that has
/// passed without anything changing: a bug, never a property of the input.
const MAX_STEPS_AT_ONE_INSTANT: usize = 10_000;

impl<P: PathModel> VirtualRun<P> {
    pub fn new(config: &Config, path: P, start: Instant) -> VirtualRun<P> {
        VirtualRun {
            engine: Engine::new(config, start),
            path,
            now: start,
            in_transit: Vec::with_capacity(64),
            decisions: Vec::new(),
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn path_mut(&mut self) -> &mut P {
        &mut self.path
    }

    /// Every decision so far, in order.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// Runs every probe, reply, timeout and hold up to and including `end`.
    pub fn run_until(&mut self, end: Instant) {
        let mut steps_here = 0;
        loop {
            let next_arrival = self.in_transit.iter().map(|a| a.at).min().unwrap_or(Instant::NEVER);
            let next = next_arrival.min(self.engine.next_deadline()).max(self.now);
            if next > end {
                self.now = end;
                return;
            }
            steps_here = if next == self.now { steps_here + 1 } else { 0 };
            assert!(
                steps_here < MAX_STEPS_AT_ONE_INSTANT,
                "the engine's deadline does not advance at {} µs",
                next.as_micros()
            );
            self.now = next;
            self.step();
        }
    }

    fn step(&mut self) {
        let now = self.now;
        while let Some(index) = self.in_transit.iter().position(|a| a.at <= now) {
            let arrival = self.in_transit.swap_remove(index);
            let decision = self.engine.on_reply(now, arrival.link, arrival.target, arrival.seq);
            self.decisions.extend(decision);
        }
        let decision = self.engine.tick(now);
        self.decisions.extend(decision);
        while let Some(probe) = self.engine.poll_probe(now) {
            if let Some(rtt) = self.path.round_trip(&probe, now) {
                let arrival = Arrival {
                    at: now.after(rtt),
                    link: probe.link,
                    target: probe.target,
                    seq: probe.seq,
                };
                self.in_transit.push(arrival);
            }
        }
    }

    pub fn link_event(&mut self, link: LinkIndex, event: LinkEvent) {
        if event == LinkEvent::Down {
            // The device is gone: so is whatever was on its way back through it.
            self.in_transit.retain(|a| a.link != link);
        }
        let decision = self.engine.on_link_event(self.now, link, event);
        self.decisions.extend(decision);
    }

    pub fn set_mode(&mut self, mode: Mode) -> Result<(), ModeError> {
        let decision = self.engine.set_mode(self.now, mode)?;
        self.decisions.extend(decision);
        Ok(())
    }

    pub fn reload(&mut self, config: &Config) {
        // Links and targets may have moved: find each reply's probe again by name and address.
        let named: Vec<_> = self
            .in_transit
            .iter()
            .map(|a| {
                let link = &self.engine.links()[a.link];
                (*a, link.name(), link.targets()[a.target].address())
            })
            .collect();
        let decision = self.engine.reload(config, self.now);
        self.decisions.extend(decision);
        self.in_transit = named
            .into_iter()
            .filter_map(|(arrival, name, address)| {
                let link = self.engine.link_index(name.as_str())?;
                let target = self.engine.links()[link]
                    .targets()
                    .iter()
                    .position(|t| t.address() == address)?;
                Some(Arrival { link, target, ..arrival })
            })
            .collect();
    }
}
