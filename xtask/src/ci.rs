//! `cargo xtask ci`: what CI runs on a fresh Debian machine (the README's test command), and
//! `cargo xtask bench`.

use crate::{cargo, dist, is_root, prerequisites, run, sim, step, vm};
use std::time::Instant;

pub fn ci(args: &[String]) -> Result<(), String> {
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
    // The tests step already ran the library on namespaces (simulator/tests/netns_suite.rs).
    step("scenario suite (replay)", || sim::sim(&["--replay-only".to_string()]))?;
    step("router package (mipsel_24kc, size budget, run under qemu)", || dist::dist(&[]))?;
    step("router build as a daemon on a MIPS kernel (qemu-system)", || vm::vm(&[]))?;
    step("web page in a real browser", browser)?;
    step("benchmark (quick)", || bench(&["--quick".to_string()]))?;
    println!("\nci: all steps passed in {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

pub fn bench(args: &[String]) -> Result<(), String> {
    let mut full = vec!["bench", "-p", "wanmon-benches", "--"];
    full.extend(args.iter().map(String::as_str));
    run(&cargo(), &full)
}

/// The status page in Debian's Chromium against the real daemon in namespaces (root only);
/// screenshots go to target/web-artifacts/.
pub fn browser() -> Result<(), String> {
    if !is_root() {
        println!("!!! NOT ROOT: the browser test needs network namespaces and is SKIPPED.");
        return Ok(());
    }
    run(&cargo(), &["build", "-p", "wanmon"])?;
    let tests = crate::root().join("web-tests");
    let tests = tests.to_string_lossy();
    run("npm", &["ci", "--prefix", &tests, "--no-audit", "--no-fund"])?;
    let binary = crate::root().join("target/debug/wanmon");
    let artifacts = crate::root().join("target/web-artifacts");
    let status = std::process::Command::new("node")
        .args(["--test", "page.test.mjs"])
        .current_dir(crate::root().join("web-tests"))
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
