//! `cargo xtask ci`: what CI runs on a fresh Debian machine (the README's test command), and
//! `cargo xtask bench`.

use crate::{cargo, dist, is_root, prerequisites, run, sim, step};
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
    step("scenario suite", || sim::sim(&[]))?;
    step("router package (mipsel_24kc, size budget, run under qemu)", || dist::dist(&[]))?;
    step("benchmark (quick)", || bench(&["--quick".to_string()]))?;
    println!("\nci: all steps passed in {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

pub fn bench(args: &[String]) -> Result<(), String> {
    let mut full = vec!["bench", "-p", "wanmon-benches", "--"];
    full.extend(args.iter().map(String::as_str));
    run(&cargo(), &full)
}
