//! One IKE (ISAKMP) SA: cookies, endpoints, phase-1 material, the keys, and the CBC IV chains.
//!
//! IV handling follows RFC 2409 App. B and the interop notes of `protocol-notes.md` A.5: the
//! phase-1 chain starts at `hash(g^xi | g^xr)` and continues with the last ciphertext block of
//! each phase-1 message; the last block of the final phase-1 message is kept fixed and every
//! exchange with a non-zero message ID (Quick Mode, Informational, Transaction) gets its own
//! chain starting at `hash(last phase-1 block | M-ID)`. Every IV is truncated to the block size.
//! A chain advances only once the message that advances it has been authenticated.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use isakmp::{ExchangeType, Flags, HEADER_LEN, Header, ISAKMP_VERSION, Payload, PayloadType};
use zeroize::Zeroizing;

use crate::child::Mode;
use crate::crypto::{self, DhSecret, EncAlg, PrfAlg};
use crate::event::{FailReason, IkeSaId};
use crate::exchange::Exchange;
use crate::identity::Identity;
use crate::proposal::Phase1Offer;

/// Where phase 1 stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum P1State {
    /// Initiator: MM1 sent, waiting for MM2.
    Mm1Sent,
    /// Initiator: MM3 sent, waiting for MM4.
    Mm3Sent,
    /// Initiator: MM5 sent, waiting for MM6.
    Mm5Sent,
    /// Responder: MM2 sent, waiting for MM3.
    Mm2Sent,
    /// Responder: MM4 sent, waiting for MM5.
    Mm4Sent,
    /// Authenticated.
    Established,
}

impl std::fmt::Display for P1State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Mm1Sent => "MM1_SENT",
            Self::Mm3Sent => "MM3_SENT",
            Self::Mm5Sent => "MM5_SENT",
            Self::Mm2Sent => "MM2_SENT",
            Self::Mm4Sent => "MM4_SENT",
            Self::Established => "ESTABLISHED",
        })
    }
}

/// Phase-1 negotiation material, kept until the SA is established.
#[derive(Default)]
pub(crate) struct P1Material {
    /// The initiator's SA payload body (for HASH_I/HASH_R).
    pub(crate) sai_b: Vec<u8>,
    pub(crate) offer: Option<Phase1Offer>,
    pub(crate) dh: Option<DhSecret>,
    pub(crate) g_xi: Vec<u8>,
    pub(crate) g_xr: Vec<u8>,
    pub(crate) ni: Vec<u8>,
    pub(crate) nr: Vec<u8>,
    pub(crate) g_xy: Option<Zeroizing<Vec<u8>>>,
    /// Whether the peer announced RFC 3947 NAT-T, DPD.
    pub(crate) peer_natt: bool,
    pub(crate) peer_dpd: bool,
    /// The last notify an unauthenticated message carried (only a hint for the failure reason).
    pub(crate) hint: Option<FailReason>,
}

/// Keys of an established (or establishing) IKE SA.
pub(crate) struct P1Keys {
    pub(crate) prf: PrfAlg,
    pub(crate) enc: EncAlg,
    pub(crate) skeyid: Zeroizing<Vec<u8>>,
    pub(crate) skeyid_d: Zeroizing<Vec<u8>>,
    pub(crate) skeyid_a: Zeroizing<Vec<u8>>,
    pub(crate) enc_key: Zeroizing<Vec<u8>>,
}

/// NAT traversal state (RFC 3947).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Nat {
    /// Both sides speak RFC 3947.
    pub(crate) negotiated: bool,
    /// A NAT (or a peer pretending one) is between us: float and encapsulate.
    pub(crate) detected: bool,
}

/// A Quick Mode child we keep track of for rekeying and deletion.
pub(crate) struct ChildRecord {
    pub(crate) spi_in: u32,
    pub(crate) spi_out: u32,
    pub(crate) mode: Mode,
    pub(crate) local_ts: crate::TrafficSelector,
    pub(crate) remote_ts: crate::TrafficSelector,
    pub(crate) rekey_at: Option<Instant>,
    pub(crate) expires_at: Instant,
}

/// A Quick Mode waiting its turn.
pub(crate) struct QueuedChild {
    pub(crate) request: crate::ChildRequest,
    pub(crate) request_id: u64,
    pub(crate) rekey_of: Option<u32>,
}

