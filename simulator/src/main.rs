//! wanmon-sim: the scenario workbench (its engines arrive with the simulator issue).

fn main() -> std::process::ExitCode {
    eprintln!("wanmon-sim: no engine is built yet: see the simulator issue");
    std::process::ExitCode::from(2)
}
