//! Property: while no link is dead and nobody forces a link, the route never changes more often
//! than the switch hold allows, and every switch had the margin and the holds the config asks for.

use proptest::prelude::*;
use wanmon::core::virtual_time::VirtualRun;
use wanmon::core::{Config, Instant, Micros, Probe, Reason};

/// A link's behaviour over time: (start s, base RTT ms, jitter ms, loss %) phases.
type Phases = Vec<(u64, u64, u64, u64)>;

fn mix(mut x: u64) -> u64 {
    // splitmix64: a fixed, seedless hash so every case replays identically.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn phases() -> impl Strategy<Value = Phases> {
    prop::collection::vec((0u64..300, 5u64..300, 0u64..60, 0u64..40), 1..6).prop_map(|mut p| {
        p.sort();
        p[0].0 = 0;
        p
    })
}

fn config(
    links: usize,
    hysteresis: u64,
    switch_hold_ms: u64,
    failback_hold_ms: u64,
    smoothing_ms: u64,
    biases: &[i64],
) -> Config {
    let links: Vec<String> = (0..links)
        .map(|i| {
            format!(
                r#"{{"name": "l{i}", "device": "eth{i}", "bias": {}, "targets": ["192.0.2.1", "198.51.100.1", "203.0.113.1"]}}"#,
                biases[i]
            )
        })
        .collect();
    Config::from_json(&format!(
        r#"{{"hysteresis": {hysteresis}, "switch_hold_ms": {switch_hold_ms}, "failback_hold_ms": {failback_hold_ms},
            "smoothing_ms": {smoothing_ms}, "dead_after_ms": 600000, "window": 8, "links": [{}]}}"#,
        links.join(",")
    ))
    .expect("generated configs are valid")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn switches_respect_the_holds(
        behaviours in prop::collection::vec(phases(), 2..5),
        biases in prop::collection::vec(-50i64..100, 4),
        hysteresis in 0u64..40,
        switch_hold_ms in 1_000u64..20_000,
        failback_hold_ms in 0u64..40_000,
        smoothing_ms in 0u64..8_000,
    ) {
        let cfg = config(behaviours.len(), hysteresis, switch_hold_ms, failback_hold_ms, smoothing_ms, &biases);
        let path = move |probe: &Probe, now: Instant| -> Option<Micros> {
            let seconds = now.as_micros() / 1_000_000;
            let phases = &behaviours[probe.link];
            let (_, base, jitter, loss) = *phases.iter().rev().find(|p| p.0 <= seconds).unwrap_or(&phases[0]);
            let draw = mix((probe.link as u64) << 40 ^ (probe.target as u64) << 32 ^ now.as_micros());
            // Target 0 always answers: no link may die, which is this property's premise.
            if probe.target != 0 && draw % 100 < loss {
                return None;
            }
            Some((base * 1000 + (draw >> 8) % (jitter * 1000 + 1)).min(790_000))
        };
        let mut run = VirtualRun::new(&cfg, path, Instant::ZERO);
        run.run_until(Instant::from_millis(400_000));
        let switches: Vec<_> = run.decisions().iter().filter(|d| d.changes_route()).collect();
        prop_assert!(!switches.is_empty());
        let first_is_initial = matches!(switches[0].reason, Reason::Initial { .. });
        prop_assert!(first_is_initial, "first decision: {}", switches[0]);
        let hold = switch_hold_ms * 1000;
        for pair in switches.windows(2) {
            let gap = pair[1].at.since(pair[0].at);
            prop_assert!(gap >= hold, "switches {} µs apart, hold {} µs: {} then {}", gap, hold, pair[0], pair[1]);
        }
        for decision in &switches[1..] {
            match decision.reason {
                Reason::Better { evidence, held } => {
                    prop_assert!(held >= hold);
                    // Better by the hysteresis, and by more than the doubt both links' bounds
                    // leave about the difference.
                    let by = evidence.from_score.0 - evidence.to_score.0;
                    prop_assert!(by > (hysteresis * 1000) as i64);
                    prop_assert!(by > evidence.doubt.0 && evidence.doubt.0 >= 0);
                }
                Reason::Failback { evidence, held } => {
                    // A failback needs no hysteresis (leaving took it), only to be better by more
                    // than the doubt for the failback hold.
                    prop_assert!(held >= hold.max(failback_hold_ms * 1000));
                    prop_assert_eq!(evidence.margin.0, 0);
                    prop_assert!(evidence.from_score.0 - evidence.to_score.0 > evidence.doubt.0);
                }
                other => prop_assert!(false, "unexpected reason with no dead link: {:?}", other),
            }
        }
    }
}
