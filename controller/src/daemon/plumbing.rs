//! Routes and rules: what wanmon writes into the kernel and how it keeps them there.
//!
//! wanmon never touches the system's routes. Its default route lives in its own table, looked up
//! by a rule placed before `main`; a `suppress_prefixlength 0` rule in front lets every specific
//! route in `main` (the LAN, the links' own subnets) keep working. Each link has a table with a
//! default route through it and a rule that sends packets with the link's fwmark (its probes)
//! there, so every link is probed through itself whatever the default route is. Removing the
//! rules hands routing straight back to the system.

use super::netlink::{self, DefaultRoute, DumpKind, LinkInfo, Prefix, RouteInfo, Rule, Socket};
use crate::core::{DeviceFacts, Family, LinkPlan};
use crate::protocol::{
    METRIC, PRIORITY_PROBES, PRIORITY_ROUTE, PRIORITY_SUPPRESS, PROTOCOL, ROUTE_TABLE,
    is_our_table, link_mark, link_table,
};
use crate::text::OsError;
use std::io;
use std::net::IpAddr;

fn family_code(family: Family) -> u8 {
    match family {
        Family::V4 => libc::AF_INET as u8,
        Family::V6 => libc::AF_INET6 as u8,
    }
}

/// What went wrong while writing or removing wanmon's routing; the loop logs it and goes on.
#[derive(Debug)]
pub enum PlumbingError {
    List { what: &'static str, cause: io::Error },
    AddRule { priority: u32, table: u32, cause: io::Error },
    DeleteRule { priority: u32, table: u32, cause: io::Error },
    DeleteRoute { table: u32, cause: io::Error },
    ProbeRoute { device: String, cause: io::Error },
    DefaultRoute { family: Family, cause: io::Error },
}

impl crate::text::Show for PlumbingError {
    fn show(&self, out: &mut String) {
        match self {
            PlumbingError::List { what, cause } => {
                put!(out, "cannot list ", what, ": ", OsError(cause))
            }
            PlumbingError::AddRule { priority, table, cause } => {
                put!(
                    out,
                    "cannot add rule priority ",
                    priority,
                    " table ",
                    table,
                    ": ",
                    OsError(cause)
                )
            }
            PlumbingError::DeleteRule { priority, table, cause } => {
                put!(
                    out,
                    "cannot delete rule priority ",
                    priority,
                    " table ",
                    table,
                    ": ",
                    OsError(cause)
                )
            }
            PlumbingError::DeleteRoute { table, cause } => {
                put!(out, "cannot delete default route in table ", table, ": ", OsError(cause))
            }
            PlumbingError::ProbeRoute { device, cause } => {
                put!(out, "cannot route the probes of ", device, ": ", OsError(cause))
            }
            PlumbingError::DefaultRoute { family, cause } => {
                put!(out, "cannot write the ", family.name(), " default route: ", OsError(cause))
            }
        }
    }
}

crate::display_by_show!(PlumbingError);

impl std::error::Error for PlumbingError {}

/// What one kernel event means for wanmon.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct News {
    /// A link's device changed (flags, addresses, the system's default route through it): read
    /// the devices again.
    pub devices: bool,
    /// Something of wanmon's own routing was removed or changed: write it again.
    pub routing: bool,
}

/// The kernel's routing as wanmon wants it, and the means to make it so.
#[derive(Debug)]
pub struct Plumbing {
    socket: Socket,
    /// The route wanmon wrote in its table, per family.
    pub installed: [Option<DefaultRoute>; 2],
    /// The routes in `installed` are an earlier run's, kept until this run chooses a link.
    adopted: bool,
    /// The source prefixes of each device's system default routes, as last seen.
    seen_prefixes: Vec<(String, Prefix)>,
}

fn ignore(error: io::Error, codes: &[i32]) -> io::Result<()> {
    match error.raw_os_error() {
        Some(code) if codes.contains(&code) => Ok(()),
        _ => Err(error),
    }
}

