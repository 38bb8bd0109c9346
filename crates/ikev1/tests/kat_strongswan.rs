//! Known-answer tests from a real strongSwan 5.9.8 IKEv1 exchange (PSK, Mode Config, Quick Mode
//! with PFS), `shared/vectors/strongswan-5.9.8-ikev1-psk-modecfg/`.
//!
//! Sources, and which of them belong together:
//! - `ikev1-mip6-psk.pcapng`: the 11 datagrams, whose UDP payloads are stored under
//!   `testdata/strongswan-psk/NN-name.bin` (on port 4500 the 4-byte zero non-ESP marker, RFC 3948
//!   §2.2, is stripped, so every file starts with the ISAKMP header).
//! - `ikev1-mip6-psk.charon-mn.log`: the initiator's (MN's) charon log at `ike = 4`. Its cookies
//!   (`natd_chunk`), g^xi/g^xr/SAi_b (`HASH_I data`), message sizes and Message IDs (2281329981 =
//!   0x87fa553d for the Transaction, 53912735 = 0x0336a49f for Quick Mode) are those of the
//!   capture: the log and the capture are the **same run**.
//! - `ikev1-mip6-psk-V.txt` (tshark decode) and `ikev1-mip6-psk-summary.txt` come from a
//!   **different run** (cookies d3db5a421d79849d/4f9353ad9cb30a67, M-IDs 0x6e407e5a and
//!   0x2b79e932, MM5 without INITIAL_CONTACT) and are not used here.
//!
//! The pre-shared key is not in any of the files (interop-lab.md shows `secret = "..."`); it was
//! recovered by trying a handful of likely lab strings against the log's SKEYID =
//! prf(PSK, Ni_b | Nr_b). `mip6-lab-psk` matches, so the test starts at the PSK.
//!
//! Negotiated: AES-CBC-128, SHA2-256 (HMAC-SHA2-256 as prf), MODP-2048, PSK; ESP AES-128 /
//! HMAC-SHA2-256 with PFS group 14. Not checkable: KEYMAT (the log stops right after QM2, before
//! the Quick Mode DH secret and the keys are printed; with PFS, KEYMAT needs g(qm)^xy, whose
//! private exponents are not in any file) and the DH computation itself (no private exponent).
//! The log does not print HASH(3) either; it is checked against the decrypted QM3.

use std::net::IpAddr;

use ikev1::crypto::{
    EncAlg, PrfAlg, SkeyidInput, derive_phase1, hash_i, hash_r, info_hash, natd_hash, phase1_iv,
    phase2_iv, qm_hash1, qm_hash2, qm_hash3,
};

const MM1: &[u8] = include_bytes!("../testdata/strongswan-psk/01-mm1.bin");
const MM2: &[u8] = include_bytes!("../testdata/strongswan-psk/02-mm2.bin");
const MM3: &[u8] = include_bytes!("../testdata/strongswan-psk/03-mm3.bin");
const MM4: &[u8] = include_bytes!("../testdata/strongswan-psk/04-mm4.bin");
const MM5: &[u8] = include_bytes!("../testdata/strongswan-psk/05-mm5.bin");
const MM6: &[u8] = include_bytes!("../testdata/strongswan-psk/06-mm6.bin");
const CFG_REQ: &[u8] = include_bytes!("../testdata/strongswan-psk/07-cfg_req.bin");
const CFG_REPLY: &[u8] = include_bytes!("../testdata/strongswan-psk/08-cfg_reply.bin");
const QM1: &[u8] = include_bytes!("../testdata/strongswan-psk/09-qm1.bin");
const QM2: &[u8] = include_bytes!("../testdata/strongswan-psk/10-qm2.bin");
const QM3: &[u8] = include_bytes!("../testdata/strongswan-psk/11-qm3.bin");

const PRF: PrfAlg = PrfAlg::Sha256;
const ENC: EncAlg = EncAlg::Aes128Cbc;

/// The pre-shared key (see the module documentation).
const PSK: &[u8] = b"mip6-lab-psk";
/// Transaction (Mode Config) Message ID, log "TRANSACTION request 2281329981".
const CFG_MID: u32 = 2_281_329_981;
/// Quick Mode Message ID, log "QUICK_MODE request 53912735".
const QM_MID: u32 = 53_912_735;
/// HASH(3) as found in the decrypted QM3 (not printed by the log).
const QM_HASH3: &str = "d2f68c288f8f1eb7914663a19171eb42bcda24bbb6d626605eff197dde38cd78";
/// SPIs proposed in QM1 (MN's inbound SA) and QM2 (HA's inbound SA).
const SPI_I: [u8; 4] = [0xa8, 0xa7, 0xcf, 0x86];
const SPI_R: [u8; 4] = [0x55, 0xa0, 0x84, 0x23];

