//! Every scenario of the library, replayed: its decisions snapshot-tested exactly, its
//! expectations met, and the replay deterministic to the bit.

use std::path::Path;
use wanmon_sim::record::RunRecord;
use wanmon_sim::replay;
use wanmon_sim::scenario::Scenario;

fn library() -> Vec<Scenario> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    Scenario::load_all(&dir).unwrap_or_else(|errors| {
        panic!("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
    })
}

/// The decisions of a run as text: time, route change and the reason with its numbers.
fn decision_log(record: &RunRecord) -> String {
    record
        .decisions
        .iter()
        .map(|d| format!("{:>9.3} s  {}", d.t_ms as f64 / 1000.0, d.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_library_has_every_required_situation() {
    let names: Vec<String> = library().into_iter().map(|s| s.name).collect();
    for required in [
        "hard-outage",
        "carrier-loss",
        "loss-30",
        "latency-creep",
        "jitter-storm",
        "noisy-but-healthy",
        "flapping-primary",
        "recovery-failback",
        "all-down-then-one-returns",
        "three-wans",
        "one-target-filtered",
        "backup-worse-than-degraded-primary",
    ] {
        assert!(names.iter().any(|n| n == required), "scenario {required} missing from scenarios/");
    }
}

#[test]
fn every_scenario_meets_its_expectations_and_matches_its_snapshot() {
    for scenario in library() {
        let record = replay::run(&scenario, 1.0);
        let unmet = record.unmet();
        assert!(unmet.is_empty(), "{}: {unmet:?}", scenario.name);
        insta::assert_snapshot!(format!("replay-{}", scenario.name), decision_log(&record));
    }
}

#[test]
fn replay_is_deterministic_to_the_bit() {
    for scenario in library() {
        let first = replay::run(&scenario, 0.5);
        let second = replay::run(&scenario, 0.5);
        assert_eq!(first.decisions, second.decisions, "{}", scenario.name);
        assert_eq!(first.samples, second.samples, "{}", scenario.name);
    }
}

#[test]
fn another_seed_gives_other_draws_but_the_same_story() {
    let mut scenario =
        library().into_iter().find(|s| s.name == "hard-outage").expect("hard-outage");
    let first = replay::run(&scenario, 1.0);
    scenario.seed += 1000;
    let second = replay::run(&scenario, 1.0);
    assert_ne!(first.samples, second.samples, "the seed must change the draws");
    let path = |r: &RunRecord| r.route_changes.iter().map(|c| c.to.clone()).collect::<Vec<_>>();
    assert_eq!(path(&first), path(&second));
    assert!(second.all_met());
}

#[test]
fn a_simulated_day_replays_quickly() {
    let text = r#"
name: day
duration_s: 86400
links:
  - { name: wan, latency_ms: 15, jitter_ms: 3, loss_percent: 1 }
  - { name: wwan, latency_ms: 45, jitter_ms: 8, loss_percent: 1, config: { bias: 20 } }
timeline:
  - { at_s: 3600, link: wan, outage: true }
  - { at_s: 3700, link: wan, restore: true }
  - { at_s: 43200, link: wan, loss_percent: 40 }
  - { at_s: 46800, link: wan, restore: true }
expect:
  - max_switches: 4
  - final: wan
"#;
    let scenario = Scenario::parse(Path::new("day.yaml"), text).expect("valid");
    let start = std::time::Instant::now();
    let record = replay::run(&scenario, 60.0);
    let wall = start.elapsed().as_secs_f64();
    println!(
        "24 h simulated in {wall:.3} s of wall time: {:.0} simulated seconds per second",
        86_400.0 / wall
    );
    assert!(record.all_met(), "{:?}", record.verdicts);
    assert_eq!(record.switches, 4);
}
