//! Tests of every decision rule and its edges, driven in virtual time.

use super::*;
use crate::core::LinkName;
use crate::core::config::Config;
use crate::core::limiter;
use crate::core::telemetry::Telemetry;
use crate::core::virtual_time::VirtualRun;

/// Round-trip times per link, in ms, as a function of (link, target, time in ms); `None` = lost.
type Net = Box<dyn FnMut(usize, usize, u64) -> Option<u64>>;

fn ms(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

/// A config with links `wan` (eth0.2), `wwan` (wlan0), `lte` (wwan0), ... and their biases.
fn config(biases: &[i64], extra: &str) -> Config {
    const LINKS: [(&str, &str); 4] =
        [("wan", "eth0.2"), ("wwan", "wlan0"), ("lte", "wwan0"), ("isp2", "eth1")];
    let links: Vec<String> = biases
        .iter()
        .zip(LINKS)
        .map(|(bias, (name, device))| {
            format!(
                r#"{{"name": "{name}", "device": "{device}", "bias": {bias},
                    "targets": ["192.0.2.1", "198.51.100.1"]}}"#
            )
        })
        .collect();
    let text = format!(r#"{{ {extra} "links": [{}] }}"#, links.join(","));
    Config::from_json(&text).unwrap_or_else(|e| panic!("{e:?}"))
}

type Path = Box<dyn FnMut(&Probe, Instant) -> Option<Micros>>;

struct Run {
    run: VirtualRun<Path>,
}

impl Run {
    fn new(config: Config, mut net: Net) -> Run {
        let path: Path = Box::new(move |probe, now| {
            net(probe.link, probe.target, now.as_micros() / 1000).map(|rtt| rtt * 1000)
        });
        Run { run: VirtualRun::new(&config, path, Instant::ZERO) }
    }

    fn until(&mut self, millis: u64) -> &mut Run {
        self.run.run_until(ms(millis));
        self
    }

    /// Every route change as (time ms, from, to).
    fn switches(&self) -> Vec<(u64, String, String)> {
        self.run
            .decisions()
            .iter()
            .filter(|d| d.changes_route())
            .map(|d| {
                let from = d.from.map_or("none".to_string(), |f| f.to_string());
                (d.at.as_micros() / 1000, from, d.to.to_string())
            })
            .collect()
    }

    fn last(&self) -> Decision {
        *self.run.decisions().last().expect("a decision")
    }

    fn current(&self) -> String {
        self.run.engine().current().map_or("none".into(), |l| l.name().to_string())
    }

    fn link(&self, name: &str) -> &Link {
        let engine = self.run.engine();
        &engine.links()[engine.link_index(name).unwrap()]
    }

    fn event(&mut self, name: &str, event: LinkEvent) {
        let index = self.run.engine().link_index(name).unwrap();
        self.run.link_event(index, event);
    }

    fn force(&mut self, name: &str) -> Result<(), ModeError> {
        self.run.set_mode(Mode::Forced(LinkName::new(name).unwrap()))
    }

    /// The route changes after the first choice, as (time ms, to).
    fn moves(&self) -> Vec<(u64, String)> {
        self.switches().into_iter().skip(1).map(|(at, _, to)| (at, to)).collect()
    }
}

/// A fixed, seedless hash: the same draws on every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// True for about `percent` % of (link, target, time) triples.
fn drawn(percent: u64, link: usize, target: usize, t: u64) -> bool {
    mix((link as u64) << 48 ^ (target as u64) << 40 ^ t) % 100 < percent
}

/// Steady links: link i answers in `base[i]` ms.
fn steady(base: &'static [u64]) -> Net {
    Box::new(move |link, _, _| Some(base[link]))
}

#[test]
fn first_choice_waits_for_every_link_and_takes_the_first_unless_another_is_proven_better() {
    // wwan answers first and better, but one reply each proves nothing (a link just set up may
    // answer slowly at first): the first link in the config, then wwan once its advantage is
    // proven, as any other switch.
    let mut run = Run::new(config(&[0, 0], ""), steady(&[60, 20]));
    run.until(10);
    assert_eq!(run.current(), "none");
    run.until(5_000);
    let switches = run.switches();
    assert_eq!(switches[0], (60, "none".into(), "wan".into()));
    assert_eq!(switches.len(), 2, "{switches:?}");
    assert_eq!(switches[1].2, "wwan");
    assert!(switches[1].0 < 3_000, "{switches:?}");
}

#[test]
fn first_choice_on_a_tie_is_the_first_link_in_the_config() {
    let mut run = Run::new(config(&[0, 0, 0], ""), steady(&[20, 20, 20]));
    run.until(5_000);
    assert_eq!(run.current(), "wan");
}

#[test]
fn a_link_that_never_answers_dies_on_evidence_and_does_not_block_the_first_choice() {
    let mut run = Run::new(config(&[0, 0], ""), Box::new(|link, _, _| (link == 1).then_some(20)));
    run.until(1_000);
    assert_eq!(run.current(), "none");
    assert_eq!(run.link("wan").state(), LinkState::Pending, "silence alone proves nothing");
    run.until(5_000);
    let LinkState::Dead(DeadCause::NoReply { silent_for }) = run.link("wan").state() else {
        panic!("{:?}", run.link("wan").state())
    };
    let (at, _, to) = run.switches()[0].clone();
    assert_eq!(to, "wwan");
    assert!(silent_for >= 900_000, "silent for {silent_for} µs");
    assert_eq!(
        run.link("wan").state_since(),
        run.run.decisions()[0].at,
        "the first choice comes as wan is found dead"
    );
    assert!((1_000..=3_500).contains(&at), "dead at {at} ms");
}

#[test]
fn a_hard_outage_moves_the_route_within_a_second_of_the_first_lost_probe() {
    let mut run = Run::new(
        config(&[0, 50], ""),
        Box::new(|link, _, t| (link == 1 || t < 20_000).then_some(20)),
    );
    run.until(60_000);
    // wan's probes go out every 250 ms; the first one lost is sent at 20 000 ms.
    let (at, to) = run.moves()[0].clone();
    assert_eq!(to, "wwan");
    assert!((20_000..=21_000).contains(&at), "moved at {at} ms");
    let decision = run.run.decisions()[1];
    let Reason::CurrentDead { cause: DeadCause::NoReply { silent_for }, score } = decision.reason
    else {
        panic!("{decision}")
    };
    assert_eq!(
        silent_for,
        decision.at.as_micros() - 20_000_000,
        "silent since the first lost probe"
    );
    assert_eq!(score, Score::from_points(70));
    let line = decision.to_string();
    let silence = format!("wan -> wwan: wan is dead (no reply for {} ms)", silent_for / 1000);
    assert!(line.starts_with(&silence), "{line}");
}

