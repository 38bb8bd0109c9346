//! The command line both daemons share, and what each command does.
//!
//! ```text
//! mip6-ha run --config FILE          load, validate, serve the control socket, run until SIGTERM
//! mip6-ha check --config FILE        validate; print the effective configuration (secrets redacted)
//! mip6-ha status [--json] [--config FILE]   ask the running daemon
//! mip6-ha --version | --help
//! ```
//!
//! Exit codes: 0 success; 1 a runtime failure, or `status` finding no daemon; 2 a bad
//! configuration (and, from clap, bad usage). A daemon implements [`Daemon`] and its `main`
//! is `daemon::app::main::<D>()`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::control;
use crate::error::ConfigError;
use crate::load::Loaded;
use crate::logging;
use crate::signal::{ShutdownSignal, shutdown_signal};

/// Exit code of a configuration error.
pub const EXIT_CONFIG: u8 = 2;

/// What a daemon plugs into the shared command line.
pub trait Daemon {
    /// The binary's name (`mip6-ha`).
    const NAME: &'static str;
    /// One line for `--help`.
    const ABOUT: &'static str;
    /// The version for `--version`.
    const VERSION: &'static str;
    /// The control socket when no configuration names one.
    const DEFAULT_CONTROL_SOCKET: &'static str;
    /// The validated configuration.
    type Config;
    /// What `status` reports.
    type Status: Serialize + DeserializeOwned + Clone + Send + 'static;

    /// Loads and validates a configuration file.
    fn load(file: &Path) -> Result<Loaded<Self::Config>, ConfigError>;
    /// The effective configuration as TOML, secrets redacted.
    fn effective_toml(config: &Self::Config) -> String;
    /// Where the control socket goes.
    fn control_socket(config: &Self::Config) -> PathBuf;
    /// The configured log filter.
    fn log_level(config: &Self::Config) -> Option<String>;
    /// The status before anything has happened.
    fn initial_status(config: &Self::Config) -> Self::Status;
    /// The human-readable form of a status (`status` without `--json`).
    fn summary(status: &Self::Status) -> String;
    /// Runs the daemon until `shutdown` resolves and it has torn down.
    fn run(
        config: Self::Config,
        status: Arc<Mutex<Self::Status>>,
        shutdown: ShutdownSignal,
    ) -> impl Future<Output = anyhow::Result<()>>;
}

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon in the foreground until SIGTERM or SIGINT.
    Run {
        /// The configuration file (TOML).
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a configuration file and print the effective configuration (secrets redacted).
    Check {
        /// The configuration file (TOML).
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Ask the running daemon for its state over its control socket.
    Status {
        /// Print the status as one JSON object.
        #[arg(long)]
        json: bool,
        /// Use the control_socket of this configuration file instead of the default path.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// The `main` of a daemon.
pub fn main<D: Daemon>() -> ExitCode {
    let about = format!(
        "{}\n\nControl socket by default: {}",
        D::ABOUT,
        D::DEFAULT_CONTROL_SOCKET
    );
    let matches = Cli::command()
        .name(D::NAME)
        .bin_name(D::NAME)
        .version(D::VERSION)
        .about(about)
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Run { config } => run::<D>(&config),
        Command::Check { config } => check::<D>(&config),
        Command::Status { json, config } => status::<D>(json, config.as_deref()),
    }
}

fn check<D: Daemon>(file: &Path) -> ExitCode {
    match D::load(file) {
        Err(e) => {
            eprintln!("{}: {e}", D::NAME);
            ExitCode::from(EXIT_CONFIG)
        }
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{}: warning: {w}", D::NAME);
            }
            println!(
                "# {}: {} is valid. Effective configuration (defaults filled in, paths absolute, secrets redacted):",
                D::NAME,
                file.display()
            );
            print!("{}", D::effective_toml(&loaded.config));
            ExitCode::SUCCESS
        }
    }
}