/// What [`Plumbing::remove`] leaves in place.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Keep {
    Nothing,
    /// An earlier run's default route and the two rules that make it apply: adopted.
    EarlierRoute,
    /// This run's default route and its two rules, per family (IPv4, IPv6) still used.
    Route([bool; 2]),
}

impl Keep {
    /// Whether the default route and its rules of this address family stay.
    fn keeps(self, family: u8) -> bool {
        match self {
            Keep::Nothing => false,
            Keep::EarlierRoute => true,
            Keep::Route(used) => used[usize::from(family == family_code(Family::V6))],
        }
    }
}

impl Plumbing {
    pub fn open() -> io::Result<Plumbing> {
        let socket = Socket::open(0)?;
        Ok(Plumbing { socket, installed: [None, None], adopted: false, seen_prefixes: Vec::new() })
    }

    /// Removes every route and rule an earlier run left behind (also one killed with -9), and
    /// everything this run wrote. Keeps going past failures and reports them all.
    pub fn remove_all(&mut self) -> Vec<PlumbingError> {
        self.remove(Keep::Nothing)
    }

    /// At start: removes what an earlier run left behind but its default route and the two
    /// rules that make it apply, which this run adopts as its own until its first choice
    /// replaces them. A restart while the primary is dead so keeps the traffic on the backup
    /// instead of sending it through the main table's dead primary until the first choice.
    pub fn clean_up_keeping_the_route(&mut self) -> Vec<PlumbingError> {
        self.remove(Keep::EarlierRoute)
    }

    /// On a reload, before [`Plumbing::apply`] writes the new links' routing: removes the
    /// links' tables and rules (renumbered), but not the default route and its two rules of a
    /// family the new links still use, which `apply` then replaces in place: the traffic never
    /// goes without a route.
    pub fn clear_keeping_the_route(&mut self, plans: &[LinkPlan]) -> Vec<PlumbingError> {
        let used = Family::ALL.map(|f| plans.iter().any(|p| p.probe_families.contains(&f)));
        self.remove(Keep::Route(used))
    }

    fn remove(&mut self, keep: Keep) -> Vec<PlumbingError> {
        let mut problems = Vec::new();
        self.remove_rules(keep, &mut problems);
        let mut routes = Vec::new();
        let mut kept = [None, None];
        if let Err(cause) = self.socket.dump(DumpKind::Routes, 0, |_, payload| {
            let Some(route) = netlink::parse_route(payload) else { return };
            if !is_our_table(route.table) || route.dst_len != 0 {
                return;
            }
            let slot = usize::from(route.family == family_code(Family::V6));
            match route.oif {
                Some(oif)
                    if keep.keeps(route.family)
                        && route.table == ROUTE_TABLE
                        && route.protocol == PROTOCOL =>
                {
                    kept[slot] = Some(DefaultRoute {
                        family: route.family,
                        table: route.table,
                        protocol: route.protocol,
                        metric: route.metric,
                        oif,
                        gateway: route.gateway,
                    });
                }
                _ => routes.push(route),
            }
        }) {
            problems.push(PlumbingError::List { what: "routes", cause });
        }
        for route in routes {
            let result = self
                .socket
                .request(|seq| {
                    netlink::delete_default_route(seq, route.family, route.table, route.metric)
                })
                .or_else(|e| ignore(e, &[libc::ESRCH, libc::ENOENT]));
            if let Err(cause) = result {
                problems.push(PlumbingError::DeleteRoute { table: route.table, cause });
            }
        }
        if keep == Keep::EarlierRoute {
            self.adopted = kept.iter().any(Option::is_some);
            self.installed = kept;
        } else if keep == Keep::Nothing {
            self.adopted = false;
            self.installed = [None, None];
        }
        problems
    }

