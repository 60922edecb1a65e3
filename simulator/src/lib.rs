//! wanmon-sim: proves wanmon's switching decisions from YAML scenarios before anything is deployed.
//!
//! [`scenario`] reads and checks scenario files about links in a [`condition`]; [`replay`] runs them in virtual time against the
//! decision core; [`netns`] runs them on real namespaces with the real daemon, over links that
//! [`impair`] builds (kernel netem, or the userspace [`relay`]) in [`namespaces`]; [`record`] is
//! what a run produced and how it met the expectations; [`report`] prints the summary table and
//! draws the SVG timeline; [`calibrate`] measures an impaired link from outside; [`judge`] runs
//! scenario families over many seeds against wanmon and the [`peers`]' models, side by side.

pub mod calibrate;
pub mod condition;
pub mod impair;
pub mod judge;
pub mod namespaces;
pub mod netns;
pub mod network;
pub mod peers;
pub mod record;
pub mod relay;
pub mod replay;
pub mod report;
pub mod scenario;
