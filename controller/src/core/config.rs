//! The config file model: parsing, defaults and validation that reports every mistake at once.
//!
//! Every key, its unit, range and default is documented in `docs/config.md`; a test keeps the two
//! in step. All values are whole numbers so the router needs no float parsing or formatting.

use super::limits::{MAX_LINKS, MAX_TARGETS};
use super::name::LinkName;
use crate::address::Shown;
use crate::json::{self, Node, Value};
use crate::text::{Show, comma_separated, decimal, split_port, whole_number};
use std::net::{IpAddr, SocketAddr};

/// Defaults, in the units of the config file.
pub mod defaults {
    use std::net::{IpAddr, Ipv4Addr};
    pub const TARGETS: [IpAddr; 2] =
        [IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)), IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8))];
    pub const BIAS: i64 = 0;
    pub const INTERVAL_MS: u64 = 250;
    pub const STANDBY_INTERVAL_MS: u64 = 15_000;
    pub const TIMEOUT_MS: u64 = 1000;
    pub const SMOOTHING_MS: u64 = 4000;
    pub const HYSTERESIS: u64 = 20;
    pub const SWITCH_HOLD_MS: u64 = 1000;
    pub const FAILBACK_HOLD_MS: u64 = 30_000;
    pub const DEAD_AFTER_MS: u64 = 850;
    /// In hundredths: 1.
    pub const LOSS_DIVISOR_CENTI: u64 = 100;
    pub const WINDOW: u64 = 40;
    pub const WEB_LISTEN: &str = "br-lan:8080";
}

/// Keys of the top-level object, in documentation order.
pub const GLOBAL_KEYS: &[&str] = &[
    "links",
    "targets",
    "smoothing_ms",
    "hysteresis",
    "switch_hold_ms",
    "failback_hold_ms",
    "dead_after_ms",
    "loss_divisor",
    "window",
    "forced_link_dies",
    "conntrack_cleanup",
    "web",
    "hook",
    "require_masquerade",
];
/// Keys of one entry of `links`.
pub const LINK_KEYS: &[&str] = &[
    "name",
    "label",
    "device",
    "interface",
    "gateway",
    "targets",
    "bias",
    "interval_ms",
    "standby_interval_ms",
    "timeout_ms",
    "dead_after_ms",
    "enabled",
    "warning",
];
/// Keys of the `web` object.
pub const WEB_KEYS: &[&str] = &["listen", "token", "hosts"];

const MAX_LABEL_CHARS: usize = 64;
const MAX_WARNING_CHARS: usize = 512;
/// The token in docs/config.md's example, refused so that nobody runs with a published one.
pub const PLACEHOLDER_TOKEN: &str = "change-me-to-a-long-random-string";

/// What the controller does when the link forced by the operator dies.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ForcedLinkDies {
    /// Keep the route on the forced link anyway: the operator said so.
    Stay,
    /// Let the automatic rules choose while the forced link is dead; return to it when it lives.
    Fallback,
}

/// One WAN link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    pub name: LinkName,
    /// Free text shown on the web page; defaults to the name.
    pub label: String,
    pub device: String,
    /// Next hop of the default route; `None` means: find it in the kernel's routes for the device.
    pub gateway: Option<IpAddr>,
    pub targets: Vec<IpAddr>,
    /// Added to the score, in ms: lower is preferred.
    pub bias: i64,
    /// How often each target is probed while the link carries the route (or is dead, or no
    /// choice is made yet).
    pub interval_ms: u64,
    /// How often each target is probed while the link stands by healthy: rarely, so a metered
    /// backup costs almost nothing.
    pub standby_interval_ms: u64,
    /// A probe unanswered this long is lost.
    pub timeout_ms: u64,
    /// Silence after which the link is dead (with enough unanswered probes that random loss
    /// cannot explain it); defaults to the global `dead_after_ms`.
    pub dead_after_ms: u64,
    pub enabled: bool,
    /// Shown with the link in the status and on the page; on OpenWrt the init script writes why
    /// its LAN traffic would not be masqueraded, with the commands that fix it.
    pub warning: Option<String>,
}

/// Where the web page listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Address(SocketAddr),
    /// The addresses of a device (the LAN bridge), found at run time.
    Device {
        device: String,
        port: u16,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebConfig {
    /// `None`: no web server.
    pub listen: Option<Listen>,
    /// `None`: the page is read-only.
    pub token: Option<String>,
    /// Names the page answers to besides the router's addresses and host name.
    pub hosts: Vec<String>,
}

/// The whole config file, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub links: Vec<LinkConfig>,
    pub smoothing_ms: u64,
    pub hysteresis: u64,
    pub switch_hold_ms: u64,
    pub failback_hold_ms: u64,
    /// The default of every link's `dead_after_ms`.
    pub dead_after_ms: u64,
    /// In hundredths: 125 is 1.25.
    pub loss_divisor_centi: u64,
    /// Latency and jitter are measured over the last `window` probe intervals; loss over three
    /// times that.
    pub window: u64,
    pub forced_link_dies: ForcedLinkDies,
    /// After a switch, remove the connection-tracking entries of the LAN's flows through the link
    /// the route left, so flows that never go quiet move to the new link instead of being stuck on the old one.
    pub conntrack_cleanup: bool,
    pub web: WebConfig,
    /// Program and arguments run on every switch; never passed through a shell.
    pub hook: Option<Vec<String>>,
}

/// One mistake in a config file: where it is and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: u32,
    pub column: Option<u32>,
    /// Key path such as `links[1].interval_ms`; empty for syntax errors.
    pub path: String,
    pub message: String,
}

