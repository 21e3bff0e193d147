//! QUIC Initial packets: long headers, Initial packet protection, and the
//! CRYPTO frames that carry the ClientHello.
//!
//! Covers QUIC v1 (RFC 9000/9001), v2 (RFC 9369), drafts 22–34, Facebook
//! mvfst and Google's IETF-framed versions (Q050, T050, T051). Initial keys
//! are derived from the Destination Connection ID (RFC 9001 §5.2):
//!
//! ```text
//! initial_secret = HKDF-Extract(initial_salt, client_dst_connection_id)
//! client_initial_secret = HKDF-Expand-Label(initial_secret, "client in", "", 32)
//! key = HKDF-Expand-Label(secret, "quic key", "", 16)   // "quicv2 key" in v2
//! iv  = HKDF-Expand-Label(secret, "quic iv", "", 12)
//! hp  = HKDF-Expand-Label(secret, "quic hp", "", 16)
//! ```
//!
//! Decryption happens in a caller-provided scratch buffer, so opening a
//! packet allocates nothing.

use ring::aead::{self, quic as hp, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

use crate::bytes::Reader;
use crate::{Error, Result};

/// QUIC version 1.
pub const VERSION_1: u32 = 0x0000_0001;
/// QUIC version 2.
pub const VERSION_2: u32 = 0x6b33_43cf;
/// Google QUIC Q050 (IETF long header, QUIC-crypto CHLO inside).
pub const VERSION_Q050: u32 = 0x5130_3530;

const SALT_V1: [u8; 20] = hex20(b"38762cf7f55934b34d179ae6a4c80cadccbb7f0a");
const SALT_V2: [u8; 20] = hex20(b"0dede3def700a6db819381be6e269dcbf9bd2ed9");
const SALT_DRAFT_22: [u8; 20] = hex20(b"7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a");
const SALT_DRAFT_23: [u8; 20] = hex20(b"c3eef712c72ebb5a11a7d2432bb46365bef9f502");
const SALT_DRAFT_29: [u8; 20] = hex20(b"afbfec289993d24c9e9786f19c6111e04390a899");
const SALT_Q050: [u8; 20] = hex20(b"504574efd066fe2f9d945cfcdbd3a7f0d3b56b45");
const SALT_T050: [u8; 20] = hex20(b"7ff579e5acd07291558030 4c43a2367c60488310");
const SALT_T051: [u8; 20] = hex20(b"7a4edef4e7ccee5fa4506c19124fc8ccda6e033d");

/// Decodes 40 hex digits at compile time; spaces are ignored.
const fn hex20(s: &[u8]) -> [u8; 20] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex digit"),
        }
    }
    let mut out = [0u8; 20];
    let (mut i, mut n) = (0, 0);
    while i < s.len() {
        if s[i] != b' ' {
            let v = nibble(s[i]);
            out[n / 2] |= if n % 2 == 0 { v << 4 } else { v };
            n += 1;
        }
        i += 1;
    }
    assert!(n == 40);
    out
}

/// How a version protects its Initial packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionParams {
    salt: &'static [u8; 20],
    v2_labels: bool,
    /// The long-header type bits that mean Initial.
    initial_type: u8,
}

/// The Initial protection of a version, or `None` for versions without it
/// (old Google QUIC with cleartext headers, unknown versions).
pub fn version_params(version: u32) -> Option<VersionParams> {
    let p = |salt, v2_labels, initial_type| {
        Some(VersionParams {
            salt,
            v2_labels,
            initial_type,
        })
    };
    match version {
        VERSION_1 => p(&SALT_V1, false, 0),
        VERSION_2 => p(&SALT_V2, true, 1),
        VERSION_Q050 => p(&SALT_Q050, false, 0),
        0x5430_3530 => p(&SALT_T050, false, 0),
        0x5430_3531 => p(&SALT_T051, false, 0),
        0xfaceb001 => p(&SALT_DRAFT_22, false, 0),
        0xfaceb002 | 0xfaceb00e => p(&SALT_DRAFT_23, false, 0),
        v if v >> 8 == 0x00ff_0000 => match v & 0xff {
            0..=22 => p(&SALT_DRAFT_22, false, 0),
            23..=28 => p(&SALT_DRAFT_23, false, 0),
            29..=32 => p(&SALT_DRAFT_29, false, 0),
            _ => p(&SALT_V1, false, 0),
        },
        // Versions reserved to force version negotiation: assume recent drafts.
        v if v & 0x0f0f_0f0f == 0x0a0a_0a0a => p(&SALT_DRAFT_29, false, 0),
        _ => None,
    }
}

