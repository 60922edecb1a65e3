//! Shared setup of the benchmarks: a controller in steady state, fed one probe outcome at a time
//! as the daemon feeds it (replies by source address, actions drained).

use wanmon::core::{Config, Controller, DeviceFacts, Instant, Probe};

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

/// Feeds a controller an endless stream of probe outcomes: mostly replies with varying RTTs, one
/// in seven lost (resolved by the round's timeout), as the daemon would see them.
#[derive(Debug)]
pub struct Feed {
    pub controller: Controller,
    now: Instant,
    round: u64,
    queued: [Option<Probe>; 64],
    next: usize,
    count: usize,
}

impl Feed {
    /// A controller after a minute of probing: windows full, the first choice made.
    pub fn warmed_up(links: usize) -> Feed {
        let mut controller = Controller::new(config(links), Instant::ZERO);
        let working = |index| DeviceFacts {
            index: Some(index),
            up: true,
            carrier: true,
            point_to_point: false,
            addresses: 1,
            system_gateways: [Some("192.0.2.254".parse().ok()), None],
        };
        controller.handle_devices(Instant::ZERO, (0..links as u32).map(working).collect());
        let mut feed = Feed {
            controller,
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

    /// One probe outcome into the controller (a reply, or a loss at the round's end).
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
                let at = self.now.after(rtt_ms * 1000);
                self.controller.handle_reply(at, probe.link, probe.address, probe.seq);
                while let Some(action) = self.controller.poll_action() {
                    std::hint::black_box(action);
                }
            }
        }
    }

    fn next_round(&mut self) {
        // The lost probes of the last round time out here.
        self.controller.handle_timeout(self.now.after(900_000));
        while let Some(action) = self.controller.poll_action() {
            std::hint::black_box(action);
        }
        self.round += 1;
        self.now = Instant::from_millis(self.round * 1000);
        self.count = 0;
        self.next = 0;
        while let Some(probe) = self.controller.poll_probe(self.now) {
            self.queued[self.count] = Some(probe);
            self.count += 1;
        }
    }
}
