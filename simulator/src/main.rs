//! `wanmon-sim`: runs scenarios and prints how the controller did.
//!
//! `wanmon-sim run <scenario.yaml|dir> [--engine replay|netns] [--impair auto|relay|netem] ...`,
//! `wanmon-sim calibrate <scenario.yaml>`: see USAGE.

mod judge_cli;

use std::path::PathBuf;
use std::process::ExitCode;
use wanmon_sim::impair::Impairment;
use wanmon_sim::record::RunRecord;
use wanmon_sim::scenario::Scenario;
use wanmon_sim::{replay, report};

const USAGE: &str = "usage: wanmon-sim run <scenario.yaml|dir> [--engine replay|netns] [--binary PATH] [--runner CMD]
                     [--impair auto|relay|netem] [--check-replay] [--json FILE] [--svg DIR]
                     [--sample-every SECONDS]
       wanmon-sim calibrate <scenario.yaml> [--pings N] [--impair auto|relay|netem] [--check]
                     [--json FILE]
{JUDGE}

  --engine replay     virtual time against the decision core: deterministic, no root (default)
  --engine netns      real namespaces, the real daemon, real time (needs root); scenarios run in
                      parallel, each on its own namespaces, all removed afterwards
  --binary PATH       the daemon for netns (default: wanmon next to wanmon-sim)
  --runner CMD        run the daemon through CMD, such as qemu-mipsel-static
  --impair KIND       how netns impairs the links: netem (the kernel's sch_netem on veth pairs;
                      not seedable), relay (userspace TUN relay: seeded, works everywhere), or
                      auto (default: netem where the kernel has it, else relay)
  --check-replay      after a netns run, replay each scenario too and fail (exit 1) where the
                      two switched to different links or in another order
  --json FILE         write every run (decisions, route changes, sampled telemetry, verdicts) as JSON
  --svg DIR           write one SVG timeline per scenario into DIR
  --sample-every S    telemetry sampling period in the JSON and SVG output (default 1)

  calibrate           build each link of the scenario for real (namespaces and the impairment
                      --impair picks; needs root) and print measured vs configured latency,
                      jitter and loss (surge-ping; default 200 pings per link)
  --check             fail (exit 1) when a link's measured latency or loss is off its
                      configuration by more than the tolerance (latency ±10 %, loss ±3 points)

the scenario format: docs/scenarios.md
exit status: 0 every expectation met, 1 some expectation not met, 2 bad command line or scenario";

/// The whole usage text, the judge's part included.
fn usage() -> String {
    USAGE.replace("{JUDGE}", judge_cli::USAGE)
}

struct Options {
    path: PathBuf,
    netns: bool,
    binary: Option<PathBuf>,
    runner: Option<String>,
    impair: String,
    check_replay: bool,
    json: Option<PathBuf>,
    svg: Option<PathBuf>,
    sample_every_s: f64,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut iter = args.iter();
    match iter.next().map(String::as_str) {
        Some("run") => {}
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("missing command".into()),
    }
    let mut path = None;
    let mut options = Options {
        path: PathBuf::new(),
        netns: false,
        binary: None,
        runner: None,
        impair: "auto".into(),
        check_replay: false,
        json: None,
        svg: None,
        sample_every_s: 1.0,
    };
    while let Some(arg) = iter.next() {
        let mut value =
            |flag: &str| iter.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--engine" => match value("--engine")?.as_str() {
                "replay" => options.netns = false,
                "netns" => options.netns = true,
                other => return Err(format!("--engine: got {other:?}, expected replay or netns")),
            },
            "--binary" => options.binary = Some(value("--binary")?.into()),
            "--runner" => options.runner = Some(value("--runner")?),
            "--impair" => options.impair = impair_choice(&value("--impair")?)?,
            "--check-replay" => options.check_replay = true,
            "--json" => options.json = Some(value("--json")?.into()),
            "--svg" => options.svg = Some(value("--svg")?.into()),
            "--sample-every" => {
                let text = value("--sample-every")?;
                options.sample_every_s = text
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (0.01..=3600.0).contains(s))
                    .ok_or_else(|| {
                        format!("--sample-every: got {text:?}, expected seconds from 0.01 to 3600")
                    })?;
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag:?}")),
            _ if path.is_some() => {
                return Err(format!("unexpected argument {arg:?}: one scenario file or directory"));
            }
            _ => path = Some(PathBuf::from(arg)),
        }
    }
    options.path = path.ok_or("missing the scenario file or directory")?;
    if options.check_replay && !options.netns {
        return Err(
            "--check-replay compares a netns run with the replay: add --engine netns".into()
        );
    }
    Ok(options)
}