/// Which endpoint's Initial secret to derive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// "client in"
    Client,
    /// "server in"
    Server,
}

/// Raw Initial key material, exposed for test vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialSecrets {
    /// AEAD key (AES-128-GCM).
    pub key: [u8; 16],
    /// AEAD IV.
    pub iv: [u8; 12],
    /// Header protection key (AES-128).
    pub hp: [u8; 16],
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1).
fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Result<()> {
    let mut info = [0u8; 2 + 1 + 32 + 1];
    let full_len = 6 + label.len();
    if full_len > 32 {
        return Err(Error::BadLength);
    }
    info[..2].copy_from_slice(&(out.len() as u16).to_be_bytes());
    info[2] = full_len as u8;
    info[3..9].copy_from_slice(b"tls13 ");
    info[9..9 + label.len()].copy_from_slice(label);
    let info = &info[..3 + full_len + 1]; // trailing zero: empty context
    prk.expand(&[info], Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| Error::QuicDecrypt)
}

impl InitialSecrets {
    /// Derives one side's Initial secrets from the client's first DCID.
    pub fn derive(version: u32, dcid: &[u8], side: Side) -> Result<Self> {
        let params = version_params(version).ok_or(Error::BadVersion)?;
        let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, params.salt).extract(dcid);
        let mut secret = [0u8; 32];
        let label: &[u8] = match side {
            Side::Client => b"client in",
            Side::Server => b"server in",
        };
        expand_label(&initial, label, &mut secret)?;
        let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
        let (key_l, iv_l, hp_l): (&[u8], &[u8], &[u8]) = if params.v2_labels {
            (b"quicv2 key", b"quicv2 iv", b"quicv2 hp")
        } else {
            (b"quic key", b"quic iv", b"quic hp")
        };
        let mut s = InitialSecrets {
            key: [0; 16],
            iv: [0; 12],
            hp: [0; 16],
        };
        expand_label(&prk, key_l, &mut s.key)?;
        expand_label(&prk, iv_l, &mut s.iv)?;
        expand_label(&prk, hp_l, &mut s.hp)?;
        Ok(s)
    }
}

/// Ready-to-use Initial keys for one side.
pub struct InitialKeys {
    aead: LessSafeKey,
    iv: [u8; 12],
    hp: hp::HeaderProtectionKey,
}

impl InitialKeys {
    /// Derives the keys of `side` for `version` and `dcid`.
    pub fn new(version: u32, dcid: &[u8], side: Side) -> Result<Self> {
        let s = InitialSecrets::derive(version, dcid, side)?;
        Ok(InitialKeys {
            aead: LessSafeKey::new(
                UnboundKey::new(&aead::AES_128_GCM, &s.key).map_err(|_| Error::QuicDecrypt)?,
            ),
            iv: s.iv,
            hp: hp::HeaderProtectionKey::new(&hp::AES_128, &s.hp)
                .map_err(|_| Error::QuicDecrypt)?,
        })
    }
}

impl core::fmt::Debug for InitialKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("InitialKeys")
    }
}

/// A long-header Initial packet, still protected.
#[derive(Debug, Clone, Copy)]
pub struct InitialPacket<'a> {
    /// Version field.
    pub version: u32,
    /// Destination Connection ID.
    pub dcid: &'a [u8],
    /// Source Connection ID.
    pub scid: &'a [u8],
    /// The whole packet, header through the end of its Length.
    pub bytes: &'a [u8],
    /// Offset of the (protected) packet number.
    pn_offset: usize,
}

