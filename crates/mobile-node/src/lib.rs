//! `mip6-mn`: the Mobile IPv6 mobile node daemon (library part). From a foreign link it runs
//! IKEv1 with its home agent, obtains a home address (static, DHCPv6 through the tunnel, or Mode Config) and
//! the RFC 3776 SAs (draft-devarapalli-mip6-ikev1-bootstrap).
//!
//! This crate is the operator-facing shell: the configuration ([`config`]), what `status`
//! reports ([`status`]), the bootstrap as a sans-IO state machine ([`bootstrap`]), the files
//! kept across restarts ([`state`]) and the engine runner ([`runtime`]), where the protocol
//! engines are wired to the drivers. The command line itself is shared with `mip6-ha` (`daemon::app`).
//!
//! The binary (`src/main.rs`) only calls [`main`]. The library exists so that other drivers can
//! reuse the sans-IO bootstrap: the `load-gen` capacity benchmark (`tests/src/bin/load-gen.rs`)
//! runs thousands of [`bootstrap::Bootstrap`]s in one process.

pub mod bootstrap;
mod config;
mod registration;
mod runtime;
mod state;
pub mod status;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use daemon::app::Daemon;
use daemon::signal::ShutdownSignal;
use daemon::{ConfigError, Loaded};

/// The mobile node, as the shared command line sees it.
struct MobileNode;

impl Daemon for MobileNode {
    const NAME: &'static str = "mip6-mn";
    const ABOUT: &'static str =
        "Mobile IPv6 mobile node: bootstraps a home address and the RFC 3776 SAs over IKEv1";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DEFAULT_CONTROL_SOCKET: &'static str = config::DEFAULT_CONTROL_SOCKET;
    type Config = config::Config;
    type Status = status::Status;

    fn load(file: &Path) -> Result<Loaded<config::Config>, ConfigError> {
        config::Config::load(file)
    }

    fn effective_toml(config: &config::Config) -> String {
        daemon::load::to_toml(&config.file)
    }

    fn control_socket(config: &config::Config) -> PathBuf {
        config.file.control_socket.clone()
    }

    fn log_level(config: &config::Config) -> Option<String> {
        config.file.log_level.clone()
    }

    fn initial_status(config: &config::Config) -> status::Status {
        status::Status::new(match &config.home_agent {
            config::HomeAgent::Address(a) => Some(*a),
            config::HomeAgent::Name(_) => None,
        })
    }

    fn summary(status: &status::Status) -> String {
        status.summary()
    }

    async fn run(
        config: config::Config,
        status: Arc<Mutex<status::Status>>,
        shutdown: ShutdownSignal,
    ) -> anyhow::Result<()> {
        runtime::run_daemon(config, status, shutdown).await
    }
}

/// The command line of `mip6-mn` (`run`, `check`, `status`).
pub fn main() -> ExitCode {
    daemon::app::main::<MobileNode>()
}
