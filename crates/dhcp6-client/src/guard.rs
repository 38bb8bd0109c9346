//! A check in front of dhcproto's decoder for untrusted DHCPv6 client/server messages (RFC 8415
//! §8 message format, §21.1 option format). The client runs it on everything it decodes, the
//! relay (`crates/dhcp6-relay`) on the Releases, Declines and Replies it reads.
//!
//! dhcproto 0.15.0 trusts option lengths in three ways that hostile input breaks (found by the
//! `dhcp6_client` fuzz target):
//! * Status Code, Vendor Class and Vendor-specific Information subtract their fixed part from
//!   the option length unchecked (`len - 2`, `len - 4`, after reading that part from the
//!   enclosing buffer): a shorter option panics on the overflow in builds with overflow checks
//!   (debug, tests, fuzzing);
//! * it decodes IA_NA, IA_TA, IAADDR, IA_PD, IAPREFIX, Relay Message and Vendor-specific
//!   Information recursively with no depth limit: a 64 KiB message of IA_NAs nested in each
//!   other overflows a 2 MiB thread stack (tokio's default) in release builds, which aborts the
//!   process;
//! * Preference, Elapsed Time, Server Unicast, Rapid Commit, Reconfigure Message and Reconfigure
//!   Accept are read with their fixed size whatever the length field says, so a wrong length
//!   shifts the rest of the chain (and would hide nesting from a check that follows lengths).
//!
//! [`check_message`] walks the option tree by the length fields and refuses all three, so that
//! what dhcproto decodes afterwards is framed the same way and at most [`MAX_DEPTH`] deep.
//! Legitimate messages nest three deep (IA_NA ⊃ IAADDR ⊃ Status Code). Contents of a
//! Vendor-specific Information option are checked like options too, since dhcproto decodes them
//! as such.
//!
//! dhcproto keeps the Client FQDN option (RFC 4704, code 39) as an unknown option, so it
//! cannot hurt dhcproto; the guard still refuses one without its flags octet or whose name is
//! not a valid uncompressed wire-format name of at most 255 octets ([`crate::fqdn::check`]),
//! so that what the client reports from it (flags, name) is well-formed.

/// Deepest option nesting accepted (top-level options are at depth 1).
pub const MAX_DEPTH: usize = 4;

/// Why a message was refused before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// Shorter than the 4-octet message header or an option header.
    #[error("truncated message or option header")]
    Truncated,
    /// An option's length runs past its enclosing buffer.
    #[error("option {code} length {len} overruns its container")]
    Overrun {
        /// Option code.
        code: u16,
        /// Declared length.
        len: usize,
    },
    /// An option length dhcproto cannot decode safely or frames differently.
    #[error("option {code} has invalid length {len}")]
    BadLength {
        /// Option code.
        code: u16,
        /// Declared length.
        len: usize,
    },
    /// Options nested deeper than [`MAX_DEPTH`].
    #[error("options nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A Client FQDN option (RFC 4704 §4) whose domain name is malformed.
    #[error("Client FQDN option: {0}")]
    ClientFqdn(crate::fqdn::FqdnError),
}

/// The fixed part before the encapsulated options, for the options dhcproto decodes
/// recursively: IA_NA / IA_PD (IAID, T1, T2), IA_TA (IAID), IAADDR (address, lifetimes),
/// Relay Message (dhcproto reads a relay header), Vendor-specific Information (enterprise
/// number), IAPREFIX (lifetimes, prefix length, prefix).
fn encapsulation_header(code: u16) -> Option<usize> {
    match code {
        3 | 25 => Some(12),
        4 | 17 => Some(4),
        5 => Some(24),
        9 => Some(34),
        26 => Some(25),
        _ => None,
    }
}

/// The length dhcproto reads for the options it frames by type instead of by length:
/// Preference, Elapsed Time, Server Unicast, Rapid Commit, Reconfigure Message, Reconfigure
/// Accept (RFC 8415 §21.8, §21.9, §21.12, §21.14, §21.19, §21.20 give the same lengths).
fn fixed_length(code: u16) -> Option<usize> {
    match code {
        7 | 19 => Some(1),
        8 => Some(2),
        12 => Some(16),
        14 | 20 => Some(0),
        _ => None,
    }
}

/// The shortest length dhcproto decodes without an unchecked subtraction: Status Code
/// (§21.13, status-code), Vendor Class (§21.16, enterprise number); and Client FQDN's flags
/// octet (RFC 4704 §4).
fn minimum_length(code: u16) -> usize {
    match code {
        13 => 2,
        16 => 4,
        crate::fqdn::OPTION_CLIENT_FQDN => 1,
        _ => 0,
    }
}

/// Checks a whole client/server message (msg-type, transaction-id, options).
pub fn check_message(data: &[u8]) -> Result<(), GuardError> {
    let opts = data.get(4..).ok_or(GuardError::Truncated)?;
    check_options(opts, 1)
}

