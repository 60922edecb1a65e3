//! The status document: what `wanmon status --json`, the web API, LuCI and the simulator read.
//! One set of types, written as JSON (by hand: no serde on the router) and read back from it; a
//! test writes every field and reads it back, so the writer and the reader cannot drift apart.
//! Figures are integer thousandths (12.3 ms is 12300) and appear in the JSON with one decimal.

use crate::json::{self, Node, Value, escape_into};

/// Why a status document could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusError {
    Syntax(json::SyntaxError),
    /// A key is missing: its path, such as `status.links[0].state`.
    Missing(String),
    Wrong {
        path: String,
        expected: &'static str,
    },
}

impl crate::text::Show for StatusError {
    fn show(&self, out: &mut String) {
        match self {
            StatusError::Syntax(e) => put!(out, "status: ", e),
            StatusError::Missing(path) => put!(out, path, ": missing"),
            StatusError::Wrong { path, expected } => put!(out, path, ": expected ", expected),
        }
    }
}

crate::display_by_show!(StatusError);

impl std::error::Error for StatusError {}

/// The whole document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub version: String,
    pub uptime_s: u64,
    /// The link forced by the operator; `None` in automatic mode.
    pub forced: Option<String>,
    /// The link the default route is on.
    pub current: Option<String>,
    /// The default routes wanmon wrote, one per address family.
    pub routes: Vec<RouteStatus>,
    /// Connection-tracking entries of LAN flows through a link the route left (NATed to it, or
    /// routed from its IPv6 prefixes), removed since the start (`conntrack_cleanup`).
    pub flows_cleared: u64,
    pub links: Vec<LinkStatus>,
    /// Newest first.
    pub decisions: Vec<DecisionStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteStatus {
    pub device: String,
    pub gateway: Option<String>,
}

