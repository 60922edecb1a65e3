//! `cargo xtask`: the project's automation, one function per command, std only.
//!
//! - `cargo xtask sim`: the scenario suite against the controller (the README's main job).
//! - `cargo xtask judge`: the decision benchmark against the peers' models.
//! - `cargo xtask ci`: everything CI checks, on a fresh Debian machine (the README's test command).
//! - `cargo xtask bench`: the hot-path benchmark with its printed figures.
//! - `cargo xtask fuzz`: coverage-guided fuzzing of every parser of outside bytes.
//! - `cargo xtask dist`, `deploy`, `vm`: the router package, its deployment, and its build run
//!   as a daemon on a MIPS kernel.

mod apk;
mod ci;
mod deploy;
mod dist;
mod elf;
mod fuzz;
mod guest;
mod luci;
mod musl;
mod netem;
mod netifd;
mod openwrt;
mod owrt;
mod owrt_deploy;
mod owrt_ipv6;
mod package;
mod sim;
mod size_report;
mod vm;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  dist [--target ARCH] [--record-sizes]
           build the router packages: cross-compile for OpenWrt (default mipsel_24kc; also
           x86_64), strip, pack (LZMA, unpacked in memory at start), write target/dist/*.ipk
           and target/dist/apk/, check the 108 KiB size budget; print where the mipsel binary's bytes go against xtask/size-record.tsv
           (--record-sizes writes the current figures there)
  deploy --host USER@ROUTER [--port N] [--identity FILE] [--target ARCH] [--dry-run]
           copy the package over SCP (legacy protocol, for dropbear), install it with opkg,
           restart the service, print its status
  vm [--binary PATH]
           run the router build (default target/dist/mipsel_24kc/wanmon) as a daemon on
           Debian's MIPS kernel under qemu-system-mipsel: an ISP outage and recovery, judged
           by the guest kernel's routes
  netem [--simulator PATH --daemon PATH]
           check the simulator's netem backend on a kernel that has sch_netem: Debian's amd64
           kernel under qemu-system-x86_64 (no KVM needed), the host's files over 9p
  openwrt  the packages on OpenWrt's own userland (netifd, procd, apk 3; ../shared/openwrt-userland
           built into target/): install, start, a refused config, reload, respawn, an outage,
           an upgrade keeping the config, removal (root)
  sim [--replay-only]
           run the scenario library against the controller (replay; and netns, the real daemon
           on namespaces, when root) and print the summary table; JSON and SVG in target/sim/
  judge [--quick]
           the decision benchmark: scenario families over many seeds in the replay, wanmon
           beside models of mwan3, dpinger, the shell wanmon and wanmon v0.1; fails where wanmon
           misses a goal it met before; table and SVG in target/judge/
  ci       install what a fresh Debian machine lacks, then run fmt, clippy, every test
           (root-only tests too when run as root), the package, both emulated kernels, the
           browser test and a short benchmark; prints a table of each stage's time
  fuzz [--seconds N] [--target NAME]...
           coverage-guided fuzzing (libFuzzer) of every parser of outside bytes: config, http,
           control, netlink, icmp, status; N seconds each (default 20); fails on a crash, a
           hang over 1 s or a memory blow-up, the input kept in target/fuzz/artifacts/
  soak [--minutes N | --hours N] [--seed S]
           the chaos soak: the real daemon in namespaces for N minutes (default 30) under random
           outages, carrier pulls, deleted routes and rules, reloads, forced links, hostile
           clients and kill -9; kernel tables checked every 100 ms (root)
  bench    run the criterion benchmark of the hot path (prints ns per probe outcome)
  browser  the status page in Debian's Chromium against the real daemon in namespaces (root)";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("sim") => sim::sim(&args[1..]),
        Some("judge") => sim::judge(&args[1..]),
        Some("ci") => ci::ci(&args[1..]),
        Some("bench") => ci::bench(&args[1..]),
        Some("browser") => ci::browser(&args[1..]),
        Some("dist") => dist::dist(&args[1..]),
        Some("deploy") => deploy::deploy(&args[1..]),
        Some("vm") => vm::vm(&args[1..]),
        Some("netem") => netem::netem(&args[1..]),
        Some("openwrt") => openwrt::openwrt(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("soak") => ci::soak(&args[1..]),
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
pub(crate) fn root() -> PathBuf {
    let manifest =
        env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("xtask"), PathBuf::from);
    manifest.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

pub(crate) fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Runs a command in the workspace root, echoing it; fails with the command named.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), String> {
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

pub(crate) fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|output| output.status.success())
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A named step with its duration, so CI logs show where the time goes.
pub(crate) fn step(name: &str, body: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    println!("\n==> {name}");
    let start = Instant::now();
    let result = body();
    let verdict = if result.is_ok() { "ok" } else { "FAILED" };
    println!("<== {name}: {verdict} in {:.1} s", start.elapsed().as_secs_f64());
    result.map_err(|e| format!("{name}: {e}"))
}

/// Debian packages the tests need, by the command (or, starting with '/', the path) that shows
/// each is there; with [`USERLAND_PACKAGES`] (`ip` and `nft` among them), which they need too.
const PACKAGES: &[(&str, &str)] = &[
    ("gzip", "gzip"),
    ("xz", "xz-utils"),
    ("unshare", "util-linux"),
    ("/usr/sbin/sshd", "openssh-server"),
    ("scp", "openssh-client"),
    ("qemu-mipsel-static", "qemu-user-static"),
    ("chromium", "chromium"),
    ("npm", "npm"),
    // The deploy test's router without opkg needs a static busybox (a path: a dynamic one won't do).
    ("/usr/share/doc/busybox-static", "busybox-static"),
    // The emulated kernels: the router build as a daemon on MIPS (`cargo xtask vm`), the netem
    // backend on Debian's amd64 kernel (`cargo xtask netem`). Installed here, not in the lanes,
    // so no two apt runs ever overlap.
    ("qemu-system-mipsel", "qemu-system-mips"),
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("ping", "iputils-ping"),
    ("python3", "python3"),
    ("curl", "curl"),
];

/// What OpenWrt's userland needs to build from source (`../shared/openwrt-userland/`, its
/// README's list): its apk makes the apk packages (`cargo xtask dist`), its router runs them
/// (`cargo xtask openwrt`).
pub(crate) const USERLAND_PACKAGES: &[(&str, &str)] = &[
    ("cc", "build-essential"),
    ("cmake", "cmake"),
    ("pkg-config", "pkg-config"),
    ("meson", "meson"),
    ("ninja", "ninja-build"),
    ("file", "file"),
    ("patch", "patch"),
    ("/usr/include/json-c/json.h", "libjson-c-dev"),
    ("/usr/include/openssl/ssl.h", "libssl-dev"),
    ("/usr/include/zlib.h", "zlib1g-dev"),
    ("/usr/include/zstd.h", "libzstd-dev"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("dpkg-deb", "dpkg"),
    ("flock", "util-linux"),
];

pub(crate) fn has_command(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs what a fresh Debian machine lacks for any step (as root, with apt).
pub(crate) fn install_packages() -> Result<(), String> {
    let all: Vec<(&str, &str)> = PACKAGES.iter().chain(USERLAND_PACKAGES).copied().collect();
    install_listed(&all)
}

/// Installs those of `packages` a fresh Debian machine lacks (as root, with apt); elsewhere says
/// what to install.
pub(crate) fn install_listed(packages: &[(&str, &str)]) -> Result<(), String> {
    let present = |probe: &str| {
        if probe.starts_with('/') {
            std::path::Path::new(probe).exists()
        } else {
            has_command(probe)
        }
    };
    let missing: Vec<&str> =
        packages.iter().filter(|(probe, _)| !present(probe)).map(|(_, package)| *package).collect();
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
    // The tests start their own sshd in a namespace; Debian must not start one on this machine.
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists() && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok();
    if ours {
        let _ =
            std::fs::set_permissions(policy, std::os::unix::fs::PermissionsExt::from_mode(0o755));
    }
    let result = run("apt-get", &["update", "-qq"]).and_then(|()| {
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&missing);
        run("apt-get", &args)
    });
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    result
}

/// Checks the machine has what the steps need; says exactly what is missing and how to get it.
pub(crate) fn prerequisites() -> Result<(), String> {
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
