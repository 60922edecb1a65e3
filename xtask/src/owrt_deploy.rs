//! `cargo xtask openwrt`, the deploy part: the package's first install is `cargo xtask deploy`
//! from a LAN host to the harness router over a real OpenSSH server: it asks the router for
//! apk, sends the apk package, the router's own apk 3 installs it, its procd starts the daemon
//! and `wanmon status` answers. The router has no SSH server of its own
//! (no dropbear in the harness): the host's sshd runs in the router's network namespace and
//! confines each session to the router's root (`ChrootDirectory /proc/PID/root` of one of the
//! router's processes), where the host's `scp` (glibc only, as the harness's libraries) and a
//! `bash` that is BusyBox's sh (root's login shell in the host's passwd) are put.

use crate::openwrt::{check, within};
use crate::owrt::{self, exec};
use crate::{root, run};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

const PORT: &str = "2222";

/// sshd for the router, stopped whatever happens.
struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process of the router (its ubusd), whose `/proc/PID/root` is the router's root.
fn router_process() -> Result<String, String> {
    let out = Command::new("ip")
        .args(["netns", "pids", owrt::NETNS])
        .output()
        .map_err(|e| format!("cannot run ip netns pids: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "ubusd")
        })
        .map(str::to_string)
        .ok_or_else(|| format!("no ubusd in namespace {}", owrt::NETNS))
}

fn start_sshd(dir: &Path) -> Result<Sshd, String> {
    let d = dir.display();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {d}: {e}"))?;
    for key in ["host_key", "client_key"] {
        run("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-f", &format!("{d}/{key}")])?;
    }
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
        .map_err(|e| format!("cannot copy the client key: {e}"))?;
    let config = format!(
        "Port {PORT}\nListenAddress 203.0.113.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
         ChrootDirectory /proc/{}/root\nSetEnv PATH=/usr/sbin:/usr/bin:/sbin:/bin\n",
        router_process()?
    );
    std::fs::write(dir.join("sshd_config"), config).map_err(|e| format!("sshd_config: {e}"))?;
    std::fs::write(
        dir.join("ssh_config"),
        format!("StrictHostKeyChecking accept-new\nUserKnownHostsFile {d}/known_hosts\n"),
    )
    .map_err(|e| format!("ssh_config: {e}"))?;
    std::fs::create_dir_all("/run/sshd").map_err(|e| format!("/run/sshd: {e}"))?;
    let log = std::fs::File::create(dir.join("sshd.log")).map_err(|e| format!("sshd.log: {e}"))?;
    let child = Command::new("ip")
        .args(["netns", "exec", owrt::NETNS, "/usr/sbin/sshd", "-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start sshd: {e}"))?;
    let sshd = Sshd(child);
    within(Duration::from_secs(10), "sshd listening", || {
        Ok(std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default().contains("listening"))
    })?;
    Ok(sshd)
}

/// The first install of the package is `cargo xtask deploy` from the LAN host, as a user's: it
/// asks the router which package manager it has and sends the matching package.
pub fn first_install() -> Result<(), String> {
    check(
        "cargo xtask deploy over SSH: apk found on the router, its apk installs the package",
        || {
            let dir: PathBuf = root().join("target/owrt-state/deploy");
            let _sshd = start_sshd(&dir)?;
            // sshd starts the host's login shell for root (bash): BusyBox's sh stands in.
            let bash = dir.join("bash");
            std::fs::write(&bash, "#!/bin/sh\nexec /bin/sh \"$@\"\n").map_err(|e| e.to_string())?;
            run("chmod", &["755", &bash.display().to_string()])?;
            for (file, to) in
                [("/usr/bin/scp".into(), "/usr/bin/"), (bash.display().to_string(), "/bin/")]
            {
                if !owrt::router(&["cp", &file, to])?.status.success() {
                    return Err(format!("router.sh cp {file} failed"));
                }
            }
            let said = run_deploy(&dir)?;
            let package = format!("wanmon-{}.apk", crate::apk::apk_version());
            for shown in ["command -v apk", &package, "wanmon 0.1.0, up"] {
                if !said.contains(shown) {
                    return Err(format!("the deploy did not show {shown:?}:\n{said}"));
                }
            }
            let installed = exec("apk list --installed wanmon")?;
            if !installed.contains(&crate::apk::apk_version()) {
                return Err(format!("apk did not install the deployed package: {installed}"));
            }
            Ok(format!("{}, its status shown over SSH", installed.trim()))
        },
    )
}

/// `cargo xtask deploy --target x86_64` from the LAN host: what it said.
fn run_deploy(dir: &Path) -> Result<String, String> {
    let xtask = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let d = dir.display();
    let out = Command::new("ip")
        .args(["netns", "exec", &format!("{}-lan", owrt::NETNS)])
        .arg(&xtask)
        .args(["deploy", "--host", "root@203.0.113.1", "--port", PORT, "--target", "x86_64"])
        .args(["--identity", &format!("{d}/client_key"), "--ssh-config"])
        .arg(format!("{d}/ssh_config"))
        .env("CARGO_MANIFEST_DIR", root().join("xtask"))
        .output()
        .map_err(|e| format!("cannot run xtask deploy: {e}"))?;
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let sshd = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
        return Err(format!("deploy failed ({}):\n{said}\nsshd:\n{sshd}", out.status));
    }
    Ok(said)
}
