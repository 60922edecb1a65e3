//! `cargo xtask netem`: the simulator's netem backend checked on a kernel that has `sch_netem`,
//! whatever kernel this machine runs. Debian's own amd64 kernel boots under qemu-system-x86_64
//! (TCG: no KVM, any host CPU) with a small initramfs that loads the modules and mounts the host's
//! files read-only over virtio-9p, with one shared directory writable for the results. Inside,
//! the host's `wanmon-sim` measures a netem link against its configuration (`calibrate --check`)
//! and runs an ISP outage, a pulled cable and a filtered target with `--impair auto`, which must
//! pick netem there; each must meet its expectations and switch as the replay does, and leave no
//! namespace, device or daemon behind.

use crate::{cargo, guest, root, run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const KERNEL_META: &str = "linux-image-amd64";

/// Modules the guest loads before anything else: the 9p root, and what the runs need (veth and
/// netem for the netem backend, tun for the relay `auto` must not fall back to). The host's
/// modprobe cannot serve a kernel it does not run, so nothing is left to on-demand loading.
const MODULES: [&str; 6] = ["virtio_pci", "9pnet_virtio", "9p", "veth", "sch_netem", "tun"];

/// The library scenarios run on netem: an ISP outage, a pulled cable, a filtered target.
const SCENARIOS: [&str; 3] =
    ["01-hard-outage.yaml", "02-carrier-loss.yaml", "11-one-target-filtered.yaml"];

const CALIBRATION: &str = "name: calibration
description: One link at 50 ms ± 10 ms and 20 % loss, to hold netem to what it is told.
seed: 42
duration_s: 10
links:
  - { name: wan, latency_ms: 50, jitter_ms: 10, loss_percent: 20 }
expect:
  - initial: wan
";

/// Pings for the calibration: netem is not seedable, so enough that chance cannot flake the
/// ±3 points of loss (the standard error of 20 % over 2000 is 0.9 points).
const PINGS: &str = "2000";

const PREFIX: &str = "WANMON-NETEM ";

/// The guest's first process: modules, the host's root (read-only) with the shared directory on
/// top, its own /proc, /sys, /dev and a tmpfs /run (namespace mount points, temporary files);
/// then the runs, chrooted into the host's files, then power off.
fn init_script(modules: &[(String, Vec<u8>)], share: &Path) -> String {
    let load: String = modules
        .iter()
        .map(|(name, _)| {
            format!("insmod /lib/modules/{name}.ko || say FAILED cannot load {name}\n")
        })
        .collect();
    let share = share.display();
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
say() {{ echo "{PREFIX}$(cut -d' ' -f1 /proc/uptime) $*"; }}
say KERNEL $(uname -m) $(uname -r)
{load}nine="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$nine,ro,cache=loose" host /host || say FAILED cannot mount the host root
mount -t 9p -o "$nine" share /host{share} || say FAILED cannot mount the shared directory
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs dev /host/dev
mount -t tmpfs tmpfs /host/run
say MOUNTED
chroot /host /bin/sh {share}/inside.sh
say DONE $?
sync
poweroff -f
"#
    )
}

/// What runs on the host's files under the guest's kernel; each result is a file in the share.
fn inside_script(share: &Path, simulator: &Path, daemon: &Path) -> String {
    let (share, simulator, daemon) = (share.display(), simulator.display(), daemon.display());
    format!(
        r#"#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
export TMPDIR=/run/tmp
mkdir -p $TMPDIR
cd {share}
ip link set lo up
ip -o link show > links-before
{simulator} calibrate calibration.yaml --impair netem --pings {PINGS} --check \
    --json calibration.json > calibrate.log 2>&1
echo $? > calibrate.status
{simulator} run scenarios --engine netns --impair auto --binary {daemon} --check-replay \
    --json runs.json > run.log 2>&1
echo $? > run.status
ip netns list > namespaces-after
ip -o link show > links-after
for p in /proc/[0-9]*; do
  case "$(cat $p/comm 2>/dev/null)" in wanmon*) echo "${{p#/proc/}} $(cat $p/comm)";; esac
done > daemons-after
"#
    )
}

