//! `cargo xtask`: the project's automation, one function per command, std only.
//!
//! - `cargo xtask sim`: the scenario suite against the controller (the README's main job).
//! - `cargo xtask ci`: everything CI checks, on a fresh Debian machine (the README's test command).
//! - `cargo xtask bench`: the hot-path benchmark with its printed figures.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  sim      run the scenario library against the controller and print the summary table;
           JSON and SVG timelines go to target/sim/
  ci       install what a fresh Debian machine lacks, then run fmt, clippy, every test
           (root-only tests too when run as root) and a short benchmark
  bench    run the criterion benchmark of the hot path (prints ns per probe outcome)";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("sim") => sim(&args[1..]),
        Some("ci") => ci(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask lives one level below it.
fn root() -> PathBuf {
    let manifest =
        env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("xtask"), PathBuf::from);
    manifest.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Runs a command in the workspace root, echoing it; fails with the command named.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    println!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|output| output.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A named step with its duration, so CI logs show where the time goes.
fn step(name: &str, body: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    println!("\n==> {name}");
    let start = Instant::now();
    let result = body();
    let verdict = if result.is_ok() { "ok" } else { "FAILED" };
    println!("<== {name}: {verdict} in {:.1} s", start.elapsed().as_secs_f64());
    result.map_err(|e| format!("{name}: {e}"))
}

/// Debian packages the tests need, by the command that shows each is there.
const PACKAGES: &[(&str, &str)] = &[("ip", "iproute2"), ("nft", "nftables"), ("gzip", "gzip")];

fn has_command(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs what a fresh Debian machine lacks (as root, with apt); elsewhere says what to install.
fn install_packages() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(command, _)| !has_command(command))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() || !has_command("apt-get") {
        return Err(format!(
            "missing packages: {} (install them, e.g. `sudo apt-get install {}`)",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    run("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    run("apt-get", &args)
}

/// Checks the machine has what the steps need; says exactly what is missing and how to get it.
fn prerequisites() -> Result<(), String> {
    install_packages()?;
    let cargo = cargo();
    let mut missing = Vec::new();
    if !succeeds(&cargo, &["fmt", "--version"]) {
        missing.push("rustfmt (rustup component add rustfmt)");
    }
    if !succeeds(&cargo, &["clippy", "--version"]) {
        missing.push("clippy (rustup component add clippy)");
    }
    if missing.is_empty() { Ok(()) } else { Err(format!("missing: {}", missing.join(", "))) }
}

fn ci(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("ci takes no arguments, got {unknown:?}"));
    }
    let start = Instant::now();
    let cargo = cargo();
    step("prerequisites", prerequisites)?;
    step("format", || run(&cargo, &["fmt", "--all", "--check"]))?;
    step("clippy", || {
        run(&cargo, &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])
    })?;
    step("tests", || {
        if is_root() {
            run(&cargo, &["test", "--workspace", "--", "--include-ignored"])
        } else {
            println!(
                "!!! NOT ROOT: the tests that need root and network namespaces are SKIPPED.\n\
                 !!! Run `sudo cargo xtask ci` (CI runs as root) to include them."
            );
            run(&cargo, &["test", "--workspace"])
        }
    })?;
    step("scenario suite", || sim(&[]))?;
    step("benchmark (quick)", || bench(&["--quick".to_string()]))?;
    println!("\nci: all steps passed in {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    let mut full = vec!["bench", "-p", "wanmon-benches", "--"];
    full.extend(args.iter().map(String::as_str));
    run(&cargo(), &full)
}

/// The scenario library through every engine this machine can run.
fn sim(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("sim takes no arguments, got {unknown:?}"));
    }
    let out = root().join("target/sim");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let json = out.join("replay.json");
    let svg = out.join("svg");
    let (json, svg) = (json.to_string_lossy(), svg.to_string_lossy());
    run(
        &cargo(),
        &[
            "run",
            "--quiet",
            "--release",
            "-p",
            "wanmon-sim",
            "--",
            "run",
            "scenarios",
            "--engine",
            "replay",
            "--json",
            &json,
            "--svg",
            &svg,
        ],
    )?;
    println!("timelines: {json}, pictures: {svg}/");
    Ok(())
}
