//! The probes one target has in flight: fixed slots and a mask of the taken ones. The engine looks
//! at them on every wakeup (for probes going late, lost, or proving a silence), and most slots
//! are empty most of the time; the mask skips those without reading them.

use super::time::Instant;

/// Probes one target may have in flight: a burst sends ten a second to each, and a path may take
/// most of a second to answer. One bit each in [`Flights::taken`].
pub const MAX_IN_FLIGHT: usize = 16;

/// One probe on its way.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    pub seq: u16,
    pub sent: Instant,
    /// Already counted late: a probe adds to the evidence once.
    pub late: bool,
    /// Sent in the link's rhythm, not in a burst: its RTT counts for latency and jitter.
    pub paced: bool,
    /// Counted lost before its timeout, because a probe to the same target sent after it was
    /// answered first; kept here until the timeout in case its reply still comes.
    pub presumed_lost: bool,
    /// Sent during a calibration: a burst probe is compared, not counted; a paced one is not
    /// compared ([`super::limiter`]).
    pub calibration: bool,
}

impl InFlight {
    /// A burst probe of a calibration: its outcome is compared, never counted.
    pub fn is_calibration_burst(&self) -> bool {
        self.calibration && !self.paced
    }
}

const EMPTY: InFlight = InFlight {
    seq: 0,
    sent: Instant::ZERO,
    late: false,
    paced: false,
    presumed_lost: false,
    calibration: false,
};

/// The slots of one target. Slots are visited lowest first, so the order in which probes are
/// found late or lost (and enter the window) does not depend on how they are stored.
#[derive(Clone, Debug)]
pub struct Flights {
    slots: [InFlight; MAX_IN_FLIGHT],
    /// Bit `i` set: slot `i` holds a probe.
    taken: u16,
}

impl Default for Flights {
    fn default() -> Flights {
        Flights { slots: [EMPTY; MAX_IN_FLIGHT], taken: 0 }
    }
}

impl Flights {
    pub fn is_empty(&self) -> bool {
        self.taken == 0
    }

    /// The taken slots, lowest first; a copy of the mask, so the caller may change slots as it
    /// goes.
    pub fn taken(&self) -> impl Iterator<Item = usize> + use<> {
        let mut bits = self.taken;
        std::iter::from_fn(move || {
            let slot = bits.trailing_zeros() as usize;
            bits &= bits.wrapping_sub(1);
            (slot < MAX_IN_FLIGHT).then_some(slot)
        })
    }

    /// The probes in flight, by slot.
    pub fn iter(&self) -> impl Iterator<Item = &InFlight> + '_ {
        self.taken().map(|slot| &self.slots[slot])
    }

    pub fn get(&self, slot: usize) -> Option<InFlight> {
        (self.taken & (1 << slot) != 0).then(|| self.slots[slot])
    }

    pub fn put(&mut self, slot: usize, probe: InFlight) {
        self.slots[slot] = probe;
        self.taken |= 1 << slot;
    }

    pub fn take(&mut self, slot: usize) -> Option<InFlight> {
        let probe = self.get(slot)?;
        self.taken &= !(1 << slot);
        Some(probe)
    }

    /// The lowest slot holding probe `seq`.
    pub fn find(&self, seq: u16) -> Option<usize> {
        self.taken().find(|slot| self.slots[*slot].seq == seq)
    }

    /// The lowest free slot.
    pub fn free(&self) -> Option<usize> {
        let slot = self.taken.trailing_ones() as usize;
        (slot < MAX_IN_FLIGHT).then_some(slot)
    }

    /// The slot of the probe sent first (the lowest on a tie); `None` when all are free.
    pub fn oldest(&self) -> Option<usize> {
        self.taken().min_by_key(|slot| self.slots[*slot].sent)
    }

    /// Drops the probes `keep` says no to.
    pub fn retain(&mut self, keep: impl Fn(&InFlight) -> bool) {
        for slot in self.taken() {
            if !keep(&self.slots[slot]) {
                self.taken &= !(1 << slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(seq: u16, sent_ms: u64) -> InFlight {
        InFlight {
            seq,
            sent: Instant::from_millis(sent_ms),
            late: false,
            paced: true,
            presumed_lost: false,
            calibration: false,
        }
    }

    #[test]
    fn slots_fill_lowest_first_and_are_visited_in_order() {
        let mut flights = Flights::default();
        assert!(flights.is_empty());
        assert_eq!((flights.free(), flights.oldest()), (Some(0), None));
        for seq in 0..MAX_IN_FLIGHT as u16 {
            let slot = flights.free().unwrap();
            assert_eq!(slot, usize::from(seq));
            flights.put(slot, probe(seq, 100 - u64::from(seq)));
        }
        assert_eq!(flights.free(), None, "full");
        assert_eq!(flights.oldest(), Some(MAX_IN_FLIGHT - 1), "sent last of all at 85 ms");
        assert_eq!(flights.take(3), Some(probe(3, 97)));
        assert_eq!((flights.take(3), flights.get(3), flights.free()), (None, None, Some(3)));
        assert_eq!(flights.find(7), Some(7));
        assert_eq!(flights.find(3), None, "taken out");
        let seqs: Vec<u16> = flights.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, (0..16).filter(|s| *s != 3).collect::<Vec<_>>());
    }

    #[test]
    fn ties_and_duplicates_go_to_the_lowest_slot() {
        let mut flights = Flights::default();
        flights.put(5, probe(9, 10));
        flights.put(2, probe(9, 10));
        flights.put(9, probe(1, 10));
        assert_eq!(flights.find(9), Some(2));
        assert_eq!(flights.oldest(), Some(2));
        flights.retain(|f| f.seq != 9);
        assert_eq!(flights.taken().collect::<Vec<_>>(), [9]);
        flights.retain(|_| false);
        assert!(flights.is_empty());
    }
}
