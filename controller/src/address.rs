//! IP and socket addresses read from and written as text by hand. std's parser is a general one
//! that costs ~2.5 KB of the router's flash, its formatter ~2 KB; these read exactly what it
//! reads and write exactly what it writes (tested against it below), for the few places that
//! read an address (the config, the web page's `Host`) and the messages that show one.

use crate::text::{Show, byte_separated, decimal, has_byte, push_digits, split_byte, split_pair};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// An IPv4 or IPv6 address, as `str::parse::<IpAddr>` reads it.
pub fn ip(text: &str) -> Option<IpAddr> {
    match ipv4(text) {
        Some(v4) => Some(IpAddr::V4(v4)),
        None => ipv6(text).map(IpAddr::V6),
    }
}

/// Four decimal octets: no leading zeros (`01` could be meant as octal), no sign, nothing around.
pub fn ipv4(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = byte_separated(text, b'.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.len() > 1 && part.starts_with('0') {
            return None;
        }
        *octet = u8::try_from(decimal(part)?).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// Eight groups of one to four hex digits, a `::` at most once for one or more zero groups, and
/// an IPv4 address in place of the last two groups.
pub fn ipv6(text: &str) -> Option<Ipv6Addr> {
    let mut head = [0u16; 8];
    let Some((before, after)) = split_pair(text, b"::") else {
        return (groups(text, &mut head)? == 8).then_some(Ipv6Addr::from(head));
    };
    let mut tail = [0u16; 8];
    let (first, last) = (groups(before, &mut head)?, groups(after, &mut tail)?);
    // The `::` stands for at least one group, and an IPv4 part only ends the address.
    if first + last > 7 || has_byte(before, b'.') {
        return None;
    }
    head[8 - last..].copy_from_slice(&tail[..last]);
    Some(Ipv6Addr::from(head))
}

/// Reads `text`'s colon-separated groups into `out` and counts them (an IPv4 part, allowed only
/// at the end, counts two); `None` if a group is malformed or there are more than eight. An
/// empty `text` has no groups (either side of a `::`).
fn groups(text: &str, out: &mut [u16; 8]) -> Option<usize> {
    if text.is_empty() {
        return Some(0);
    }
    let mut count = 0;
    let mut parts = byte_separated(text, b':').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() && has_byte(part, b'.') {
            let [a, b, c, d] = ipv4(part)?.octets();
            *out.get_mut(count + 1)? = u16::from_be_bytes([c, d]);
            out[count] = u16::from_be_bytes([a, b]);
            return Some(count + 2);
        }
        if part.is_empty() || part.len() > 4 {
            return None;
        }
        let group = part
            .bytes()
            .try_fold(0u16, |group, b| Some(group << 4 | (b as char).to_digit(16)? as u16))?;
        *out.get_mut(count)? = group;
        count += 1;
    }
    Some(count)
}

/// `192.0.2.1:80` or `[2001:db8::1]:80` (with a numeric scope, `[fe80::1%2]:80`), as
/// `str::parse::<SocketAddr>` reads them.
pub fn socket(text: &str) -> Option<SocketAddr> {
    let port = |text: &str| u16::try_from(decimal(text)?).ok();
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = split_pair(rest, b"]:")?;
        let (address, scope) = match split_byte(inside, b'%') {
            Some((address, scope)) => (address, u32::try_from(decimal(scope)?).ok()?),
            None => (inside, 0),
        };
        return Some(SocketAddr::V6(SocketAddrV6::new(ipv6(address)?, port(after)?, 0, scope)));
    }
    let (address, after) = split_byte(text, b':')?;
    Some(SocketAddr::V4(SocketAddrV4::new(ipv4(address)?, port(after)?)))
}

/// An address as std's `Display` writes it: dotted decimal, or RFC 5952's IPv6 (lowercase, the
/// longest run of two or more zero groups as `::`, the first of equals; `::ffff:` and dotted
/// decimal for an IPv4-mapped one).
pub fn text(address: &IpAddr) -> String {
    let mut out = String::with_capacity(39);
    Shown(*address).show(&mut out);
    out
}

/// An address in a message: `text!("via ", Shown(address))` writes [`text`].
#[derive(Clone, Copy, Debug)]
pub struct Shown(pub IpAddr);

impl Show for Shown {
    fn show(&self, out: &mut String) {
        match self.0 {
            IpAddr::V4(v4) => push_v4(out, &v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => {
                    out.push_str("::ffff:");
                    push_v4(out, &v4);
                }
                None => push_v6(out, v6.segments()),
            },
        }
    }
}

crate::display_by_show!(Shown);

fn push_v4(out: &mut String, address: &Ipv4Addr) {
    for (i, octet) in address.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_digits(out, u64::from(octet), 10);
    }
}

