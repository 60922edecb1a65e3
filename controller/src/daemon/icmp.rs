//! ICMP echo probes for IPv4 and IPv6: packets built and replies recognised by hand, sent from
//! one socket per link and family that is bound to the link's device and carries its fwmark.
//!
//! A raw socket sees every echo reply that reaches the device, so a reply counts only if its
//! identifier, its magic and session nonce in the payload, and its checksum (IPv4) all match.

use super::kernel;
use super::stream::{address_of, socket_address};
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
const MAGIC: [u8; 4] = *b"wnmn";
/// Header (8) + magic (4) + nonce (4).
pub const PACKET_LEN: usize = 16;

/// Who we are on the wire: the echo identifier and a per-run nonce in the payload.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub identifier: u16,
    pub nonce: u32,
}

/// The Internet checksum (RFC 1071).
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in bytes.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from(chunk[0]) << 8
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request. For IPv6 the kernel fills in the checksum (it covers a pseudo-header).
pub fn echo_request(v6: bool, session: Session, seq: u16) -> [u8; PACKET_LEN] {
    let mut packet = [0u8; PACKET_LEN];
    packet[0] = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
    packet[4..6].copy_from_slice(&session.identifier.to_be_bytes());
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..12].copy_from_slice(&MAGIC);
    packet[12..16].copy_from_slice(&session.nonce.to_be_bytes());
    if !v6 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The sequence number of one of our echo replies, or `None` for anything else: other ICMP
