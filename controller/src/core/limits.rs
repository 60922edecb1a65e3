//! The bounds every part of wanmon shares, each defined once: the config refuses more, the core
//! sizes its stack buffers by them, the daemon its kernel tables.

/// Links in one config; each has a routing table and a fwmark of its own.
pub const MAX_LINKS: usize = 16;

/// Probe targets of one link; bounds the stack buffers of the consensus.
pub const MAX_TARGETS: usize = 8;

/// Probe outcomes one target keeps (its window is by time; bursts fill it faster); bounds the
/// stack buffers of the medians.
pub const MAX_WINDOW: usize = 320;
