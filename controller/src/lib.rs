//! wanmon: a WAN failover controller for small OpenWrt routers.
//!
//! [`core`] is the sans-IO decision core that both the router daemon and the simulator drive;
//! [`daemon`] is the router daemon around it (Linux only); [`config_file`] reads the config file;
//! [`json`] is the small JSON reader and escaper the config and the API share; [`address`]
//! reads and writes IP addresses; [`text`] holds the small scanners they share.

// First, so that its message macros (`text!`, `put!`) serve every module after it.
#[macro_use]
pub mod text;
pub mod address;
pub mod config_file;
pub mod core;
#[cfg(target_os = "linux")]
pub mod daemon;
pub mod json;
#[cfg(unix)]
pub mod protocol;

/// A path as messages show it. wanmon's paths come from its options and are UTF-8 in practice;
/// `Path::display` would bring the lossy conversion's machinery onto the router's flash for the
/// case they are not.
pub fn shown_path(path: &std::path::Path) -> &str {
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    text::utf8(bytes).unwrap_or("(a path that is not UTF-8)")
}