/// Checks the options in `buf`, which sit at nesting level `depth`.
fn check_options(mut buf: &[u8], depth: usize) -> Result<(), GuardError> {
    while !buf.is_empty() {
        if depth > MAX_DEPTH {
            return Err(GuardError::TooDeep);
        }
        let [c0, c1, l0, l1, rest @ ..] = buf else {
            return Err(GuardError::Truncated);
        };
        let code = u16::from_be_bytes([*c0, *c1]);
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        if len > rest.len() {
            return Err(GuardError::Overrun { code, len });
        }
        let (body, next) = rest.split_at(len);
        let bad = GuardError::BadLength { code, len };
        if fixed_length(code).is_some_and(|n| n != len) || len < minimum_length(code) {
            return Err(bad);
        }
        if code == crate::fqdn::OPTION_CLIENT_FQDN {
            crate::fqdn::check(body).map_err(GuardError::ClientFqdn)?;
        }
        if let Some(h) = encapsulation_header(code) {
            let inner = body.get(h..).ok_or(bad)?;
            check_options(inner, depth + 1)?;
        }
        buf = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(code: u16, body: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn msg(opts: &[u8]) -> Vec<u8> {
        [&[7u8, 1, 2, 3][..], opts].concat()
    }

    /// IA_NA ⊃ IAADDR ⊃ Status Code, next to Preference and Rapid Commit: accepted.
    #[test]
    fn reply_nested_three_deep_is_accepted() {
        let status = opt(13, &[0, 0, b'o', b'k']);
        let iaaddr = opt(5, &[[0u8; 24].as_slice(), &status].concat());
        let iana = opt(3, &[[0u8; 12].as_slice(), &iaaddr].concat());
        let m = msg(&[
            opt(1, &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1]),
            iana,
            opt(7, &[255]),
            opt(14, &[]),
        ]
        .concat());
        assert_eq!(check_message(&m), Ok(()));
        assert_eq!(check_message(&[7, 1, 2, 3]), Ok(()));
        assert_eq!(check_message(&[7, 1, 2]), Err(GuardError::Truncated));
    }

    #[test]
    fn short_status_code_vendor_class_and_vendor_opts_are_refused() {
        for (code, len) in [
            (13u16, 1usize),
            (16, 3),
            (17, 0),
            (3, 11),
            (5, 23),
            (26, 24),
        ] {
            let m = msg(&[opt(code, &vec![0; len]), vec![0; 8]].concat());
            assert_eq!(
                check_message(&m),
                Err(GuardError::BadLength { code, len }),
                "{code}"
            );
        }
    }

    #[test]
    fn fixed_size_option_with_another_length_is_refused() {
        for (code, len) in [(7u16, 3usize), (8, 0), (12, 4), (14, 8), (19, 0), (20, 1)] {
            let m = msg(&opt(code, &vec![0; len]));
            assert_eq!(check_message(&m), Err(GuardError::BadLength { code, len }));
        }
    }

    #[test]
    fn client_fqdn_is_checked() {
        use crate::fqdn::FqdnError;
        let ok = msg(&opt(39, b"\x01\x03mn1\x07example\x00"));
        assert_eq!(check_message(&ok), Ok(()));
        assert_eq!(check_message(&msg(&opt(39, &[0x04]))), Ok(()));
        assert_eq!(
            check_message(&msg(&opt(39, &[]))),
            Err(GuardError::BadLength { code: 39, len: 0 })
        );
        for (body, err) in [
            (&b"\x01\xc0\x0c"[..], FqdnError::LabelType(0xc0, 0)),
            (b"\x01\x09mn1", FqdnError::Truncated(0)),
            (b"\x01\x03mn1\x00\x00", FqdnError::Trailing(1)),
        ] {
            // Also when followed by a valid option, and when nested in an IA_NA.
            let m = msg(&[opt(39, body), opt(14, &[])].concat());
            assert_eq!(check_message(&m), Err(GuardError::ClientFqdn(err)));
            let ia = opt(3, &[[0u8; 12].as_slice(), &opt(39, body)].concat());
            assert_eq!(check_message(&msg(&ia)), Err(GuardError::ClientFqdn(err)));
        }
    }

    #[test]
    fn nesting_past_max_depth_and_overruns_are_refused() {
        let mut o = opt(3, &[0; 12]);
        for _ in 1..MAX_DEPTH {
            o = opt(3, &[[0u8; 12].as_slice(), &o].concat());
        }
        assert_eq!(check_message(&msg(&o)), Ok(()));
        let deeper = opt(3, &[[0u8; 12].as_slice(), &o].concat());
        assert_eq!(check_message(&msg(&deeper)), Err(GuardError::TooDeep));
        let mut m = msg(&opt(2, &[1, 2, 3]));
        m.push(0);
        assert_eq!(check_message(&m), Err(GuardError::Truncated));
        let m = msg(&[0, 2, 0, 9, 1]);
        assert_eq!(
            check_message(&m),
            Err(GuardError::Overrun { code: 2, len: 9 })
        );
    }
}
