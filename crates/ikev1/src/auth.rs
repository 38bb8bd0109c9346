//! The authentication step of Main Mode (RFC 2409 §5.1 signatures, §5.4 pre-shared keys).
//!
//! The exchange code asks an [`AuthScheme`] three things: how SKEYID is formed, which payloads
//! carry our proof (HASH, or CERT + SIG) and whether the peer's proof holds. The scheme comes
//! from the negotiated Oakley authentication method, so that XAUTH (methods 65001...) and hybrid
//! authentication (64221...; the initiator sends only a HASH, the responder signs) can be added
//! here as further variants without touching the Main Mode code.

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
}

impl AuthScheme {
    pub(crate) fn from_method(m: u16) -> Option<Self> {
        match m {
            oakley::auth::PRE_SHARED_KEY => Some(Self::Psk),
            oakley::auth::RSA_SIG => Some(Self::RsaSig),
            _ => None,
        }
    }

    /// The Oakley method we propose for our local authentication.
    pub(crate) fn for_local(auth: &LocalAuth) -> Self {
        match auth {
            LocalAuth::Psk => Self::Psk,
            LocalAuth::RsaSig { .. } => Self::RsaSig,
        }
    }

    pub(crate) fn method(self) -> u16 {
        match self {
            Self::Psk => oakley::auth::PRE_SHARED_KEY,
            Self::RsaSig => oakley::auth::RSA_SIG,
        }
    }

    /// Whether a peer configured with `auth` can use this scheme.
    pub(crate) fn fits_peer(self, auth: &PeerAuth) -> bool {
        matches!(
            (self, auth),
            (Self::Psk, PeerAuth::Psk(_)) | (Self::RsaSig, PeerAuth::RsaSig { .. })
        )
    }

    /// The SKEYID input (RFC 2409 §5): the PSK, or nothing for signatures.
    pub(crate) fn skeyid_input<'a>(self, peer: &'a PeerConfig) -> Option<SkeyidInput<'a>> {
        match (self, &peer.auth) {
            (Self::Psk, PeerAuth::Psk(k)) => Some(SkeyidInput::PreSharedKey(k)),
            (Self::RsaSig, _) => Some(SkeyidInput::Signature),
            _ => None,
        }
    }

    /// Our proof: `HASH_x` for PSK, `CERT` and `SIG_x` (raw PKCS#1 v1.5 over the hash, no
    /// DigestInfo) for RSA.
    pub(crate) fn prove(self, local: &LocalAuth, hash: Vec<u8>) -> Result<Vec<Payload>, String> {
        match (self, local) {
            (Self::Psk, _) => Ok(vec![Payload::Hash(hash)]),
            (Self::RsaSig, LocalAuth::RsaSig { key, cert }) => {
                let sig = key.sign_raw(&hash).map_err(|e| e.to_string())?;
                Ok(vec![
                    Payload::Cert(CertPayload {
                        encoding: CertEncoding::X509_SIG,
                        data: cert.der.clone(),
                    }),
                    Payload::Sig(sig),
                ])
            }
            (Self::RsaSig, LocalAuth::Psk) => {
                Err("RSA signature negotiated but no key configured".into())
            }
        }
    }

    /// CERTREQ payloads for the CAs we trust for these peers (RFC 2408 §3.10). strongSwan
    /// sends its certificate only when asked (`send_cert = ifasked`).
    pub(crate) fn cert_requests<'a>(
        self,
        peers: impl Iterator<Item = &'a PeerConfig>,
    ) -> Vec<Payload> {
        if self != Self::RsaSig {
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
            (Self::Psk, PeerAuth::Psk(_)) => {
                let got = payloads.iter().find_map(|p| match p {
                    Payload::Hash(h) => Some(h),
                    _ => None,
                });
                match got {
                    Some(h) if ct_eq(h, hash) => Ok(()),
                    Some(_) => Err("HASH mismatch (wrong pre-shared key?)".into()),
                    None => Err("no HASH payload".into()),
                }
            }
            (Self::RsaSig, PeerAuth::RsaSig { cas }) => {
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
