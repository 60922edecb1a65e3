//! The controller: everything wanmon decides, sans-IO. It owns the engine (scores and switches),
//! what each link's device can do (observation), and how a reload maps old links onto new ones;
//! it hands out what must be done as [`Action`]s. The daemon performs them with sockets and
//! netlink, the simulator's replay with a model of the network: both drive this same type.
//!
//! # The contract (as quinn-proto's `Connection`)
//!
//! The caller owns the clock and every socket. After **any** `handle_*` call, and at start:
//! 1. perform every action [`Controller::poll_action`] returns, in order, until `None` (an
//!    action may bind the sockets the next probes go out on);
//! 2. send every probe [`Controller::poll_probe`] returns, until `None`, and report each as a
//!    reply ([`Controller::handle_reply`]) or a failure to send
//!    ([`Controller::handle_send_failed`]); a probe reported neither way is lost at its timeout;
//! 3. repeat 1 and 2 until neither has anything, then wait for input until
//!    [`Controller::poll_timeout`] and call [`Controller::handle_timeout`] if nothing came first.
//!
//! Time only goes forward: every `now` is at or after the previous one. Nothing here reads a
//! clock, touches a socket or allocates per probe (the action queue's room is reserved once).

use super::config::Config;
use super::device::{DeviceFacts, LinkPlan, Problem};
use super::engine::{Decision, Engine, LinkEvent, LinkIndex, LinkState, Mode, ModeError, Probe};
use super::name::LinkName;
use super::time::Instant;
use crate::text::Show;
use std::net::IpAddr;

/// How important a log line is: syslog's levels (and numbers), the ones wanmon uses.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
}

/// Something worth a log line, decided by the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Decision(Decision),
    LinkDown { link: LinkName, problem: Problem },
    LinkUp { link: LinkName },
    Operator(Mode),
}

impl Event {
    pub fn level(&self) -> Level {
        Level::Notice
    }
}

impl Show for Event {
    fn show(&self, out: &mut String) {
        match self {
            Event::Decision(decision) => decision.show(out),
            Event::LinkDown { link, problem } => put!(out, "link ", link, " down: ", problem),
            Event::LinkUp { link } => put!(out, "link ", link, " up"),
            Event::Operator(Mode::Auto) => put!(out, "operator: automatic choice restored"),
            Event::Operator(Mode::Forced(link)) => put!(out, "operator: forced to ", link),
        }
    }
}

crate::display_by_show!(Event);

/// What the caller must do, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The probe sockets of `link` follow its device: open them on this interface, or close
    /// them (`None`).
    BindProbes {
        link: LinkIndex,
        device: Option<u32>,
    },
    /// A reload renumbered the links: new link `i` keeps the probe sockets of old link
    /// `keep[i]` (the same device: replies in flight still find their probe), re-marked for
    /// `i`; every other socket is closed.
    KeepProbes(Vec<Option<LinkIndex>>),
    /// Read every device of [`Controller::plans`] from the kernel and hand the facts to
    /// [`Controller::handle_devices`].
    Observe,
    /// Remove what wanmon wrote into the kernel for the old links (a reload renumbers the link
    /// tables) but the default route and its two rules of each family the new
    /// [`Controller::plans`] still use: [`Action::WriteRouting`] replaces them in place, so the
    /// traffic never goes without a route.
    ClearRoutingKeepingTheRoute,
    /// Make the kernel's routing what [`Controller::plans`] and [`Controller::current`] say:
    /// rules, each link's probe table, the default route.
    WriteRouting,
    /// Only the default route moved: write it through [`Controller::current`].
    WriteDefaultRoute,
    /// The route left link `from`: remove the connection-tracking entries of the LAN's flows
    /// through it (`conntrack_cleanup`), after the route was written.
    ClearConntrack {
        from: LinkIndex,
    },
    /// Run the configured hook for this switch.
    RunHook(Decision),
    Log(Event),
}

/// Room reserved for the actions of one input, so queueing never allocates on the probe path.
const ACTIONS: usize = 32;

/// See the module documentation for the call contract.
#[derive(Debug)]
pub struct Controller {
    config: Config,
    engine: Engine,
    plans: Vec<LinkPlan>,
    /// Per link: whether the engine was last told its device is usable.
    told_usable: Vec<bool>,
    /// The devices have been observed once: before that no probe has a socket to go out on.
    observed: bool,
    actions: Vec<Action>,
}

