//! The impairment relay measured from outside: a client namespace pings a target in a server
//! namespace through two TUN devices and the relay (surge-ping), and what it measures must match
//! what was configured: latency within ±10 %, loss within ±3 points, and the same every run
//! (the relay is seeded). Needs root (namespaces); `cargo xtask ci` runs it with
//! `--include-ignored`.

mod common;

use wanmon_sim::calibrate::calibrate_link;
use wanmon_sim::impair::Impairment;
use wanmon_sim::scenario::Condition;

#[test]
#[ignore = "needs root: network namespaces"]
fn the_relay_delivers_the_configured_latency_and_loss() {
    common::require_root();
    let configured = Condition::new(50.0, 10.0, 20.0);
    let measured = calibrate_link("wan", &configured, Impairment::Relay, 400, 42)
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "calibrate: configured 50 ms ± 10 ms, 20 % loss; measured {:.1} ms ± {:.1} ms, {:.1} % loss over {} pings",
        measured.latency_ms, measured.jitter_ms, measured.loss_percent, measured.pings
    );
    measured.faithful().unwrap_or_else(|e| panic!("out of tolerance: {e}"));
    let again = calibrate_link("wan", &configured, Impairment::Relay, 400, 42)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.loss_percent, measured.loss_percent, "the same seed loses the same packets");
    let leftover =
        std::process::Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    assert!(!String::from_utf8_lossy(&leftover.stdout).contains("wcc-"), "namespaces left behind");
}
