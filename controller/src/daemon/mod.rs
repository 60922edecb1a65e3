//! The router daemon: probes, routes, events, the control socket and the web page, around the
//! decision core. std and libc only, one poll loop, no threads.

pub mod clients;
pub mod conntrack;
pub mod control;
pub mod division;
pub mod http;
pub mod icmp;
pub mod kernel;
pub mod netlink;
pub mod plumbing;
pub mod probes;
pub mod run;
pub mod status;
pub mod stream;
pub mod system;