// Payload types (RFC 2408 §3.1, RFC 3947 §3.2, Mode Config draft §3.2).
const SA: u8 = 1;
const KE: u8 = 4;
const ID: u8 = 5;
const HASH: u8 = 8;
const NONCE: u8 = 10;
const NOTIFY: u8 = 11;
const ATTR: u8 = 14;
const NATD: u8 = 20;

/// CKY-I (every header; natd_chunk in the log).
const CKY_I: &str = "272c5cfa58766161";

/// CKY-R.
const CKY_R: &str = "c0952c7c9a0762a2";

/// Ni_b: MM3 Nonce payload body (capture).
const NI_B: &str = "8736a6d011e52ad29518e5129d898810c79a56b280f7598f37516fbec6146748";

/// Nr_b: MM4 Nonce payload body (capture).
const NR_B: &str = "4c67b926a223e907275bca171735b4f9065aa5b98fa1217529d1a7da5274c8f4";

/// g^xi: MM3 KE payload body (capture) = bytes 0..256 of the log's "HASH_I data".
const G_XI: &str = concat!(
    "b93d156fbc931d2665f94dbf2f096acb3a1bd639ae734388eb44a86b567d7619",
    "f1dd0f118bc86d069b6a1af695465bf5544418c21e9ddc52133a54c329cf2eb0",
    "a77d01ec88222b4f973f2e4d52eb03e2e923f46b93211d490d30df3094652b0c",
    "e4da02c9043258d743bc4f7d39359dae2b057ca62809de39453edbb5f490c899",
    "8d70ca22fe5f2a996aa68972cfc824e8b4c734fed6da9cb53f348dca69141f0d",
    "e9a4d3c8d62ed6b479b76210b26ae86ade38beec1f77e78af6b5f8c0cd0507ab",
    "3d6ddcaf625daeaceb5d56374480dfdb2504fbe30aec1ff5b68e389c6979370b",
    "8c6336d88af8f6403e74a0a42244b653e413af865da312c32c749351a545161b",
);

/// g^xr: MM4 KE payload body (capture) = bytes 256..512 of "HASH_I data".
const G_XR: &str = concat!(
    "218e29b5acd0e4e0d8b0836938f14a987d081d2ee8e9fb0533bbcd28d8471547",
    "487812301164b22d9d8045893ae587c6a4f438beb0167c9c2a1d17f9cbc8c987",
    "9f2cf9bf2a4237912b3bb51ce836c10687f219328b1a88c0774ffee5de80ec69",
    "6d2aac3c832ad8772eadbf36f8e3564e7d94ed6bdc059d94ff64a889689d297c",
    "356edd3ae450bb4a26af6601ec711ac8ae6d6bcd757dd94740ecccd9ae3fa59f",
    "5e85fe60950cb6ffb801e5ab26972ab004f98b01a824e6777b8c238f6c2cc50b",
    "c742d21e5ff9fbf0909dfb7427c4248d141535a37709757ddb315574f5b78290",
    "5253d6cab9dc2920d8a2ead9c82b5a26b24c1c2db8fedc715f2999f73e2f655e",
);

/// g^xy: log "shared Diffie Hellman secret" (256 bytes, MODP-2048).
const G_XY: &str = concat!(
    "0339a43ee929d3bd7cbb37a8c71ca7331ebc04cfe365645c84e5a45f4c379cfe",
    "32539a507a4cf03690ffb7bca0a98558e577cb9e954c78e203b617ad93a564b7",
    "329b8b2522ffbb56f09bab4390a829111ad15308d68a22dfc69840f506c28868",
    "c76ca90594bd315b425ab73f5cab127fe0f77f4fdbe313220d6d773a0e587fbb",
    "e41a133522cbee284b113767c662193168008aa4b8f106c185715074919b32e9",
    "c5d3f7ee32ef20598cf18632904d171f604c463f005a587d7ff9621f303b5f3d",
    "59823828a46d4ab126f7aa6e728fd0d26fae2a622edfa3e81caa7404a6da578b",
    "d00dd3e31f536033e6cd0ad700d235d480e88d4ce7ff39bb337c5558bfe823bb",
);