/// The results the guest left in the share, judged; what went wrong, or the summary.
fn judge(share: &Path, console: &str) -> Result<String, String> {
    let events = guest::events(console, PREFIX);
    let find = |word: &str| events.iter().find(|(_, w)| w.first() == Some(&word));
    if let Some((_, words)) = find("FAILED") {
        return Err(format!("the guest failed: {}", words.join(" ")));
    }
    let kernel = find("KERNEL").map(|(_, w)| w[1..].join(" ")).ok_or("the guest never started")?;
    find("DONE").ok_or("the guest did not finish its runs")?;
    let read = |name: &str| {
        std::fs::read_to_string(share.join(name))
            .map_err(|e| format!("{}: {e}", share.join(name).display()))
    };
    let calibrate = read("calibrate.log")?;
    print!("{calibrate}");
    if read("calibrate.status")?.trim() != "0" {
        return Err(format!("netem is not what it was configured to be:\n{calibrate}"));
    }
    let runs = read("run.log")?;
    print!("{runs}");
    if !runs.contains("impaired by netem") {
        return Err("--impair auto did not pick netem on a kernel that has it".into());
    }
    if read("run.status")?.trim() != "0" {
        return Err(
            "a scenario on netem missed its expectations or switched unlike the replay".into()
        );
    }
    let namespaces = read("namespaces-after")?;
    if !namespaces.trim().is_empty() {
        return Err(format!("namespaces left behind: {namespaces}"));
    }
    if read("links-before")? != read("links-after")? {
        return Err("devices left behind (links-before and links-after differ)".into());
    }
    let daemons = read("daemons-after")?;
    if !daemons.trim().is_empty() {
        return Err(format!("daemons left running: {daemons}"));
    }
    Ok(format!(
        "netem on Debian's {kernel} kernel: calibration within tolerance; {} scenarios met their \
         expectations with auto picking netem and switched as the replay; nothing left behind",
        SCENARIOS.len()
    ))
}

/// A library scenario as the emulated kernel runs it: the same faults and expectations, but the
/// 1.5 s failover goals doubled. This stage checks the netem backend and `--impair auto` (each
/// run switching as the replay does); a TCG guest runs the daemon several times slower (1.6 s
/// measured for an outage that takes 1.0 s natively), and the native netns run in CI holds the
/// timing goals themselves.
fn for_emulation(scenario: &str) -> String {
    scenario.replace("within_s: 1.5 }", "within_s: 3 }")
}