impl Show for ConfigError {
    /// `line 12: links[1].interval_ms: ...`, ready to be prefixed with `FILE:`.
    fn show(&self, out: &mut String) {
        put!(out, "line ", self.line);
        if let Some(column) = self.column {
            put!(out, " column ", column);
        }
        if !self.path.is_empty() {
            put!(out, ": ", self.path);
        }
        put!(out, ": ", self.message);
    }
}

crate::display_by_show!(ConfigError);

/// Whether a config without `links` is complete.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Links {
    /// The daemon runs on it: it needs its links.
    Required,
    /// A user's file on OpenWrt, checked before the init script fills the links in from the
    /// firewall zone `wan` (`/usr/lib/wanmon/resolve.uc`): none is fine.
    FromZoneIfMissing,
}

impl Config {
    /// Parses and validates a config file's text; on failure, every error found, in file order.
    pub fn from_json(text: &str) -> Result<Config, Vec<ConfigError>> {
        Config::from_json_with(text, Links::Required)
    }

    /// [`Config::from_json`], with `links` optional if `links` says so (then empty if missing).
    pub fn from_json_with(text: &str, links: Links) -> Result<Config, Vec<ConfigError>> {
        let root = json::parse(text).map_err(|e| {
            vec![ConfigError {
                line: e.line,
                column: Some(e.column),
                path: String::new(),
                message: text!("invalid JSON: ", e.message),
            }]
        })?;
        let mut checker = Checker { errors: Vec::new(), links };
        let config = checker.config(&root);
        if checker.errors.is_empty() {
            if let Some(config) = config {
                return Ok(config);
            }
        }
        Err(checker.errors)
    }
}

struct Checker {
    errors: Vec<ConfigError>,
    links: Links,
}

/// A link's probe timing, checked.
struct Timing {
    interval_ms: u64,
    standby_interval_ms: u64,
    timeout_ms: u64,
    dead_after_ms: u64,
}

/// `"1.25"` as 125; at most two decimals, no sign, no exponent.
fn parse_hundredths(text: &str) -> Option<u64> {
    let (whole, fraction) = crate::text::split_byte(text, b'.').unwrap_or((text, ""));
    let digits = whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit());
    if whole.is_empty() || fraction.len() > 2 || !digits {
        return None;
    }
    let cents = match fraction.len() {
        0 => 0,
        1 => decimal(fraction)? * 10,
        _ => decimal(fraction)?,
    };
    decimal(whole)?.checked_mul(100)?.checked_add(cents)
}

/// What a link takes from the global keys when it does not set its own.
struct LinkDefaults<'a> {
    targets: Option<&'a [IpAddr]>,
    dead_after_ms: u64,
}

/// An object's members with the keys the checker has read, to report the unknown rest.
struct Fields<'a> {
    path: String,
    members: &'a [(String, Node)],
    known: &'static [&'static str],
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Node> {
        debug_assert!(self.known.contains(&key), "{key} missing from the known keys");
        self.members.iter().find(|(k, _)| k == key).map(|(_, node)| node)
    }

    fn path(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { text!(self.path, ".", key) }
    }
}

impl Checker {
    /// Keeps the errors in line order, those of one line in the order found (a stable sort
    /// afterwards would bring a merge sort of its own into the router's binary).
    fn error(&mut self, line: u32, path: String, message: String) {
        let at = self.errors.partition_point(|e| e.line <= line);
        self.errors.insert(at, ConfigError { line, column: None, path, message });
    }

    fn wrong(&mut self, node: &Node, path: String, expected: &str) {
        self.error(node.line, path, text!("got ", node.shown(), ", expected ", expected));
    }

