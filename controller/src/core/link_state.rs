//! A link's state and every change of it, through one function that refuses the changes that
//! cannot happen (quinn-proto's `state.rs` pattern): a bug shows as a refused transition in the
//! tests, never as a link that is in two states at once.
//!
//! ```text
//!   Pending ──reply──> Up ──silence──> Dead(NoReply) ──reply──> Up
//!      │  └──silence──> Dead(NoReply)        │
//!      └──────────┬───────────┬──────────────┘
//!           device down (from Pending, Up or Dead(NoReply))
//!                 v
//!          Dead(LinkDown) ──device back──> Pending
//!   Disabled: set by the config only; no transition leads in or out.
//! ```

use super::time::{Instant, Micros, ShowDuration};
use crate::text::Show;

/// Why a link is dead.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DeadCause {
    /// No target answered for this long.
    NoReply { silent_for: Micros },
    /// The device lost carrier, its address, or disappeared: it is not probed until it is back.
    LinkDown,
}

impl Show for DeadCause {
    fn show(&self, out: &mut String) {
        match self {
            DeadCause::NoReply { silent_for } => {
                put!(out, "no reply for ", ShowDuration(*silent_for))
            }
            DeadCause::LinkDown => put!(out, "link down"),
        }
    }
}

crate::display_by_show!(DeadCause);

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Probing, no verdict yet (just started, joined, or its device came back).
    Pending,
    /// At least one target answers: the link has a score.
    Up,
    Dead(DeadCause),
    /// `enabled: false` in the config: never probed, never chosen.
    Disabled,
}

impl LinkState {
    /// One word for the status page and the CLI.
    pub fn word(&self) -> &'static str {
        match self {
            LinkState::Pending => "pending",
            LinkState::Up => "up",
            LinkState::Dead(_) => "dead",
            LinkState::Disabled => "disabled",
        }
    }

    /// Probed: enabled, and its device can carry traffic.
    pub fn probed(&self) -> bool {
        !matches!(self, LinkState::Dead(DeadCause::LinkDown) | LinkState::Disabled)
    }

    fn same_kind(&self, other: &LinkState) -> bool {
        match (self, other) {
            (LinkState::Dead(a), LinkState::Dead(b)) => {
                std::mem::discriminant(a) == std::mem::discriminant(b)
            }
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }

    /// Whether a link in this state can move to `next` (the diagram at the top of the file).
    /// Staying in the same kind of state is always allowed.
    pub fn can_become(&self, next: &LinkState) -> bool {
        use DeadCause::{LinkDown, NoReply};
        use LinkState::{Dead, Disabled, Pending, Up};
        if self.same_kind(next) {
            return !matches!(self, Disabled);
        }
        matches!(
            (self, next),
            (Pending, Up | Dead(_))
                | (Up, Dead(_))
                | (Dead(NoReply { .. }), Up | Dead(LinkDown))
                | (Dead(LinkDown), Pending)
        )
    }
}

/// A link's state with the moment it was entered.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StateCell {
    state: LinkState,
    since: Instant,
}

impl StateCell {
    pub fn new(state: LinkState, now: Instant) -> StateCell {
        StateCell { state, since: now }
    }

    pub fn get(&self) -> LinkState {
        self.state
    }

    /// When the link entered this kind of state.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Moves to `next` if the transition is legal and says whether it did. A move within the
    /// same kind of state (a dead link's cause told again) keeps `since`. An illegal transition
    /// changes nothing; it is a bug, and debug builds (every test) stop on it.
    pub fn enter(&mut self, next: LinkState, now: Instant) -> bool {
        if !self.state.can_become(&next) {
            debug_assert!(false, "illegal link transition {:?} -> {:?}", self.state, next);
            return false;
        }
        if !self.state.same_kind(&next) {
            self.since = now;
        }
        self.state = next;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SILENT: LinkState = LinkState::Dead(DeadCause::NoReply { silent_for: 3_000_000 });
    const DOWN: LinkState = LinkState::Dead(DeadCause::LinkDown);

    fn label(state: &LinkState) -> &'static str {
        if *state == DOWN { "down" } else { state.word() }
    }

    #[test]
    fn the_legal_transitions_are_those_of_the_diagram() {
        use LinkState::{Disabled, Pending, Up};
        let all = [Pending, Up, SILENT, DOWN, Disabled];
        let legal: Vec<(&str, &str)> = all
            .iter()
            .flat_map(|from| all.iter().map(move |to| (from, to)))
            .filter(|(from, to)| !from.same_kind(to) && from.can_become(to))
            .map(|(from, to)| (label(from), label(to)))
            .collect();
        assert_eq!(
            legal,
            [
                ("pending", "up"),
                ("pending", "dead"),
                ("pending", "down"),
                ("up", "dead"),
                ("up", "down"),
                ("dead", "up"),
                ("dead", "down"),
                ("down", "pending"),
            ]
        );
        assert!(!Disabled.can_become(&Disabled), "a disabled link has no transitions at all");
        assert!(!DOWN.can_become(&Up), "a link whose device is back is measured afresh first");
    }

    #[test]
    fn entering_keeps_the_moment_within_a_kind_and_resets_it_across() {
        let mut cell = StateCell::new(LinkState::Pending, Instant::from_millis(1));
        assert!(cell.enter(LinkState::Up, Instant::from_millis(5)));
        assert_eq!(cell.since(), Instant::from_millis(5));
        assert!(cell.enter(SILENT, Instant::from_millis(9)));
        let longer = LinkState::Dead(DeadCause::NoReply { silent_for: 4_000_000 });
        assert!(cell.enter(longer, Instant::from_millis(10)));
        assert_eq!((cell.get(), cell.since()), (longer, Instant::from_millis(9)));
    }

    #[test]
    #[should_panic(expected = "illegal link transition")]
    fn an_illegal_transition_stops_a_debug_build() {
        let mut cell = StateCell::new(DOWN, Instant::ZERO);
        cell.enter(LinkState::Up, Instant::from_millis(1));
    }

    #[test]
    fn probed_means_enabled_with_a_usable_device() {
        assert!(LinkState::Pending.probed() && LinkState::Up.probed() && SILENT.probed());
        assert!(!DOWN.probed() && !LinkState::Disabled.probed());
    }
}
