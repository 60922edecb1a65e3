//! The status document ([`crate::protocol::Status`]) filled from the controller and from what the
//! daemon wrote into the kernel. Integer arithmetic only: no float formatting on the router.

use crate::core::telemetry::Telemetry;
use crate::core::{Controller, Instant, Link, LinkState, Mode};
use crate::protocol::status::{
    DecisionStatus, Figures, LinkStatus, RouteStatus, Status, TargetStatus,
};

fn figures(telemetry: Option<Telemetry>) -> Option<Figures> {
    telemetry.map(|t| Figures {
        latency: i64::from(t.latency_us),
        jitter: i64::from(t.jitter_us),
        loss: i64::from(t.loss_bp) * 10,
    })
}

fn seconds_since(now: Instant, then: Instant) -> u64 {
    now.since(then) / 1_000_000
}

fn link_status(link: &Link, current: bool, problem: Option<String>, now: Instant) -> LinkStatus {
    LinkStatus {
        name: text!(link.name()),
        label: link.config().label.clone(),
        device: link.config().device.clone(),
        state: link.state().word().to_string(),
        since_s: seconds_since(now, link.state_since()),
        current,
        cause: match link.state() {
            LinkState::Dead(cause) => Some(text!(cause)),
            _ => None,
        },
        problem,
        warning: link.config().warning.clone(),
        figures: figures(link.telemetry()),
        score: link.score().map(|s| s.0),
        raw_score: link.raw_score().map(|s| s.0),
        last_reply: link.last_reply().map(|at| now.since(at) as i64 / 1000),
        targets: link
            .targets()
            .iter()
            .map(|t| TargetStatus {
                address: crate::address::text(&t.address()),
                reachable: t.reachable(),
                figures: figures(t.telemetry()),
            })
            .collect(),
    }
}

/// The status at `now`; `routes` are the default routes the daemon wrote.
pub fn of(
    controller: &Controller,
    routes: Vec<RouteStatus>,
    flows_cleared: u64,
    now: Instant,
) -> Status {
    let engine = controller.engine();
    let current = engine.current().map(Link::name);
    let problems = controller.problems();
    Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: now.as_micros() / 1_000_000,
        forced: match engine.mode() {
            Mode::Auto => None,
            Mode::Forced(name) => Some(text!(name)),
        },
        current: current.map(|c| text!(c)),
        routes,
        flows_cleared,
        links: engine
            .links()
            .iter()
            .zip(problems)
            .map(|(link, problem)| {
                let problem = problem.map(|p| text!(p));
                link_status(link, Some(link.name()) == current, problem, now)
            })
            .collect(),
        decisions: engine
            .history()
            .rev()
            .map(|d| DecisionStatus {
                age_s: seconds_since(now, d.at),
                from: d.from.map(|f| text!(f)),
                to: text!(d.to),
                reason: text!(d),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Config, DeviceFacts};

    fn controller() -> Controller {
        let config = Config::from_json(
            r#"{"links": [{"name": "wan", "label": "<img src=x onerror=alert(1)>", "device": "eth0.2",
                "targets": ["192.0.2.1"]}, {"name": "wwan", "device": "wlan0"}]}"#,
        )
        .unwrap();
        let mut controller = Controller::new(config, Instant::ZERO);
        let working = DeviceFacts {
            index: Some(3),
            up: true,
            carrier: true,
            addresses: 1,
            system_gateways: [Some("192.0.2.254".parse().ok()), None],
            ..DeviceFacts::default()
        };
        controller.handle_devices(Instant::ZERO, vec![working, DeviceFacts::default()]);
        let probe = controller.poll_probe(Instant::ZERO).unwrap();
        controller.handle_reply(Instant::from_millis(12), probe.link, probe.address, probe.seq);
        controller
    }

    #[test]
    fn the_status_shows_what_the_controller_knows() {
        let routes =
            vec![RouteStatus { device: "eth0.2".into(), gateway: Some("198.51.100.1".into()) }];
        let status = of(&controller(), routes, 0, Instant::from_millis(5_000));
        assert_eq!(status.uptime_s, 5);
        assert_eq!(status.forced, None);
        let wan = &status.links[0];
        assert_eq!(wan.label, "<img src=x onerror=alert(1)>");
        assert_eq!(wan.state, "up");
        assert_eq!(wan.figures.map(|f| f.latency), Some(12_000));
        let wwan = &status.links[1];
        assert_eq!(wwan.problem.as_deref(), Some("device wlan0 does not exist (yet)"));
        assert_eq!(wwan.cause.as_deref(), Some("link down"));
        let text = status.to_json();
        assert!(!text.contains("<img"), "markup must be escaped: {text}");
        // Figures go out with one decimal: what is read back writes the same document.
        assert_eq!(Status::from_json(&text).map(|s| s.to_json()), Ok(text));
    }
}
