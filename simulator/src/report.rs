//! Reports of runs: the summary table for the terminal and an SVG timeline per scenario that a
//! person can read at a glance (which link carried the route, each link's score, what broke when).

use crate::record::RunRecord;
use crate::scenario::Scenario;
use std::fmt::Write;

/// One row per run: expectations met, time to switch, switches, seconds on a bad link.
pub fn table(records: &[RunRecord]) -> String {
    let width = records.iter().map(|r| r.scenario.len()).max().unwrap_or(8).max(8);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:<7}  {:>6}  {:>9}  {:>8}  {:>9}  {:>10}  result",
        "scenario", "engine", "expect", "to switch", "switches", "bad link", "speed"
    );
    for r in records {
        let met = r.verdicts.iter().filter(|v| v.met).count();
        let to_switch = r.time_to_switch_s.map_or("-".to_string(), |t| format!("{t:.1} s"));
        let speed =
            if r.engine == "replay" { format!("{:.0}x", r.speed) } else { "1x".to_string() };
        let result = if r.all_met() { "ok" } else { "FAILED" };
        let _ = writeln!(
            out,
            "{:<width$}  {:<7}  {:>6}  {:>9}  {:>8}  {:>7.1} s  {:>10}  {result}",
            r.scenario,
            r.engine,
            format!("{met}/{}", r.verdicts.len()),
            to_switch,
            r.switches,
            r.bad_link_s,
            speed,
        );
        for unmet in r.unmet() {
            let _ = writeln!(out, "    unmet: {unmet}");
        }
    }
    out
}

const PALETTE: [&str; 8] =
    ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A tick step that gives about eight ticks.
fn tick_step(duration_s: f64) -> f64 {
    let raw = duration_s / 8.0;
    [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0]
        .into_iter()
        .find(|step| *step >= raw)
        .unwrap_or(14_400.0)
}

