//! `cargo xtask vm`: the router build as a daemon on a MIPS kernel. qemu-user cannot run
//! wanmon's routing (it translates neither `SO_MARK` nor the routing-rule messages), so this
//! boots Debian's 32-bit little-endian MIPS kernel (`4kc-malta`) under qemu-system-mipsel with
//! an initramfs of BusyBox, the router's C library (`crate::musl`) and the mipsel wanmon.
//! Inside, two WAN links lead to two ISP namespaces; the primary's ISP stops answering and
//! comes back; the daemon is judged by the route the kernel resolves for LAN traffic (`ip route
//! get`, every 100 ms), never by its own report, and must hand routing back (no rule left) when
//! stopped. Its memory is judged without the C library's pages, which every process shares. Its
//! hook must run at each switch with its environment, its page and web status must answer, and
//! a failed conntrack cleanup must name the package it lacks.

use crate::{guest, root};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Debian's kernel for the guest: a metapackage naming the current one, from the host's suite.
const KERNEL_META: &str = "linux-image-4kc-malta";

/// What happens to the primary (wan) in the guest, one phase after the other: the marker the
/// guest prints, the shell commands, how long the phase lasts, where the route must go, and
/// how long the daemon may take to put it there.
struct Phase {
    marker: &'static str,
    commands: &'static str,
    lasts_s: u32,
    route_to: &'static str,
    within_s: f64,
}

const PHASES: [Phase; 4] = [
    // The ISP goes silent, the link stays up: dead_after_ms (3 s) of lost probes.
    Phase {
        marker: "OUTAGE",
        commands: "nsenter -t $isp_wan -n ip addr del 192.0.2.1/32 dev lo\n\
                   nsenter -t $isp_wan -n ip addr del 203.0.113.1/32 dev lo",
        lasts_s: 25,
        route_to: "wwan",
        within_s: 5.0,
    },
    // Back: measured afresh, then better by more than the doubt for failback_hold_ms (10 s).
    Phase {
        marker: "RESTORE",
        commands: "nsenter -t $isp_wan -n ip addr add 192.0.2.1/32 dev lo\n\
                   nsenter -t $isp_wan -n ip addr add 203.0.113.1/32 dev lo",
        lasts_s: 25,
        route_to: "wan",
        within_s: 20.0,
    },
    // The cable: the ISP's end down, so the router's end loses its carrier; no probe waited for.
    Phase {
        marker: "PULL",
        commands: "nsenter -t $isp_wan -n ip link set veth0 down",
        lasts_s: 15,
        route_to: "wwan",
        within_s: 2.0,
    },
    // Back again, within the hour of the last return: flap damping doubles the failback hold.
    Phase {
        marker: "PLUG",
        commands: "nsenter -t $isp_wan -n ip link set veth0 up",
        lasts_s: 35,
        route_to: "wan",
        within_s: 30.0,
    },
];

/// Before the first phase: the daemon's first choice and a settled window, whose last
/// `IDLE_WINDOW_S` count the daemon's wakeups while every link is healthy.
const FIRST_PHASE_AFTER_S: u32 = 15;
const IDLE_WINDOW_S: u32 = 10;

/// The daemon's own memory on the router: resident at most this much (KiB), at every
/// measurement. Its own: the pages of the router's C library it maps are shared with every
/// other process of OpenWrt, which all link against it, and cost nothing of their own.
const MAX_RSS_KIB: u64 = 1024;
/// ...and no more than this growth from settled to after the phases and 1,000 status requests.
const MAX_GROWTH_KIB: u64 = 64;
/// Its CPU time while every link is healthy, in percent of the window: a loop that wakes only
/// for its deadlines stays far below, one that spins (as when poll was given a timeout rounded
/// down to zero) does not; measured on the emulated CPU, which is slower than the router's.
const MAX_IDLE_CPU_PERCENT: f64 = 5.0;

const CONFIG: &str = r#"{
  "targets": ["192.0.2.1", "203.0.113.1"],
  "hysteresis": 20,
  "switch_hold_ms": 5000,
  "failback_hold_ms": 10000,
  "dead_after_ms": 3000,
  "web": {"listen": "127.0.0.1:8080", "token": null},
  "hook": ["/bin/sh", "-c", "echo \"$WANMON_FROM $WANMON_TO $PATH\" >> /run/hooks"],
  "links": [
    {"name": "wan", "device": "wan"},
    {"name": "wwan", "device": "wwan", "bias": 40}
  ]
}
"#;

