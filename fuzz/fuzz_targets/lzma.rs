//! The router's unpacker decoding a damaged or hostile stream: refused, never a panic, never a
//! read or write outside its buffers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(size) = wanmon_unpack::unpacked_size(data) else { return };
    let mut output = vec![0u8; size.min(1 << 20)];
    let _ = wanmon_unpack::decode(data, &mut output);
});
