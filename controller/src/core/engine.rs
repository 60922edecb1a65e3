//! The decision engine: schedules probes, takes their outcomes and link events, keeps telemetry and
//! scores, and decides which link carries the default route. Sans-IO: the caller hands in the time
//! and every event, sends the probes it is asked to send, and applies the decisions it gets back.
//!
//! The rules, in the order they are tried:
//! - (e) an operator's forced link wins, while it lives or when `forced_link_dies` is `stay`;
//! - (a) the current link is dead: switch at once to the best live link;
//! - (d) every link is dead: keep the current route, the router is never left without one;
//! - (b) another link scores better by at least the hysteresis for the whole switch hold: switch;
//! - (c) if that link comes earlier in the config (a failback), it must have been better for the
//!   failback hold instead (when that is longer): a link the route left proves itself first.
//!
//! A link event (carrier lost, device gone) makes a link dead at once (f).

use super::config::{Config, ForcedLinkDies, LinkConfig};
use super::link_state::StateCell;
pub use super::link_state::{DeadCause, LinkState};
use super::name::LinkName;
use super::score::{Score, raw_score, smooth};
use super::telemetry::{Telemetry, Window, consensus};
use super::time::{Instant, Micros, ShowDuration};
use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;

/// How many decisions the engine remembers for the status page.
pub const HISTORY_LEN: usize = 32;

/// Decisions one input can make: a reload can remove the route's link and let another rule act.
const QUEUE_LEN: usize = 8;

/// Index of a link in the engine's current config.
pub type LinkIndex = usize;

/// A probe the caller must send now: an ICMP echo to `address` through link `link`, identified by
/// `seq`. Report its reply with [`Engine::on_reply`] or a failure to send with
/// [`Engine::on_send_failed`]; if neither comes, the engine counts it lost after the link's timeout.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub link: LinkIndex,
    pub target: usize,
    pub seq: u16,
    pub address: IpAddr,
}

/// What the OS said about a link's device.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// Carrier lost, device removed, or its address gone: the link is dead now.
    Down,
    /// The device is back with carrier and an address: probe it again.
    Up,
}

/// Who chooses the link.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Auto,
    /// The operator forced this link; sticky until [`Mode::Auto`].
    Forced(LinkName),
}

/// The rule that made a decision, with the numbers that triggered it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The first choice after start: every link has a verdict, this one scores best.
    Initial { score: Score },
    /// (a) The current link died; `score` is the new link's.
    CurrentDead { cause: DeadCause, score: Score },
    /// (b) Better by at least `margin` for `held`.
    Better { from_score: Score, to_score: Score, margin: Score, held: Micros },
    /// (c) A return to a link earlier in the config, better by at least `margin` for `held`
    /// (at least the failback hold).
    Failback { from_score: Score, to_score: Score, margin: Score, held: Micros },
    /// (d) Every link is dead: the route stays where it is. `from` and `to` are the same link.
    AllDead,
    /// (e) The operator forced the link.
    Forced,
    /// (e) The forced link is dead and `forced_link_dies` is `fallback`: the best live link instead.
    ForcedLinkDead { forced: LinkName, score: Score },
    /// The link the route was on was removed or disabled by a config reload.
    LinkRemoved { score: Score },
}

/// A decision: move the default route from `from` to `to` (or, for [`Reason::AllDead`], keep it).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub at: Instant,
    pub from: Option<LinkName>,
    pub to: LinkName,
    pub reason: Reason,
}

impl Decision {
    /// False only for the note that every link is dead: the route stays.
    pub fn changes_route(&self) -> bool {
        self.from != Some(self.to)
    }
}