fn run<D: Daemon>(file: &Path) -> ExitCode {
    let loaded = match D::load(file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{}: {e}", D::NAME);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = logging::init(D::log_level(&loaded.config).as_deref()) {
        eprintln!("{}: {e:#}", D::NAME);
        return ExitCode::from(EXIT_CONFIG);
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    // One thread: the daemon's tasks hand packets to each other (tunnel, relay, registration)
    // and a hand-off between threads costs a wake-up each time; on one thread it is a task
    // switch (issue 6: relay overhead halved, 3x the bootstraps per second, +30 % raw ESP
    // throughput). Blocking work (the control socket's answers, nft, state files) goes to
    // tokio's blocking pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve::<D>(file, loaded.config)) {
        Ok(()) => {
            tracing::info!("{} stopped", D::NAME);
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{} failed: {e:#}", D::NAME);
            ExitCode::FAILURE
        }
    }
}

async fn serve<D: Daemon>(file: &Path, config: D::Config) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let socket = D::control_socket(&config);
    let status = Arc::new(Mutex::new(D::initial_status(&config)));
    let server = {
        let status = Arc::clone(&status);
        control::serve_control(&socket, move |command| answer(command, &status))?
    };
    tracing::info!(
        version = D::VERSION,
        config = %file.display(),
        control_socket = %socket.display(),
        "{} started",
        D::NAME
    );
    let result = D::run(config, status, shutdown).await;
    server.close();
    result
}

/// The control socket's command table (run off the daemon's thread; see
/// [`control::serve_control`]).
fn answer<S: Serialize + Clone>(command: &str, status: &Mutex<S>) -> Value {
    match command {
        "status" => {
            // Copied under the lock, encoded without it: the daemon updates the status while
            // a large one (thousands of peers) is being encoded.
            let status = status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            serde_json::to_value(&status)
                .unwrap_or_else(|e| json!({"error": format!("cannot encode the status: {e}")}))
        }
        other => json!({"error": format!("unknown command {other:?}; known: status")}),
    }
}

fn status<D: Daemon>(json: bool, file: Option<&Path>) -> ExitCode {
    let socket = match file {
        None => PathBuf::from(D::DEFAULT_CONTROL_SOCKET),
        Some(f) => match control_socket_of(f, D::DEFAULT_CONTROL_SOCKET) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{}: {e}", D::NAME);
                return ExitCode::from(EXIT_CONFIG);
            }
        },
    };
    let value = match control::request(&socket, "status") {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{}: {e}", D::NAME);
            return ExitCode::FAILURE;
        }
    };
    if let Some(e) = value.get("error").and_then(Value::as_str) {
        eprintln!("{}: the daemon answered: {e}", D::NAME);
        return ExitCode::FAILURE;
    }
    let pretty = || serde_json::to_string_pretty(&value).unwrap_or_default();
    if json {
        println!("{}", pretty());
    } else {
        match serde_json::from_value::<D::Status>(value.clone()) {
            Ok(s) => print!("{}", D::summary(&s)),
            // A daemon of another version: show what it said.
            Err(_) => println!("{}", pretty()),
        }
    }
    ExitCode::SUCCESS
}

/// The `control_socket` of a configuration file, read leniently (`status` must work even
/// when the rest of the file would not validate, e.g. an unreadable `psk_file`).
pub fn control_socket_of(file: &Path, default: &str) -> Result<PathBuf, ConfigError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::new(file, "", format!("cannot read the file: {e}")))?;
    let table: toml::Table = crate::load::parse_str(file, &text)?;
    match table.get("control_socket") {
        None => Ok(PathBuf::from(default)),
        Some(toml::Value::String(s)) => {
            let mut p = PathBuf::from(s);
            crate::load::Validator::new(file).resolve(&mut p);
            Ok(p)
        }
        Some(_) => Err(ConfigError::new(
            file,
            "control_socket",
            "must be a path (a string)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_table() {
        let s = Mutex::new(json!({"state": "starting"}));
        assert_eq!(answer("status", &s), json!({"state": "starting"}));
        assert!(
            answer("stop", &s)["error"]
                .as_str()
                .unwrap()
                .contains("stop")
        );
    }

    #[test]
    fn socket_from_config() {
        let dir = std::env::temp_dir().join(format!("daemon-app-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.toml");
        std::fs::write(&f, "control_socket = \"run/x.sock\"\nunknown_key = 1\n").unwrap();
        assert_eq!(
            control_socket_of(&f, "/run/d.sock").unwrap(),
            dir.join("run/x.sock")
        );
        std::fs::write(&f, "[ike]\n").unwrap();
        assert_eq!(
            control_socket_of(&f, "/run/d.sock").unwrap(),
            Path::new("/run/d.sock")
        );
        std::fs::write(&f, "control_socket = 5\n").unwrap();
        assert_eq!(
            control_socket_of(&f, "/d").unwrap_err().key,
            "control_socket"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
