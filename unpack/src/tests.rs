//! The decoder against streams `xz --format=lzma` wrote (tests/data, with the size filled in as
//! the packer does), and against damaged and random input, which must be refused, never panic.

use super::*;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

/// Each plain file with its streams at four property settings (lc, lp, pb): xz's default,
/// the packer's, and the extremes this decoder takes (lc + lp at most 3).
const VECTORS: &[(&[u8], [&[u8]; 4])] = &[
    (include_bytes!("../tests/data/text"), streams!("text")),
    (include_bytes!("../tests/data/random"), streams!("random")),
    (include_bytes!("../tests/data/runs"), streams!("runs")),
    (include_bytes!("../tests/data/mips"), streams!("mips")),
    (include_bytes!("../tests/data/empty"), streams!("empty")),
];

macro_rules! streams {
    ($name:literal) => {
        [
            include_bytes!(concat!("../tests/data/", $name, ".302.lzma")),
            include_bytes!(concat!("../tests/data/", $name, ".122.lzma")),
            include_bytes!(concat!("../tests/data/", $name, ".034.lzma")),
            include_bytes!(concat!("../tests/data/", $name, ".300.lzma")),
        ]
    };
}
use streams;

fn unpack(stream: &[u8]) -> Result<Vec<u8>, Error> {
    let mut output = vec![0u8; unpacked_size(stream)?.min(1 << 20)];
    decode(stream, &mut output).map(|()| output)
}

#[test]
fn streams_from_xz_decode_to_their_files() {
    for (plain, streams) in VECTORS {
        for stream in streams {
            assert_eq!(unpack(stream).as_deref(), Ok(*plain), "{} bytes", plain.len());
        }
    }
}

#[test]
fn a_stream_cut_short_is_refused_as_truncated() {
    for (_, streams) in VECTORS {
        let stream = streams[1];
        let cuts = [HEADER_LEN, HEADER_LEN + 3, stream.len() / 2, stream.len() - 1];
        for cut in cuts.into_iter().filter(|&cut| cut >= HEADER_LEN) {
            let cut_stream = &stream[..cut];
            assert_eq!(unpack(cut_stream), Err(Error::Truncated), "cut at {cut}");
        }
    }
}

#[test]
fn a_wrong_size_or_unknown_properties_are_refused_before_decoding() {
    let stream = VECTORS[0].1[0];
    let mut output = vec![0u8; VECTORS[0].0.len() - 1];
    assert_eq!(decode(stream, &mut output), Err(Error::Size));
    let mut unknown_size = stream.to_vec();
    unknown_size[5..13].fill(0xff);
    assert_eq!(unpacked_size(&unknown_size), Err(Error::Size));
    let mut too_many_literal_bits = stream.to_vec();
    too_many_literal_bits[0] = 3 + 2 * 9; // lc 3 + lp 2 > 3
    assert_eq!(unpack(&too_many_literal_bits), Err(Error::Header));
    // A real stream xz wrote with lc 4: its literal tables would not fit the decoder's.
    let lc4 = include_bytes!("../tests/data/text.400.lzma");
    assert_eq!(unpack(lc4), Err(Error::Header));
    assert_eq!(unpack(&[0x5d, 0, 0]), Err(Error::Header));
}

#[test]
fn every_damaged_byte_gives_an_error_or_other_bytes_never_a_panic() {
    let stream = VECTORS[2].1[1];
    for at in HEADER_LEN..stream.len() {
        let mut damaged = stream.to_vec();
        damaged[at] ^= 0x55;
        let _ = unpack(&damaged);
    }
}

proptest! {
    #[test]
    fn random_streams_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600), size in 0u64..5000, properties in 0u8..=255) {
        let mut stream = vec![properties, 0, 0, 1, 0];
        stream.extend_from_slice(&size.to_le_bytes());
        stream.push(0);
        stream.extend_from_slice(&body);
        let _ = unpack(&stream);
    }
}
