//! `mip6-ha`: the Mobile IPv6 home agent daemon. It answers mobile nodes' IKEv1, gives each
//! a home address (static, DHCPv6 relayed to the operator's server, or Mode Config) and the
//! RFC 3776 SAs, and forwards their traffic to and from the home link
//! (draft-devarapalli-mip6-ikev1-bootstrap).
//!
//! This crate is the operator-facing shell: the configuration ([`config`]), what `status`
//! reports ([`status`]) and the engine runner ([`runtime`]), where the protocol engines are
//! wired to the drivers. The command line itself is shared with `mip6-mn` (`daemon::app`).

mod config;
mod dhcp;
mod dns;
mod home_addresses;
mod pool;
mod registration;
mod runtime;
mod status;
mod xauth;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use daemon::app::Daemon;
use daemon::signal::ShutdownSignal;
use daemon::{ConfigError, Loaded};

/// The home agent, as the shared command line sees it.
struct HomeAgent;

impl Daemon for HomeAgent {
    const NAME: &'static str = "mip6-ha";
    const ABOUT: &'static str = "Mobile IPv6 home agent: serves home addresses and the RFC 3776 SAs to mobile nodes over IKEv1";
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

    fn initial_status(_config: &config::Config) -> status::Status {
        status::Status::default()
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

fn main() -> ExitCode {
    daemon::app::main::<HomeAgent>()
}