impl fmt::Display for Decision {
    /// One log line: `wan -> wwan: wan is dead (no reply for 3.0 s); wwan is the best live link (score 85.2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = self.from.as_ref().map_or("none", LinkName::as_str);
        let to = self.to;
        write!(f, "{from} -> {to}: ")?;
        match self.reason {
            Reason::Initial { score } => write!(f, "first choice, {to} scores best ({score})"),
            Reason::CurrentDead { cause, score } => {
                write!(f, "{from} is dead ({cause}); {to} is the best live link (score {score})")
            }
            Reason::Better { from_score, to_score, margin, held } => write!(
                f,
                "{to} scored {to_score} against {from_score} for {}, better by at least the hysteresis {margin}",
                ShowDuration(held)
            ),
            Reason::Failback { from_score, to_score, margin, held } => write!(
                f,
                "failback: {to} scored {to_score} against {from_score} for {}, better by at least the hysteresis {margin}",
                ShowDuration(held)
            ),
            Reason::AllDead => write!(f, "every link is dead; keeping the default route on {to}"),
            Reason::Forced => write!(f, "forced by the operator"),
            Reason::ForcedLinkDead { forced, score } => write!(
                f,
                "forced link {forced} is dead, falling back to the best live link {to} (score {score})"
            ),
            Reason::LinkRemoved { score } => write!(
                f,
                "{from} was removed or disabled by a config reload; {to} is the best live link (score {score})"
            ),
        }
    }
}

/// Why the operator's command was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModeError {
    UnknownLink(String),
    LinkDisabled(LinkName),
}

impl fmt::Display for ModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModeError::UnknownLink(name) => write!(f, "no link named {name:?} in the config"),
            ModeError::LinkDisabled(name) => write!(f, "link {name} is disabled in the config"),
        }
    }
}

impl std::error::Error for ModeError {}

#[derive(Copy, Clone, Debug)]
struct InFlight {
    seq: u16,
    sent: Instant,
}

/// One probe target of a link.
#[derive(Clone, Debug)]
pub struct Target {
    address: IpAddr,
    window: Window,
    in_flight: Option<InFlight>,
    last_reply: Option<Instant>,
    /// Answered within `dead_after`: takes part in the link's consensus.
    reachable: bool,
    telemetry: Option<Telemetry>,
}

impl Target {
    fn new(address: IpAddr, window: usize) -> Target {
        Target {
            address,
            window: Window::new(window),
            in_flight: None,
            last_reply: None,
            reachable: false,
            telemetry: None,
        }
    }

    pub fn address(&self) -> IpAddr {
        self.address
    }

    pub fn telemetry(&self) -> Option<Telemetry> {
        self.telemetry
    }

    pub fn last_reply(&self) -> Option<Instant> {
        self.last_reply
    }

    pub fn reachable(&self) -> bool {
        self.reachable
    }

    fn refresh(&mut self, now: Instant, dead_after: Micros) {
        self.telemetry = self.window.telemetry();
        self.reachable = self.last_reply.is_some_and(|at| now.since(at) < dead_after);
    }

    fn forget(&mut self) {
        self.window.clear();
        self.in_flight = None;
        self.last_reply = None;
        self.reachable = false;
        self.telemetry = None;
    }
}

/// One link with its runtime state.
#[derive(Clone, Debug)]
pub struct Link {
    config: LinkConfig,
    bias: Score,
    interval: Micros,
    timeout: Micros,
    dead_after: Micros,
    state: StateCell,
    next_round: Instant,
    /// Next target to probe in the current round; `targets.len()` once the round is sent.
    cursor: usize,
    targets: Vec<Target>,
    telemetry: Option<Telemetry>,
    raw_score: Option<Score>,
    score: Option<Score>,
    scored_at: Instant,
    /// Since when this link has scored better than the current one by the hysteresis margin.
    better_since: Option<Instant>,
}

impl Link {
    fn new(config: &LinkConfig, window: usize, now: Instant) -> Link {
        let state = if config.enabled { LinkState::Pending } else { LinkState::Disabled };
        Link {
            config: config.clone(),
            bias: Score::from_points(config.bias),
            interval: config.interval_ms * 1000,
            timeout: config.timeout_ms * 1000,
            dead_after: config.dead_after_ms * 1000,
            state: StateCell::new(state, now),
            next_round: now,
            cursor: config.targets.len(),
            targets: config.targets.iter().map(|a| Target::new(*a, window)).collect(),
            telemetry: None,
            raw_score: None,
            score: None,
            scored_at: now,
            better_since: None,
        }
    }

