//! After a switch, the connection-tracking entries of the LAN's flows through the link the
//! route left: a flow that never goes quiet (WireGuard, SIP, a game) keeps its entry, and with
//! it the old link's address as its source (or no NAT at all), until it is idle; it would stay
//! broken. Two kinds of entries are deleted, each by its reply tuple:
//! - NATed to the old link: the reply comes back to one of its addresses, and the original
//!   source was another address (LAN hosts behind masquerading or source NAT, IPv4 or IPv6).
//!   (A masqueraded entry the kernel also drops by itself, at the first packet that leaves by
//!   another device, which it loses; a source-NATed one it keeps for good.)
//! - routed without NAT from a prefix the old link delegated to the LAN (IPv6): the reply comes
//!   back to the original source, which lies in one of the link's source prefixes (netifd's
//!   `default from PREFIX` routes) while the destination lies outside them. Deleted, the
//!   flow's next packet is new and the backup's masquerading (fw4's `masq6`) takes it; kept, it
//!   would leave the backup with the primary's prefix, which the backup's ISP drops.
//!
//! The router's own flows, inbound flows and flows through other links are left alone, unlike
//! mwan3's flush of the whole table. Over ctnetlink (`NETLINK_NETFILTER`), dumped and deleted
//! entry by entry with the original tuple the kernel gave.

use super::netlink::{self, Builder, Prefix, Socket};
use crate::text::OsError;
use std::io;
use std::net::IpAddr;

const NETLINK_NETFILTER: libc::c_int = 12;
/// `NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET` and `..._DELETE`.
const CT_GET: u16 = (1 << 8) | 1;
const CT_DELETE: u16 = (1 << 8) | 2;
/// `NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET_STATS_CPU`: one small answer per CPU.
const CT_GET_STATS_CPU: u16 = (1 << 8) | 4;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_IP: u16 = 1;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const NLA_F_NESTED: u16 = 0x8000;
/// `struct nfgenmsg` before the attributes.
const NFGEN_LEN: usize = 4;

/// The header of every ctnetlink message: family, version 0, resource id 0.
fn nfgenmsg(family: u8) -> [u8; NFGEN_LEN] {
    [family, 0, 0, 0]
}

pub fn dump_request(seq: u32, family: u8) -> Vec<u8> {
    Builder::new(CT_GET, netlink::NLM_F_DUMP, seq).bytes(&nfgenmsg(family)).finish()
}

/// What deletes one entry: its original tuple (and zone), as the kernel wrote them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    family: u8,
    tuple: Vec<u8>,
    zone: Option<[u8; 2]>,
}

pub fn delete_request(seq: u32, entry: &Entry) -> Vec<u8> {
    let mut builder = Builder::new(CT_DELETE, netlink::NLM_F_ACK, seq)
        .bytes(&nfgenmsg(entry.family))
        .attr(CTA_TUPLE_ORIG | NLA_F_NESTED, &entry.tuple);
    if let Some(zone) = entry.zone {
        builder = builder.attr(CTA_ZONE, &zone);
    }
    builder.finish()
}

/// The source and destination addresses of a tuple.
fn endpoints(tuple: &[u8]) -> (Option<IpAddr>, Option<IpAddr>) {
    let (mut source, mut destination) = (None, None);
    for (kind, value) in netlink::attributes(tuple, 0) {
        if kind != CTA_TUPLE_IP {
            continue;
        }
        for (kind, bytes) in netlink::attributes(value, 0) {
            let address = match bytes.len() {
                4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
                _ => None,
            };
            match kind {
                CTA_IP_V4_SRC | CTA_IP_V6_SRC => source = address,
                CTA_IP_V4_DST | CTA_IP_V6_DST => destination = address,
                _ => {}
            }
        }
    }
    (source, destination)
}

/// The link the route left, as its LAN flows show it.
#[derive(Debug, Default)]
pub struct LeftLink {
    /// Its addresses: the flows NATed to it answer to one of them.
    pub addresses: Vec<IpAddr>,
    /// The prefixes it delegated to the LAN: the flows routed from them without NAT.
    pub prefixes: Vec<Prefix>,
}

impl LeftLink {
    fn delegated(&self, address: Option<IpAddr>) -> bool {
        address.is_some_and(|a| self.prefixes.iter().any(|p| p.contains(&a)))
    }

    /// Whether a flow from `source` to `destination`, answered to `answered_to`, went out
    /// through this link on the LAN's behalf.
    fn carried(
        &self,
        source: Option<IpAddr>,
        destination: Option<IpAddr>,
        answered_to: IpAddr,
    ) -> bool {
        let ours = self.addresses.contains(&answered_to);
        let natted = ours && source != Some(answered_to);
        let routed = !ours
            && source == Some(answered_to)
            && self.delegated(source)
            && !self.delegated(destination);
        natted || routed
    }
}

