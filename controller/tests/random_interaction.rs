//! Random interaction with the controller (quinn-proto's `random_interaction.rs` idea): random
//! sequences of network conditions, device events, force/auto, reloads and time steps, driven
//! through the same virtual loop the replay uses. After every step:
//! - the route is never on a dead or disabled link while another link is up with every probe
//!   answered, unless the operator forced it there with `forced_link_dies: stay`; and waits for
//!   one with a probe outstanding only as long as its burst takes to tell (bounded);
//! - a switch to a better link (or a failback) never comes sooner after the last route change,
//!   mode change or reload than its hold allows;
//! - no link makes an illegal state transition (debug builds stop on one);
//!
//! and the same inputs always give the same decisions.

use proptest::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use wanmon::core::virtual_time::VirtualRun;
use wanmon::core::{
    Config, ForcedLinkDies, Instant, LinkEvent, LinkName, LinkState, Micros, Mode, Probe, Reason,
};

const LINKS: [&str; 3] = ["wan", "wwan", "lte"];

/// What a link's path does to probes.
#[derive(Clone, Copy, Debug)]
enum PathKind {
    Good { rtt_ms: u64 },
    Lossy { rtt_ms: u64, loss: u64 },
    Silent,
}

#[derive(Clone, Debug)]
enum Op {
    Advance { ms: u64 },
    Path { link: usize, kind: PathKind },
    Carrier { link: usize, up: bool },
    Force { link: usize },
    Auto,
    Reload { variant: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        (5u64..300).prop_map(|rtt_ms| PathKind::Good { rtt_ms }),
        (5u64..300, 5u64..70).prop_map(|(rtt_ms, loss)| PathKind::Lossy { rtt_ms, loss }),
        Just(PathKind::Silent),
    ];
    prop_oneof![
        4 => (1u64..20_000).prop_map(|ms| Op::Advance { ms }),
        3 => (0..LINKS.len(), kind).prop_map(|(link, kind)| Op::Path { link, kind }),
        1 => (0..LINKS.len(), any::<bool>()).prop_map(|(link, up)| Op::Carrier { link, up }),
        1 => (0..LINKS.len()).prop_map(|link| Op::Force { link }),
        1 => Just(Op::Auto),
        1 => (0usize..4).prop_map(|variant| Op::Reload { variant }),
    ]
}

/// The config a reload variant loads: other biases, a link disabled, a link removed.
fn config(variant: usize, stay: bool) -> Config {
    let dies = if stay { "stay" } else { "fallback" };
    let (biases, enabled, count) = match variant {
        0 => ([0, 20, 40], [true, true, true], 3),
        1 => ([30, 0, 10], [true, true, true], 3),
        2 => ([0, 20, 40], [true, false, true], 3),
        _ => ([0, 20, 40], [true, true, true], 2),
    };
    let links: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#"{{"name": "{}", "device": "eth{i}", "bias": {}, "enabled": {},
                    "targets": ["192.0.2.1", "198.51.100.1"]}}"#,
                LINKS[i], biases[i], enabled[i]
            )
        })
        .collect();
    Config::from_json(&format!(
        r#"{{"forced_link_dies": "{dies}", "switch_hold_ms": 5000, "failback_hold_ms": 12000,
            "links": [{}]}}"#,
        links.join(",")
    ))
    .expect("generated configs are valid")
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

type Paths = Rc<RefCell<Vec<PathKind>>>;
type Model = Box<dyn FnMut(&Probe, Instant) -> Option<Micros>>;