/// Whether a UDP payload starts with a QUIC long header of a version we can
/// open.
pub fn looks_like_initial(datagram: &[u8]) -> bool {
    datagram.len() >= 7 && datagram[0] & 0x80 != 0 && {
        let v = u32::from_be_bytes([datagram[1], datagram[2], datagram[3], datagram[4]]);
        version_params(v).is_some_and(|p| (datagram[0] >> 4) & 3 == p.initial_type)
    }
}

/// Iterates over the Initial packets coalesced in one UDP datagram, skipping
/// other long-header packets; stops at a short header or at an error.
pub fn initial_packets(datagram: &[u8]) -> impl Iterator<Item = Result<InitialPacket<'_>>> {
    let mut rest = datagram;
    core::iter::from_fn(move || loop {
        if rest.first().is_none_or(|b| b & 0x80 == 0) {
            return None;
        }
        match split_long_packet(rest) {
            Ok((pkt, next)) => {
                rest = next;
                match pkt {
                    Some(p) => return Some(Ok(p)),
                    None => continue,
                }
            }
            Err(e) => {
                rest = &[];
                return Some(Err(e));
            }
        }
    })
}

/// Splits the first long-header packet off `bytes`; `None` when it is not an
/// Initial.
fn split_long_packet(bytes: &[u8]) -> Result<(Option<InitialPacket<'_>>, &[u8])> {
    let mut r = Reader::new(bytes);
    let first = r.u8()?;
    let version = r.u32()?;
    let params = version_params(version).ok_or(Error::BadVersion)?;
    let dcid = r.vec8()?;
    let scid = r.vec8()?;
    if dcid.len() > 20 || scid.len() > 20 {
        return Err(Error::BadLength);
    }
    let kind = (first >> 4) & 3;
    let is_initial = kind == params.initial_type;
    // Retry (type 3 in v1, 0 in v2) has no Length field: nothing follows it.
    let retry_type = if params.v2_labels { 0 } else { 3 };
    if kind == retry_type {
        return Ok((None, &[]));
    }
    if is_initial {
        let token_len = r.varint()?;
        r.skip(usize::try_from(token_len).map_err(|_| Error::BadLength)?)?;
    }
    let length = usize::try_from(r.varint()?).map_err(|_| Error::BadLength)?;
    let pn_offset = r.position();
    let end = pn_offset.checked_add(length).ok_or(Error::BadLength)?;
    // A datagram cut by the snap length still yields what it holds.
    let end = end.min(bytes.len());
    let pkt = is_initial.then_some(InitialPacket {
        version,
        dcid,
        scid,
        bytes: &bytes[..end],
        pn_offset,
    });
    Ok((pkt, &bytes[end..]))
}

impl<'a> InitialPacket<'a> {
    /// Removes header protection and decrypts the payload into `scratch`;
    /// returns the plaintext frames (a slice of `scratch`).
    pub fn open<'s>(&self, keys: &InitialKeys, scratch: &'s mut [u8]) -> Result<&'s [u8]> {
        let range = self.open_range(keys, scratch)?;
        Ok(&scratch[range])
    }

    /// Like [`InitialPacket::open`], but returns where in `scratch` the
    /// plaintext is, so callers can try several keys on one buffer.
    pub fn open_range(
        &self,
        keys: &InitialKeys,
        scratch: &mut [u8],
    ) -> Result<core::ops::Range<usize>> {
        let n = self.bytes.len();
        let sample_at = self.pn_offset + 4;
        let sample = self
            .bytes
            .get(sample_at..sample_at + 16)
            .ok_or(Error::Truncated)?;
        if scratch.len() < n {
            return Err(Error::BadLength);
        }
        let mask = keys.hp.new_mask(sample).map_err(|_| Error::QuicDecrypt)?;
        let buf = &mut scratch[..n];
        buf.copy_from_slice(self.bytes);
        buf[0] ^= mask[0] & 0x0f;
        let pn_len = usize::from(buf[0] & 3) + 1;
        let mut pn: u64 = 0;
        for i in 0..pn_len {
            buf[self.pn_offset + i] ^= mask[1 + i];
            pn = (pn << 8) | u64::from(buf[self.pn_offset + i]);
        }
        let header_len = self.pn_offset + pn_len;
        if n < header_len + 16 {
            return Err(Error::Truncated);
        }
        let mut nonce = keys.iv;
        for (i, b) in pn.to_be_bytes().iter().enumerate() {
            nonce[4 + i] ^= b;
        }
        let (header, payload) = buf.split_at_mut(header_len);
        let plain_len = keys
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&*header),
                payload,
            )
            .map_err(|_| Error::QuicDecrypt)?
            .len();
        Ok(header_len..header_len + plain_len)
    }
}

