//! The control socket's request line, and a control answer as the CLI reads it back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wanmon::protocol::{self, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(request) = Request::parse(text) {
        // What parses goes back on the wire the same way: a line, ended by its newline.
        let line = request.line();
        let sent = line.strip_suffix('\n').expect("a request line ends with a newline");
        assert_eq!(Request::parse(sent), Ok(request));
    }
    let _ = protocol::parse_answer(text);
});
