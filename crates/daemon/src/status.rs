//! Status pieces both daemons report over the control socket, and their human-readable form.
//!
//! The field names are a contract (issue 3): scripts read `status --json`. Fields may be
//! added; none may be renamed. SPIs are written as `0x` and eight hex digits, as in logs and
//! packet captures; traffic selectors as `2001:db8:1::1000/128` with `[protocol/port]`
//! appended when limited (strongSwan's notation).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The state of the IKE (phase 1) SA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IkeSaState {
    /// No IKE SA.
    #[default]
    None,
    /// Main Mode under way.
    Connecting,
    /// Established and authenticated.
    Established,
    /// Being replaced by a new one.
    Rekeying,
    /// Being deleted.
    Deleting,
}

impl IkeSaState {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Connecting => "connecting",
            Self::Established => "established",
            Self::Rekeying => "rekeying",
            Self::Deleting => "deleting",
        }
    }
}

/// `ike_sa`: the phase-1 SA.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeSaStatus {
    /// Its state.
    pub state: IkeSaState,
    /// The suite (`aes128-sha256-ecp256`), once negotiated.
    pub proposal: Option<String>,
}

/// One entry of `child_sas`: a pair of ESP SAs from one Quick Mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSaStatus {
    /// `tunnel` or `transport`.
    pub mode: String,
    /// Our selector.
    pub local_ts: String,
    /// The peer's selector.
    pub remote_ts: String,
    /// `esp`, or `esp-in-udp` when encapsulated (RFC 3948).
    pub protocol: String,
    /// Our SPI (the peer sends with it), `0x…`.
    pub spi_in: String,
    /// The peer's SPI (we send with it), `0x…`.
    pub spi_out: String,
    /// The suite (`aes128gcm16`).
    pub proposal: String,
}

impl ChildSaStatus {
    /// The status entry of a negotiated SA pair.
    pub fn from_child(sa: &ikev1::ChildSa) -> Self {
        Self {
            mode: sa.mode.to_string(),
            local_ts: sa.local_ts.to_string(),
            remote_ts: sa.remote_ts.to_string(),
            protocol: if sa.udp_encap { "esp-in-udp" } else { "esp" }.to_owned(),
            spi_in: spi_hex(sa.spi_in),
            spi_out: spi_hex(sa.spi_out),
            proposal: sa.proposal.to_string(),
        }
    }
}

/// An SPI as written in the status: `0x` and eight hex digits.
pub fn spi_hex(spi: u32) -> String {
    format!("0x{spi:08x}")
}

/// Appends the human-readable lines of `sas`, indented by `indent` spaces (like
/// `swanctl --list-sas`).
pub fn write_child_sas(out: &mut String, indent: usize, sas: &[ChildSaStatus]) {
    let pad = " ".repeat(indent);
    if sas.is_empty() {
        let _ = writeln!(out, "{pad}no child SAs");
    }
    for sa in sas {
        let _ = writeln!(
            out,
            "{pad}{} {} {}, SPIs in {} out {}",
            sa.mode, sa.protocol, sa.proposal, sa.spi_in, sa.spi_out
        );
        let _ = writeln!(out, "{pad}  local  {}", sa.local_ts);
        let _ = writeln!(out, "{pad}  remote {}", sa.remote_ts);
    }
}

/// An optional value for the human-readable form: the value or `-`.
pub fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names() {
        let s = IkeSaStatus::default();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"state": "none", "proposal": null})
        );
        assert_eq!(spi_hex(0xc0ffee), "0x00c0ffee");
        for st in [
            IkeSaState::None,
            IkeSaState::Connecting,
            IkeSaState::Established,
            IkeSaState::Rekeying,
            IkeSaState::Deleting,
        ] {
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        }
    }

    #[test]
    fn human_form() {
        let sa = ChildSaStatus {
            mode: "tunnel".into(),
            local_ts: "2001:db8:1::1000/128".into(),
            remote_ts: "::/0".into(),
            protocol: "esp".into(),
            spi_in: spi_hex(1),
            spi_out: spi_hex(2),
            proposal: "aes128gcm16".into(),
        };
        let mut out = String::new();
        write_child_sas(&mut out, 2, &[sa]);
        assert_eq!(
            out,
            "  tunnel esp aes128gcm16, SPIs in 0x00000001 out 0x00000002\n    local  2001:db8:1::1000/128\n    remote ::/0\n"
        );
    }
}
