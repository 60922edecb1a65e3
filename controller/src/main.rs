//! The `wanmon` command: for now `--version` and `check-config`; the daemon joins it in its own issue.

use std::process::ExitCode;
use wanmon::core::Config;

const USAGE: &str = "usage: wanmon check-config FILE | wanmon --version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--version" | "-V"] => {
            println!("wanmon {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["check-config", path] => check_config(path),
        ["--help" | "-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("wanmon: unknown command {:?}\n{USAGE}", args.join(" "));
            ExitCode::from(2)
        }
    }
}

/// Validates a config file and prints every error with its line and key path.
fn check_config(path: &str) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{path}: cannot read: {e}");
            return ExitCode::FAILURE;
        }
    };
    match Config::from_json(&text) {
        Ok(config) => {
            let names: Vec<&str> = config.links.iter().map(|l| l.name.as_str()).collect();
            println!("{path}: ok, {} links: {}", names.len(), names.join(", "));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("{path}:{error}");
            }
            eprintln!("{path}: {} error(s), config refused", errors.len());
            ExitCode::FAILURE
        }
    }
}
