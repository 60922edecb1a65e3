//! The decision benchmark's parts: every family is a valid scenario, the measures read a route
//! the way the table says, and the quantiles count a run that never switched as the slowest.

use wanmon_sim::judge::{self, FAMILIES, Kind, Measure, WARM_UP_S};
use wanmon_sim::peers::Outcome;

#[test]
fn every_family_is_a_valid_scenario_for_any_seed() {
    for family in FAMILIES {
        for seed in [1, 17, 1_000] {
            let scenario = family.scenario(seed, 0.1);
            assert_eq!(scenario.seed, seed);
            assert!(scenario.duration_s > WARM_UP_S, "{}", family.name);
            assert!(scenario.timeline.iter().all(|p| p.at_s >= WARM_UP_S), "{}", family.name);
        }
    }
    let goals = FAMILIES.iter().filter(|f| matches!(f.kind, Kind::Fault { goal_s: Some(_) }));
    assert!(goals.count() >= 6, "the issue's goals are families with a goal");
}

#[test]
fn a_route_is_read_as_time_to_leave_time_back_and_switches() {
    let scenario = FAMILIES[0].scenario(1, 1.0);
    let mut outcome = Outcome::new(2, 72);
    outcome.route_to(0.0, 0);
    outcome.route_to(WARM_UP_S + 1.5, 1);
    outcome.route_to(WARM_UP_S + 1.5, 1);
    outcome.route_to(WARM_UP_S + 95.0, 0);
    outcome.first_lost_s = Some(WARM_UP_S + 0.4);
    outcome.probes = vec![100, 50];
    let measure = judge::measure(&scenario, &outcome);
    assert_eq!(measure.to_switch_s, Some(1.5));
    assert!((measure.after_first_loss_s.unwrap() - 1.1).abs() < 1e-9);
    assert_eq!(measure.back_s, Some(95.0));
    assert_eq!(measure.switches, 2, "the same link twice is no switch");
    assert_eq!(measure.backup_bytes_per_s, 50.0 * 72.0 / scenario.duration_s);
    // On the dead primary from 120 to 121.5 s; on the backup, worse by far more than the
    // hysteresis once the outage ends at 180 s, until the route leaves it at 215 s.
    assert_eq!(measure.bad_link_s, 1.5 + 35.0);
}

#[test]
fn quantiles_count_a_run_that_never_switched_as_the_slowest() {
    let times = [Some(1.0), Some(3.0), None, Some(2.0)];
    assert_eq!(judge::quantile(&times, 0.5), Some(2.0));
    assert_eq!(judge::quantile(&times, 0.75), Some(3.0));
    assert_eq!(judge::quantile(&times, 0.95), None);
}

#[test]
fn every_policy_runs_every_family_it_answers_for_and_wanmon_meets_the_outage_goal() {
    let mut yardsticks = 0;
    for family in FAMILIES.iter().filter(|f| matches!(f.kind, Kind::Fault { .. })) {
        let scenario = family.scenario(3, 0.01);
        for policy in judge::POLICIES.iter().filter(|p| judge::applies(p, family)) {
            let outcome = judge::run_policy(policy, &scenario);
            assert_eq!(outcome.route.first().map(|r| r.1), Some(0), "{policy} starts on wan");
            if *policy == judge::IDEAL {
                // It knows the backup without probing it, and leaves the primary for good.
                assert_eq!(outcome.route.len(), 2, "{}: {:?}", family.name, outcome.route);
                yardsticks += 1;
                continue;
            }
            assert!(outcome.probes.iter().all(|p| *p > 0), "{policy} probes every link");
        }
    }
    assert_eq!(yardsticks, 3, "the yardstick answers for the three loss families");
    let outage = FAMILIES.iter().find(|f| f.name == "outage").unwrap().scenario(5, 1.0);
    let measure: Measure = judge::measure(&outage, &judge::run_policy("wanmon", &outage));
    let after_loss = measure.after_first_loss_s.expect("it switched");
    assert!(after_loss <= 1.0, "{after_loss} s after the first lost probe");
}

#[test]
fn a_rare_false_switch_does_not_read_as_none() {
    let family = *FAMILIES.iter().find(|f| f.name == "noisy-day").unwrap();
    let quiet = Measure {
        to_switch_s: None,
        after_first_loss_s: None,
        back_s: None,
        switches: 0,
        bad_link_s: 0.0,
        backup_bytes_per_s: 0.0,
    };
    let days = |measures: Vec<Measure>| judge::Cell {
        family,
        policy: "wanmon",
        simulated_s: measures.len() as f64 * (WARM_UP_S + 86_400.0),
        measures,
    };
    assert_eq!(days(vec![quiet.clone(); 100]).entry(), "0/day");
    let mut measures = vec![quiet; 100];
    measures[7].switches = 1;
    assert_eq!(days(measures.clone()).entry(), "0.010/day");
    measures[8].switches = 20;
    assert_eq!(days(measures).entry(), "0.2/day");
}
