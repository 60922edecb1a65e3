//! Mistakes in scenario files are reported with file, line, key and what was expected.

use std::path::Path;
use wanmon_sim::scenario::Scenario;

fn errors(text: &str) -> Vec<String> {
    Scenario::parse(Path::new("bad.yaml"), text)
        .expect_err("must be refused")
        .iter()
        .map(ToString::to_string)
        .collect()
}

const LINKS: &str = "duration_s: 60
links:
  - { name: wan, latency_ms: 10 }
  - { name: wwan, latency_ms: 40 }
";

#[test]
fn a_valid_scenario_parses() {
    let text = format!("{LINKS}expect:\n  - final: wan\n");
    let scenario = Scenario::parse(Path::new("ok.yaml"), &text).expect("valid");
    assert_eq!(scenario.name, "ok");
    assert_eq!(scenario.links.len(), 2);
}

#[test]
fn yaml_syntax_errors_name_the_line() {
    let got = errors("duration_s: 60\nlinks: [\n  - oops\n");
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("bad.yaml:"), "{got:?}");
    assert!(!got[0].starts_with("bad.yaml: "), "a line number is expected: {got:?}");
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    let got = errors(&format!("{LINKS}expect:\n  - final: wan\nlatnecy: 5\n"));
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("bad.yaml:7"), "{got:?}");
    assert!(got[0].contains("latnecy"), "{got:?}");
    let got = errors("duration_s: sixty\nlinks: []\nexpect: []\n");
    assert!(got[0].starts_with("bad.yaml:1"), "{got:?}");
    assert!(got[0].contains("duration_s"), "{got:?}");
}

#[test]
fn references_and_ranges_are_checked_with_their_lines() {
    let text = format!(
        "{LINKS}timeline:
  - {{ at_s: 90, link: wan, outage: true }}
  - {{ at_s: 10, link: wann, outage: true }}
  - {{ at_s: 10, link: wan, unreachable_targets: [5] }}
  - {{ at_s: 10, link: wan }}
  - {{ at_s: 10, link: wwan, loss_percent: 150, echo_limit_per_s: 0 }}
expect:
  - switch: {{ to: lte, after_s: 10, within_s: 5 }}
  - no_switch: {{ from_s: 30, until_s: 20 }}
"
    );
    assert_eq!(
        errors(&text),
        [
            "bad.yaml:6: timeline[0].at_s: got 90, expected 0 to 60 seconds (within duration_s)",
            "bad.yaml:7: timeline[1].link: no link named \"wann\"; the links are wan, wwan",
            "bad.yaml:8: timeline[2].unreachable_targets: target 5 does not exist: link wan has targets 0 to 1",
            "bad.yaml:9: timeline[3]: changes nothing: expected at least one of latency_ms, jitter_ms, loss_percent, return_loss_percent, bursts, spikes, delay_tail, target_latency_ms, outage, carrier, unreachable_targets, echo_limit_per_s, restore",
            "bad.yaml:10: timeline[4].loss_percent: got 150, expected 0 to 100 %",
            "bad.yaml:10: timeline[4].echo_limit_per_s: got 0, expected 1 to 100000 echo requests a second",
            "bad.yaml:12: expect[0].switch.to: no link named \"lte\"; the links are wan, wwan",
            "bad.yaml:13: expect[1].no_switch: from_s 30 is after until_s 20",
        ]
    );
}