/// Two ISPs, each a namespace held by a sleeping process, behind the links wan and wwan, with
/// the targets (documentation addresses) on their loopback, and the system's default routes.
const ISPS: &str = r#"i=0
for link in wan wwan; do
  unshare -n sleep 100000 &
  pid=$!
  sleep 1
  # BusyBox names the peer itself: veth0, free again once the last one moved away.
  ip link add $link type veth
  ip link set veth0 netns $pid
  mine=198.51.100.$((130 + 4 * i)); peer=198.51.100.$((129 + 4 * i))
  ip addr add $mine peer $peer dev $link
  ip link set $link up
  nsenter -t $pid -n ip link set lo up
  nsenter -t $pid -n ip addr add $peer peer $mine dev veth0
  nsenter -t $pid -n ip link set veth0 up
  nsenter -t $pid -n ip addr add 192.0.2.1/32 dev lo
  nsenter -t $pid -n ip addr add 203.0.113.1/32 dev lo
  ip route add default via $peer dev $link metric $((10 + 10 * i))
  eval isp_$link=$pid
  i=$((i + 1))
done
"#;

/// The guest's first process: the [`ISPS`], the daemon, the route watched; then the `PHASES`,
/// each announced on the console, and the footprint measured.
fn init_script(modules: &[(String, Vec<u8>)]) -> String {
    let load: String = modules
        .iter()
        .map(|(name, _)| {
            format!("insmod /lib/modules/{name}.ko || say FAILED cannot load {name}\n")
        })
        .collect();
    let phases: String = PHASES
        .iter()
        .map(|p| format!("say {}\n{}\nsleep {}\n", p.marker, p.commands, p.lasts_s))
        .collect();
    let settle = FIRST_PHASE_AFTER_S - IDLE_WINDOW_S;
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmpfs /run
now() {{ cut -d' ' -f1 /proc/uptime; }}
say() {{ echo "WANMON-VM $(now) $*"; }}
field() {{ sed -n "s/^$1:[^0-9]*\([0-9]*\).*/\1/p" /proc/$daemon/status; }}
library() {{ awk '/^[0-9a-f]/ {{ lib = ($6 == "/lib/libc.so") }} /^Rss:/ && lib {{ kib += $2 }}
    END {{ print kib + 0 }}' /proc/$daemon/smaps; }}
memory() {{ say MEMORY $1 $(field VmRSS) $(field VmHWM) $(library); }}
say KERNEL $(uname -m) $(uname -r)
started=$(now); i=0
while [ $i -lt 10 ]; do wanmon --version >/dev/null; i=$((i + 1)); done
say STARTS 10 $started $(now)
failed=$(sh -c "trap '' XFSZ; ulimit -f 1; exec wanmon --version" 2>&1); say CANNOT-UNPACK $? $failed
{load}ip link set lo up
{ISPS}wanmon run --config /etc/wanmon.json --socket /run/wanmon.sock 2>/run/daemon.log &
daemon=$!
say STARTED
(
  last=""
  while :; do
    r=$(ip route get 192.0.2.1 | grep -o "dev [a-z]*")
    if [ "$r" != "$last" ]; then say "ROUTE $r"; last="$r"; fi
    sleep 0.1
  done
) &
watcher=$!
sleep {settle}
memory settled
say PROCESS $(cat /proc/$daemon/comm) $(readlink /proc/$daemon/exe)
cpu() {{ awk '{{ print $14 + $15 }}' /proc/$daemon/stat; }}
woken=$(field voluntary_ctxt_switches); used=$(cpu)
sleep {IDLE_WINDOW_S}
say WAKEUPS $(( $(field voluntary_ctxt_switches) - woken )) {IDLE_WINDOW_S} $(( $(cpu) - used ))
{phases}memory after-phases
while read -r from to path; do say HOOK "$from" "$to" "$path"; done < /run/hooks
i=0
while [ $i -lt 1000 ]; do
  wanmon status --socket /run/wanmon.sock >/dev/null || {{ say FAILED status request $i; break; }}
  i=$((i + 1))
done
memory after-1000-status
wanmon status --json --socket /run/wanmon.sock | grep -q '"links"' || say FAILED status --json
wget -q -O - http://127.0.0.1:8080/ | grep -q '<title>wanmon</title>' || say FAILED the web page
wget -q -O - http://127.0.0.1:8080/api/status | grep -q '"links"' || say FAILED the web status
wanmon status --socket /run/wanmon.sock
say STOPPING
kill -TERM $daemon
sleep 2
kill $watcher
say RULES $(ip rule | grep -c 2234)
sed 's/^/daemon: /' /run/daemon.log
say DONE
poweroff -f
"#
    )
}

/// What the guest reported, judged: the figures, or what went wrong.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub kernel: String,
    /// Per phase, the seconds until the route was where it had to be.
    pub reactions: Vec<(&'static str, f64)>,
    /// Settled, after the phases, after 1,000 status requests.
    pub memory: Vec<Memory>,
    /// How it idles while every link is healthy.
    pub idle: Idle,
    /// What the daemon's process executes: a memory file when the shipped (packed) binary ran.
    pub executable: String,
    /// Milliseconds `wanmon --version` takes, start to exit (the unpacking included).
    pub start_ms: f64,
}

/// One reading of the daemon's memory, in KiB.
#[derive(Debug, PartialEq)]
pub struct Memory {
    pub label: String,
    /// VmRSS: everything resident, the shared C library's pages included.
    pub rss: u64,
    /// VmHWM: the most `rss` has been.
    pub peak: u64,
    /// The resident pages of its mappings of the router's C library (`/lib/libc.so`), from
    /// `/proc/PID/smaps`.
    pub shared_library: u64,
}

impl Memory {
    fn own(&self) -> u64 {
        self.rss.saturating_sub(self.shared_library)
    }

    /// The peak less the library as it is now: the library's pages only ever come in.
    fn own_peak(&self) -> u64 {
        self.peak.saturating_sub(self.shared_library)
    }
}

/// The MEMORY and WAKEUPS reports, judged against the limits.
/// The daemon while every link is healthy.
#[derive(Debug, PartialEq)]
pub struct Idle {
    /// Wakeups (voluntary context switches) per second.
    pub wakeups_per_s: f64,
    /// CPU time (user and system), in percent of the time.
    pub cpu_percent: f64,
}

fn judge_footprint(events: &[(f64, Vec<&str>)]) -> Result<(Vec<Memory>, Idle), String> {
    let number = |w: Option<&&str>| w.and_then(|n| n.parse::<u64>().ok());
    let mut memory = Vec::new();
    for (_, words) in events.iter().filter(|(_, w)| w.first() == Some(&"MEMORY")) {
        let numbers = (number(words.get(2)), number(words.get(3)), number(words.get(4)));
        let (Some(rss), Some(peak), Some(shared_library)) = numbers else {
            return Err(format!("unreadable memory report: {}", words.join(" ")));
        };
        let label = words.get(1).copied().unwrap_or("?").to_string();
        memory.push(Memory { label, rss, peak, shared_library });
    }
    let labels: Vec<&str> = memory.iter().map(|m| m.label.as_str()).collect();
    if labels != ["settled", "after-phases", "after-1000-status"] {
        return Err(format!("memory measured at {labels:?}"));
    }
    if let Some(m) = memory.iter().find(|m| m.own().max(m.own_peak()) > MAX_RSS_KIB) {
        return Err(format!(
            "{}: its own RSS {} KiB, peak {} KiB, over {MAX_RSS_KIB} KiB",
            m.label,
            m.own(),
            m.own_peak()
        ));
    }
    let settled = memory[0].own();
    if let Some(m) = memory.iter().find(|m| m.own() > settled + MAX_GROWTH_KIB) {
        return Err(format!(
            "its own RSS grew from {settled} KiB (settled) to {} KiB ({})",
            m.own(),
            m.label
        ));
    }
    let (_, wakeups) = events
        .iter()
        .find(|(_, w)| w.first() == Some(&"WAKEUPS"))
        .ok_or("the guest never counted the wakeups")?;
    let numbers = (number(wakeups.get(1)), number(wakeups.get(2)), number(wakeups.get(3)));
    let (Some(count), Some(seconds), Some(ticks)) = numbers else {
        return Err(format!("unreadable wakeups: {}", wakeups.join(" ")));
    };
    let seconds = seconds.max(1) as f64;
    // Ticks of 1/100 s (USER_HZ) of CPU time, as a share of the window.
    let idle = Idle { wakeups_per_s: count as f64 / seconds, cpu_percent: ticks as f64 / seconds };
    if idle.cpu_percent > MAX_IDLE_CPU_PERCENT {
        return Err(format!(
            "with every link healthy it used {:.1} % of the CPU, over {MAX_IDLE_CPU_PERCENT} %",
            idle.cpu_percent
        ));
    }
    Ok((memory, idle))
}

fn judge(console: &str) -> Result<Outcome, String> {
    let events = guest::events(console, "WANMON-VM ");
    let find = |word: &str| events.iter().find(|(_, w)| w.first() == Some(&word));
    if let Some((_, words)) = find("FAILED") {
        return Err(format!("the guest failed: {}", words.join(" ")));
    }
    let kernel = find("KERNEL").map(|(_, w)| w[1..].join(" ")).ok_or("the guest never started")?;
    let (stopping, _) = find("STOPPING").ok_or("the guest never stopped the daemon")?;
    let (_, rules) = find("RULES").ok_or("the guest never stopped the daemon")?;
    find("DONE").ok_or("the guest did not finish")?;
    // Once the daemon is told to stop, the system's own routes apply again: not its doing.
    let routes: Vec<(f64, &str)> = events
        .iter()
        .filter(|(t, w)| w.first() == Some(&"ROUTE") && t < stopping)
        .map(|(t, w)| (*t, w.last().copied().unwrap_or("none")))
        .collect();
    let mut expected = vec!["wan"];
    expected.extend(PHASES.iter().map(|p| p.route_to));
    let devices: Vec<&str> = routes.iter().map(|(_, d)| *d).collect();
    if devices != expected {
        return Err(format!("the route went {devices:?}, expected {expected:?}"));
    }
    let mut reactions = Vec::new();
    for (phase, (moved, _)) in PHASES.iter().zip(&routes[1..]) {
        let (began, _) = find(phase.marker)
            .ok_or_else(|| format!("the guest never reached the phase {}", phase.marker))?;
        let took = moved - began;
        if !(0.0..=phase.within_s).contains(&took) {
            return Err(format!(
                "{}: the route moved to {} {took:.1} s after it began, expected within {} s",
                phase.marker, phase.route_to, phase.within_s
            ));
        }
        reactions.push((phase.marker, took));
    }
    if rules.get(1) != Some(&"0") {
        return Err(format!("{} of wanmon's rules left after SIGTERM", rules[1..].join(" ")));
    }
    judge_hooks(&events)?;
    judge_conntrack_advice(console)?;
    let (memory, idle) = judge_footprint(&events)?;
    let executable = judge_process(&events)?;
    judge_unpack_failure(&events, &executable)?;
    let start_ms = judge_starts(&events)?;
    Ok(Outcome { kernel, reactions, memory, idle, executable, start_ms })
}

/// The hook ran at every switch, with the switch and the daemon's own environment (the guest's
/// `PATH`), on the router's own musl: where the daemon copied the C library's `environ`, musl's
/// start-up wrote the program's name over it and the first hook crashed the daemon.
fn judge_hooks(events: &[(f64, Vec<&str>)]) -> Result<(), String> {
    let ran: Vec<String> = events
        .iter()
        .filter(|(_, w)| w.first() == Some(&"HOOK"))
        .map(|(_, w)| w[1..].join(" "))
        .collect();
    let mut from = "wan";
    let expected: Vec<String> = PHASES
        .iter()
        .map(|phase| {
            format!("{} {} /bin", std::mem::replace(&mut from, phase.route_to), phase.route_to)
        })
        .collect();
    if ran.len() < PHASES.len() || ran[ran.len() - PHASES.len()..] != expected[..] {
        return Err(format!("the hook ran as {ran:?}; expected its last runs {expected:?}"));
    }
    Ok(())
}

/// The guest's kernel has no conntrack netlink interface (nothing loads nfnetlink), as a stock
/// OpenWrt lacks kmod-nf-conntrack-netlink: the daemon must say so at its start, and each
/// switch's failed cleanup too, naming the package that brings it, not only the errno.
fn judge_conntrack_advice(console: &str) -> Result<(), String> {
    let daemon = || console.lines().filter(|l| l.starts_with("daemon: "));
    const REMEDY: &str = "install kmod-nf-conntrack-netlink";
    let warned = daemon().any(|l| l.contains("conntrack_cleanup is on, but") && l.contains(REMEDY));
    if !warned {
        return Err("no warning at the start that conntrack cleanup cannot work here".into());
    }
    let unexplained =
        daemon().filter(|l| l.contains("conntrack: cannot")).find(|l| !l.contains(REMEDY));
    match unexplained {
        Some(line) => Err(format!("a failed conntrack cleanup without its remedy: {line}")),
        None => Ok(()),
    }
}

/// What the unpacker must say when it cannot unpack: its memory file is held to 512 bytes by a
/// file size limit, so sizing it fails with EFBIG.
const CANNOT_UNPACK: &str = "wanmon: cannot start: cannot size the memory file (errno 27)";

/// The shipped binary, unable to unpack, must say why and exit 127 (what a shell returns for a
/// command it cannot run): the unpacker's own system calls' failure path, on the MIPS kernel.
/// A plain daemon (`--binary`) has nothing to unpack.
fn judge_unpack_failure(events: &[(f64, Vec<&str>)], executable: &str) -> Result<(), String> {
    if !executable.starts_with("/memfd:") {
        return Ok(());
    }
    let (_, words) = events
        .iter()
        .find(|(_, w)| w.first() == Some(&"CANNOT-UNPACK"))
        .ok_or("the guest never ran the binary where it cannot unpack")?;
    let said = words.get(2..).unwrap_or_default().join(" ");
    match words.get(1) {
        Some(&"127") if said == CANNOT_UNPACK => Ok(()),
        status => Err(format!(
            "unable to unpack, the binary exited {status:?} saying {said:?}; expected 127 and \
             {CANNOT_UNPACK:?}"
        )),
    }
}

/// Milliseconds per `wanmon --version`, from the guest's ten in a row.
fn judge_starts(events: &[(f64, Vec<&str>)]) -> Result<f64, String> {
    let (_, words) = events
        .iter()
        .find(|(_, w)| w.first() == Some(&"STARTS"))
        .ok_or("the guest never timed the starts")?;
    let number = |i: usize| words.get(i).and_then(|n| n.parse::<f64>().ok());
    match (number(1), number(2), number(3)) {
        (Some(count), Some(from), Some(to)) if count >= 1.0 => Ok((to - from) * 1000.0 / count),
        _ => Err(format!("unreadable start times: {}", words.join(" "))),
    }
}

/// The daemon's process must be named `wanmon` (what `ps`, `pidof` and `killall` look for),
/// also when the unpacker executed it from a memory file; returns what it executes.
fn judge_process(events: &[(f64, Vec<&str>)]) -> Result<String, String> {
    let (_, words) = events
        .iter()
        .find(|(_, w)| w.first() == Some(&"PROCESS"))
        .ok_or("the guest never named the daemon's process")?;
    match words.get(1) {
        Some(&"wanmon") => Ok(words[2..].join(" ")),
        name => Err(format!("the daemon's process is named {name:?}, expected \"wanmon\"")),
    }
}

pub fn vm(args: &[String]) -> Result<(), String> {
    let mut binary = root().join("target/dist/mipsel_24kc/wanmon");
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--binary" => binary = iter.next().ok_or("--binary needs a path")?.into(),
            other => {
                return Err(format!(
                    "vm: unknown argument {other:?}; usage: cargo xtask vm [--binary PATH]"
                ));
            }
        }
    }
    if !binary.exists() {
        return Err(format!(
            "{} does not exist: build it with `cargo xtask dist` (or pass --binary)",
            binary.display()
        ));
    }
    guest::need_emulator("qemu-system-mipsel", "qemu-system-mips")?;
    let parts = guest::debian_parts(&guest::cache(), "mipsel", KERNEL_META)?;
    let read = |path: &Path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let (daemon, busybox) = (read(&binary)?, read(&parts.busybox())?);
    let modules = parts.modules_with_dependencies(&["veth"])?;
    let init = init_script(&modules);
    // The router's C library, which the daemon links against, where OpenWrt has it.
    let arch = crate::dist::arch_named("mipsel_24kc")?;
    let libc = read(&crate::dist::router_root(&arch)?.join("lib/libc.so"))?;
    let loader =
        arch.loader.and_then(|l| l.strip_prefix('/')).ok_or("mipsel_24kc has no loader")?;
    let mut entries: Vec<guest::Entry> = vec![
        ("bin", guest::DIRECTORY, &[]),
        ("bin/busybox", guest::EXECUTABLE, &busybox),
        ("bin/wanmon", guest::EXECUTABLE, &daemon),
        ("dev", guest::DIRECTORY, &[]),
        ("etc", guest::DIRECTORY, &[]),
        ("etc/wanmon.json", guest::FILE, CONFIG.as_bytes()),
        ("init", guest::EXECUTABLE, init.as_bytes()),
        ("lib", guest::DIRECTORY, &[]),
        ("lib/libc.so", guest::EXECUTABLE, &libc),
        (loader, guest::SYMLINK, b"libc.so"),
        ("lib/modules", guest::DIRECTORY, &[]),
        ("proc", guest::DIRECTORY, &[]),
        ("run", guest::DIRECTORY, &[]),
        ("sys", guest::DIRECTORY, &[]),
        ("var", guest::DIRECTORY, &[]),
        ("var/run", guest::SYMLINK, b"/run"),
    ];
    let module_paths: Vec<String> =
        modules.iter().map(|(name, _)| format!("lib/modules/{name}.ko")).collect();
    for ((_, bytes), path) in modules.iter().zip(&module_paths) {
        entries.push((path, guest::FILE, bytes));
    }
    let out = root().join("target/vm");
    let initramfs = guest::initramfs(&out, &entries)?;
    let console_path = out.join("console.log");
    println!("booting {} under qemu-system-mipsel (about 2 min)", parts.kernel().display());
    let started = Instant::now();
    let mut qemu = Command::new("qemu-system-mipsel");
    qemu.args(["-M", "malta", "-m", "256", "-nographic", "-no-reboot", "-net", "none"])
        .args(["-vga", "none", "-kernel"])
        .arg(parts.kernel())
        .arg("-initrd")
        .arg(&initramfs)
        .args(["-append", "console=ttyS0 rdinit=/init quiet"]);
    let phases: u32 = PHASES.iter().map(|p| p.lasts_s).sum();
    // Boot, 1,000 status requests and the stop, on an emulated CPU.
    let limit = Duration::from_secs(u64::from(FIRST_PHASE_AFTER_S + phases) + 240);
    let console = guest::boot(qemu, &console_path, limit)?;
    let outcome = judge(&console)
        .map_err(|e| format!("{e}; the guest's console: {}", console_path.display()))?;
    report(&outcome, started);
    Ok(())
}