/// Checks the spelling of an `--impair` value; whether the kernel has netem is asked only when a
/// run needs it.
fn impair_choice(text: &str) -> Result<String, String> {
    match text {
        "auto" | "relay" | "netem" => Ok(text.to_string()),
        other => Err(format!("--impair: got {other:?}, expected auto, relay or netem")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("calibrate") {
        return calibrate(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("judge") {
        return judge_cli::judge(&args[1..]);
    }
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("wanmon-sim: {message}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let scenarios = match Scenario::load_all(&options.path) {
        Ok(scenarios) if scenarios.is_empty() => {
            eprintln!("wanmon-sim: no .yaml scenario in {}", options.path.display());
            return ExitCode::from(2);
        }
        Ok(scenarios) => scenarios,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("wanmon-sim: {} error(s) in scenario files, nothing run", errors.len());
            return ExitCode::from(2);
        }
    };
    let records: Vec<RunRecord> = if options.netns {
        match run_netns(&options, &scenarios) {
            Ok(records) => records,
            Err(message) => {
                eprintln!("wanmon-sim: {message}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        scenarios.iter().map(|s| replay::run(s, options.sample_every_s)).collect()
    };
    print!("{}", report::table(&records));
    if let Err(message) = write_outputs(&options, &scenarios, &records) {
        eprintln!("wanmon-sim: {message}");
        return ExitCode::from(2);
    }
    let failed = records.iter().filter(|r| !r.all_met()).count();
    if failed == 0 {
        println!("{} scenario runs, every expectation met", records.len());
    } else {
        println!("{failed} of {} scenario runs missed expectations", records.len());
    }
    let disagreements = if options.check_replay { check_replay(&scenarios, &records) } else { 0 };
    if failed == 0 && disagreements == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Replays every scenario and counts those whose real run switched differently.
fn check_replay(scenarios: &[Scenario], records: &[RunRecord]) -> usize {
    let mut disagreements = 0;
    for (scenario, record) in scenarios.iter().zip(records) {
        if let Some(difference) = record.disagreement_with(&replay::run(scenario, 1.0)) {
            println!("DISAGREE {difference}");
            disagreements += 1;
        }
    }
    println!(
        "replay and {} agree on the switches of {} of {} scenarios",
        records.first().map_or("netns", |r| r.engine.as_str()),
        records.len() - disagreements,
        records.len()
    );
    disagreements
}

fn write_outputs(
    options: &Options,
    scenarios: &[Scenario],
    records: &[RunRecord],
) -> Result<(), String> {
    if let Some(path) = &options.json {
        let json = serde_json::to_string_pretty(records)
            .map_err(|e| format!("cannot encode JSON: {e}"))?;
        std::fs::write(path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(dir) = &options.svg {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for (scenario, record) in scenarios.iter().zip(records) {
            let stem = scenario
                .file
                .file_stem()
                .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
            let path = dir.join(format!("{stem}.{}.svg", record.engine));
            std::fs::write(&path, report::svg(scenario, record))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// `calibrate`'s command line.
struct CalibrateOptions {
    file: PathBuf,
    pings: u16,
    impair: String,
    json: Option<PathBuf>,
    check: bool,
}

fn parse_calibrate(args: &[String]) -> Result<CalibrateOptions, String> {
    let mut file = None;
    let mut options = CalibrateOptions {
        file: PathBuf::new(),
        pings: 200,
        impair: "auto".into(),
        json: None,
        check: false,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value =
            |flag: &str| iter.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--check" => options.check = true,
            "--json" => options.json = Some(value("--json")?.into()),
            "--impair" => options.impair = impair_choice(&value("--impair")?)?,
            "--pings" => {
                options.pings = value("--pings")?
                    .parse()
                    .ok()
                    .filter(|n| (10..=10_000).contains(n))
                    .ok_or("--pings needs a number from 10 to 10000")?;
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag:?}")),
            _ if file.is_some() => return Err("calibrate takes one scenario file".into()),
            _ => file = Some(PathBuf::from(arg)),
        }
    }
    options.file = file.ok_or("calibrate needs a scenario file")?;
    Ok(options)
}

fn calibrate(args: &[String]) -> ExitCode {
    let options = match parse_calibrate(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("wanmon-sim: {message}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let scenario = match Scenario::load(&options.file) {
        Ok(scenario) => scenario,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            return ExitCode::from(2);
        }
    };
    let impairment = match Impairment::choose(&options.impair) {
        Ok(impairment) => impairment,
        Err(message) => {
            eprintln!("wanmon-sim: {message}");
            return ExitCode::FAILURE;
        }
    };
    let calibrations = match wanmon_sim::calibrate::calibrate(&scenario, impairment, options.pings)
    {
        Ok(calibrations) => calibrations,
        Err(message) => {
            eprintln!("wanmon-sim: calibrate: {message} (it needs root for network namespaces)");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", wanmon_sim::calibrate::table(&calibrations));
    if let Some(path) = &options.json
        && let Err(e) = std::fs::write(path, wanmon_sim::calibrate::json(&calibrations))
    {
        eprintln!("wanmon-sim: cannot write {}: {e}", path.display());
        return ExitCode::from(2);
    }
    let unfaithful: Vec<String> = calibrations.iter().filter_map(|c| c.faithful().err()).collect();
    if !options.check {
        return ExitCode::SUCCESS;
    }
    if unfaithful.is_empty() {
        println!("every link within tolerance (latency ±10 %, loss ±3 points)");
        return ExitCode::SUCCESS;
    }
    for problem in unfaithful {
        println!("OUT OF TOLERANCE {problem}");
    }
    ExitCode::FAILURE
}

/// Every scenario on its own namespaces, all at once: they run in real time.
fn run_netns(options: &Options, scenarios: &[Scenario]) -> Result<Vec<RunRecord>, String> {
    let binary = match &options.binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("wanmon"),
    };
    if !binary.exists() {
        return Err(format!(
            "the daemon {} does not exist: build it (cargo build -p wanmon) or pass --binary",
            binary.display()
        ));
    }
    let impairment = Impairment::choose(&options.impair)?;
    wanmon_sim::netns::catch_interrupts();
    let netns_options = wanmon_sim::netns::Options {
        binary,
        runner: options.runner.clone(),
        impairment,
        relay_where_netem_cannot: options.impair == "auto",
        sample_every_s: options.sample_every_s,
    };
    let longest = scenarios.iter().map(|s| s.duration_s).fold(0.0, f64::max);
    eprintln!(
        "wanmon-sim: {} scenario(s) on namespaces in real time, about {longest:.0} s; links \
         impaired by {}",
        scenarios.len(),
        impairment.name()
    );
    std::thread::scope(|scope| {
        let runs: Vec<_> = scenarios
            .iter()
            .map(|s| scope.spawn(|| wanmon_sim::netns::run(s, &netns_options)))
            .collect();
        runs.into_iter()
            .zip(scenarios)
            .map(|(run, scenario)| {
                run.join()
                    .map_err(|_| format!("{}: the run panicked", scenario.name))?
                    .map_err(|e| format!("{}: {e}", scenario.name))
            })
            .collect()
    })
}
