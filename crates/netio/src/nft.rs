//! A private nftables table (`nft`, of Debian's `nftables`) the daemon owns: created at start
//! (a leftover of an earlier run is replaced), deleted at exit.
//!
//! The home agent and the mobile node read Mobile IPv6 packets the kernel cannot process (a
//! Home Address option, RFC 6275 §6.3; a type 2 Routing header, §6.4) with a packet socket;
//! the kernel still answers those packets with ICMPv6 Parameter Problem (RFC 4443 §3.4),
//! telling the peer that its Binding Update or Acknowledgement was not understood. A rule in
//! the output hook drops those errors.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// The `nft` binary.
pub const NFT: &str = "/usr/sbin/nft";

/// An nftables table of family `ip6` owned by this process.
#[derive(Debug)]
pub struct NftTable {
    name: String,
}

fn nft(script: &str) -> Result<(), String> {
    let mut cmd = Command::new(NFT);
    // The daemon may be bootstrapping meanwhile: nft gets only the CPU nobody else wants.
    crate::sys::idle_priority(&mut cmd);
    let mut child = cmd
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{NFT}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("{NFT}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{NFT}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{NFT} -f -: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NftTable {
    /// Creates table `ip6 <name>` with one `output` chain (filter hook, policy accept) holding
    /// `rules` (nft rule syntax, one per entry), replacing a table of that name.
    pub fn create(name: &str, rules: &[String]) -> Result<Self, String> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid nftables table name {name:?}"));
        }
        let mut script = format!(
            "table ip6 {name}\ndelete table ip6 {name}\ntable ip6 {name} {{\n  chain output {{\n    type filter hook output priority 0; policy accept;\n"
        );
        for r in rules {
            script.push_str("    ");
            script.push_str(r);
            script.push('\n');
        }
        script.push_str("  }\n}\n");
        nft(&script)?;
        Ok(Self {
            name: name.to_owned(),
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        if let Err(e) = nft(&format!("delete table ip6 {}\n", self.name)) {
            tracing::warn!(table = %self.name, error = %e, "removing the nftables table");
        }
    }
}
