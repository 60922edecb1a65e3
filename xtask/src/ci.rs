//! `cargo xtask ci`: what CI runs on a fresh Debian machine (the README's test command), and
//! `cargo xtask bench` and `browser`.
//!
//! Much of CI's time is real time, not CPU: the scenario library on namespaces runs five minutes
//! of wall clock, OpenWrt's userland waits on procd and netifd, the emulated kernels wait on their
//! timelines. So after the quick checks and one build, the stages run in lanes side by side: the
//! library, OpenWrt's userland and the chaos soak in one; the other tests, the netem kernel, the
//! browser and the benchmark's build in another; and in a third what needs CPU (the cross build,
//! the replay suite, the fuzzing), with the MIPS kernel after the cross build it runs. CPU-bound
//! stages run at the lowest priority, so they take only the CPU the timed work leaves. The
//! benchmark itself runs last, alone. A table of every stage's time ends the run.

use crate::{cargo, is_root, prerequisites, root, run, step};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// One stage of a lane: a command of its own, its output kept in a log file and printed whole
/// when it ends (lanes would interleave it line by line).
struct Stage {
    name: &'static str,
    program: String,
    args: Vec<String>,
    /// Runs at the lowest CPU priority: CPU-bound work that must not delay timed tests.
    background: bool,
}

impl Stage {
    fn xtask(name: &'static str, args: &[&str], background: bool) -> Stage {
        let program = std::env::current_exe().map_or_else(
            |_| root().join("target/debug/xtask").to_string_lossy().into_owned(),
            |p| p.to_string_lossy().into_owned(),
        );
        Stage { name, program, args: args.iter().map(|a| a.to_string()).collect(), background }
    }

    fn cargo(name: &'static str, args: &[&str], background: bool) -> Stage {
        Stage {
            name,
            program: cargo(),
            args: args.iter().map(|a| a.to_string()).collect(),
            background,
        }
    }

    /// Runs the stage to its end; its log is printed then, under its name.
    fn run(&self, lane: usize, started: Instant) -> Timing {
        let offset = started.elapsed().as_secs_f64();
        let log = log_path(self.name);
        let result = self.spawn(&log);
        let seconds = started.elapsed().as_secs_f64() - offset;
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let verdict = if result.is_ok() { "ok" } else { "FAILED" };
        println!("\n==> {} (lane {lane}, from {offset:.0} s)\n{output}", self.name);
        println!("<== {}: {verdict} in {seconds:.1} s (log: {})", self.name, log.display());
        Timing {
            name: self.name,
            lane: Some(lane),
            from_s: offset,
            seconds,
            result: result.map_err(|e| format!("{}: {e}", self.name)),
        }
    }

    fn spawn(&self, log: &std::path::Path) -> Result<(), String> {
        let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let mut command = if self.background {
            let mut nice = Command::new("nice");
            nice.args(["-n", "19", &self.program]);
            nice
        } else {
            Command::new(&self.program)
        };
        let status = command
            .args(&self.args)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .status()
            .map_err(|e| format!("cannot start {}: {e}", self.program))?;
        if status.success() { Ok(()) } else { Err(format!("failed ({status})")) }
    }
}

fn log_path(name: &str) -> PathBuf {
    let slug: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    root().join("target/ci").join(format!("{slug}.log"))
}

/// What one stage took, for the table at the end.
struct Timing {
    name: &'static str,
    lane: Option<usize>,
    from_s: f64,
    seconds: f64,
    result: Result<(), String>,
}

/// A stage run in order on the main thread (not in a lane).
fn sequential(
    timings: &mut Vec<Timing>,
    started: Instant,
    name: &'static str,
    body: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let from_s = started.elapsed().as_secs_f64();
    let result = step(name, body);
    let seconds = started.elapsed().as_secs_f64() - from_s;
    timings.push(Timing { name, lane: None, from_s, seconds, result: result.clone() });
    result
}

