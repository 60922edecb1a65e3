//! The status document as the CLI, the LuCI plugin and the simulator read it back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wanmon::protocol::status::Status;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(status) = Status::from_json(text) {
        // What reads as a status writes as one that reads back; written once (figures rounded
        // to the one decimal the daemon writes), it stays the same.
        let written = Status::from_json(&status.to_json()).expect("a written status reads back");
        assert_eq!(Status::from_json(&written.to_json()).as_ref(), Ok(&written));
    }
});