/// The entry of a conntrack message if it is a LAN flow that went out through `left`.
pub fn carried_by(payload: &[u8], left: &LeftLink) -> Option<Entry> {
    let family = *payload.first()?;
    let (mut original, mut reply, mut zone) = (None, None, None);
    for (kind, value) in netlink::attributes(payload, NFGEN_LEN) {
        match kind {
            CTA_TUPLE_ORIG => original = Some(value),
            CTA_TUPLE_REPLY => reply = Some(value),
            CTA_ZONE => zone = <[u8; 2]>::try_from(value).ok(),
            _ => {}
        }
    }
    let (original, reply) = (original?, reply?);
    let (source, destination) = endpoints(original);
    let (_, answered_to) = endpoints(reply);
    left.carried(source, destination, answered_to?).then(|| Entry {
        family,
        tuple: original.to_vec(),
        zone,
    })
}

/// Deletes the entry of every LAN flow that went out through `left`; returns how many went.
pub fn clear(left: &LeftLink) -> Result<usize, ClearError> {
    if left.addresses.is_empty() && left.prefixes.is_empty() {
        return Ok(0);
    }
    let mut socket = open()?;
    let mut entries = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        socket
            .dump_with(
                |seq| dump_request(seq, family),
                |_, payload| entries.extend(carried_by(payload, left)),
            )
            .map_err(ClearError::of_first_request)?;
    }
    let mut cleared = 0;
    for entry in &entries {
        match socket.request(|seq| delete_request(seq, entry)) {
            Ok(()) => cleared += 1,
            // Gone meanwhile (it timed out, or its flow ended): nothing to do.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(ClearError::Io(e)),
        }
    }
    Ok(cleared)
}

/// A ctnetlink socket; a kernel without nfnetlink refuses it.
fn open() -> Result<Socket, ClearError> {
    Socket::open_protocol(NETLINK_NETFILTER, 0).map_err(ClearError::of_first_request)
}

/// Whether the kernel offers what [`clear`] needs, asked without dumping the table: its
/// per-CPU statistics, a few small messages.
pub fn available() -> Result<(), ClearError> {
    let mut socket = open()?;
    let request = |seq| {
        let family = libc::AF_UNSPEC as u8;
        Builder::new(CT_GET_STATS_CPU, netlink::NLM_F_DUMP, seq).bytes(&nfgenmsg(family)).finish()
    };
    socket.dump_with(request, |_, _| {}).map_err(ClearError::of_first_request)
}

/// Why the LAN's flows through a link could not be removed.
#[derive(Debug)]
pub enum ClearError {
    /// The kernel offers no conntrack netlink interface. OpenWrt packages it apart
    /// (kmod-nf-conntrack-netlink), and stock images lack it: firewall4 does not need it.
    NoInterface(io::Error),
    Io(io::Error),
}

impl ClearError {
    /// What the socket or the first dump met: no nfnetlink at all refuses the socket
    /// (EPROTONOSUPPORT), nfnetlink without its conntrack part refuses the request (EINVAL).
    fn of_first_request(e: io::Error) -> ClearError {
        match e.raw_os_error() {
            Some(libc::EPROTONOSUPPORT | libc::EINVAL) => ClearError::NoInterface(e),
            _ => ClearError::Io(e),
        }
    }
}

impl crate::text::Show for ClearError {
    fn show(&self, out: &mut String) {
        match self {
            ClearError::NoInterface(e) => put!(
                out,
                "the kernel offers no conntrack netlink interface (",
                OsError(e),
                "); on OpenWrt install \
                 kmod-nf-conntrack-netlink"
            ),
            ClearError::Io(e) => OsError(e).show(out),
        }
    }
}

