//! HTTP requests from the LAN, as the web page's server reads them, and the router's answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wanmon::daemon::http;

fuzz_target!(|data: &[u8]| {
    // Every split point: a request arrives in pieces, and each prefix is parsed as it comes.
    let whole = http::parse(data);
    if let Ok(Some(request)) = &whole {
        let names = ["openwrt".to_string()];
        let _ = http::route(request, Some("0123456789abcdef"), &names);
        let _ = http::route(request, None, &[]);
        assert!(request.body.len() <= 1024);
    }
    if data.len() > 1 {
        let _ = http::parse(&data[..data.len() / 2]);
    }
});
