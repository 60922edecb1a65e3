//! wanmon-sim: proves wanmon's switching decisions from YAML scenarios before anything is deployed.
//!
//! [`scenario`] reads and checks scenario files; [`replay`] runs them in virtual time against the
//! decision core; [`record`] is what a run produced and how it met the expectations; [`report`]
//! prints the summary table and draws the SVG timeline.

pub mod record;
pub mod replay;
pub mod report;
pub mod scenario;