/// Whether a version is one of Google's IETF-framed ones (Q050, T050, T051),
/// whose Initial payload is not made of IETF frames.
pub fn is_google_version(version: u32) -> bool {
    matches!(version, VERSION_Q050 | 0x5430_3530 | 0x5430_3531)
}

/// The handshake bytes of a Google-version Initial: an optional ACK (0x40 or
/// 0x60, fixed size), then a frame of type 0x08 with two varints (stream
/// offset, length) and the data: a CHLO for Q050, a TLS ClientHello for T05x.
pub fn google_handshake_data(plain: &[u8]) -> Result<&[u8]> {
    let mut at = plain.iter().position(|&b| b != 0).ok_or(Error::Truncated)?;
    match plain[at] {
        0x40 => at += 6,
        0x60 => at += 9,
        _ => {}
    }
    let mut r = Reader::new(plain.get(at..).ok_or(Error::Truncated)?);
    if r.u8()? != 0x08 {
        return Err(Error::QuicBadFrame);
    }
    r.varint()?;
    let len = usize::try_from(r.varint()?).map_err(|_| Error::BadLength)?;
    r.take(len)
}

/// A piece of the CRYPTO stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoFrame<'a> {
    /// Stream offset of `data`.
    pub offset: u64,
    /// The bytes.
    pub data: &'a [u8],
}

