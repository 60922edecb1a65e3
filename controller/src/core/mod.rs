//! The decision core: config model, telemetry, score and decision engine. No I/O, no clock reads,
//! no heap allocation per probe: the daemon and the simulator hand it the time and the events.

pub mod config;
pub mod engine;
pub mod name;
pub mod score;
pub mod telemetry;
pub mod time;
pub mod virtual_time;

pub use config::{Config, ConfigError, ForcedLinkDies, LinkConfig};
pub use engine::{
    DeadCause, Decision, Engine, Link, LinkEvent, LinkIndex, LinkState, Mode, ModeError, Probe,
    Reason, Target,
};
pub use name::LinkName;
pub use score::Score;
pub use telemetry::Telemetry;
pub use time::{Instant, Micros};
