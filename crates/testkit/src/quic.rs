//! QUIC long-header packets: client Initials protected with the real
//! Initial keys (RFC 9001 §5, RFC 9369 for version 2) so the dissector can
//! open them, CRYPTO/PING/PADDING frames, and the server's packets a
//! dissector must not mistake for the client's (server Initial, Retry,
//! Version Negotiation).

use ring::aead::{self, quic as hp, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

/// QUIC version 1 (RFC 9000).
pub const VERSION_1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369).
pub const VERSION_2: u32 = 0x6b33_43cf;
/// draft-ietf-quic-transport-29.
pub const DRAFT_29: u32 = 0xff00_001d;
/// The PING frame.
pub const PING: u8 = 0x01;
/// A PADDING frame (one byte).
pub const PADDING: u8 = 0x00;

/// Initial salts: RFC 9001 §5.2, RFC 9369 §3.3.1, draft-29 §5.2.
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
const SALT_DRAFT_29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];

/// One side's Initial packet protection keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialKeys {
    /// AEAD key (AES-128-GCM).
    pub key: [u8; 16],
    /// AEAD IV.
    pub iv: [u8; 12],
    /// Header protection key (AES-128).
    pub hp: [u8; 16],
}

/// Output length for ring's HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) {
    let mut info = (out.len() as u16).to_be_bytes().to_vec();
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(0);
    prk.expand(&[&info], Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .expect("HKDF output of a fixed small length");
}

impl InitialKeys {
    /// The client's keys for a connection whose first DCID is `dcid`.
    ///
    /// # Panics
    /// For a version other than 1, 2 and draft-29.
    pub fn client(version: u32, dcid: &[u8]) -> Self {
        Self::derive(version, dcid, b"client in")
    }

    /// The server's keys for a connection whose first DCID is `dcid`.
    ///
    /// # Panics
    /// For a version other than 1, 2 and draft-29.
    pub fn server(version: u32, dcid: &[u8]) -> Self {
        Self::derive(version, dcid, b"server in")
    }

    fn derive(version: u32, dcid: &[u8], side: &[u8]) -> Self {
        let (salt, v2) = match version {
            VERSION_1 => (&SALT_V1, false),
            VERSION_2 => (&SALT_V2, true),
            DRAFT_29 => (&SALT_DRAFT_29, false),
            v => panic!("no Initial salt for QUIC version {v:#x}"),
        };
        let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(dcid);
        let mut secret = [0u8; 32];
        expand_label(&initial, side, &mut secret);
        let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
        let labels: [&[u8]; 3] = if v2 {
            [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"]
        } else {
            [b"quic key", b"quic iv", b"quic hp"]
        };
        let mut keys = InitialKeys {
            key: [0; 16],
            iv: [0; 12],
            hp: [0; 16],
        };
        expand_label(&prk, labels[0], &mut keys.key);
        expand_label(&prk, labels[1], &mut keys.iv);
        expand_label(&prk, labels[2], &mut keys.hp);
        keys
    }
}

/// The long-header type bits of an Initial (version 2 renumbered them).
fn initial_type(version: u32) -> u8 {
    if version == VERSION_2 {
        1
    } else {
        0
    }
}

/// A CRYPTO frame (type 0x06) with 4-byte varints for offset and length.
pub fn crypto_frame(offset: u64, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06];
    f.extend_from_slice(&(0x8000_0000u32 | offset as u32).to_be_bytes());
    f.extend_from_slice(&(0x8000_0000u32 | data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// `data` as CRYPTO frames of at most `max` bytes each, in order.
pub fn crypto_frames(data: &[u8], max: usize) -> Vec<Vec<u8>> {
    data.chunks(max.max(1))
        .enumerate()
        .map(|(i, chunk)| crypto_frame((i * max.max(1)) as u64, chunk))
        .collect()
}

/// A client Initial, described field by field; [`ClientInitial::protect`]
/// writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInitial {
    /// The QUIC version.
    pub version: u32,
    /// The destination connection id in the header.
    pub dcid: Vec<u8>,
    /// The DCID the keys derive from: the client's first DCID, which later
    /// packets keep using after the server picks a new one.
    pub key_dcid: Vec<u8>,
    /// The client's source connection id.
    pub scid: Vec<u8>,
    /// The token (under 64 bytes: its length is a one-byte varint).
    pub token: Vec<u8>,
    /// The packet number, written in four bytes.
    pub packet_number: u32,
    /// The packet's size once padded (1200 is the smallest a client sends).
    pub size: usize,
}

impl ClientInitial {
    /// A first Initial of `version` to `dcid`: SCID c1c2c3c4, no token,
    /// packet number 0, 1200 bytes.
    pub fn new(version: u32, dcid: &[u8]) -> Self {
        ClientInitial {
            version,
            dcid: dcid.to_vec(),
            key_dcid: dcid.to_vec(),
            scid: vec![0xc1, 0xc2, 0xc3, 0xc4],
            token: Vec::new(),
            packet_number: 0,
            size: 1200,
        }
    }

    /// The protected packet carrying `frames`, padded with PADDING frames:
    /// AEAD over the payload with the header as associated data, then
    /// header protection from a sample of the ciphertext (RFC 9001 §5.3-5.4).
    ///
    /// # Panics
    /// If the frames do not fit in `size`.
    pub fn protect(&self, frames: &[u8]) -> Vec<u8> {
        let keys = InitialKeys::client(self.version, &self.key_dcid);
        let mut header = vec![0xc0 | (initial_type(self.version) << 4) | 3];
        header.extend_from_slice(&self.version.to_be_bytes());
        header.push(self.dcid.len() as u8);
        header.extend_from_slice(&self.dcid);
        header.push(self.scid.len() as u8);
        header.extend_from_slice(&self.scid);
        assert!(
            self.token.len() < 64,
            "token too long for a one-byte varint"
        );
        header.push(self.token.len() as u8);
        header.extend_from_slice(&self.token);
        let payload_len = self.size - header.len() - 2 - 4;
        header.extend_from_slice(&(0x4000u16 | (payload_len + 4) as u16).to_be_bytes());
        let pn_offset = header.len();
        header.extend_from_slice(&self.packet_number.to_be_bytes());
        let mut payload = frames.to_vec();
        assert!(payload.len() <= payload_len - 16, "frames too long");
        payload.resize(payload_len - 16, PADDING);
        let mut nonce = keys.iv;
        for (i, b) in u64::from(self.packet_number)
            .to_be_bytes()
            .iter()
            .enumerate()
        {
            nonce[4 + i] ^= b;
        }
        let key = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &keys.key).unwrap());
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header),
            &mut payload,
        )
        .unwrap();
        let mut pkt = header;
        pkt.extend_from_slice(&payload);
        let hpk = hp::HeaderProtectionKey::new(&hp::AES_128, &keys.hp).unwrap();
        let mask = hpk.new_mask(&pkt[pn_offset + 4..pn_offset + 20]).unwrap();
        pkt[0] ^= mask[0] & 0x0f;
        for i in 0..4 {
            pkt[pn_offset + i] ^= mask[1 + i];
        }
        pkt
    }
}

