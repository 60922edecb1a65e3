//! Hand-written rtnetlink: just the messages wanmon needs (links, addresses, routes, rules),
//! built and parsed without a netlink framework, which would cost ~450 KB of flash.
//!
//! Building and parsing are pure functions over byte buffers and are tested on their own; the
//! socket at the bottom is a thin layer over libc.

use super::kernel;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
pub(super) const NLM_F_ACK: u16 = 0x4;
pub(super) const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWRULE: u16 = 32;
pub const RTM_DELRULE: u16 = 33;
const RTM_GETRULE: u16 = 34;

const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RTA_MARK: u16 = 16;
const IFLA_IFNAME: u16 = 3;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_SUPPRESS_PREFIXLEN: u16 = 14;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FRA_PROTOCOL: u16 = 21;

pub const IFF_UP: u32 = 0x1;
pub const IFF_POINTOPOINT: u32 = 0x10;
pub const IFF_LOWER_UP: u32 = 0x10000;

pub const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const FR_ACT_TO_TBL: u8 = 1;

/// Multicast groups: links, IPv4/IPv6 addresses, routes and rules.
pub const EVENT_GROUPS: u32 = 0x1 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x40000;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

pub fn family_of(address: &IpAddr) -> u8 {
    if address.is_ipv4() { AF_INET } else { AF_INET6 }
}

/// Builds one netlink message: header, fixed part, attributes.
#[derive(Debug)]
pub struct Builder {
    buffer: Vec<u8>,
}

impl Builder {
    pub(super) fn new(kind: u16, flags: u16, seq: u32) -> Builder {
        let mut buffer = Vec::with_capacity(128);
        buffer.extend_from_slice(&0u32.to_ne_bytes());
        buffer.extend_from_slice(&kind.to_ne_bytes());
        buffer.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buffer.extend_from_slice(&seq.to_ne_bytes());
        buffer.extend_from_slice(&0u32.to_ne_bytes());
        Builder { buffer }
    }

    pub(super) fn bytes(mut self, bytes: &[u8]) -> Builder {
        self.buffer.extend_from_slice(bytes);
        self.pad();
        self
    }

    fn pad(&mut self) {
        while self.buffer.len() % 4 != 0 {
            self.buffer.push(0);
        }
    }

    pub(super) fn attr(mut self, kind: u16, payload: &[u8]) -> Builder {
        self.buffer.extend_from_slice(&((payload.len() + 4) as u16).to_ne_bytes());
        self.buffer.extend_from_slice(&kind.to_ne_bytes());
        self.buffer.extend_from_slice(payload);
        self.pad();
        self
    }

    fn attr_u32(self, kind: u16, value: u32) -> Builder {
        self.attr(kind, &value.to_ne_bytes())
    }

    fn attr_address(self, kind: u16, address: &IpAddr) -> Builder {
        match address {
            IpAddr::V4(a) => self.attr(kind, &a.octets()),
            IpAddr::V6(a) => self.attr(kind, &a.octets()),
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = (self.buffer.len() as u32).to_ne_bytes();
        self.buffer[..4].copy_from_slice(&len);
        self.buffer
    }
}

/// A default route in `table`: through `oif`, via `gateway` if the link has one.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DefaultRoute {
    pub family: u8,
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
    pub oif: u32,
    pub gateway: Option<IpAddr>,
}

fn rtmsg(family: u8, table: u32, protocol: u8, scope: u8, kind: u8) -> [u8; 12] {
    let table_byte = if table < 256 { table as u8 } else { 252 }; // RT_TABLE_COMPAT; RTA_TABLE has the id
    [family, 0, 0, 0, table_byte, protocol, scope, kind, 0, 0, 0, 0]
}

/// Adds or atomically replaces a default route (the kernel swaps it in one step).
pub fn replace_default_route(seq: u32, route: &DefaultRoute) -> Vec<u8> {
    let scope = if route.gateway.is_some() { RT_SCOPE_UNIVERSE } else { RT_SCOPE_LINK };
    let mut b = Builder::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq)
        .bytes(&rtmsg(route.family, route.table, route.protocol, scope, RTN_UNICAST))
        .attr_u32(RTA_TABLE, route.table)
        .attr_u32(RTA_OIF, route.oif)
        .attr_u32(RTA_PRIORITY, route.metric);
    if let Some(gateway) = &route.gateway {
        b = b.attr_address(RTA_GATEWAY, gateway);
    }
    b.finish()
}

