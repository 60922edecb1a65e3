//! What the engine hands out and takes in: probes to send, link events, the operator's mode, and
//! decisions with the reason and numbers behind each (its `Display` is the log line).

use super::link_state::DeadCause;
use super::name::LinkName;
use super::score::Score;
use super::time::{Instant, Micros, ShowDuration};
use crate::text::Show;
use std::net::IpAddr;

/// Index of a link in the engine's current config.
pub type LinkIndex = usize;

/// A probe the caller must send now: an ICMP echo to `address` through link `link`, identified by
/// `seq`. Report its reply or a failure to send; if neither comes, the engine counts it lost after
/// the link's timeout.
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
    /// (b) Better by more than `margin` and than the doubt of the difference (from what both
    /// links' samples allow: the current link at its best, `from_low`; the new one at its worst,
    /// `to_high`) for `held`.
    Better { evidence: Evidence, held: Micros },
    /// (c) The same for a return to a link earlier in the config, held for at least the failback
    /// hold.
    Failback { evidence: Evidence, held: Micros },
    /// (d) Every link is dead: the route stays where it is. `from` and `to` are the same link.
    /// `device_down`: that link's device is down, so its route carries nothing (the kernel drops
    /// it when the device goes down or loses its address): nothing is "kept".
    AllDead { device_down: bool },
    /// (e) The operator forced the link.
    Forced,
    /// (e) The forced link is dead and `forced_link_dies` is `fallback`: the best live link instead.
    ForcedLinkDead { forced: LinkName, score: Score },
    /// The link the route was on was removed or disabled by a config reload.
    LinkRemoved { score: Score },
}

/// The numbers behind a switch to a better link: both scores, their bounds, and the doubt they
/// leave about the difference, which the difference exceeded: it is not noise.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub from_score: Score,
    /// The current link's score at its best, as far as its samples tell.
    pub from_low: Score,
    pub to_score: Score,
    /// The new link's score at its worst.
    pub to_high: Score,
    /// How much lower the new link's score had to be: the hysteresis, or 0 for a failback.
    pub margin: Score,
    /// How far the difference may be off, from both links' bounds (`score::doubt`).
    pub doubt: Score,
}

impl Show for Evidence {
    fn show(&self, out: &mut String) {
        put!(
            out,
            "scored ",
            self.to_score,
            " (at worst ",
            self.to_high,
            ") against ",
            self.from_score,
            " (at best ",
            self.from_low,
            "), "
        );
        let by = Score(self.from_score.0 - self.to_score.0);
        put!(out, "better by ", by, ", more than ");
        if self.margin != Score(0) {
            put!(out, "the hysteresis ", self.margin, " and ");
        }
        put!(out, "its doubt ", self.doubt);
    }
}

crate::display_by_show!(Evidence);

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

impl Show for Decision {
    /// One log line: `wan -> wwan: wan is dead (no reply for 3.0 s); wwan is the best live link (score 85.2)`.
    fn show(&self, out: &mut String) {
        let from = self.from.as_ref().map_or("none", LinkName::as_str);
        let to = self.to;
        put!(out, from, " -> ", to, ": ");
        match self.reason {
            Reason::Initial { score } => {
                put!(out, "first choice, ", to, " scores best (", score, ")")
            }
            Reason::CurrentDead { cause, score } => put!(
                out,
                from,
                " is dead (",
                cause,
                "); ",
                to,
                " is the best live link (score ",
                score,
                ")"
            ),
            Reason::Better { evidence, held } => {
                put!(out, to, " ", evidence, ", for ", ShowDuration(held));
            }
            Reason::Failback { evidence, held } => {
                put!(out, "failback: ", to, " ", evidence, ", for ", ShowDuration(held));
            }
            Reason::AllDead { device_down: false } => {
                put!(out, "every link is dead; keeping the default route on ", to);
            }
            Reason::AllDead { device_down: true } => put!(
                out,
                "every link is dead and ",
                to,
                "'s device is down: no route carries traffic until a link comes back"
            ),
            Reason::Forced => put!(out, "forced by the operator"),
            Reason::ForcedLinkDead { forced, score } => put!(
                out,
                "forced link ",
                forced,
                " is dead, falling back to the best live link ",
                to,
                " (score ",
                score,
                ")"
            ),
            Reason::LinkRemoved { score } => put!(
                out,
                from,
                " was removed or disabled by a config reload; ",
                to,
                " is the best live link (score ",
                score,
                ")"
            ),
        }
    }
}

crate::display_by_show!(Decision);

/// Why the operator's command was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModeError {
    UnknownLink(String),
    LinkDisabled(LinkName),
}

impl Show for ModeError {
    fn show(&self, out: &mut String) {
        match self {
            ModeError::UnknownLink(name) => {
                put!(out, "no link named ", crate::json::quoted(name), " in the config");
            }
            ModeError::LinkDisabled(name) => put!(out, "link ", name, " is disabled in the config"),
        }
    }
}

crate::display_by_show!(ModeError);

impl std::error::Error for ModeError {}