    pub fn name(&self) -> LinkName {
        self.config.name
    }

    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    pub fn state(&self) -> LinkState {
        self.state.get()
    }

    /// When the link entered its state.
    pub fn state_since(&self) -> Instant {
        self.state.since()
    }

    pub fn telemetry(&self) -> Option<Telemetry> {
        self.telemetry
    }

    pub fn raw_score(&self) -> Option<Score> {
        self.raw_score
    }

    /// The smoothed score, the one decisions use; `None` unless the link is up.
    pub fn score(&self) -> Option<Score> {
        if self.is_up() { self.score } else { None }
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The newest reply from any target.
    pub fn last_reply(&self) -> Option<Instant> {
        self.targets.iter().filter_map(|t| t.last_reply).max()
    }

    fn probing(&self) -> bool {
        self.state.get().probed()
    }

    fn is_up(&self) -> bool {
        self.state.get() == LinkState::Up
    }

    fn is_pending(&self) -> bool {
        self.state.get() == LinkState::Pending
    }
}

/// The global settings in the engine's units.
#[derive(Copy, Clone, Debug)]
struct Settings {
    smoothing: Micros,
    hysteresis: Score,
    switch_hold: Micros,
    failback_hold: Micros,
    loss_divisor: u64,
    window: usize,
    forced_link_dies: ForcedLinkDies,
}

impl Settings {
    /// How long `to` must stay better than `current` before the route moves: a return to a link
    /// listed earlier (a failback) waits for the longer failback hold.
    fn hold(&self, to: LinkIndex, current: LinkIndex) -> Micros {
        if to < current { self.switch_hold.max(self.failback_hold) } else { self.switch_hold }
    }

    fn of(config: &Config) -> Settings {
        Settings {
            smoothing: config.smoothing_ms * 1000,
            hysteresis: Score::from_points(config.hysteresis as i64),
            switch_hold: config.switch_hold_ms * 1000,
            failback_hold: config.failback_hold_ms * 1000,
            loss_divisor: config.loss_divisor,
            window: config.window as usize,
            forced_link_dies: config.forced_link_dies,
        }
    }
}

/// The decision core. See the module documentation for the rules.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    links: Vec<Link>,
    current: Option<LinkIndex>,
    mode: Mode,
    /// Set while every link is dead and that has been noted, so it is noted once.
    all_dead_noted: bool,
    next_seq: u16,
    /// Where the next probe search starts, so no link is starved by an earlier one.
    probe_cursor: usize,
    history: VecDeque<Decision>,
    /// Decisions not yet taken by [`Engine::poll_decision`]; room for a burst is reserved at
    /// start, so queueing never allocates.
    decisions: VecDeque<Decision>,
}

impl Engine {
    /// A fresh engine at `now`; every enabled link starts pending and is probed at once.
    pub fn new(config: &Config, now: Instant) -> Engine {
        let settings = Settings::of(config);
        Engine {
            links: config.links.iter().map(|l| Link::new(l, settings.window, now)).collect(),
            settings,
            current: None,
            mode: Mode::Auto,
            all_dead_noted: false,
            next_seq: 0,
            probe_cursor: 0,
            history: VecDeque::with_capacity(HISTORY_LEN),
            decisions: VecDeque::with_capacity(QUEUE_LEN),
        }
    }

    pub fn links(&self) -> &[Link] {
        &self.links
    }

    pub fn link_index(&self, name: &str) -> Option<LinkIndex> {
        self.links.iter().position(|l| l.config.name.as_str() == name)
    }

