//! A secret from the configuration (a pre-shared key): zeroed when dropped, and never shown.
//!
//! `Debug` prints `<redacted>` and so does `Serialize`, so that neither a log line nor the
//! effective configuration printed by `check` can carry the key.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// What a secret looks like when printed.
pub const REDACTED: &str = "<redacted>";

/// A secret string from the configuration.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The secret itself: only for handing it to the engine.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shown() {
        let s = Secret::new("hunter2".into());
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{REDACTED}\"")
        );
    }
}
