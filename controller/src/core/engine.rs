//! The decision engine: schedules probes, takes their outcomes and link events, keeps each link's
//! figures, and decides which link carries the default route. Sans-IO: the caller hands in the
//! time and every event, sends the probes it is asked to send, and takes the decisions it gets
//! back from [`Engine::poll_decision`].
//!
//! The rules, in the order they are tried (the first choice, once every link has a verdict,
//! is the first live link in the config unless another is better by the hysteresis and the
//! doubt, as (b) asks):
//! - (e) an operator's forced link wins, while it lives or when `forced_link_dies` is `stay`;
//! - (a) the current link is dead: switch at once to the best live link;
//! - (d) every link is dead: keep the current route, the router is never left without one;
//! - (b) another link is better by more than the hysteresis, and by more than the *doubt* of
//!   the difference (both links' errors at their bounds, in quadrature, at a one-sided 98.2 %),
//!   without a break for the whole switch hold: switch. Noise cannot do that; a real difference
//!   does it fast. While a loss of the current link that began on its newest outcomes' word
//!   alone is not yet borne out by the outcomes after them, this waits (a run of bad luck is
//!   taken back; a dead link is still left at once);
//! - (c) if that link comes earlier in the config (a failback), it must have been better by more
//!   than the doubt for the failback hold instead (when that is longer), with no hysteresis: a
//!   link the route left proves itself first, and the hold is what keeps the route from flapping.
//!   A link left again within `DAMPING_WINDOW` of the route's return waits twice as long for its
//!   next failback, each time (flap damping).
//!
//! When the evidence is not there yet but the scores point to a switch, or come within a
//! hysteresis of it (or a probe of the current link is late), the links concerned are probed in a
//! burst: doubt is settled in a second, not by waiting. A link event (carrier lost, device gone)
//! makes a link dead at once (f).

use super::config::{Config, ForcedLinkDies};
pub use super::decision::{
    Decision, Evidence, LinkEvent, LinkIndex, Mode, ModeError, Probe, Reason,
};
use super::link::{BURST_PROBES, Figures, Pace};
pub use super::link::{Link, Target};
pub use super::link_state::{DeadCause, LinkState};
use super::score::{Score, doubt, doubt_is_mostly_the_other};
use super::time::{Instant, Micros};

/// How many decisions the engine remembers for the status page.
pub const HISTORY_LEN: usize = 32;

/// Decisions one input can make: a reload can remove the route's link and let another rule act.
const QUEUE_LEN: usize = 8;

/// Flap damping: a link the route leaves within this long of coming back to it waits twice as
/// long for its next failback (at most `MAX_FAILBACK_PENALTY` doublings); carrying the route
/// this long without being left forgets that.
const DAMPING_WINDOW: Micros = 3_600_000_000;
const MAX_FAILBACK_PENALTY: u32 = 4;

/// Where the route can go when its link dies.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Successor {
    Link(LinkIndex),
    /// Only links with a probe unanswered are left: their bursts tell in a moment.
    Wait,
    None,
}

/// The global settings in the engine's units.
#[derive(Copy, Clone, Debug)]
struct Settings {
    hysteresis: Score,
    switch_hold: Micros,
    failback_hold: Micros,
    forced_link_dies: ForcedLinkDies,
    figures: Figures,
}

impl Settings {
    /// How long `to` must stay better than `current` before the route moves: a return to a link
    /// listed earlier (a failback) waits for the longer failback hold, doubled `penalty` times.
    fn hold(&self, to: LinkIndex, current: LinkIndex, penalty: u32) -> Micros {
        let failback_hold = self.failback_hold.saturating_mul(1 << penalty);
        if to < current { self.switch_hold.max(failback_hold) } else { self.switch_hold }
    }