/// Deletes the default route of `family` in `table` with this metric.
pub fn delete_default_route(seq: u32, family: u8, table: u32, metric: u32) -> Vec<u8> {
    Builder::new(RTM_DELROUTE, NLM_F_ACK, seq)
        .bytes(&rtmsg(family, table, 0, RT_SCOPE_UNIVERSE, RTN_UNICAST))
        .attr_u32(RTA_TABLE, table)
        .attr_u32(RTA_PRIORITY, metric)
        .finish()
}

/// A policy rule wanmon owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub family: u8,
    pub priority: u32,
    pub table: u32,
    /// Only packets with this mark (the probes of one link).
    pub fwmark: Option<u32>,
    /// Ignore routes of this prefix length or shorter: `0` makes `main` answer for everything
    /// but its default routes.
    pub suppress_prefixlength: Option<u32>,
    pub protocol: u8,
}

fn rule_message(kind: u16, flags: u16, seq: u32, rule: &Rule) -> Vec<u8> {
    let table_byte = if rule.table < 256 { rule.table as u8 } else { 252 };
    let header = [rule.family, 0, 0, 0, table_byte, 0, 0, FR_ACT_TO_TBL, 0, 0, 0, 0];
    let mut b = Builder::new(kind, flags, seq)
        .bytes(&header)
        .attr_u32(FRA_PRIORITY, rule.priority)
        .attr_u32(FRA_TABLE, rule.table)
        .attr(FRA_PROTOCOL, &[rule.protocol]);
    if let Some(mark) = rule.fwmark {
        b = b.attr_u32(FRA_FWMARK, mark).attr_u32(FRA_FWMASK, u32::MAX);
    }
    if let Some(length) = rule.suppress_prefixlength {
        b = b.attr_u32(FRA_SUPPRESS_PREFIXLEN, length);
    }
    b.finish()
}

pub fn add_rule(seq: u32, rule: &Rule) -> Vec<u8> {
    rule_message(RTM_NEWRULE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, rule)
}

pub fn delete_rule(seq: u32, rule: &Rule) -> Vec<u8> {
    rule_message(RTM_DELRULE, NLM_F_ACK, seq, rule)
}

/// Asks for every link, address, route or rule of a family (0: all).
pub fn dump(seq: u32, kind: DumpKind, family: u8) -> Vec<u8> {
    let (message, header): (u16, &[u8]) = match kind {
        DumpKind::Links => (RTM_GETLINK, &[family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        DumpKind::Addresses => (RTM_GETADDR, &[family, 0, 0, 0, 0, 0, 0, 0]),
        DumpKind::Routes => (RTM_GETROUTE, &[family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        DumpKind::Rules => (RTM_GETRULE, &[family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    };
    Builder::new(message, NLM_F_DUMP, seq).bytes(header).finish()
}

/// The route the kernel would use for `destination` (as `ip route get`), for packets with `mark`.
pub fn get_route(seq: u32, destination: &IpAddr, mark: u32) -> Vec<u8> {
    let family = family_of(destination);
    let prefix = if family == AF_INET { 32 } else { 128 };
    Builder::new(RTM_GETROUTE, 0, seq)
        .bytes(&[family, prefix, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .attr_address(RTA_DST, destination)
        .attr_u32(RTA_MARK, mark)
        .finish()
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DumpKind {
    Links,
    Addresses,
    Routes,
    Rules,
}

/// One message out of a buffer from the kernel.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Splits a receive buffer into messages; stops at the first malformed header.
pub fn messages(buffer: &[u8]) -> impl Iterator<Item = Message<'_>> {
    let mut rest = buffer;
    std::iter::from_fn(move || {
        if rest.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize;
        if len < 16 || len > rest.len() {
            rest = &[];
            return None;
        }
        let message = Message {
            kind: u16::from_ne_bytes(rest[4..6].try_into().ok()?),
            seq: u32::from_ne_bytes(rest[8..12].try_into().ok()?),
            payload: &rest[16..len],
        };
        rest = &rest[align(len).min(rest.len())..];
        Some(message)
    })
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Attributes after a fixed header of `skip` bytes: (type, payload).
pub fn attributes(payload: &[u8], skip: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = payload.get(skip..).unwrap_or_default();
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            rest = &[];
            return None;
        }
        let value = &rest[4..len];
        rest = &rest[align(len).min(rest.len())..];
        Some((kind, value))
    })
}

fn u32_of(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?))
}

fn address_of(family: u8, bytes: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::from(<[u8; 4]>::try_from(bytes.get(..4)?).ok()?)),
        AF_INET6 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes.get(..16)?).ok()?)),
        _ => None,
    }
}