/// SAi_b: MM1 SA payload body (capture) = bytes 528..580 of "HASH_I data".
const SAI_B: &str = concat!(
    "00000001000000010000002c01010001000000240101000080010007800e0080",
    "800200048004000e80030001800b0001800c3de0",
);

/// IDii_b: USER_FQDN mn@example.com (end of "HASH_I data").
const IDII_B: &str = "030000006d6e406578616d706c652e636f6d";

/// IDir_b: FQDN ha.example.com (end of "HASH_R data").
const IDIR_B: &str = "0200000068612e6578616d706c652e636f6d";

/// log "SKEYID".
const SKEYID: &str = "c14335bab59e0f57a4971d277760e3330586ceb9088593fec4b2d8321385f3b4";

/// log "SKEYID_d".
const SKEYID_D: &str = "59877dabb30dff575cee1312923a781b521538de49fe13bffd69fbe9190dceff";

/// log "SKEYID_a".
const SKEYID_A: &str = "e60883f734c6db1fb94b8650d5a0e0063c9d6904aac3fd1b1599a1a01f8ec84c";

/// log "SKEYID_e".
const SKEYID_E: &str = "01e659eb858ca0b561db98e32a729a4ea84fe57ca09048775c8bb48e617b4f45";

/// log "encryption key Ka".
const KA: &str = "01e659eb858ca0b561db98e32a729a4e";

/// log "initial IV".
const IV0: &str = "bc9f298d7df0ae797ce4d13535082c2a";

/// log "HASH_I".
const HASH_I: &str = "d39c0a3043f9b13c5c6d844542c506200e9b4807d7e878ae8137b0b9b5680ec1";

/// log "HASH_R".
const HASH_R: &str = "b14d761860b7912085a33ef6871a97e6a8a14e1e7c960d1b3f066bf199532e18";

/// log "next IV for MID 0" after sending MM5.
const IV_AFTER_MM5: &str = "b383214ae2ce414f6b53a88791fed429";

/// log "next IV for MID 0" after MM6: the last phase-1 block.
const IV_AFTER_MM6: &str = "0f72451d8f2815a98bbb9a9ca2221c0c";

/// log "next IV for MID 2281329981" (1st): the Transaction's first IV.
const CFG_IV: &str = "8ebee749c78283b6b4f59ea548b5720a";

/// log (2nd): after the CFG_REQUEST.
const IV_AFTER_CFG_REQ: &str = "5d71e21be2d37a72fc4e3228f7b67d31";

/// log (3rd): after the CFG_REPLY.
const IV_AFTER_CFG_REPLY: &str = "19dc6a76dac9504372af4b3daae16c6a";

/// log "Hash" for the CFG_REQUEST.
const CFG_HASH_REQ: &str = "248a563bd24fb3b4701e6322bbd3f447d4314221362d1e095fac6ee4eb7a994b";

/// log "Hash" for the CFG_REPLY.
const CFG_HASH_REPLY: &str = "3be1020a6282a56584cef51a3686f891e9c964ee2ed49fc05d998cf095d88cdc";

/// log "next IV for MID 53912735" (1st): Quick Mode's first IV.
const QM_IV: &str = "50769f4cc7307563eedcf604b7ef64ec";

/// log (2nd): after QM1.
const IV_AFTER_QM1: &str = "a5abc2aa1663b4e5a741d59a8cd5b715";

/// log (3rd): after QM2.
const IV_AFTER_QM2: &str = "6bb0c5a17718ad25ff71a6ca277eb998";

/// log "Hash(1)".
const QM_HASH1: &str = "08e61b7ab480ac6ad99764262616a2cec314699b48855656c34c41ab06152a90";

/// log "Hash(2)".
const QM_HASH2: &str = "d1b40636fae412104ef6ff9cd4e450dd983a63ca768e0654dd0bd90ee42e1953";

/// log "natd_hash" over 2001:db8:ff::1 port 500.
const NATD_HA_500: &str = "f2235f795650ef3e17d30fdb484d85204461ec7eaffe65e2462b06709ee38618";

/// log "natd_hash" over 2001:db8:ff::2 port 500.
const NATD_MN_500: &str = "d01c1cd92a420de0dc3c1917bf9aec7e857a78647ffb1e8ccaf73966846bc595";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn cookie(s: &str) -> [u8; 8] {
    h(s).try_into().unwrap()
}

