//! The daemon's status as JSON (web API, `wanmon status --json`) and as text (`wanmon status`).
//! Written by hand with integer arithmetic: no serde, no float formatting on the router.

use crate::core::telemetry::Telemetry;
use crate::core::{Engine, Instant, Link, LinkState, Mode, Score};
use crate::json::escape_into;
use std::fmt::Write;

/// What the status shows besides the engine: the plumbing facts the daemon knows.
#[derive(Debug)]
pub struct Facts<'a> {
    pub now: Instant,
    pub version: &'a str,
    /// The default routes wanmon wrote (one per address family): device and gateway.
    pub routes: &'a [(&'a str, Option<std::net::IpAddr>)],
    /// Per link, in config order: why it cannot carry the route, if it cannot.
    pub problems: &'a [Option<String>],
}

/// `value / 1000` with one decimal, from integer thousandths: 12345 → "12.3".
pub fn thousandths(value: i64) -> String {
    let tenths = (value + if value >= 0 { 50 } else { -50 }) / 100;
    let sign = if tenths < 0 { "-" } else { "" };
    format!("{sign}{}.{}", tenths.abs() / 10, tenths.abs() % 10)
}

fn seconds_since(now: Instant, then: Instant) -> u64 {
    now.since(then) / 1_000_000
}

fn string(out: &mut String, text: &str) {
    out.push('"');
    escape_into(out, text);
    out.push('"');
}