    /// Opens an object and reports its unknown keys, with the closest known key as a hint.
    fn object<'a>(
        &mut self,
        node: &'a Node,
        path: String,
        known: &'static [&'static str],
    ) -> Option<Fields<'a>> {
        let Value::Object(members) = &node.value else {
            self.wrong(node, path, "an object");
            return None;
        };
        for (key, value) in members {
            if !known.contains(&key.as_str()) {
                let hint = closest(key, known)
                    .map(|k| text!(" (did you mean \"", k, "\"?)"))
                    .unwrap_or_default();
                let key = json::shorten(key);
                let full = if path.is_empty() { key } else { text!(path, ".", key) };
                self.error(
                    value.line,
                    full,
                    text!("unknown key", hint, "; known keys: ", comma_separated(known)),
                );
            }
        }
        Some(Fields { path, members, known })
    }

    fn integer(
        &mut self,
        fields: &Fields,
        key: &str,
        default: i64,
        min: i64,
        max: i64,
        unit: &str,
    ) -> i64 {
        let Some(node) = fields.get(key) else {
            return default;
        };
        let value = match &node.value {
            Value::Number(text) => whole_number(text),
            _ => None,
        };
        match value {
            Some(value) if (min..=max).contains(&value) => value,
            _ => {
                let expected = text!("a whole number from ", min, " to ", max, unit);
                self.wrong(node, fields.path(key), &expected);
                default
            }
        }
    }

    fn unsigned(
        &mut self,
        fields: &Fields,
        key: &str,
        default: u64,
        min: u64,
        max: u64,
        unit: &str,
    ) -> u64 {
        self.integer(fields, key, default as i64, min as i64, max as i64, unit) as u64
    }

    /// A number with at most two decimals, from 0.01 to 1 000 000, in hundredths: integer
    /// parsing only, so the router needs no float.
    fn hundredths(&mut self, fields: &Fields, key: &str, default: u64) -> u64 {
        let Some(node) = fields.get(key) else {
            return default;
        };
        let parsed = match &node.value {
            Value::Number(text) => parse_hundredths(text),
            _ => None,
        };
        match parsed.filter(|v| (1..=100_000_000).contains(v)) {
            Some(value) => value,
            None => {
                let expected = "a number from 0.01 to 1000000 with at most two decimals";
                self.wrong(node, fields.path(key), expected);
                default
            }
        }
    }

    /// A text of 1 to `max` characters; `None` when missing or wrong.
    fn text(&mut self, fields: &Fields, key: &str, max: usize) -> Option<String> {
        let text = self.string(fields, key)?;
        if text.is_empty() || crate::text::char_count(text) > max {
            let node = fields.get(key)?;
            self.wrong(node, fields.path(key), &text!("1 to ", max, " characters"));
            return None;
        }
        Some(text.to_string())
    }

    /// `true` or `false`.
    fn flag(&mut self, fields: &Fields, key: &str, default: bool) -> bool {
        let Some(node) = fields.get(key) else { return default };
        match node.value {
            Value::Bool(b) => b,
            _ => {
                self.wrong(node, fields.path(key), "true or false");
                default
            }
        }
    }

    fn string<'a>(&mut self, fields: &Fields<'a>, key: &str) -> Option<&'a str> {
        let node = fields.get(key)?;
        match &node.value {
            Value::String(text) => Some(text),
            _ => {
                self.wrong(node, fields.path(key), "a string");
                None
            }
        }
    }

    /// A unicast address of another host: what a probe target or a gateway can be.
    fn address(&mut self, node: &Node, path: String) -> Option<IpAddr> {
        match &node.value {
            Value::String(text) => match crate::address::ip(text) {
                Some(address) => match not_a_host(&address) {
                    None => Some(address),
                    Some(what) => {
                        let shown = Shown(address);
                        let message = text!(
                            "got ",
                            shown,
                            ", ",
                            what,
                            ": expected the address of a host elsewhere, such as \"192.0.2.1\""
                        );
                        self.error(node.line, path, message);
                        None
                    }
                },
                None => {
                    self.wrong(node, path, "an IPv4 or IPv6 address such as \"192.0.2.1\"");
                    None
                }
            },
            _ => {
                self.wrong(node, path, "an IPv4 or IPv6 address in a string");
                None
            }
        }
    }

    fn targets(&mut self, node: &Node, path: String) -> Option<Vec<IpAddr>> {
        let Value::Array(items) = &node.value else {
            self.wrong(node, path, "an array of IP addresses");
            return None;
        };
        if items.is_empty() || items.len() > MAX_TARGETS {
            self.error(
                node.line,
                path,
                text!("got ", items.len(), " targets, expected 1 to ", MAX_TARGETS),
            );
            return None;
        }
        let mut targets = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.address(item, text!(path, "[", i, "]")) {
                Some(address) if targets.contains(&address) => {
                    self.error(
                        item.line,
                        text!(path, "[", i, "]"),
                        text!("duplicate target ", Shown(address)),
                    );
                    ok = false;
                }
                Some(address) => targets.push(address),
                None => ok = false,
            }
        }
        ok.then_some(targets)
    }

    fn config(&mut self, root: &Node) -> Option<Config> {
        let fields = self.object(root, String::new(), GLOBAL_KEYS)?;
        let default_targets = match fields.get("targets") {
            Some(node) => self.targets(node, "targets".into()),
            None => Some(defaults::TARGETS.to_vec()),
        };
        let smoothing_ms =
            self.unsigned(&fields, "smoothing_ms", defaults::SMOOTHING_MS, 0, 600_000, " (ms)");
        let hysteresis = self.unsigned(
            &fields,
            "hysteresis",
            defaults::HYSTERESIS,
            0,
            100_000,
            " (score points)",
        );
        let switch_hold_ms = self.unsigned(
            &fields,
            "switch_hold_ms",
            defaults::SWITCH_HOLD_MS,
            0,
            3_600_000,
            " (ms)",
        );
        let failback_hold_ms = self.unsigned(
            &fields,
            "failback_hold_ms",
            defaults::FAILBACK_HOLD_MS,
            0,
            86_400_000,
            " (ms)",
        );
        let dead_after_ms = self.unsigned(
            &fields,
            "dead_after_ms",
            defaults::DEAD_AFTER_MS,
            200,
            3_600_000,
            " (ms)",
        );
        let loss_divisor_centi =
            self.hundredths(&fields, "loss_divisor", defaults::LOSS_DIVISOR_CENTI);
        let window =
            self.unsigned(&fields, "window", defaults::WINDOW, 3, 60, " (probe intervals)");
        let forced_link_dies = self.forced_link_dies(&fields);
        let conntrack_cleanup = self.on_off(&fields, "conntrack_cleanup", true);
        let web = self.web(&fields);
        // Read by the OpenWrt init script (resolve.uc), which disables such links itself.
        self.flag(&fields, "require_masquerade", false);
        let hook = self.hook(&fields);
        let link_defaults = LinkDefaults { targets: default_targets.as_deref(), dead_after_ms };
        let (links, complete) = match fields.get("links") {
            None if self.links == Links::FromZoneIfMissing => (Vec::new(), true),
            None => {
                let message =
                    "missing, expected an array of links (on OpenWrt, /etc/init.d/wanmon \
                               fills them in from the firewall zone wan)"
                        .into();
                self.error(root.line, "links".into(), message);
                (Vec::new(), false)
            }
            Some(node) => self.links(node, &link_defaults),
        };
        let config = Config {
            links,
            smoothing_ms,
            hysteresis,
            switch_hold_ms,
            failback_hold_ms,
            dead_after_ms,
            loss_divisor_centi,
            window,
            forced_link_dies,
            conntrack_cleanup,
            web,
            hook,
        };
        complete.then_some(config)
    }

    /// `"on"` or `"off"`.
    fn on_off(&mut self, fields: &Fields, key: &str, default: bool) -> bool {
        let Some(node) = fields.get(key) else { return default };
        match &node.value {
            Value::String(s) if s == "on" => true,
            Value::String(s) if s == "off" => false,
            _ => {
                self.wrong(node, fields.path(key), "\"on\" or \"off\"");
                default
            }
        }
    }

    fn forced_link_dies(&mut self, fields: &Fields) -> ForcedLinkDies {
        let Some(node) = fields.get("forced_link_dies") else { return ForcedLinkDies::Stay };
        match &node.value {
            Value::String(s) if s == "stay" => ForcedLinkDies::Stay,
            Value::String(s) if s == "fallback" => ForcedLinkDies::Fallback,
            _ => {
                self.wrong(node, "forced_link_dies".into(), "\"stay\" or \"fallback\"");
                ForcedLinkDies::Stay
            }
        }
    }

    /// The links, if all could be read; duplicates are reported even while a link has a mistake.
    fn links(&mut self, node: &Node, defaults: &LinkDefaults) -> (Vec<LinkConfig>, bool) {
        let Value::Array(items) = &node.value else {
            self.wrong(node, "links".into(), "an array of links");
            return (Vec::new(), false);
        };
        if items.is_empty() || items.len() > MAX_LINKS {
            let message = text!("got ", items.len(), " links, expected 1 to ", MAX_LINKS);
            self.error(node.line, "links".into(), message);
            return (Vec::new(), false);
        }
        self.duplicates(items, "name");
        self.duplicates(items, "device");
        self.duplicates(items, "interface");
        let mut links: Vec<LinkConfig> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(link) = self.link(item, text!("links[", i, "]"), defaults) {
                links.push(link);
            }
        }
        let complete = links.len() == items.len();
        if complete && !links.iter().any(|link| link.enabled) {
            let message = "no link is enabled, expected at least one".into();
            self.error(node.line, "links".into(), message);
        }
        (links, complete)
    }

    /// Reports a string value of `key` used by two links.
    fn duplicates(&mut self, items: &[Node], key: &str) {
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Value::Object(members) = &item.value else {
                continue;
            };
            let Some((_, node)) = members.iter().find(|(k, _)| k == key) else {
                continue;
            };
            let Value::String(text) = &node.value else {
                continue;
            };
            match seen.iter().find(|(t, _)| t == text) {
                Some((_, other)) => {
                    let message = text!(
                        "duplicate ",
                        key,
                        " \"",
                        text,
                        "\", already used by links[",
                        other,
                        "]"
                    );
                    self.error(node.line, text!("links[", i, "].", key), message);
                }
                None => seen.push((text, i)),
            }
        }
    }

    fn link(&mut self, node: &Node, path: String, defaults: &LinkDefaults) -> Option<LinkConfig> {
        let fields = self.object(node, path.clone(), LINK_KEYS)?;
        let name = self.link_name(node, &fields);
        let label = self.text(&fields, "label", MAX_LABEL_CHARS);
        let device = self.link_device(node, &fields);
        let gateway = match fields.get("gateway") {
            None => Some(None),
            Some(Node { value: Value::Null, .. }) => Some(None),
            Some(gateway_node) => self.address(gateway_node, fields.path("gateway")).map(Some),
        };
        let targets = match fields.get("targets") {
            Some(targets_node) => self.targets(targets_node, fields.path("targets")),
            None => defaults.targets.map(<[IpAddr]>::to_vec),
        };
        let bias = self.integer(&fields, "bias", defaults::BIAS, -1_000_000, 1_000_000, " (ms)");
        let timing = self.link_timing(&fields, defaults);
        let enabled = self.flag(&fields, "enabled", true);
        let warning = self.text(&fields, "warning", MAX_WARNING_CHARS);
        let name = name?;
        Some(LinkConfig {
            name,
            label: label.unwrap_or_else(|| text!(name)),
            device: device?,
            gateway: gateway?,
            targets: targets?,
            bias,
            interval_ms: timing.interval_ms,
            standby_interval_ms: timing.standby_interval_ms,
            timeout_ms: timing.timeout_ms,
            dead_after_ms: timing.dead_after_ms,
            enabled,
            warning,
        })
    }

    fn link_name(&mut self, node: &Node, fields: &Fields) -> Option<LinkName> {
        let Some(name_node) = fields.get("name") else {
            self.error(node.line, fields.path("name"), "missing, expected the link's name".into());
            return None;
        };
        let Value::String(text) = &name_node.value else {
            self.wrong(name_node, fields.path("name"), "a string");
            return None;
        };
        LinkName::new(text)
            .map_err(|expected| self.wrong(name_node, fields.path("name"), expected))
            .ok()
    }

    /// The link's device; an OpenWrt `interface` alone stands for it (on OpenWrt the init
    /// script writes netifd's device for it; elsewhere the interface is the device's name).
    fn link_device(&mut self, node: &Node, fields: &Fields) -> Option<String> {
        let interface = self.device_name(fields, "interface");
        if let Some(device) = self.device_name(fields, "device") {
            return device;
        }
        if let Some(interface) = interface {
            return interface;
        }
        let message =
            "missing, expected the network device, such as \"eth0.2\", or the OpenWrt interface"
                .into();
        self.error(node.line, fields.path("device"), message);
        None
    }

    /// The value of `key` if it is a valid device (or interface) name: `None` if missing,
    /// `Some(None)` after reporting a bad one.
    fn device_name(&mut self, fields: &Fields, key: &str) -> Option<Option<String>> {
        let node = fields.get(key)?;
        match &node.value {
            Value::String(text) if is_device_name(text) => Some(Some(text.clone())),
            _ => {
                let expected =
                    "a device name of 1 to 15 characters without '/', ':' or spaces, not \"lo\"";
                self.wrong(node, fields.path(key), expected);
                Some(None)
            }
        }
    }

    /// A link's probe intervals, timeout and dead-after. (A short dead-after cannot kill a
    /// healthy link between two probes: death also needs several unanswered probes.)
    fn link_timing(&mut self, fields: &Fields, defaults: &LinkDefaults) -> Timing {
        let interval_ms =
            self.unsigned(fields, "interval_ms", defaults::INTERVAL_MS, 100, 3_600_000, " (ms)");
        let standby_interval_ms = self.unsigned(
            fields,
            "standby_interval_ms",
            defaults::STANDBY_INTERVAL_MS.max(interval_ms),
            interval_ms,
            86_400_000,
            " (ms, at least interval_ms)",
        );
        let timeout_ms =
            self.unsigned(fields, "timeout_ms", defaults::TIMEOUT_MS, 10, 60_000, " (ms)");
        let dead_after_ms =
            self.unsigned(fields, "dead_after_ms", defaults.dead_after_ms, 200, 3_600_000, " (ms)");
        Timing { interval_ms, standby_interval_ms, timeout_ms, dead_after_ms }
    }

    fn web(&mut self, fields: &Fields) -> WebConfig {
        let mut web = WebConfig {
            listen: parse_listen(defaults::WEB_LISTEN),
            token: None,
            hosts: Vec::new(),
        };
        let Some(node) = fields.get("web") else {
            return web;
        };
        let Some(web_fields) = self.object(node, "web".into(), WEB_KEYS) else {
            return web;
        };
        if let Some(listen_node) = web_fields.get("listen") {
            match &listen_node.value {
                Value::Null => web.listen = None,
                Value::String(text) if parse_listen(text).is_some() => {
                    web.listen = parse_listen(text)
                }
                _ => self.wrong(
                    listen_node,
                    "web.listen".into(),
                    "\"ADDRESS:PORT\", \"[IPV6]:PORT\", \"DEVICE:PORT\" or null (no web page)",
                ),
            }
        }
        if let Some(hosts_node) = web_fields.get("hosts") {
            web.hosts = self.host_names(hosts_node);
        }
        if let Some(token_node) = web_fields.get("token") {
            match &token_node.value {
                Value::Null => {}
                Value::String(text) if text == PLACEHOLDER_TOKEN => self.error(
                    token_node.line,
                    "web.token".into(),
                    "the documentation's example: set a random token of your own".into(),
                ),
                Value::String(text)
                    if (16..=128).contains(&text.len())
                        && text.bytes().all(|b| b.is_ascii_graphic()) =>
                {
                    web.token = Some(text.clone());
                }
                Value::String(_) => self.error(
                    token_node.line,
                    "web.token".into(),
                    "expected 16 to 128 printable ASCII characters without spaces \
                     (the value is not shown: it is a secret)"
                        .into(),
                ),
                // Whatever it is, a token is not repeated: a number may be the real one unquoted.
                _ => self.error(
                    token_node.line,
                    "web.token".into(),
                    text!(
                        "got ",
                        token_node.kind(),
                        ", expected a string or null (read-only page); the value is not \
                         shown: it is a secret"
                    ),
                ),
            }
        }
        web
    }

    /// `web.hosts`: DNS names, such as `["router.home.arpa"]`.
    fn host_names(&mut self, node: &Node) -> Vec<String> {
        let expected = "an array of at most 16 host names, such as [\"router.home.arpa\"]";
        let Value::Array(items) = &node.value else {
            self.wrong(node, "web.hosts".into(), expected);
            return Vec::new();
        };
        if items.len() > 16 {
            self.wrong(node, "web.hosts".into(), expected);
            return Vec::new();
        }
        let mut names = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match &item.value {
                Value::String(name) if is_host_name(name) => names.push(name.clone()),
                _ => self.wrong(
                    item,
                    text!("web.hosts[", i, "]"),
                    "a host name of letters, digits, '-' and '.'",
                ),
            }
        }
        names
    }

    fn hook(&mut self, fields: &Fields) -> Option<Vec<String>> {
        let node = fields.get("hook")?;
        let expected = "an array of strings: an absolute program path, then its arguments";
        match &node.value {
            Value::Null => None,
            Value::Array(items) if !items.is_empty() && items.len() <= 16 => {
                let mut argv = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match &item.value {
                        Value::String(arg) if i > 0 || is_program_path(arg) => {
                            argv.push(arg.clone())
                        }
                        Value::String(_) => {
                            let expected =
                                "an absolute path of a program, such as \"/usr/bin/logger\"";
                            self.wrong(item, text!("hook[", i, "]"), expected);
                        }
                        _ => self.wrong(item, text!("hook[", i, "]"), "a string"),
                    }
                }
                (argv.len() == items.len()).then_some(argv)
            }
            _ => {
                self.wrong(node, "hook".into(), expected);
                None
            }
        }
    }
}