/// A client Initial of `version` to `dcid` with keys from `key_dcid`,
/// carrying `frames`, padded to 1200 bytes.
pub fn client_initial(
    version: u32,
    dcid: &[u8],
    key_dcid: &[u8],
    token: &[u8],
    pn: u32,
    frames: &[u8],
) -> Vec<u8> {
    ClientInitial {
        key_dcid: key_dcid.to_vec(),
        token: token.to_vec(),
        packet_number: pn,
        ..ClientInitial::new(version, dcid)
    }
    .protect(frames)
}

/// A server Initial whose payload is random-looking bytes (the client's
/// keys cannot open it).
pub fn server_initial(version: u32, dcid: &[u8], scid: &[u8]) -> Vec<u8> {
    let mut p = vec![0xc1 | (initial_type(version) << 4)];
    p.extend_from_slice(&version.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(scid.len() as u8);
    p.extend_from_slice(scid);
    p.push(0);
    p.extend_from_slice(&(0x4000u16 | 100).to_be_bytes());
    p.extend((0..100u8).map(|i| i.wrapping_mul(37)));
    p
}

/// A Retry packet (RFC 9000 §17.2.5) handing the client `scid` and `token`
/// (the integrity tag is not real).
pub fn retry(version: u32, dcid: &[u8], scid: &[u8], token: &[u8]) -> Vec<u8> {
    let retry_type = if version == VERSION_2 { 0 } else { 3 };
    let mut p = vec![0xc0 | (retry_type << 4)];
    p.extend_from_slice(&version.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(scid.len() as u8);
    p.extend_from_slice(scid);
    p.extend_from_slice(token);
    p.extend_from_slice(&[0x5a; 16]);
    p
}

/// A Version Negotiation packet (RFC 9000 §17.2.1) listing `versions`.
pub fn version_negotiation(dcid: &[u8], scid: &[u8], versions: &[u32]) -> Vec<u8> {
    let mut p = vec![0x80];
    p.extend_from_slice(&0u32.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(scid.len() as u8);
    p.extend_from_slice(scid);
    for v in versions {
        p.extend_from_slice(&v.to_be_bytes());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The first DCID of RFC 9001 Appendix A and RFC 9369 Appendix A.
    const DCID: &str = "8394c8f03e515708";

    #[test]
    fn rfc9001_a1_keys() {
        let c = InitialKeys::client(VERSION_1, &hex(DCID));
        assert_eq!(c.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(c.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(c.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
        let s = InitialKeys::server(VERSION_1, &hex(DCID));
        assert_eq!(s.key.to_vec(), hex("cf3a5331653c364c88f0f379b6067e37"));
    }

    #[test]
    fn rfc9369_a1_keys() {
        let c = InitialKeys::client(VERSION_2, &hex(DCID));
        assert_eq!(c.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(c.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(c.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    #[test]
    fn rfc9001_a2_header_is_reproduced() {
        // RFC 9001 A.2: empty SCID and token, packet number 2, 1200 bytes;
        // the unprotected first byte and packet number are c3 and 00000002,
        // and after protection the header reads as the RFC prints it.
        let pkt = ClientInitial {
            scid: Vec::new(),
            packet_number: 2,
            ..ClientInitial::new(VERSION_1, &hex(DCID))
        }
        .protect(&crypto_frame(0, b"hello"));
        assert_eq!(pkt.len(), 1200);
        assert_eq!(pkt[0] & 0xf0, 0xc0);
        assert_eq!(pkt[1..18], hex("00000001088394c8f03e5157080000449e")[..]);
    }

    #[test]
    fn crypto_frames_cover_the_data_in_order() {
        let frames = crypto_frames(&[1; 25], 10);
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames[2][1..5], &(0x8000_0000u32 | 20).to_be_bytes());
        assert_eq!(&frames[2][5..9], &(0x8000_0000u32 | 5).to_be_bytes());
    }
}
