//! Addresses as the config and the web page's `Host` read them, and as messages write them:
//! `wanmon::address` must agree with std's parser and formatter on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, SocketAddr};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    assert_eq!(wanmon::address::ip(text), text.parse::<IpAddr>().ok(), "{text:?}");
    assert_eq!(wanmon::address::ipv4(text), text.parse().ok(), "{text:?}");
    assert_eq!(wanmon::address::ipv6(text), text.parse().ok(), "{text:?}");
    assert_eq!(wanmon::address::socket(text), text.parse::<SocketAddr>().ok(), "{text:?}");
    if let Ok(address) = text.parse::<IpAddr>() {
        assert_eq!(wanmon::address::text(&address), address.to_string());
    }
    if data.len() == 16 {
        let address = IpAddr::from(<[u8; 16]>::try_from(data).unwrap_or_default());
        assert_eq!(wanmon::address::text(&address), address.to_string());
    }
});
