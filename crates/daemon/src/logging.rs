//! Logging set-up: `tracing` to standard error, one line per event.
//!
//! The filter is `RUST_LOG` when it is set (for a one-off debugging session), else the
//! configuration's `log_level`, else `info`. Both take `tracing-subscriber`'s `EnvFilter`
//! syntax: a level (`debug`) or directives (`info,ikev1=debug`).
//!
//! Key material is never logged: the configuration types print secrets as `<redacted>`
//! ([`crate::Secret`]) and the engine's key types do the same.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The levels a bare `log_level` may name.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a `log_level` value: a level name, or `EnvFilter` directives (which contain `=`
/// or `,`). A bare word that is no level would silently mean "a target named so", so it is
/// refused.
pub fn check_level(s: &str) -> Result<(), String> {
    let s = s.trim();
    if LEVELS.contains(&s.to_ascii_lowercase().as_str()) {
        return Ok(());
    }
    if !s.contains(['=', ',']) {
        return Err(format!(
            "{s:?} is not a level ({}) nor a filter like \"info,ikev1=debug\"",
            LEVELS.join(", ")
        ));
    }
    EnvFilter::try_new(s)
        .map(|_| ())
        .map_err(|e| format!("{s:?}: {e}"))
}

/// Installs the global subscriber. `level` is the configuration's `log_level`.
pub fn init(level: Option<&str>) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => {
            EnvFilter::try_new(env.trim()).map_err(|e| anyhow::anyhow!("RUST_LOG={env:?}: {e}"))?
        }
        _ => EnvFilter::try_new(level.unwrap_or("info").trim())
            .map_err(|e| anyhow::anyhow!("log_level: {e}"))?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        for ok in ["info", "DEBUG", "off", "info,ikev1=trace", "ikev1=debug"] {
            assert_eq!(check_level(ok), Ok(()), "{ok}");
        }
        for bad in ["infoo", "verbose", ""] {
            assert!(check_level(bad).is_err(), "{bad}");
        }
    }
}
