//! The authentication step of Main Mode (RFC 2409 §5.1 signatures, §5.4 pre-shared keys), and
//! the two methods that hand the initiator's authentication over to XAUTH afterwards:
//! XAUTHInitPreShared (draft-ietf-ipsec-isakmp-xauth-06, method 65001: phase 1 exactly as with
//! a pre-shared key) and HybridInitRSA (draft-ietf-ipsec-isakmp-hybrid-auth-05, method 64221;
//! numbers and formulas as collected in `protocol-notes.md` A.3/A.4).
//!
//! The exchange code asks an [`AuthScheme`] three things: how SKEYID is formed, which payloads
//! carry our proof (HASH, or CERT + SIG) and whether the peer's proof holds. The scheme comes
//! from the negotiated Oakley authentication method. In hybrid mode (hybrid-auth-05) the
//! responder signs as with RSA signatures and SKEYID is the signature one,
//! `prf(Ni_b | Nr_b, g^xy)`, while the initiator sends `HASH_I = prf(SKEYID, g^xi | g^xr |
//! CKY-I | CKY-R | SAi_b | IDii_b)` under that SKEYID: it binds the exchange but proves nothing
//! about the initiator, which XAUTH authenticates next (`xauth.rs`). Which side the scheme
//! describes follows from the configuration it is checked against: a [`PeerAuth::RsaSig`] peer
//! of a hybrid SA is a signing responder, a [`PeerAuth::Hybrid`] peer a hashing initiator.

use std::net::IpAddr;

use isakmp::{CertEncoding, CertPayload, Payload, oakley};

use crate::config::{LocalAuth, PeerAuth, PeerConfig};
use crate::crypto::{Certificate, SkeyidInput, ct_eq};
use crate::identity::Identity;

/// How a phase-1 SA authenticates, from the negotiated Oakley method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthScheme {
    /// Pre-shared key (method 1).
    Psk,
    /// RSA signatures (method 3).
    RsaSig,
    /// XAUTHInitPreShared (method 65001): pre-shared key, then XAUTH of the initiator.
    XauthPsk,
    /// HybridInitRSA (method 64221): the responder signs, the initiator sends HASH_I, then
    /// XAUTH of the initiator.
    Hybrid,
}

/// Our side of XAUTH on an SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum XauthRole {
    /// We ask for credentials (the responder of an XAUTH*Init* method: the home agent).
    Edge,
    /// We answer (the initiator: the mobile node).
    Client,
}

impl AuthScheme {
    pub(crate) fn from_method(m: u16) -> Option<Self> {
        match m {
            oakley::auth::PRE_SHARED_KEY => Some(Self::Psk),
            oakley::auth::RSA_SIG => Some(Self::RsaSig),
            oakley::auth::XAUTH_INIT_PSK => Some(Self::XauthPsk),
            oakley::auth::HYBRID_INIT_RSA => Some(Self::Hybrid),
            _ => None,
        }
    }

    /// The Oakley method we propose for our local authentication.
    pub(crate) fn for_local(auth: &LocalAuth) -> Self {
        match auth {
            LocalAuth::Psk => Self::Psk,
            LocalAuth::RsaSig { .. } => Self::RsaSig,
            LocalAuth::XauthPsk(_) => Self::XauthPsk,
            LocalAuth::Hybrid(_) => Self::Hybrid,
        }
    }

    /// Whether we may answer a proposal of this scheme as responder with `local`: the
    /// XAUTH*Init* methods make the responder the edge, which authenticates as with PSK or RSA.
    pub(crate) fn fits_local_responder(self, local: &LocalAuth) -> bool {
        matches!(
            (self, local),
            (Self::Psk | Self::XauthPsk, LocalAuth::Psk)
                | (Self::RsaSig | Self::Hybrid, LocalAuth::RsaSig { .. })
        )
    }

    /// Our side of XAUTH under this scheme, if it has XAUTH.
    pub(crate) fn xauth_role(self, initiator: bool) -> Option<XauthRole> {
        match self {
            Self::Psk | Self::RsaSig => None,
            Self::XauthPsk | Self::Hybrid if initiator => Some(XauthRole::Client),
            Self::XauthPsk | Self::Hybrid => Some(XauthRole::Edge),
        }
    }

    /// Whether SKEYID is the signature one (it then does not depend on the peer).
    pub(crate) fn skeyid_is_signature(self) -> bool {
        matches!(self, Self::RsaSig | Self::Hybrid)
    }

    pub(crate) fn method(self) -> u16 {
        match self {
            Self::Psk => oakley::auth::PRE_SHARED_KEY,
            Self::RsaSig => oakley::auth::RSA_SIG,
            Self::XauthPsk => oakley::auth::XAUTH_INIT_PSK,
            Self::Hybrid => oakley::auth::HYBRID_INIT_RSA,
        }
    }

    /// Whether a peer configured with `auth` can use this scheme, when we are the initiator
    /// (`auth` says how the responder authenticates) or the responder (how the initiator
    /// does). An edge accepts XAUTH methods only from peers it requires XAUTH of, and those
    /// peers only with XAUTH methods.
    pub(crate) fn fits_peer(self, auth: &PeerAuth, initiator: bool) -> bool {
        if initiator {
            matches!(
                (self, auth),
                (Self::Psk | Self::XauthPsk, PeerAuth::Psk(_))
                    | (Self::RsaSig | Self::Hybrid, PeerAuth::RsaSig { .. })
            )
        } else {
            matches!(
                (self, auth),
                (Self::Psk, PeerAuth::Psk(_))
                    | (Self::RsaSig, PeerAuth::RsaSig { .. })
                    | (Self::XauthPsk, PeerAuth::XauthPsk { .. })
                    | (Self::Hybrid, PeerAuth::Hybrid { .. })
            )
        }
    }

