//! `cargo xtask sim`: the scenario library through every engine this machine can run: `replay`
//! always, `netns` (the real daemon on namespaces, in real time, ~5 min) when root, and whether
//! the two agree on the switches of every scenario (`wanmon-sim run --check-replay`).

use crate::{cargo, is_root, root, run};

/// `cargo run` of `wanmon-sim`: the release build, or the debug build the tests use. CI's short
/// runs take the debug one: a release build of the simulator cost CI two minutes of its two
/// cores, more than the runs themselves take unoptimized.
fn simulator(release: bool) -> Vec<&'static str> {
    let mut args = vec!["run", "--quiet"];
    if release {
        args.push("--release");
    }
    args.extend(["-p", "wanmon-sim", "--"]);
    args
}

/// The scenario library through one engine of `wanmon-sim`, with its JSON and SVG output.
fn run_engine(
    engine: &str,
    release: bool,
    (json, svg): (&str, &str),
    extra: &[&str],
) -> Result<(), String> {
    let mut args = simulator(release);
    args.extend(["run", "scenarios", "--engine", engine, "--json", json, "--svg", svg]);
    args.extend(extra);
    run(&cargo(), &args)
}

pub fn sim(args: &[String]) -> Result<(), String> {
    let replay_only = match args.first().map(String::as_str) {
        None => false,
        Some("--replay-only") if args.len() == 1 => true,
        Some(other) => {
            return Err(format!(
                "sim: unknown argument {other:?}; usage: cargo xtask sim [--replay-only]"
            ));
        }
    };
    let out = root().join("target/sim");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let svg = out.join("svg").to_string_lossy().into_owned();
    let replay_json = out.join("replay.json");
    let replay_path = replay_json.to_string_lossy().into_owned();
    // The replay alone is what CI runs: on the tests' debug build.
    run_engine("replay", !replay_only, (&replay_path, &svg), &[])?;
    if replay_only {
        println!(
            "timelines: {replay_path}, pictures: {svg}/ (netns engine skipped: --replay-only)"
        );
        return Ok(());
    }
    if !is_root() {
        println!(
            "!!! NOT ROOT: the netns engine (real namespaces, the real daemon) is SKIPPED; run `sudo cargo xtask sim`."
        );
        return Ok(());
    }
    run(&cargo(), &["build", "--quiet", "--release", "-p", "wanmon"])?;
    let netns_json = out.join("netns.json");
    let netns_path = netns_json.to_string_lossy().into_owned();
    let binary = root().join("target/release/wanmon").to_string_lossy().into_owned();
    let extra = ["--binary", &binary, "--sample-every", "2", "--check-replay"];
    run_engine("netns", true, (&netns_path, &svg), &extra)?;
    println!("timelines: {replay_path}, {netns_path}; pictures: {svg}/");
    Ok(())
}

/// Families whose goal wanmon does not meet yet (issue 11; numbers in docs/judge.md): their
/// misses are printed, not fatal. Every other goal, and zero false switches, must hold.
/// `loss-5` (a primary at 5 % loss, which the scores say to keep) moves about once in two
/// simulated days, near the tie where seeing `loss-10` sooner and never moving cannot both hold.
/// `loss-10` and `calls-break` meet theirs (over 1,000 seeds too), so a miss of either fails.
const KNOWN_MISSES: [&str; 1] = ["loss-5"];

/// Seeds per family and policy of the full run: a 95th percentile over 30 is the second worst
/// run, which moves by a second from one change of the draws to the next; over 100, the sixth.
const FULL_SEEDS: &str = "100";

/// `cargo xtask judge [--quick]`: the decision benchmark, wanmon beside the peers' models, its
/// table and picture in target/judge/.
pub fn judge(args: &[String]) -> Result<(), String> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => return Err(format!("judge: got {args:?}; usage: cargo xtask judge [--quick]")),
    };
    let out = root().join("target/judge");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let markdown = out.join("judge.md").to_string_lossy().into_owned();
    let svg = out.join("judge.svg").to_string_lossy().into_owned();
    // The quick run is CI's: on the tests' debug build.
    let mut command = simulator(!quick);
    command.push("judge");
    if quick {
        command.push("--quick");
    } else {
        command.extend(["--seeds", FULL_SEEDS]);
    }
    command.extend(["--markdown", &markdown, "--svg", &svg, "--check"]);
    for family in KNOWN_MISSES {
        command.extend(["--allow-miss", family]);
    }
    run(&cargo(), &command)?;
    println!("table: {markdown}; picture: {svg}");
    Ok(())
}