/// Latency, jitter and loss: thousandths of a ms, of a ms and of a percent.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub latency: i64,
    pub jitter: i64,
    pub loss: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStatus {
    pub name: String,
    pub label: String,
    pub device: String,
    /// `pending`, `up`, `dead` or `disabled`.
    pub state: String,
    pub since_s: u64,
    /// The default route is on this link.
    pub current: bool,
    /// Why it is dead.
    pub cause: Option<String>,
    /// Why its device cannot carry traffic.
    pub problem: Option<String>,
    /// What the router's setup says about it (on OpenWrt: no masquerading for its interface).
    pub warning: Option<String>,
    pub figures: Option<Figures>,
    /// Thousandths of a point.
    pub score: Option<i64>,
    pub raw_score: Option<i64>,
    /// Thousandths of a second since the newest reply.
    pub last_reply: Option<i64>,
    pub targets: Vec<TargetStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetStatus {
    pub address: String,
    pub reachable: bool,
    pub figures: Option<Figures>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecisionStatus {
    pub age_s: u64,
    pub from: Option<String>,
    pub to: String,
    /// The decision's log line.
    pub reason: String,
}

/// `value / 1000` with one decimal, from integer thousandths: 12345 → "12.3".
pub fn decimal(value: i64) -> String {
    let mut out = String::new();
    crate::text::push_one_decimal(&mut out, value);
    out
}

/// The inverse of [`decimal`] (and of any JSON number): thousandths, or `None` if not a number.
fn thousandths(text: &str) -> Option<i64> {
    let value: f64 = text.parse().ok()?;
    // No figure of the status comes near a trillion; beyond that it is not a status.
    (value.abs() <= 1e12).then(|| (value * 1000.0).round() as i64)
}

fn string(out: &mut String, text: &str) {
    out.push('"');
    escape_into(out, text);
    out.push('"');
}

fn optional_string(out: &mut String, text: Option<&str>) {
    match text {
        Some(text) => string(out, text),
        None => out.push_str("null"),
    }
}

fn optional_decimal(out: &mut String, value: Option<i64>) {
    match value {
        Some(value) => out.push_str(&decimal(value)),
        None => out.push_str("null"),
    }
}

fn figures_json(out: &mut String, figures: Option<Figures>) {
    out.push_str(r#""latency_ms":"#);
    optional_decimal(out, figures.map(|f| f.latency));
    out.push_str(r#","jitter_ms":"#);
    optional_decimal(out, figures.map(|f| f.jitter));
    out.push_str(r#","loss_percent":"#);
    optional_decimal(out, figures.map(|f| f.loss));
}

/// `[a,b,c]` with each item written by `item`.
fn array<T>(out: &mut String, items: &[T], mut item: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (i, each) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        item(out, each);
    }
    out.push(']');
}

impl LinkStatus {
    fn write_json(&self, out: &mut String) {
        out.push_str(r#"{"name":"#);
        string(out, &self.name);
        out.push_str(r#","label":"#);
        string(out, &self.label);
        out.push_str(r#","device":"#);
        string(out, &self.device);
        out.push_str(r#","state":"#);
        string(out, &self.state);
        put!(out, r#","since_s":"#, self.since_s, r#","current":"#, self.current, r#","cause":"#);
        optional_string(out, self.cause.as_deref());
        out.push_str(r#","problem":"#);
        optional_string(out, self.problem.as_deref());
        out.push_str(r#","warning":"#);
        optional_string(out, self.warning.as_deref());
        out.push(',');
        figures_json(out, self.figures);
        out.push_str(r#","score":"#);
        optional_decimal(out, self.score);
        out.push_str(r#","raw_score":"#);
        optional_decimal(out, self.raw_score);
        out.push_str(r#","last_reply_s":"#);
        optional_decimal(out, self.last_reply);
        out.push_str(r#","targets":"#);
        array(out, &self.targets, |out, target| {
            out.push_str(r#"{"address":"#);
            string(out, &target.address);
            put!(out, r#","reachable":"#, target.reachable, r#","#);
            figures_json(out, target.figures);
            out.push('}');
        });
        out.push('}');
    }
}

impl Status {
    /// The document as JSON; every string escaped for HTML too.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str(r#"{"version":"#);
        string(&mut out, &self.version);
        let mode = if self.forced.is_some() { "forced" } else { "auto" };
        put!(&mut out, r#","uptime_s":"#, self.uptime_s, r#","mode":""#, mode, r#"","forced":"#);
        optional_string(&mut out, self.forced.as_deref());
        out.push_str(r#","current":"#);
        optional_string(&mut out, self.current.as_deref());
        out.push_str(r#","routes":"#);
        array(&mut out, &self.routes, |out, route| {
            out.push_str(r#"{"device":"#);
            string(out, &route.device);
            out.push_str(r#","gateway":"#);
            optional_string(out, route.gateway.as_deref());
            out.push('}');
        });
        put!(&mut out, r#","flows_cleared":"#, self.flows_cleared);
        out.push_str(r#","links":"#);
        array(&mut out, &self.links, |out, link| link.write_json(out));
        out.push_str(r#","decisions":"#);
        array(&mut out, &self.decisions, |out, decision| {
            put!(out, r#"{"age_s":"#, decision.age_s, r#","from":"#);
            optional_string(out, decision.from.as_deref());
            out.push_str(r#","to":"#);
            string(out, &decision.to);
            out.push_str(r#","reason":"#);
            string(out, &decision.reason);
            out.push('}');
        });
        out.push('}');
        out
    }

    /// The document for a terminal (`wanmon status`).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mode = self.forced.as_ref().map_or("auto".to_string(), |l| text!("forced to ", l));
        let mut route = String::new();
        for r in &self.routes {
            let gateway = r.gateway.as_ref().map_or(String::new(), |g| text!("via ", g, " "));
            let separator = if route.is_empty() { "" } else { "; " };
            put!(&mut route, separator, "default ", gateway, "dev ", r.device);
        }
        if route.is_empty() {
            route.push_str("none written (the system's own routes apply)");
        }
        put!(&mut out, "wanmon ", self.version, ", up ", self.uptime_s, " s, mode ", mode, "\n");
        put!(&mut out, "route: ", route, "\n");
        if self.flows_cleared > 0 {
            let cleared = self.flows_cleared;
            put!(&mut out, "flows moved off links the route left: ", cleared, "\n");
        }
        out.push_str("link            state       since   latency   jitter     loss    score\n");
        for link in &self.links {
            let shown = |value: Option<i64>| value.map_or_else(|| "-".to_string(), decimal);
            let f = link.figures;
            let columns = [
                (if link.current { "*" } else { " " }, 0),
                (&link.name, -14),
                (" ", 0),
                (&link.state, -8),
                (" ", 0),
                (&text!(link.since_s), 6),
                (" s ", 0),
                (&shown(f.map(|f| f.latency)), 6),
                (" ms ", 0),
                (&shown(f.map(|f| f.jitter)), 5),
                (" ms ", 0),
                (&shown(f.map(|f| f.loss)), 6),
                (" % ", 0),
                (&shown(link.score), 8),
                ("\n", 0),
            ];
            for (text, width) in columns {
                crate::text::push_padded(&mut out, text, width);
            }
            for note in [&link.cause, &link.problem, &link.warning].into_iter().flatten() {
                put!(&mut out, "  ", note, "\n");
            }
        }
        put!(&mut out, "recent decisions:", "\n");
        for decision in self.decisions.iter().take(10) {
            put!(&mut out, "  ", decision.age_s, " s ago: ", decision.reason, "\n");
        }
        out
    }

    /// Reads a document written by [`Status::to_json`]; the error names what is missing.
    pub fn from_json(text: &str) -> Result<Status, StatusError> {
        let root = json::parse(text).map_err(StatusError::Syntax)?;
        let top = Fields::of(&root, "status")?;
        Ok(Status {
            version: top.string("version")?,
            uptime_s: top.whole("uptime_s")?,
            forced: top.optional_string("forced")?,
            current: top.optional_string("current")?,
            routes: top.list("routes", |route| {
                Ok(RouteStatus {
                    device: route.string("device")?,
                    gateway: route.optional_string("gateway")?,
                })
            })?,
            flows_cleared: top.whole("flows_cleared")?,
            links: top.list("links", read_link)?,
            decisions: top.list("decisions", |d| {
                Ok(DecisionStatus {
                    age_s: d.whole("age_s")?,
                    from: d.optional_string("from")?,
                    to: d.string("to")?,
                    reason: d.string("reason")?,
                })
            })?,
        })
    }
}

fn read_link(link: Fields) -> Result<LinkStatus, StatusError> {
    Ok(LinkStatus {
        name: link.string("name")?,
        label: link.string("label")?,
        device: link.string("device")?,
        state: link.string("state")?,
        since_s: link.whole("since_s")?,
        current: link.boolean("current")?,
        cause: link.optional_string("cause")?,
        problem: link.optional_string("problem")?,
        warning: link.optional_string("warning")?,
        figures: link.figures()?,
        score: link.optional_number("score")?,
        raw_score: link.optional_number("raw_score")?,
        last_reply: link.optional_number("last_reply_s")?,
        targets: link.list("targets", |target| {
            Ok(TargetStatus {
                address: target.string("address")?,
                reachable: target.boolean("reachable")?,
                figures: target.figures()?,
            })
        })?,
    })
}

/// An object of the document being read, with where it is for the messages.
struct Fields<'a> {
    path: String,
    members: &'a [(String, Node)],
}

impl<'a> Fields<'a> {
    fn of(node: &'a Node, path: &str) -> Result<Fields<'a>, StatusError> {
        match &node.value {
            Value::Object(members) => Ok(Fields { path: path.to_string(), members }),
            _ => Err(StatusError::Wrong { path: path.to_string(), expected: "an object" }),
        }
    }

    fn get(&self, key: &str) -> Result<&'a Value, StatusError> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, node)| &node.value)
            .ok_or_else(|| StatusError::Missing(text!(self.path, ".", key)))
    }

    fn wrong(&self, key: &str, expected: &'static str) -> StatusError {
        StatusError::Wrong { path: text!(self.path, ".", key), expected }
    }

    fn string(&self, key: &str) -> Result<String, StatusError> {
        match self.get(key)? {
            Value::String(text) => Ok(text.clone()),
            _ => Err(self.wrong(key, "a string")),
        }
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>, StatusError> {
        match self.get(key)? {
            Value::Null => Ok(None),
            _ => self.string(key).map(Some),
        }
    }

    fn boolean(&self, key: &str) -> Result<bool, StatusError> {
        match self.get(key)? {
            Value::Bool(value) => Ok(*value),
            _ => Err(self.wrong(key, "true or false")),
        }
    }

    fn whole(&self, key: &str) -> Result<u64, StatusError> {
        match self.get(key)? {
            Value::Number(text) => text.parse().map_err(|_| self.wrong(key, "a whole number")),
            _ => Err(self.wrong(key, "a whole number")),
        }
    }

    fn optional_number(&self, key: &str) -> Result<Option<i64>, StatusError> {
        match self.get(key)? {
            Value::Null => Ok(None),
            Value::Number(text) => thousandths(text).map(Some).ok_or(self.wrong(key, "a number")),
            _ => Err(self.wrong(key, "a number or null")),
        }
    }

    fn figures(&self) -> Result<Option<Figures>, StatusError> {
        let latency = self.optional_number("latency_ms")?;
        let jitter = self.optional_number("jitter_ms")?;
        let loss = self.optional_number("loss_percent")?;
        Ok(match (latency, jitter, loss) {
            (Some(latency), Some(jitter), Some(loss)) => Some(Figures { latency, jitter, loss }),
            _ => None,
        })
    }

    fn list<T>(
        &self,
        key: &str,
        mut item: impl FnMut(Fields) -> Result<T, StatusError>,
    ) -> Result<Vec<T>, StatusError> {
        let Value::Array(items) = self.get(key)? else {
            return Err(self.wrong(key, "an array"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, node)| item(Fields::of(node, &text!(self.path, ".", key, "[", i, "]"))?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document with every field set, and every optional one both ways.
    fn full() -> Status {
        let figures = Some(Figures { latency: 12_300, jitter: 1_500, loss: 20_000 });
        Status {
            version: "1.0".into(),
            uptime_s: 5,
            forced: Some("wwan".into()),
            current: Some("wan".into()),
            routes: vec![
                RouteStatus { device: "eth0.2".into(), gateway: Some("192.0.2.1".into()) },
                RouteStatus { device: "eth0.2".into(), gateway: None },
            ],
            flows_cleared: 3,
            links: vec![
                LinkStatus {
                    name: "wan".into(),
                    label: "<img src=x onerror=alert(1)>".into(),
                    device: "eth0.2".into(),
                    state: "up".into(),
                    since_s: 4,
                    current: true,
                    cause: None,
                    problem: None,
                    warning: None,
                    figures,
                    score: Some(85_200),
                    raw_score: Some(-1_500),
                    last_reply: Some(300),
                    targets: vec![TargetStatus {
                        address: "192.0.2.1".into(),
                        reachable: true,
                        figures,
                    }],
                },
                LinkStatus {
                    name: "wwan".into(),
                    state: "dead".into(),
                    cause: Some("link down".into()),
                    problem: Some("device wlan0 does not exist (yet)".into()),
                    warning: Some("interface wwan is in no firewall zone with masquerading".into()),
                    ..LinkStatus::default()
                },
            ],
            decisions: vec![DecisionStatus {
                age_s: 3,
                from: None,
                to: "wan".into(),
                reason: "none -> wan: first choice".into(),
            }],
        }
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let status = full();
        let text = status.to_json();
        assert_eq!(Status::from_json(&text), Ok(status));
        let empty = Status::default();
        assert_eq!(Status::from_json(&empty.to_json()), Ok(empty));
    }

    #[test]
    fn numbers_out_of_any_range_are_refused_not_overflowed() {
        // Found by `cargo xtask fuzz` (status): a score of 1e300 overflowed on the way back.
        let text = full().to_json().replace("\"score\":85.2", "\"score\":1e300");
        assert!(text.contains("1e300"), "{text}");
        assert!(Status::from_json(&text).is_err());
        assert_eq!(decimal(i64::MAX), "9223372036854775.8");
        assert_eq!(decimal(i64::MIN), "-9223372036854775.8");
    }

    #[test]
    fn strings_are_escaped_for_html_and_numbers_have_one_decimal() {
        let text = full().to_json();
        assert!(!text.contains("<img"), "markup must be escaped: {text}");
        assert!(text.contains(r#""latency_ms":12.3"#), "{text}");
        assert!(text.contains(r#""mode":"forced","forced":"wwan""#), "{text}");
        assert_eq!(decimal(12_345), "12.3");
        assert_eq!(decimal(12_350), "12.4");
        assert_eq!(decimal(0), "0.0");
        assert_eq!(decimal(-1_250), "-1.3");
    }

    #[test]
    fn a_broken_document_names_what_is_wrong() {
        let read = |text: &str| Status::from_json(text).unwrap_err().to_string();
        assert_eq!(read(r#"{"version":"1"}"#), "status.uptime_s: missing");
        let text = full().to_json().replace(r#""reachable":true"#, r#""reachable":1"#);
        assert_eq!(read(&text), "status.links[0].targets[0].reachable: expected true or false");
        assert_eq!(read("[]"), "status: expected an object");
        assert!(read("{").starts_with("status: line 1"));
    }

    #[test]
    fn the_text_shows_links_routes_and_notes() {
        let text = full().to_text();
        assert!(text.contains("mode forced to wwan"), "{text}");
        assert!(text.contains("route: default via 192.0.2.1 dev eth0.2"), "{text}");
        assert!(text.contains("*wan"), "{text}");
        assert!(text.contains("12.3 ms"), "{text}");
        assert!(text.contains("  device wlan0 does not exist (yet)"), "{text}");
        // The columns as `format!` pads them.
        let head = format!(
            "{:<15} {:<8} {:>8} {:>9} {:>8} {:>8} {:>8}\n",
            "link", "state", "since", "latency", "jitter", "loss", "score"
        );
        let wan = format!(
            "*{:<14} {:<8} {:>6} s {:>6} ms {:>5} ms {:>6} % {:>8}\n",
            "wan", "up", 4, "12.3", "1.5", "20.0", "85.2"
        );
        let wwan = format!(
            " {:<14} {:<8} {:>6} s {:>6} ms {:>5} ms {:>6} % {:>8}\n",
            "wwan", "dead", 0, "-", "-", "-", "-"
        );
        assert!(text.contains(&(head + &wan)), "{text}");
        assert!(text.contains(&wwan), "{text}");
        let quiet = Status::default().to_text();
        assert!(quiet.contains("route: none written"), "{quiet}");
    }
}
