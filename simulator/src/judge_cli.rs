//! `wanmon-sim judge`: the command line of the decision benchmark (see `wanmon_sim::judge`).

use std::path::PathBuf;
use std::process::ExitCode;
use wanmon_sim::judge::{self, Cell, FAMILIES, Family, Kind, POLICIES, Size};

pub const USAGE: &str =
    "       wanmon-sim judge [--quick] [--seeds N] [--days D] [--family NAME]... [--policy NAME]...
                     [--markdown FILE] [--svg FILE] [--check [--allow-miss FAMILY]...]

  judge               scenario families (outage, loss, latency, jitter, flapping, healthy noise)
                      over many seeds in the replay, wanmon beside models of mwan3, dpinger, the
                      shell wanmon and wanmon v0.1; prints a markdown table (docs/judge.md)
  --quick             6 seeds and a quarter of a noisy day per seed (CI's form)
  --seeds N           seeds per family and policy (default 30)
  --days D            simulated days of the noisy-day family per seed (default 1)
  --check             fail (exit 1) where wanmon misses a family's goal at the 95th percentile,
                      or switches at all in a healthy family
  --allow-miss FAMILY report a miss of FAMILY's goal without failing (a goal known not met)";

struct Options {
    size: Size,
    families: Vec<Family>,
    policies: Vec<&'static str>,
    markdown: Option<PathBuf>,
    svg: Option<PathBuf>,
    check: bool,
    allowed_misses: Vec<Family>,
}

fn number(flag: &str, value: Option<&String>) -> Result<f64, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 1000.0)
        .ok_or_else(|| format!("{flag}: got {value:?}, expected a number above 0, at most 1000"))
}

fn family(flag: &str, name: Option<&String>) -> Result<Family, String> {
    let name = name.ok_or_else(|| format!("{flag} needs a family's name"))?;
    FAMILIES.iter().find(|f| f.name == name).copied().ok_or_else(|| {
        let names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        format!("{flag}: no family {name:?}; the families are {}", names.join(", "))
    })
}

fn parse(args: &[String]) -> Result<Options, String> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut options = Options {
        size: Size { seeds: 30, days: 1.0, threads },
        families: Vec::new(),
        policies: Vec::new(),
        markdown: None,
        svg: None,
        check: false,
        allowed_misses: Vec::new(),
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--quick" => options.size = Size { seeds: 6, days: 0.25, threads },
            "--seeds" => options.size.seeds = number("--seeds", iter.next())?.round() as u64,
            "--days" => {
                options.size.days = number("--days", iter.next())?;
                if options.size.days > 30.0 {
                    return Err(format!(
                        "--days: got {}, expected at most 30 (a scenario's longest run); add seeds instead",
                        options.size.days
                    ));
                }
            }
            "--family" => options.families.push(family("--family", iter.next())?),
            "--allow-miss" => options.allowed_misses.push(family("--allow-miss", iter.next())?),
            "--policy" => {
                let name = iter.next().ok_or("--policy needs a name")?;
                let policy = POLICIES.iter().find(|p| **p == name).ok_or_else(|| {
                    format!(
                        "--policy: no policy {name:?}; the policies are {}",
                        POLICIES.join(", ")
                    )
                })?;
                options.policies.push(policy);
            }
            "--markdown" => {
                options.markdown = Some(iter.next().ok_or("--markdown needs a file")?.into())
            }
            "--svg" => options.svg = Some(iter.next().ok_or("--svg needs a file")?.into()),
            "--check" => options.check = true,
            other => return Err(format!("judge: unknown option {other:?}")),
        }
    }
    if options.families.is_empty() {
        options.families = FAMILIES.to_vec();
    }
    if options.policies.is_empty() {
        options.policies = POLICIES.to_vec();
    }
    Ok(options)
}

/// Where wanmon misses a goal: one line each, and whether the miss was allowed.
fn misses(cells: &[Cell], allowed: &[Family]) -> Vec<(String, bool)> {
    let mut misses = Vec::new();
    for cell in cells.iter().filter(|c| c.policy == "wanmon") {
        match cell.family.kind {
            Kind::Fault { goal_s: Some(goal) } => match cell.quantile(0.95) {
                Some(p95) if p95 <= goal => {}
                p95 => misses.push((
                    format!(
                        "{}: 95th percentile {} against a goal of {goal} s",
                        cell.family.name,
                        p95.map_or("never".into(), |t| format!("{t:.2} s"))
                    ),
                    allowed.iter().any(|f| f.name == cell.family.name),
                )),
            },
            Kind::Healthy if cell.switches() > 0 => misses.push((
                format!(
                    "{}: {} false switches ({}), expected none",
                    cell.family.name,
                    cell.switches(),
                    cell.false_switches()
                ),
                allowed.iter().any(|f| f.name == cell.family.name),
            )),
            _ => {}
        }
    }
    misses
}

pub fn judge(args: &[String]) -> ExitCode {
    let options = match parse(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("wanmon-sim: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let wall = std::time::Instant::now();
    let cells = judge::judge(options.size, &options.families, &options.policies);
    let simulated: f64 = cells.iter().map(|c| c.simulated_s).sum();
    let elapsed = wall.elapsed().as_secs_f64();
    let report = judge::markdown(&cells, options.size);
    print!("{report}");
    println!(
        "\n{:.0} simulated days in {elapsed:.1} s on {} threads ({:.0}x real time)",
        simulated / 86_400.0,
        options.size.threads,
        simulated / elapsed.max(1e-9)
    );
    let written = [(&options.markdown, report), (&options.svg, judge::svg(&cells))]
        .into_iter()
        .filter_map(|(path, text)| path.as_ref().map(|p| (p, text)))
        .try_for_each(|(path, text)| {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        });
    if let Err(message) = written {
        eprintln!("wanmon-sim: {message}");
        return ExitCode::from(2);
    }
    let misses = if options.check { misses(&cells, &options.allowed_misses) } else { Vec::new() };
    for (miss, allowed) in &misses {
        let how = if *allowed { "missed (allowed)" } else { "missed" };
        println!("{how}: {miss}");
    }
    if misses.iter().all(|(_, allowed)| *allowed) { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
