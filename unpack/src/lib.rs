//! An LZMA decoder for the `.lzma` files `xz --format=lzma` writes, small and allocation-free,
//! so the router's `/usr/sbin/wanmon` can carry the daemon compressed and unpack it at start.
//!
//! Why LZMA: the package (gzip) and the router's JFFS2 overlay (zlib or LZMA per 4 KiB node)
//! compress the MIPS binary far worse than LZMA over the whole file (126 KB and ~136–150 KB on
//! flash against 97 KB). The stream format is Igor Pavlov's: a range coder over adaptive bit
//! probabilities, literals coded against the previous byte, matches with four remembered
//! distances; see `docs/footprint.md` for what it buys.
//!
//! The whole output is the dictionary (the caller gives a buffer of the unpacked size), so no
//! window is kept; every index is bounded, so no input can make it panic or read out of bounds.
#![no_std]

#[cfg(test)]
extern crate std;

/// The `.lzma` header: properties byte, dictionary size (u32), unpacked size (u64), little-endian.
pub const HEADER_LEN: usize = 13;

/// Literal context bits plus literal position bits this decoder keeps tables for: the packer
/// uses 3 (lc 1 + lp 2 for MIPS code, lc 3 for x86), and at 3 the tables fit in 16 KB, under
/// the 32 KB a MIPS stack offset reaches in one instruction.
const MAX_LITERAL_BITS: u32 = 3;
const STATES: usize = 12;
const MAX_POS_STATES: usize = 1 << 4;
const LEN_STATES: usize = 4;
const END_POS_MODEL: u32 = 14;
const FULL_DISTANCES: usize = 1 << (END_POS_MODEL / 2);
const ALIGN_BITS: u32 = 4;
const MIN_MATCH: usize = 2;
const PROBABILITY_BITS: u32 = 11;
const PROBABILITY_ONE: u16 = 1 << PROBABILITY_BITS;
const MOVE_BITS: u32 = 5;
const TOP: u32 = 1 << 24;

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the header, or properties this decoder does not take (lc + lp over 3).
    Header,
    /// The header's unpacked size is unknown or differs from the output buffer's.
    Size,
    /// The stream ended before the output was full.
    Truncated,
    /// A distance before the start of the output, a match past its end, a bad first byte.
    Corrupt,
}

impl Error {
    /// What went wrong, for a message.
    pub fn describe(self) -> &'static str {
        match self {
            Error::Header => "not an LZMA stream this decoder takes (header or properties)",
            Error::Size => "the stream's unpacked size is not the expected one",
            Error::Truncated => "the stream ends before its data does",
            Error::Corrupt => "the stream is corrupt",
        }
    }
}

/// The unpacked size the header announces.
pub fn unpacked_size(stream: &[u8]) -> Result<usize, Error> {
    let header: &[u8; HEADER_LEN] =
        stream.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or(Error::Header)?;
    let mut size = [0u8; 8];
    size.copy_from_slice(&header[5..]);
    let size = u64::from_le_bytes(size);
    // All ones means "unknown, up to an end marker": the packer always writes the size.
    if size == u64::MAX {
        return Err(Error::Size);
    }
    usize::try_from(size).map_err(|_| Error::Size)
}

/// Decodes a whole `.lzma` stream into `output`, whose length must be the unpacked size; the
/// stream must end with the end marker.
pub fn decode(stream: &[u8], output: &mut [u8]) -> Result<(), Error> {
    if unpacked_size(stream)? != output.len() {
        return Err(Error::Size);
    }
    let properties = Properties::of(stream[0])?;
    let mut probabilities = [PROBABILITY_ONE / 2; TABLE_SIZE];
    let range = RangeDecoder::new(&stream[HEADER_LEN..])?;
    let mut decoder = Decoder::new(properties, range, &mut probabilities);
    let decoded = decoder.run(output);
    // Past the end the decoder reads zeros, which look corrupt soon enough: say what happened.
    if decoder.range.overrun { Err(Error::Truncated) } else { decoded }
}

/// The properties byte: literal context bits, literal position bits, position bits.
#[derive(Clone, Copy)]
struct Properties {
    lc: u32,
    lp: u32,
    pb: u32,
}