    fn of(config: &Config) -> Settings {
        Settings {
            hysteresis: Score::from_points(config.hysteresis as i64),
            switch_hold: config.switch_hold_ms * 1000,
            failback_hold: config.failback_hold_ms * 1000,
            forced_link_dies: config.forced_link_dies,
            figures: Figures {
                window: config.window,
                loss_divisor_centi: config.loss_divisor_centi,
                smoothing: config.smoothing_ms * 1000,
            },
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
    history: Vec<Decision>,
    /// Decisions not yet taken by [`Engine::poll_decision`]; room for a burst is reserved at
    /// start, so queueing never allocates.
    decisions: Vec<Decision>,
}

impl Engine {
    /// A fresh engine at `now`; every enabled link starts pending and is probed at once.
    pub fn new(config: &Config, now: Instant) -> Engine {
        Engine {
            links: config.links.iter().map(|l| Link::new(l, now)).collect(),
            settings: Settings::of(config),
            current: None,
            mode: Mode::Auto,
            all_dead_noted: false,
            next_seq: 0,
            probe_cursor: 0,
            history: Vec::with_capacity(HISTORY_LEN),
            decisions: Vec::with_capacity(QUEUE_LEN),
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
        pop_front(&mut self.decisions)
    }

    /// How hard link `index` is probed when no burst is under way: rarely only when it is up and
    /// listed after the link carrying the route (a backup, maybe metered). The route's link,
    /// dead links and the links a failback would return to are probed at the active pace.
    fn pace(&self, index: LinkIndex) -> Pace {
        // While the route's link is dead every link may be its successor: all at the active pace.
        let settled = self.current.is_some_and(|c| c < index && self.links[c].is_up());
        let backup = settled && self.links[index].is_up();
        if backup { Pace::Standby } else { Pace::Active }
    }

    /// The next probe due at `now`, if any; call until `None`. The probe counts as in flight.
    pub fn poll_probe(&mut self, now: Instant) -> Option<Probe> {
        let count = self.links.len();
        for step in 0..count {
            // The cursor is at most `count`: one wrap at most, without a division per link.
            let index = self.probe_cursor + step;
            let index = if index >= count { index - count } else { index };
            if !self.links[index].probe_due(now) {
                continue;
            }
            let pace = self.pace(index);
            let seq = self.next_seq;
            if let Some((target, seq)) = self.links[index].poll_probe(now, pace, seq) {
                self.next_seq = self.next_seq.wrapping_add(1);
                self.probe_cursor = index + 1;
                let address = self.links[index].targets()[target].address();
                return Some(Probe { link: index, target, seq, address });
            }
        }
        None
    }

    /// A reply to probe `seq` arrived at `now`. Replies that match no probe in flight (foreign,
    /// duplicated, or later than the timeout) change nothing.
    pub fn on_reply(&mut self, now: Instant, link: LinkIndex, target: usize, seq: u16) {
        let Some(news) = self.links.get_mut(link).and_then(|l| l.on_reply(now, target, seq)) else {
            return;
        };
        if news.suspect {
            self.suspect(now, link);
        }
        self.refresh_link(now, link);
        self.evaluate(now);
    }

    /// The probe could not be sent (no route, device gone): it is lost now.
    pub fn on_send_failed(&mut self, now: Instant, probe: &Probe) {
        if self.links.get_mut(probe.link).is_some_and(|l| l.on_send_failed(probe)) {
            self.refresh_link(now, probe.link);
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
            LinkEvent::Down => state.device_down(now),
            LinkEvent::Up => {
                if !state.device_up(now) {
                    return;
                }
            }
        }
        self.evaluate(now);
    }

    /// Lets time pass: late and lost probes, silent links and expired holds take effect.
    pub fn tick(&mut self, now: Instant) {
        for index in 0..self.links.len() {
            let (changed, news) = self.links[index].tick(now);
            if news.suspect {
                self.suspect(now, index);
            }
            // Short-circuit: the liveness check only when nothing changed (a refresh does it).
            if changed || self.links[index].refresh_liveness(now) {
                self.refresh_link(now, index);
            }
        }
        self.evaluate(now);
    }

    /// When the engine next needs [`Engine::tick`] or [`Engine::poll_probe`], if nothing else
    /// happens first.
    pub fn next_deadline(&self) -> Instant {
        let mut next = self.links.iter().map(Link::next_deadline).min().unwrap_or(Instant::NEVER);
        // A hold that is over but waits for the current link's loss to be confirmed waits for
        // outcomes, which come with their own deadlines.
        let current = self.current.filter(|c| !self.links[*c].loss_unconfirmed());
        if let Some(current) = current {
            for (index, link) in self.links.iter().enumerate() {
                if let Some(since) = link.better_since {
                    let hold = self.settings.hold(index, current, link.failback_penalty);
                    next = next.min(since.after(hold));
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

    /// Takes a new config. Links that keep their name and device keep their state, figures and
    /// scores; targets that stay keep their windows. The route stays on its link if that link is
    /// still enabled.
    pub fn reload(&mut self, config: &Config, now: Instant) {
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
                        old.carried_into(link_config, now)
                    }
                    _ => Link::new(link_config, now),
                }
            })
            .collect();
        self.settings = Settings::of(config);
        self.probe_cursor = 0;
        for index in 0..self.links.len() {
            // Bias, window or targets may have changed: the figures follow at once.
            self.refresh_link(now, index);
        }
        if let Mode::Forced(name) = self.mode {
            if !self.links.iter().any(|l| l.config.name == name && l.config.enabled) {
                self.mode = Mode::Auto;
            }
        }
        self.current = current_name
            .and_then(|name| self.link_index(name.as_str()))
            .filter(|i| self.links[*i].config.enabled);
        if let (Some(from), None) = (current_name, self.current) {
            // The route's link is gone: move at once to the best live link, if there is one.
            if let Some(best) = self.best_live() {
                let score = self.links[best].score().unwrap_or_default();
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

    /// Recomputes a link's figures and liveness; twice when it came back from the dead, as its
    /// windows then start afresh.
    fn refresh_link(&mut self, now: Instant, index: LinkIndex) {
        let figures = self.settings.figures;
        self.links[index].refresh(now, &figures);
        if self.links[index].refresh_liveness(now) {
            self.links[index].refresh(now, &figures);
        }
        // The route's link losing more of late than its window says: keep probing it hard
        // until the figures settle, one burst after another (within the token budget).
        let losing = self.links[index].stats().is_some_and(|s| s.recent_loss.value > s.loss.high);
        if losing && self.current == Some(index) {
            self.links[index].burst(now, BURST_PROBES);
        }
    }

    /// A probe of `index` went late or was lost: probe it harder; a standby only a little (it
    /// may be metered). The others are not probed for it: a delay spike looks like an outage
    /// for its first second, and the standby is checked when the route moves (see
    /// [`Engine::successor`]), not on every doubt.
    fn suspect(&mut self, now: Instant, index: LinkIndex) {
        let probes =
            if self.pace(index) == Pace::Standby { BURST_PROBES / 2 } else { BURST_PROBES };
        self.links[index].burst(now, probes);
    }

    /// The live link with the lowest score, earlier in the config on a tie.
    fn best_live(&self) -> Option<LinkIndex> {
        self.links
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.score().map(|s| (s, i)))
            .min()
            .map(|(_, i)| i)
    }

    /// The first choice: the first live link in the config's order, unless another is better by
    /// more than the hysteresis and the doubt, as rule (b) would leave it. A start decides on a
    /// handful of replies, and a link just set up may answer its first probes slowly (neighbour
    /// resolution, a busy boot: on an emulated CPU the wired link's first replies took 64 ms
    /// instead of 15), which the best score alone took for a worse link, sending the route to
    /// the backup until a failback hold had passed.
    fn first_choice(&self) -> Option<LinkIndex> {
        let best = self.best_live()?;
        let first = self.links.iter().position(Link::is_up).unwrap_or(best);
        let figures = |index: LinkIndex| self.links[index].raw_score_with_bounds();
        let (Some((from, (from_low, _))), Some((to, (_, to_high)))) =
            (figures(first), figures(best))
        else {
            return Some(best);
        };
        let gap = from.0 - to.0;
        let proven = gap > self.settings.hysteresis.0 && gap > doubt(from, from_low, to, to_high).0;
        Some(if proven { best } else { first })
    }

    fn switch(
        &mut self,
        now: Instant,
        from: Option<super::LinkName>,
        to: LinkIndex,
        reason: Reason,
    ) {
        let decision = Decision { at: now, from, to: self.links[to].config.name, reason };
        if decision.changes_route() {
            self.damp_flapping(now, to, reason);
            self.current = Some(to);
            self.all_dead_noted = false;
            for link in &mut self.links {
                link.better_since = None;
            }
            // It carries traffic now: probe it at the active pace from here on.
            let link = &mut self.links[to];
            let spacing = link.config.interval_ms * 1000 / link.targets().len().max(1) as u64;
            link.probe_by(now.after(spacing));
        }
        if self.history.len() == HISTORY_LEN {
            self.history.remove(0);
        }
        self.history.push(decision);
        if self.decisions.len() == QUEUE_LEN {
            // Nobody polls: the oldest is in the history still; never grow on the hot path.
            self.decisions.remove(0);
        }
        self.decisions.push(decision);
    }

    /// Before the route moves to `to`: a link left soon after the route came back to it
    /// flapped, and its next failback waits longer; a return is noted. The operator's moves and
    /// a removed link count for neither.
    fn damp_flapping(&mut self, now: Instant, to: LinkIndex, reason: Reason) {
        let operator = matches!(reason, Reason::Forced | Reason::LinkRemoved { .. });
        if let Some(left) = self.current.filter(|_| !operator).map(|c| &mut self.links[c]) {
            if left.returned_at.take().is_some_and(|at| now.since(at) < DAMPING_WINDOW) {
                left.failback_penalty = (left.failback_penalty + 1).min(MAX_FAILBACK_PENALTY);
            }
        }
        if matches!(reason, Reason::Failback { .. }) {
            self.links[to].returned_at = Some(now);
        }
    }

    /// The route's link has carried it for the damping window since it came back: it is
    /// stable again, and its failbacks wait the configured hold.
    fn forget_flapping(&mut self, now: Instant, current: LinkIndex) {
        let link = &mut self.links[current];
        if link.returned_at.is_some_and(|at| now.since(at) >= DAMPING_WINDOW) {
            link.returned_at = None;
            link.failback_penalty = 0;
        }
    }

    fn evaluate(&mut self, now: Instant) {
        let from = self.current.map(|c| self.links[c].config.name);
        if let Mode::Forced(name) = self.mode {
            if let Some(forced) = self.link_index(name.as_str()) {
                let usable = self.links[forced].is_up()
                    || self.settings.forced_link_dies == ForcedLinkDies::Stay;
                if usable {
                    if self.current != Some(forced) {
                        self.switch(now, from, forced, Reason::Forced);
                    }
                    return;
                }
                if self.current == Some(forced) && self.links.iter().any(Link::is_up) {
                    // Fallback: the forced link carries the route and died.
                    if let Successor::Link(best) = self.successor(forced) {
                        let score = self.links[best].score().unwrap_or_default();
                        let reason = Reason::ForcedLinkDead { forced: name, score };
                        self.switch(now, from, best, reason);
                    }
                    return;
                }
            }
        }
        self.evaluate_auto(now, from);
    }

    fn evaluate_auto(&mut self, now: Instant, from: Option<super::LinkName>) {
        let Some(current) = self.current else {
            // First choice: wait until every probed link has a verdict, so the first reply to
            // arrive does not win by speed alone.
            if self.links.iter().any(Link::is_pending) {
                return;
            }
            if let Some(first) = self.first_choice() {
                let score = self.links[first].score().unwrap_or_default();
                self.switch(now, None, first, Reason::Initial { score });
            }
            return;
        };
        if !self.links[current].is_up() {
            self.forget_advantages();
            self.current_not_up(now, from, current);
            return;
        }
        self.forget_flapping(now, current);
        self.better_link(now, from, current);
    }

    /// Where the route goes when `current` dies: the best live link among those whose every
    /// probe is answered. One with a probe unanswered may be dying too (a shared upstream, a
    /// phone that left): wait the moment its burst takes to tell.
    fn successor(&self, current: LinkIndex) -> Successor {
        let mut waiting = false;
        let mut best: Option<(Score, LinkIndex)> = None;
        for (index, link) in self.links.iter().enumerate() {
            if index == current || !link.is_up() {
                continue;
            }
            if link.in_doubt() {
                waiting = true;
            } else {
                // Up without figures (its targets' windows went quiet): alive, ranked last.
                let score = link.score().unwrap_or(Score(i64::MAX));
                best = Some(best.map_or((score, index), |b| b.min((score, index))));
            }
        }
        match (best, waiting) {
            (Some((_, index)), _) => Successor::Link(index),
            (None, true) => Successor::Wait,
            (None, false) => Successor::None,
        }
    }

    /// (a) and (d): the current link is dead (or just back and pending).
    fn current_not_up(&mut self, now: Instant, from: Option<super::LinkName>, current: LinkIndex) {
        let successor = self.successor(current);
        if successor == Successor::Wait {
            return;
        }
        if let Successor::Link(best) = successor {
            let cause = match self.links[current].state() {
                LinkState::Dead(cause) => cause,
                _ => DeadCause::LinkDown,
            };
            let score = self.links[best].score().unwrap_or_default();
            self.switch(now, from, best, Reason::CurrentDead { cause, score });
            return;
        }
        let dead = matches!(self.links[current].state(), LinkState::Dead(_));
        if self.all_dead_noted || !dead || self.links.iter().any(Link::is_pending) {
            return;
        }
        self.all_dead_noted = true;
        let device_down = self.links[current].state() == LinkState::Dead(DeadCause::LinkDown);
        self.switch(now, from, current, Reason::AllDead { device_down });
    }

    fn forget_advantages(&mut self) {
        for link in &mut self.links {
            link.better_since = None;
        }
    }

    /// (b) and (c): another link better by more than the doubt, for its hold. Where the scores point
    /// to a switch the bounds do not yet prove, both links are probed harder.
    fn better_link(&mut self, now: Instant, from: Option<super::LinkName>, current: LinkIndex) {
        let s = self.settings;
        let Some((from_score, (from_low, _))) = self.links[current].raw_score_with_bounds() else {
            // Nothing to compare with (no reply in the window yet): no advantage can be held.
            self.forget_advantages();
            return;
        };
        let mut chosen: Option<(Score, LinkIndex, Evidence)> = None;
        // Links whose scores point to a switch their bounds do not prove yet, then those within a
        // hysteresis of it (fixed arrays: nothing is allocated per probe).
        let mut doubtful = [None::<LinkIndex>; 2];
        let mut near = [None::<LinkIndex>; 2];
        for index in 0..self.links.len() {
            let link = &mut self.links[index];
            let Some((to_score, (to_low, to_high))) = link.raw_score_with_bounds() else {
                link.better_since = None;
                continue;
            };
            if index == current {
                continue;
            }
            // A failback needs no hysteresis: its hold guards against flapping, and leaving the
            // earlier link took the hysteresis already. A backup whose bias equals the
            // hysteresis would otherwise keep the route for ever after a healthy primary's outage.
            let margin = if index < current { Score(0) } else { s.hysteresis };
            let by_hysteresis = from_score.0 - to_score.0 > margin.0;
            // A square root per link and wakeup: only where the hysteresis is passed.
            let doubt = if by_hysteresis {
                doubt(from_score, from_low, to_score, to_high)
            } else {
                Score(0)
            };
            if !by_hysteresis || from_score.0 - to_score.0 <= doubt.0 {
                link.better_since = None;
                // Near is doubt enough: a standby probed rarely knows its figures only roughly,
                // and only its burst narrows its bounds.
                let list = if by_hysteresis {
                    &mut doubtful
                } else if from_score.0 > to_score.0 - margin.0
                    || (index < current && to_low < from_score)
                {
                    // A link the route left may be better already at its best (its window,
                    // cut when its loss ended, holds few outcomes): its failback hold waits
                    // for the evidence its burst brings.
                    &mut near
                } else {
                    continue;
                };
                if let Some(slot) = list.iter_mut().find(|d| d.is_none()) {
                    *slot = Some(index);
                }
                continue;
            }
            let since = *link.better_since.get_or_insert(now);
            let evidence = Evidence { from_score, from_low, to_score, to_high, margin, doubt };
            if now.since(since) >= s.hold(index, current, link.failback_penalty)
                && chosen.is_none_or(|(best, _, _)| to_score < best)
            {
                chosen = Some((to_score, index, evidence));
            }
        }
        let doubted = first_two(doubtful, near);
        self.probe_where_the_doubt_is(now, current, (from_score, from_low), doubted);
        let Some((_, to, evidence)) = chosen else { return };
        if self.links[current].loss_unconfirmed() {
            // Its hold may be over; the next outcomes confirm the loss or take it back.
            return;
        }
        let held = now.since(self.links[to].better_since.unwrap_or(now));
        let reason = if to < current {
            Reason::Failback { evidence, held }
        } else {
            Reason::Better { evidence, held }
        };
        self.switch(now, from, to, reason);
    }

    /// Probes harder where the doubt is: the current link always (it carries the traffic), each
    /// doubted other only while its side of the doubt is the larger, and a backup standby only a
    /// little (it may be metered: with bursts of ten, the route link's delay spikes in
    /// `noisy-day` made a healthy backup send 12.9 B/s at 8.3 ms, against 11.3 at 16.7; 11.9
    /// with three). A link listed before the route's gets full bursts: with three, the library's
    /// `recovery-failback` came back 5.7 s later (the evidence that the primary recovered is
    /// what its failback hold waits for), and 2.6 s after its goal on namespaces.
    fn probe_where_the_doubt_is(
        &mut self,
        now: Instant,
        current: LinkIndex,
        (from_score, from_low): (Score, Score),
        doubted: [Option<LinkIndex>; 2],
    ) {
        if doubted[0].is_some() {
            self.links[current].burst(now, BURST_PROBES);
        }
        for index in doubted.into_iter().flatten() {
            let other_side = self.links[index].raw_score_with_bounds();
            if other_side.is_some_and(|(to_score, (_, to_high))| {
                doubt_is_mostly_the_other(from_score, from_low, to_score, to_high)
            }) {
                // A backup (listed after the route's link) a little; the link the route left
                // in full, as its failback waits for this evidence.
                let backup = index > current && self.pace(index) == Pace::Standby;
                let probes = if backup { BURST_PROBES / 3 } else { BURST_PROBES };
                self.links[index].burst(now, probes);
            }
        }
    }
}

/// The oldest entry of a short queue. A `Vec` rather than a `VecDeque`: its few entries move
/// down in one copy, and the router's flash is spared the ring buffer's code.
pub(super) fn pop_front<T>(queue: &mut Vec<T>) -> Option<T> {
    (!queue.is_empty()).then(|| queue.remove(0))
}

/// The first two links of either list, the doubtful first (each list fills from its start).
fn first_two(
    doubtful: [Option<LinkIndex>; 2],
    near: [Option<LinkIndex>; 2],
) -> [Option<LinkIndex>; 2] {
    match doubtful {
        [None, _] => near,
        [Some(first), None] => [Some(first), near[0]],
        both => both,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