/// Walks the frames of a decrypted Initial payload, yielding CRYPTO frames.
/// Frames allowed in Initial packets (PADDING, PING, ACK, CONNECTION_CLOSE)
/// are skipped; anything else ends the walk with [`Error::QuicBadFrame`].
pub fn crypto_frames(plain: &[u8]) -> impl Iterator<Item = Result<CryptoFrame<'_>>> {
    let mut r = Reader::new(plain);
    let mut done = false;
    core::iter::from_fn(move || {
        while !done && r.remaining() > 0 {
            let step = (|| -> Result<Option<CryptoFrame<'_>>> {
                match r.varint()? {
                    0x00 | 0x01 => Ok(None),
                    t @ (0x02 | 0x03) => {
                        r.varint()?; // largest acknowledged
                        r.varint()?; // delay
                        let ranges = r.varint()?;
                        r.varint()?; // first range
                        for _ in 0..ranges.min(1024) {
                            r.varint()?;
                            r.varint()?;
                        }
                        if t == 0x03 {
                            for _ in 0..3 {
                                r.varint()?;
                            }
                        }
                        Ok(None)
                    }
                    0x06 => {
                        let offset = r.varint()?;
                        let len = usize::try_from(r.varint()?).map_err(|_| Error::BadLength)?;
                        Ok(Some(CryptoFrame {
                            offset,
                            data: r.take(len)?,
                        }))
                    }
                    0x1c => {
                        r.varint()?;
                        r.varint()?;
                        let len = usize::try_from(r.varint()?).map_err(|_| Error::BadLength)?;
                        r.skip(len)?;
                        Ok(None)
                    }
                    _ => Err(Error::QuicBadFrame),
                }
            })();
            match step {
                Ok(Some(f)) => return Some(Ok(f)),
                Ok(None) => {}
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls;
    use tetherscope_testkit::quic::ClientInitial;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const DCID: &str = "8394c8f03e515708";

    // RFC 9001 A.2 / RFC 9369 A.2: the client's CRYPTO frame.
    const RFC_CRYPTO: &str = "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c000004130113
        02010000c000000010000e00000b6578616d706c652e636f6dff01000100000a00080006001d0017001800100007000504
        616c706e000500050100000000003300260024001d00209370b2c9caa47fbabaf4559fedba753de171fa71f50f1ce15d43
        e994ec74d748002b0003020304000d0010000e0403050306030203080408050806002d00020101001c0002400100390032
        0408ffffffffffffffff05048000ffff07048000ffff0801100104800075300901100f088394c8f03e51570806048000ffff";

    #[test]
    fn rfc9001_a1_keys() {
        let c = InitialSecrets::derive(VERSION_1, &hex(DCID), Side::Client).unwrap();
        assert_eq!(c.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(c.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(c.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
        let s = InitialSecrets::derive(VERSION_1, &hex(DCID), Side::Server).unwrap();
        assert_eq!(s.key.to_vec(), hex("cf3a5331653c364c88f0f379b6067e37"));
        assert_eq!(s.iv.to_vec(), hex("0ac1493ca1905853b0bba03e"));
        assert_eq!(s.hp.to_vec(), hex("c206b8d9b9f0f37644430b490eeaa314"));
    }

    #[test]
    fn rfc9369_a1_keys() {
        let c = InitialSecrets::derive(VERSION_2, &hex(DCID), Side::Client).unwrap();
        assert_eq!(c.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(c.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(c.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
        let s = InitialSecrets::derive(VERSION_2, &hex(DCID), Side::Server).unwrap();
        assert_eq!(s.key.to_vec(), hex("82db637861d55e1d011f19ea71d5d2a7"));
        assert_eq!(s.iv.to_vec(), hex("dd13c276499c0249d3310652"));
        assert_eq!(s.hp.to_vec(), hex("edf6d05c83121201b436e16877593c3a"));
    }

    /// A client Initial protected by the test kit as RFC 9001 §5 says (the
    /// inverse of `open`): empty SCID and token, as in the A.2 packet.
    pub(crate) fn protect(
        version: u32,
        dcid: &[u8],
        pn: u32,
        frames: &[u8],
        size: usize,
    ) -> Vec<u8> {
        ClientInitial {
            scid: Vec::new(),
            packet_number: pn,
            size,
            ..ClientInitial::new(version, dcid)
        }
        .protect(frames)
    }

    fn check_a2(version: u32, head: &str, tail: &str, sha: &str) {
        let pkt = protect(version, &hex(DCID), 2, &hex(RFC_CRYPTO), 1200);
        assert_eq!(pkt[..32].to_vec(), hex(head));
        assert_eq!(pkt[1184..].to_vec(), hex(tail));
        let digest = ring::digest::digest(&ring::digest::SHA256, &pkt);
        assert_eq!(digest.as_ref().to_vec(), hex(sha));

        // And our reader opens it and finds the ClientHello for example.com.
        assert!(looks_like_initial(&pkt));
        let initial = initial_packets(&pkt).next().unwrap().unwrap();
        assert_eq!(initial.dcid, hex(DCID));
        let keys = InitialKeys::new(version, initial.dcid, Side::Client).unwrap();
        let mut scratch = [0u8; 1500];
        let plain = initial.open(&keys, &mut scratch).unwrap();
        let frame = crypto_frames(plain).next().unwrap().unwrap();
        assert_eq!(frame.offset, 0);
        let hello = tls::parse_client_hello_message(frame.data).unwrap();
        assert_eq!(hello.sni, Some(&b"example.com"[..]));
    }

    #[test]
    fn rfc9001_a2_client_initial() {
        check_a2(
            VERSION_1,
            "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11",
            "e221af44860018ab0856972e194cd934",
            "73fa0210cb4a5a17dc10b9dc98e5cc359ba1c20fe7c0e93a9e1dcb473c37e097",
        );
    }

    #[test]
    fn rfc9369_a2_client_initial() {
        check_a2(
            VERSION_2,
            "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485",
            "a18b2faa745b6fe189cf772a9f84cbfc",
            "b0b766fe7e762577072d3365cc4f9635809210cba301a67f8457f5e6fdac5c68",
        );
    }

    fn open_server(version: u32, pkt: &str) -> Vec<u8> {
        let pkt = hex(pkt);
        let initial = initial_packets(&pkt).next().unwrap().unwrap();
        let keys = InitialKeys::new(version, &hex(DCID), Side::Server).unwrap();
        let mut scratch = [0u8; 1500];
        initial.open(&keys, &mut scratch).unwrap().to_vec()
    }

    #[test]
    fn rfc9001_a3_and_rfc9369_a3_server_initial() {
        let frames = "02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf73988cfc79825df566dc5430b9a045a1200
            130100002e00330024001d00209d3c940d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00020304";
        let v1 = "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a5816b6394100f37a1c69797554780bb38cc5a99f
            5ede4cf73c3ec2493a1839b3dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84022f8ef4cdd93795
            d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc42158407dd074ee";
        let v2 = "dc6b3343cf0008f067a5502a4262b5004075d92faaf16f05d8a4398c47089698baeea26b91eb761d9b89237bbf87263017915358
            230035f7fd3945d88965cf17f9af6e16886c61bfc703106fbaf3cb4cfa52382dd16a393e42757507698075b2c984c707f0a0812d
            8cd5a6881eaf21ceda98f4bd23f6fe1a3e2c43edd9ce7ca84bed8521e2e140";
        assert_eq!(open_server(VERSION_1, v1), hex(frames));
        assert_eq!(open_server(VERSION_2, v2), hex(frames));
        // One ACK, then the ServerHello in a CRYPTO frame at offset 0.
        let plain = hex(frames);
        let crypto: Vec<_> = crypto_frames(&plain).collect::<Result<_>>().unwrap();
        assert_eq!(crypto.len(), 1);
        assert_eq!(crypto[0].data[0], 2);
    }

    #[test]
    fn tampered_packet_fails_authentication() {
        let mut pkt = protect(VERSION_1, &hex(DCID), 2, &hex(RFC_CRYPTO), 1200);
        pkt[600] ^= 1;
        let initial = initial_packets(&pkt).next().unwrap().unwrap();
        let keys = InitialKeys::new(VERSION_1, initial.dcid, Side::Client).unwrap();
        assert_eq!(
            initial.open(&keys, &mut [0u8; 1500]).unwrap_err(),
            Error::QuicDecrypt
        );
    }

    #[test]
    fn salts_by_version() {
        assert_eq!(version_params(0xff00_001d).unwrap().salt, &SALT_DRAFT_29);
        assert_eq!(version_params(0xff00_001b).unwrap().salt, &SALT_DRAFT_23);
        assert_eq!(version_params(0xfaceb00e).unwrap().salt, &SALT_DRAFT_23);
        assert!(version_params(0x5130_3436).is_none()); // Q046: cleartext CHLO
    }

    #[test]
    fn hostile_lengths_do_not_panic() {
        let pkt = protect(VERSION_1, &hex(DCID), 2, &hex(RFC_CRYPTO), 1200);
        for n in 0..pkt.len() {
            for p in initial_packets(&pkt[..n]).flatten() {
                let keys = InitialKeys::new(VERSION_1, p.dcid, Side::Client).unwrap();
                let _ = p.open(&keys, &mut [0u8; 1500]);
            }
        }
        let frames = [0x06, 0x00, 0x80, 0xff, 0xff, 0xff, 1, 2];
        assert_eq!(
            crypto_frames(&frames).next().unwrap().unwrap_err(),
            Error::Truncated
        );
    }
}
