//! wanmon: a WAN failover controller for small OpenWrt routers.
//!
//! [`core`] is the sans-IO decision core that both the router daemon and the simulator drive;
//! [`json`] is the small JSON reader and escaper the config and the API share.

pub mod core;
pub mod json;
