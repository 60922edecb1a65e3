//! The timeline shorthands are written out into plain phases when a file is read: repeats,
//! changes that last a while, ramps; and the check that tells which scenarios netem can play.

use std::path::Path;
use wanmon_sim::scenario::{Phase, Scenario};

fn parse(timeline: &str, link_extra: &str) -> Scenario {
    let text = format!(
        "duration_s: 60
links:
  - {{ name: wan, latency_ms: 20{link_extra} }}
  - {{ name: wwan, latency_ms: 40 }}
timeline:
{timeline}expect:
  - initial: wan
"
    );
    Scenario::parse(Path::new("t.yaml"), &text).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

/// (time, loss) of each phase that sets a loss.
fn losses(timeline: &[Phase]) -> Vec<(f64, f64)> {
    timeline.iter().filter_map(|p| p.change.loss_percent.map(|l| (p.at_s, l))).collect()
}

#[test]
fn a_repeated_change_that_lasts_is_a_flapping_link() {
    let s = parse(
        "  - { at_s: 10, link: wan, outage: true, last_s: 2, repeat: { every_s: 4, times: 3 } }\n",
        "",
    );
    let outages: Vec<(f64, bool)> =
        s.timeline.iter().filter_map(|p| p.change.outage.map(|o| (p.at_s, o))).collect();
    assert_eq!(
        outages,
        [(10.0, true), (12.0, false), (14.0, true), (16.0, false), (18.0, true), (20.0, false)]
    );
}

#[test]
fn repeats_stop_at_the_end_of_the_scenario() {
    let s = parse(
        "  - { at_s: 50, link: wan, loss_percent: 5, repeat: { every_s: 4, times: 100 } }\n",
        "",
    );
    assert_eq!(losses(&s.timeline), [(50.0, 5.0), (54.0, 5.0), (58.0, 5.0)]);
}

#[test]
fn a_ramp_moves_in_one_second_steps_from_what_the_link_has_then() {
    let s = parse(
        "  - { at_s: 5, link: wan, loss_percent: 10 }\n  - { at_s: 10, link: wan, loss_percent: 30, ramp_s: 4 }\n",
        "",
    );
    assert_eq!(
        losses(&s.timeline),
        [(5.0, 10.0), (11.0, 15.0), (12.0, 20.0), (13.0, 25.0), (14.0, 30.0)]
    );
}

#[test]
fn the_end_of_a_change_brings_back_the_links_own_values_of_what_changed() {
    let s = parse(
        "  - { at_s: 10, link: wan, loss_percent: 30, latency_ms: 90, last_s: 5 }\n",
        ", loss_percent: 1",
    );
    let end = s.timeline.iter().find(|p| p.at_s == 15.0).expect("the end of the change");
    assert_eq!(end.change.loss_percent, Some(1.0));
    assert_eq!(end.change.latency_ms, Some(20.0));
    assert_eq!(end.change.outage, None, "what the change did not touch stays as it is");
}

#[test]
fn netem_is_refused_only_for_what_it_cannot_play() {
    let plain = parse(
        "  - { at_s: 10, link: wan, loss_percent: 30, bursts: { enter_percent: 1, leave_percent: 20 } }\n",
        "",
    );
    assert_eq!(plain.netem_refuses(), None);
    let spiky = parse(
        "  - { at_s: 10, link: wan, spikes: { every_s: 20, last_s: 1, extra_ms: 800 } }\n",
        "",
    );
    assert_eq!(
        spiky.netem_refuses().as_deref(),
        Some("link wan at 10 s: spikes (a timed change netem is not told of)")
    );
    let far =
        parse("  - { at_s: 10, link: wan, loss_percent: 1 }\n", ", target_latency_ms: [0, 30]");
    assert_eq!(
        far.netem_refuses().as_deref(),
        Some("link wan at 0 s: target_latency_ms (netem cannot tell targets apart)")
    );
}
