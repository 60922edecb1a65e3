//! After a switch, the connection-tracking entries NATed to the link the route left: a flow
//! that never goes quiet (WireGuard, SIP, a game) keeps its entry, and with it the old link's
//! address as its source, until it is idle; it would stay broken. Only entries whose reply comes
//! back to one of that link's addresses and whose original source was another address (source
//! NAT: LAN hosts behind masquerading) are deleted: the router's own flows and flows through
//! other links are left alone, unlike mwan3's flush of the whole table. (A masqueraded entry
//! the kernel also drops by itself, at the first packet that leaves by another device, which
//! it loses; a source-NATed one it keeps for good.) Over ctnetlink
//! (`NETLINK_NETFILTER`), dumped and deleted entry by entry with the original tuple the kernel
//! gave.

use super::netlink::{self, Builder, Socket};
use std::io;
use std::net::IpAddr;

const NETLINK_NETFILTER: libc::c_int = 12;
/// `NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET` and `..._DELETE`.
const CT_GET: u16 = (1 << 8) | 1;
const CT_DELETE: u16 = (1 << 8) | 2;
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

/// The entry of a conntrack message if it is a flow source-NATed to one of `addresses`.
pub fn natted_to(payload: &[u8], addresses: &[IpAddr]) -> Option<Entry> {
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
    let (source, _) = endpoints(original);
    let (_, answered_to) = endpoints(reply);
    let answered_to = answered_to?;
    let natted = addresses.contains(&answered_to) && source != Some(answered_to);
    natted.then(|| Entry { family, tuple: original.to_vec(), zone })
}

/// Deletes every entry NATed to `addresses`; returns how many went.
pub fn clear(addresses: &[IpAddr]) -> io::Result<usize> {
    if addresses.is_empty() {
        return Ok(0);
    }
    let mut socket = Socket::open_protocol(NETLINK_NETFILTER, 0)?;
    let mut entries = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        socket.dump_with(
            |seq| dump_request(seq, family),
            |_, payload| entries.extend(natted_to(payload, addresses)),
        )?;
    }
    let mut cleared = 0;
    for entry in &entries {
        match socket.request(|seq| delete_request(seq, entry)) {
            Ok(()) => cleared += 1,
            // Gone meanwhile (it timed out, or its flow ended): nothing to do.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(cleared)
}

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

    fn tuple(source: [u8; 4], destination: [u8; 4]) -> Vec<u8> {
        let mut ip = nested(CTA_IP_V4_SRC, &source);
        ip.extend(nested(CTA_IP_V4_DST, &destination));
        nested(CTA_TUPLE_IP, &ip)
    }

    fn entry(original: ([u8; 4], [u8; 4]), reply: ([u8; 4], [u8; 4])) -> Vec<u8> {
        let mut payload = nfgenmsg(libc::AF_INET as u8).to_vec();
        payload.extend(nested(CTA_TUPLE_ORIG, &tuple(original.0, original.1)));
        payload.extend(nested(CTA_TUPLE_REPLY, &tuple(reply.0, reply.1)));
        payload
    }

    const LAN_HOST: [u8; 4] = [192, 0, 2, 10];
    const SERVER: [u8; 4] = [203, 0, 113, 7];
    const OLD_WAN: [u8; 4] = [198, 51, 100, 2];
    const NEW_WAN: [u8; 4] = [198, 51, 100, 6];

    #[test]
    fn only_flows_natted_to_the_old_link_are_chosen() {
        let old = [IpAddr::from(OLD_WAN)];
        // A LAN host's flow masqueraded to the old WAN's address: chosen, tuple kept whole.
        let natted = entry((LAN_HOST, SERVER), (SERVER, OLD_WAN));
        let chosen = natted_to(&natted, &old).expect("a NATed flow");
        assert_eq!(chosen.tuple, tuple(LAN_HOST, SERVER));
        // The router's own flow from the old WAN's address (a probe): not NATed, kept.
        assert_eq!(natted_to(&entry((OLD_WAN, SERVER), (SERVER, OLD_WAN)), &old), None);
        // A flow masqueraded to the other link: kept.
        assert_eq!(natted_to(&entry((LAN_HOST, SERVER), (SERVER, NEW_WAN)), &old), None);
        // Truncated or foreign bytes: nothing.
        assert_eq!(natted_to(&natted[..natted.len() - 6], &old), None);
        assert_eq!(natted_to(&[], &old), None);
    }

    #[test]
    fn the_delete_request_carries_the_original_tuple() {
        let chosen = natted_to(&entry((LAN_HOST, SERVER), (SERVER, OLD_WAN)), &[OLD_WAN.into()])
            .expect("chosen");
        let request = delete_request(9, &chosen);
        let message = netlink::messages(&request).next().expect("one message");
        assert_eq!((message.kind, message.seq), (CT_DELETE, 9));
        let attributes: Vec<_> = netlink::attributes(message.payload, NFGEN_LEN).collect();
        assert_eq!(attributes, [(CTA_TUPLE_ORIG, &tuple(LAN_HOST, SERVER)[..])]);
    }
}
