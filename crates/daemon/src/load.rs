//! Reading a TOML configuration file into a typed structure, and writing one back.
//!
//! The structures use `#[serde(deny_unknown_fields)]`, so a mistyped key is an error that
//! names it. Deserialization goes through `serde_path_to_error`, so every error carries the
//! path of the key (`ike.proposals[1]`) as well as the line and column TOML gives.
//! [`Validator`] carries the file name into the semantic checks that follow, and collects
//! warnings (the daemon logs them once logging is up; `check` prints them).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ConfigError;

/// Reads and deserializes `file`. Returns the value and the text (for positions).
pub fn parse_file<T: DeserializeOwned>(file: &Path) -> Result<(T, String), ConfigError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::new(file, "", format!("cannot read the file: {e}")))?;
    let value = parse_str(file, &text)?;
    Ok((value, text))
}

/// Deserializes `text`, which came from `file`.
pub fn parse_str<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| located(file, text, "", &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let key = key_of(&path, inner.message());
        located(file, text, &key, &inner)
    })
}

fn located(file: &Path, text: &str, key: &str, e: &toml::de::Error) -> ConfigError {
    let reason = e.message().trim().replace('\n', "; ");
    let err = ConfigError::new(file, key, reason);
    match e.span() {
        Some(span) => err.at(text, span.start),
        None => err,
    }
}

/// The key an error is about. For "missing field `x`" (and, depending on the format, "unknown
/// field `x`") the path is the enclosing table's; the key is that path plus `x`.
fn key_of(path: &str, message: &str) -> String {
    let path = if path == "." { "" } else { path };
    let field = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    match field {
        Some(f) if path.is_empty() => f.to_owned(),
        Some(f) if path != f && !path.ends_with(&format!(".{f}")) => format!("{path}.{f}"),
        _ => path.to_owned(),
    }
}

/// The byte offset of the value of `key` (`ike.proposals[1]`, `peers[0].psk`) in `text`.
pub fn locate(text: &str, key: &str) -> Option<usize> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut found: Option<&toml::Spanned<toml::de::DeValue<'_>>> = None;
    for segment in key.split('.') {
        if let Some(v) = found {
            table = v.get_ref().as_table()?;
        }
        let (name, indices) = segment.split_once('[').unwrap_or((segment, ""));
        let mut value = table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == name)
            .map(|(_, v)| v)?;
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            let i: usize = index.strip_suffix(']')?.parse().ok()?;
            value = value.get_ref().as_array()?.get(i)?;
        }
        found = Some(value);
    }
    found.map(|v| v.span().start)
}

/// Serializes a configuration as TOML (what `check` prints).
pub fn to_toml<T: Serialize>(value: &T) -> String {
    toml::to_string(value).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
}

/// The context of semantic validation: the file, its directory (relative paths in the
/// configuration are relative to it), and the warnings found so far.
#[derive(Debug)]
pub struct Validator {
    file: PathBuf,
    base: PathBuf,
    text: Option<String>,
    warnings: Vec<String>,
}

impl Validator {
    /// A validator for `file`.
    pub fn new(file: &Path) -> Self {
        let base = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_owned);
        let base = std::path::absolute(&base).unwrap_or(base);
        Self {
            file: file.to_owned(),
            base,
            text: None,
            warnings: Vec::new(),
        }
    }

    /// The same validator, with the file's text: errors then carry the line and column of
    /// the key's value.
    pub fn with_text(mut self, text: &str) -> Self {
        self.text = Some(text.to_owned());
        self
    }

    /// The configuration file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// An error about `key`, located in the file when the key is there.
    pub fn error(&self, key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        let key = key.into();
        let offset = self
            .text
            .as_deref()
            .and_then(|t| Some((t, locate(t, &key)?)));
        let err = ConfigError::new(&self.file, key, reason);
        match offset {
            Some((text, offset)) => err.at(text, offset),
            None => err,
        }
    }

    /// Records a warning about `key`.
    pub fn warn(&mut self, key: &str, reason: impl AsRef<str>) {
        self.warnings.push(format!(
            "{}: {key}: {}",
            self.file.display(),
            reason.as_ref()
        ));
    }

    /// The warnings recorded.
    pub fn into_warnings(self) -> Vec<String> {
        self.warnings
    }

    /// Makes `path` absolute, relative to the configuration file's directory.
    pub fn resolve(&self, path: &mut PathBuf) {
        if path.is_relative() && !path.as_os_str().is_empty() {
            *path = self.base.join(&*path);
        }
    }
}

/// A validated configuration and the warnings found while loading it.
#[derive(Debug)]
pub struct Loaded<C> {
    /// The configuration.
    pub config: C,
    /// Warnings (`FILE: KEY: REASON`), for the log or for `check`.
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        #[serde(default)]
        list: Vec<u16>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        top: u32,
        inner: Inner,
    }

    fn err(text: &str) -> ConfigError {
        parse_str::<Outer>(Path::new("t.toml"), text).unwrap_err()
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err("top = 1\n[inner]\nname = \"a\"\nnmae = \"b\"\n");
        assert_eq!(e.key, "inner.nmae");
        assert!(e.reason.contains("unknown field"), "{e}");
        assert_eq!(e.line_col.map(|p| p.0), Some(4), "{e}");
    }

    #[test]
    fn missing_key_is_named() {
        let e = err("top = 1\n[inner]\n");
        assert_eq!(e.key, "inner.name");
        let e = err("[inner]\nname = \"a\"\n");
        assert_eq!(e.key, "top");
    }

    #[test]
    fn wrong_type_is_named_with_index() {
        let e = err("top = 1\n[inner]\nname = \"a\"\nlist = [1, \"x\"]\n");
        assert_eq!(e.key, "inner.list[1]", "{e}");
        assert!(e.line_col.is_some());
    }

    #[test]
    fn syntax_error_has_position() {
        let e = err("top = \n");
        assert_eq!(e.key, "");
        assert_eq!(e.line_col.map(|p| p.0), Some(1), "{e}");
    }

    #[test]
    fn missing_file() {
        let e = parse_file::<Outer>(Path::new("/nonexistent/x.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/x.toml: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn keys_are_located() {
        let text =
            "top = 1\n[inner]\nname = \"a\"\nlist = [1, 22]\n[[peers]]\nx = 1\n[[peers]]\nx = 2\n";
        let at = |key| locate(text, key).map(|o| crate::error::line_col(text, o));
        assert_eq!(at("top"), Some((1, 7)));
        assert_eq!(at("inner.name"), Some((3, 8)));
        assert_eq!(at("inner.list[1]"), Some((4, 12)));
        assert_eq!(at("peers[1].x"), Some((8, 5)));
        assert_eq!(at("peers[2].x"), None);
        assert_eq!(at("inner.missing"), None);
        let v = Validator::new(Path::new("t.toml")).with_text(text);
        assert_eq!(
            v.error("inner.list[1]", "too big").to_string(),
            "t.toml:4:12: inner.list[1]: too big"
        );
        assert_eq!(
            v.error("nowhere", "gone").to_string(),
            "t.toml: nowhere: gone"
        );
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let v = Validator::new(Path::new("/etc/mip6/mn.toml"));
        let mut p = PathBuf::from("psk.txt");
        v.resolve(&mut p);
        assert_eq!(p, Path::new("/etc/mip6/psk.txt"));
        let mut p = PathBuf::from("/abs");
        v.resolve(&mut p);
        assert_eq!(p, Path::new("/abs"));
    }
}
