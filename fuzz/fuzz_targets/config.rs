//! The config file: JSON reader and checker, as `wanmon check-config` and a reload read it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(errors) = wanmon::core::Config::from_json(text) {
        for error in &errors {
            // Every error names a line within the file.
            assert!(error.line >= 1 && error.line as usize <= text.lines().count().max(1) + 1);
            let _ = error.to_string();
        }
    }
});