/// The error code of an `NLMSG_ERROR` (0 is an acknowledgement).
pub fn error_code(payload: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(payload.get(..4)?.try_into().ok()?))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub flags: u32,
}

impl LinkInfo {
    /// Up with carrier: able to carry traffic.
    pub fn usable(&self) -> bool {
        self.flags & IFF_UP != 0 && self.flags & IFF_LOWER_UP != 0
    }
}

pub fn parse_link(payload: &[u8]) -> Option<LinkInfo> {
    let index = u32_of(payload.get(4..8)?)?;
    let flags = u32_of(payload.get(8..12)?)?;
    let name =
        attributes(payload, 16).find(|(kind, _)| *kind == IFLA_IFNAME).map(|(_, value)| {
            let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
            // Linux takes any bytes but '/' and NUL; a name that is not UTF-8 is none of ours.
            crate::text::utf8(&value[..end]).map(str::to_string).unwrap_or_default()
        })?;
    Some(LinkInfo { index, name, flags })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressInfo {
    pub index: u32,
    pub address: IpAddr,
}

pub fn parse_address(payload: &[u8]) -> Option<AddressInfo> {
    let family = *payload.first()?;
    let index = u32_of(payload.get(4..8)?)?;
    let mut address = None;
    for (kind, value) in attributes(payload, 8) {
        // IFA_LOCAL is the own address on point-to-point links, where IFA_ADDRESS is the peer.
        if kind == IFA_LOCAL || (kind == IFA_ADDRESS && address.is_none()) {
            address = address_of(family, value);
        }
    }
    Some(AddressInfo { index, address: address? })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    pub family: u8,
    pub dst_len: u8,
    pub table: u32,
    pub protocol: u8,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub metric: u32,
    /// The sources a source-specific route serves (IPv6 `default from PREFIX`).
    pub source: Option<Prefix>,
}

/// An address prefix: `2001:db8:a::/48`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub address: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn contains(&self, address: &IpAddr) -> bool {
        let (prefix, address, bits) = match (self.address, address) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                (u128::from(u32::from(p)), u128::from(u32::from(*a)), 32)
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => (u128::from(p), u128::from(*a), 128),
            _ => return false,
        };
        let host_bits = bits - u32::from(self.len).min(bits);
        (prefix ^ address).checked_shr(host_bits).unwrap_or(0) == 0
    }
}

pub fn parse_route(payload: &[u8]) -> Option<RouteInfo> {
    let header = payload.get(..12)?;
    let mut route = RouteInfo {
        family: header[0],
        dst_len: header[1],
        table: u32::from(header[4]),
        protocol: header[5],
        oif: None,
        gateway: None,
        metric: 0,
        source: None,
    };
    let source_len = header[2];
    for (kind, value) in attributes(payload, 12) {
        match kind {
            RTA_TABLE => route.table = u32_of(value)?,
            RTA_OIF => route.oif = u32_of(value),
            RTA_GATEWAY => route.gateway = address_of(route.family, value),
            RTA_PRIORITY => route.metric = u32_of(value)?,
            RTA_SRC if source_len > 0 => {
                route.source = address_of(route.family, value)
                    .map(|address| Prefix { address, len: source_len })
            }
            _ => {}
        }
    }
    Some(route)
}

/// Reads back a rule in the same shape wanmon writes them.
pub fn parse_rule(payload: &[u8]) -> Option<Rule> {
    let header = payload.get(..12)?;
    let mut rule = Rule {
        family: header[0],
        priority: 0,
        table: u32::from(header[4]),
        fwmark: None,
        suppress_prefixlength: None,
        protocol: 0,
    };
    for (kind, value) in attributes(payload, 12) {
        match kind {
            FRA_PRIORITY => rule.priority = u32_of(value)?,
            FRA_TABLE => rule.table = u32_of(value)?,
            FRA_FWMARK => rule.fwmark = u32_of(value),
            FRA_SUPPRESS_PREFIXLEN => {
                rule.suppress_prefixlength = u32_of(value).filter(|v| *v != u32::MAX)
            }
            FRA_PROTOCOL => rule.protocol = *value.first()?,
            _ => {}
        }
    }
    Some(rule)
}

