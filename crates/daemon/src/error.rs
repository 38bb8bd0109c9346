//! The one error type of configuration: which file, which key, what is wrong with it.
//!
//! Every problem found while loading a daemon's TOML file, from a syntax error to a home
//! address outside the home prefix, is reported as a [`ConfigError`] before anything starts
//! (design.md, "Conventions users expect"). Keys are written as a path into the file:
//! `ike.proposals[1]`, `peers[0].home_address`, `home_link.prefix`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration problem: `FILE: KEY: REASON`, or `FILE:LINE:COLUMN: KEY: REASON` when the
/// TOML parser located it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// The key, as a path into the file (`ike.proposals[1]`); empty for the file as a whole.
    pub key: String,
    /// What is wrong.
    pub reason: String,
    /// 1-based line and column, when known.
    pub line_col: Option<(usize, usize)>,
}

impl ConfigError {
    /// An error about `key` in `file`, without a position.
    pub fn new(file: &Path, key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            key: key.into(),
            reason: reason.into(),
            line_col: None,
        }
    }

    /// The same error located at byte `offset` of the file's `text`.
    pub fn at(mut self, text: &str, offset: usize) -> Self {
        self.line_col = Some(line_col(text, offset));
        self
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.line_col {
            write!(f, ":{line}:{col}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let e = ConfigError::new(Path::new("/etc/mn.toml"), "ike.psk", "must not be empty");
        assert_eq!(e.to_string(), "/etc/mn.toml: ike.psk: must not be empty");
        let e = e.at("a = 1\nb = 2\n  ike", 14);
        assert_eq!(
            e.to_string(),
            "/etc/mn.toml:3:3: ike.psk: must not be empty"
        );
        let e = ConfigError::new(Path::new("x.toml"), "", "cannot read: gone");
        assert_eq!(e.to_string(), "x.toml: cannot read: gone");
    }

    #[test]
    fn positions() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("abc\n", 4), (2, 1));
        assert_eq!(line_col("é=1", 2), (1, 2));
        assert_eq!(line_col("x", 99), (1, 2));
    }
}
