//! wanmon: a WAN failover controller for small OpenWrt routers.
//!
//! [`core`] is the sans-IO decision core that both the router daemon and the simulator drive;
//! [`daemon`] is the router daemon around it (Linux only); [`config_file`] reads the config file;
//! [`json`] is the small JSON reader and escaper the config and the API share.

pub mod config_file;
pub mod core;
#[cfg(target_os = "linux")]
pub mod daemon;
pub mod json;
#[cfg(unix)]
pub mod protocol;