/// One IKE SA.
pub(crate) struct IkeSa {
    pub(crate) id: IkeSaId,
    pub(crate) initiator: bool,
    pub(crate) cookie_i: [u8; 8],
    pub(crate) cookie_r: [u8; 8],
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    /// Index of the peer in the configuration, once known.
    pub(crate) peer: Option<usize>,
    pub(crate) state: P1State,
    pub(crate) p1: P1Material,
    pub(crate) keys: Option<P1Keys>,
    /// The phase-1 CBC chain: the IV for the next phase-1 message.
    pub(crate) p1_iv: Vec<u8>,
    /// The last ciphertext block of the final phase-1 message (fixed once established).
    pub(crate) last_p1_block: Vec<u8>,
    pub(crate) nat: Nat,
    pub(crate) remote_id: Option<Identity>,
    /// Phase-1 request awaiting an answer (initiator), or the response to repeat (responder).
    pub(crate) p1_exchange: Exchange,
    /// Exchanges with a non-zero message ID.
    pub(crate) exchanges: HashMap<u32, Exchange>,
    pub(crate) children: Vec<ChildRecord>,
    pub(crate) established_at: Option<Instant>,
    pub(crate) rekey_at: Option<Instant>,
    pub(crate) expires_at: Option<Instant>,
    /// When we last heard from the peer (any authenticated message, or ESP via the driver).
    pub(crate) last_heard: Instant,
    pub(crate) dpd_seq: u32,
    /// The address we gave the peer by Mode Config, if any.
    pub(crate) assigned_address: Option<std::net::Ipv6Addr>,
    /// Quick Modes waiting for the one in flight (peers such as strongSwan answer one
    /// Quick Mode at a time per IKE SA: a second request aborts the first).
    pub(crate) qm_queue: std::collections::VecDeque<QueuedChild>,
    /// Set when the SA is to be removed at the end of the current call.
    pub(crate) dead: bool,
    /// Whether phase 1 may not take new exchanges any more (a replacement is up).
    pub(crate) replaced: bool,
    /// XAUTH, when the negotiated method has it (set once phase 1 is authenticated).
    pub(crate) xauth: Option<crate::xauth::Xauth>,
}

/// Why a received encrypted message was not accepted.
#[derive(Debug)]
pub(crate) enum OpenError {
    NoKeys,
    BadLength,
    Crypto,
    Malformed(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoKeys => f.write_str("no keys yet"),
            Self::BadLength => f.write_str("ciphertext not a whole number of blocks"),
            Self::Crypto => f.write_str("decryption failed"),
            Self::Malformed(why) => f.write_str(why),
        }
    }
}

impl IkeSa {
    pub(crate) fn keys(&self) -> Option<&P1Keys> {
        self.keys.as_ref()
    }

    /// Whether XAUTH keeps this SA from being used (it has not succeeded yet).
    pub(crate) fn xauth_blocks(&self) -> bool {
        self.xauth.as_ref().is_some_and(crate::xauth::Xauth::blocks)
    }

    /// Whether the SA is established for its users: phase 1, and XAUTH if any, done.
    pub(crate) fn usable(&self) -> bool {
        self.state == P1State::Established && !self.xauth_blocks()
    }

    pub(crate) fn header(&self, exchange: ExchangeType, message_id: u32, flags: Flags) -> Header {
        Header {
            initiator_cookie: self.cookie_i,
            responder_cookie: self.cookie_r,
            next_payload: PayloadType::NONE,
            version: ISAKMP_VERSION,
            exchange,
            flags,
            message_id,
            length: 0,
        }
    }

    /// A plaintext message (phase 1 before the keys exist, or a plaintext notify).
    pub(crate) fn seal_plain(
        &self,
        exchange: ExchangeType,
        message_id: u32,
        payloads: &[Payload],
    ) -> Vec<u8> {
        isakmp::Message {
            header: self.header(exchange, message_id, Flags(0)),
            payloads: payloads.to_vec(),
        }
        .emit()
    }

    /// Encrypts a message under `iv`; returns the datagram and the IV that follows it.
    pub(crate) fn seal(
        &self,
        exchange: ExchangeType,
        message_id: u32,
        payloads: &[Payload],
        iv: &[u8],
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        let keys = self.keys()?;
        let mut body = Vec::with_capacity(256);
        let first = isakmp::emit_payloads(payloads, &mut body);
        // RFC 2409 §5.3: pad with zeros to the block size; the length covers the padding.
        let bl = keys.enc.block_len();
        let padded = body.len().div_ceil(bl).max(1) * bl;
        body.resize(padded, 0);
        keys.enc.encrypt(&keys.enc_key, iv, &mut body).ok()?;
        let mut header = self.header(exchange, message_id, Flags::ENCRYPTION);
        header.next_payload = first;
        header.length = u32::try_from(HEADER_LEN + body.len()).ok()?;
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        header.emit(&mut out);
        let next_iv = body[body.len() - bl..].to_vec();
        out.extend_from_slice(&body);
        Some((out, next_iv))
    }

