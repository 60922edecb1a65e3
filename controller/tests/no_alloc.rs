//! The hot path as the daemon drives it (a probe outcome into the controller: telemetry, score,
//! decision, actions out) allocates nothing, shown with a counting allocator. One test per
//! binary, because the allocator is global.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use wanmon::core::{Config, Controller, DeviceFacts, Instant};

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards to the system allocator unchanged; the counter is a const-initialised
// thread-local, so counting never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn probe_outcomes_allocate_nothing() {
    // The counter itself works: a Vec is one allocation.
    let before = allocations();
    std::hint::black_box(vec![1u8; 16]);
    assert_eq!(allocations(), before + 1);

    let links: Vec<String> = (0..8)
        .map(|i| {
            format!(
                r#"{{"name": "l{i}", "device": "eth{i}", "bias": {}, "targets": ["192.0.2.1", "198.51.100.1", "203.0.113.1"]}}"#,
                i * 10
            )
        })
        .collect();
    let config = Config::from_json(&format!(r#"{{"links": [{}]}}"#, links.join(","))).unwrap();
    let mut controller = Controller::new(config, Instant::ZERO);
    let working = |index| DeviceFacts {
        index: Some(index),
        up: true,
        carrier: true,
        point_to_point: false,
        addresses: 1,
        system_gateways: [Some("192.0.2.254".parse().ok()), None],
    };
    controller.handle_devices(Instant::ZERO, (2..10).map(working).collect());
    let mut outcomes = 0u64;
    let mut during_run = 0u64;
    // Ten minutes in steps of 50 ms: RTTs vary, a probe in seven is lost (so links turn suspect
    // and are probed in bursts), scores move; the first half minute (the initial choice, the
    // windows filling) is outside the count.
    for step in 0..12_000u64 {
        let now = Instant::from_millis(step * 50);
        let before = allocations();
        let mut probes = [None; 64];
        let mut count = 0;
        while let Some(probe) = controller.poll_probe(now) {
            probes[count] = Some(probe);
            count += 1;
        }
        for probe in probes.iter().flatten() {
            let lost = (step + probe.target as u64 + probe.link as u64) % 7 == 0;
            if !lost {
                let rtt_ms = 10 + (step * 7 + probe.target as u64 * 3 + probe.link as u64) % 30;
                let at = now.after(rtt_ms * 1000);
                controller.handle_reply(at, probe.link, probe.address, probe.seq);
            }
        }
        controller.handle_timeout(now.after(45_000));
        let mut actions = 0;
        while let Some(action) = controller.poll_action() {
            std::hint::black_box(action);
            actions += 1;
        }
        outcomes += count as u64;
        if step >= 600 {
            during_run += allocations() - before;
            assert_eq!(actions, 0, "something to do at {} ms", step * 50);
        }
    }
    println!("{outcomes} probe outcomes, {during_run} heap allocations");
    assert!(outcomes > 3_000, "{outcomes}");
    assert_eq!(during_run, 0, "heap allocations on the hot path");
}
