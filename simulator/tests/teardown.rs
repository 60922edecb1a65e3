//! A real run leaves nothing behind however it ends: interrupted with Ctrl-C (SIGINT to
//! `wanmon-sim` alone, so the simulator itself must stop the daemon) and failing half-way (the
//! daemon dies). Afterwards no namespace of the run, no device on the host and no daemon is left.
//! Needs root; `cargo xtask ci` runs it with `--include-ignored`.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use wanmon_sim::netns::PREFIX;

fn start(binary: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_wanmon-sim"))
        .args(["run", "scenarios/01-hard-outage.yaml", "--engine", "netns", "--impair", "relay"])
        .arg("--binary")
        .arg(binary)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wanmon-sim starts")
}

/// The namespaces of the run of `wanmon-sim` process `pid`, by their name.
fn namespaces_of(pid: u32) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    let run = format!("{PREFIX}{}-", pid % 100_000);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&run))
        .map(String::from)
        .collect()
}

/// Daemons started for the run: their config lives in a directory named after it.
fn daemons_of(pid: u32) -> String {
    let out = Command::new("pgrep")
        .args(["-af", &format!("wanmon-{PREFIX}{}-", pid % 100_000)])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_nothing_left(pid: u32, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(namespaces_of(pid), Vec::<String>::new(), "namespaces left behind; {stderr}");
    assert_eq!(daemons_of(pid), "", "daemons left running; {stderr}");
    let links = Command::new("ip").args(["-o", "link", "show"]).output().expect("ip link");
    let links = String::from_utf8_lossy(&links.stdout);
    for device in [" wan:", " wwan:", " isp:", " wan@", " wwan@", " isp@"] {
        assert!(!links.contains(device), "device{device} left on the host: {links}");
    }
}

#[test]
#[ignore = "needs root: network namespaces"]
fn ctrl_c_mid_run_removes_everything() {
    common::require_root();
    let mut sim = start(&common::daemon());
    let pid = sim.id();
    let started = Instant::now();
    while daemons_of(pid).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "the daemon never started");
        assert!(sim.try_wait().expect("wait").is_none(), "wanmon-sim ended before its daemon ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!namespaces_of(pid).is_empty(), "the run's namespaces exist while it runs");
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    let out = sim.wait_with_output().expect("wanmon-sim ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_nothing_left(pid, &out);
}

#[test]
#[ignore = "needs root: network namespaces"]
fn a_daemon_that_dies_fails_the_run_at_once_and_removes_everything() {
    common::require_root();
    let started = Instant::now();
    let sim = start(Path::new("/bin/false"));
    let pid = sim.id();
    let out = sim.wait_with_output().expect("wanmon-sim ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the daemon /bin/false exited at"), "{stderr}");
    // Well before the scenario's 150 s: a dead daemon is not waited out.
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    assert_nothing_left(pid, &out);
}
