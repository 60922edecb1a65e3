//! The scenario library in real time, on real namespaces with the real daemon (the `netns`
//! engine), every scenario at once with this kernel's impairment (`--impair auto`: netem where
//! the kernel has it, else the relay): each meets its expectations, switches to the same links
//! in the same order as the replay of the decision core, matches its snapshot (the links and the
//! phase each switch fell in: no times, so noise cannot flake it), and leaves nothing behind.
//! The netem backend on a kernel that has it, whatever this one has: `cargo xtask netem`.
//!
//! Needs root; `cargo xtask ci` runs it with `--include-ignored`. Set WANMON_BINARY (and
//! WANMON_RUNNER, such as qemu-mipsel-static) to run another build of the daemon.

mod common;

use std::path::Path;
use std::process::Command;
use wanmon_sim::impair::Impairment;
use wanmon_sim::record::RunRecord;
use wanmon_sim::scenario::Scenario;
use wanmon_sim::{netns, replay};

/// The switches as the snapshot shows them: the link, and the phase of the timeline it fell in.
fn switch_log(scenario: &Scenario, record: &RunRecord) -> String {
    record
        .route_changes
        .iter()
        .map(|change| {
            let t = change.t_ms as f64 / 1000.0;
            let phase = scenario.timeline.iter().filter(|p| p.at_s <= t).count();
            let during = match phase {
                0 => "before any change".to_string(),
                n => format!("after the change at {} s", scenario.timeline[n - 1].at_s),
            };
            format!("{} -> {} {during}", change.from.as_deref().unwrap_or("none"), change.to)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "needs root: network namespaces; runs in real time (~5 min)"]
fn every_scenario_on_namespaces_agrees_with_the_replay() {
    common::require_root();
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let scenarios = Scenario::load_all(&library).unwrap_or_else(|e| panic!("{e:?}"));
    let options = netns::Options {
        binary: common::daemon(),
        runner: std::env::var("WANMON_RUNNER").ok().filter(|r| !r.is_empty()),
        impairment: Impairment::choose("auto").unwrap_or_else(|e| panic!("{e}")),
        relay_where_netem_cannot: true,
        sample_every_s: 5.0,
    };
    let records: Vec<RunRecord> = std::thread::scope(|scope| {
        let runs: Vec<_> =
            scenarios.iter().map(|s| scope.spawn(|| netns::run(s, &options))).collect();
        runs.into_iter()
            .map(|r| r.join().expect("run thread").unwrap_or_else(|e| panic!("{e}")))
            .collect()
    });
    let mut problems = Vec::new();
    for (scenario, record) in scenarios.iter().zip(&records) {
        let unmet = record.unmet();
        if !unmet.is_empty() {
            problems.push(format!("{}: unmet on netns: {unmet:?}", scenario.name));
        }
        let replayed = replay::run(scenario, 1.0);
        problems.extend(record.disagreement_with(&replayed));
        println!(
            "{:<36} netns: time to switch {:>5}, {} switches | replay: {:>5}, {} switches",
            scenario.name,
            record.time_to_switch_s.map_or("-".into(), |t| format!("{t:.1} s")),
            record.switches,
            replayed.time_to_switch_s.map_or("-".into(), |t| format!("{t:.1} s")),
            replayed.switches
        );
    }
    let leftover = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    // This process's runs only: other tests may run theirs at the same time.
    let ours = format!("{}{}-", netns::PREFIX, std::process::id() % 100_000);
    let leftover =
        String::from_utf8_lossy(&leftover.stdout).lines().filter(|l| l.starts_with(&ours)).count();
    assert_eq!(leftover, 0, "namespaces left behind");
    // Every device a run makes is made inside its namespaces; none may end up on the host.
    let host_links = Command::new("ip").args(["-o", "link", "show"]).output().expect("ip link");
    let host_links = String::from_utf8_lossy(&host_links.stdout);
    let strays: Vec<&str> = host_links
        .lines()
        .filter(|l| {
            scenarios.iter().flat_map(|s| &s.links).any(|link| {
                l.contains(&format!(" {}:", link.name)) || l.contains(&format!(" {}@", link.name))
            }) || l.contains(" isp:")
                || l.contains(" isp@")
        })
        .collect();
    assert!(strays.is_empty(), "devices left on the host: {strays:?}");
    // Each run's config lives in a directory named after the run: no daemon may still use one.
    let daemons =
        Command::new("pgrep").args(["-f", &format!("wanmon-{ours}")]).output().expect("pgrep");
    assert!(
        daemons.stdout.is_empty(),
        "daemons left running: {}",
        String::from_utf8_lossy(&daemons.stdout)
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for (scenario, record) in scenarios.iter().zip(&records) {
        insta::assert_snapshot!(format!("netns-{}", scenario.name), switch_log(scenario, record));
    }
}
