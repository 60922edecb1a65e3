//! Routes and rules: what wanmon writes into the kernel and how it keeps them there.
//!
//! wanmon never touches the system's routes. Its default route lives in its own table, looked up
//! by a rule placed before `main`; a `suppress_prefixlength 0` rule in front lets every specific
//! route in `main` (the LAN, the links' own subnets) keep working. Each link has a table with a
//! default route through it and a rule that sends packets with the link's fwmark (its probes)
//! there, so every link is probed through itself whatever the default route is. Removing the
//! rules hands routing straight back to the system.

use super::netlink::{self, DefaultRoute, DumpKind, LinkInfo, Rule, Socket};
use std::io;
use std::net::IpAddr;

/// The `proto` of every route and rule wanmon writes (`ip route show proto 87`).
pub const PROTOCOL: u8 = 87;
/// wanmon's default route table.
pub const ROUTE_TABLE: u32 = 22349;
/// Link `i` has table `LINK_TABLE_BASE + i`.
pub const LINK_TABLE_BASE: u32 = 22350;
/// Link `i` marks its probes `MARK_BASE + i + 1`.
pub const MARK_BASE: u32 = 0x574d_0000;
pub const PRIORITY_PROBES: u32 = 22340;
pub const PRIORITY_SUPPRESS: u32 = 22341;
pub const PRIORITY_ROUTE: u32 = 22342;
pub const METRIC: u32 = 10;
const MAX_LINKS: u32 = 16;

pub const FAMILIES: [u8; 2] = [libc::AF_INET as u8, libc::AF_INET6 as u8];

pub fn link_table(index: usize) -> u32 {
    LINK_TABLE_BASE + index as u32
}

pub fn link_mark(index: usize) -> u32 {
    MARK_BASE + index as u32 + 1
}

fn ours(table: u32) -> bool {
    table == ROUTE_TABLE || (LINK_TABLE_BASE..LINK_TABLE_BASE + MAX_LINKS).contains(&table)
}

fn family_name(family: u8) -> &'static str {
    if family == libc::AF_INET as u8 { "IPv4" } else { "IPv6" }
}

/// What the kernel says about one link's device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceState {
    pub index: Option<u32>,
    pub flags: u32,
    pub addresses: u32,
    /// Default routes of the system (not ours) through this device, per family: the gateway, or
    /// `None` for a device route.
    pub system_gateways: [Option<Option<IpAddr>>; 2],
}

impl DeviceState {
    /// Up, with carrier and an address: can carry traffic.
    pub fn usable(&self) -> bool {
        self.index.is_some()
            && self.flags & netlink::IFF_UP != 0
            && self.flags & netlink::IFF_LOWER_UP != 0
            && self.addresses > 0
    }

    fn point_to_point(&self) -> bool {
        self.flags & netlink::IFF_POINTOPOINT != 0
    }
}

/// One link as the plumbing sees it.
#[derive(Clone, Debug)]
pub struct LinkPlan {
    pub device: String,
    pub configured_gateway: Option<IpAddr>,
    /// Families of the link's targets: the probes need routing in these.
    pub probe_families: Vec<u8>,
    pub state: DeviceState,
}

impl LinkPlan {
    /// The next hop for `family`: a gateway, or `None` for a device route; the error says why
    /// there is none.
    pub fn next_hop(&self, family: u8) -> Result<Option<IpAddr>, String> {
        if self.state.index.is_none() {
            return Err(format!("device {} does not exist", self.device));
        }
        if let Some(gateway) = self.configured_gateway {
            if netlink::family_of(&gateway) == family {
                return Ok(Some(gateway));
            }
        }
        let slot = if family == FAMILIES[0] { 0 } else { 1 };
        if let Some(found) = self.state.system_gateways[slot] {
            return Ok(found);
        }
        if self.state.point_to_point() {
            return Ok(None);
        }
        Err(format!(
            "no {} gateway for {}: set the link's gateway in the config, or give the device a default route",
            family_name(family),
            self.device
        ))
    }

    /// Why this link cannot carry traffic now, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.state.index.is_none() {
            return Some(format!("device {} does not exist (yet)", self.device));
        }
        if self.state.flags & netlink::IFF_UP == 0 {
            return Some(format!("device {} is down", self.device));
        }
        if self.state.flags & netlink::IFF_LOWER_UP == 0 {
            return Some(format!("device {} has no carrier", self.device));
        }
        if self.state.addresses == 0 {
            return Some(format!("device {} has no address", self.device));
        }
        self.probe_families.iter().find_map(|f| self.next_hop(*f).err())
    }
}

