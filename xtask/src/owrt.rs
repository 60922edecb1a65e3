//! OpenWrt's own userland (`../shared/openwrt-userland/`: netifd, procd, ubusd, uci, firewall4,
//! rpcd, uhttpd, apk 3) built once into `target/owrt-state/` and used two ways: its `apk` makes
//! the apk v3 packages (`apk mkpkg`, as OpenWrt's build does), and its router in namespaces is
//! where the packages are installed, started and removed (`cargo xtask openwrt`).

use crate::root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the harness lives; read only.
pub fn harness_dir() -> PathBuf {
    root().join("../shared/openwrt-userland")
}

/// Where its build and its router's state go.
pub fn state_dir() -> PathBuf {
    root().join("target/owrt-state")
}

/// Network namespaces of our router, apart from anyone else's harness router.
pub const NETNS: &str = "wanmon-owrt";

/// The harness built (once: its rootfs is reused while the sources are the same).
pub fn ensure_built() -> Result<(), String> {
    let harness = harness_dir();
    if !harness.join("build.sh").exists() {
        return Err(format!(
            "the OpenWrt userland harness is not at {} (it is always there in CI)",
            harness.display()
        ));
    }
    let state = state_dir();
    let stamp = state.join("built-from");
    let sources = harness_revision(&harness)?;
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == sources)
        && state.join("rootfs/usr/bin/apk").exists()
    {
        return Ok(());
    }
    crate::install_listed(crate::USERLAND_PACKAGES)?;
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state)
        .map_err(|e| format!("cannot create {}: {e}", state.display()))?;
    println!(
        "building OpenWrt's userland from {} into {} (about a minute)",
        harness.display(),
        state.display()
    );
    let log = state.join("../owrt-build.log");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("'{}/build.sh' > '{}' 2>&1", harness.display(), log.display()))
        .env("OWRT_STATE", &state)
        .env("NICE", "10")
        .status()
        .map_err(|e| format!("cannot run build.sh: {e}"))?;
    if !status.success() {
        return Err(format!("the harness build failed; its log: {}", log.display()));
    }
    std::fs::write(&stamp, sources).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}

/// The sources' revisions: a rebuild when any changes.
fn harness_revision(harness: &Path) -> Result<String, String> {
    let src = harness.join("src");
    let mut commits: Vec<String> = std::fs::read_dir(&src)
        .map_err(|e| format!("cannot read {}: {e}", src.display()))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".commit"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    commits.sort();
    Ok(commits.join(""))
}

/// The harness's apk 3, run on the host with the harness's libraries.
pub fn apk(args: &[&str]) -> Result<Output, String> {
    let rootfs = state_dir().join("rootfs");
    let libs = format!("{0}/usr/lib:{0}/lib", rootfs.display());
    Command::new(rootfs.join("usr/bin/apk"))
        .args(args)
        .env("LD_LIBRARY_PATH", libs)
        .env("SOURCE_DATE_EPOCH", "0")
        .output()
        .map_err(|e| format!("cannot run the harness's apk: {e}"))
}

/// `router.sh` of the harness with our state and namespaces.
pub fn router(args: &[&str]) -> Result<Output, String> {
    Command::new(harness_dir().join("router.sh"))
        .args(args)
        .env("OWRT_STATE", state_dir())
        .env("OWRT_NETNS", NETNS)
        .output()
        .map_err(|e| format!("cannot run router.sh: {e}"))
}

/// A shell command inside the running router: its stdout, or an error with everything it said.
pub fn exec(command: &str) -> Result<String, String> {
    let out = router(&["exec", command])?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "`{command}` in the router failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