fn push_v6(out: &mut String, groups: [u16; 8]) {
    // The longest run of zero groups (the first of equal ones): (start, length).
    let (mut longest, mut run) = ((0, 0), (0, 0));
    for (i, group) in groups.into_iter().enumerate() {
        run = if group == 0 { (if run.1 == 0 { i } else { run.0 }, run.1 + 1) } else { (0, 0) };
        if run.1 > longest.1 {
            longest = run;
        }
    }
    let (start, len) = if longest.1 > 1 { longest } else { (8, 0) };
    for (i, group) in groups.into_iter().enumerate() {
        if i == start {
            out.push_str("::");
        }
        if (start..start + len).contains(&i) {
            continue;
        }
        if i > 0 && i != start + len {
            out.push(':');
        }
        push_digits(out, u64::from(group), 16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What std makes of `text`, address by address kind; ours must say the same.
    fn agrees(text: &str) {
        if let Ok(address) = text.parse::<IpAddr>() {
            assert_eq!(super::text(&address), address.to_string());
            assert_eq!(Shown(address).to_string(), address.to_string());
        }
        assert_eq!(ipv4(text), text.parse().ok(), "ipv4 {text:?}");
        assert_eq!(ipv6(text), text.parse().ok(), "ipv6 {text:?}");
        assert_eq!(ip(text), text.parse().ok(), "ip {text:?}");
        assert_eq!(socket(text), text.parse().ok(), "socket {text:?}");
    }

    #[test]
    fn the_edges_read_as_std_reads_them() {
        for text in [
            "",
            ".",
            ":",
            "::",
            ":::",
            "::::",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "0.0.0.00",
            "1..2.3",
            "+1.2.3.4",
            "1.2.3.4 ",
            "::1",
            "1::",
            "1::2",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::8",
            "1::2::3",
            "1:::2",
            "12345::",
            "ABCD:ef01::",
            "0000:0000::0",
            "::ffff:192.0.2.1",
            "::192.0.2.1",
            "1:2:3:4:5:6:192.0.2.1",
            "1:2:3:4:5:6:7:192.0.2.1",
            "1:2:3:4:5::192.0.2.1",
            "1:2:3:4:5:6::192.0.2.1",
            "192.0.2.1::",
            "::192.0.2.1:1",
            "2001:db8::g",
            "2001:db8:::1",
            ":1::",
            "::1:",
            "192.0.2.1:80",
            "192.0.2.1:0",
            "192.0.2.1:65536",
            "192.0.2.1:080",
            "192.0.2.1:",
            "192.0.2.1:80:80",
            "[2001:db8::1]:80",
            "[2001:db8::1]",
            "[2001:db8::1]:",
            "[::1]:1",
            "[fe80::1%2]:80",
            "[fe80::1%]:80",
            "[fe80::1%eth0]:80",
            "[fe80::1%4294967296]:1",
            "[192.0.2.1]:80",
            "2001:db8::1:80",
            "[::ffff:192.0.2.1]:443",
            "1:0:0:2:0:0:3:4",
            "0:0:1:0:0:1:0:0",
            "1:0:1:0:1:0:1:0",
            "0:0:0:0:0:0:0:1",
            "1:0:0:0:0:0:0:0",
            "0:1:0:0:0:0:0:0",
            "::ffff:0:0",
            "::ffff:1:2:3",
            "0:0:0:0:0:ffff:c000:201",
        ] {
            agrees(text);
        }
    }

    proptest! {
        #[test]
        fn any_text_of_address_characters_reads_as_std_reads_it(
            text in "[0-9a-fA-F:.%\\[\\]]{0,24}",
        ) {
            agrees(&text);
        }

        #[test]
        fn addresses_std_writes_read_back_and_slightly_broken_ones_are_refused_alike(
            // Few distinct groups, many of them zero: runs of zeros, and runs of equal length.
            groups in prop::array::uniform8(prop::sample::select(vec![0u16, 0, 0, 1, 0xdb8, 0xffff])),
            bits in any::<u32>(),
            port in any::<u16>(),
            cut in any::<prop::sample::Index>(),
            put in prop::sample::select(vec!["", ":", ".", "0", "f", "::", "1.2.3.4", "%1"]),
        ) {
            let v6 = Ipv6Addr::from(groups);
            let v4 = Ipv4Addr::from(bits);
            let mapped = v4.to_ipv6_mapped();
            for address in [IpAddr::V6(v6), IpAddr::V4(v4), IpAddr::V6(mapped)] {
                prop_assert_eq!(super::text(&address), address.to_string());
            }
            for text in [
                v6.to_string(),
                v4.to_string(),
                format!("[{v6}]:{port}"),
                format!("{v4}:{port}"),
                format!("::ffff:{v4}"),
            ] {
                agrees(&text);
                let at = cut.index(text.len() + 1);
                let (left, right) = text.split_at(at);
                agrees(&format!("{left}{put}{right}"));
                agrees(&format!("{left}{put}{}", right.get(1..).unwrap_or_default()));
            }
        }
    }
}
