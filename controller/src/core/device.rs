//! What a link's device can do, judged from what the kernel says about it: whether it can carry
//! traffic, and through which next hop. The daemon reads the facts (netlink); the core decides.

use super::config::LinkConfig;
use crate::text::Show;
use std::net::IpAddr;

/// An address family wanmon routes: its probes and its default route exist per family.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    pub fn of(address: &IpAddr) -> Family {
        if address.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    /// 0 for IPv4, 1 for IPv6: the slot of per-family arrays.
    pub fn slot(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// What the kernel says about one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceFacts {
    /// The interface index; `None` while no device has the name.
    pub index: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The lower layer is up (`IFF_LOWER_UP`): a cable, a radio association.
    pub carrier: bool,
    pub point_to_point: bool,
    /// Addresses that can carry traffic (IPv6 link-local ones do not count).
    pub addresses: u32,
    /// The system's own default routes through the device, per family: the gateway, or `None`
    /// for a route without one.
    pub system_gateways: [Option<Option<IpAddr>>; 2],
}

impl DeviceFacts {
    /// Up, with carrier and an address: it can carry traffic.
    pub fn usable(&self) -> bool {
        self.index.is_some() && self.up && self.carrier && self.addresses > 0
    }
}

/// Why a link cannot carry traffic now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    NoDevice(String),
    DeviceDown(String),
    NoCarrier(String),
    NoAddress(String),
    NoGateway { device: String, family: Family },
}

impl Show for Problem {
    fn show(&self, out: &mut String) {
        let (device, what) = match self {
            Problem::NoDevice(device) => (device, " does not exist (yet)"),
            Problem::DeviceDown(device) => (device, " is down"),
            Problem::NoCarrier(device) => (device, " has no carrier"),
            Problem::NoAddress(device) => (device, " has no address"),
            Problem::NoGateway { device, family } => {
                return put!(
                    out,
                    "no ",
                    family.name(),
                    " gateway for ",
                    device,
                    ": set the link's gateway in the config, or give the device a default route"
                );
            }
        };
        put!(out, "device ", device, what);
    }
}

crate::display_by_show!(Problem);

/// One link as routing sees it: its device, what the kernel says of it, and the next hops.
#[derive(Clone, Debug)]
pub struct LinkPlan {
    pub device: String,
    pub configured_gateway: Option<IpAddr>,
    /// Families of the link's targets: the probes need routing in these.
    pub probe_families: Vec<Family>,
    pub facts: DeviceFacts,
}

impl LinkPlan {
    /// The plan of a configured link, its device not yet observed.
    pub fn of(link: &LinkConfig) -> LinkPlan {
        // In `Family::ALL`'s order, each once.
        let probe_families = Family::ALL
            .into_iter()
            .filter(|family| link.targets.iter().any(|target| Family::of(target) == *family))
            .collect();
        LinkPlan {
            device: link.device.clone(),
            configured_gateway: link.gateway,
            probe_families,
            facts: DeviceFacts::default(),
        }
    }

    /// The next hop for `family`: a gateway, or `None` for a device route; the problem when
    /// there is none.
    pub fn next_hop(&self, family: Family) -> Result<Option<IpAddr>, Problem> {
        if self.facts.index.is_none() {
            return Err(Problem::NoDevice(self.device.clone()));
        }
        if let Some(gateway) = self.configured_gateway.filter(|g| Family::of(g) == family) {
            return Ok(Some(gateway));
        }
        if let Some(found) = self.facts.system_gateways[family.slot()] {
            return Ok(found);
        }
        if self.facts.point_to_point {
            return Ok(None);
        }
        Err(Problem::NoGateway { device: self.device.clone(), family })
    }

    /// Why this link cannot carry traffic now, if it cannot.
    pub fn problem(&self) -> Option<Problem> {
        let facts = &self.facts;
        let device = || self.device.clone();
        if facts.index.is_none() {
            return Some(Problem::NoDevice(device()));
        }
        if !facts.up {
            return Some(Problem::DeviceDown(device()));
        }
        if !facts.carrier {
            return Some(Problem::NoCarrier(device()));
        }
        if facts.addresses == 0 {
            return Some(Problem::NoAddress(device()));
        }
        self.probe_families.iter().find_map(|f| self.next_hop(*f).err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(facts: DeviceFacts, gateway: Option<&str>) -> LinkPlan {
        LinkPlan {
            device: "eth0.2".into(),
            configured_gateway: gateway.map(|g| g.parse().expect("address")),
            probe_families: vec![Family::V4],
            facts,
        }
    }

    fn working() -> DeviceFacts {
        DeviceFacts {
            index: Some(4),
            up: true,
            carrier: true,
            point_to_point: false,
            addresses: 1,
            system_gateways: [Some("192.0.2.1".parse().ok()), None],
        }
    }

    #[test]
    fn a_device_carries_traffic_when_up_with_carrier_and_an_address() {
        assert!(working().usable());
        for broken in [
            DeviceFacts { index: None, ..working() },
            DeviceFacts { up: false, ..working() },
            DeviceFacts { carrier: false, ..working() },
            DeviceFacts { addresses: 0, ..working() },
        ] {
            assert!(!broken.usable(), "{broken:?}");
        }
    }

    #[test]
    fn the_problem_names_the_first_thing_missing() {
        let problem = |facts| plan(facts, None).problem().map(|p| p.to_string());
        assert_eq!(problem(working()), None);
        let none = DeviceFacts::default();
        assert_eq!(problem(none).as_deref(), Some("device eth0.2 does not exist (yet)"));
        let down = DeviceFacts { up: false, carrier: false, ..working() };
        assert_eq!(problem(down).as_deref(), Some("device eth0.2 is down"));
        let unplugged = DeviceFacts { carrier: false, ..working() };
        assert_eq!(problem(unplugged).as_deref(), Some("device eth0.2 has no carrier"));
        let bare = DeviceFacts { addresses: 0, ..working() };
        assert_eq!(problem(bare).as_deref(), Some("device eth0.2 has no address"));
        let no_route = DeviceFacts { system_gateways: [None, None], ..working() };
        assert!(problem(no_route).unwrap().starts_with("no IPv4 gateway for eth0.2"));
    }

    #[test]
    fn the_next_hop_is_configured_found_or_the_device_itself() {
        let found = plan(working(), None);
        assert_eq!(found.next_hop(Family::V4), Ok("192.0.2.1".parse().ok()));
        let configured = plan(working(), Some("198.51.100.1"));
        assert_eq!(configured.next_hop(Family::V4), Ok("198.51.100.1".parse().ok()));
        let p2p = DeviceFacts { point_to_point: true, system_gateways: [None, None], ..working() };
        assert_eq!(plan(p2p, None).next_hop(Family::V4), Ok(None));
        let no_v6 = plan(working(), None).next_hop(Family::V6).unwrap_err();
        assert_eq!(no_v6, Problem::NoGateway { device: "eth0.2".into(), family: Family::V6 });
    }
}