    /// Decrypts the body of a received message under `iv`. Returns the plaintext (with any
    /// padding) and the IV that would follow if the message turns out to be authentic.
    pub(crate) fn open(&self, data: &[u8], iv: &[u8]) -> Result<(Vec<u8>, Vec<u8>), OpenError> {
        let keys = self.keys().ok_or(OpenError::NoKeys)?;
        open_with(keys.enc, &keys.enc_key, data, iv)
    }

    /// The IV for the first message of a new exchange with this message ID.
    pub(crate) fn phase2_iv(&self, message_id: u32) -> Option<Vec<u8>> {
        let k = self.keys()?;
        Some(crypto::phase2_iv(
            k.prf,
            k.enc,
            &self.last_p1_block,
            message_id,
        ))
    }

    /// Builds `HASH | payloads` where the hash is computed over the emitted `payloads`.
    pub(crate) fn hashed(
        &self,
        payloads: Vec<Payload>,
        hash: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Vec<Payload> {
        let mut rest = Vec::with_capacity(256);
        isakmp::emit_payloads(&payloads, &mut rest);
        let h = hash(&rest);
        let mut all = Vec::with_capacity(payloads.len() + 1);
        all.push(Payload::Hash(h));
        all.extend(payloads);
        all
    }

    pub(crate) fn peer_label(&self) -> String {
        match &self.remote_id {
            Some(id) => format!("{id}"),
            None => format!("{}", self.remote),
        }
    }
}

/// Decrypts `data` (a whole datagram: header then ciphertext) with the given key and IV.
pub(crate) fn open_with(
    enc: EncAlg,
    key: &[u8],
    data: &[u8],
    iv: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), OpenError> {
    let body = data.get(HEADER_LEN..).ok_or(OpenError::BadLength)?;
    let bl = enc.block_len();
    if body.is_empty() || body.len() % bl != 0 {
        return Err(OpenError::BadLength);
    }
    let next_iv = body[body.len() - bl..].to_vec();
    let mut plain = body.to_vec();
    enc.decrypt(key, iv, &mut plain)
        .map_err(|_| OpenError::Crypto)?;
    Ok((plain, next_iv))
}

/// A decrypted, split message whose first payload is HASH: the hash value, the bytes after the
/// HASH payload up to the end of the chain (padding excluded) and the parsed payloads.
pub(crate) struct Hashed {
    pub(crate) hash: Vec<u8>,
    pub(crate) rest: Vec<u8>,
    pub(crate) payloads: Vec<(PayloadType, Vec<u8>, Payload)>,
}

/// Splits a decrypted payload chain that must start with HASH (RFC 2409 §5.5, §5.7).
pub(crate) fn split_hashed(first: PayloadType, plain: &[u8]) -> Result<Hashed, OpenError> {
    let (raw, consumed) =
        isakmp::split_payloads(first, plain).map_err(|e| OpenError::Malformed(e.to_string()))?;
    // Padding is at most one block plus what sloppy peers add; never more than 255 bytes.
    if plain.len() - consumed > 255 {
        return Err(OpenError::Malformed(
            "more than 255 bytes after the payload chain".into(),
        ));
    }
    let Some((h, others)) = raw.split_first() else {
        return Err(OpenError::Malformed("empty message".into()));
    };
    if h.ty != PayloadType::HASH {
        return Err(OpenError::Malformed(format!(
            "first payload is {:?}, not HASH",
            h.ty
        )));
    }
    let rest_start = h.offset + h.len;
    let rest = plain.get(rest_start..consumed).unwrap_or_default().to_vec();
    let mut payloads = Vec::with_capacity(others.len());
    for p in others {
        let parsed =
            Payload::parse(p.ty, p.body).map_err(|e| OpenError::Malformed(e.to_string()))?;
        payloads.push((p.ty, p.body.to_vec(), parsed));
    }
    Ok(Hashed {
        hash: h.body.to_vec(),
        rest,
        payloads,
    })
}

/// Parses the payload chain of a decrypted phase-1 message.
pub(crate) fn split_plain(
    first: PayloadType,
    plain: &[u8],
) -> Result<Vec<(PayloadType, Vec<u8>, Payload)>, OpenError> {
    let (raw, consumed) =
        isakmp::split_payloads(first, plain).map_err(|e| OpenError::Malformed(e.to_string()))?;
    if plain.len() - consumed > 255 {
        return Err(OpenError::Malformed(
            "more than 255 bytes after the payload chain".into(),
        ));
    }
    raw.iter()
        .map(|p| {
            Payload::parse(p.ty, p.body)
                .map(|parsed| (p.ty, p.body.to_vec(), parsed))
                .map_err(|e| OpenError::Malformed(e.to_string()))
        })
        .collect()
}