impl Properties {
    fn of(byte: u8) -> Result<Properties, Error> {
        let byte = u32::from(byte);
        if byte >= 9 * 5 * 5 {
            return Err(Error::Header);
        }
        let (lc, lp, pb) = (byte % 9, byte / 9 % 5, byte / 45);
        if lc + lp > MAX_LITERAL_BITS {
            return Err(Error::Header);
        }
        Ok(Properties { lc, lp, pb })
    }
}

/// The range decoder: the arithmetic decoding of bits against adaptive probabilities.
struct RangeDecoder<'a> {
    input: &'a [u8],
    at: usize,
    range: u32,
    code: u32,
    /// Read past the end: the stream was short. Zeros are fed instead, so decoding still ends
    /// (it is bounded by the output) and the caller reports the truncation.
    overrun: bool,
}

impl<'a> RangeDecoder<'a> {
    fn new(input: &'a [u8]) -> Result<RangeDecoder<'a>, Error> {
        let mut decoder = RangeDecoder { input, at: 0, range: u32::MAX, code: 0, overrun: false };
        if decoder.byte() != 0 {
            return Err(Error::Corrupt);
        }
        for _ in 0..4 {
            decoder.code = (decoder.code << 8) | u32::from(decoder.byte());
        }
        if decoder.code == decoder.range {
            return Err(Error::Corrupt);
        }
        Ok(decoder)
    }

    fn byte(&mut self) -> u8 {
        let byte = self.input.get(self.at).copied();
        self.at += 1;
        self.overrun |= byte.is_none();
        byte.unwrap_or(0)
    }

    fn normalize(&mut self) {
        if self.range < TOP {
            self.range <<= 8;
            self.code = (self.code << 8) | u32::from(self.byte());
        }
    }

    fn bit(&mut self, probability: &mut u16) -> u32 {
        let bound = (self.range >> PROBABILITY_BITS) * u32::from(*probability);
        let bit = if self.code < bound {
            self.range = bound;
            *probability += (PROBABILITY_ONE - *probability) >> MOVE_BITS;
            0
        } else {
            self.range -= bound;
            self.code -= bound;
            *probability -= *probability >> MOVE_BITS;
            1
        };
        self.normalize();
        bit
    }

    /// Bits of even odds, most significant first.
    fn direct(&mut self, count: u32) -> u32 {
        let mut value = 0;
        for _ in 0..count {
            self.range >>= 1;
            let bit = u32::from(self.code >= self.range);
            self.code -= self.range * bit;
            value = (value << 1) | bit;
            self.normalize();
        }
        value
    }
}

/// Where each table of adaptive probabilities starts in [`Decoder::probabilities`]. They lie
/// one after the other, as in LZMA's reference decoder, so that one loop sets them all: set
/// table by table, they took a copy routine and a kilobyte of the package.
const IS_MATCH: usize = 0;
const IS_REP: usize = IS_MATCH + STATES * MAX_POS_STATES;
const IS_REP_G0: usize = IS_REP + STATES;
const IS_REP_G1: usize = IS_REP_G0 + STATES;
const IS_REP_G2: usize = IS_REP_G1 + STATES;
const IS_REP0_LONG: usize = IS_REP_G2 + STATES;
const SLOTS: usize = IS_REP0_LONG + STATES * MAX_POS_STATES;
const SPECIAL: usize = SLOTS + (LEN_STATES << 6);
const ALIGN: usize = SPECIAL + 1 + FULL_DISTANCES - END_POS_MODEL as usize;
const LENGTHS: usize = ALIGN + (1 << ALIGN_BITS);
const REP_LENGTHS: usize = LENGTHS + LENGTH_TABLE;
const LITERALS: usize = REP_LENGTHS + LENGTH_TABLE;
const PROBABILITIES: usize = LITERALS + (0x300 << MAX_LITERAL_BITS);
/// The tables' array, rounded up to a power of two: an index is masked into it rather than
/// checked (every index the decoder makes is below [`PROBABILITIES`] anyway), which spares a
/// bounds check at each of the decoder's bits, ~0.1 KB of the package.
const TABLE_SIZE: usize = PROBABILITIES.next_power_of_two();

/// A length table, within itself: two choices, then lengths 2–9 and 10–17 per position state,
/// then 18–273 shared.
const LENGTH_LOW: usize = 2;
const LENGTH_MID: usize = LENGTH_LOW + MAX_POS_STATES * 8;
const LENGTH_HIGH: usize = LENGTH_MID + MAX_POS_STATES * 8;
const LENGTH_TABLE: usize = LENGTH_HIGH + (1 << 8);

/// Everything the stream adapts as it goes.
struct Decoder<'a> {
    properties: Properties,
    range: RangeDecoder<'a>,
    /// Borrowed, not owned: a decoder that owned its 16 KB of tables was built aside and copied
    /// into place, which took a copy routine into the package.
    probabilities: &'a mut [u16; TABLE_SIZE],
    /// The state machine over what came last (literal, match, long or short repeat).
    state: usize,
    /// The four most recent distances, less one.
    reps: [usize; 4],
}