crate::display_by_show!(ClearError);

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(kind: u16, inner: &[u8]) -> Vec<u8> {
        let mut out = ((inner.len() + 4) as u16).to_ne_bytes().to_vec();
        out.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        out.extend_from_slice(inner);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn tuple(source: IpAddr, destination: IpAddr) -> Vec<u8> {
        let bytes = |a: IpAddr| match a {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let (src, dst) = if source.is_ipv4() {
            (CTA_IP_V4_SRC, CTA_IP_V4_DST)
        } else {
            (CTA_IP_V6_SRC, CTA_IP_V6_DST)
        };
        let mut ip = nested(src, &bytes(source));
        ip.extend(nested(dst, &bytes(destination)));
        nested(CTA_TUPLE_IP, &ip)
    }

    /// A conntrack message: `original` is (source, destination), `reply` likewise.
    fn entry(original: (&str, &str), reply: (&str, &str)) -> Vec<u8> {
        let ip = |a: &str| a.parse::<IpAddr>().unwrap();
        let family = if ip(original.0).is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
        let mut payload = nfgenmsg(family as u8).to_vec();
        payload.extend(nested(CTA_TUPLE_ORIG, &tuple(ip(original.0), ip(original.1))));
        payload.extend(nested(CTA_TUPLE_REPLY, &tuple(ip(reply.0), ip(reply.1))));
        payload
    }

    const LAN_HOST: &str = "192.0.2.10";
    const SERVER: &str = "203.0.113.7";
    const OLD_WAN: &str = "198.51.100.2";
    const NEW_WAN: &str = "198.51.100.6";

    fn left(addresses: &[&str], prefixes: &[(&str, u8)]) -> LeftLink {
        LeftLink {
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            prefixes: prefixes
                .iter()
                .map(|(a, len)| Prefix { address: a.parse().unwrap(), len: *len })
                .collect(),
        }
    }

    #[test]
    fn a_kernel_without_conntrack_netlink_is_named_with_the_package_that_brings_it() {
        let errno = |n| io::Error::from_raw_os_error(n);
        for missing in [libc::EPROTONOSUPPORT, libc::EINVAL] {
            let said = ClearError::of_first_request(errno(missing)).to_string();
            assert!(said.contains("no conntrack netlink interface"), "{said}");
            assert!(said.ends_with("install kmod-nf-conntrack-netlink"), "{said}");
        }
        let denied = ClearError::of_first_request(errno(libc::EPERM));
        assert!(matches!(denied, ClearError::Io(_)), "{denied}");
    }

    #[test]
    fn only_flows_natted_to_the_old_link_are_chosen() {
        let old = left(&[OLD_WAN], &[]);
        // A LAN host's flow masqueraded to the old WAN's address: chosen, tuple kept whole.
        let natted = entry((LAN_HOST, SERVER), (SERVER, OLD_WAN));
        let chosen = carried_by(&natted, &old).expect("a NATed flow");
        let ip = |a: &str| a.parse::<IpAddr>().unwrap();
        assert_eq!(chosen.tuple, tuple(ip(LAN_HOST), ip(SERVER)));
        // The router's own flow from the old WAN's address (a probe): not NATed, kept.
        assert_eq!(carried_by(&entry((OLD_WAN, SERVER), (SERVER, OLD_WAN)), &old), None);
        // A flow masqueraded to the other link: kept.
        assert_eq!(carried_by(&entry((LAN_HOST, SERVER), (SERVER, NEW_WAN)), &old), None);
        // Truncated or foreign bytes: nothing.
        assert_eq!(carried_by(&natted[..natted.len() - 6], &old), None);
        assert_eq!(carried_by(&[], &old), None);
    }

    #[test]
    fn ipv6_flows_from_the_old_links_prefix_are_chosen_natted_or_not() {
        const HOST: &str = "2001:db8:a:1::100";
        const SERVER6: &str = "2001:db8:ff::1";
        const OLD_WAN6: &str = "2001:db8:1::2";
        let old = left(&[OLD_WAN6], &[("2001:db8:a::", 48), ("2001:db8:1::", 64)]);
        // Routed without NAT from the delegated prefix: chosen.
        assert!(carried_by(&entry((HOST, SERVER6), (SERVER6, HOST)), &old).is_some());
        // Masqueraded to the old link's IPv6 address: chosen.
        let other_host = "2001:db8:b:1::7";
        assert!(carried_by(&entry((other_host, SERVER6), (SERVER6, OLD_WAN6)), &old).is_some());
        // Inbound, from the outside to the LAN host: kept.
        assert_eq!(carried_by(&entry((SERVER6, HOST), (HOST, SERVER6)), &old), None);
        // Inside the prefix (LAN to LAN): kept.
        let neighbour = "2001:db8:a:2::5";
        assert_eq!(carried_by(&entry((HOST, neighbour), (neighbour, HOST)), &old), None);
        // The router's own flow from the old link's address, in its prefix too: kept.
        assert_eq!(carried_by(&entry((OLD_WAN6, SERVER6), (SERVER6, OLD_WAN6)), &old), None);
        // Another prefix's host, not NATed here: kept.
        assert_eq!(carried_by(&entry((other_host, SERVER6), (SERVER6, other_host)), &old), None);
        // A link that delegated nothing chooses no routed flow.
        assert_eq!(
            carried_by(&entry((HOST, SERVER6), (SERVER6, HOST)), &left(&[OLD_WAN6], &[])),
            None
        );
    }

    #[test]
    fn the_delete_request_carries_the_original_tuple() {
        let old = left(&[OLD_WAN], &[]);
        let chosen =
            carried_by(&entry((LAN_HOST, SERVER), (SERVER, OLD_WAN)), &old).expect("chosen");
        let request = delete_request(9, &chosen);
        let message = netlink::messages(&request).next().expect("one message");
        assert_eq!((message.kind, message.seq), (CT_DELETE, 9));
        let attributes: Vec<_> = netlink::attributes(message.payload, NFGEN_LEN).collect();
        let ip = |a: &str| a.parse::<IpAddr>().unwrap();
        assert_eq!(attributes, [(CTA_TUPLE_ORIG, &tuple(ip(LAN_HOST), ip(SERVER))[..])]);
    }
}
