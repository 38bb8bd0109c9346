//! Status codes of the Binding Acknowledgement (RFC 6275 §6.1.8) and the Binding Error
//! (RFC 6275 §6.1.9), as open registries: values this crate has no name for round-trip and
//! print as numbers.
//!
//! Binding Acknowledgement: values below 128 mean the Binding Update was accepted, 128 and above
//! that it was rejected (RFC 6275 §6.1.8). Values from 140 on were assigned by later RFCs
//! (NEMO, Proxy Mobile IPv6, …) and are not named here.

use std::fmt;

/// The Status field of a Binding Acknowledgement (RFC 6275 §6.1.8).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BaStatus(pub u8);

impl BaStatus {
    /// 0: Binding Update accepted.
    pub const ACCEPTED: Self = Self(0);
    /// 1: Accepted but prefix discovery necessary.
    pub const ACCEPTED_PREFIX_DISCOVERY: Self = Self(1);
    /// 128: Reason unspecified.
    pub const REASON_UNSPECIFIED: Self = Self(128);
    /// 129: Administratively prohibited.
    pub const ADMINISTRATIVELY_PROHIBITED: Self = Self(129);
    /// 130: Insufficient resources.
    pub const INSUFFICIENT_RESOURCES: Self = Self(130);
    /// 131: Home registration not supported (the receiver is not a home agent, §10.3.1).
    pub const HOME_REGISTRATION_NOT_SUPPORTED: Self = Self(131);
    /// 132: Not home subnet.
    pub const NOT_HOME_SUBNET: Self = Self(132);
    /// 133: Not home agent for this mobile node.
    pub const NOT_HOME_AGENT: Self = Self(133);
    /// 134: Duplicate Address Detection failed.
    pub const DAD_FAILED: Self = Self(134);
    /// 135: Sequence number out of window (§9.5.1: the BA carries the last accepted sequence).
    pub const SEQUENCE_OUT_OF_WINDOW: Self = Self(135);
    /// 136: Expired home nonce index.
    pub const EXPIRED_HOME_NONCE_INDEX: Self = Self(136);
    /// 137: Expired care-of nonce index.
    pub const EXPIRED_CARE_OF_NONCE_INDEX: Self = Self(137);
    /// 138: Expired nonces.
    pub const EXPIRED_NONCES: Self = Self(138);
    /// 139: Registration type change disallowed (§9.5.1).
    pub const REGISTRATION_TYPE_CHANGE_DISALLOWED: Self = Self(139);

    /// Status below 128: the Binding Update was accepted.
    pub fn is_accepted(self) -> bool {
        self.0 < 128
    }

    /// The name RFC 6275 §6.1.8 gives this value, if it is one of its values.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "Binding Update accepted",
            1 => "Accepted but prefix discovery necessary",
            128 => "Reason unspecified",
            129 => "Administratively prohibited",
            130 => "Insufficient resources",
            131 => "Home registration not supported",
            132 => "Not home subnet",
            133 => "Not home agent for this mobile node",
            134 => "Duplicate Address Detection failed",
            135 => "Sequence number out of window",
            136 => "Expired home nonce index",
            137 => "Expired care-of nonce index",
            138 => "Expired nonces",
            139 => "Registration type change disallowed",
            _ => return None,
        })
    }
}

impl fmt::Debug for BaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "BaStatus({} {n:?})", self.0),
            None => write!(f, "BaStatus({})", self.0),
        }
    }
}

impl fmt::Display for BaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{} ({n})", self.0),
            None if self.is_accepted() => write!(f, "{} (accepted, unknown status)", self.0),
            None => write!(f, "{} (rejected, unknown status)", self.0),
        }
    }
}

/// The Status field of a Binding Error (RFC 6275 §6.1.9).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BeStatus(pub u8);

impl BeStatus {
    /// 1: Unknown binding for Home Address destination option (§9.3.1).
    pub const UNKNOWN_BINDING_FOR_HAO: Self = Self(1);
    /// 2: Unrecognized MH Type value (§9.2).
    pub const UNRECOGNIZED_MH_TYPE: Self = Self(2);

    /// The name RFC 6275 §6.1.9 gives this value.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "Unknown binding for Home Address destination option",
            2 => "Unrecognized MH Type value",
            _ => return None,
        })
    }
}

impl fmt::Debug for BeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "BeStatus({} {n:?})", self.0),
            None => write!(f, "BeStatus({})", self.0),
        }
    }
}

impl fmt::Display for BeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{} ({n})", self.0),
            None => write!(f, "{} (unknown status)", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_display() {
        assert!(BaStatus::ACCEPTED.is_accepted());
        assert!(BaStatus(127).is_accepted());
        assert!(!BaStatus::REASON_UNSPECIFIED.is_accepted());
        assert_eq!(
            BaStatus::SEQUENCE_OUT_OF_WINDOW.to_string(),
            "135 (Sequence number out of window)"
        );
        assert_eq!(
            format!("{:?}", BaStatus::NOT_HOME_AGENT),
            "BaStatus(133 \"Not home agent for this mobile node\")"
        );
        assert_eq!(BaStatus(200).to_string(), "200 (rejected, unknown status)");
        assert_eq!(BaStatus(5).to_string(), "5 (accepted, unknown status)");
        assert_eq!(format!("{:?}", BaStatus(200)), "BaStatus(200)");
        for v in 0..=255u8 {
            let s = BaStatus(v);
            assert_eq!(s.name().is_some(), matches!(v, 0 | 1 | 128..=139));
        }
        assert_eq!(
            BeStatus::UNRECOGNIZED_MH_TYPE.to_string(),
            "2 (Unrecognized MH Type value)"
        );
        assert_eq!(BeStatus(9).to_string(), "9 (unknown status)");
        assert_eq!(
            format!("{:?}", BeStatus::UNKNOWN_BINDING_FOR_HAO),
            "BeStatus(1 \"Unknown binding for Home Address destination option\")"
        );
    }
}
