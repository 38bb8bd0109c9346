//! What the two daemons, `mip6-ha` and `mip6-mn`, share: the operator-facing shell around the
//! protocol engines.
//!
//! - [`load`] and [`error`]: TOML configuration files read into typed structures
//!   (unknown keys refused), every problem reported as `FILE: KEY: REASON`;
//! - [`ike`]: the `[ike]` section and its conversion into `ikev1::Config` pieces (identities,
//!   proposals, pre-shared keys and certificates, read at load time);
//! - [`addr`] and [`secret`]: value types of the configuration (prefixes, ranges, keys);
//! - [`control`]: the Unix control socket (`status` asks the running daemon);
//! - [`status`]: status pieces both daemons report;
//! - [`logging`] and [`signal`]: `tracing` set-up and SIGTERM/SIGINT;
//! - [`app`]: the shared command line (`run`, `check`, `status`) over the [`app::Daemon`]
//!   trait each binary implements.
//!
//! Protocol logic lives in the engine crates; this crate holds none (design.md).

pub mod addr;
pub mod app;
pub mod control;
pub mod error;
pub mod ike;
pub mod load;
pub mod logging;
pub mod secret;
pub mod signal;
pub mod status;

pub use error::ConfigError;
pub use load::{Loaded, Validator};
pub use secret::Secret;
