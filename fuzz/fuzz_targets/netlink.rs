//! Netlink messages from the kernel: framing, attributes, and each kind wanmon reads (rtnetlink
//! and the conntrack entries it chooses after a switch).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wanmon::daemon::{conntrack, netlink};

fuzz_target!(|data: &[u8]| {
    let left = conntrack::LeftLink {
        addresses: vec!["198.51.100.2".parse().unwrap(), "2001:db8:1::2".parse().unwrap()],
        prefixes: vec![netlink::Prefix { address: "2001:db8:a::".parse().unwrap(), len: 48 }],
    };
    for message in netlink::messages(data) {
        let _ = netlink::parse_link(message.payload);
        let _ = netlink::parse_address(message.payload);
        let _ = netlink::parse_route(message.payload);
        let _ = netlink::parse_rule(message.payload);
        let _ = netlink::error_code(message.payload);
        let _ = conntrack::carried_by(message.payload, &left);
        for (_, value) in netlink::attributes(message.payload, 0) {
            assert!(value.len() <= message.payload.len());
        }
    }
});