impl<'a> Decoder<'a> {
    fn new(
        properties: Properties,
        range: RangeDecoder<'a>,
        probabilities: &'a mut [u16; TABLE_SIZE],
    ) -> Decoder<'a> {
        Decoder { properties, range, probabilities, state: 0, reps: [0; 4] }
    }

    /// One bit against the probability at `index`.
    #[inline(never)]
    fn bit(&mut self, index: usize) -> u32 {
        self.range.bit(&mut self.probabilities[index & (TABLE_SIZE - 1)])
    }

    /// `bits` bits through the binary tree at `table`, most significant first.
    fn tree(&mut self, table: usize, bits: u32) -> u32 {
        let mut node = 1usize;
        for _ in 0..bits {
            node = (node << 1) | self.bit(table + node) as usize;
        }
        (node - (1 << bits)) as u32
    }

    /// `bits` bits through the binary tree at `table`, least significant first.
    fn reverse_tree(&mut self, table: usize, bits: u32) -> u32 {
        let (mut node, mut value) = (1usize, 0);
        for i in 0..bits {
            let bit = self.bit(table + node);
            node = (node << 1) | bit as usize;
            value |= bit << i;
        }
        value
    }

    /// A length (less the minimum match) from the length table at `table`.
    fn length(&mut self, table: usize, pos_state: usize) -> usize {
        let length = if self.bit(table) == 0 {
            self.tree(table + LENGTH_LOW + pos_state * 8, 3)
        } else if self.bit(table + 1) == 0 {
            8 + self.tree(table + LENGTH_MID + pos_state * 8, 3)
        } else {
            16 + self.tree(table + LENGTH_HIGH, 8)
        };
        length as usize
    }

    fn run(&mut self, output: &mut [u8]) -> Result<(), Error> {
        let pos_mask = (1usize << self.properties.pb) - 1;
        let mut at = 0;
        while at < output.len() {
            let pos_state = at & pos_mask;
            let state = self.state;
            if self.bit(IS_MATCH + state * MAX_POS_STATES + pos_state) == 0 {
                output[at] = self.literal(output, at);
                self.state = if state < 4 {
                    0
                } else if state < 10 {
                    state - 3
                } else {
                    state - 6
                };
                at += 1;
                continue;
            }
            let length = if self.bit(IS_REP + state) == 0 {
                self.new_match(pos_state)
            } else {
                match self.repeat(pos_state) {
                    Some(length) => length,
                    None => {
                        // A short repeat: one byte from the newest distance.
                        output[at] = output[back(at, self.reps[0])?];
                        at += 1;
                        continue;
                    }
                }
            };
            at = copy_match(output, at, self.reps[0], length + MIN_MATCH)?;
        }
        if self.end_marker(at & pos_mask) { Ok(()) } else { Err(Error::Corrupt) }
    }

    /// Whether the end marker follows (a match at distance all ones), as xz writes it: the
    /// stream was read to its end, the nearest thing this format has to a checksum.
    fn end_marker(&mut self, pos_state: usize) -> bool {
        let state = self.state;
        self.bit(IS_MATCH + state * MAX_POS_STATES + pos_state) == 1
            && self.bit(IS_REP + state) == 0
            && {
                let length = self.length(LENGTHS, pos_state);
                self.distance(length) == u32::MAX as usize
            }
    }

    /// A literal, coded against the previous byte and, after a match, the byte the match
    /// would have brought next.
    fn literal(&mut self, output: &[u8], at: usize) -> u8 {
        let Properties { lc, lp, .. } = self.properties;
        let previous = if at > 0 { u32::from(output[at - 1]) } else { 0 };
        let context = ((at as u32 & ((1 << lp) - 1)) << lc) + (previous >> (8 - lc));
        let table = LITERALS + 0x300 * context as usize;
        let mut symbol = 1usize;
        if self.state >= 7 {
            // After a match: the byte at the match distance steers the first bits.
            let mut matched = back(at, self.reps[0]).map_or(0, |from| usize::from(output[from]));
            while symbol < 0x100 {
                let match_bit = (matched >> 7) & 1;
                matched <<= 1;
                let bit = self.bit(table + ((1 + match_bit) << 8) + symbol) as usize;
                symbol = (symbol << 1) | bit;
                if bit != match_bit {
                    break;
                }
            }
        }
        while symbol < 0x100 {
            symbol = (symbol << 1) | self.bit(table + symbol) as usize;
        }
        symbol as u8
    }

    /// A match at a new distance; returns its length less the minimum.
    fn new_match(&mut self, pos_state: usize) -> usize {
        self.reps = [0, self.reps[0], self.reps[1], self.reps[2]];
        let length = self.length(LENGTHS, pos_state);
        self.state = if self.state < 7 { 7 } else { 10 };
        self.reps[0] = self.distance(length);
        length
    }

    /// A repeat of a remembered distance: its length less the minimum, or `None` for a short
    /// repeat (one byte at the newest distance).
    fn repeat(&mut self, pos_state: usize) -> Option<usize> {
        let state = self.state;
        if self.bit(IS_REP_G0 + state) == 0 {
            if self.bit(IS_REP0_LONG + state * MAX_POS_STATES + pos_state) == 0 {
                self.state = if state < 7 { 9 } else { 11 };
                return None;
            }
        } else {
            let distance = if self.bit(IS_REP_G1 + state) == 0 {
                self.reps[1]
            } else {
                let distance = if self.bit(IS_REP_G2 + state) == 0 {
                    self.reps[2]
                } else {
                    let distance = self.reps[3];
                    self.reps[3] = self.reps[2];
                    distance
                };
                self.reps[2] = self.reps[1];
                distance
            };
            self.reps[1] = self.reps[0];
            self.reps[0] = distance;
        }
        let length = self.length(REP_LENGTHS, pos_state);
        self.state = if state < 7 { 8 } else { 11 };
        Some(length)
    }

    /// A new distance less one: a slot (its top bits), then the rest from a reverse tree, or
    /// direct bits and an aligned reverse tree for far ones.
    fn distance(&mut self, length: usize) -> usize {
        let slot = self.tree(SLOTS + (length.min(LEN_STATES - 1) << 6), 6);
        if slot < 4 {
            return slot as usize;
        }
        let bits = (slot >> 1) - 1;
        let base = (2 | (slot & 1)) << bits;
        let rest = if slot < END_POS_MODEL {
            self.reverse_tree(SPECIAL + (base - slot) as usize, bits)
        } else {
            let high = self.range.direct(bits - ALIGN_BITS) << ALIGN_BITS;
            high + self.reverse_tree(ALIGN, ALIGN_BITS)
        };
        // All ones is the end marker; anywhere else it points before the output.
        base.wrapping_add(rest) as usize
    }
}

/// Where a distance (less one, as the stream codes it) points back from `at`, if it is in the
/// output. Checked both ways: the end marker's all-ones distance would wrap on a 32-bit router.
fn back(at: usize, rep: usize) -> Result<usize, Error> {
    at.checked_sub(rep).and_then(|from| from.checked_sub(1)).ok_or(Error::Corrupt)
}

/// Copies `length` bytes from `rep` (less one) back, overlapping as LZ77 does; returns the new
/// end.
fn copy_match(output: &mut [u8], at: usize, rep: usize, length: usize) -> Result<usize, Error> {
    let from = back(at, rep)?;
    let end = at.checked_add(length).filter(|&end| end <= output.len()).ok_or(Error::Corrupt)?;
    for i in 0..end - at {
        output[at + i] = output[from + i];
    }
    Ok(end)
}

#[cfg(test)]
mod tests;