/// A run of the ops; returns every decision as text, or the first broken invariant.
fn play(ops: &[Op], stay: bool) -> Result<Vec<String>, String> {
    let paths: Paths = Rc::new(RefCell::new(vec![PathKind::Good { rtt_ms: 20 }; LINKS.len()]));
    let shared = Rc::clone(&paths);
    let model: Model = Box::new(move |probe: &Probe, now: Instant| {
        let draw = mix((probe.seq as u64) << 40 ^ now.as_micros() ^ (probe.link as u64) << 20);
        // Paths are by link name; after a reload that drops a link the indexes still match.
        match shared.borrow().get(probe.link).copied()? {
            PathKind::Good { rtt_ms } => Some(rtt_ms * 1000 + draw % 3000),
            PathKind::Lossy { rtt_ms, loss } => (draw % 100 >= loss).then(|| rtt_ms * 1000),
            PathKind::Silent => None,
        }
    });
    let mut run = VirtualRun::new(&config(0, stay), model, Instant::ZERO);
    // When the holds last restarted for everyone: a route change, a mode change, a reload.
    let mut restarted = Instant::ZERO;
    let mut checked = 0;
    let mut waiting_since: Option<Instant> = None;
    for op in ops {
        match *op {
            Op::Advance { ms } => {
                let end = run.now().after(ms * 1000);
                run.run_until(end);
            }
            Op::Path { link, kind } => paths.borrow_mut()[link] = kind,
            Op::Carrier { link, up } if link < run.engine().links().len() => {
                run.link_event(link, if up { LinkEvent::Up } else { LinkEvent::Down });
            }
            Op::Carrier { .. } => {}
            Op::Force { link } => {
                let name = LinkName::new(LINKS[link]).expect("a valid name");
                if run.set_mode(Mode::Forced(name)).is_ok() {
                    restarted = run.now();
                }
            }
            Op::Auto => {
                run.set_mode(Mode::Auto).expect("auto is always taken");
                restarted = run.now();
            }
            Op::Reload { variant } => {
                run.reload(&config(variant, stay));
                restarted = run.now();
            }
        }
        for decision in &run.decisions()[checked..] {
            if let Reason::Better { held, .. } | Reason::Failback { held, .. } = decision.reason {
                let failback = matches!(decision.reason, Reason::Failback { .. });
                let hold = if failback { 12_000_000 } else { 5_000_000 };
                if held < hold || decision.at.since(restarted) < hold {
                    return Err(format!(
                        "too soon: {decision} ({} µs after a restart)",
                        decision.at.since(restarted)
                    ));
                }
            }
            if decision.changes_route() {
                restarted = decision.at;
            }
        }
        checked = run.decisions().len();
        let waiting = route_is_on_a_live_link(&run, stay)?;
        match (waiting, waiting_since) {
            (false, _) => waiting_since = None,
            (true, None) => waiting_since = Some(run.now()),
            (true, Some(since)) if run.now().since(since) > MAX_WAIT => {
                return Err(format!("waited from {since:?} to {:?} for a successor", run.now()));
            }
            (true, Some(_)) => {}
        }
    }
    Ok(run.decisions().iter().map(|d| format!("{:?} {d}", d.at)).collect())
}

/// How long the route may stay on a dead link while the only live ones have a probe outstanding:
/// their bursts settle it, or their death does.
const MAX_WAIT: Micros = 30_000_000;

/// `Ok(true)` while the route waits on a dead link for a live one to be settled.
fn route_is_on_a_live_link(run: &VirtualRun<Model>, stay: bool) -> Result<bool, String> {
    let engine = run.engine();
    let Some(current) = engine.current() else { return Ok(false) };
    if current.state() == LinkState::Up {
        return Ok(false);
    }
    let forced_here = engine.mode() == Mode::Forced(current.name());
    if forced_here && stay {
        return Ok(false);
    }
    let others_up = || {
        engine.links().iter().filter(|l| l.name() != current.name() && l.state() == LinkState::Up)
    };
    if others_up().any(|l| !l.in_doubt()) {
        return Err(format!(
            "at {:?} the route is on {} ({:?}) while another link is up: {:?}",
            run.now(),
            current.name(),
            current.state(),
            engine
                .links()
                .iter()
                .map(|l| (l.name(), l.state(), l.in_doubt(), l.score()))
                .collect::<Vec<_>>()
        ));
    }
    Ok(others_up().next().is_some())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_interaction_keeps_the_invariants(ops in prop::collection::vec(op(), 1..40), stay in any::<bool>()) {
        let first = play(&ops, stay);
        prop_assert!(first.is_ok(), "{}", first.unwrap_err());
        let again = play(&ops, stay);
        prop_assert_eq!(first, again, "the same inputs gave other decisions");
    }
}

#[test]
fn forced_link_dies_is_read_from_the_config() {
    assert_eq!(config(0, true).forced_link_dies, ForcedLinkDies::Stay);
    assert_eq!(config(0, false).forced_link_dies, ForcedLinkDies::Fallback);
}
