use wanmon::core::virtual_time::VirtualRun;
use wanmon::core::{Config, Instant, Micros, Probe};
use std::cell::RefCell;
use std::rc::Rc;
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
#[test]
fn trace() {
    let cfg = Config::from_json(r#"{"links":[{"name":"wan","device":"a","targets":["192.0.2.1","198.51.100.1"]},{"name":"wwan","device":"b","bias":20,"targets":["192.0.2.1","198.51.100.1"]}]}"#).unwrap();
    let seed: u64 = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let counts = Rc::new(RefCell::new(vec![(0u32, 0u32); 400]));
    let c2 = Rc::clone(&counts);
    let path = move |p: &Probe, now: Instant| -> Option<Micros> {
        let d = mix(seed ^ (p.link as u64) << 40 ^ (p.target as u64) << 32 ^ now.as_micros());
        let sec = (now.as_micros() / 250_000) as usize;
        let lost = p.link == 0 && now.as_micros() > 60_000_000 && d % 100 < 10;
        if p.link == 0 && sec < 400 { let mut c = c2.borrow_mut(); c[sec].0 += 1; if lost { c[sec].1 += 1; } }
        if lost { return None; }
        Some(if p.link == 0 { 15_000 } else { 45_000 } + (d >> 8) % 4000)
    };
    let mut run = VirtualRun::new(&cfg, path, Instant::ZERO);
    let mut t = 59_000;
    while t < 100_000 {
        run.run_until(Instant::from_millis(t));
        let links = run.engine().links();
        let l = &links[0];
        let c = counts.borrow()[(t / 250) as usize - 1];
        println!("{t}: probes {:?} raw {:?} bounds {:?} loss {:?} recent {:?} | wwan {:?}", c, l.raw_score().map(|s| s.0/1000), l.bounds().map(|(a,b)| (a.0/1000, b.0/1000)), l.stats().map(|s| (s.loss.value, s.loss.low, s.loss.high, s.lost, s.resolved)), l.stats().map(|s| (s.recent_loss.value, s.recent_loss.low, s.recent_loss.high)), links[1].bounds().map(|(a,b)| (a.0/1000, b.0/1000)));
        t += 1000;
    }
    for d in run.decisions() { println!("{d}"); }
}