    /// Deletes wanmon's rules (and rules of its tables) but the two of the route `keep` keeps.
    fn remove_rules(&mut self, keep: Keep, problems: &mut Vec<PlumbingError>) {
        let mut rules = Vec::new();
        let kept_rule = |rule: &Rule| {
            keep.keeps(rule.family)
                && rule.protocol == PROTOCOL
                && [PRIORITY_SUPPRESS, PRIORITY_ROUTE].contains(&rule.priority)
        };
        if let Err(cause) = self.socket.dump(DumpKind::Rules, 0, |_, payload| {
            if let Some(rule) = netlink::parse_rule(payload) {
                let ours = rule.protocol == PROTOCOL
                    || ([PRIORITY_PROBES, PRIORITY_SUPPRESS, PRIORITY_ROUTE]
                        .contains(&rule.priority)
                        && (is_our_table(rule.table) || rule.suppress_prefixlength.is_some()));
                if ours && !kept_rule(&rule) {
                    rules.push(rule);
                }
            }
        }) {
            problems.push(PlumbingError::List { what: "rules", cause });
        }
        for rule in rules {
            if let Err(cause) = self
                .socket
                .request(|seq| netlink::delete_rule(seq, &rule))
                .or_else(|e| ignore(e, &[libc::ENOENT]))
            {
                let (priority, table) = (rule.priority, rule.table);
                problems.push(PlumbingError::DeleteRule { priority, table, cause });
            }
        }
    }