fn report(outcome: &Outcome, started: Instant) {
    let reactions: Vec<String> =
        outcome.reactions.iter().map(|(phase, took)| format!("{phase} {took:.1} s")).collect();
    println!(
        "mipsel wanmon on a {} kernel: the route where it had to be after {} (limits: outage \
         5 s with dead_after 3 s, recovery 20 s with failback_hold 10 s, cable 2 s, the second \
         recovery 30 s as the hold doubles); no rule left after SIGTERM ({:.0} s in all)",
        outcome.kernel,
        reactions.join(", "),
        started.elapsed().as_secs_f64()
    );
    let memory: Vec<String> = outcome
        .memory
        .iter()
        .map(|m| {
            format!(
                "{} own {} KiB (peak {}) + the shared C library's {} KiB = RSS {} KiB (peak {})",
                m.label,
                m.own(),
                m.own_peak(),
                m.shared_library,
                m.rss,
                m.peak
            )
        })
        .collect();
    println!(
        "footprint: {}; limits {MAX_RSS_KIB} KiB, growth {MAX_GROWTH_KIB} KiB; with every link \
         healthy {:.1} wakeups/s and {:.1} % of the CPU (limit {MAX_IDLE_CPU_PERCENT} %)",
        memory.join(", "),
        outcome.idle.wakeups_per_s,
        outcome.idle.cpu_percent
    );
    println!(
        "process: wanmon, executing {}; `wanmon --version` start to exit {:.0} ms (emulated CPU)",
        outcome.executable, outcome.start_ms
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "[    1.0] boot noise\n\
        WANMON-VM 1.61 KERNEL mips 6.1.0-50-4kc-malta\n\
        WANMON-VM 1.62 STARTS 10 1.62 2.42\n\
        WANMON-VM 2.50 CANNOT-UNPACK 127 wanmon: cannot start: cannot size the memory file (errno 27)\n\
        WANMON-VM 5.16 STARTED\n\
        WANMON-VM 5.29 ROUTE dev wan\n\
        WANMON-VM 10.20 MEMORY settled 1212 1240 600\n\
        WANMON-VM 10.21 PROCESS wanmon /memfd:wanmon (deleted)\n\
        WANMON-VM 20.21 WAKEUPS 43 10 7\n\
        WANMON-VM 20.22 OUTAGE\n\
        WANMON-VM 22.34 ROUTE dev wwan\n\
        WANMON-VM 45.28 RESTORE\n\
        WANMON-VM 56.44 ROUTE dev wan\n\
        WANMON-VM 70.30 PULL\n\
        WANMON-VM 70.40 ROUTE dev wwan\n\
        WANMON-VM 85.30 PLUG\n\
        WANMON-VM 96.60 ROUTE dev wan\n\
        WANMON-VM 109.00 MEMORY after-phases 1280 1308 660\n\
        WANMON-VM 109.01 HOOK wan /bin\n\
        WANMON-VM 109.02 HOOK wan wwan /bin\n\
        WANMON-VM 109.03 HOOK wwan wan /bin\n\
        WANMON-VM 109.04 HOOK wan wwan /bin\n\
        WANMON-VM 109.05 HOOK wwan wan /bin\n\
        WANMON-VM 110.30 MEMORY after-1000-status 1284 1320 660\n\
        WANMON-VM 110.40 STOPPING\n\
        WANMON-VM 112.48 RULES 0\n\
        daemon: wanmon: conntrack_cleanup is on, but the kernel offers no conntrack netlink \
        interface (Protocol not supported (os error 120)); on OpenWrt install \
        kmod-nf-conntrack-netlink\n\
        WANMON-VM 112.51 DONE\n";

    #[test]
    fn every_phase_is_measured() {
        let outcome = judge(GOOD).expect("good run");
        assert_eq!(outcome.kernel, "mips 6.1.0-50-4kc-malta");
        let took: Vec<String> =
            outcome.reactions.iter().map(|(p, t)| format!("{p} {t:.2}")).collect();
        assert_eq!(took, ["OUTAGE 2.12", "RESTORE 11.16", "PULL 0.10", "PLUG 11.30"]);
        let last = &outcome.memory[2];
        assert_eq!((last.label.as_str(), last.rss, last.peak), ("after-1000-status", 1284, 1320));
        assert_eq!((last.own(), last.own_peak()), (624, 660));
        assert_eq!(outcome.idle, Idle { wakeups_per_s: 4.3, cpu_percent: 0.7 });
        assert_eq!(outcome.executable, "/memfd:wanmon (deleted)");
        assert_eq!(outcome.start_ms.round(), 80.0);
    }

    #[test]
    fn an_unpacker_that_fails_quietly_or_otherwise_fails() {
        let killed = GOOD.replace(
            "CANNOT-UNPACK 127 wanmon: cannot start: cannot size the memory file (errno 27)",
            "CANNOT-UNPACK 153",
        );
        assert!(judge(&killed).unwrap_err().contains("exited Some(\"153\")"));
        let unchecked = GOOD.replace("CANNOT-UNPACK", "NOTHING");
        assert!(judge(&unchecked).unwrap_err().contains("never ran the binary where it cannot"));
        let plain = unchecked
            .replace("PROCESS wanmon /memfd:wanmon (deleted)", "PROCESS wanmon /usr/sbin/wanmon");
        assert!(judge(&plain).is_ok(), "a plain daemon has nothing to unpack");
    }

    #[test]
    fn a_hook_missed_or_without_the_daemons_environment_fails() {
        let missed = GOOD.replace("WANMON-VM 109.05 HOOK wwan wan /bin\n", "");
        assert!(judge(&missed).unwrap_err().contains("the hook ran as"));
        // What a corrupt environ gives: no PATH passed on.
        let no_path = GOOD.replace("109.04 HOOK wan wwan /bin", "109.04 HOOK wan wwan");
        assert!(judge(&no_path).unwrap_err().contains("the hook ran as"));
        let never = GOOD.lines().filter(|l| !l.contains(" HOOK ")).collect::<Vec<_>>().join("\n");
        assert!(judge(&never).unwrap_err().contains("the hook ran as []"));
    }

    #[test]
    fn a_conntrack_failure_must_name_the_missing_package() {
        let bare = format!(
            "{GOOD}daemon: wanmon: conntrack: cannot remove the LAN flows through wan: Protocol \
             not supported (os error 120)\n"
        );
        assert!(judge(&bare).unwrap_err().contains("without its remedy"));
        let advised = bare.replace(
            "(os error 120)",
            "(os error 120); on OpenWrt install kmod-nf-conntrack-netlink",
        );
        assert!(judge(&advised).is_ok());
        let unwarned = GOOD.replace("conntrack_cleanup is on, but", "conntrack cleanup");
        assert!(judge(&unwarned).unwrap_err().contains("no warning at the start"));
    }

    #[test]
    fn a_daemon_named_otherwise_fails() {
        let renamed = GOOD.replace("PROCESS wanmon /memfd", "PROCESS 3 /memfd");
        assert!(judge(&renamed).unwrap_err().contains("named Some(\"3\")"));
    }

    #[test]
    fn memory_over_the_limit_or_growing_fails() {
        let heavy = GOOD.replace("after-phases 1280 1308 660", "after-phases 1560 1760 660");
        assert!(judge(&heavy).unwrap_err().contains("peak 1100 KiB, over 1024 KiB"));
        let leaking =
            GOOD.replace("after-1000-status 1284 1320 660", "after-1000-status 1360 1380 660");
        assert!(judge(&leaking).unwrap_err().contains("grew from 612 KiB"));
        // The library's pages coming in as code first runs are not the daemon's growth.
        let library =
            GOOD.replace("after-1000-status 1284 1320 660", "after-1000-status 1400 1420 776");
        assert!(judge(&library).is_ok());
        let old_report = GOOD.replace("settled 1212 1240 600", "settled 612 640");
        assert!(judge(&old_report).unwrap_err().contains("unreadable memory report"));
        let spinning = GOOD.replace("WAKEUPS 43 10 7", "WAKEUPS 43 10 130");
        assert!(judge(&spinning).unwrap_err().contains("13.0 % of the CPU, over 5 %"));
        let unmeasured = GOOD.replace("WANMON-VM 20.21 WAKEUPS 43 10 7\n", "");
        assert!(judge(&unmeasured).unwrap_err().contains("wakeups"));
    }

    #[test]
    fn a_route_that_never_moves_or_rules_left_behind_fail() {
        let stuck = GOOD.replace("WANMON-VM 22.34 ROUTE dev wwan\n", "");
        assert!(judge(&stuck).unwrap_err().contains("the route went"));
        let slow = GOOD.replace("22.34 ROUTE dev wwan", "29.00 ROUTE dev wwan");
        assert!(judge(&slow).unwrap_err().contains("OUTAGE: the route moved to wwan 8.8 s"));
        let slow_cable = GOOD.replace("70.40 ROUTE dev wwan", "73.00 ROUTE dev wwan");
        assert!(judge(&slow_cable).unwrap_err().contains("PULL"));
        // Back on wan only because the daemon stopped: the system's route, not a failback.
        let handed_back = GOOD.replace("96.60 ROUTE dev wan", "110.41 ROUTE dev wan");
        assert!(judge(&handed_back).unwrap_err().contains("the route went"));
        let leftover = GOOD.replace("RULES 0", "RULES 3");
        assert!(judge(&leftover).unwrap_err().contains("rules left"));
        let cut_short = GOOD.replace("WANMON-VM 112.51 DONE\n", "");
        assert!(judge(&cut_short).unwrap_err().contains("did not finish"));
        assert!(judge("kernel panic").unwrap_err().contains("never started"));
        let failed = GOOD.replace("STARTED", "FAILED status --json");
        assert!(judge(&failed).unwrap_err().contains("status --json"));
    }
}