#[test]
fn link_mistakes_are_named() {
    let text = "duration_s: 60
links:
  - { name: wan, latency_ms: -1, targets: 9 }
  - { name: wan, latency_ms: 10 }
  - { name: \"<b>\", latency_ms: 10 }
  - { name: lo, latency_ms: 10 }
expect:
  - final: wan
";
    assert_eq!(
        errors(text),
        [
            "bad.yaml:3: links[0].latency_ms: got -1, expected 0 to 10000 ms",
            "bad.yaml:3: links[0].targets: got 9, expected 1 to 3",
            "bad.yaml:4: links[1].name: duplicate link name \"wan\"",
            "bad.yaml:5: links[2].name: got \"<b>\", expected only letters, digits, '_', '.' and '-'",
            "bad.yaml:6: links[3].name: got \"lo\", expected another name: the loopback device has it",
        ]
    );
}

#[test]
fn controller_config_overrides_are_checked_by_the_controller_and_placed_in_the_scenario() {
    let text = "duration_s: 60
config:
  loss_divisor: 0
  device: eth9
links:
  - name: wan
    latency_ms: 10
    config: { bias: 1.5 }
  - { name: wwan, latency_ms: 40 }
expect:
  - final: wan
";
    assert_eq!(
        errors(text),
        [
            "bad.yaml:3: config.device: is set by the simulator from the scenario's links, not by a config override",
            "bad.yaml:3: config.loss_divisor: got 0, expected a number from 0.01 to 1000000 with at most two decimals",
            "bad.yaml:8: links[0].config.bias: got 1.5, expected a whole number from -1000000 to 1000000 (ms)",
        ]
    );
}

#[test]
fn conditions_repeats_and_ramps_are_checked_part_by_part() {
    let text = "duration_s: 60
links:
  - { name: wan, latency_ms: 10, bursts: { enter_percent: 5, leave_percent: 0 } }
  - name: wwan
    latency_ms: 40
    spikes: { every_s: 5, last_s: 6, extra_ms: 100 }
    delay_tail: { percent: 150, scale_ms: 5 }
    target_latency_ms: [1, 2, 3, -4]
timeline:
  - { at_s: 10, link: wan, outage: true, ramp_s: 5 }
  - { at_s: 10, link: wan, loss_percent: 10, last_s: 10, repeat: { every_s: 5, times: 3 } }
  - { at_s: 10, link: wan, loss_percent: 10, repeat: { every_s: 5, times: 0 } }
  - { at_s: 10, link: wan, loss_percent: 10, ramp_s: 0.5 }
expect:
  - never_on: lte
  - max_bad_link_s: -1
";
    assert_eq!(
        errors(text),
        [
            "bad.yaml:3: links[0].bursts.leave_percent: got 0, expected above 0 and at most 100 % (a burst must end)",
            "bad.yaml:6: links[1].spikes.last_s: got 6, expected above 0 and shorter than every_s",
            "bad.yaml:7: links[1].delay_tail.percent: got 150, expected 0 to 100 %",
            "bad.yaml:8: links[1].target_latency_ms: got 4 values, expected at most 3, one per target",
            "bad.yaml:8: links[1].target_latency_ms[3]: got -4, expected 0 to 10000 ms",
            "bad.yaml:10: timeline[0].ramp_s: a ramp moves only latency_ms, jitter_ms, loss_percent and return_loss_percent",
            "bad.yaml:11: timeline[1].last_s: got 10, expected less than repeat.every_s 5: the occurrences would overlap",
            "bad.yaml:12: timeline[2].repeat.times: got 0, expected 1 to 100000",
            "bad.yaml:13: timeline[3].ramp_s: got 0.5, expected 1 to 60 seconds",
            "bad.yaml:15: expect[0].never_on: no link named \"lte\"; the links are wan, wwan",
            "bad.yaml:16: expect[1].max_bad_link_s: got -1, expected 0 to 60 seconds",
        ]
    );
}

#[test]
fn a_scenario_without_expectations_is_refused() {
    assert_eq!(
        errors(LINKS),
        ["bad.yaml: expect: missing: a scenario proves nothing without expectations"]
    );
}

#[test]
fn a_missing_file_is_named() {
    let errors = Scenario::load(Path::new("/nonexistent/s.yaml")).expect_err("missing");
    assert!(errors[0].to_string().starts_with("/nonexistent/s.yaml: cannot read: "));
}