fn telemetry_fields(out: &mut String, telemetry: Option<Telemetry>) {
    match telemetry {
        Some(t) => {
            let _ = write!(
                out,
                r#""latency_ms":{},"jitter_ms":{},"loss_percent":{}"#,
                thousandths(i64::from(t.latency_us)),
                thousandths(i64::from(t.jitter_us)),
                thousandths(i64::from(t.loss_bp) * 10)
            );
        }
        None => out.push_str(r#""latency_ms":null,"jitter_ms":null,"loss_percent":null"#),
    }
}

fn score_field(out: &mut String, name: &str, score: Option<Score>) {
    let _ = write!(out, r#""{name}":"#);
    match score {
        Some(score) => out.push_str(&thousandths(score.0)),
        None => out.push_str("null"),
    }
}

fn link_json(out: &mut String, link: &Link, current: bool, problem: Option<&str>, now: Instant) {
    out.push_str(r#"{"name":"#);
    string(out, link.name().as_str());
    out.push_str(r#","label":"#);
    string(out, &link.config().label);
    out.push_str(r#","device":"#);
    string(out, &link.config().device);
    let _ = write!(
        out,
        r#","state":"{}","since_s":{},"current":{current},"#,
        link.state().word(),
        seconds_since(now, link.state_since())
    );
    out.push_str(r#""cause":"#);
    match link.state() {
        LinkState::Dead(cause) => string(out, &cause.to_string()),
        _ => out.push_str("null"),
    }
    out.push_str(r#","problem":"#);
    match problem {
        Some(problem) => string(out, problem),
        None => out.push_str("null"),
    }
    out.push(',');
    telemetry_fields(out, link.telemetry());
    out.push(',');
    score_field(out, "score", link.score());
    out.push(',');
    score_field(out, "raw_score", link.raw_score());
    let _ = write!(out, r#","last_reply_s":"#);
    match link.last_reply() {
        Some(at) => out.push_str(&thousandths(now.since(at) as i64 / 1000)),
        None => out.push_str("null"),
    }
    out.push_str(r#","targets":["#);
    for (i, target) in link.targets().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"address":"#);
        string(out, &target.address().to_string());
        let _ = write!(out, r#","reachable":{},"#, target.reachable());
        telemetry_fields(out, target.telemetry());
        out.push('}');
    }
    out.push_str("]}");
}

/// The whole status document.
pub fn json(engine: &Engine, facts: &Facts) -> String {
    let mut out = String::with_capacity(2048);
    let now = facts.now;
    out.push_str(r#"{"version":"#);
    string(&mut out, facts.version);
    let _ = write!(out, r#","uptime_s":{},"mode":"#, now.as_micros() / 1_000_000);
    match engine.mode() {
        Mode::Auto => out.push_str(r#""auto","forced":null"#),
        Mode::Forced(name) => {
            out.push_str(r#""forced","forced":"#);
            string(&mut out, name.as_str());
        }
    }
    out.push_str(r#","current":"#);
    match engine.current() {
        Some(link) => string(&mut out, link.name().as_str()),
        None => out.push_str("null"),
    }
    out.push_str(r#","routes":["#);
    for (i, (device, gateway)) in facts.routes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"device":"#);
        string(&mut out, device);
        out.push_str(r#","gateway":"#);
        match gateway {
            Some(gateway) => string(&mut out, &gateway.to_string()),
            None => out.push_str("null"),
        }
        out.push('}');
    }
    out.push(']');
    out.push_str(r#","links":["#);
    let current = engine.current().map(Link::name);
    for (i, link) in engine.links().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let problem = facts.problems.get(i).and_then(Option::as_deref);
        link_json(&mut out, link, Some(link.name()) == current, problem, now);
    }
    out.push_str(r#"],"decisions":["#);
    for (i, decision) in engine.history().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, r#"{{"age_s":{},"from":"#, seconds_since(now, decision.at));
        match decision.from {
            Some(from) => string(&mut out, from.as_str()),
            None => out.push_str("null"),
        }
        out.push_str(r#","to":"#);
        string(&mut out, decision.to.as_str());
        out.push_str(r#","reason":"#);
        string(&mut out, &decision.to_string());
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// The status for a terminal.
pub fn text(engine: &Engine, facts: &Facts) -> String {
    let now = facts.now;
    let mut out = String::new();
    let mode = match engine.mode() {
        Mode::Auto => "auto".to_string(),
        Mode::Forced(name) => format!("forced to {name}"),
    };
    let routes: Vec<String> = facts
        .routes
        .iter()
        .map(|(device, gateway)| match gateway {
            Some(gateway) => format!("default via {gateway} dev {device}"),
            None => format!("default dev {device}"),
        })
        .collect();
    let route = if routes.is_empty() {
        "none written (the system's own routes apply)".to_string()
    } else {
        routes.join("; ")
    };
    let _ = writeln!(
        out,
        "wanmon {}, up {} s, mode {mode}",
        facts.version,
        now.as_micros() / 1_000_000
    );
    let _ = writeln!(out, "route: {route}");
    let _ = writeln!(
        out,
        "{:<15} {:<8} {:>8} {:>9} {:>8} {:>8} {:>8}",
        "link", "state", "since", "latency", "jitter", "loss", "score"
    );
    let current = engine.current().map(Link::name);
    for (i, link) in engine.links().iter().enumerate() {
        let marker = if Some(link.name()) == current { "*" } else { " " };
        let dash = || "-".to_string();
        let t = link.telemetry();
        let _ = writeln!(
            out,
            "{marker}{:<14} {:<8} {:>6} s {:>6} ms {:>5} ms {:>6} % {:>8}",
            link.name().as_str(),
            link.state().word(),
            seconds_since(now, link.state_since()),
            t.map_or_else(dash, |t| thousandths(i64::from(t.latency_us))),
            t.map_or_else(dash, |t| thousandths(i64::from(t.jitter_us))),
            t.map_or_else(dash, |t| thousandths(i64::from(t.loss_bp) * 10)),
            link.score().map_or_else(dash, |s| thousandths(s.0)),
        );
        if let LinkState::Dead(cause) = link.state() {
            let _ = writeln!(out, "  {cause}");
        }
        if let Some(Some(problem)) = facts.problems.get(i) {
            let _ = writeln!(out, "  {problem}");
        }
    }
    let _ = writeln!(out, "recent decisions:");
    for decision in engine.history().rev().take(10) {
        let _ = writeln!(out, "  {} s ago: {decision}", seconds_since(now, decision.at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Config;
    use crate::json::{self, Value};

    fn engine() -> Engine {
        let config = Config::from_json(
            r#"{"links": [{"name": "wan", "label": "<img src=x onerror=alert(1)>", "device": "eth0.2",
                "targets": ["192.0.2.1"]}, {"name": "wwan", "device": "wlan0"}]}"#,
        )
        .unwrap();
        let mut engine = Engine::new(&config, Instant::ZERO);
        let probe = engine.poll_probe(Instant::ZERO).unwrap();
        engine.on_reply(Instant::from_millis(12), probe.link, probe.target, probe.seq);
        engine
    }

    #[test]
    fn numbers_have_one_decimal() {
        assert_eq!(thousandths(12_345), "12.3");
        assert_eq!(thousandths(12_350), "12.4");
        assert_eq!(thousandths(0), "0.0");
        assert_eq!(thousandths(-1_250), "-1.3");
    }

    #[test]
    fn status_json_is_valid_and_escapes_labels() {
        let engine = engine();
        let problems = [None, Some("device wlan0 does not exist".to_string())];
        let facts = Facts {
            now: Instant::from_millis(5_000),
            version: "1.0",
            routes: &[("eth0.2", "198.51.100.1".parse().ok()), ("eth0.2", None)],
            problems: &problems,
        };
        let text = json(&engine, &facts);
        assert!(!text.contains("<img"), "markup must be escaped: {text}");
        let doc = json::parse(&text).expect("valid JSON");
        let Value::Object(members) = doc.value else { panic!() };
        let get = |key: &str| {
            members.iter().find(|(k, _)| k == key).map(|(_, v)| v.value.clone()).unwrap()
        };
        assert_eq!(get("mode"), Value::String("auto".into()));
        assert_eq!(get("uptime_s"), Value::Number("5".into()));
        let Value::Array(links) = get("links") else { panic!() };
        assert_eq!(links.len(), 2);
        let Value::Object(wan) = &links[0].value else { panic!() };
        let field =
            |key: &str| wan.iter().find(|(k, _)| k == key).map(|(_, v)| v.value.clone()).unwrap();
        assert_eq!(field("label"), Value::String("<img src=x onerror=alert(1)>".into()));
        assert_eq!(field("latency_ms"), Value::Number("12.0".into()));
        assert_eq!(field("state"), Value::String("up".into()));
        let Value::Object(wwan) = &links[1].value else { panic!() };
        assert!(wwan.iter().any(|(k, v)| k == "problem"
            && v.value == Value::String("device wlan0 does not exist".into())));
    }

    #[test]
    fn status_text_shows_links_and_route() {
        let engine = engine();
        let facts =
            Facts { now: Instant::from_millis(2_000), version: "1.0", routes: &[], problems: &[] };
        let text = text(&engine, &facts);
        assert!(text.contains("route: none written"), "{text}");
        assert!(text.contains(" wan "), "{text}");
        assert!(text.contains("12.0 ms"), "{text}");
    }
}
