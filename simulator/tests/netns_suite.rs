//! The scenario library in real time, on real namespaces with the real daemon (the `netns`
//! engine). Both tests run at once (they take minutes of real time, not CPU):
//! - every scenario with this kernel's impairment (`--impair auto`: netem where the kernel has
//!   it, else the relay), all at once: each meets its expectations, switches to the same links
//!   in the same order as the replay of the decision core, matches its snapshot (the links and
//!   the phase each switch fell in: no times, so noise cannot flake it), and leaves nothing
//!   behind;
//! - the netem backend where netem exists. This project's kernel has no `sch_netem`, so that
//!   test boots User-Mode Linux (Debian's `user-mode-linux`, whose kernel ships `sch_netem`) with
//!   the host's files as its root and runs `wanmon-sim` inside it: `calibrate --impair netem`
//!   (50 ms ± 10 ms and 20 % loss measured within ±10 % and ±3 points over 2000 pings: netem is
//!   not seedable, so enough pings that chance cannot flake it), then three scenarios with
//!   `--impair auto`, which must pick netem there, covering an ISP outage, a pulled cable and a
//!   filtered target: expectations met, the same switches as the replay, nothing left behind.
//!
//! Needs root; `cargo xtask ci` runs it with `--include-ignored`. Set WANMON_BINARY (and
//! WANMON_RUNNER, such as qemu-mipsel-static) to run another build of the daemon.

mod common;

use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wanmon_sim::impair::Impairment;
use wanmon_sim::record::RunRecord;
use wanmon_sim::scenario::Scenario;
use wanmon_sim::{netns, replay};

