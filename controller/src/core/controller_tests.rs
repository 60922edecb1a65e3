//! Tests of the controller: devices judged, actions in order, reloads mapped.

use super::*;
use crate::core::Reason;

fn config(extra: &str) -> Config {
    Config::from_json(&format!(
        r#"{{ {extra} "links": [
            {{"name": "wan", "device": "eth0.2", "targets": ["192.0.2.1"]}},
            {{"name": "wwan", "device": "wlan0", "targets": ["198.51.100.1"], "bias": 20}}]}}"#
    ))
    .unwrap_or_else(|e| panic!("{e:?}"))
}

fn working(index: u32) -> DeviceFacts {
    DeviceFacts {
        index: Some(index),
        up: true,
        carrier: true,
        point_to_point: false,
        addresses: 1,
        system_gateways: [Some("192.0.2.254".parse().ok()), None],
    }
}

fn drain(controller: &mut Controller) -> Vec<Action> {
    std::iter::from_fn(|| controller.poll_action()).collect()
}

/// The log lines among the actions the controller has queued (the rest are dropped).
fn log_lines(controller: &mut Controller) -> Vec<String> {
    drain(controller)
        .iter()
        .filter_map(|a| match a {
            Action::Log(event) => Some(event.to_string()),
            _ => None,
        })
        .collect()
}

/// A controller whose devices work, probed until the first choice is made at 50 ms.
fn chosen() -> Controller {
    let mut controller = Controller::new(config(""), Instant::ZERO);
    assert_eq!(drain(&mut controller), [Action::Observe, Action::WriteRouting]);
    controller.handle_devices(Instant::ZERO, vec![working(3), working(4)]);
    drain(&mut controller);
    while let Some(probe) = controller.poll_probe(Instant::ZERO) {
        controller.handle_reply(Instant::from_millis(50), probe.link, probe.address, probe.seq);
    }
    controller
}

#[test]
fn no_probe_goes_out_before_the_devices_are_observed() {
    let mut controller = Controller::new(config(""), Instant::ZERO);
    assert_eq!(controller.poll_probe(Instant::ZERO), None, "no socket to send it on yet");
    controller.handle_devices(Instant::ZERO, vec![working(3), working(4)]);
    assert!(controller.poll_probe(Instant::ZERO).is_some());
}

#[test]
fn observed_devices_bind_their_probes_and_the_first_choice_writes_the_route() {
    let mut controller = chosen();
    let actions = drain(&mut controller);
    assert!(
        matches!(&actions[0], Action::Log(Event::Decision(d)) if matches!(d.reason, Reason::Initial { .. }))
    );
    assert_eq!(actions[1], Action::WriteDefaultRoute);
    assert_eq!(actions.len(), 2, "no hook configured: {actions:?}");
    assert_eq!(controller.current(), Some(0));
}

#[test]
fn a_link_without_a_next_hop_cannot_carry_the_route() {
    // netifd's equal-metric default routes replace each other: wan's is gone from the main
    // table, no gateway is configured, so wan answers its on-link target but cannot carry.
    let mut controller = Controller::new(config(""), Instant::ZERO);
    drain(&mut controller);
    let no_gateway = DeviceFacts { system_gateways: [None, None], ..working(3) };
    controller.handle_devices(Instant::ZERO, vec![no_gateway, working(4)]);
    let lines: Vec<String> = log_lines(&mut controller);
    assert_eq!(
        lines,
        [
            "link wan down: no IPv4 gateway for eth0.2: set the link's gateway in the config, or give the device a default route"
        ]
    );
    while let Some(probe) = controller.poll_probe(Instant::ZERO) {
        controller.handle_reply(Instant::from_millis(50), probe.link, probe.address, probe.seq);
    }
    assert_eq!(controller.current(), Some(1), "the route goes to the link that can carry it");
    // Its default route comes back (netifd re-adds it): wan is usable again.
    controller.handle_devices(Instant::from_millis(100), vec![working(3), working(4)]);
    assert!(
        drain(&mut controller)
            .contains(&Action::Log(Event::LinkUp { link: LinkName::new("wan").unwrap() }))
    );
}

#[test]
fn a_device_that_loses_carrier_is_down_at_once_and_the_route_moves() {
    let mut controller = chosen();
    drain(&mut controller);
    let unplugged = DeviceFacts { carrier: false, ..working(3) };
    controller.handle_devices(Instant::from_millis(100), vec![unplugged, working(4)]);
    let actions = drain(&mut controller);
    let log = |a: &Action| match a {
        Action::Log(event) => Some(event.to_string()),
        _ => None,
    };
    let lines: Vec<String> = actions.iter().filter_map(log).collect();
    assert_eq!(lines[0], "link wan down: device eth0.2 has no carrier");
    assert!(lines[1].starts_with("wan -> wwan: wan is dead (link down)"), "{lines:?}");
    assert!(
        actions.contains(&Action::WriteDefaultRoute) && actions.contains(&Action::WriteRouting)
    );
    assert_eq!(controller.current(), Some(1));
    // Back: measured afresh (pending), no route change yet.
    controller.handle_devices(Instant::from_millis(200), vec![working(3), working(4)]);
    let lines: Vec<String> = drain(&mut controller).iter().filter_map(log).collect();
    assert_eq!(lines, ["link wan up"]);
    assert_eq!(controller.engine().links()[0].state(), LinkState::Pending);
}

