//! wanmon-sim: proves wanmon's switching decisions from YAML scenarios before anything is deployed.
//!
//! [`scenario`] reads and checks scenario files; [`replay`] runs them in virtual time against the
//! decision core; [`netns`] runs them on real namespaces with the real daemon; [`relay`] impairs real traffic between namespaces; [`record`] is what a run produced and how it met the expectations; [`report`]
//! prints the summary table and draws the SVG timeline; [`calibrate`] measures the relay from
//! outside.

pub mod calibrate;
pub mod namespaces;
pub mod netns;
pub mod record;
pub mod relay;
pub mod replay;
pub mod report;
pub mod scenario;