/// One generic-header payload: its type, whole bytes (header included) and body.
struct Payload<'a> {
    kind: u8,
    raw: &'a [u8],
}

impl<'a> Payload<'a> {
    fn body(&self) -> &'a [u8] {
        &self.raw[4..]
    }
}

/// Walks a payload chain that starts with a payload of type `first`. Returns the payloads and
/// the number of bytes they cover (anything after that is encryption padding).
fn payloads(first: u8, mut data: &[u8]) -> (Vec<Payload<'_>>, usize) {
    let (mut out, mut kind, mut used) = (Vec::new(), first, 0);
    while kind != 0 {
        let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
        out.push(Payload {
            kind,
            raw: &data[..len],
        });
        kind = data[0];
        data = &data[len..];
        used += len;
    }
    (out, used)
}

fn find<'a>(p: &[Payload<'a>], kind: u8) -> Vec<&'a [u8]> {
    p.iter()
        .filter(|x| x.kind == kind)
        .map(Payload::body)
        .collect()
}

fn message_id(msg: &[u8]) -> u32 {
    u32::from_be_bytes(msg[20..24].try_into().unwrap())
}

/// Decrypts one message (everything after the 28-byte header) and checks that the last
/// ciphertext block is the expected next IV; re-encrypting must give the captured bytes back.
fn decrypt(msg: &[u8], iv: &[u8], next_iv: &[u8]) -> Vec<u8> {
    assert_eq!(msg[19] & 1, 1, "encryption flag");
    assert_eq!(
        usize::try_from(u32::from_be_bytes(msg[24..28].try_into().unwrap())).unwrap(),
        msg.len()
    );
    let mut buf = msg[28..].to_vec();
    ENC.decrypt(&h(KA), iv, &mut buf).unwrap();
    assert_eq!(ENC.last_block(&msg[28..]).unwrap(), next_iv, "IV chain");
    let mut again = buf.clone();
    ENC.encrypt(&h(KA), iv, &mut again).unwrap();
    assert_eq!(again, &msg[28..]);
    buf
}

/// The capture's cleartext messages carry the values the log printed.
#[test]
fn capture_and_log_are_the_same_run() {
    for m in [
        MM1, MM2, MM3, MM4, MM5, MM6, CFG_REQ, CFG_REPLY, QM1, QM2, QM3,
    ] {
        assert_eq!(m[..8], h(CKY_I));
    }
    assert_eq!(MM1[8..16], [0; 8]);
    for m in [MM2, MM3, MM4, MM5, MM6, CFG_REQ, CFG_REPLY, QM1, QM2, QM3] {
        assert_eq!(m[8..16], h(CKY_R));
    }
    let (mm1, _) = payloads(MM1[16], &MM1[28..]);
    assert_eq!(find(&mm1, SA), [h(SAI_B)]);
    let (mm3, _) = payloads(MM3[16], &MM3[28..]);
    assert_eq!(find(&mm3, KE), [h(G_XI)]);
    assert_eq!(find(&mm3, NONCE), [h(NI_B)]);
    let (mm4, _) = payloads(MM4[16], &MM4[28..]);
    assert_eq!(find(&mm4, KE), [h(G_XR)]);
    assert_eq!(find(&mm4, NONCE), [h(NR_B)]);
    for m in [MM1, MM2, MM3, MM4, MM5, MM6] {
        assert_eq!(message_id(m), 0);
    }
    assert_eq!(message_id(CFG_REQ), CFG_MID);
    assert_eq!(message_id(CFG_REPLY), CFG_MID);
    for m in [QM1, QM2, QM3] {
        assert_eq!(message_id(m), QM_MID);
    }
    // The log's sizes: MM5 124, MM6 92, CFG 92/124, QM 492/492 (QM3 is after the log ends).
    let sizes: Vec<usize> = [MM5, MM6, CFG_REQ, CFG_REPLY, QM1, QM2]
        .iter()
        .map(|m| m.len())
        .collect();
    assert_eq!(sizes, [124, 92, 92, 124, 492, 492]);
    // MODP-2048 values are full-length (g^xy left-padded to |p|).
    assert_eq!(
        (h(G_XI).len(), h(G_XR).len(), h(G_XY).len()),
        (256, 256, 256)
    );
}