#[test]
fn random_loss_is_not_taken_for_death() {
    // Half an hour at 30 % loss on both targets: no silence random loss explains kills it.
    let net: Net = Box::new(
        |link, target, t| {
            if link == 0 && drawn(30, link, target, t) { None } else { Some(20) }
        },
    );
    let mut run = Run::new(config(&[0, 1000], ""), net);
    run.until(1_800_000);
    assert_eq!(run.link("wan").state(), LinkState::Up);
    let deaths = run
        .run
        .decisions()
        .iter()
        .filter(|d| matches!(d.reason, Reason::CurrentDead { .. }))
        .count();
    assert_eq!(deaths, 0, "{:?}", run.switches());
}

/// wan losing `past_percent` until 600 s and 30 % from then on, beside a clean wwan 30 ms
/// slower and biased 20; run for a minute after, and when the route first moved (and where).
fn lossy_from_600_s(past_percent: u64) -> (Run, u64, String) {
    let net: Net = Box::new(move |link, target, t| match link {
        0 if drawn(if t >= 600_000 { 30 } else { past_percent }, link, target, t) => None,
        0 => Some(15),
        _ => Some(45),
    });
    let mut run = Run::new(config(&[0, 20], ""), net);
    run.until(660_000);
    let (at, to) = run.moves()[0].clone();
    (run, at, to)
}

#[test]
fn a_lossy_link_is_left_within_seconds() {
    // From 600 s on wan loses 30 %: it is probed harder, and left once its bounds prove it.
    let (run, at, to) = lossy_from_600_s(0);
    assert_eq!(to, "wwan");
    assert!((600_000..=605_000).contains(&at), "left at {at} ms");
    let Reason::Better { evidence, held } = run.run.decisions()[1].reason else {
        panic!("{}", run.run.decisions()[1])
    };
    assert_eq!(held, 1_000_000);
    let by = evidence.from_score.0 - evidence.to_score.0;
    assert!(by > evidence.margin.0 && by > evidence.doubt.0, "{evidence:?}");
}

#[test]
fn a_run_of_bad_luck_on_a_lossy_link_is_taken_back_not_followed() {
    // wan loses 5 %, not worth leaving for wwan; from 600 s it loses twelve probes in a row
    // (the burst its first lost one brings), so its newest outcomes look like a loss that
    // began. The outcomes after them do not bear that out, and the route stays (followed, the
    // window cut to those outcomes moved it).
    let mut unlucky = 12;
    let net: Net = Box::new(move |link, target, t| match link {
        0 if t >= 600_000 && unlucky > 0 => {
            unlucky -= 1;
            None
        }
        0 if drawn(5, link, target, t) => None,
        0 => Some(15),
        _ => Some(45),
    });
    let mut run = Run::new(config(&[0, 20], ""), net);
    let began = (600_000..602_000).step_by(10).any(|t| run.until(t).link("wan").loss_unconfirmed());
    assert!(began, "the run of losses reads as a loss that began");
    run.until(660_000);
    assert_eq!(run.moves(), []);
    assert!(!run.link("wan").loss_unconfirmed());
}

#[test]
fn a_loss_that_began_is_confirmed_and_left_within_seconds() {
    // The same link at 5 % before it loses 30 %: the outcomes after the first bear it out.
    let (_, at, to) = lossy_from_600_s(5);
    assert_eq!(to, "wwan");
    assert!((600_000..=604_000).contains(&at), "left at {at} ms");
}

#[test]
fn every_device_down_says_no_route_is_kept() {
    // Both links administratively down: the kernel drops their routes, so the note must not
    // claim a route is kept.
    let mut run = Run::new(config(&[0, 50], ""), steady(&[20, 20]));
    run.until(10_000);
    run.event("wwan", LinkEvent::Down);
    run.event("wan", LinkEvent::Down);
    let note = run.last();
    assert_eq!(note.reason, Reason::AllDead { device_down: true });
    assert_eq!(
        note.to_string(),
        "wan -> wan: every link is dead and wan's device is down: no route carries traffic \
         until a link comes back"
    );
}

#[test]
fn carrier_loss_makes_the_link_dead_at_once() {
    let mut run = Run::new(config(&[0, 50], ""), steady(&[20, 20]));
    run.until(10_000);
    assert_eq!(run.current(), "wan");
    run.event("wan", LinkEvent::Down);
    assert_eq!(run.switches().last().unwrap(), &(10_000, "wan".into(), "wwan".into()));
    assert_eq!(run.link("wan").state(), LinkState::Dead(DeadCause::LinkDown));
    assert_eq!(run.link("wan").telemetry(), None);
    // No probes go out through a link that is down.
    run.until(20_000);
    assert!(run.link("wan").targets().iter().all(|t| t.last_reply().is_none()));
    // Carrier back: pending, then up, then failback after the failback hold.
    run.event("wan", LinkEvent::Up);
    assert_eq!(run.link("wan").state(), LinkState::Pending);
    run.until(20_100);
    assert_eq!(run.link("wan").state(), LinkState::Up);
    run.until(120_000);
    let back = run.switches()[2].clone();
    assert_eq!((back.1.as_str(), back.2.as_str()), ("wwan", "wan"));
    assert!(back.0 >= 20_020 + 30_000, "failback at {} ms, before the failback hold", back.0);
    assert!(matches!(run.last().reason, Reason::Failback { .. }));
}