    /// The link the default route is on, once one has been chosen.
    pub fn current(&self) -> Option<&Link> {
        self.current.map(|i| &self.links[i])
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Recent decisions, oldest first.
    pub fn history(&self) -> impl DoubleEndedIterator<Item = &Decision> {
        self.history.iter()
    }

    /// The next decision the inputs so far have made, oldest first; call until `None` after every
    /// input. One input may make several (a reload, a link event while forced).
    pub fn poll_decision(&mut self) -> Option<Decision> {
        self.decisions.pop_front()
    }

    /// The next probe due at `now`, if any; call until `None`. The probe counts as in flight.
    pub fn poll_probe(&mut self, now: Instant) -> Option<Probe> {
        let count = self.links.len();
        for step in 0..count {
            let index = (self.probe_cursor + step) % count;
            let link = &mut self.links[index];
            if !link.probing() {
                continue;
            }
            if link.cursor >= link.targets.len() {
                if link.next_round > now {
                    continue;
                }
                link.cursor = 0;
                let next = link.next_round.after(link.interval);
                // A caller that fell behind resumes the rhythm instead of sending a burst.
                link.next_round = if next > now { next } else { now.after(link.interval) };
            }
            let target_index = link.cursor;
            link.cursor += 1;
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            self.probe_cursor = if link.cursor >= link.targets.len() { index + 1 } else { index };
            let target = &mut link.targets[target_index];
            if target.in_flight.is_some() {
                // Only when the caller skipped the timeout: one probe per target in flight.
                target.window.push_lost();
            }
            target.in_flight = Some(InFlight { seq, sent: now });
            return Some(Probe { link: index, target: target_index, seq, address: target.address });
        }
        None
    }

    /// A reply to probe `seq` arrived at `now`. Replies that match no probe in flight (foreign,
    /// duplicated, or later than the timeout) change nothing.
    pub fn on_reply(&mut self, now: Instant, link: LinkIndex, target: usize, seq: u16) {
        let Some(timeout) = self.links.get(link).map(|l| l.timeout) else { return };
        let Some(target_state) = self.links[link].targets.get_mut(target) else { return };
        let Some(in_flight) = target_state.in_flight.filter(|f| f.seq == seq) else { return };
        target_state.in_flight = None;
        let rtt = now.since(in_flight.sent);
        if rtt >= timeout {
            // The same boundary as `tick`, so the order of the two never matters.
            target_state.window.push_lost();
        } else {
            target_state.window.push_reply(rtt);
            target_state.last_reply = Some(now);
        }
        self.refresh_target(now, link, target);
        self.evaluate(now);
    }

    /// The probe could not be sent (no route, device gone): it is lost now.
    pub fn on_send_failed(&mut self, now: Instant, probe: &Probe) {
        let target = self.links.get_mut(probe.link).and_then(|l| l.targets.get_mut(probe.target));
        let Some(target) = target else { return };
        if target.in_flight.is_some_and(|f| f.seq == probe.seq) {
            target.in_flight = None;
            target.window.push_lost();
            self.refresh_target(now, probe.link, probe.target);
        }
        self.evaluate(now);
    }

    /// Carrier, device or address news for a link.
    pub fn on_link_event(&mut self, now: Instant, link: LinkIndex, event: LinkEvent) {
        let Some(state) = self.links.get_mut(link) else { return };
        if !state.config.enabled {
            return;
        }
        match event {
            LinkEvent::Down => {
                for target in &mut state.targets {
                    target.forget();
                }
                state.cursor = state.targets.len();
                state.telemetry = None;
                state.raw_score = None;
                state.score = None;
                state.better_since = None;
                state.state.enter(LinkState::Dead(DeadCause::LinkDown), now);
            }
            LinkEvent::Up => {
                if state.probing() {
                    return;
                }
                state.next_round = now;
                state.state.enter(LinkState::Pending, now);
            }
        }
        self.evaluate(now);
    }

    /// Lets time pass: lost probes, silent targets and expired holds take effect.
    pub fn tick(&mut self, now: Instant) {
        for link in 0..self.links.len() {
            for target in 0..self.links[link].targets.len() {
                let timeout = self.links[link].timeout;
                let dead_after = self.links[link].dead_after;
                let t = &mut self.links[link].targets[target];
                let mut changed = false;
                if t.in_flight.is_some_and(|f| now.since(f.sent) >= timeout) {
                    t.in_flight = None;
                    t.window.push_lost();
                    changed = true;
                }
                if t.reachable && t.last_reply.is_none_or(|at| now.since(at) >= dead_after) {
                    changed = true;
                }
                if changed {
                    self.refresh_target(now, link, target);
                }
            }
            self.refresh_liveness(now, link);
        }
        self.evaluate(now);
    }

    /// When the engine next needs [`Engine::tick`] or [`Engine::poll_probe`], if nothing else
    /// happens first.
    pub fn next_deadline(&self) -> Instant {
        let s = &self.settings;
        let mut next = Instant::NEVER;
        let current_score = self.current.and_then(|c| self.links[c].score());
        for (index, link) in self.links.iter().enumerate() {
            if !link.probing() {
                continue;
            }
            next = next.min(if link.cursor < link.targets.len() {
                Instant::ZERO
            } else {
                link.next_round
            });
            for target in &link.targets {
                if let Some(f) = target.in_flight {
                    next = next.min(f.sent.after(link.timeout));
                }
                if let (true, Some(at)) = (target.reachable, target.last_reply) {
                    next = next.min(at.after(link.dead_after));
                }
            }
            if link.is_pending() {
                next = next.min(link.state.since().after(link.dead_after));
            }
            if let (Some(since), Some(current)) = (link.better_since, self.current) {
                if current_score.is_some() {
                    next = next.min(since.after(s.hold(index, current)));
                }
            }
        }
        next
    }

    /// The operator's choice. Forcing an unknown or disabled link is refused and changes nothing.
    pub fn set_mode(&mut self, now: Instant, mode: Mode) -> Result<(), ModeError> {
        if let Mode::Forced(name) = mode {
            let index = self
                .link_index(name.as_str())
                .ok_or_else(|| ModeError::UnknownLink(name.to_string()))?;
            if !self.links[index].config.enabled {
                return Err(ModeError::LinkDisabled(name));
            }
        }
        self.mode = mode;
        for link in &mut self.links {
            link.better_since = None;
        }
        self.evaluate(now);
        Ok(())
    }

    /// Takes a new config. Links that keep their name and device keep their state, telemetry and
    /// scores; targets that stay keep their windows. The route stays on its link if that link is
    /// still enabled.
    pub fn reload(&mut self, config: &Config, now: Instant) {
        let settings = Settings::of(config);
        let mut old_links = std::mem::take(&mut self.links);
        let current_name = self.current.map(|c| old_links[c].config.name);
        self.links = config
            .links
            .iter()
            .map(|link_config| {
                let old = old_links
                    .iter()
                    .position(|o| {
                        o.config.name == link_config.name && o.config.device == link_config.device
                    })
                    .map(|i| old_links.swap_remove(i));
                match old {
                    Some(old) if link_config.enabled && old.config.enabled => {
                        carry_over(old, link_config, settings.window, now)
                    }
                    _ => Link::new(link_config, settings.window, now),
                }
            })
            .collect();
        self.settings = settings;
        self.probe_cursor = 0;
        for index in 0..self.links.len() {
            // Bias, window or targets may have changed: the figures follow at once.
            self.recompute_link(now, index);
        }
        if let Mode::Forced(name) = self.mode {
            if !self.links.iter().any(|l| l.config.name == name && l.config.enabled) {
                self.mode = Mode::Auto;
            }
        }
        self.current = current_name.and_then(|name| self.link_index(name.as_str()));
        if let Some(index) = self.current {
            if !self.links[index].config.enabled {
                self.current = None;
            }
        }
        if let (Some(from), None) = (current_name, self.current) {
            // The route's link is gone: move at once to the best live link, if there is one.
            if let Some(best) = self.best_live(None) {
                let score = self.links[best].score.unwrap_or_default();
                self.switch(now, Some(from), best, Reason::LinkRemoved { score });
            }
        }
        for (index, link) in self.links.iter_mut().enumerate() {
            if Some(index) != self.current {
                link.better_since = None;
            }
        }
        self.evaluate(now);
    }

    /// Recomputes one target's telemetry and reachability, then its link's telemetry and score.
    fn refresh_target(&mut self, now: Instant, link: LinkIndex, target: usize) {
        let dead_after = self.links[link].dead_after;
        self.links[link].targets[target].refresh(now, dead_after);
        self.refresh_link(now, link);
    }

    fn recompute_link(&mut self, now: Instant, link: LinkIndex) {
        let dead_after = self.links[link].dead_after;
        for target in &mut self.links[link].targets {
            target.refresh(now, dead_after);
        }
        self.refresh_link(now, link);
    }

    fn refresh_link(&mut self, now: Instant, index: LinkIndex) {
        let settings = self.settings;
        let link = &mut self.links[index];
        if matches!(link.state.get(), LinkState::Dead(DeadCause::NoReply { .. }))
            && link.targets.iter().any(|t| t.reachable)
        {
            // Back from the dead: the outage's lost probes describe a path that is gone. The link
            // is measured afresh, and the holds make it prove itself before it gets the route.
            for target in &mut link.targets {
                target.window.restart();
                target.telemetry = target.window.telemetry();
            }
        }
        link.telemetry =
            consensus(link.targets.iter().filter(|t| t.reachable).filter_map(|t| t.telemetry));
        let raw = link.telemetry.map(|t| raw_score(&t, link.bias, settings.loss_divisor));
        link.raw_score = raw;
        match (raw, link.score) {
            (Some(raw), Some(previous)) if link.is_up() => {
                link.score =
                    Some(smooth(previous, raw, now.since(link.scored_at), settings.smoothing));
            }
            (raw, _) => link.score = raw,
        }
        link.scored_at = now;
        self.refresh_liveness(now, index);
    }

    /// Up while a target answers within `dead_after`; dead when none does (or none ever did).
    fn refresh_liveness(&mut self, now: Instant, index: LinkIndex) {
        let link = &mut self.links[index];
        let dead_after = link.dead_after;
        if !link.probing() {
            return;
        }
        let alive = link.telemetry.is_some();
        let since = link.state.since();
        match link.state.get() {
            LinkState::Pending | LinkState::Dead(_) if alive => {
                link.state.enter(LinkState::Up, now);
                link.score = link.raw_score;
                link.better_since = None;
            }
            LinkState::Up if !alive => {
                let last = link.last_reply().unwrap_or(since);
                link.state.enter(
                    LinkState::Dead(DeadCause::NoReply { silent_for: now.since(last) }),
                    now,
                );
                link.better_since = None;
            }
            LinkState::Pending if now.since(since) >= dead_after => {
                let silent_for = now.since(since);
                link.state.enter(LinkState::Dead(DeadCause::NoReply { silent_for }), now);
            }
            _ => {}
        }
    }

    /// The live link with the lowest score, earlier in the config on a tie.
    fn best_live(&self, except: Option<LinkIndex>) -> Option<LinkIndex> {
        self.links
            .iter()
            .enumerate()
            .filter(|(i, l)| Some(*i) != except && l.is_up())
            .filter_map(|(i, l)| l.score.map(|s| (s, i)))
            .min()
            .map(|(_, i)| i)
    }

    fn switch(
        &mut self,
        now: Instant,
        from: Option<LinkName>,
        to: LinkIndex,
        reason: Reason,
    ) -> Decision {
        let decision = Decision { at: now, from, to: self.links[to].config.name, reason };
        if decision.changes_route() {
            self.current = Some(to);
            self.all_dead_noted = false;
            for link in &mut self.links {
                link.better_since = None;
            }
        }
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(decision);
        if self.decisions.len() == QUEUE_LEN {
            // Nobody polls: the oldest is in the history still; never grow on the hot path.
            self.decisions.pop_front();
        }
        self.decisions.push_back(decision);
        decision
    }

    fn evaluate(&mut self, now: Instant) -> Option<Decision> {
        let from = self.current.map(|c| self.links[c].config.name);
        if let Mode::Forced(name) = self.mode {
            if let Some(forced) = self.link_index(name.as_str()) {
                let usable = self.links[forced].is_up()
                    || self.settings.forced_link_dies == ForcedLinkDies::Stay;
                if usable {
                    return (self.current != Some(forced))
                        .then(|| self.switch(now, from, forced, Reason::Forced));
                }
                if self.current != Some(forced) || !self.links.iter().any(Link::is_up) {
                    return self.evaluate_auto(now, from);
                }
                // Fallback: the forced link carries the route and died.
                let best = self.best_live(Some(forced))?;
                let score = self.links[best].score.unwrap_or_default();
                return Some(self.switch(
                    now,
                    from,
                    best,
                    Reason::ForcedLinkDead { forced: name, score },
                ));
            }
        }
        self.evaluate_auto(now, from)
    }

    fn evaluate_auto(&mut self, now: Instant, from: Option<LinkName>) -> Option<Decision> {
        let Some(current) = self.current else {
            // First choice: wait until every probed link has a verdict, so the first reply to
            // arrive does not win by speed alone.
            if self.links.iter().any(Link::is_pending) {
                return None;
            }
            let best = self.best_live(None)?;
            let score = self.links[best].score.unwrap_or_default();
            return Some(self.switch(now, None, best, Reason::Initial { score }));
        };
        let Some(current_score) = self.links[current].score() else {
            if let Some(best) = self.best_live(Some(current)) {
                let cause = match self.links[current].state.get() {
                    LinkState::Dead(cause) => cause,
                    _ => DeadCause::LinkDown,
                };
                let score = self.links[best].score.unwrap_or_default();
                return Some(self.switch(now, from, best, Reason::CurrentDead { cause, score }));
            }
            if self.all_dead_noted || self.links.iter().any(Link::is_pending) {
                return None;
            }
            self.all_dead_noted = true;
            return Some(self.switch(now, from, current, Reason::AllDead));
        };
        let s = self.settings;
        let mut chosen: Option<(Score, LinkIndex)> = None;
        for (index, link) in self.links.iter_mut().enumerate() {
            let score = match link.score() {
                Some(score) if index != current => score,
                _ => {
                    link.better_since = None;
                    continue;
                }
            };
            let better = score < current_score && current_score.0 - score.0 >= s.hysteresis.0;
            if !better {
                link.better_since = None;
                continue;
            }
            let since = *link.better_since.get_or_insert(now);
            let held_long_enough = now.since(since) >= s.hold(index, current);
            if held_long_enough && chosen.is_none_or(|(best, _)| score < best) {
                chosen = Some((score, index));
            }
        }
        let (to_score, to) = chosen?;
        let held = now.since(self.links[to].better_since.unwrap_or(now));
        let margin = s.hysteresis;
        let reason = if to < current {
            Reason::Failback { from_score: current_score, to_score, margin, held }
        } else {
            Reason::Better { from_score: current_score, to_score, margin, held }
        };
        Some(self.switch(now, from, to, reason))
    }
}

/// A link's runtime state moved into its new config.
fn carry_over(mut old: Link, config: &LinkConfig, window: usize, now: Instant) -> Link {
    let mut link = Link::new(config, window, now);
    link.targets = config
        .targets
        .iter()
        .map(|address| match old.targets.iter().position(|t| t.address == *address) {
            Some(i) => {
                let mut target = old.targets.swap_remove(i);
                if target.window.capacity() != window {
                    target.window = target.window.resized(window);
                }
                target
            }
            None => Target::new(*address, window),
        })
        .collect();
    link.state = old.state;
    link.next_round = old.next_round.min(now.after(link.interval));
    link.score = old.score;
    link.scored_at = old.scored_at;
    link.better_since = old.better_since;
    link
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