/// SKEYID = prf(PSK, Ni_b | Nr_b); SKEYID_d/a/e; Ka = SKEYID_e truncated (32 >= 16 bytes).
#[test]
fn phase1_key_schedule() {
    let keys = derive_phase1(
        PRF,
        ENC,
        SkeyidInput::PreSharedKey(PSK),
        &h(NI_B),
        &h(NR_B),
        &h(G_XY),
        &cookie(CKY_I),
        &cookie(CKY_R),
    );
    assert_eq!(*keys.skeyid, h(SKEYID));
    assert_eq!(*keys.skeyid_d, h(SKEYID_D));
    assert_eq!(*keys.skeyid_a, h(SKEYID_A));
    assert_eq!(*keys.skeyid_e, h(SKEYID_E));
    assert_eq!(*keys.enc_key, h(KA));
}

#[test]
fn hash_i_and_hash_r() {
    let (ci, cr) = (cookie(CKY_I), cookie(CKY_R));
    let hi = hash_i(
        PRF,
        &h(SKEYID),
        &h(G_XI),
        &h(G_XR),
        &ci,
        &cr,
        &h(SAI_B),
        &h(IDII_B),
    );
    assert_eq!(hi, h(HASH_I));
    let hr = hash_r(
        PRF,
        &h(SKEYID),
        &h(G_XR),
        &h(G_XI),
        &cr,
        &ci,
        &h(SAI_B),
        &h(IDIR_B),
    );
    assert_eq!(hr, h(HASH_R));
}

/// RFC 3947 §3.2 NAT-D = SHA-256(CKY-I | CKY-R | IP | port) for the two real hashes. charon with
/// kernel-libipsec fakes its own *source* NAT-D hash (random) to force NAT-T, so the second
/// NAT-D payload of MM3 and of MM4 matches neither address.
#[test]
fn natd_hashes() {
    let (ci, cr) = (cookie(CKY_I), cookie(CKY_R));
    let ha: IpAddr = "2001:db8:ff::1".parse().unwrap();
    let mn: IpAddr = "2001:db8:ff::2".parse().unwrap();
    assert_eq!(natd_hash(PRF, &ci, &cr, ha, 500), h(NATD_HA_500));
    assert_eq!(natd_hash(PRF, &ci, &cr, mn, 500), h(NATD_MN_500));
    let (mm3, _) = payloads(MM3[16], &MM3[28..]);
    let (mm4, _) = payloads(MM4[16], &MM4[28..]);
    let (d3, d4) = (find(&mm3, NATD), find(&mm4, NATD));
    // First NAT-D = the destination's hash (RFC 3947 §3.2).
    assert_eq!(d3[0], h(NATD_HA_500));
    assert_eq!(d4[0], h(NATD_MN_500));
    for faked in [d3[1], d4[1]] {
        assert_ne!(faked, h(NATD_HA_500));
        assert_ne!(faked, h(NATD_MN_500));
    }
}

