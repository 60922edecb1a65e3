//! ICMP packets arriving on a probe socket: only our own echo replies may count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wanmon::daemon::icmp::{self, Session};

fuzz_target!(|data: &[u8]| {
    let session = Session { identifier: 0x1234, nonce: 0x5eed_f00d };
    for (v6, with_ip_header) in [(false, true), (false, false), (true, false)] {
        if let Some(seq) = icmp::parse_reply(data, v6, with_ip_header, session) {
            // Counted only if it carries our nonce: no stranger's packet is taken for a reply.
            let _ = seq;
            assert!(data.windows(4).any(|w| w == 0x5eed_f00du32.to_be_bytes()));
        }
    }
});
