//! What the simulator's root-only tests share: the root check and the daemon build they run.
// Each test binary includes this module and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Fails loudly when not root: these tests must never pass by not running.
pub fn require_root() {
    let uid = String::from_utf8(Command::new("id").arg("-u").output().expect("id").stdout)
        .unwrap_or_default();
    assert_eq!(uid.trim(), "0", "needs root for network namespaces: run `sudo cargo xtask ci`");
}

/// The daemon under test: WANMON_BINARY if set, else this workspace's debug build, built now.
pub fn daemon() -> PathBuf {
    if let Some(binary) = std::env::var_os("WANMON_BINARY").filter(|b| !b.is_empty()) {
        return binary.into();
    }
    let built = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "wanmon"])
        .status()
        .expect("cargo runs");
    assert!(built.success(), "cannot build the daemon");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from);
    target.join("debug/wanmon")
}