/// The kernel's routing as wanmon wants it, and the means to make it so.
#[derive(Debug)]
pub struct Plumbing {
    socket: Socket,
    /// The route wanmon wrote in its table, per family.
    pub installed: [Option<DefaultRoute>; 2],
}

fn ignore(error: io::Error, codes: &[i32]) -> io::Result<()> {
    match error.raw_os_error() {
        Some(code) if codes.contains(&code) => Ok(()),
        _ => Err(error),
    }
}

impl Plumbing {
    pub fn open() -> io::Result<Plumbing> {
        Ok(Plumbing { socket: Socket::open(0)?, installed: [None, None] })
    }

    /// Removes every route and rule an earlier run left behind (also one killed with -9), and
    /// everything this run wrote. Keeps going past failures and reports them all.
    pub fn remove_all(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        if let Err(e) = self.socket.dump(DumpKind::Rules, 0, |_, payload| {
            if let Some(rule) = netlink::parse_rule(payload) {
                if rule.protocol == PROTOCOL
                    || ([PRIORITY_PROBES, PRIORITY_SUPPRESS, PRIORITY_ROUTE]
                        .contains(&rule.priority)
                        && (ours(rule.table) || rule.suppress_prefixlength.is_some()))
                {
                    rules.push(rule);
                }
            }
        }) {
            problems.push(format!("cannot list rules: {e}"));
        }
        for rule in rules {
            if let Err(e) = self
                .socket
                .request(|seq| netlink::delete_rule(seq, &rule))
                .or_else(|e| ignore(e, &[libc::ENOENT]))
            {
                problems.push(format!(
                    "cannot delete rule priority {} table {}: {e}",
                    rule.priority, rule.table
                ));
            }
        }
        let mut routes = Vec::new();
        if let Err(e) = self.socket.dump(DumpKind::Routes, 0, |_, payload| {
            if let Some(route) = netlink::parse_route(payload) {
                if ours(route.table) && route.dst_len == 0 {
                    routes.push(route);
                }
            }
        }) {
            problems.push(format!("cannot list routes: {e}"));
        }
        for route in routes {
            let result = self
                .socket
                .request(|seq| {
                    netlink::delete_default_route(seq, route.family, route.table, route.metric)
                })
                .or_else(|e| ignore(e, &[libc::ESRCH, libc::ENOENT]));
            if let Err(e) = result {
                problems.push(format!("cannot delete default route in table {}: {e}", route.table));
            }
        }
        self.installed = [None, None];
        problems
    }

    /// Reads every device's index, flags, address count and system default routes.
    pub fn observe(&mut self, plans: &mut [LinkPlan]) -> io::Result<()> {
        let mut links: Vec<LinkInfo> = Vec::new();
        self.socket.dump(DumpKind::Links, 0, |kind, payload| {
            if kind == netlink::RTM_NEWLINK {
                links.extend(netlink::parse_link(payload));
            }
        })?;
        for plan in plans.iter_mut() {
            plan.state = DeviceState::default();
            if let Some(info) = links.iter().find(|l| l.name == plan.device) {
                plan.state.index = Some(info.index);
                plan.state.flags = info.flags;
            }
        }
        self.observe_addresses(plans)?;
        self.observe_gateways(plans)
    }