#[test]
fn a_better_link_takes_over_once_the_bounds_prove_it_and_the_hold_passed() {
    // wwan (listed second) becomes better than wan by 60 points from t = 10 s.
    let net: Net = Box::new(|link, _, t| Some(if link == 0 && t >= 10_000 { 100 } else { 40 }));
    let mut run = Run::new(config(&[0, 0], r#""smoothing_ms": 0, "window": 3,"#), net);
    run.until(11_999);
    assert_eq!(run.current(), "wan", "not before the hold");
    run.until(30_000);
    let moves = run.moves();
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert!((12_000..=16_000).contains(&moves[0].0), "{moves:?}");
    let Reason::Better { evidence, held } = run.last().reason else { panic!("{:?}", run.last()) };
    let by = evidence.from_score.0 - evidence.to_score.0;
    assert!(by > evidence.margin.0 && by > evidence.doubt.0, "{evidence:?}");
    assert_eq!(held, 1_000_000);
    let line = run.last().to_string();
    let reason =
        format!(", more than the hysteresis 20.0 and its doubt {}, for 1.0 s", evidence.doubt);
    assert!(line.ends_with(&reason), "{line}");
    assert!(line.starts_with("wan -> wwan: wwan scored 40.0 (at worst "), "{line}");
    // Doubt made both links burst before wan's window settled: it leaves on the evidence, not
    // once its figures read the new regime in full.
    assert!(line.contains(" against ") && line.contains("(at best "), "{line}");
}

#[test]
fn a_link_better_by_less_than_the_hysteresis_never_takes_over() {
    let net: Net = Box::new(|link, _, _| Some(if link == 0 { 55 } else { 40 }));
    let mut run = Run::new(config(&[0, 0], r#""hysteresis": 20,"#), net);
    run.until(5_000);
    // Initial choice takes the best (wwan); then wan is worse, so make wan current by forcing and
    // releasing: wwan is better by 15 < 20 and must never take over.
    run.force("wan").unwrap();
    run.run.set_mode(Mode::Auto).unwrap();
    run.until(600_000);
    assert_eq!(run.current(), "wan");
}

#[test]
fn equal_scores_never_switch_even_without_hysteresis() {
    let mut run =
        Run::new(config(&[0, 0], r#""hysteresis": 0, "switch_hold_ms": 0,"#), steady(&[30, 30]));
    run.until(300_000);
    assert_eq!(run.switches().len(), 1);
}

#[test]
fn noisy_equal_links_never_flap() {
    // Both links at 20 % loss and 20 ms ± 10: the point scores cross all the time. The route
    // may leave the first link once, on a window that read 24 % against 18 % (loss squared
    // makes that ~290 points, past a doubt of ~260): both links are kept in bursts, near each
    // other, and that many looks find such a window within minutes (docs/judge.md). It never
    // comes back and forth: a failback must hold for 30 s, longer than any run of luck.
    for draw in 0..2u64 {
        let net: Net = Box::new(move |link, target, t| {
            let t = t ^ draw << 40;
            (!drawn(20, link, target, t)).then(|| 20 + mix(t ^ link as u64) % 20)
        });
        let mut run = Run::new(config(&[0, 0], ""), net);
        run.until(3_600_000);
        let moves = run.moves();
        assert!(moves.len() <= 1, "draw {draw}: flapped between equally bad links: {moves:?}");
    }
}

#[test]
fn one_800_ms_spike_every_20_s_does_not_move_the_route() {
    // wan takes 800 ms for one second in every twenty: worse for 5 % of the time, better the rest.
    let net: Net = Box::new(|link, _, t| match link {
        0 if t % 20_000 >= 10_000 && t % 20_000 < 11_000 => Some(800),
        0 => Some(15),
        _ => Some(45),
    });
    let mut run = Run::new(config(&[0, 20], ""), net);
    run.until(3_600_000);
    assert_eq!(run.moves(), [], "{}", run.last());
    assert_eq!(run.link("wan").state(), LinkState::Up, "a spike is not a death");
}

#[test]
fn a_filtered_target_is_no_witness_of_death() {
    // wan's second target never answers; its first takes 800 ms for a second every 20 s. The
    // filtered target's probes are unanswered through every spike, but they prove nothing.
    let net: Net = Box::new(|link, target, t| match (link, target) {
        (0, 1) => None,
        (0, _) if t % 20_000 >= 10_000 && t % 20_000 < 11_000 => Some(800),
        (0, _) => Some(15),
        _ => Some(45),
    });
    let mut run = Run::new(config(&[0, 20], ""), net);
    run.until(3_600_000);
    assert_eq!(run.moves(), [], "{}", run.last());
    // A real outage still kills it, as fast as ever.
    let net: Net = Box::new(|link, target, t| match (link, target) {
        (0, 1) => None,
        (0, _) => (t < 60_000).then_some(15),
        _ => Some(45),
    });
    let mut run = Run::new(config(&[0, 20], ""), net);
    run.until(70_000);
    let (at, to) = run.moves()[0].clone();
    assert_eq!(to, "wwan");
    // Within a second of the first lost probe of the answering target (sent by 60.5 s).
    assert!((60_000..=61_500).contains(&at), "moved at {at} ms");
}

#[test]
fn an_advantage_that_lapses_restarts_the_hold() {
    // wan answers slowly for 2 s of every 6 s: never worse by more than the doubt for the whole
    // hold.
    let net: Net =
        Box::new(|link, _, t| Some(if link == 0 && (t / 2_000) % 3 == 2 { 200 } else { 40 }));
    let extra = r#""smoothing_ms": 0, "window": 3, "switch_hold_ms": 3000,"#;
    let mut run = Run::new(config(&[0, 0], extra), net);
    run.until(120_000);
    assert_eq!(run.switches().len(), 1, "{:?}", run.switches());
}

#[test]
fn failback_waits_for_the_failback_hold_even_when_much_better() {
    // wan dead from 10 s to 20 s, then healthy again and much better than wwan.
    let net: Net = Box::new(|link, _, t| match link {
        0 if (10_000..20_000).contains(&t) => None,
        0 => Some(10),
        _ => Some(150),
    });
    let mut run = Run::new(config(&[0, 0], r#""smoothing_ms": 0, "window": 3,"#), net);
    run.until(200_000);
    let switches = run.switches();
    assert_eq!(switches.len(), 3, "{switches:?}");
    assert_eq!((switches[1].1.as_str(), switches[1].2.as_str()), ("wan", "wwan"));
    let (at, from, to) = switches[2].clone();
    assert_eq!((from.as_str(), to.as_str()), ("wwan", "wan"));
    // Back from the dead, wan is measured afresh, the outage's losses forgotten; it may return
    // once it has been better for the 30 s failback hold.
    assert!((50_000..=51_500).contains(&at), "failback at {at} ms: {:?}", run.run.decisions());
    let Reason::Failback { held, .. } = run.last().reason else { panic!() };
    assert_eq!(held, 30_000_000);
    let line = run.last().to_string();
    assert!(line.starts_with("wwan -> wan: failback: wan scored 10.0"), "{line}");
    assert!(line.ends_with("for 30.0 s"), "{line}");
}

#[test]
fn failback_after_a_degradation_also_waits_for_the_failback_hold() {
    // wan is never dead, only slow from 10 s to 40 s: the route leaves it, and returns only after
    // it has been better for the whole failback hold, not just the switch hold.
    let net: Net = Box::new(|link, _, t| match link {
        0 if (10_000..40_000).contains(&t) => Some(300),
        0 => Some(10),
        _ => Some(100),
    });
    let mut run = Run::new(config(&[0, 0], r#""smoothing_ms": 0, "window": 3,"#), net);
    run.until(200_000);
    let switches = run.switches();
    assert_eq!(switches.len(), 3, "{switches:?}");
    assert_eq!((switches[1].1.as_str(), switches[1].2.as_str()), ("wan", "wwan"));
    let (at, _, to) = switches[2].clone();
    assert_eq!(to, "wan");
    assert!(at >= 40_000 + 30_000, "failback at {at} ms, before the failback hold");
    assert!(at <= 40_000 + 40_000, "failback at {at} ms, long after the failback hold");
    assert_eq!(run.link("wan").state(), LinkState::Up, "wan was never dead");
}

#[test]
fn failback_to_a_link_preferred_by_as_much_as_the_hysteresis() {
    // Two equal links, the backup's bias exactly the default hysteresis (20): the primary is
    // better by the bias alone. After its outage (10 s to 20 s) it returns after the failback
    // hold, with a fresh score: the outage's losses do not linger in its smoothed score.
    let net: Net = Box::new(|link, _, t| match link {
        0 if (10_000..20_000).contains(&t) => None,
        _ => Some(1),
    });
    let mut run = Run::new(config(&[0, 20], r#""failback_hold_ms": 8000,"#), net);
    run.until(24_000);
    let wan_score = run.link("wan").score().expect("wan is up again");
    assert!(wan_score < Score::from_points(5), "wan's score after its outage: {wan_score}");
    run.until(120_000);
    let moves = run.moves();
    assert_eq!(moves.len(), 2, "{moves:?}");
    assert_eq!(moves[1].1, "wan");
    assert!((28_000..=33_000).contains(&moves[1].0), "failback at {moves:?}");
    let line = run.last().to_string();
    assert!(line.contains(", more than its doubt ") && line.ends_with(", for 8.0 s"), "{line}");
}

#[test]
fn a_link_left_soon_after_each_return_waits_longer_for_the_next() {
    // wan goes down again each time shortly after the route came back to it: its failback hold
    // doubles each time; an hour of carrying the route without being left forgets that.
    let mut run = Run::new(config(&[0, 50], r#""failback_hold_ms": 8000,"#), steady(&[20, 20]));
    run.until(10_000);
    let mut waits = Vec::new();
    for down_at in [10_000, 40_000, 80_000, 4_000_000] {
        run.until(down_at);
        assert_eq!(run.current(), "wan", "at {down_at} ms");
        run.event("wan", LinkEvent::Down);
        run.until(down_at + 1_000);
        run.event("wan", LinkEvent::Up);
        let up_at = down_at + 1_000;
        run.until(down_at + 200_000);
        let back = run.switches().last().unwrap().clone();
        assert_eq!((back.1.as_str(), back.2.as_str()), ("wwan", "wan"), "{back:?}");
        waits.push((back.0 - up_at) / 1_000);
    }
    // 8 s, then 16 and 32 s (left within the hour each time), then 8 s again: the route had
    // stayed on wan for over an hour before the last outage.
    let held: Vec<u64> = run
        .run
        .decisions()
        .iter()
        .filter_map(|d| match d.reason {
            Reason::Failback { held, .. } => Some(held / 1_000_000),
            _ => None,
        })
        .collect();
    assert_eq!(held, [8, 16, 32, 8], "failback waits {waits:?} s");
}

#[test]
fn a_flapping_link_is_left_once_and_not_chased() {
    // wan drops out 2 s in every 4 s from 20 s; its last outage ends at 118 s.
    let net: Net = Box::new(|link, _, t| match link {
        0 if (20_000..120_000).contains(&t) && (t / 2_000) % 2 == 0 => None,
        0 => Some(15),
        _ => Some(45),
    });
    let mut run = Run::new(config(&[0, 20], ""), net);
    run.until(300_000);
    let moves = run.moves();
    assert_eq!(moves.len(), 2, "{moves:?}");
    assert_eq!(moves[0].1, "wwan");
    assert!(moves[0].0 <= 20_000 + 8_000, "left after two cycles at most: {moves:?}");
    assert_eq!(moves[1].1, "wan");
    assert!(moves[1].0 >= 118_000 + 30_000, "back before it was stable for the hold: {moves:?}");
}

#[test]
fn every_link_dead_keeps_the_route_and_notes_it_once() {
    let net: Net = Box::new(|link, _, t| match link {
        0 => (t < 30_000).then_some(20),
        // wwan goes first (and is found dead by its slow standby probes long before wan dies),
        // so when wan dies there is nowhere to go.
        _ => (!(2_000..40_000).contains(&t)).then_some(30),
    });
    let mut run = Run::new(config(&[0, 0], ""), net);
    run.until(39_999);
    assert_eq!(run.current(), "wan", "the route stays on the last link");
    let notes: Vec<_> = run.run.decisions().iter().filter(|d| !d.changes_route()).collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].reason, Reason::AllDead { device_down: false });
    assert_eq!(
        notes[0].to_string(),
        "wan -> wan: every link is dead; keeping the default route on wan"
    );
    // wwan returns: the route moves to it at once, without any hold.
    run.until(41_100);
    let (at, to) = run.moves().last().cloned().unwrap();
    assert_eq!(to, "wwan");
    assert!((40_000..=41_100).contains(&at), "back at {at} ms");
}

#[test]
fn a_forced_link_is_sticky_until_auto() {
    let mut run = Run::new(config(&[0, 0], ""), steady(&[20, 90]));
    run.until(5_000);
    assert_eq!(run.current(), "wan");
    run.force("wwan").unwrap();
    assert_eq!(run.switches().last().unwrap(), &(5_000, "wan".into(), "wwan".into()));
    assert_eq!(run.last().reason, Reason::Forced);
    run.until(300_000);
    assert_eq!(run.current(), "wwan", "much better wan must not take over a forced link");
    run.run.set_mode(Mode::Auto).unwrap();
    assert_eq!(run.current(), "wwan", "auto applies the normal holds, no jump");
    // Back to wan, listed first, is a failback: it waits for the failback hold.
    run.until(329_000);
    assert_eq!(run.current(), "wwan");
    run.until(331_000);
    assert_eq!(run.current(), "wan");
}

#[test]
fn a_forced_link_that_dies_stays_when_so_configured() {
    let net: Net = Box::new(|link, _, t| (link == 1 || t < 20_000).then_some(20));
    let mut run = Run::new(config(&[0, 0], r#""forced_link_dies": "stay","#), net);
    run.until(5_000);
    run.force("wan").unwrap();
    run.until(100_000);
    assert_eq!(run.current(), "wan");
    assert!(matches!(run.link("wan").state(), LinkState::Dead(_)));
}

#[test]
fn a_forced_link_that_dies_falls_back_and_returns_when_so_configured() {
    let net: Net =
        Box::new(|link, _, t| (link == 1 || !(20_000..40_000).contains(&t)).then_some(20));
    let mut run = Run::new(config(&[50, 0], r#""forced_link_dies": "fallback","#), net);
    run.until(5_000);
    assert_eq!(run.current(), "wwan");
    run.force("wan").unwrap();
    run.until(30_000);
    assert_eq!(run.current(), "wwan");
    let fallback = run.run.decisions().iter().rev().find(|d| d.changes_route()).copied().unwrap();
    assert_eq!(
        fallback.reason,
        Reason::ForcedLinkDead {
            forced: LinkName::new("wan").unwrap(),
            score: Score::from_points(20)
        }
    );
    // Still forced: as soon as wan answers again the route goes back to it, worse score or not.
    run.until(41_100);
    assert_eq!(run.current(), "wan");
    assert_eq!(run.last().reason, Reason::Forced);
    assert_eq!(run.run.engine().mode(), Mode::Forced(LinkName::new("wan").unwrap()));
}

#[test]
fn forcing_an_unknown_or_disabled_link_is_refused_and_changes_nothing() {
    let mut cfg = config(&[0, 0], "");
    cfg.links[1].enabled = false;
    let mut run = Run::new(cfg, steady(&[20, 20]));
    run.until(5_000);
    assert_eq!(run.force("lte"), Err(ModeError::UnknownLink("lte".into())));
    assert_eq!(run.force("wwan"), Err(ModeError::LinkDisabled(LinkName::new("wwan").unwrap())));
    assert_eq!(run.force("lte").unwrap_err().to_string(), "no link named \"lte\" in the config");
    assert_eq!(run.run.engine().mode(), Mode::Auto);
    assert_eq!(run.link("wwan").state(), LinkState::Disabled);
    assert!(
        run.link("wwan").targets().iter().all(|t| t.last_reply().is_none()),
        "disabled links are not probed"
    );
}

#[test]
fn one_silent_target_does_not_kill_the_link_or_move_the_route() {
    // wan's second target is filtered from the start; its first answers in 20 ms.
    let net: Net = Box::new(|link, target, _| match (link, target) {
        (0, 1) => None,
        (0, _) => Some(20),
        _ => Some(60),
    });
    let mut run = Run::new(config(&[0, 0], ""), net);
    run.until(600_000);
    assert_eq!(run.switches(), [(60, "none".into(), "wan".into())]);
    let wan = run.link("wan");
    assert_eq!(wan.state(), LinkState::Up);
    assert!(!wan.targets()[1].reachable());
    assert_eq!(
        wan.telemetry().unwrap(),
        Telemetry { latency_us: 20_000, jitter_us: 0, loss_bp: 0 }
    );
}

#[test]
fn a_target_filtered_mid_run_does_not_move_the_route() {
    let net: Net = Box::new(|link, target, t| match (link, target) {
        (0, 1) if t >= 30_000 => None,
        (0, _) => Some(20),
        _ => Some(45),
    });
    let mut run = Run::new(config(&[0, 0], ""), net);
    run.until(600_000);
    assert_eq!(run.switches().len(), 1, "{:?}", run.switches());
    assert_eq!(run.current(), "wan");
}

#[test]
fn targets_that_rate_limit_echo_requests_are_left_out_of_bursts_and_the_route_stays() {
    // Every target answers ten echo requests a second at most (a bucket of a second's worth);
    // wan loses one probe in forty besides, and each loss starts a burst of 30 a second.
    let mut buckets = [[(10.0_f64, 0_u64); 2]; 2];
    let mut sent = 0_u64;
    let net: Net = Box::new(move |link, target, t| {
        let (tokens, at) = &mut buckets[link][target];
        *tokens = (*tokens + (t - *at) as f64 / 100.0).min(10.0);
        *at = t;
        if *tokens < 1.0 {
            return None;
        }
        *tokens -= 1.0;
        sent += 1;
        match link {
            0 if sent % 40 == 0 => None,
            0 => Some(15),
            _ => Some(45),
        }
    });
    let mut run = Run::new(config(&[0, 20], ""), net);
    run.until(1_800_000);
    assert_eq!(run.switches().len(), 1, "{:?}", run.switches());
    let wan = run.link("wan");
    assert!(wan.targets().iter().all(|t| t.limits_bursts()), "both found out");
    let loss = wan.stats().unwrap().loss.value;
    assert!(loss < 600, "the link's own 2.5 %, not the limiter's drops: {loss} bp");
}

#[test]
fn loss_that_begins_during_a_calibration_is_not_taken_for_a_limiter() {
    // wan's first calibration starts 45 s after it came up; a third of its probes are lost from
    // the moment its burst is under way, so the calibration loses far more than the paced
    // probes before it did, as a limiter's would.
    let mut sent = 0_u64;
    let net: Net = Box::new(move |link, _, t| match link {
        0 if t < 45_100 => Some(15),
        0 => {
            sent += 1;
            (sent % 3 != 0).then_some(15)
        }
        _ => Some(45),
    });
    let mut run = Run::new(config(&[0, 20], ""), net);
    run.until(46_600);
    let found = run.link("wan").targets().iter().any(|t| t.limits_bursts());
    assert!(found, "the calibration took the loss for a limiter");
    run.until(55_000);
    let wan = run.link("wan");
    assert!(wan.targets().iter().all(|t| !t.limits_bursts()), "the verdict taken back");
    let (at, _, to) = run.switches()[1].clone();
    assert_eq!(to, "wwan");
    // The calibration and the second after it hide the loss, the probation takes two lost
    // paced probes: a second or two more than the 30 % loss family's 2-4 s.
    assert!(at < 51_300, "left {at} ms, 6 s after the loss began at most");
}

/// Probes sent to each link in `span` ms of steady running.
fn probes_per_link(config: Config, net: Net, span: u64) -> Vec<usize> {
    let counts = std::rc::Rc::new(std::cell::RefCell::new(vec![0usize; config.links.len()]));
    let seen = std::rc::Rc::clone(&counts);
    let mut net = net;
    let path: Path = Box::new(move |probe, now| {
        seen.borrow_mut()[probe.link] += 1;
        net(probe.link, probe.target, now.as_micros() / 1000).map(|rtt| rtt * 1000)
    });
    let mut run = VirtualRun::new(&config, path, Instant::ZERO);
    run.run_until(ms(60_000));
    let before = counts.borrow().clone();
    run.run_until(ms(60_000 + span));
    counts.borrow().iter().zip(before).map(|(after, before)| after - before).collect()
}

#[test]
fn a_healthy_standby_is_probed_rarely_and_the_route_link_steadily() {
    let per_link = probes_per_link(config(&[0, 20], ""), steady(&[15, 45]), 600_000);
    // wan: two targets each four times a second; wwan: one probe every 7.5 s (each target every
    // 15 s), 36 B each way: 9.6 B/s. Each link calibrates once in these ten minutes (40
    // probes per target): wan every ten minutes, wwan once its targets have 16 paced outcomes,
    // then every six hours (0.3 B/s).
    let calibration = 2 * limiter::CALIBRATION_PROBES as usize;
    assert!((4_790..=4_810).contains(&(per_link[0] - calibration)), "{per_link:?}");
    assert!((78..=82).contains(&(per_link[1] - calibration)), "{per_link:?}");
}

#[test]
fn a_dead_link_is_never_flooded() {
    let net: Net = Box::new(|link, _, _| (link == 1).then_some(20));
    let per_link = probes_per_link(config(&[0, 0], ""), net, 600_000);
    // Bursts are bounded; a dead link is probed at the active pace: about 8 a second.
    assert!(per_link[0] <= 5_000, "{per_link:?}");
}

#[test]
fn late_means_late_for_this_path() {
    let mut engine = steady_engine();
    assert!(engine.poll_probe(ms(20_000)).is_some());
    assert_eq!(engine.poll_probe(ms(20_000)), None);
    let late = engine.next_deadline();
    assert!((ms(20_030)..=ms(20_031)).contains(&late), "late at {late:?}");
    engine.tick(late);
    // Late: the link is probed in a burst, 5.6 ms apart, on top of its rhythm.
    assert!(engine.poll_probe(late).is_some(), "a burst starts at once");
    assert_eq!(engine.poll_probe(late.after(5_555)), None);
    assert!(engine.poll_probe(late.after(5_556)).is_some());
}

#[test]
fn bursts_leave_the_paced_probes_going_round_the_targets() {
    use crate::core::link::{Link, Pace};
    let config = config(&[0], "");
    let mut link = Link::new(&config.links[0], ms(0));
    let interval = config.links[0].interval_ms;
    let mut paced_targets = Vec::new();
    for round in 0..6u64 {
        let at = ms(round * interval);
        let (target, _) = link.poll_probe(at, Pace::Active, 0).expect("a paced probe is due");
        paced_targets.push(target);
        // A burst of three: an odd count, which a turn shared with the paced probes would
        // leave where it was, the next paced probe on the same target again.
        assert!(link.burst(at, 3));
        for step in 1..=3 {
            assert!(link.poll_probe(at.after(step * 16_667), Pace::Active, 0).is_some());
        }
    }
    assert_eq!(paced_targets, [0, 1, 0, 1, 0, 1]);
}

/// An engine whose one link has answered for 20 s, the probes of its `i`-th quarter second in
/// `rtt_ms(i)` ms.
fn warmed_engine(rtt_ms: impl Fn(u64) -> u64) -> Engine {
    let (mut engine, probe) = manual_engine();
    engine.on_reply(ms(20), probe.link, probe.target, probe.seq);
    for i in 1..80u64 {
        let at = ms(i * 250);
        while let Some(probe) = engine.poll_probe(at) {
            engine.on_reply(at.after(rtt_ms(i) * 1000), probe.link, probe.target, probe.seq);
        }
        engine.tick(at.after(20_000));
    }
    engine
}

/// Steady 20 ms replies: srtt 20 ms and a shrinking variation; late soon after 30 ms.
fn steady_engine() -> Engine {
    warmed_engine(|_| 20)
}

fn target_loss_bp(engine: &Engine, target: usize) -> u32 {
    engine.links()[0].targets()[target].telemetry().unwrap().loss_bp
}

/// Leaves the first probe to `target` sent from `from` ms on unanswered, and answers every
/// other in 20 ms until a later one to the same target was answered: returns the first, when
/// it was sent, and when that answer came.
fn overtake_one(engine: &mut Engine, target: usize, from: u64) -> (Probe, Instant, Instant) {
    let mut at = ms(from);
    let mut unanswered = None;
    loop {
        engine.tick(at);
        while let Some(probe) = engine.poll_probe(at) {
            if probe.target == target && unanswered.is_none() {
                unanswered = Some((probe, at));
                continue;
            }
            let answered = at.after(20_000);
            engine.on_reply(answered, probe.link, probe.target, probe.seq);
            if let Some((first, sent)) = unanswered.filter(|_| probe.target == target) {
                return (first, sent, answered);
            }
        }
        at = engine.next_deadline().max(at.after(1_000));
    }
}

#[test]
fn a_late_probe_overtaken_by_a_later_answer_is_lost_before_its_timeout() {
    let mut engine = steady_engine();
    let (unanswered, _, overtaken_at) = overtake_one(&mut engine, 0, 20_000);
    assert!(overtaken_at < ms(20_200), "{overtaken_at:?}");
    assert!(target_loss_bp(&engine, unanswered.target) > 0, "lost, 0.8 s before its timeout");
    // Its reply comes after all: it was overtaken, not lost, and its timeout changes nothing.
    engine.on_reply(ms(20_400), unanswered.link, unanswered.target, unanswered.seq);
    assert_eq!(target_loss_bp(&engine, unanswered.target), 0);
    engine.tick(ms(21_000));
    assert_eq!(target_loss_bp(&engine, unanswered.target), 0);
    assert_eq!(engine.links()[0].targets()[unanswered.target].last_reply(), Some(ms(20_400)));
    // This target's path reorders: for a while, only the timeout tells its losses.
    let (unanswered, sent, overtaken_at) = overtake_one(&mut engine, 0, 21_000);
    let (before_timeout, timeout) = (sent.after(900_000), sent.after(1_000_000));
    assert!(overtaken_at < before_timeout, "{overtaken_at:?}");
    engine.tick(before_timeout);
    assert_eq!(target_loss_bp(&engine, unanswered.target), 0, "late and overtaken, not yet lost");
    engine.tick(timeout);
    assert!(target_loss_bp(&engine, unanswered.target) > 0, "lost at its timeout");
}

#[test]
fn a_probe_overtaken_before_it_is_late_is_lost_when_it_goes_late() {
    // Replies take 20 or 320 ms in turn: this path is late only after most of a second.
    let mut engine = warmed_engine(|i| if i % 4 < 2 { 20 } else { 320 });
    engine.tick(ms(19_999));
    let unanswered = engine.poll_probe(ms(20_000)).unwrap();
    let other = engine.poll_probe(ms(20_250)).unwrap();
    engine.on_reply(ms(20_270), other.link, other.target, other.seq);
    let next = engine.poll_probe(ms(20_500)).unwrap();
    assert_eq!(next.target, unanswered.target);
    engine.on_reply(ms(20_520), next.link, next.target, next.seq);
    assert_eq!(target_loss_bp(&engine, unanswered.target), 0, "overtaken, but not late yet");
    engine.tick(ms(20_600));
    assert_eq!(target_loss_bp(&engine, unanswered.target), 0, "not late at 600 ms");
    engine.tick(ms(20_999));
    let lost = target_loss_bp(&engine, unanswered.target);
    assert!(lost > 0, "late and overtaken: lost");
    // Lost for good at its timeout, and counted once.
    engine.tick(ms(21_000));
    assert_eq!(target_loss_bp(&engine, unanswered.target), lost);
}

fn manual_engine() -> (Engine, Probe) {
    let mut engine = Engine::new(&config(&[0], ""), Instant::ZERO);
    let probe = engine.poll_probe(Instant::ZERO).unwrap();
    (engine, probe)
}

#[test]
fn a_reply_after_the_timeout_counts_as_lost() {
    let (mut engine, probe) = manual_engine();
    engine.on_reply(ms(1_000), probe.link, probe.target, probe.seq);
    let target = &engine.links()[0].targets()[0];
    assert_eq!(target.last_reply(), None);
    assert_eq!(target.telemetry(), None, "lost, and no RTT of 1 s recorded");
    // Once the timeout has passed, a very late reply is a stranger.
    let (mut engine, probe) = manual_engine();
    engine.tick(ms(1_000));
    engine.on_reply(ms(1_100), probe.link, probe.target, probe.seq);
    assert_eq!(engine.links()[0].targets()[0].last_reply(), None);
}

#[test]
fn foreign_and_duplicate_replies_change_nothing() {
    let (mut engine, probe) = manual_engine();
    engine.on_reply(ms(10), probe.link, probe.target, probe.seq.wrapping_add(7));
    engine.on_reply(ms(10), 5, 0, probe.seq);
    engine.on_reply(ms(10), 0, 9, probe.seq);
    assert_eq!(engine.links()[0].targets()[0].last_reply(), None);
    engine.on_reply(ms(10), probe.link, probe.target, probe.seq);
    engine.on_reply(ms(11), probe.link, probe.target, probe.seq);
    let telemetry = engine.links()[0].targets()[0].telemetry().unwrap();
    assert_eq!(telemetry, Telemetry { latency_us: 10_000, jitter_us: 0, loss_bp: 0 });
}

#[test]
fn probes_in_flight_are_not_counted_as_lost() {
    let (mut engine, first) = manual_engine();
    // The targets take turns: the second goes out half an interval later.
    assert_eq!(engine.poll_probe(Instant::ZERO), None);
    let second = engine.poll_probe(ms(500)).unwrap();
    assert_ne!((first.target, first.seq), (second.target, second.seq));
    engine.on_reply(ms(510), second.link, second.target, second.seq);
    // The first probe is still in flight (late, not lost): loss is 0 %, not 50 %.
    assert_eq!(engine.links()[0].telemetry().unwrap().loss_bp, 0);
}

#[test]
fn a_probe_that_cannot_be_sent_is_lost_at_once() {
    let (mut engine, probe) = manual_engine();
    engine.on_send_failed(ms(1), &probe);
    let target = &engine.links()[0].targets()[0];
    assert_eq!(target.telemetry(), None);
    engine.on_reply(ms(5), probe.link, probe.target, probe.seq);
    assert_eq!(engine.links()[0].targets()[0].last_reply(), None, "lost already: a stranger");
}

#[test]
fn reload_keeps_the_state_of_links_that_stay() {
    let mut run = Run::new(config(&[0, 50], ""), steady(&[20, 30, 25]));
    run.until(60_000);
    let wan_before = run.link("wan").telemetry();
    let since_before = run.link("wan").state_since();
    // Add lte, change wwan's bias.
    let new = config(&[0, 10, 0], "");
    run.run.reload(&new);
    assert_eq!(run.current(), "wan");
    assert_eq!(run.link("wan").telemetry(), wan_before);
    assert_eq!(run.link("wan").state_since(), since_before);
    assert_eq!(
        run.link("wwan").raw_score(),
        Some(Score::from_points(40)),
        "new bias applies at once"
    );
    assert_eq!(run.link("lte").state(), LinkState::Pending);
    run.until(120_000);
    assert_eq!(
        run.switches().len(),
        1,
        "no decision disturbed by the reload: {:?}",
        run.switches()
    );
    assert_eq!(run.link("lte").state(), LinkState::Up);
}

#[test]
fn reload_that_removes_the_current_link_moves_the_route_at_once() {
    let mut run = Run::new(config(&[0, 0, 0], ""), steady(&[20, 40, 30]));
    run.until(10_000);
    assert_eq!(run.current(), "wan");
    run.force("wan").unwrap();
    let mut new = config(&[0, 0, 0], "");
    new.links.remove(0);
    run.run.reload(&new);
    assert_eq!(run.current(), "lte");
    assert!(matches!(run.last().reason, Reason::LinkRemoved { .. }));
    assert_eq!(run.run.engine().mode(), Mode::Auto, "the forced link is gone");
    assert!(
        run.last()
            .to_string()
            .starts_with("wan -> lte: wan was removed or disabled by a config reload")
    );
}

#[test]
fn reload_that_disables_a_link_stops_probing_it() {
    let mut run = Run::new(config(&[0, 0], ""), steady(&[20, 40]));
    run.until(10_000);
    let mut new = config(&[0, 0], "");
    new.links[1].enabled = false;
    run.run.reload(&new);
    assert_eq!(run.link("wwan").state(), LinkState::Disabled);
    run.until(20_000);
    assert!(run.link("wwan").targets().iter().all(|t| t.last_reply().is_none()));
}

#[test]
fn the_score_is_smoothed_over_time() {
    let net: Net = Box::new(|_, _, t| Some(if t < 30_000 { 20 } else { 120 }));
    let mut run = Run::new(config(&[0], r#""smoothing_ms": 4000, "window": 3,"#), net);
    run.until(37_200);
    let wan = run.link("wan");
    let (raw, smoothed) = (wan.raw_score().unwrap(), wan.score().unwrap());
    assert!(raw.0 >= 100_000, "raw {raw}");
    assert!(smoothed < raw && smoothed.0 > 20_000, "smoothed {smoothed}, raw {raw}");
}

#[test]
fn history_keeps_the_newest_decisions() {
    let mut run = Run::new(config(&[0, 0], ""), steady(&[20, 20]));
    run.until(5_000);
    for i in 0..40 {
        run.force(if i % 2 == 0 { "wwan" } else { "wan" }).unwrap();
    }
    let history: Vec<_> = run.run.engine().history().collect();
    assert_eq!(history.len(), HISTORY_LEN);
    assert_eq!(*history.last().unwrap(), &run.last());
}

#[test]
fn deadlines_follow_the_probe_rhythm() {
    let mut engine = Engine::new(&config(&[0], ""), Instant::ZERO);
    assert_eq!(engine.next_deadline(), Instant::ZERO);
    assert!(engine.poll_probe(Instant::ZERO).is_some());
    assert_eq!(engine.poll_probe(Instant::ZERO), None, "the targets take turns");
    assert_eq!(engine.next_deadline(), ms(125));
    // A caller that wakes late resumes the rhythm instead of bursting.
    assert!(engine.poll_probe(ms(5_000)).is_some());
    assert_eq!(engine.poll_probe(ms(5_000)), None);
}

#[test]
fn a_backup_known_roughly_is_probed_harder_while_the_primary_is_in_doubt() {
    // From 60 s the primary loses 9 % of its probes at random: its scores point to the backup,
    // 50 points behind when clean, before the evidence proves it. The backup, probed once every 7.5 s so
    // far, is known only roughly, and its bursts are what narrow its side of the doubt.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut net: Net = Box::new(move |link, _, t| {
        // xorshift64: losses and delays at random, fixed by the seed.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let (percent, jitter) = (state % 100, (state >> 8) % 13);
        match link {
            0 => (t < 60_000 || percent >= 9).then_some(14 + jitter % 5),
            _ => (percent >= 1 || t % 7 != 0).then_some(39 + jitter),
        }
    });
    let sent = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = std::rc::Rc::clone(&sent);
    let path: Path = Box::new(move |probe, now| {
        seen.borrow_mut().push((now.as_micros() / 1000, probe.link));
        net(probe.link, probe.target, now.as_micros() / 1000).map(|rtt| rtt * 1000)
    });
    let mut run = VirtualRun::new(&config(&[0, 20], ""), path, Instant::ZERO);
    run.run_until(ms(180_000));
    let left = run.decisions().iter().find(|d| d.changes_route() && d.from.is_some());
    let left = left.map_or(180_000, |d| d.at.as_micros() / 1000);
    let to_backup = |from: u64, to: u64| {
        sent.borrow().iter().filter(|(t, link)| *link == 1 && (from..to).contains(t)).count()
    };
    // Its rhythm alone sends it 4 probes in 30 s.
    assert!(to_backup(30_000, 60_000) <= 5, "{} before the loss", to_backup(30_000, 60_000));
    let in_doubt = to_backup(60_000, left);
    assert!(in_doubt >= 40, "{in_doubt} probes in {} ms of doubt", left - 60_000);
    assert!(left < 80_000, "left at {left} ms");
}

#[test]
fn the_doubted_links_are_the_first_two_doubtful_then_near() {
    let (none, one, two) = ([None, None], [Some(1), None], [Some(1), Some(2)]);
    assert_eq!(first_two(two, [Some(3), Some(4)]), [Some(1), Some(2)]);
    assert_eq!(first_two(one, [Some(3), Some(4)]), [Some(1), Some(3)]);
    assert_eq!(first_two(one, none), [Some(1), None]);
    assert_eq!(first_two(none, [Some(3), None]), [Some(3), None]);
    assert_eq!(first_two(none, none), [None, None]);
}