    /// What the kernel says about each named device: index, flags, addresses, the system's
    /// default routes through it.
    pub fn observe(&mut self, devices: &[&str]) -> io::Result<Vec<DeviceFacts>> {
        let mut links: Vec<LinkInfo> = Vec::new();
        self.socket.dump(DumpKind::Links, 0, |kind, payload| {
            if kind == netlink::RTM_NEWLINK {
                links.extend(netlink::parse_link(payload));
            }
        })?;
        let mut addressed = Vec::new();
        self.socket.dump(DumpKind::Addresses, 0, |kind, payload| {
            if kind == netlink::RTM_NEWADDR {
                if let Some(address) = netlink::parse_address(payload) {
                    // Link-local IPv6 addresses come and go with the device; they carry nothing.
                    let link_local = matches!(address.address, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
                    if !link_local {
                        addressed.push(address.index);
                    }
                }
            }
        })?;
        let mut defaults = Vec::new();
        self.socket.dump(DumpKind::Routes, 0, |kind, payload| {
            if kind == netlink::RTM_NEWROUTE {
                if let Some(route) = netlink::parse_route(payload) {
                    if route.dst_len == 0
                        && route.table == netlink::RT_TABLE_MAIN
                        && route.protocol != PROTOCOL
                    {
                        defaults.push(route);
                    }
                }
            }
        })?;
        self.remember_prefixes(devices, &links, &defaults);
        let facts_of = |device: &str| {
            let Some(info) = links.iter().find(|l| l.name == device) else {
                return DeviceFacts::default();
            };
            let gateway = |family: Family| {
                defaults
                    .iter()
                    .filter(|r| r.family == family_code(family) && r.oif == Some(info.index))
                    .min_by_key(|r| r.metric)
                    .map(|r| r.gateway)
            };
            DeviceFacts {
                index: Some(info.index),
                up: info.flags & netlink::IFF_UP != 0,
                carrier: info.flags & netlink::IFF_LOWER_UP != 0,
                point_to_point: info.flags & netlink::IFF_POINTOPOINT != 0,
                addresses: addressed.iter().filter(|i| **i == info.index).count() as u32,
                system_gateways: [gateway(Family::V4), gateway(Family::V6)],
            }
        };
        Ok(devices.iter().map(|d| facts_of(d)).collect())
    }

    fn remember_prefixes(&mut self, devices: &[&str], links: &[LinkInfo], defaults: &[RouteInfo]) {
        for info in links.iter().filter(|l| devices.contains(&l.name.as_str())) {
            let fresh = defaults
                .iter()
                .filter(|r| r.oif == Some(info.index))
                .filter_map(|r| r.source)
                // `from ::/128` serves unbound sockets, not a prefix.
                .filter(|p| p.len < 128);
            let mut fresh = fresh.map(|p| (info.name.clone(), p)).peekable();
            if fresh.peek().is_some() {
                self.seen_prefixes.retain(|(name, _)| *name != info.name);
                self.seen_prefixes.extend(fresh);
            }
        }
    }

    /// The addresses of a device (for the web page's `DEVICE:PORT`), IPv4 first.
    pub fn addresses_of(&mut self, device: &str) -> io::Result<Vec<IpAddr>> {
        let mut index = None;
        self.socket.dump(DumpKind::Links, 0, |kind, payload| {
            if kind == netlink::RTM_NEWLINK {
                if let Some(info) = netlink::parse_link(payload).filter(|l| l.name == device) {
                    index = Some(info.index);
                }
            }
        })?;
        let Some(index) = index else {
            return Ok(Vec::new());
        };
        let (mut addresses, mut ipv6) = (Vec::new(), Vec::new());
        self.socket.dump(DumpKind::Addresses, 0, |kind, payload| {
            if kind == netlink::RTM_NEWADDR {
                if let Some(found) = netlink::parse_address(payload).filter(|a| a.index == index) {
                    let family = if found.address.is_ipv6() { &mut ipv6 } else { &mut addresses };
                    family.push(found.address);
                }
            }
        })?;
        addresses.append(&mut ipv6);
        Ok(addresses)
    }

    /// The source prefixes of the system's default routes through a device, as last seen: netifd
    /// writes `default from PREFIX` for each IPv6 prefix the link delegated to the LAN (and its
    /// own), and removes them when the interface goes down, often before the switch.
    pub fn source_prefixes(&self, device: &str) -> Vec<Prefix> {
        self.seen_prefixes.iter().filter(|(name, _)| name == device).map(|(_, p)| *p).collect()
    }

    /// Writes the probe routing of every link and the rules, then the default route through
    /// `chosen`. Idempotent: it is also how wanmon puts back what someone else removed.
    pub fn apply(&mut self, plans: &[LinkPlan], chosen: Option<usize>) -> Vec<PlumbingError> {
        let mut problems = Vec::new();
        for family in Family::ALL {
            if !plans.iter().any(|p| p.probe_families.contains(&family)) {
                continue;
            }
            for (priority, table, suppress) in [
                (PRIORITY_SUPPRESS, netlink::RT_TABLE_MAIN, Some(0)),
                (PRIORITY_ROUTE, ROUTE_TABLE, None),
            ] {
                let rule = Rule {
                    family: family_code(family),
                    priority,
                    table,
                    fwmark: None,
                    suppress_prefixlength: suppress,
                    protocol: PROTOCOL,
                };
                self.add_rule(&rule, &mut problems);
            }
        }
        for (index, plan) in plans.iter().enumerate() {
            for family in &plan.probe_families {
                let rule = Rule {
                    family: family_code(*family),
                    priority: PRIORITY_PROBES,
                    table: link_table(index),
                    fwmark: Some(link_mark(index)),
                    suppress_prefixlength: None,
                    protocol: PROTOCOL,
                };
                self.add_rule(&rule, &mut problems);
                if let (Some(oif), Ok(gateway)) = (plan.facts.index, plan.next_hop(*family)) {
                    let route = DefaultRoute {
                        family: family_code(*family),
                        table: link_table(index),
                        protocol: PROTOCOL,
                        metric: METRIC,
                        oif,
                        gateway,
                    };
                    if let Err(cause) =
                        self.socket.request(|seq| netlink::replace_default_route(seq, &route))
                    {
                        let device = plan.device.clone();
                        problems.push(PlumbingError::ProbeRoute { device, cause });
                    }
                }
            }
        }
        problems.extend(self.set_default(plans, chosen));
        problems
    }

    fn add_rule(&mut self, rule: &Rule, problems: &mut Vec<PlumbingError>) {
        let result = self
            .socket
            .request(|seq| netlink::add_rule(seq, rule))
            .or_else(|e| ignore(e, &[libc::EEXIST]));
        if let Err(cause) = result {
            let (priority, table) = (rule.priority, rule.table);
            problems.push(PlumbingError::AddRule { priority, table, cause });
        }
    }

    /// Replaces wanmon's default route (per family) with one through `chosen`, in one step;
    /// removes it for a family `chosen` cannot carry.
    pub fn set_default(&mut self, plans: &[LinkPlan], chosen: Option<usize>) -> Vec<PlumbingError> {
        let mut problems = Vec::new();
        if chosen.is_none() && self.adopted {
            // No choice made yet: the earlier run's route serves until there is one.
            return problems;
        }
        self.adopted = false;
        for family in Family::ALL {
            let slot = family.slot();
            let wanted = chosen.and_then(|index| {
                let plan = plans.get(index)?;
                let oif = plan.facts.index?;
                plan.next_hop(family).ok().map(|gateway| DefaultRoute {
                    family: family_code(family),
                    table: ROUTE_TABLE,
                    protocol: PROTOCOL,
                    metric: METRIC,
                    oif,
                    gateway,
                })
            });
            let result = match &wanted {
                Some(route) => {
                    self.socket.request(|seq| netlink::replace_default_route(seq, route))
                }
                None if self.installed[slot].is_some() => self
                    .socket
                    .request(|seq| {
                        netlink::delete_default_route(seq, family_code(family), ROUTE_TABLE, METRIC)
                    })
                    .or_else(|e| ignore(e, &[libc::ESRCH, libc::ENOENT])),
                None => Ok(()),
            };
            match result {
                Ok(()) => self.installed[slot] = wanted,
                Err(cause) => problems.push(PlumbingError::DefaultRoute { family, cause }),
            }
        }
        problems
    }

    /// What a netlink event means for wanmon's links and its routing.
    pub fn news(&self, message: &netlink::Message, plans: &[LinkPlan]) -> News {
        let ours =
            |index: Option<u32>| index.is_some() && plans.iter().any(|p| p.facts.index == index);
        match message.kind {
            netlink::RTM_NEWLINK | netlink::RTM_DELLINK => {
                let devices = netlink::parse_link(message.payload).is_some_and(|info| {
                    plans.iter().any(|p| p.device == info.name) || ours(Some(info.index))
                });
                News { devices, routing: false }
            }
            netlink::RTM_NEWADDR | netlink::RTM_DELADDR => {
                let index = netlink::parse_address(message.payload).map(|a| a.index);
                News { devices: ours(index), routing: false }
            }
            netlink::RTM_NEWROUTE | netlink::RTM_DELROUTE => {
                let Some(route) = netlink::parse_route(message.payload) else {
                    return News::default();
                };
                let system_default = route.dst_len == 0
                    && route.table == netlink::RT_TABLE_MAIN
                    && route.protocol != PROTOCOL;
                News {
                    devices: system_default && ours(route.oif),
                    routing: self.disturbed(message.kind, &route),
                }
            }
            netlink::RTM_DELRULE => {
                let removed = netlink::parse_rule(message.payload).is_some_and(|rule| {
                    rule.protocol == PROTOCOL
                        && [PRIORITY_PROBES, PRIORITY_SUPPRESS, PRIORITY_ROUTE]
                            .contains(&rule.priority)
                });
                News { devices: false, routing: removed }
            }
            _ => News::default(),
        }
    }

    /// Whether a route event shows wanmon's own route missing or different from what it wrote.
    pub fn disturbed(&self, kind: u16, route: &netlink::RouteInfo) -> bool {
        if route.dst_len != 0 || !is_our_table(route.table) {
            return false;
        }
        if route.table != ROUTE_TABLE {
            // A link table lost its route (its device went down and came back): put it back.
            return kind == netlink::RTM_DELROUTE;
        }
        let slot = usize::from(route.family == family_code(Family::V6));
        match (&self.installed[slot], kind) {
            (Some(_), netlink::RTM_DELROUTE) => true,
            (Some(ours), netlink::RTM_NEWROUTE) => {
                route.protocol != PROTOCOL
                    || route.oif != Some(ours.oif)
                    || route.gateway != ours.gateway
            }
            _ => false,
        }
    }
}