/// The switches as the snapshot shows them: the link, and the phase of the timeline it fell in.
fn switch_log(scenario: &Scenario, record: &RunRecord) -> String {
    record
        .route_changes
        .iter()
        .map(|change| {
            let t = change.t_ms as f64 / 1000.0;
            let phase = scenario.timeline.iter().filter(|p| p.at_s <= t).count();
            let during = match phase {
                0 => "before any change".to_string(),
                n => format!("after the change at {} s", scenario.timeline[n - 1].at_s),
            };
            format!("{} -> {} {during}", change.from.as_deref().unwrap_or("none"), change.to)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "needs root: network namespaces; runs in real time (~10 min)"]
fn every_scenario_on_namespaces_agrees_with_the_replay() {
    common::require_root();
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let scenarios = Scenario::load_all(&library).unwrap_or_else(|e| panic!("{e:?}"));
    let options = netns::Options {
        binary: common::daemon(),
        runner: std::env::var("WANMON_RUNNER").ok().filter(|r| !r.is_empty()),
        impairment: Impairment::choose("auto").unwrap_or_else(|e| panic!("{e}")),
        sample_every_s: 5.0,
    };
    let records: Vec<RunRecord> = std::thread::scope(|scope| {
        let runs: Vec<_> =
            scenarios.iter().map(|s| scope.spawn(|| netns::run(s, &options))).collect();
        runs.into_iter()
            .map(|r| r.join().expect("run thread").unwrap_or_else(|e| panic!("{e}")))
            .collect()
    });
    let mut problems = Vec::new();
    for (scenario, record) in scenarios.iter().zip(&records) {
        let unmet = record.unmet();
        if !unmet.is_empty() {
            problems.push(format!("{}: unmet on netns: {unmet:?}", scenario.name));
        }
        let replayed = replay::run(scenario, 1.0);
        let links =
            |r: &RunRecord| r.route_changes.iter().map(|c| c.to.clone()).collect::<Vec<_>>();
        if links(record) != links(&replayed) {
            problems.push(format!(
                "{}: netns switched {:?}, replay {:?}",
                scenario.name,
                links(record),
                links(&replayed)
            ));
        }
        println!(
            "{:<36} netns: time to switch {:>5}, {} switches | replay: {:>5}, {} switches",
            scenario.name,
            record.time_to_switch_s.map_or("-".into(), |t| format!("{t:.1} s")),
            record.switches,
            replayed.time_to_switch_s.map_or("-".into(), |t| format!("{t:.1} s")),
            replayed.switches
        );
    }
    let leftover = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    let leftover = String::from_utf8_lossy(&leftover.stdout)
        .lines()
        .filter(|l| l.starts_with(netns::PREFIX))
        .count();
    assert_eq!(leftover, 0, "namespaces left behind");
    // Every device a run makes is made inside its namespaces; none may end up on the host.
    let host_links = Command::new("ip").args(["-o", "link", "show"]).output().expect("ip link");
    let host_links = String::from_utf8_lossy(&host_links.stdout);
    let strays: Vec<&str> = host_links
        .lines()
        .filter(|l| {
            scenarios.iter().flat_map(|s| &s.links).any(|link| {
                l.contains(&format!(" {}:", link.name)) || l.contains(&format!(" {}@", link.name))
            }) || l.contains(" isp:")
                || l.contains(" isp@")
        })
        .collect();
    assert!(strays.is_empty(), "devices left on the host: {strays:?}");
    // Each run's config lives in a directory named after the run: no daemon may still use one.
    let daemons = Command::new("pgrep")
        .args(["-f", &format!("wanmon-{}", netns::PREFIX)])
        .output()
        .expect("pgrep");
    assert!(
        daemons.stdout.is_empty(),
        "daemons left running: {}",
        String::from_utf8_lossy(&daemons.stdout)
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for (scenario, record) in scenarios.iter().zip(&records) {
        insta::assert_snapshot!(format!("netns-{}", scenario.name), switch_log(scenario, record));
    }
}

const SCENARIOS: [&str; 3] =
    ["01-hard-outage.yaml", "02-carrier-loss.yaml", "11-one-target-filtered.yaml"];

const CALIBRATION: &str = "name: calibration
description: One link at 50 ms ± 10 ms and 20 % loss, to hold the impairment to what it is told.
seed: 42
duration_s: 10
links:
  - { name: wan, latency_ms: 50, jitter_ms: 10, loss_percent: 20 }
expect:
  - initial: wan
";

/// The first thing User-Mode Linux runs: its own /proc and /sys, and a tmpfs on /run for what
/// must not reach the host's files (namespace mount points, temporary files, the modprobe
/// wrapper pointed at UML's modules); then the two runs, then power off. Everything else, the
/// results directory included, is the host's own files.
fn init_script(out: &Path, simulator: &Path, daemon: &Path) -> String {
    let (out, simulator, daemon) = (out.display(), simulator.display(), daemon.display());
    format!(
        r#"#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
mkdir -p /run/tmp /run/modules/lib/modules
export TMPDIR=/run/tmp
ln -s /usr/lib/uml/modules/$(uname -r) /run/modules/lib/modules/$(uname -r)
printf '#!/bin/sh\nexec /usr/sbin/modprobe -d /run/modules "$@"\n' > /run/modprobe
chmod +x /run/modprobe
echo /run/modprobe > /proc/sys/kernel/modprobe
ip link set lo up
uname -r > {out}/kernel
ip -o link show > {out}/links-before
{simulator} calibrate {out}/calibration.yaml --impair netem --pings 2000 \
    --json {out}/calibration.json > {out}/calibrate.log 2>&1
echo $? > {out}/calibrate.status
{simulator} run {out}/scenarios --engine netns --impair auto --binary {daemon} \
    --json {out}/runs.json > {out}/run.log 2>&1
echo $? > {out}/run.status
ip netns list > {out}/namespaces-after
ip -o link show > {out}/links-after
pgrep -a wanmon > {out}/daemons-after
echo done > {out}/finished
poweroff -f
"#
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn number(value: &Value, path: &[&str]) -> f64 {
    path.iter()
        .fold(value, |v, key| &v[key])
        .as_f64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {value}"))
}

#[test]
#[ignore = "needs root: boots User-Mode Linux, network namespaces inside; ~6 min real time"]
fn netem_delivers_the_configured_condition_and_the_library_passes_on_it() {
    common::require_root();
    assert!(
        Command::new("sh")
            .args(["-c", "command -v linux.uml"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "linux.uml is missing: `cargo xtask ci` installs Debian's user-mode-linux"
    );
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("netem-uml");
    assert!(
        !out.starts_with("/run"),
        "the results of User-Mode Linux cannot live under /run, which it covers with its own \
         tmpfs: check out the project elsewhere ({})",
        out.display()
    );
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("scenarios")).expect("results directory");
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for name in SCENARIOS {
        std::fs::copy(library.join(name), out.join("scenarios").join(name)).expect("scenario");
    }
    std::fs::write(out.join("calibration.yaml"), CALIBRATION).expect("calibration scenario");
    let simulator = PathBuf::from(env!("CARGO_BIN_EXE_wanmon-sim"));
    let script = out.join("init.sh");
    std::fs::write(&script, init_script(&out, &simulator, &common::daemon())).expect("init");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");

    let console = std::fs::File::create(out.join("console.log")).expect("console log");
    let started = Instant::now();
    let mut uml = Command::new("linux.uml")
        .args(["mem=1024M", "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "rw"])
        .arg(format!("init={}", script.display()))
        .args(["con=null", "con0=null,fd:1"])
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("linux.uml starts");
    let deadline = Duration::from_secs(900);
    let status = loop {
        if let Some(status) = uml.try_wait().expect("wait for UML") {
            break Some(status);
        }
        if started.elapsed() > deadline {
            // SAFETY: signalling the process group of our own child.
            unsafe { libc::kill(-(uml.id() as libc::pid_t), libc::SIGKILL) };
            let _ = uml.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    println!("User-Mode Linux ran {:.0} s ({status:?})", started.elapsed().as_secs_f64());
    assert!(
        out.join("finished").exists(),
        "the runs inside User-Mode Linux did not finish; see {}/console.log, calibrate.log, run.log",
        out.display()
    );

    // netem against its configuration.
    let calibrate_log = read(&out.join("calibrate.log"));
    print!("{calibrate_log}");
    assert_eq!(read(&out.join("calibrate.status")).trim(), "0", "calibrate: {calibrate_log}");
    let calibration: Value =
        serde_json::from_str(&read(&out.join("calibration.json"))).expect("calibration JSON");
    let wan = &calibration[0];
    assert_eq!(wan["impairment"], "netem");
    let (latency, loss) =
        (number(wan, &["measured", "latency_ms"]), number(wan, &["measured", "loss_percent"]));
    assert!((latency - 50.0).abs() <= 5.0, "netem latency {latency:.1} ms, configured 50 ms");
    assert!((loss - 20.0).abs() <= 3.0, "netem loss {loss:.1} %, configured 20 %");

    // The scenarios on netem, picked by `auto`.
    let run_log = read(&out.join("run.log"));
    print!("{run_log}");
    assert!(run_log.contains("impaired by netem"), "auto did not pick netem: {run_log}");
    let runs: Value = serde_json::from_str(&read(&out.join("runs.json"))).expect("runs JSON");
    let runs = runs.as_array().expect("a list of runs");
    assert_eq!(runs.len(), SCENARIOS.len());
    let mut problems = Vec::new();
    for run in runs {
        let name = run["scenario"].as_str().unwrap_or_default();
        assert_eq!(run["impairment"], "netem", "{name}");
        for verdict in run["verdicts"].as_array().into_iter().flatten() {
            if verdict["met"] != true {
                problems.push(format!("{name}: unmet on netem: {verdict}"));
            }
        }
        let file = library
            .join(SCENARIOS.iter().find(|f| f.contains(name)).expect("a scenario of the library"));
        let scenario = Scenario::load(&file).unwrap_or_else(|e| panic!("{e:?}"));
        let replayed: Vec<String> =
            replay::run(&scenario, 1.0).route_changes.iter().map(|c| c.to.clone()).collect();
        let on_netem: Vec<String> = run["route_changes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["to"].as_str().map(String::from))
            .collect();
        if on_netem != replayed {
            problems.push(format!("{name}: netem switched {on_netem:?}, replay {replayed:?}"));
        }
        println!("{name}: on netem {on_netem:?}, time to switch {}", run["time_to_switch_s"]);
    }
    assert_eq!(read(&out.join("run.status")).trim(), "0", "{problems:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let namespaces = read(&out.join("namespaces-after"));
    assert!(!namespaces.contains("wsim"), "namespaces left behind: {namespaces}");
    let (before, after) = (read(&out.join("links-before")), read(&out.join("links-after")));
    assert_eq!(before, after, "devices left behind");
    let daemons = read(&out.join("daemons-after"));
    assert!(daemons.trim().is_empty(), "daemons left running: {daemons}");
}
