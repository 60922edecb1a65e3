//! Netlink messages from the kernel: framing, attributes, and each kind wanmon reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wanmon::daemon::netlink;

fuzz_target!(|data: &[u8]| {
    for message in netlink::messages(data) {
        let _ = netlink::parse_link(message.payload);
        let _ = netlink::parse_address(message.payload);
        let _ = netlink::parse_route(message.payload);
        let _ = netlink::parse_rule(message.payload);
        let _ = netlink::error_code(message.payload);
        for (_, value) in netlink::attributes(message.payload, 0) {
            assert!(value.len() <= message.payload.len());
        }
    }
});
