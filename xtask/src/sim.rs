//! `cargo xtask sim`: the scenario library through every engine this machine can run.

use crate::{cargo, root, run};

/// The scenario library through every engine this machine can run.
pub fn sim(args: &[String]) -> Result<(), String> {
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
    println!(
        "engines run: replay. The netns engine (the real daemon over the impairment relay) is not \
         built yet; `wanmon-sim calibrate` measures the relay on its own."
    );
    Ok(())
}