/// types, other programs' pings, truncated or corrupted packets. IPv4 raw sockets deliver the IP
/// header first; IPv6 raw sockets and ping sockets do not.
pub fn parse_reply(packet: &[u8], v6: bool, with_ip_header: bool, session: Session) -> Option<u16> {
    let icmp = if with_ip_header {
        let first = *packet.first()?;
        if first >> 4 != 4 {
            return None;
        }
        let header_len = usize::from(first & 0x0f) * 4;
        if header_len < 20 {
            return None;
        }
        packet.get(header_len..)?
    } else {
        packet
    };
    if icmp.len() < PACKET_LEN {
        return None;
    }
    let expected_type = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    if icmp[0] != expected_type || icmp[1] != 0 {
        return None;
    }
    if !v6 && checksum(icmp) != 0 {
        return None;
    }
    // Ping sockets rewrite the identifier to their own; the kernel filters those for us.
    if with_ip_header || v6 {
        let identifier = u16::from_be_bytes([icmp[4], icmp[5]]);
        if identifier != session.identifier {
            return None;
        }
    }
    if icmp[8..12] != MAGIC || icmp[12..16] != session.nonce.to_be_bytes() {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// One probe socket: a link's device, one address family.
#[derive(Debug)]
pub struct ProbeSocket {
    fd: OwnedFd,
    pub v6: bool,
    /// Raw IPv4 sockets receive the IP header with each packet.
    with_ip_header: bool,
}

impl AsRawFd for ProbeSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A socket call that failed and which one (`SO_MARK`, ...): a kernel (or emulator) that
/// lacks an option says which. (Not an `io::Error` made from a string: that boxed payload
/// brings 3 KB of `Debug` and Unicode tables into the router's binary.)
#[derive(Debug)]
pub struct SocketError {
    pub call: &'static str,
    pub cause: io::Error,
}

impl crate::text::Show for SocketError {
    fn show(&self, out: &mut String) {
        put!(out, self.call, ": ", crate::text::OsError(&self.cause))
    }
}

crate::display_by_show!(SocketError);

/// Sets a socket option; the error names it.
fn set_option(
    fd: RawFd,
    level: i32,
    name: i32,
    value: &[u8],
    call: &'static str,
) -> Result<(), SocketError> {
    // SAFETY: value is a valid buffer of the length passed.
    let result =
        unsafe { kernel::setsockopt(fd, level, name, value.as_ptr().cast(), value.len() as u32) };
    if result < 0 {
        return Err(SocketError { call, cause: io::Error::last_os_error() });
    }
    Ok(())
}

impl ProbeSocket {
    /// A socket bound to `device` whose packets carry `mark`, so the link's own routing table
    /// sends them out of this link whatever the default route is. Raw when root, else the
    /// unprivileged ping socket (where `net.ipv4.ping_group_range` allows it).
    pub fn open(v6: bool, device: &str, mark: u32) -> Result<ProbeSocket, SocketError> {
        let (domain, protocol) = if v6 {
            (libc::AF_INET6, libc::IPPROTO_ICMPV6)
        } else {
            (libc::AF_INET, libc::IPPROTO_ICMP)
        };
        let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        // SAFETY: plain socket(2) calls; results are checked before being owned.
        let mut raw = unsafe { kernel::socket(domain, libc::SOCK_RAW | flags, protocol) };
        let mut with_ip_header = !v6;
        if raw < 0 {
            // SAFETY: as above.
            raw = unsafe { kernel::socket(domain, libc::SOCK_DGRAM | flags, protocol) };
            with_ip_header = false;
        }
        if raw < 0 {
            return Err(SocketError { call: "socket", cause: io::Error::last_os_error() });
        }
        // SAFETY: raw is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_option(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            device.as_bytes(),
            "SO_BINDTODEVICE",
        )?;
        set_option(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            &mark.to_ne_bytes(),
            "SO_MARK",
        )?;
        if v6 {
            // Only echo replies reach this socket: no neighbour discovery or router adverts.
            let mut filter = [0xffu8; 32];
            let reply = usize::from(ECHO_REPLY_V6);
            filter[reply / 8] &= !(1 << (reply % 8));
            let _ = set_option(fd.as_raw_fd(), libc::IPPROTO_ICMPV6, 1, &filter, "ICMP6_FILTER");
        }
        Ok(ProbeSocket { fd, v6, with_ip_header })
    }

    /// Marks the socket's packets for another link's table (its link was renumbered).
    pub fn set_mark(&self, mark: u32) -> Result<(), SocketError> {
        set_option(
            self.fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            &mark.to_ne_bytes(),
            "SO_MARK",
        )
    }

    pub fn send(&self, target: IpAddr, packet: &[u8]) -> io::Result<()> {
        let address: SocketAddr = match target {
            IpAddr::V4(a) => SocketAddrV4::new(a, 0).into(),
            IpAddr::V6(a) => SocketAddrV6::new(a, 0, 0, 0).into(),
        };
        let (storage, len) = socket_address(&address);
        // SAFETY: packet and storage are valid for the lengths passed.
        let sent = unsafe {
            kernel::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&storage as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if sent < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    /// The next of our replies waiting on the socket: (source, sequence). Skips foreign packets.
    pub fn receive(&self, session: Session) -> io::Result<Option<(IpAddr, u16)>> {
        let mut buffer = [0u8; 1500];
        loop {
            // SAFETY: sockaddr_storage is plain data; zeroed is valid.
            let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: buffer and storage are valid for writes of the lengths passed.
            let got = unsafe {
                kernel::recvfrom(
                    self.fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    0,
                    (&mut storage as *mut libc::sockaddr_storage).cast(),
                    &mut len,
                )
            };
            if got < 0 {
                let error = io::Error::last_os_error();
                return if error.raw_os_error() == Some(libc::EAGAIN) {
                    Ok(None)
                } else {
                    Err(error)
                };
            }
            let Some(source) = address_of(&storage).map(|a| a.ip()) else {
                continue;
            };
            if let Some(seq) =
                parse_reply(&buffer[..got as usize], self.v6, self.with_ip_header, session)
            {
                return Ok(Some((source, seq)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: Session = Session { identifier: 0x1234, nonce: 0xdead_beef };

    /// An IPv4 reply as the kernel hands it to a raw socket: a 20-byte IP header, then ICMP.
    fn v4_reply(seq: u16, session: Session) -> Vec<u8> {
        let mut icmp = echo_request(false, session, seq);
        icmp[0] = ECHO_REPLY_V4;
        icmp[2..4].copy_from_slice(&[0, 0]);
        let sum = checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut packet =
            vec![0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2];
        packet.extend_from_slice(&icmp);
        packet
    }

    #[test]
    fn checksum_matches_rfc_1071_examples() {
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        assert_eq!(checksum(&[0xff]), !0xff00);
        let request = echo_request(false, SESSION, 7);
        assert_eq!(checksum(&request), 0, "a request with its checksum sums to zero");
    }

    #[test]
    fn requests_carry_identifier_sequence_and_magic() {
        let v4 = echo_request(false, SESSION, 0x0102);
        assert_eq!(&v4[..2], &[8, 0]);
        assert_eq!(&v4[4..8], &[0x12, 0x34, 0x01, 0x02]);
        assert_eq!(&v4[8..12], b"wnmn");
        let v6 = echo_request(true, SESSION, 1);
        assert_eq!(v6[0], 128);
        assert_eq!(&v6[2..4], &[0, 0], "the kernel computes the ICMPv6 checksum");
    }

    #[test]
    fn our_replies_are_recognised() {
        assert_eq!(parse_reply(&v4_reply(77, SESSION), false, true, SESSION), Some(77));
        let mut v6 = echo_request(true, SESSION, 9).to_vec();
        v6[0] = ECHO_REPLY_V6;
        assert_eq!(parse_reply(&v6, true, false, SESSION), Some(9));
        // A ping socket hands over ICMP without the IP header and with its own identifier.
        let mut dgram = v4_reply(5, Session { identifier: 999, ..SESSION })[20..].to_vec();
        assert_eq!(parse_reply(&dgram, false, false, SESSION), Some(5));
        dgram[1] = 1;
        assert_eq!(parse_reply(&dgram, false, false, SESSION), None);
    }

    #[test]
    fn foreign_and_malformed_packets_are_refused() {
        let good = v4_reply(1, SESSION);
        // Another program's ping: other identifier.
        assert_eq!(
            parse_reply(&v4_reply(1, Session { identifier: 1, ..SESSION }), false, true, SESSION),
            None
        );
        // An earlier run of wanmon: other nonce.
        assert_eq!(
            parse_reply(&v4_reply(1, Session { nonce: 1, ..SESSION }), false, true, SESSION),
            None
        );
        // Corrupted in flight.
        let mut corrupt = good.clone();
        corrupt[30] ^= 0xff;
        assert_eq!(parse_reply(&corrupt, false, true, SESSION), None);
        // Truncated, empty, a request instead of a reply, an unreachable message.
        assert_eq!(parse_reply(&good[..30], false, true, SESSION), None);
        assert_eq!(parse_reply(&[], false, true, SESSION), None);
        let mut request = good.clone();
        request[20] = ECHO_REQUEST_V4;
        assert_eq!(parse_reply(&request, false, true, SESSION), None);
        let mut unreachable = good.clone();
        unreachable[20] = 3;
        assert_eq!(parse_reply(&unreachable, false, true, SESSION), None);
        // Not IPv4, or an IP header length that is too short or past the end.
        let mut v6_header = good.clone();
        v6_header[0] = 0x65;
        assert_eq!(parse_reply(&v6_header, false, true, SESSION), None);
        let mut short_header = good.clone();
        short_header[0] = 0x44;
        assert_eq!(parse_reply(&short_header, false, true, SESSION), None);
        let mut long_header = good;
        long_header[0] = 0x4f;
        assert_eq!(parse_reply(&long_header, false, true, SESSION), None);
    }
}