/// Writes the shared directory: the scenarios, the calibration and the script to run.
fn prepare_share(share: &Path, simulator: &Path, daemon: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(share);
    let scenarios = share.join("scenarios");
    std::fs::create_dir_all(&scenarios).map_err(|e| format!("{}: {e}", scenarios.display()))?;
    let library = root().join("scenarios");
    for name in SCENARIOS {
        let text = std::fs::read_to_string(library.join(name))
            .map_err(|e| format!("{}: {e}", library.join(name).display()))?;
        std::fs::write(scenarios.join(name), for_emulation(&text))
            .map_err(|e| format!("{}: {e}", scenarios.join(name).display()))?;
    }
    let write = |name: &str, text: &str| {
        std::fs::write(share.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write("calibration.yaml", CALIBRATION)?;
    write("inside.sh", &inside_script(share, simulator, daemon))
}

fn parse(args: &[String]) -> Result<(PathBuf, PathBuf), String> {
    let usage = "usage: cargo xtask netem [--simulator PATH --daemon PATH]";
    let (mut simulator, mut daemon) = (None, None);
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = || iter.next().map(PathBuf::from).ok_or(format!("{arg} needs a path"));
        match arg.as_str() {
            "--simulator" => simulator = Some(value()?),
            "--daemon" => daemon = Some(value()?),
            other => return Err(format!("netem: unknown argument {other:?}; {usage}")),
        }
    }
    match (simulator, daemon) {
        (Some(simulator), Some(daemon)) => Ok((simulator, daemon)),
        (None, None) => {
            run(&cargo(), &["build", "--quiet", "-p", "wanmon-sim", "-p", "wanmon"])?;
            let debug = root().join("target/debug");
            Ok((debug.join("wanmon-sim"), debug.join("wanmon")))
        }
        _ => Err(format!("netem: give both --simulator and --daemon, or neither; {usage}")),
    }
}

pub fn netem(args: &[String]) -> Result<(), String> {
    let (simulator, daemon) = parse(args)?;
    let absolute =
        |p: PathBuf| std::path::absolute(&p).map_err(|e| format!("{}: {e}", p.display()));
    let (simulator, daemon) = (absolute(simulator)?, absolute(daemon)?);
    let out = root().join("target/netem-vm");
    let share = out.join("share");
    // The guest covers /run, /proc, /sys and /dev with its own; the results must be elsewhere.
    if ["/run", "/proc", "/sys", "/dev"].iter().any(|p| share.starts_with(p)) {
        return Err(format!(
            "{} is under a directory the guest replaces: check out the project elsewhere",
            share.display()
        ));
    }
    guest::need_emulator("qemu-system-x86_64", "qemu-system-x86")?;
    let parts = guest::debian_parts(&guest::cache(), "amd64", KERNEL_META)?;
    let busybox = std::fs::read(parts.busybox())
        .map_err(|e| format!("{}: {e}", parts.busybox().display()))?;
    let modules = parts.modules_with_dependencies(&MODULES)?;
    prepare_share(&share, &simulator, &daemon)?;
    let init = init_script(&modules, &share);
    let mut entries: Vec<guest::Entry> = vec![
        ("bin", guest::DIRECTORY, &[]),
        ("bin/busybox", guest::EXECUTABLE, &busybox),
        ("dev", guest::DIRECTORY, &[]),
        ("host", guest::DIRECTORY, &[]),
        ("init", guest::EXECUTABLE, init.as_bytes()),
        ("lib", guest::DIRECTORY, &[]),
        ("lib/modules", guest::DIRECTORY, &[]),
        ("proc", guest::DIRECTORY, &[]),
        ("sys", guest::DIRECTORY, &[]),
    ];
    let module_paths: Vec<String> =
        modules.iter().map(|(name, _)| format!("lib/modules/{name}.ko")).collect();
    for ((_, bytes), path) in modules.iter().zip(&module_paths) {
        entries.push((path, guest::FILE, bytes));
    }
    let initramfs = guest::initramfs(&out, &entries)?;
    let console = out.join("console.log");
    println!("booting {} under qemu-system-x86_64 (TCG, about 6 min)", parts.kernel().display());
    let started = Instant::now();
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-machine", "pc", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2"])
        .args(["-m", "1536", "-nographic", "-no-reboot", "-nic", "none", "-vga", "none"])
        .arg("-kernel")
        .arg(parts.kernel())
        .arg("-initrd")
        .arg(&initramfs)
        .args(["-append", "console=ttyS0 rdinit=/init quiet panic=-1"])
        .arg("-virtfs")
        .arg("local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap")
        .arg("-virtfs")
        .arg(format!(
            "local,path={},mount_tag=share,security_model=none,multidevs=remap",
            share.display()
        ));
    let text = guest::boot(qemu, &console, Duration::from_secs(900))?;
    let summary = judge(&share, &text).map_err(|e| {
        format!("{e}; the guest's console: {}, results in {}", console.display(), share.display())
    })?;
    println!("{summary} ({:.0} s in all)", started.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "noise\nWANMON-NETEM 1.73 KERNEL x86_64 6.1.0-57-amd64\n\
        WANMON-NETEM 2.27 MOUNTED\nWANMON-NETEM 330.15 DONE 0\n";

    /// A share as a good run leaves it; each test spoils one thing.
    fn good_share(name: &str) -> PathBuf {
        let share =
            std::env::temp_dir().join(format!("wanmon-netem-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&share);
        std::fs::create_dir_all(&share).expect("share");
        for (file, text) in [
            ("calibrate.log", "every link within tolerance\n"),
            ("calibrate.status", "0\n"),
            ("run.log", "links impaired by netem\n3 scenario runs, every expectation met\n"),
            ("run.status", "0\n"),
            ("namespaces-after", ""),
            ("links-before", "1: lo: <LOOPBACK,UP>\n"),
            ("links-after", "1: lo: <LOOPBACK,UP>\n"),
            ("daemons-after", ""),
        ] {
            std::fs::write(share.join(file), text).expect("result file");
        }
        share
    }

    fn spoiled(name: &str, file: &str, text: &str, console: &str) -> String {
        let share = good_share(name);
        std::fs::write(share.join(file), text).expect("spoil");
        let verdict = judge(&share, console);
        let _ = std::fs::remove_dir_all(&share);
        verdict.expect_err("a spoiled run must fail")
    }

    #[test]
    fn a_good_run_passes_and_names_the_kernel() {
        let share = good_share("good");
        let summary = judge(&share, CONSOLE).expect("good run");
        assert!(summary.contains("6.1.0-57-amd64"), "{summary}");
        let _ = std::fs::remove_dir_all(&share);
    }

    #[test]
    fn every_kind_of_bad_run_fails_with_its_reason() {
        let cases = [
            ("calibrate.status", "1\n", "not what it was configured"),
            ("run.log", "links impaired by relay\n", "did not pick netem"),
            ("run.status", "1\n", "missed its expectations"),
            ("namespaces-after", "wsim-r1-wan\n", "namespaces left behind"),
            ("links-after", "1: lo\n2: wan@if3\n", "devices left behind"),
            ("daemons-after", "812 wanmon\n", "daemons left running"),
        ];
        for (file, text, reason) in cases {
            let error = spoiled(file, file, text, CONSOLE);
            assert!(error.contains(reason), "{file}: {error}");
        }
        let cut_short = CONSOLE.replace("WANMON-NETEM 330.15 DONE 0\n", "");
        assert!(spoiled("short", "run.status", "0", &cut_short).contains("did not finish"));
        let panicked = "Kernel panic - not syncing: VFS\n";
        assert!(spoiled("panic", "run.status", "0", panicked).contains("never started"));
        let no_9p = CONSOLE.replace("MOUNTED", "FAILED cannot mount the host root");
        assert!(spoiled("no9p", "run.status", "0", &no_9p).contains("cannot mount the host root"));
    }
}
