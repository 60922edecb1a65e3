//! Shared setup of the benchmarks: an engine in steady state, fed one probe outcome at a time.

use wanmon::core::{Config, Engine, Instant, Probe};

/// A config of `links` links with three targets each, biases spread so scores differ.
pub fn config(links: usize) -> Config {
    let links: Vec<String> = (0..links)
        .map(|i| {
            format!(
                r#"{{"name": "l{i}", "device": "eth{i}", "bias": {},
                    "targets": ["192.0.2.1", "198.51.100.1", "203.0.113.1"]}}"#,
                i * 10
            )
        })
        .collect();
    let text = format!(r#"{{"links": [{}]}}"#, links.join(","));
    match Config::from_json(&text) {
        Ok(config) => config,
        Err(errors) => panic!("benchmark config refused: {errors:?}"),
    }
}

/// Feeds an engine an endless stream of probe outcomes: mostly replies with varying RTTs, one in
/// seven lost (resolved by the round's tick), as the daemon would see them.
#[derive(Debug)]
pub struct Feed {
    pub engine: Engine,
    now: Instant,
    round: u64,
    queued: [Option<Probe>; 64],
    next: usize,
    count: usize,
}

impl Feed {
    /// An engine after a minute of probing: windows full, the first choice made.
    pub fn warmed_up(links: usize) -> Feed {
        let mut feed = Feed {
            engine: Engine::new(&config(links), Instant::ZERO),
            now: Instant::ZERO,
            round: 0,
            queued: [None; 64],
            next: 0,
            count: 0,
        };
        for _ in 0..links * 3 * 60 {
            feed.outcome();
        }
        feed
    }

    /// One probe outcome into the engine (a reply, or a loss at the round's end).
    #[inline]
    pub fn outcome(&mut self) {
        if self.next == self.count {
            self.next_round();
        }
        let probe = self.queued[self.next].take();
        self.next += 1;
        if let Some(probe) = probe {
            let key = self.round + probe.target as u64 + probe.link as u64;
            if !key.is_multiple_of(7) {
                // Later in the round is later in time; the parity term varies RTT and jitter.
                let rtt_ms = 10 + 2 * self.next as u64 + (self.round + probe.target as u64) % 2;
                std::hint::black_box(self.engine.on_reply(
                    self.now.after(rtt_ms * 1000),
                    probe.link,
                    probe.target,
                    probe.seq,
                ));
            }
        }
    }

    fn next_round(&mut self) {
        // The lost probes of the last round time out here.
        std::hint::black_box(self.engine.tick(self.now.after(900_000)));
        self.round += 1;
        self.now = Instant::from_millis(self.round * 1000);
        self.count = 0;
        self.next = 0;
        while let Some(probe) = self.engine.poll_probe(self.now) {
            self.queued[self.count] = Some(probe);
            self.count += 1;
        }
    }
}
