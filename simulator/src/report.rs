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

const WIDTH: f64 = 960.0;
const LEFT: f64 = 120.0;
const RIGHT: f64 = 20.0;
const ROUTE_TOP: f64 = 60.0;
const ROUTE_HEIGHT: f64 = 22.0;
const ROW_HEIGHT: f64 = 80.0;
const ROWS_TOP: f64 = ROUTE_TOP + ROUTE_HEIGHT + 20.0;
const PLOT: f64 = WIDTH - LEFT - RIGHT;

/// One run's picture being drawn: the scale of its time axis and the SVG so far.
struct Picture<'a> {
    scenario: &'a Scenario,
    record: &'a RunRecord,
    out: String,
}

impl Picture<'_> {
    fn x(&self, t: f64) -> f64 {
        LEFT + PLOT * (t / self.record.duration_s).clamp(0.0, 1.0)
    }

    fn header(&mut self) {
        let record = self.record;
        let height = ROWS_TOP + ROW_HEIGHT * record.links.len() as f64 + 70.0;
        let _ = writeln!(
            self.out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(self.out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let verdict = if record.all_met() { "expectations met" } else { "EXPECTATIONS NOT MET" };
        let _ = writeln!(
            self.out,
            r#"<text x="10" y="20" font-size="15" font-weight="bold">{} ({} engine, seed {}): {verdict}</text>"#,
            escape(&record.scenario),
            escape(&record.engine),
            record.seed
        );
        let _ = writeln!(
            self.out,
            r##"<text x="10" y="38" fill="#444">{}</text>"##,
            escape(&self.scenario.description)
        );
    }

    /// Which link carried the route, as coloured segments.
    fn route_band(&mut self) {
        let _ = writeln!(self.out, r#"<text x="10" y="{}">route on</text>"#, ROUTE_TOP + 15.0);
        let changes = &self.record.route_changes;
        for (i, change) in changes.iter().enumerate() {
            let start = change.t_ms as f64 / 1000.0;
            let end = changes.get(i + 1).map_or(self.record.duration_s, |c| c.t_ms as f64 / 1000.0);
            let index = self.record.links.iter().position(|l| *l == change.to).unwrap_or(0);
            let (x0, x1) = (self.x(start), self.x(end));
            let _ = writeln!(
                self.out,
                r#"<rect x="{x0:.1}" y="{ROUTE_TOP}" width="{:.1}" height="{ROUTE_HEIGHT}" fill="{}"/>"#,
                (x1 - x0).max(0.5),
                PALETTE[index % PALETTE.len()]
            );
            if x1 - x0 > 40.0 {
                let _ = writeln!(
                    self.out,
                    r#"<text x="{:.1}" y="{}" fill="white" font-weight="bold">{}</text>"#,
                    x0 + 4.0,
                    ROUTE_TOP + 15.0,
                    escape(&change.to)
                );
            }
        }
    }

    /// One link's row: its name, bad periods shaded, its score as a line on a log scale.
    fn link_row(&mut self, row: usize, score_max: f64) {
        let top = ROWS_TOP + ROW_HEIGHT * row as f64;
        let bottom = top + ROW_HEIGHT - 16.0;
        let colour = PALETTE[row % PALETTE.len()];
        let _ = writeln!(
            self.out,
            r#"<text x="10" y="{:.1}" fill="{colour}" font-weight="bold">{}</text>"#,
            top + 14.0,
            escape(&self.record.links[row])
        );
        let _ = writeln!(
            self.out,
            r##"<text x="10" y="{:.1}" fill="#666">score (log) 0–{score_max:.0}</text>"##,
            top + 30.0
        );
        let _ = writeln!(
            self.out,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{PLOT:.1}" height="{:.1}" fill="#f7f7f7" stroke="#ddd"/>"##,
            bottom - top
        );
        self.shade_bad_spans(row, top, bottom);
        self.score_line(row, top, bottom, score_max, colour);
    }

    /// Shaded spans where the link was down or degraded, merged so an outage is one rectangle.
    fn shade_bad_spans(&mut self, row: usize, top: f64, bottom: f64) {
        let record = self.record;
        let base = &self.scenario.links[row].base;
        let mut span: Option<(f64, &str)> = None;
        for (i, sample) in record.samples.iter().enumerate() {
            let c = &sample.links[row].condition;
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
                    let (x0, x1) = (self.x(start), self.x(end));
                    let _ = writeln!(
                        self.out,
                        r#"<rect x="{x0:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{colour}"/>"#,
                        x1 - x0,
                        bottom - top
                    );
                }
                span = fill.map(|f| (sample.t_s, f));
            }
        }
    }

    fn score_line(&mut self, row: usize, top: f64, bottom: f64, score_max: f64, colour: &str) {
        let mut points = String::new();
        let mut lines = Vec::new();
        for sample in &self.record.samples {
            match sample.links[row].score {
                Some(score) => {
                    // Log scale: 10 against 100 points stays visible beside 1000.
                    let share =
                        (1.0 + score.clamp(0.0, score_max)).log10() / (1.0 + score_max).log10();
                    let y = bottom - (bottom - top - 4.0) * share;
                    let _ = write!(points, "{:.1},{y:.1} ", self.x(sample.t_s));
                }
                None if !points.is_empty() => lines.push(std::mem::take(&mut points)),
                None => {}
            }
        }
        lines.extend((!points.is_empty()).then_some(points));
        for points in lines {
            let _ = writeln!(
                self.out,
                r#"<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#
            );
        }
    }

    /// Route changes across every row, the time axis and the legend.
    fn switches_and_axis(&mut self) {
        let record = self.record;
        let axis = ROWS_TOP + ROW_HEIGHT * record.links.len() as f64;
        for change in record.route_changes.iter().filter(|c| c.from.is_some()) {
            let cx = self.x(change.t_ms as f64 / 1000.0);
            let _ = writeln!(
                self.out,
                r#"<line x1="{cx:.1}" y1="{ROUTE_TOP}" x2="{cx:.1}" y2="{axis:.1}" stroke="black" stroke-dasharray="3,3"/>"#
            );
        }
        let step = tick_step(record.duration_s);
        let mut t = 0.0;
        while t <= record.duration_s + 1e-9 {
            let tx = self.x(t);
            let _ = writeln!(
                self.out,
                r##"<line x1="{tx:.1}" y1="{axis:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#333"/>"##,
                axis + 5.0
            );
            let _ = writeln!(
                self.out,
                r#"<text x="{tx:.1}" y="{:.1}" text-anchor="middle">{t:.0} s</text>"#,
                axis + 18.0
            );
            t += step;
        }
        let legend =
            "red: link down or all traffic dropped; orange: degraded; dashed: route change";
        let _ = writeln!(
            self.out,
            r##"<text x="10" y="{:.1}" fill="#444">{legend}</text>"##,
            axis + 40.0
        );
    }
}

/// The timeline of one run as an SVG document.
pub fn svg(scenario: &Scenario, record: &RunRecord) -> String {
    let mut picture = Picture { scenario, record, out: String::new() };
    picture.header();
    picture.route_band();
    let score_max = record
        .samples
        .iter()
        .flat_map(|s| s.links.iter().filter_map(|l| l.score))
        .fold(50.0_f64, f64::max)
        .min(2_000.0);
    for row in 0..record.links.len() {
        picture.link_row(row, score_max);
    }
    picture.switches_and_axis();
    picture.out.push_str("</svg>\n");
    picture.out
}