/// The timeline of one run as an SVG document.
pub fn svg(scenario: &Scenario, record: &RunRecord) -> String {
    const WIDTH: f64 = 960.0;
    const LEFT: f64 = 120.0;
    const RIGHT: f64 = 20.0;
    const ROUTE_TOP: f64 = 60.0;
    const ROUTE_HEIGHT: f64 = 22.0;
    const ROW_HEIGHT: f64 = 80.0;
    let plot = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + plot * (t / record.duration_s).clamp(0.0, 1.0);
    let rows_top = ROUTE_TOP + ROUTE_HEIGHT + 20.0;
    let height = rows_top + ROW_HEIGHT * record.links.len() as f64 + 70.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let verdict = if record.all_met() { "expectations met" } else { "EXPECTATIONS NOT MET" };
    let _ = writeln!(
        out,
        r#"<text x="10" y="20" font-size="15" font-weight="bold">{} ({} engine, seed {}): {verdict}</text>"#,
        escape(&record.scenario),
        escape(&record.engine),
        record.seed
    );
    let _ = writeln!(
        out,
        r##"<text x="10" y="38" fill="#444">{}</text>"##,
        escape(&scenario.description)
    );

    // Which link carried the route, as coloured segments.
    let _ = writeln!(out, r#"<text x="10" y="{}">route on</text>"#, ROUTE_TOP + 15.0);
    let changes = &record.route_changes;
    for (i, change) in changes.iter().enumerate() {
        let start = change.t_ms as f64 / 1000.0;
        let end = changes.get(i + 1).map_or(record.duration_s, |c| c.t_ms as f64 / 1000.0);
        let index = record.links.iter().position(|l| *l == change.to).unwrap_or(0);
        let (x0, x1) = (x(start), x(end));
        let _ = writeln!(
            out,
            r#"<rect x="{x0:.1}" y="{ROUTE_TOP}" width="{:.1}" height="{ROUTE_HEIGHT}" fill="{}"/>"#,
            (x1 - x0).max(0.5),
            PALETTE[index % PALETTE.len()]
        );
        if x1 - x0 > 40.0 {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{}" fill="white" font-weight="bold">{}</text>"#,
                x0 + 4.0,
                ROUTE_TOP + 15.0,
                escape(&change.to)
            );
        }
    }

    // One row per link: bad periods shaded, the score as a line.
    let score_max = record
        .samples
        .iter()
        .flat_map(|s| s.links.iter().filter_map(|l| l.score))
        .fold(50.0_f64, f64::max)
        .min(2_000.0);
    for (row, name) in record.links.iter().enumerate() {
        let top = rows_top + ROW_HEIGHT * row as f64;
        let bottom = top + ROW_HEIGHT - 16.0;
        let colour = PALETTE[row % PALETTE.len()];
        let _ = writeln!(
            out,
            r#"<text x="10" y="{:.1}" fill="{colour}" font-weight="bold">{}</text>"#,
            top + 14.0,
            escape(name)
        );
        let _ = writeln!(
            out,
            r##"<text x="10" y="{:.1}" fill="#666">score (log) 0–{score_max:.0}</text>"##,
            top + 30.0
        );
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{plot:.1}" height="{:.1}" fill="#f7f7f7" stroke="#ddd"/>"##,
            bottom - top
        );
        // Shaded spans, merged so a long outage is one rectangle.
        let mut span: Option<(f64, &str)> = None;
        for (i, sample) in record.samples.iter().enumerate() {
            let c = &sample.links[row].condition;
            let base = &scenario.links[row].base;
            let down = c.outage || !c.carrier_up;
            let degraded = !c.unreachable_targets.is_empty()
                || c.loss_percent > base.loss_percent
                || c.latency_ms > base.latency_ms
                || c.jitter_ms > base.jitter_ms;
            let fill = if down { Some("#f4a6a6") } else { degraded.then_some("#fde2b8") };
            let last = i + 1 == record.samples.len();
            if span.map(|(_, f)| f) != fill || last {
                if let Some((start, colour)) = span {
                    let end =
                        if last && fill == Some(colour) { record.duration_s } else { sample.t_s };
                    let _ = writeln!(
                        out,
                        r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{colour}"/>"#,
                        x(start),
                        x(end) - x(start),
                        bottom - top
                    );
                }
                span = fill.map(|f| (sample.t_s, f));
            }
        }
        let mut points = String::new();
        for sample in &record.samples {
            match sample.links[row].score {
                Some(score) => {
                    // Log scale: 10 against 100 points stays visible beside 1000.
                    let share =
                        (1.0 + score.clamp(0.0, score_max)).log10() / (1.0 + score_max).log10();
                    let y = bottom - (bottom - top - 4.0) * share;
                    let _ = write!(points, "{:.1},{y:.1} ", x(sample.t_s));
                }
                None if !points.is_empty() => {
                    let _ = writeln!(
                        out,
                        r#"<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#
                    );
                    points.clear();
                }
                None => {}
            }
        }
        if !points.is_empty() {
            let _ = writeln!(
                out,
                r#"<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#
            );
        }
    }

    // Route changes across every row, and the time axis.
    let axis = rows_top + ROW_HEIGHT * record.links.len() as f64;
    for change in changes.iter().filter(|c| c.from.is_some()) {
        let cx = x(change.t_ms as f64 / 1000.0);
        let _ = writeln!(
            out,
            r#"<line x1="{cx:.1}" y1="{ROUTE_TOP}" x2="{cx:.1}" y2="{axis:.1}" stroke="black" stroke-dasharray="3,3"/>"#
        );
    }
    let step = tick_step(record.duration_s);
    let mut t = 0.0;
    while t <= record.duration_s + 1e-9 {
        let tx = x(t);
        let _ = writeln!(
            out,
            r##"<line x1="{tx:.1}" y1="{axis:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#333"/>"##,
            axis + 5.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{tx:.1}" y="{:.1}" text-anchor="middle">{t:.0} s</text>"#,
            axis + 18.0
        );
        t += step;
    }
    let legend = "red: link down or all traffic dropped; orange: degraded; dashed: route change";
    let _ = writeln!(out, r##"<text x="10" y="{:.1}" fill="#444">{legend}</text>"##, axis + 40.0);
    out.push_str("</svg>\n");
    out
}