#[test]
fn a_device_that_appears_moves_or_vanishes_gets_its_probes_bound_anew() {
    let mut controller = Controller::new(config(""), Instant::ZERO);
    drain(&mut controller);
    controller.handle_devices(Instant::ZERO, vec![DeviceFacts::default(), working(4)]);
    let actions = drain(&mut controller);
    assert!(actions.contains(&Action::BindProbes { link: 1, device: Some(4) }), "{actions:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::BindProbes { link: 0, .. })));
    controller.handle_devices(Instant::from_millis(5), vec![working(7), working(4)]);
    let actions = drain(&mut controller);
    assert!(actions.contains(&Action::BindProbes { link: 0, device: Some(7) }), "{actions:?}");
    assert!(actions.contains(&Action::Log(Event::LinkUp { link: LinkName::new("wan").unwrap() })));
}

#[test]
fn a_changed_system_gateway_rewrites_the_routing_without_a_link_event() {
    let mut controller = chosen();
    drain(&mut controller);
    let moved =
        DeviceFacts { system_gateways: [Some("192.0.2.253".parse().ok()), None], ..working(3) };
    controller.handle_devices(Instant::from_millis(100), vec![moved, working(4)]);
    assert_eq!(drain(&mut controller), [Action::WriteRouting]);
}

#[test]
fn the_hook_runs_after_the_route_is_written() {
    let mut controller = Controller::new(config(r#""hook": ["/bin/true"],"#), Instant::ZERO);
    controller.handle_devices(Instant::ZERO, vec![working(3), working(4)]);
    while let Some(probe) = controller.poll_probe(Instant::ZERO) {
        controller.handle_reply(Instant::from_millis(50), probe.link, probe.address, probe.seq);
    }
    let actions = drain(&mut controller);
    let route = actions.iter().position(|a| *a == Action::WriteDefaultRoute).expect("route");
    let hook = actions.iter().position(|a| matches!(a, Action::RunHook(_))).expect("hook");
    assert!(route < hook, "{actions:?}");
}

#[test]
fn replies_from_strangers_change_nothing() {
    let mut controller = Controller::new(config(""), Instant::ZERO);
    controller.handle_devices(Instant::ZERO, vec![working(3), working(4)]);
    drain(&mut controller);
    let probe = controller.poll_probe(Instant::ZERO).expect("a probe");
    controller.handle_reply(
        Instant::from_millis(5),
        probe.link,
        "203.0.113.9".parse().unwrap(),
        probe.seq,
    );
    controller.handle_reply(Instant::from_millis(5), 9, probe.address, probe.seq);
    assert!(controller.engine().links()[probe.link].targets()[0].last_reply().is_none());
}

#[test]
fn the_operator_is_logged_and_an_unknown_link_refused() {
    let mut controller = chosen();
    drain(&mut controller);
    let refused = controller.handle_force(Instant::from_millis(60), "lte").unwrap_err();
    assert_eq!(refused.to_string(), "no link named \"lte\" in the config");
    assert!(drain(&mut controller).is_empty(), "a refusal changes nothing");
    let odd = controller.handle_force(Instant::from_millis(60), "a b").unwrap_err();
    assert_eq!(odd.to_string(), "no link named \"a b\" in the config");
    controller.handle_force(Instant::from_millis(60), "wwan").expect("forced");
    let actions = drain(&mut controller);
    assert_eq!(
        actions[0].clone(),
        Action::Log(Event::Operator(Mode::Forced(LinkName::new("wwan").unwrap())))
    );
    assert!(actions.contains(&Action::WriteDefaultRoute));
    assert_eq!(controller.current(), Some(1));
}

#[test]
fn a_reload_keeps_devices_and_sockets_that_stay_and_renumbers_the_rest() {
    let mut controller = chosen();
    drain(&mut controller);
    let swapped = Config::from_json(
        r#"{"links": [
            {"name": "lte", "device": "wwan0", "targets": ["203.0.113.1"]},
            {"name": "wan", "device": "eth0.2", "targets": ["192.0.2.1"]}]}"#,
    )
    .unwrap();
    controller.handle_reload(Instant::from_millis(100), swapped);
    let actions = drain(&mut controller);
    assert_eq!(
        actions[..4],
        [
            Action::ClearRoutingKeepingTheRoute,
            Action::KeepProbes(vec![None, Some(0)]),
            Action::Observe,
            Action::WriteRouting
        ]
    );
    // wan kept what was known of its device and its state; wwan, which carried nothing, is gone.
    assert_eq!(controller.plans()[1].facts, working(3));
    assert_eq!(controller.engine().links()[1].state(), LinkState::Up);
    assert_eq!(controller.current(), Some(1));
}

#[test]
fn a_reload_that_removes_the_route_link_moves_the_route_and_says_why() {
    let mut controller = chosen();
    drain(&mut controller);
    controller.handle_force(Instant::from_millis(60), "wwan").expect("forced");
    drain(&mut controller);
    let only_wan = Config::from_json(
        r#"{"links": [{"name": "wan", "device": "eth0.2", "targets": ["192.0.2.1"]}]}"#,
    )
    .unwrap();
    controller.handle_reload(Instant::from_millis(100), only_wan);
    let lines: Vec<String> = log_lines(&mut controller);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("wwan -> wan: wwan was removed"), "{lines:?}");
    assert_eq!(controller.engine().mode(), Mode::Auto, "the forced link is gone");
}
