//! `cargo xtask fuzz`: coverage-guided fuzzing (libFuzzer through `libfuzzer-sys`) of every parser
//! that takes outside bytes: the config file, HTTP requests, the control protocol, netlink
//! messages, ICMP replies, the status document, the LZMA stream the router's unpacker decodes,
//! and addresses (against std's own parser and formatter). Built with stable rustc's
//! SanitizerCoverage flags (what cargo-fuzz passes, without the nightly-only sanitizers: the code
//! is safe Rust, so what is sought is a panic, a hang or a blow-up in time or memory). Seeds are
//! kept in `fuzz/corpus/TARGET/`; what a run discovers stays in `target/fuzz/corpus/`.

use crate::{cargo, root};
use std::process::Command;

/// Each target with the longest input it is given: the config file's cap, an HTTP request's,
/// a control line's, a netlink receive buffer's, a packet's, a status document's, room for
/// a compressed stream of some length, and the longest socket address with some to spare.
const TARGETS: &[(&str, usize)] = &[
    ("config", 65_536),
    ("http", 9_300),
    ("control", 4_096),
    ("netlink", 65_536),
    ("icmp", 1_500),
    ("status", 65_536),
    ("lzma", 65_536),
    ("address", 64),
];

const COVERAGE_FLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
     -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
     -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares \
     --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// What one target's run came to.
struct Outcome {
    target: &'static str,
    runs: u64,
    seconds: u64,
    coverage: u64,
    features: u64,
    corpus: u64,
}

pub fn fuzz(args: &[String]) -> Result<(), String> {
    let (seconds, only) = options(args)?;
    let host = host_triple()?;
    build(&host)?;
    let mut outcomes = Vec::new();
    for (target, max_len) in TARGETS {
        if only.is_empty() || only.iter().any(|o| o == target) {
            outcomes.push(run_target(&host, target, *max_len, seconds)?);
        }
    }
    println!(
        "\n{:<9} {:>12} {:>10} {:>9} {:>9} {:>7}",
        "target", "executions", "per s", "edges", "features", "corpus"
    );
    for o in &outcomes {
        println!(
            "{:<9} {:>12} {:>10} {:>9} {:>9} {:>7}",
            o.target,
            o.runs,
            o.runs / o.seconds.max(1),
            o.coverage,
            o.features,
            o.corpus
        );
    }
    println!(
        "fuzz: no crash, hang (10 s per input) or memory blow-up in {} targets",
        outcomes.len()
    );
    Ok(())
}

fn options(args: &[String]) -> Result<(u64, Vec<String>), String> {
    let (mut seconds, mut only) = (20, Vec::new());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().ok_or("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .map_err(|_| format!("--seconds: got {value:?}, expected whole seconds"))?;
            }
            "--target" => {
                let value = args.next().ok_or("--target needs a name")?;
                if !TARGETS.iter().any(|(t, _)| t == value) {
                    let known: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
                    return Err(format!(
                        "--target: no target {value:?}; known: {}",
                        known.join(", ")
                    ));
                }
                only.push(value.clone());
            }
            other => {
                return Err(format!("fuzz: unknown option {other:?} (--seconds N, --target NAME)"));
            }
        }
    }
    Ok((seconds, only))
}

/// The host's target triple: the coverage flags go to it alone (with `--target`, build scripts
/// and proc macros are built without them, as they must be).
fn host_triple() -> Result<String, String> {
    let output =
        Command::new("rustc").arg("-vV").output().map_err(|e| format!("cannot run rustc: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| "rustc -vV names no host".to_string())
}

fn build(host: &str) -> Result<(), String> {
    let manifest = root().join("fuzz/Cargo.toml");
    let target_dir = root().join("target/fuzz");
    println!(
        "$ RUSTFLAGS=<coverage> cargo build --release --manifest-path {} --target {host}",
        manifest.display()
    );
    let status = Command::new(cargo())
        .args(["build", "--release", "--quiet", "--target", host])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", COVERAGE_FLAGS)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the fuzz targets did not build ({status})"))
    }
}

fn run_target(
    host: &str,
    target: &'static str,
    max_len: usize,
    seconds: u64,
) -> Result<Outcome, String> {
    let binary = root().join(format!("target/fuzz/{host}/release/{target}"));
    let found = root().join(format!("target/fuzz/corpus/{target}"));
    let artifacts = root().join(format!("target/fuzz/artifacts/{target}"));
    let seeds = root().join(format!("fuzz/corpus/{target}"));
    for dir in [&found, &artifacts] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    println!("==> fuzzing {target} for {seconds} s");
    let output = Command::new(&binary)
        .arg(format!("-max_total_time={seconds}"))
        // A hang still shows; a legitimate decode does not fail for the machine's load: CI fuzzes
        // at the lowest priority beside the real-time stages, where a 24-byte LZMA stream that
        // unpacks to 650 KB (151 ms under the sanitizer, idle) once took over a second.
        .arg("-timeout=10")
        .arg(format!("-max_len={max_len}"))
        .arg("-rss_limit_mb=512")
        .arg("-malloc_limit_mb=256")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg(&found)
        .arg(&seeds)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> =
            log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(format!(
            "fuzz target {target} failed ({}): the input is in {}\n{}",
            output.status,
            artifacts.display(),
            tail.join("\n")
        ));
    }
    Ok(outcome(target, &log))
}

/// Reads libFuzzer's last status line (`#N DONE cov: C ft: F corp: K/...`) and final stats.
fn outcome(target: &'static str, log: &str) -> Outcome {
    let number_after = |line: &str, key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    let status = log.lines().rev().find(|l| l.contains(" cov: ")).unwrap_or_default();
    let stat = |name: &str| {
        log.lines().find_map(|l| {
            l.strip_prefix(name).and_then(|v| v.trim().trim_start_matches(':').trim().parse().ok())
        })
    };
    Outcome {
        target,
        runs: stat("stat::number_of_executed_units").unwrap_or(0),
        seconds: stat("stat::average_exec_per_sec").map_or(1, |per_s: u64| {
            let runs: u64 = stat("stat::number_of_executed_units").unwrap_or(0);
            (runs / per_s.max(1)).max(1)
        }),
        coverage: number_after(status, "cov:").unwrap_or(0),
        features: number_after(status, "ft:").unwrap_or(0),
        corpus: number_after(status, "corp:").unwrap_or(0),
    }
}