impl Controller {
    /// A controller at `now` for a valid config. Its first actions ask for the devices to be
    /// observed and the routing written; it hands out no probe before the first observation.
    pub fn new(config: Config, now: Instant) -> Controller {
        let mut actions = Vec::with_capacity(ACTIONS);
        actions.push(Action::Observe);
        actions.push(Action::WriteRouting);
        Controller {
            engine: Engine::new(&config, now),
            plans: config.links.iter().map(LinkPlan::of).collect(),
            told_usable: vec![true; config.links.len()],
            observed: false,
            config,
            actions,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The decision engine, for reading: links, scores, mode, history.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Per link, in config order: its device, what the kernel says of it, its next hops.
    pub fn plans(&self) -> &[LinkPlan] {
        &self.plans
    }

    /// The index of the link the default route is on.
    pub fn current(&self) -> Option<LinkIndex> {
        let name = self.engine.current()?.name();
        self.engine.link_index(name.as_str())
    }

    /// Why each link cannot carry traffic now, in config order.
    pub fn problems(&self) -> Vec<Option<Problem>> {
        self.plans.iter().map(LinkPlan::problem).collect()
    }

    /// The next probe due at `now`; see the contract. None before the devices were observed.
    pub fn poll_probe(&mut self, now: Instant) -> Option<Probe> {
        if !self.observed {
            return None;
        }
        self.engine.poll_probe(now)
    }

    /// The next action to perform; see the contract.
    pub fn poll_action(&mut self) -> Option<Action> {
        super::engine::pop_front(&mut self.actions)
    }

    /// When to call [`Controller::handle_timeout`] if no input comes first.
    pub fn poll_timeout(&self) -> Instant {
        self.engine.next_deadline()
    }

    /// Lets time pass: lost probes, silent targets and expired holds take effect.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.engine.tick(now);
        self.take_decisions();
    }

    /// An echo reply from `source` to probe `seq` arrived on `link`'s socket. Replies from an
    /// address that is not one of the link's targets, or to no probe in flight, change nothing.
    pub fn handle_reply(&mut self, now: Instant, link: LinkIndex, source: IpAddr, seq: u16) {
        let Some(probed) = self.engine.links().get(link) else { return };
        let Some(target) = probed.targets().iter().position(|t| t.address() == source) else {
            return;
        };
        self.engine.on_reply(now, link, target, seq);
        self.take_decisions();
    }

    /// The probe could not be sent (no route, no socket, device gone): it is lost now.
    pub fn handle_send_failed(&mut self, now: Instant, probe: &Probe) {
        self.engine.on_send_failed(now, probe);
        self.take_decisions();
    }

    /// What the kernel says about every link's device, in the order of [`Controller::plans`].
    /// A device that appeared, moved or vanished gets its sockets bound anew; a link whose device
    /// can no longer carry traffic is dead at once (and probed again when it can).
    pub fn handle_devices(&mut self, now: Instant, facts: Vec<DeviceFacts>) {
        self.observed = true;
        let mut routing_changed = false;
        for (index, facts) in facts.into_iter().enumerate().take(self.plans.len()) {
            let old = std::mem::replace(&mut self.plans[index].facts, facts);
            let new = &self.plans[index].facts;
            if new.index != old.index {
                self.actions.push(Action::BindProbes { link: index, device: new.index });
            }
            // The next hops follow from these: the link's probe table and maybe the route move.
            routing_changed |= new.index != old.index
                || new.system_gateways != old.system_gateways
                || new.point_to_point != old.point_to_point;
            // Usable means able to carry the route: a device that is up with carrier and an
            // address, *and* a next hop (a link whose gateway is unknown cannot carry it).
            let usable = self.plans[index].problem().is_none();
            if usable == self.told_usable[index] {
                continue;
            }
            self.told_usable[index] = usable;
            routing_changed = true;
            let link = self.config.links[index].name;
            let event = match self.plans[index].problem() {
                Some(problem) if !usable => Event::LinkDown { link, problem },
                _ => Event::LinkUp { link },
            };
            self.actions.push(Action::Log(event));
            let news = if usable { LinkEvent::Up } else { LinkEvent::Down };
            self.engine.on_link_event(now, index, news);
            self.take_decisions();
        }
        if routing_changed {
            self.actions.push(Action::WriteRouting);
        }
    }

    /// The kernel's routing may have changed under wanmon (a route or rule of its own removed,
    /// a system gateway changed): write it all again.
    pub fn handle_routing_disturbed(&mut self) {
        self.actions.push(Action::WriteRouting);
    }

    /// The operator's choice; refused (and nothing changes) for an unknown or disabled link.
    pub fn handle_mode(&mut self, now: Instant, mode: Mode) -> Result<(), ModeError> {
        self.engine.set_mode(now, mode)?;
        self.actions.push(Action::Log(Event::Operator(mode)));
        self.take_decisions();
        Ok(())
    }

    /// [`Controller::handle_mode`] for a link named by the operator.
    pub fn handle_force(&mut self, now: Instant, link: &str) -> Result<(), ModeError> {
        let name = LinkName::new(link).map_err(|_| ModeError::UnknownLink(link.to_string()))?;
        self.handle_mode(now, Mode::Forced(name))
    }

    /// A new valid config. Links that keep their name and device keep their state, telemetry and
    /// scores, and devices that stay keep their sockets and what is known of them; the route
    /// stays on its link while that link is still enabled.
    pub fn handle_reload(&mut self, now: Instant, config: Config) {
        let old = std::mem::take(&mut self.plans);
        let plans: Vec<LinkPlan> = config.links.iter().map(LinkPlan::of).collect();
        let keep: Vec<Option<LinkIndex>> =
            plans.iter().map(|p| old.iter().position(|o| o.device == p.device)).collect();
        self.plans = plans;
        for (plan, kept) in self.plans.iter_mut().zip(&keep) {
            if let Some(old_index) = kept {
                plan.facts = old[*old_index].facts.clone();
            }
        }
        self.engine.reload(&config, now);
        // The engine kept each link's state: what it was told follows from that state.
        self.told_usable = (0..config.links.len())
            .map(|i| self.engine.links()[i].state() != LinkState::Dead(super::DeadCause::LinkDown))
            .collect();
        self.config = config;
        self.actions.push(Action::ClearRoutingKeepingTheRoute);
        self.actions.push(Action::KeepProbes(keep));
        self.actions.push(Action::Observe);
        self.actions.push(Action::WriteRouting);
        self.take_decisions();
    }

    /// Turns the engine's decisions into actions: the log line, the route, the hook.
    fn take_decisions(&mut self) {
        while let Some(decision) = self.engine.poll_decision() {
            self.actions.push(Action::Log(Event::Decision(decision)));
            if decision.changes_route() {
                self.actions.push(Action::WriteDefaultRoute);
                let left = decision.from.and_then(|from| self.engine.link_index(from.as_str()));
                if let Some(from) = left.filter(|_| self.config.conntrack_cleanup) {
                    self.actions.push(Action::ClearConntrack { from });
                }
                if self.config.hook.is_some() {
                    self.actions.push(Action::RunHook(decision));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
