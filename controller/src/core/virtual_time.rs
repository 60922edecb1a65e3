//! Drives a [`Controller`] in virtual time against a model of the network: the daemon's poll loop
//! without sockets, netlink or clocks. The engine tests, the property tests and the simulator's
//! replay engine all run the core through it, so they exercise what the daemon runs.

use super::Config;
use super::controller::{Action, Controller, Event};
use super::device::DeviceFacts;
use super::engine::{Decision, LinkEvent, LinkIndex, Mode, ModeError, Probe};
use super::time::{Instant, Micros};
use std::net::IpAddr;

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
    source: IpAddr,
    seq: u16,
}

/// A controller, a network model and a virtual clock; every link's device works until a
/// [`VirtualRun::link_event`] says otherwise.
#[derive(Debug)]
pub struct VirtualRun<P> {
    controller: Controller,
    path: P,
    now: Instant,
    in_transit: Vec<Arrival>,
    /// Per link: whether its device is down (carrier lost).
    down: Vec<bool>,
    decisions: Vec<Decision>,
    /// How often the default route was written: once per switch.
    route_writes: usize,
}

/// A loop that stops making progress means the controller keeps asking to be woken at a time
/// that has passed without anything changing: a bug, never a property of the input.
const MAX_STEPS_AT_ONE_INSTANT: usize = 10_000;

/// A device that works: up, with carrier, an address and a default route of the system's.
fn working_device(link: LinkIndex) -> DeviceFacts {
    DeviceFacts {
        index: Some(link as u32 + 2),
        up: true,
        carrier: true,
        point_to_point: false,
        addresses: 1,
        system_gateways: [Some(Some(IpAddr::from([198, 51, 100, 1]))), None],
    }
}

impl<P: PathModel> VirtualRun<P> {
    pub fn new(config: &Config, path: P, start: Instant) -> VirtualRun<P> {
        let mut run = VirtualRun {
            controller: Controller::new(config.clone(), start),
            path,
            now: start,
            in_transit: Vec::with_capacity(64),
            down: vec![false; config.links.len()],
            decisions: Vec::new(),
            route_writes: 0,
        };
        run.perform_actions();
        run
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    pub fn engine(&self) -> &super::Engine {
        self.controller.engine()
    }

    pub fn path_mut(&mut self) -> &mut P {
        &mut self.path
    }

    /// Every decision so far, in order.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// How many times the default route was written.
    pub fn route_writes(&self) -> usize {
        self.route_writes
    }

    /// Runs every probe, reply, timeout and hold up to and including `end`.
    pub fn run_until(&mut self, end: Instant) {
        let mut steps_here = 0;
        loop {
            let next_arrival = self.in_transit.iter().map(|a| a.at).min().unwrap_or(Instant::NEVER);
            let next = next_arrival.min(self.controller.poll_timeout()).max(self.now);
            if next > end {
                self.now = end;
                return;
            }
            steps_here = if next == self.now { steps_here + 1 } else { 0 };
            assert!(
                steps_here < MAX_STEPS_AT_ONE_INSTANT,
                "the controller's deadline does not advance at {} µs",
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
            self.controller.handle_reply(now, arrival.link, arrival.source, arrival.seq);
            self.perform_actions();
        }
        self.controller.handle_timeout(now);
        self.perform_actions();
    }

    /// Performs the actions and sends the probes due, as the daemon's loop does.
    fn perform_actions(&mut self) {
        let now = self.now;
        loop {
            while let Some(action) = self.controller.poll_action() {
                self.act(action);
            }
            let mut sent = false;
            while let Some(probe) = self.controller.poll_probe(now) {
                sent = true;
                if let Some(rtt) = self.path.round_trip(&probe, now) {
                    let arrival = Arrival {
                        at: now.after(rtt),
                        link: probe.link,
                        source: probe.address,
                        seq: probe.seq,
                    };
                    self.in_transit.push(arrival);
                }
            }
            if !sent {
                return;
            }
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Observe => {
                let facts = self.devices();
                self.controller.handle_devices(self.now, facts);
            }
            Action::Log(Event::Decision(decision)) => self.decisions.push(decision),
            Action::WriteDefaultRoute => self.route_writes += 1,
            Action::KeepProbes(keep) => {
                // Replies still on their way keep their link's new number, or are lost.
                self.in_transit.retain_mut(|a| {
                    match keep.iter().position(|k| *k == Some(a.link)) {
                        Some(new) => {
                            a.link = new;
                            true
                        }
                        None => false,
                    }
                });
            }
            Action::BindProbes { .. }
            | Action::ClearRoutingKeepingTheRoute
            | Action::WriteRouting
            | Action::ClearConntrack { .. }
            | Action::RunHook(_)
            | Action::Log(_) => {}
        }
    }

    fn devices(&self) -> Vec<DeviceFacts> {
        (0..self.controller.plans().len())
            .map(|link| {
                let device = working_device(link);
                let down = self.down.get(link).copied().unwrap_or(false);
                DeviceFacts { carrier: !down, ..device }
            })
            .collect()
    }

    /// The device of `link` loses (`Down`) or regains (`Up`) its carrier.
    pub fn link_event(&mut self, link: LinkIndex, event: LinkEvent) {
        if event == LinkEvent::Down {
            // The device is gone: so is whatever was on its way back through it.
            self.in_transit.retain(|a| a.link != link);
        }
        if let Some(down) = self.down.get_mut(link) {
            *down = event == LinkEvent::Down;
        }
        let facts = self.devices();
        self.controller.handle_devices(self.now, facts);
        self.perform_actions();
    }

    pub fn set_mode(&mut self, mode: Mode) -> Result<(), ModeError> {
        self.controller.handle_mode(self.now, mode)?;
        self.perform_actions();
        Ok(())
    }

    pub fn reload(&mut self, config: &Config) {
        // Devices keep their state by link name; a new link's device works.
        let names: Vec<_> = self.controller.config().links.iter().map(|l| l.name).collect();
        let down = config
            .links
            .iter()
            .map(|l| names.iter().position(|n| *n == l.name).is_some_and(|i| self.down[i]))
            .collect();
        self.down = down;
        self.controller.handle_reload(self.now, config.clone());
        self.perform_actions();
    }
}