    pub fn observe_addresses(&mut self, plans: &mut [LinkPlan]) -> io::Result<()> {
        let mut indexes = Vec::new();
        self.socket.dump(DumpKind::Addresses, 0, |kind, payload| {
            if kind == netlink::RTM_NEWADDR {
                if let Some(address) = netlink::parse_address(payload) {
                    // Link-local IPv6 addresses come and go with the device; they carry nothing.
                    let link_local = matches!(address.address, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
                    if !link_local {
                        indexes.push(address.index);
                    }
                }
            }
        })?;
        for plan in plans.iter_mut() {
            plan.state.addresses =
                plan.state.index.map_or(0, |i| indexes.iter().filter(|x| **x == i).count() as u32);
        }
        Ok(())
    }

    pub fn observe_gateways(&mut self, plans: &mut [LinkPlan]) -> io::Result<()> {
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
        for plan in plans.iter_mut() {
            for (slot, family) in FAMILIES.iter().enumerate() {
                plan.state.system_gateways[slot] = defaults
                    .iter()
                    .filter(|r| r.family == *family && r.oif.is_some() && r.oif == plan.state.index)
                    .min_by_key(|r| r.metric)
                    .map(|r| r.gateway);
            }
        }
        Ok(())
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
        let mut addresses = Vec::new();
        self.socket.dump(DumpKind::Addresses, 0, |kind, payload| {
            if kind == netlink::RTM_NEWADDR {
                addresses.extend(
                    netlink::parse_address(payload).filter(|a| a.index == index).map(|a| a.address),
                );
            }
        })?;
        addresses.sort_by_key(|a| a.is_ipv6());
        Ok(addresses)
    }

    /// Writes the probe routing of every link and the rules, then the default route through
    /// `chosen`. Idempotent: it is also how wanmon puts back what someone else removed.
    pub fn apply(&mut self, plans: &[LinkPlan], chosen: Option<usize>) -> Vec<String> {
        let mut problems = Vec::new();
        let families: Vec<u8> = FAMILIES
            .iter()
            .copied()
            .filter(|f| plans.iter().any(|p| p.probe_families.contains(f)))
            .collect();
        for family in &families {
            for (priority, table, suppress) in [
                (PRIORITY_SUPPRESS, netlink::RT_TABLE_MAIN, Some(0)),
                (PRIORITY_ROUTE, ROUTE_TABLE, None),
            ] {
                let rule = Rule {
                    family: *family,
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
                    family: *family,
                    priority: PRIORITY_PROBES,
                    table: link_table(index),
                    fwmark: Some(link_mark(index)),
                    suppress_prefixlength: None,
                    protocol: PROTOCOL,
                };
                self.add_rule(&rule, &mut problems);
                if let (Some(oif), Ok(gateway)) = (plan.state.index, plan.next_hop(*family)) {
                    let route = DefaultRoute {
                        family: *family,
                        table: link_table(index),
                        protocol: PROTOCOL,
                        metric: METRIC,
                        oif,
                        gateway,
                    };
                    if let Err(e) =
                        self.socket.request(|seq| netlink::replace_default_route(seq, &route))
                    {
                        problems.push(format!("cannot route the probes of {}: {e}", plan.device));
                    }
                }
            }
        }
        problems.extend(self.set_default(plans, chosen));
        problems
    }

    fn add_rule(&mut self, rule: &Rule, problems: &mut Vec<String>) {
        let result = self
            .socket
            .request(|seq| netlink::add_rule(seq, rule))
            .or_else(|e| ignore(e, &[libc::EEXIST]));
        if let Err(e) = result {
            problems.push(format!(
                "cannot add rule priority {} table {}: {e}",
                rule.priority, rule.table
            ));
        }
    }

    /// Replaces wanmon's default route (per family) with one through `chosen`, in one step;
    /// removes it for a family `chosen` cannot carry.
    pub fn set_default(&mut self, plans: &[LinkPlan], chosen: Option<usize>) -> Vec<String> {
        let mut problems = Vec::new();
        for (slot, family) in FAMILIES.iter().enumerate() {
            let wanted = chosen.and_then(|index| {
                let plan = &plans[index];
                let oif = plan.state.index?;
                plan.next_hop(*family).ok().map(|gateway| DefaultRoute {
                    family: *family,
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
                    .request(|seq| netlink::delete_default_route(seq, *family, ROUTE_TABLE, METRIC))
                    .or_else(|e| ignore(e, &[libc::ESRCH, libc::ENOENT])),
                None => Ok(()),
            };
            match result {
                Ok(()) => self.installed[slot] = wanted,
                Err(e) => problems
                    .push(format!("cannot write the {} default route: {e}", family_name(*family))),
            }
        }
        problems
    }

    /// Whether a route event shows wanmon's own route missing or different from what it wrote.
    pub fn disturbed(&self, kind: u16, route: &netlink::RouteInfo) -> bool {
        if route.dst_len != 0 || !ours(route.table) {
            return false;
        }
        if route.table != ROUTE_TABLE {
            // A link table lost its route (its device went down and came back): put it back.
            return kind == netlink::RTM_DELROUTE;
        }
        let slot = if route.family == FAMILIES[0] { 0 } else { 1 };
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