/// Why `address` cannot be another host a probe or a route reaches, if it cannot.
fn not_a_host(address: &IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) if v4.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("the broadcast address"),
        IpAddr::V4(v4) if v4.is_multicast() => Some("a multicast address"),
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address (this router)"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("a multicast address"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("a loopback address (this router)"),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            Some("an IPv4 address in IPv6 form (write it as IPv4)")
        }
        _ => None,
    }
}

/// Linux accepts up to 15 bytes, without '/', ':' (alias syntax) or whitespace; `lo` is this
/// router itself, never a way out.
fn is_device_name(text: &str) -> bool {
    !text.is_empty()
        && text != "lo"
        && text.len() <= 15
        && text != "."
        && text != ".."
        && text.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

/// `router.home.arpa`: 1 to 253 characters, labels of letters, digits and '-'.
fn is_host_name(text: &str) -> bool {
    (1..=253).contains(&text.len())
        && crate::text::byte_separated(text, b'.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `/usr/bin/logger`: absolute, naming a file (not a directory), without NUL.
fn is_program_path(text: &str) -> bool {
    text.starts_with('/') && !text.ends_with('/') && !crate::text::has_byte(text, 0)
}

/// `192.0.2.1:80`, `[2001:db8::1]:80` or `br-lan:8080`; port 0 would be any port.
fn parse_listen(text: &str) -> Option<Listen> {
    if let Some(address) = crate::address::socket(text) {
        return (address.port() != 0).then_some(Listen::Address(address));
    }
    let (device, port) = split_port(text)?;
    let port = u16::try_from(decimal(port)?).ok().filter(|p| *p != 0)?;
    is_device_name(device).then(|| Listen::Device { device: device.to_string(), port })
}

/// The known key nearest to a misspelt one, if it is near enough to be the likely intent.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    // No known key is near a long one, and the distance costs its length times theirs.
    if key.len() > 40 {
        return None;
    }
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Levenshtein distance in bytes: the known keys are ASCII, and a misspelt key with another
/// character is merely counted a step further (a char-by-char walk costs the router's flash a
/// UTF-8 decoder).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row = [0usize; 64];
    let Some(row) = row.get_mut(..=b.len()) else { return usize::MAX };
    for (j, cell) in row.iter_mut().enumerate() {
        *cell = j;
    }
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        Config::from_json(text).expect_err(text).iter().map(ToString::to_string).collect()
    }

    const MINIMAL: &str = r#"{"links": [{"name": "wan", "device": "eth0.2"}]}"#;

    #[test]
    fn minimal_config_gets_every_default() {
        let config = Config::from_json(MINIMAL).unwrap();
        let link = &config.links[0];
        assert_eq!(link.name.as_str(), "wan");
        assert_eq!(link.label, "wan");
        assert_eq!(link.targets.len(), 2);
        assert_eq!((link.interval_ms, link.timeout_ms, link.bias), (250, 1000, 0));
        assert_eq!((link.standby_interval_ms, link.dead_after_ms), (15_000, 850));
        assert!(link.enabled);
        assert_eq!(link.gateway, None);
        assert_eq!(config.smoothing_ms, defaults::SMOOTHING_MS);
        assert_eq!(config.hysteresis, 20);
        assert_eq!(config.loss_divisor_centi, 100);
        assert_eq!(config.window, 40);
        assert_eq!(config.forced_link_dies, ForcedLinkDies::Stay);
        assert_eq!(config.web.listen, Some(Listen::Device { device: "br-lan".into(), port: 8080 }));
        assert_eq!(config.web.token, None);
        assert_eq!(config.hook, None);
    }

    #[test]
    fn global_targets_apply_to_links_without_their_own() {
        let config = Config::from_json(
            r#"{"targets": ["192.0.2.1"], "links": [
                {"name": "wan", "device": "eth0.2"},
                {"name": "wwan", "device": "wlan0", "targets": ["198.51.100.1", "2001:db8::1"]}]}"#,
        )
        .unwrap();
        assert_eq!(config.links[0].targets, vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(config.links[1].targets.len(), 2);
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        assert_eq!(
            errors("{\n  \"links\": [\n}"),
            [
                "line 3 column 1: invalid JSON: expected a value (object, array, string, number, true, false or null)"
            ]
        );
    }

    #[test]
    fn zero_loss_divisor_is_refused_with_its_path() {
        let text = r#"{"loss_divisor": 0, "links": [{"name": "wan", "device": "eth0.2"}]}"#;
        assert_eq!(
            errors(text),
            [
                "line 1: loss_divisor: got 0, expected a number from 0.01 to 1000000 with at most two decimals"
            ]
        );
    }

    #[test]
    fn every_error_is_reported_at_once_in_line_order() {
        let text = r#"{
  "smoothing_ms": -1,
  "hysterisis": 20,
  "links": [
    {"name": "wan", "device": "eth0.2", "interval_ms": 0},
    {"name": "wan", "device": "eth0.2", "targets": []},
    {"name": "lte", "device": "wwan0", "timeout_ms": 2000, "bias": 1.5, "enabled": "yes"}
  ]
}"#;
        let got = errors(text);
        assert_eq!(
            got,
            [
                "line 2: smoothing_ms: got -1, expected a whole number from 0 to 600000 (ms)",
                "line 3: hysterisis: unknown key (did you mean \"hysteresis\"?); known keys: links, targets, smoothing_ms, hysteresis, switch_hold_ms, failback_hold_ms, dead_after_ms, loss_divisor, window, forced_link_dies, conntrack_cleanup, web, hook, require_masquerade",
                "line 5: links[0].interval_ms: got 0, expected a whole number from 100 to 3600000 (ms)",
                "line 6: links[1].name: duplicate name \"wan\", already used by links[0]",
                "line 6: links[1].device: duplicate device \"eth0.2\", already used by links[0]",
                "line 6: links[1].targets: got 0 targets, expected 1 to 8",
                "line 7: links[2].bias: got 1.5, expected a whole number from -1000000 to 1000000 (ms)",
                "line 7: links[2].enabled: got \"yes\", expected true or false",
            ]
        );
    }

    #[test]
    fn duplicate_names_and_devices_are_refused() {
        let text = r#"{"links": [
            {"name": "wan", "device": "eth0.2"},
            {"name": "wan", "device": "eth0.2"}]}"#;
        assert_eq!(
            errors(text),
            [
                "line 3: links[1].name: duplicate name \"wan\", already used by links[0]",
                "line 3: links[1].device: duplicate device \"eth0.2\", already used by links[0]",
            ]
        );
    }

    #[test]
    fn bad_link_fields_are_named() {
        let text = r#"{"links": [
            {"name": "<b>", "device": "a/b", "gateway": "300.1.1.1",
             "targets": ["192.0.2.1", "192.0.2.1", 5], "label": ""},
            {"device": "eth1"},
            "wan"]}"#;
        assert_eq!(
            errors(text),
            [
                "line 2: links[0].name: got \"<b>\", expected only letters, digits, '_', '.' and '-'",
                "line 2: links[0].device: got \"a/b\", expected a device name of 1 to 15 characters without '/', ':' or spaces, not \"lo\"",
                "line 2: links[0].gateway: got \"300.1.1.1\", expected an IPv4 or IPv6 address such as \"192.0.2.1\"",
                "line 3: links[0].label: got \"\", expected 1 to 64 characters",
                "line 3: links[0].targets[1]: duplicate target 192.0.2.1",
                "line 3: links[0].targets[2]: got 5, expected an IPv4 or IPv6 address in a string",
                "line 4: links[1].name: missing, expected the link's name",
                "line 5: links[2]: got \"wan\", expected an object",
            ]
        );
    }

    #[test]
    fn structural_mistakes_are_named() {
        assert_eq!(errors("[]"), ["line 1: got an array, expected an object"]);
        assert_eq!(
            errors("{}"),
            [
                "line 1: links: missing, expected an array of links (on OpenWrt, /etc/init.d/wanmon fills them in from the firewall zone wan)"
            ]
        );
        assert_eq!(errors(r#"{"links": []}"#), ["line 1: links: got 0 links, expected 1 to 16"]);
        assert_eq!(
            errors(r#"{"links": {}}"#),
            ["line 1: links: got an object, expected an array of links"]
        );
        assert_eq!(
            errors(r#"{"links": [{"name": "wan", "device": "eth0.2", "enabled": false}]}"#),
            ["line 1: links: no link is enabled, expected at least one"]
        );
    }

    #[test]
    fn an_openwrt_interface_stands_for_the_device_and_links_may_come_from_the_zone() {
        let text = r#"{"links": [
            {"name": "wan", "interface": "wan"},
            {"name": "wwan", "interface": "wwan", "device": "phy0-sta0"}]}"#;
        let config = Config::from_json(text).unwrap();
        let devices: Vec<&str> = config.links.iter().map(|l| l.device.as_str()).collect();
        assert_eq!(devices, ["wan", "phy0-sta0"]);
        assert_eq!(
            errors(r#"{"links": [{"name": "a", "interface": "w an"}, {"name": "b"}]}"#),
            [
                "line 1: links[0].interface: got \"w an\", expected a device name of 1 to 15 characters without '/', ':' or spaces, not \"lo\"",
                "line 1: links[1].device: missing, expected the network device, such as \"eth0.2\", or the OpenWrt interface"
            ]
        );
        assert_eq!(
            errors(
                r#"{"links": [{"name": "a", "interface": "wan"}, {"name": "b", "interface": "wan"}]}"#
            ),
            ["line 1: links[1].interface: duplicate interface \"wan\", already used by links[0]"]
        );
        // What the init script writes: a link's firewall warning, the key it reads itself.
        let text = r#"{"require_masquerade": true, "links": [
            {"name": "wwan", "interface": "wwan", "warning": "interface wwan is in no zone"}]}"#;
        let config = Config::from_json(text).unwrap();
        assert_eq!(config.links[0].warning.as_deref(), Some("interface wwan is in no zone"));
        let long = "w".repeat(513);
        let text = format!(
            r#"{{"require_masquerade": "yes", "links": [{{"name": "a", "device": "a", "warning": "{long}"}}]}}"#
        );
        assert_eq!(
            errors(&text),
            [
                "line 1: require_masquerade: got \"yes\", expected true or false",
                &format!(
                    "line 1: links[0].warning: got \"{}..., expected 1 to 512 characters",
                    &long[..56]
                )
            ]
        );
        // No links: a user's file on OpenWrt, whose init script takes the zone's interfaces.
        let zone = Config::from_json_with(r#"{"hysteresis": 15}"#, Links::FromZoneIfMissing);
        assert_eq!(zone.map(|c| (c.links.len(), c.hysteresis)), Ok((0, 15)));
    }

    #[test]
    fn link_timing_is_the_links_own_or_the_global_default() {
        let own = r#"{"dead_after_ms": 2500, "links": [
            {"name": "lte", "device": "wwan0", "interval_ms": 5000, "standby_interval_ms": 60000, "dead_after_ms": 15000},
            {"name": "wan", "device": "eth0.2", "interval_ms": 20000}]}"#;
        let config = Config::from_json(own).unwrap();
        let lte = &config.links[0];
        assert_eq!(
            (lte.interval_ms, lte.standby_interval_ms, lte.dead_after_ms),
            (5000, 60000, 15000)
        );
        let wan = &config.links[1];
        // A standby is never probed more often than an active link.
        assert_eq!((wan.standby_interval_ms, wan.dead_after_ms), (20000, 2500));
        let faster =
            r#"{"links": [{"name": "wan", "device": "eth0.2", "standby_interval_ms": 200}]}"#;
        assert_eq!(
            errors(faster),
            [
                "line 1: links[0].standby_interval_ms: got 200, expected a whole number from 250 to 86400000 (ms, at least interval_ms)"
            ]
        );
    }

    #[test]
    fn the_loss_divisor_takes_two_decimals() {
        let with = |value: &str| {
            Config::from_json(&format!(
                r#"{{"loss_divisor": {value}, "links": [{{"name": "wan", "device": "eth0.2"}}]}}"#
            ))
        };
        assert_eq!(with("1.25").unwrap().loss_divisor_centi, 125);
        assert_eq!(
            with("10").unwrap().loss_divisor_centi,
            1_000,
            "a v0.1 config keeps its meaning"
        );
        assert_eq!(with("0.5").unwrap().loss_divisor_centi, 50);
        for bad in ["0", "1.255", "-1", "1e2", "1000001"] {
            assert!(with(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nonsense_addresses_devices_ports_hooks_and_tokens_are_named() {
        let link = |fields: &str| {
            format!(r#"{{"links": [{{"name": "wan", "device": "eth0.2", {fields}}}]}}"#)
        };
        let targets = [
            ("0.0.0.0", "the unspecified address"),
            ("255.255.255.255", "the broadcast address"),
            ("224.0.0.1", "a multicast address"),
            ("127.0.0.1", "a loopback address (this router)"),
            ("::", "the unspecified address"),
            ("ff02::1", "a multicast address"),
            ("::1", "a loopback address (this router)"),
            ("::ffff:192.0.2.1", "an IPv4 address in IPv6 form (write it as IPv4)"),
        ];
        for (address, what) in targets {
            let expected = format!(
                "line 1: links[0].targets[0]: got {address}, {what}: expected the address of a host elsewhere, such as \"192.0.2.1\""
            );
            assert_eq!(errors(&link(&format!(r#""targets": ["{address}"]"#))), [expected]);
        }
        for gateway in ["0.0.0.0", "239.1.2.3"] {
            let found = errors(&link(&format!(r#""gateway": "{gateway}""#)));
            assert!(found[0].starts_with(&format!("line 1: links[0].gateway: got {gateway}, ")));
        }
        let lo = errors(r#"{"links": [{"name": "wan", "device": "lo"}]}"#);
        assert!(lo[0].starts_with("line 1: links[0].device: got \"lo\", expected"), "{lo:?}");
        let with = |extra: &str| {
            format!(r#"{{{extra}, "links": [{{"name": "wan", "device": "eth0.2"}}]}}"#)
        };
        let port = errors(&with(r#""web": {"listen": "192.0.2.1:0"}"#));
        assert!(port[0].starts_with("line 1: web.listen: got \"192.0.2.1:0\""), "{port:?}");
        let hook = errors(&with(r#""hook": ["/"]"#));
        assert!(hook[0].starts_with("line 1: hook[0]: got \"/\", expected an absolute path"));
        assert_eq!(
            errors(&with(&format!(r#""web": {{"token": "{PLACEHOLDER_TOKEN}"}}"#))),
            ["line 1: web.token: the documentation's example: set a random token of your own"]
        );
    }

    #[test]
    fn a_token_is_never_repeated_whatever_its_type() {
        let with = |token: &str| {
            format!(
                r#"{{"web": {{"token": {token}}}, "links": [{{"name": "wan", "device": "eth0.2"}}]}}"#
            )
        };
        for token in ["1234567890123456789", "true", "[\"abcdefghijklmnopq\"]", "\"short-secret\""]
        {
            let found = errors(&with(token)).join("\n");
            assert!(found.starts_with("line 1: web.token: "), "{found}");
            for secret in ["1234567890123456789", "abcdefghijklmnopq", "short-secret"] {
                assert!(!found.contains(secret), "the token is in the message: {found}");
            }
        }
    }

    #[test]
    fn web_and_hook_are_checked() {
        let base = |extra: &str| {
            format!(r#"{{{extra}, "links": [{{"name": "wan", "device": "eth0.2"}}]}}"#)
        };
        let config = Config::from_json(&base(
            r#""web": {"listen": "[2001:db8::1]:80", "token": "0123456789abcdef"}, "hook": ["/bin/logger", "-t", "wanmon"]"#,
        ))
        .unwrap();
        assert_eq!(config.web.listen, Some(Listen::Address("[2001:db8::1]:80".parse().unwrap())));
        assert_eq!(config.web.token.as_deref(), Some("0123456789abcdef"));
        assert_eq!(config.hook.unwrap(), ["/bin/logger", "-t", "wanmon"]);
        assert_eq!(
            Config::from_json(&base(r#""web": {"listen": null}"#)).unwrap().web.listen,
            None
        );
        assert_eq!(
            errors(&base(r#""web": {"listen": "br-lan:0", "token": "short", "tokn": 1}"#)),
            [
                "line 1: web.tokn: unknown key (did you mean \"token\"?); known keys: listen, token, hosts",
                "line 1: web.listen: got \"br-lan:0\", expected \"ADDRESS:PORT\", \"[IPV6]:PORT\", \"DEVICE:PORT\" or null (no web page)",
                "line 1: web.token: expected 16 to 128 printable ASCII characters without spaces (the value is not shown: it is a secret)",
            ]
        );
        assert_eq!(
            errors(&base(r#""hook": "rm -rf /""#)),
            [
                "line 1: hook: got \"rm -rf /\", expected an array of strings: an absolute program path, then its arguments"
            ]
        );
        assert_eq!(
            errors(&base(r#""hook": ["logger", 1]"#)),
            [
                "line 1: hook[0]: got \"logger\", expected an absolute path of a program, such as \"/usr/bin/logger\"",
                "line 1: hook[1]: got 1, expected a string",
            ]
        );
        assert_eq!(
            errors(&base(r#""forced_link_dies": "panic""#)),
            ["line 1: forced_link_dies: got \"panic\", expected \"stay\" or \"fallback\""]
        );
    }

    #[test]
    fn hints_only_near_misses() {
        assert_eq!(closest("intervall_ms", LINK_KEYS), Some("interval_ms"));
        assert_eq!(closest("colour", LINK_KEYS), None);
        assert_eq!(closest("intérval_ms", LINK_KEYS), Some("interval_ms"));
    }

    #[test]
    fn edit_distance_counts_bytes_and_refuses_keys_longer_than_its_row() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "bias"), 4);
        assert_eq!(edit_distance("bias", ""), 4);
        assert_eq!(edit_distance("é", "e"), 2);
        assert_eq!(edit_distance("a", &"b".repeat(64)), usize::MAX);
    }
}
