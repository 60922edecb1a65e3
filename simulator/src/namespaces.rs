//! Network namespaces for the simulator's real runs: commands against them, work inside them,
//! and removal that happens whatever the run did.

use netns_rs::NetNs;
use std::process::Command;

/// Runs a command (`ip`, `sysctl`); the error names it and says what it printed.
pub fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Runs `work` on a thread inside the namespace `name`: sockets and devices it opens live there.
pub fn inside<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let name = name.to_string();
    std::thread::spawn(move || {
        let ns = NetNs::get(&name).map_err(|e| format!("namespace {name}: {e}"))?;
        ns.enter().map_err(|e| format!("cannot enter {name}: {e}"))?;
        Ok(work())
    })
    .join()
    .map_err(|_| "a thread in a namespace panicked".to_string())?
}

/// Brings up one end of a point-to-point link (a TUN device) with its address and its peer's.
/// IPv6 is off on it: no router solicitations through the relay, so only the probes draw from
/// its seeded generator.
pub fn point_to_point(ns: &str, device: &str, mine: &str, peer: &str) -> Result<(), String> {
    sh(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        &format!("net.ipv6.conf.{device}.disable_ipv6=1"),
    ])?;
    sh(&["ip", "-n", ns, "addr", "add", mine, "peer", peer, "dev", device])?;
    sh(&["ip", "-n", ns, "link", "set", device, "up"])
}

/// Namespaces created with loopback up, removed when dropped, also when a run fails half-way.
#[derive(Debug, Default)]
pub struct Namespaces(pub Vec<String>);

impl Namespaces {
    pub fn create(&mut self, name: &str) -> Result<(), String> {
        if let Ok(old) = NetNs::get(name) {
            let _ = old.remove();
        }
        NetNs::new(name).map_err(|e| format!("cannot create namespace {name}: {e}"))?;
        self.0.push(name.to_string());
        sh(&["ip", "-n", name, "link", "set", "lo", "up"])
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            if let Ok(ns) = NetNs::get(name) {
                let _ = ns.remove();
            }
        }
    }
}
