//! The `wanmon-sim` command line: its outputs, exit statuses, and bad arguments.

use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wanmon-sim"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("wanmon-sim runs")
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    // Under target/, not /tmp: nothing is left on the machine after the tests.
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("wanmon-sim-cli-{name}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn a_scenario_run_prints_the_table_and_writes_json_and_svg() {
    let dir = temp_dir("outputs");
    let json = dir.join("run.json");
    let svg = dir.join("svg");
    let out = sim(&[
        "run",
        "scenarios/01-hard-outage.yaml",
        "--json",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("hard-outage"), "{stdout}");
    assert!(stdout.contains("1 scenario runs, every expectation met"), "{stdout}");
    let records: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(records[0]["scenario"], "hard-outage");
    assert!(records[0]["route_changes"].as_array().unwrap().len() >= 2);
    assert!(records[0]["samples"].as_array().unwrap().len() > 100);
    let picture = std::fs::read_to_string(svg.join("01-hard-outage.replay.svg")).unwrap();
    assert!(picture.starts_with("<svg") && picture.trim_end().ends_with("</svg>"));
}

#[test]
fn an_unmet_expectation_fails_the_run() {
    let dir = temp_dir("unmet");
    let file = dir.join("wrong.yaml");
    std::fs::write(
        &file,
        "duration_s: 60\nlinks:\n  - { name: wan, latency_ms: 10 }\n  - { name: wwan, latency_ms: 40 }\n\
         expect:\n  - final: wwan\n",
    )
    .unwrap();
    let out = sim(&["run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAILED") && stdout.contains("unmet: ends on wwan: ends on wan"),
        "{stdout}"
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["run"][..],
        &["walk", "scenarios"],
        &["run", "scenarios", "--engine", "warp"],
        &["run", "scenarios", "--sample-every", "0"],
        &["run", "scenarios", "--json"],
        &["run", "a", "b"],
        &["run", "scenarios", "--frobnicate"],
        &["run", "scenarios", "--engine", "netns", "--impair", "tbf"],
        &["run", "scenarios", "--impair"],
        &["run", "scenarios", "--check-replay"],
        &["calibrate", "scenarios/01-hard-outage.yaml", "--impair", "tbf"],
        &["calibrate", "scenarios/01-hard-outage.yaml", "--json"],
        &["calibrate", "scenarios/01-hard-outage.yaml", "--pings", "5"],
        &["calibrate"],
    ] {
        let out = sim(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: wanmon-sim"), "{args:?}");
    }
}

#[test]
fn a_bad_scenario_is_reported_and_nothing_runs() {
    let out = sim(&["run", "/nonexistent/dir/x.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/dir/x.yaml: cannot read"), "{stderr}");
    assert!(stderr.contains("nothing run"), "{stderr}");
}

#[test]
fn netem_is_refused_clearly_where_it_cannot_run_and_taken_where_it_can() {
    let available = wanmon_sim::impair::netem_available();
    let out = sim(&[
        "run",
        "scenarios/01-hard-outage.yaml",
        "--engine",
        "netns",
        "--impair",
        "netem",
        "--binary",
        "/bin/true",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    match available {
        // Taken: the run gets as far as the daemon, which exits at once.
        Ok(true) => assert!(stderr.contains("the daemon /bin/true exited"), "{stderr}"),
        Ok(false) => assert!(stderr.contains("this kernel has no sch_netem"), "{stderr}"),
        Err(_) => assert!(stderr.contains("cannot check for sch_netem"), "{stderr}"),
    }
}

#[test]
fn the_judge_prints_its_table_writes_markdown_and_svg_and_refuses_bad_options() {
    let dir = temp_dir("judge");
    let (markdown, svg) = (dir.join("judge.md"), dir.join("judge.svg"));
    let out = sim(&[
        "judge",
        "--seeds",
        "2",
        "--family",
        "outage",
        "--family",
        "spikes",
        "--policy",
        "wanmon",
        "--policy",
        "dpinger",
        "--markdown",
        markdown.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
        "--check",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("| family | what | goal | wanmon | dpinger |"), "{stdout}");
    assert!(stdout.contains("| outage |"), "{stdout}");
    let written = std::fs::read_to_string(&markdown).unwrap();
    assert!(stdout.starts_with(&written), "the markdown file is the printed report");
    assert!(!written.contains("Probe traffic"), "no noisy-day, no traffic table: {written}");
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    for (args, expected) in [
        (
            &["judge", "--family", "nope"][..],
            "--family: no family \"nope\"; the families are outage, carrier",
        ),
        (
            &["judge", "--policy", "mwan4"][..],
            "--policy: no policy \"mwan4\"; the policies are wanmon, wanmon v0.1",
        ),
        (&["judge", "--days", "40"][..], "--days: got 40, expected at most 30"),
        (&["judge", "--seeds", "x"][..], "--seeds: got \"x\", expected a number above 0"),
        (&["judge", "--bogus"][..], "judge: unknown option \"--bogus\""),
    ] {
        let out = sim(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