/// Runs each lane's stages in order, the lanes side by side; a lane stops at its first failure.
fn lanes(lanes: Vec<Vec<Stage>>, started: Instant) -> Vec<Timing> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = lanes
            .iter()
            .enumerate()
            .map(|(i, stages)| {
                scope.spawn(move || {
                    let mut timings = Vec::new();
                    for stage in stages {
                        let timing = stage.run(i + 1, started);
                        let failed = timing.result.is_err();
                        timings.push(timing);
                        if failed {
                            break;
                        }
                    }
                    timings
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

fn table(timings: &[Timing], total_s: f64) -> String {
    let mut out = format!("\n{:<58} {:>5} {:>7} {:>8}  result\n", "stage", "lane", "from", "took");
    let mut sorted: Vec<&Timing> = timings.iter().collect();
    sorted.sort_by(|a, b| a.from_s.total_cmp(&b.from_s));
    for t in sorted {
        let lane = t.lane.map_or("-".to_string(), |l| l.to_string());
        let verdict = if t.result.is_ok() { "ok" } else { "FAILED" };
        out.push_str(&format!(
            "{:<58} {lane:>5} {:>5.0} s {:>6.1} s  {verdict}\n",
            t.name, t.from_s, t.seconds
        ));
    }
    out.push_str(&format!("{:<58} {:>5} {:>7} {:>6.1} s\n", "all", "", "", total_s));
    out
}

/// The test that runs the scenario library in real time: a lane of its own.
const LIBRARY_TEST: &str = "every_scenario_on_namespaces_agrees_with_the_replay";
/// The chaos soak: a stage of its own, `cargo xtask soak`.
const SOAK_TEST: &str = "chaos_soak";

pub fn ci(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("ci takes no arguments, got {unknown:?}"));
    }
    let started = Instant::now();
    let cargo = cargo();
    let mut timings = Vec::new();
    let result = checks(&cargo, &mut timings, started);
    println!("{}", table(&timings, started.elapsed().as_secs_f64()));
    result?;
    println!("ci: all steps passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The unpacker is built only for the router, around the packed daemon (`cargo xtask dist`);
/// here it is linted on the host around an empty stand-in, in release (panic=abort: without
/// std there is nothing to unwind with).
fn clippy_unpacker(cargo: &str) -> Result<(), String> {
    let args = ["clippy", "--release", "-p", "wanmon-unpack", "--features", "loader"];
    println!("$ WANMON_PACKED=/dev/null {cargo} {} -- -D warnings", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .args(["--", "-D", "warnings"])
        .env("WANMON_PACKED", "/dev/null")
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot start {cargo}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("clippy on the unpacker failed ({status})")) }
}

fn checks(cargo: &str, timings: &mut Vec<Timing>, started: Instant) -> Result<(), String> {
    sequential(timings, started, "prerequisites", prerequisites)?;
    sequential(timings, started, "format", || run(cargo, &["fmt", "--all", "--check"]))?;
    sequential(timings, started, "clippy", || {
        run(cargo, &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
        clippy_unpacker(cargo)
    })?;
    sequential(timings, started, "build the tests", || {
        run(cargo, &["test", "--workspace", "--no-run", "--quiet"])?;
        run(cargo, &["build", "--workspace", "--quiet"])
    })?;
    if !is_root() {
        println!(
            "!!! NOT ROOT: the tests that need root and network namespaces, the emulated kernels \
             and the browser are SKIPPED.\n!!! Run `sudo cargo xtask ci` (CI runs as root) to \
             include them."
        );
        sequential(timings, started, "tests", || run(cargo, &["test", "--workspace"]))?;
        sequential(timings, started, "scenario suite (replay)", || {
            crate::sim::sim(&["--replay-only".to_string()])
        })?;
        sequential(timings, started, "decision benchmark (quick)", || {
            crate::sim::judge(&["--quick".to_string()])
        })?;
        sequential(timings, started, "benchmark (quick)", || bench(&["--quick".to_string()]))?;
        // What could run passed; what could not must not look like a pass.
        return Err("not root: the namespace tests, the emulated kernels and the browser did \
                    not run; CI runs as root (sudo cargo xtask ci)"
            .into());
    }
    std::fs::create_dir_all(root().join("target/ci")).map_err(|e| e.to_string())?;
    let lane_timings = lanes(ci_lanes(), started);
    let failures: Vec<String> =
        lane_timings.iter().filter_map(|t| t.result.clone().err()).collect();
    timings.extend(lane_timings);
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    sequential(timings, started, "benchmark (quick)", || bench(&["--quick".to_string()]))
}

/// The stages after the build, in their lanes: real time, timed, CPU.
fn ci_lanes() -> Vec<Vec<Stage>> {
    let library = Stage::cargo(
        "scenario library on namespaces (real time)",
        &["test", "-p", "wanmon-sim", "--test", "netns_suite", "--", "--include-ignored"],
        false,
    );
    let other_tests = Stage::cargo(
        "every other test (root-only ones included)",
        &[
            "test",
            "--workspace",
            "--",
            "--include-ignored",
            "--skip",
            LIBRARY_TEST,
            "--skip",
            SOAK_TEST,
        ],
        false,
    );
    let timed = vec![
        other_tests,
        Stage::xtask("netem backend on Debian's amd64 kernel (qemu-system)", &["netem"], false),
        Stage::xtask("web page in a real browser", &["browser"], false),
        Stage::cargo("benchmark build", &["bench", "-p", "wanmon-benches", "--no-run"], true),
    ];
    // The MIPS kernel runs the package's binary, so it follows the cross build in its lane.
    let cpu_mostly = vec![
        Stage::xtask("router package (mipsel_24kc, size budget, run under qemu)", &["dist"], true),
        Stage::xtask("router build as a daemon on a MIPS kernel (qemu-system)", &["vm"], false),
        Stage::xtask("scenario suite (replay)", &["sim", "--replay-only"], true),
        Stage::xtask("decision benchmark against the peers (quick)", &["judge", "--quick"], true),
        Stage::xtask(
            "fuzzing every parser of outside bytes (10 s each)",
            &["fuzz", "--seconds", "10"],
            true,
        ),
    ];
    // The library, OpenWrt's userland and the soak wait on their timelines, on procd and netifd,
    // more than they compute: the lane where the CPU's work is least.
    let real_time = vec![
        library,
        Stage::xtask("packages on OpenWrt's userland (apk 3, procd, netifd)", &["openwrt"], false),
        Stage::xtask("chaos soak of the real daemon (3 min)", &["soak", "--minutes", "3"], false),
    ];
    vec![real_time, timed, cpu_mostly]
}

/// The chaos soak (`controller/tests/soak.rs`) for `--minutes N` or `--hours N` (default 30
/// minutes), seeded by
/// `--seed S` (default: the time, printed so a failure can be repeated); root only.
pub fn soak(args: &[String]) -> Result<(), String> {
    let (mut minutes, mut seed) = ("30".to_string(), None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("soak: {arg} needs a value"))?;
        if value.parse::<u64>().is_err() {
            return Err(format!("soak: {arg}: got {value:?}, expected a whole number"));
        }
        match arg.as_str() {
            "--minutes" => minutes = value.clone(),
            "--hours" => minutes = (value.parse::<u64>().unwrap_or(0) * 60).to_string(),
            "--seed" => seed = Some(value.clone()),
            other => {
                return Err(format!(
                    "soak: unknown option {other:?} (--minutes N, --hours N, --seed S)"
                ));
            }
        }
    }
    if !is_root() {
        return Err("the soak needs root for network namespaces: sudo cargo xtask soak".into());
    }
    let seconds = minutes.parse::<u64>().unwrap_or(30) * 60;
    let mut command = Command::new(cargo());
    command
        .args(["test", "-p", "wanmon", "--test", "soak", "--", "--ignored", "--nocapture"])
        .current_dir(root())
        .env("WANMON_SOAK_SECONDS", seconds.to_string());
    if let Some(seed) = seed {
        command.env("WANMON_SOAK_SEED", seed);
    }
    println!("$ WANMON_SOAK_SECONDS={seconds} cargo test -p wanmon --test soak -- --ignored");
    let status = command.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("the chaos soak failed ({status})")) }
}

pub fn bench(args: &[String]) -> Result<(), String> {
    let mut full = vec!["bench", "-p", "wanmon-benches", "--"];
    full.extend(args.iter().map(String::as_str));
    run(&cargo(), &full)
}

/// The status page in Debian's Chromium against the real daemon in namespaces (root only);
/// screenshots go to target/web-artifacts/.
pub fn browser(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("browser takes no arguments, got {unknown:?}"));
    }
    if !is_root() {
        return Err(
            "the browser test needs root for network namespaces: sudo cargo xtask browser".into()
        );
    }
    run(&cargo(), &["build", "-p", "wanmon"])?;
    let tests = root().join("web-tests");
    let tests = tests.to_string_lossy();
    run("npm", &["ci", "--prefix", &tests, "--no-audit", "--no-fund"])?;
    let binary = root().join("target/debug/wanmon");
    let artifacts = root().join("target/web-artifacts");
    let status = Command::new("node")
        .args(["--test", "page.test.mjs", "luci-config.test.mjs"])
        .current_dir(root().join("web-tests"))
        .env("WANMON_BIN", &binary)
        .env("ARTIFACTS", &artifacts)
        .status()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if status.success() {
        println!("screenshots: {}", artifacts.display());
        Ok(())
    } else {
        Err(format!("the browser test failed ({status}); screenshots in {}", artifacts.display()))
    }
}
