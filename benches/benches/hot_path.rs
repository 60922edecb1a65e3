//! The hot path: one probe outcome in, telemetry, score and decision out; 2, 4 and 8 links with
//! three targets each. Prints nanoseconds per probe outcome (target: under 2 µs on the host: the
//! statistics are redone on every loss, and at the 20 outcomes a second of a link in a burst a
//! MIPS core some 50× slower spends under 0.2 % of its time on them).

use criterion::{BenchmarkId, Criterion, Throughput};
use std::time::Instant;
use wanmon_benches::Feed;

const LINK_COUNTS: [usize; 3] = [2, 4, 8];

fn probe_outcome(c: &mut Criterion) {
    let mut group = c.benchmark_group("probe_outcome");
    group.throughput(Throughput::Elements(1));
    for links in LINK_COUNTS {
        let mut feed = Feed::warmed_up(links);
        group.bench_with_input(BenchmarkId::new("links_x3_targets", links), &links, |b, _| {
            b.iter(|| feed.outcome())
        });
    }
    group.finish();
}

/// A plain figure per size besides criterion's statistics, for the issue note and CI logs.
fn summary() {
    const OUTCOMES: u32 = 2_000_000;
    println!("\nhot path summary ({OUTCOMES} outcomes each, best of 3 runs):");
    for links in LINK_COUNTS {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let mut feed = Feed::warmed_up(links);
            let start = Instant::now();
            for _ in 0..OUTCOMES {
                feed.outcome();
            }
            best = best.min(start.elapsed().as_nanos() as f64 / f64::from(OUTCOMES));
        }
        let verdict = if best < 2000.0 { "under" } else { "OVER" };
        println!(
            "  {links} links x 3 targets: {best:7.1} ns per probe outcome ({verdict} the 2 µs target)"
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    probe_outcome(&mut criterion);
    criterion.final_summary();
    summary();
}