/// The whole CBC IV chain, decrypting MM5 … QM3 with Ka, and every hash over the decrypted
/// bytes: phase-1 IV, HASH_I/HASH_R in MM5/MM6, the Transaction IV and HASHes, the Quick Mode
/// IV and HASH(1)/(2)/(3).
#[test]
fn iv_chain_decryption_and_phase2_hashes() {
    let ka = h(KA);
    assert_eq!(ka.len(), ENC.key_len());
    // Phase 1: IV0 = SHA-256(g^xi | g^xr) truncated to 16 bytes.
    let iv0 = phase1_iv(PRF, ENC, &h(G_XI), &h(G_XR));
    assert_eq!(iv0, h(IV0));

    // MM5: ID | HASH | N(INITIAL_CONTACT), zero padding.
    let pt = decrypt(MM5, &iv0, &h(IV_AFTER_MM5));
    let (p, used) = payloads(MM5[16], &pt);
    assert_eq!(
        p.iter().map(|x| x.kind).collect::<Vec<_>>(),
        [ID, HASH, NOTIFY]
    );
    assert_eq!(find(&p, ID), [h(IDII_B)]);
    assert_eq!(find(&p, HASH), [h(HASH_I)]);
    assert!(pt[used..].iter().all(|&b| b == 0), "zero padding");

    // MM6: ID | HASH, IV = last block of MM5.
    let pt = decrypt(MM6, &h(IV_AFTER_MM5), &h(IV_AFTER_MM6));
    let (p, _) = payloads(MM6[16], &pt);
    assert_eq!(find(&p, ID), [h(IDIR_B)]);
    assert_eq!(find(&p, HASH), [h(HASH_R)]);

    // Transaction: IV = SHA-256(last block of MM6 | M-ID), then chained within the M-ID.
    let last_p1 = h(IV_AFTER_MM6);
    let cfg_iv = phase2_iv(PRF, ENC, &last_p1, CFG_MID);
    assert_eq!(cfg_iv, h(CFG_IV));
    let skeyid_a = h(SKEYID_A);
    let pt = decrypt(CFG_REQ, &cfg_iv, &h(IV_AFTER_CFG_REQ));
    let (p, used) = payloads(CFG_REQ[16], &pt);
    assert_eq!(p.iter().map(|x| x.kind).collect::<Vec<_>>(), [HASH, ATTR]);
    assert_eq!(find(&p, HASH), [h(CFG_HASH_REQ)]);
    let rest = &pt[p[0].raw.len()..used];
    assert_eq!(info_hash(PRF, &skeyid_a, CFG_MID, rest), h(CFG_HASH_REQ));

    let pt = decrypt(CFG_REPLY, &h(IV_AFTER_CFG_REQ), &h(IV_AFTER_CFG_REPLY));
    let (p, used) = payloads(CFG_REPLY[16], &pt);
    assert_eq!(find(&p, HASH), [h(CFG_HASH_REPLY)]);
    let rest = &pt[p[0].raw.len()..used];
    assert_eq!(info_hash(PRF, &skeyid_a, CFG_MID, rest), h(CFG_HASH_REPLY));
    // CFG_REPLY (type 2), identifier 0: INTERNAL_IP6_ADDRESS (8) with a 16-byte value, i.e.
    // strongSwan sends no prefix-length octet, then INTERNAL_IP6_DNS (10).
    let attrs = find(&p, ATTR)[0];
    assert_eq!(attrs[..4], [2, 0, 0, 0]);
    assert_eq!(attrs[4..8], [0x00, 0x08, 0x00, 0x10]);
    assert_eq!(attrs[8..24], h("20010db8000100000000000000001001"));
    assert_eq!(attrs[24..28], [0x00, 0x0a, 0x00, 0x10]);

    // Quick Mode: the IV again derives from MM6's last block, not from the Transaction's.
    let qm_iv = phase2_iv(PRF, ENC, &last_p1, QM_MID);
    assert_eq!(qm_iv, h(QM_IV));
    let pt1 = decrypt(QM1, &qm_iv, &h(IV_AFTER_QM1));
    let (p1, used1) = payloads(QM1[16], &pt1);
    assert_eq!(
        p1.iter().map(|x| x.kind).collect::<Vec<_>>(),
        [HASH, SA, NONCE, KE, ID, ID]
    );
    assert_eq!(find(&p1, HASH), [h(QM_HASH1)]);
    let rest1 = &pt1[p1[0].raw.len()..used1];
    assert_eq!(qm_hash1(PRF, &skeyid_a, QM_MID, rest1), h(QM_HASH1));
    let ni2 = find(&p1, NONCE)[0].to_vec();
    // SA body: DOI(4) situation(4) | proposal header(8) | SPI(4).
    assert_eq!(find(&p1, SA)[0][16..20], SPI_I);

    let pt2 = decrypt(QM2, &h(IV_AFTER_QM1), &h(IV_AFTER_QM2));
    let (p2, used2) = payloads(QM2[16], &pt2);
    assert_eq!(find(&p2, HASH), [h(QM_HASH2)]);
    let rest2 = &pt2[p2[0].raw.len()..used2];
    assert_eq!(qm_hash2(PRF, &skeyid_a, QM_MID, &ni2, rest2), h(QM_HASH2));
    let nr2 = find(&p2, NONCE)[0].to_vec();
    assert_eq!(find(&p2, SA)[0][16..20], SPI_R);
    assert_eq!(find(&p2, KE)[0].len(), 256); // PFS, MODP-2048

    // QM3: IV = last block of QM2; only HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b).
    let mut pt3 = QM3[28..].to_vec();
    ENC.decrypt(&ka, &h(IV_AFTER_QM2), &mut pt3).unwrap();
    let (p3, _) = payloads(QM3[16], &pt3);
    assert_eq!(p3.len(), 1);
    assert_eq!(find(&p3, HASH), [h(QM_HASH3)]);
    assert_eq!(qm_hash3(PRF, &skeyid_a, QM_MID, &ni2, &nr2), h(QM_HASH3));
}