/// A kernel answer too short or garbled to read. An errno, not a message: an `io::Error` made
/// from a string brings 3 KB of boxed-error `Debug` and Unicode tables into the router's binary.
fn malformed() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADMSG)
}

/// A NETLINK_ROUTE socket: for requests (groups 0) or for events (groups set).
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Socket {
    /// An rtnetlink socket, subscribed to `groups`.
    pub fn open(groups: u32) -> io::Result<Socket> {
        Socket::open_protocol(libc::NETLINK_ROUTE, groups)
    }

    /// A socket of another netlink family, such as `NETLINK_NETFILTER` for conntrack.
    pub fn open_protocol(protocol: libc::c_int, groups: u32) -> io::Result<Socket> {
        // SAFETY: plain socket(2) call; the result is checked before it is owned.
        let fd = unsafe {
            kernel::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                protocol,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
        let mut address: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        address.nl_family = libc::AF_NETLINK as u16;
        address.nl_groups = groups;
        // SAFETY: address is a valid sockaddr_nl of the size passed.
        let result = unsafe {
            kernel::bind(
                fd.as_raw_fd(),
                (&address as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        if groups != 0 {
            // Events may come in bursts (a device going away takes its routes with it).
            let size: libc::c_int = 1 << 20;
            // SAFETY: the option value is a c_int of the size passed.
            unsafe {
                kernel::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&size as *const libc::c_int).cast(),
                    4,
                );
            }
        }
        Ok(Socket { fd, seq: 1 })
    }

    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    pub fn send(&self, message: &[u8]) -> io::Result<()> {
        // SAFETY: message is a valid buffer of the length passed.
        let sent =
            unsafe { kernel::send(self.fd.as_raw_fd(), message.as_ptr().cast(), message.len(), 0) };
        if sent < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    /// One datagram into `buffer`; `Ok(0)` when nothing is waiting.
    pub fn receive(&self, buffer: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buffer is valid for writes of its length.
        let got = unsafe {
            kernel::recv(self.fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len(), 0)
        };
        if got < 0 {
            let error = io::Error::last_os_error();
            return if error.raw_os_error() == Some(libc::EAGAIN) { Ok(0) } else { Err(error) };
        }
        Ok(got as usize)
    }

    /// Waits up to a second for the socket to be readable.
    fn wait(&self) -> io::Result<()> {
        let mut pollfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let ready = unsafe { kernel::poll(&mut pollfd, 1, 1000) };
        match ready {
            n if n < 0 => Err(io::Error::last_os_error()),
            // No answer within 1 s.
            0 => Err(io::Error::from_raw_os_error(libc::ETIMEDOUT)),
            _ => Ok(()),
        }
    }

    /// Sends a request that wants an acknowledgement; the kernel's refusal becomes the error.
    pub fn request(&mut self, build: impl FnOnce(u32) -> Vec<u8>) -> io::Result<()> {
        let seq = self.next_seq();
        self.acknowledged(seq, &build(seq))
    }

    /// Not generic, so that one copy serves every request (each closure would make another).
    fn acknowledged(&mut self, seq: u32, message: &[u8]) -> io::Result<()> {
        self.send(message)?;
        let mut buffer = vec![0u8; 8192];
        loop {
            self.wait()?;
            let len = self.receive(&mut buffer)?;
            for message in messages(&buffer[..len]) {
                if message.seq == seq && message.kind == NLMSG_ERROR {
                    return match error_code(message.payload) {
                        Some(0) => Ok(()),
                        Some(code) => Err(io::Error::from_raw_os_error(-code)),
                        None => Err(malformed()),
                    };
                }
            }
        }
    }

    /// Runs a dump and hands every message's payload of the wanted kind to `each`.
    pub fn dump(
        &mut self,
        kind: DumpKind,
        family: u8,
        each: impl FnMut(u16, &[u8]),
    ) -> io::Result<()> {
        self.dump_with(|seq| dump(seq, kind, family), each)
    }

    /// Runs the dump request `build` makes and hands every message's payload to `each`.
    pub fn dump_with(
        &mut self,
        build: impl FnOnce(u32) -> Vec<u8>,
        mut each: impl FnMut(u16, &[u8]),
    ) -> io::Result<()> {
        let seq = self.next_seq();
        self.dumped(seq, &build(seq), &mut each)
    }

    /// Not generic, so that one copy serves every dump.
    fn dumped(
        &mut self,
        seq: u32,
        request: &[u8],
        each: &mut dyn FnMut(u16, &[u8]),
    ) -> io::Result<()> {
        self.send(request)?;
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            self.wait()?;
            let len = self.receive(&mut buffer)?;
            for message in messages(&buffer[..len]) {
                if message.seq != seq {
                    continue;
                }
                match message.kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => match error_code(message.payload) {
                        Some(0) => return Ok(()),
                        Some(code) => return Err(io::Error::from_raw_os_error(-code)),
                        None => return Err(malformed()),
                    },
                    kind => each(kind, message.payload),
                }
            }
        }
    }

    /// `ip route get`: the route the kernel picks for `destination` with fwmark `mark`.
    pub fn route_to(&mut self, destination: &IpAddr, mark: u32) -> io::Result<RouteInfo> {
        let seq = self.next_seq();
        self.send(&get_route(seq, destination, mark))?;
        let mut buffer = vec![0u8; 8192];
        loop {
            self.wait()?;
            let len = self.receive(&mut buffer)?;
            if let Some(message) = messages(&buffer[..len]).find(|m| m.seq == seq) {
                if message.kind == NLMSG_ERROR {
                    let code = error_code(message.payload).unwrap_or(-libc::EINVAL);
                    return Err(io::Error::from_raw_os_error(-code));
                }
                return parse_route(message.payload).ok_or_else(malformed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: &[u8]) -> (u32, u16, u16, u32) {
        (
            u32::from_ne_bytes(bytes[0..4].try_into().unwrap()),
            u16::from_ne_bytes(bytes[4..6].try_into().unwrap()),
            u16::from_ne_bytes(bytes[6..8].try_into().unwrap()),
            u32::from_ne_bytes(bytes[8..12].try_into().unwrap()),
        )
    }

    #[test]
    fn a_route_replacement_is_encoded_and_reads_back() {
        let route = DefaultRoute {
            family: AF_INET,
            table: 22349,
            protocol: 87,
            metric: 10,
            oif: 7,
            gateway: Some("198.51.100.1".parse().unwrap()),
        };
        let bytes = replace_default_route(42, &route);
        let (len, kind, flags, seq) = header(&bytes);
        assert_eq!((len as usize, kind, seq), (bytes.len(), RTM_NEWROUTE, 42));
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
        assert_eq!(bytes.len() % 4, 0);
        let message = messages(&bytes).next().unwrap();
        let parsed = parse_route(message.payload).unwrap();
        assert_eq!(
            parsed,
            RouteInfo {
                family: AF_INET,
                dst_len: 0,
                table: 22349,
                protocol: 87,
                oif: Some(7),
                gateway: route.gateway,
                metric: 10,
                source: None,
            }
        );
    }

    #[test]
    fn a_source_specific_route_reads_with_its_prefix() {
        // `default from 2001:db8:a::/48 dev 3`, as netifd writes one per delegated prefix.
        let header = [AF_INET6, 0, 48, 0, RT_TABLE_MAIN as u8, 3, 0, 1, 0, 0, 0, 0];
        let source: std::net::Ipv6Addr = "2001:db8:a::".parse().unwrap();
        let bytes = Builder::new(RTM_NEWROUTE, 0, 1)
            .bytes(&header)
            .attr(RTA_SRC, &source.octets())
            .attr_u32(RTA_OIF, 3)
            .finish();
        let message = messages(&bytes).next().unwrap();
        let prefix = parse_route(message.payload).unwrap().source.expect("a source prefix");
        assert_eq!(prefix, Prefix { address: source.into(), len: 48 });
        let inside: IpAddr = "2001:db8:a:1::100".parse().unwrap();
        let outside: IpAddr = "2001:db8:b::100".parse().unwrap();
        assert!(prefix.contains(&inside) && !prefix.contains(&outside));
        assert!(!prefix.contains(&"192.0.2.1".parse().unwrap()));
        let everything = Prefix { address: source.into(), len: 0 };
        assert!(everything.contains(&outside));
        let v4 = Prefix { address: "192.0.2.0".parse().unwrap(), len: 25 };
        assert!(v4.contains(&"192.0.2.127".parse().unwrap()));
        assert!(!v4.contains(&"192.0.2.128".parse().unwrap()));
        // No source length: not source-specific, whatever the attributes say.
        let mut plain = header;
        plain[2] = 0;
        let bytes =
            Builder::new(RTM_NEWROUTE, 0, 1).bytes(&plain).attr(RTA_SRC, &source.octets()).finish();
        assert_eq!(parse_route(messages(&bytes).next().unwrap().payload).unwrap().source, None);
    }

    #[test]
    fn a_point_to_point_route_has_link_scope_and_no_gateway() {
        let route = DefaultRoute {
            family: AF_INET6,
            table: 100,
            protocol: 87,
            metric: 1,
            oif: 3,
            gateway: None,
        };
        let bytes = replace_default_route(1, &route);
        let message = messages(&bytes).next().unwrap();
        assert_eq!(message.payload[6], RT_SCOPE_LINK);
        assert_eq!(message.payload[4], 100);
        assert_eq!(parse_route(message.payload).unwrap().gateway, None);
    }

    #[test]
    fn rules_are_encoded_and_read_back_the_same() {
        for rule in [
            Rule {
                family: AF_INET,
                priority: 22349,
                table: 22350,
                fwmark: Some(0x574d01),
                suppress_prefixlength: None,
                protocol: 87,
            },
            Rule {
                family: AF_INET6,
                priority: 22350,
                table: RT_TABLE_MAIN,
                fwmark: None,
                suppress_prefixlength: Some(0),
                protocol: 87,
            },
        ] {
            let bytes = add_rule(9, &rule);
            let message = messages(&bytes).next().unwrap();
            assert_eq!(message.kind, RTM_NEWRULE);
            assert_eq!(parse_rule(message.payload).unwrap(), rule);
            let deleted = delete_rule(10, &rule);
            assert_eq!(messages(&deleted).next().unwrap().kind, RTM_DELRULE);
        }
    }

    #[test]
    fn a_split_buffer_yields_every_message_and_stops_at_garbage() {
        let mut buffer = dump(1, DumpKind::Links, 0);
        buffer.extend(dump(2, DumpKind::Routes, AF_INET));
        let seqs: Vec<u32> = messages(&buffer).map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2]);
        // A length longer than the buffer ends the walk instead of reading past it.
        let mut bad = buffer.clone();
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(messages(&bad).count(), 0);
        // A length below the header size is garbage too.
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(messages(&bad).count(), 0);
        assert_eq!(messages(&buffer[..10]).count(), 0);
    }

    #[test]
    fn malformed_attributes_end_the_walk() {
        let payload = [0u8; 12];
        assert_eq!(attributes(&payload, 12).count(), 0);
        let mut with_attr = payload.to_vec();
        with_attr.extend_from_slice(&[8, 0, 4, 0, 7, 0, 0, 0]);
        assert_eq!(attributes(&with_attr, 12).collect::<Vec<_>>(), [(4, &[7u8, 0, 0, 0][..])]);
        let mut long = payload.to_vec();
        long.extend_from_slice(&[200, 0, 4, 0, 7, 0, 0, 0]);
        assert_eq!(attributes(&long, 12).count(), 0);
        assert_eq!(attributes(&payload, 40).count(), 0, "skip beyond the payload");
        assert_eq!(parse_route(&[1, 2, 3]), None, "a truncated header is refused");
    }

    #[test]
    fn links_and_addresses_parse() {
        let mut link = vec![0u8; 16];
        link[4..8].copy_from_slice(&5u32.to_ne_bytes());
        link[8..12].copy_from_slice(&(IFF_UP | IFF_LOWER_UP).to_ne_bytes());
        link.extend_from_slice(&[9, 0, 3, 0, b'w', b'a', b'n', 0, 0, 0, 0, 0]);
        let info = parse_link(&link).unwrap();
        assert_eq!(info, LinkInfo { index: 5, name: "wan".into(), flags: IFF_UP | IFF_LOWER_UP });
        assert!(info.usable());
        assert_eq!(parse_link(&link[..16]), None, "a link without a name");

        let mut address = vec![AF_INET, 24, 0, 0];
        address.extend_from_slice(&5u32.to_ne_bytes());
        address.extend_from_slice(&[8, 0, 1, 0, 198, 51, 100, 9, 8, 0, 2, 0, 198, 51, 100, 2]);
        assert_eq!(
            parse_address(&address).unwrap(),
            AddressInfo { index: 5, address: "198.51.100.2".parse().unwrap() }
        );
        address[0] = 99;
        assert_eq!(parse_address(&address), None, "an unknown family has no address");
    }

    #[test]
    fn acknowledgements_and_errors_read_their_code() {
        assert_eq!(error_code(&0i32.to_ne_bytes()), Some(0));
        assert_eq!(error_code(&(-17i32).to_ne_bytes()), Some(-17));
        assert_eq!(error_code(&[1, 2]), None);
    }
}