    /// The SKEYID input (RFC 2409 §5): the PSK, or nothing for signatures (and hybrid,
    /// hybrid-auth-05).
    pub(crate) fn skeyid_input<'a>(self, peer: &'a PeerConfig) -> Option<SkeyidInput<'a>> {
        match self {
            Self::Psk | Self::XauthPsk => peer.auth.psk().map(SkeyidInput::PreSharedKey),
            Self::RsaSig | Self::Hybrid => Some(SkeyidInput::Signature),
        }
    }

    /// Our proof: `HASH_x` for PSK (and XAUTH-PSK, and the hybrid initiator), `CERT` and
    /// `SIG_x` (raw PKCS#1 v1.5 over the hash, no DigestInfo) for RSA and the hybrid responder.
    pub(crate) fn prove(self, local: &LocalAuth, hash: Vec<u8>) -> Result<Vec<Payload>, String> {
        match (self, local) {
            (Self::Psk | Self::XauthPsk, _) | (Self::Hybrid, LocalAuth::Hybrid(_)) => {
                Ok(vec![Payload::Hash(hash)])
            }
            (Self::RsaSig | Self::Hybrid, LocalAuth::RsaSig { key, cert }) => {
                let sig = key.sign_raw(&hash).map_err(|e| e.to_string())?;
                Ok(vec![
                    Payload::Cert(CertPayload {
                        encoding: CertEncoding::X509_SIG,
                        data: cert.der.clone(),
                    }),
                    Payload::Sig(sig),
                ])
            }
            (Self::RsaSig | Self::Hybrid, _) => {
                Err("RSA signature negotiated but no key configured".into())
            }
        }
    }

    /// CERTREQ payloads for the CAs we trust for these peers (RFC 2408 §3.10). strongSwan
    /// sends its certificate only when asked (`send_cert = ifasked`). Only peers that sign
    /// (RSA, and the responder of a hybrid SA) have CAs.
    pub(crate) fn cert_requests<'a>(
        self,
        peers: impl Iterator<Item = &'a PeerConfig>,
    ) -> Vec<Payload> {
        if !self.skeyid_is_signature() {
            return Vec::new();
        }
        let mut subjects: Vec<Vec<u8>> = Vec::new();
        for p in peers {
            if let PeerAuth::RsaSig { cas } = &p.auth {
                for ca in cas {
                    let dn = ca.subject_der().to_vec();
                    if !subjects.contains(&dn) {
                        subjects.push(dn);
                    }
                }
            }
        }
        subjects
            .into_iter()
            .map(|data| {
                Payload::CertReq(CertPayload {
                    encoding: CertEncoding::X509_SIG,
                    data,
                })
            })
            .collect()
    }

    /// Checks the peer's proof against the expected `hash`.
    pub(crate) fn verify(
        self,
        peer: &PeerConfig,
        id: &Identity,
        payloads: &[Payload],
        hash: &[u8],
        now_unix: i64,
    ) -> Result<(), String> {
        match (self, &peer.auth) {
            (Self::Psk, PeerAuth::Psk(_))
            | (Self::XauthPsk, PeerAuth::Psk(_) | PeerAuth::XauthPsk { .. })
            | (Self::Hybrid, PeerAuth::Hybrid { .. }) => {
                let got = payloads.iter().find_map(|p| match p {
                    Payload::Hash(h) => Some(h),
                    _ => None,
                });
                match got {
                    Some(h) if ct_eq(h, hash) => Ok(()),
                    Some(_) if self == Self::Hybrid => Err("HASH_I mismatch".into()),
                    Some(_) => Err("HASH mismatch (wrong pre-shared key?)".into()),
                    None => Err("no HASH payload".into()),
                }
            }
            (Self::RsaSig | Self::Hybrid, PeerAuth::RsaSig { cas }) => {
                let sig = payloads
                    .iter()
                    .find_map(|p| match p {
                        Payload::Sig(s) => Some(s),
                        _ => None,
                    })
                    .ok_or("no SIG payload")?;
                let der = payloads
                    .iter()
                    .find_map(|p| match p {
                        Payload::Cert(c) if c.encoding == CertEncoding::X509_SIG => {
                            Some(c.data.clone())
                        }
                        _ => None,
                    })
                    .ok_or("no X.509 certificate from the peer")?;
                let cert =
                    Certificate::from_der(der).map_err(|e| format!("peer certificate: {e}"))?;
                let trusted = cas
                    .iter()
                    .any(|ca| ca.der == cert.der || cert.verify_signed_by(ca, now_unix).is_ok());
                if !trusted {
                    return Err("peer certificate not issued by a trusted CA (or expired)".into());
                }
                if !cert_matches_id(&cert, id) {
                    return Err(format!("identity {id} is not in the peer certificate"));
                }
                let key = cert.public_key().map_err(|e| e.to_string())?;
                key.verify_raw(hash, sig)
                    .map_err(|_| "signature does not verify".to_string())
            }
            _ => Err("peer configured for another authentication method".into()),
        }
    }
}

/// RFC 4945 §3: the ID must be the certificate's subject DN or one of its subjectAltNames.
fn cert_matches_id(cert: &Certificate, id: &Identity) -> bool {
    match id {
        Identity::DerDn(dn) => cert.subject_der() == dn.as_slice(),
        Identity::Fqdn(n) | Identity::UserFqdn(n) => cert
            .subject_alt_names()
            .iter()
            .any(|s| s.eq_ignore_ascii_case(n)),
        Identity::Addr(a) => cert
            .subject_alt_names()
            .iter()
            .any(|s| s.parse::<IpAddr>().ok() == Some(*a)),
        Identity::KeyId(_) | Identity::Any => false,
    }
}
