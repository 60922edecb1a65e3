//! The decision core: config model, telemetry, score, decision engine, and the controller that
//! owns them. No I/O, no clock reads, no heap allocation per probe: the daemon and the simulator
//! hand it the time and the events, and perform the actions it hands back.

pub mod config;
pub mod controller;
pub mod decision;
pub mod device;
pub mod engine;
mod in_flight;
pub mod limiter;
pub mod limits;
pub mod link;
pub mod link_state;
pub mod name;
pub mod score;
pub mod telemetry;
pub mod time;
pub mod virtual_time;

pub use config::{Config, ConfigError, ForcedLinkDies, LinkConfig, Links};
pub use controller::{Action, Controller, Event, Level};
pub use device::{DeviceFacts, Family, LinkPlan, Problem};
pub use engine::{
    Decision, Engine, Link, LinkEvent, LinkIndex, Mode, ModeError, Probe, Reason, Target,
};
pub use link_state::{DeadCause, LinkState};
pub use name::LinkName;
pub use score::Score;
pub use telemetry::Telemetry;
pub use time::{Instant, Micros};
